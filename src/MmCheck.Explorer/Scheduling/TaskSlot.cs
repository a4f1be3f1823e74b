using Linux;

namespace MmCheck.Explorer;

/// <summary>The explorer's view of one task of the current execution (TaskStruct.SchedData).</summary>
internal sealed class TaskSlot
{
    public int Index;
    public TaskStruct Task = null!;
    public string Name = "";
    public Func<ValueTask>? Body;
    /// <summary>What resumes the task; null while it runs or once it has ended.</summary>
    public Action? Continuation;
    /// <summary>Starts the slot's task: made once, as the slot and its scheduler outlive executions.</summary>
    public Action? Start;
    public bool Finished;
    /// <summary>The scheduling point it waits at: what its next step starts with.</summary>
    public SchedPointKind Kind;
    public ulong Obj;
    public string Function = "";
    /// <summary>The lock primitive of that point, when traces are drawn (<see cref="ExplorerScheduler.LockNames"/>):
    /// set at a lock point, moved into the step's record when the step begins.</summary>
    public string? LockCall;
    public bool AfterSleep;
    public int Seq;
    public int LastStep;
    public int SpawnStep;
    public int WakeStep;

    /// <summary>Runnable: started or not, not sleeping, not ended.</summary>
    public bool Enabled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => !Finished && Task.SchedState != TaskSchedState.Sleeping;
    }

    public void Reset(int index, TaskStruct task, string name, Func<ValueTask> body, int spawnStep)
    {
        Index = index;
        Task = task;
        Name = name;
        Body = body;
        Continuation = null;
        Finished = false;
        Kind = SchedPointKind.TaskStart;
        Obj = ObjId.Make(ObjId.Kind.Other, 0xF0_0000_0000UL + (ulong)index);
        Function = name;
        LockCall = null;
        AfterSleep = false;
        Seq = 0;
        LastStep = -1;
        SpawnStep = spawnStep;
        WakeStep = -1;
    }
}

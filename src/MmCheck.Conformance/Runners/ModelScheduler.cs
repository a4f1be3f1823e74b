using System.Globalization;
using Linux;

namespace MmCheck.Conformance;

/// <summary>
/// The model's scheduler for conformance runs: the direct scheduler's behaviour (every point
/// continues at once, sleepers yield in FIFO order), plus a record of every frame the model frees,
/// taken from the kernel's effect reports (a folio's refcount reaching zero, a frame returned to
/// the allocator). The comparator needs those to tell a frame freed and reused from one kept.
/// </summary>
internal sealed class ModelScheduler : Scheduler
{
    private readonly Queue<TaskStruct> _runQueue = new();
    private readonly HashSet<ulong> _freed = [];
    private bool _suspended;

    public ModelScheduler()
    {
        RecordsEffects = true;
    }

    /// <summary>Findings reported so far, in order.</summary>
    public List<Finding> Findings { get; } = [];

    public override SchedYield Point(SchedPointKind kind, ulong obj, string function) => SchedYield.Continue;

    public override SchedYield Sleep(object channel, string function)
    {
        var t = Current!;
        t.SchedState = TaskSchedState.Sleeping;
        t.WaitChannel = channel;
        return new SchedYield(this);
    }

    public override void Wake(TaskStruct task)
    {
        if (task.SchedState == TaskSchedState.Sleeping)
        {
            task.SchedState = TaskSchedState.Runnable;
            task.WaitChannel = null;
            _runQueue.Enqueue(task);
        }
    }

    public override void OnFinding(Finding finding) => Findings.Add(finding);

    public override void OnEffect(Effect effect)
    {
        switch (effect)
        {
            case FolioCountEffect { Counter: "refcount", New: <= 0 } f:
                _freed.Add(f.Pfn);
                break;
            case NoteEffect n when n.Text.StartsWith("pfn ", StringComparison.Ordinal) && n.Text.EndsWith(" freed", StringComparison.Ordinal):
                if (ulong.TryParse(n.Text.AsSpan(4, n.Text.Length - 4 - 6), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong pfn))
                {
                    _freed.Add(pfn);
                }
                break;
        }
    }

    /// <summary>The frames freed since the last call.</summary>
    public ulong[] TakeFreed()
    {
        var r = _freed.Order().ToArray();
        _freed.Clear();
        return r;
    }

    public override void Spawn(TaskStruct task, Func<ValueTask> body, string name)
    {
        task.SchedState = TaskSchedState.Runnable;
        task.Continuation = () => _ = RunTaskBody(task, body);
        _runQueue.Enqueue(task);
    }

    protected override void Suspend(Action continuation)
    {
        Current!.Continuation = continuation;
        _suspended = true;
    }

    /// <summary>Runs <paramref name="f"/> as task <paramref name="t"/> to completion and returns its result.</summary>
    public T Run<T>(TaskStruct t, Func<ValueTask<T>> f)
    {
        T? result = default;
        bool done = false;
        Exception? failure = null;
        Spawn(t, async () =>
        {
            try
            {
                result = await f();
                done = true;
            }
            catch (Exception e) when (e is not KernelBugException)
            {
                failure = e;
            }
        }, t.Comm);
        RunUntilIdle();
        if (failure is not null)
        {
            throw new ModelDefectException($"{t}: {failure.GetType().Name}: {failure.Message}", failure);
        }
        if (!done)
        {
            var why = Findings.Count > 0 ? Findings[^1].ToString() : "it never finished";
            throw new ModelDefectException($"{t} did not complete: {why}");
        }
        return result!;
    }

    private void RunUntilIdle()
    {
        var previous = Current;
        var sleeping = new HashSet<TaskStruct>();
        while (_runQueue.Count > 0)
        {
            var t = _runQueue.Dequeue();
            var c = t.Continuation!;
            t.Continuation = null;
            Current = t;
            _suspended = false;
            c();
            if (_suspended && t.SchedState == TaskSchedState.Sleeping)
            {
                sleeping.Add(t);
            }
            else if (_suspended)
            {
                _runQueue.Enqueue(t);
            }
            sleeping.RemoveWhere(s => s.SchedState != TaskSchedState.Sleeping);
        }
        Current = previous;
        foreach (var s in sleeping.Where(s => s.SchedState == TaskSchedState.Sleeping))
        {
            OnFinding(new Finding(Invariants.Deadlock, $"pid {s.Pid} sleeps forever on {s.WaitChannel}", s.Pid, "schedule"));
        }
    }
}

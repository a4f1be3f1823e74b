using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// The explorer's scheduler: runs the tasks of one execution on one OS thread, one step at a time.
/// A step runs a task from one scheduling point to the next; the controller (a strategy) picks
/// which enabled task takes each step and every data choice; the scheduler records the step, its
/// footprint, its data choices and findings, and runs the invariant checks between steps.
/// </summary>
/// <remarks>
/// The decision is taken inside <see cref="Point"/>: when the same task goes on, the point completes
/// synchronously and no continuation is captured, which keeps long runs of one task cheap. When
/// another task is picked, the current one suspends (its continuation is kept in its slot) and
/// control unwinds to <see cref="Run"/>, which resumes the next task. A task sleeping on a lock or a
/// wait queue is disabled until another step wakes it; when no task is enabled but some have not
/// ended, the execution deadlocked.
/// </remarks>
public sealed class ExplorerScheduler : Scheduler
{
    /// <summary>Tasks per execution (thread sets are 64-bit masks).</summary>
    internal const int MaxTasks = 64;

    private TaskSlot[] _slots = new TaskSlot[8];
    private readonly int[] _enabled = new int[MaxTasks];
    private IScheduleController _ctl = null!;
    private Kernel? _kernel;
    private LockGraph? _graph;
    private int _cur = -1;
    private int _next = -1;
    private bool _inStep;
    /// <summary>The step in progress is one the log kept from the last execution.</summary>
    private bool _replayed;
    private bool _switched;
    private bool _dirty;
    private int _edgeCount;
    private int _maxSteps = int.MaxValue;
    private InvariantCheckMode _checks;

    internal readonly StepLog Log = new();
    /// <summary>DPOR's happens-before over <see cref="Log"/>, kept here so that its arrays live as
    /// long as the log's (a DFS engine resets it per execution).</summary>
    internal readonly RaceDetector Races = new();
    internal int TaskCount;
    /// <summary>Thread of the step that ended last, -1 before the first.</summary>
    internal int LastThread = -1;
    /// <summary>Preemptions so far: switches away from a task that could have gone on.</summary>
    internal int Preemptions;
    /// <summary>Steps the last thread has taken in a row.</summary>
    internal int RunLength;

    /// <summary>After this many steps in a row, default schedules let another enabled task run, so
    /// that a task spinning until another one acts does not run into the step bound.</summary>
    internal int FairnessSteps = 1000;
    /// <summary>Set by the controller in <see cref="IScheduleController.PickTask"/>: its node for the next step.</summary>
    internal int NextStepNode = -1;
    /// <summary>Record footprints (DPOR); off, only whether a step wrote is tracked.</summary>
    internal bool StoreFootprint;
    /// <summary>Name lock objects for readable traces (replay only).</summary>
    internal Dictionary<ulong, string>? LockNames;
    internal ExecutionEnd End;
    /// <summary>Why the controller stopped the execution; setting it stops at the next boundary.</summary>
    internal string? StopReason;
    internal Exception? Defect;
    /// <summary>Last step after which the lock graph had grown, -1 if it did not.</summary>
    internal int LastEdgeStep = -1;

    internal ExplorerScheduler()
    {
    }

    /// <summary>A scheduler kept by this thread between runs, so that its step log and race
    /// detector keep their grown arrays instead of an exploration, a replay or a probe allocating
    /// them afresh.</summary>
    [ThreadStatic]
    private static ExplorerScheduler? t_idle;

    /// <summary>Runs <paramref name="run"/> with the thread's idle scheduler (a new one the first
    /// time), then keeps it for the thread's next run.</summary>
    internal static T Use<T>(Func<ExplorerScheduler, T> run)
    {
        var s = t_idle ?? new ExplorerScheduler();
        t_idle = null;
        T result = run(s);
        s.EndExecution(0);
        s._ctl = null!;
        s.LockNames = null;
        s.Current = null;
        t_idle = s;
        return result;
    }

    /// <inheritdoc cref="Use{T}"/>
    internal static void Use(Action<ExplorerScheduler> run) => Use(s =>
    {
        run(s);
        return 0;
    });

    /// <summary>The last execution is over and observed: its tasks are let go and its kernel's
    /// memory goes to the thread's pools (see <see cref="ExplorationTarget.Prepare"/>).</summary>
    private void EndExecution(int keepSteps)
    {
        for (int i = 0; i < TaskCount; i++)
        {
            _slots[i].Continuation = null;
            _slots[i].Body = null;
            _slots[i].Task = null!;
        }
        TaskCount = 0;
        Log.Rewind(keepSteps);
        _kernel?.Recycle();
        _kernel = null;
        _graph = null;
    }

    internal Kernel? Kernel => _kernel;

    internal LockGraph? Graph => _graph;

    internal TaskSlot Slot(int index) => _slots[index];

    /// <summary>Readies the scheduler for a new execution (before the target's Prepare).</summary>
    /// <param name="keepSteps">How many of the last execution's first steps this one repeats (its
    /// controller replays the same choices that far): the log keeps their records, and they run
    /// without recording footprints again. Never with <paramref name="recordEffects"/>.</param>
    internal void BeginExecution(IScheduleController ctl, bool storeFootprint, bool recordEffects, int maxSteps, InvariantCheckMode checks,
        int keepSteps = 0)
    {
        if (recordEffects && keepSteps > 0)
        {
            throw new ArgumentException("steps recorded with effects are never kept", nameof(keepSteps));
        }
        _ctl = ctl;
        EndExecution(keepSteps);
        _cur = -1;
        _next = -1;
        _inStep = false;
        _replayed = false;
        _switched = false;
        _dirty = true;
        _maxSteps = maxSteps;
        FairnessSteps = Math.Max(1, Math.Min(1000, maxSteps / 4));
        _checks = checks;
        LastThread = -1;
        RunLength = 0;
        Preemptions = 0;
        NextStepNode = -1;
        StoreFootprint = storeFootprint;
        LockNames = recordEffects ? [] : null;
        End = ExecutionEnd.Completed;
        StopReason = null;
        Defect = null;
        LastEdgeStep = -1;
        Current = null;
        RecordsFootprint = true;
        RecordsEffects = recordEffects;
    }

    /// <summary>Binds the prepared kernel (after Prepare handed it to this scheduler).</summary>
    internal void Attach(Kernel kernel, LockGraph graph)
    {
        if (!ReferenceEquals(kernel.Sched, this))
        {
            throw new InvalidOperationException("the target's Prepare must call kernel.UseScheduler(scheduler)");
        }
        if (!ReferenceEquals(kernel.LockGraph, graph))
        {
            throw new InvalidOperationException("the target's Prepare must build the kernel with config.LockGraph = lockGraph, or hand it over with kernel.UseLockGraph(lockGraph)");
        }
        _kernel = kernel;
        _graph = graph;
        _edgeCount = graph.EdgeCount;
    }

    /// <summary>Runs the execution to its end; returns how it ended.</summary>
    internal ExecutionEnd Run()
    {
        _next = Boundary();
        while (_next >= 0)
        {
            int n = _next;
            _next = -1;
            var slot = _slots[n];
            var c = slot.Continuation;
            if (c is null)
            {
                Defect ??= new InvalidOperationException($"model defect: {slot.Name} has nothing to resume");
                End = ExecutionEnd.Defect;
                break;
            }
            slot.Continuation = null;
            BeginStep(n);
            _switched = false;
            c();
            if (!_switched)
            {
                Defect ??= new InvalidOperationException(
                    $"model defect: {slot.Name} waited on something other than a scheduling point in {slot.Function}");
                End = ExecutionEnd.Defect;
                break;
            }
        }
        _inStep = false;
        Current = null;
        return End;
    }

    // ---- the seam ----

    public override SchedYield Point(SchedPointKind kind, ulong obj, string function)
    {
        if (!_inStep)
        {
            // Outside a step (observing the final state): nothing to schedule.
            return SchedYield.Continue;
        }
        int cur = _cur;
        var slot = _slots[cur];
        slot.Kind = kind;
        slot.Obj = obj;
        slot.Function = function;
        slot.AfterSleep = false;
        EndStep();
        int next = Boundary();
        if (next == cur)
        {
            BeginStep(cur);
            return SchedYield.Continue;
        }
        _next = next;
        return new SchedYield(this);
    }

    protected override void OnLockPoint(LockBase lk, string call)
    {
        if (LockNames is not null && _inStep)
        {
            LockNames[lk.Obj] = lk.Name;
            _slots[_cur].LockCall = call;
        }
    }

    public override SchedYield Sleep(object channel, string function)
    {
        if (!_inStep)
        {
            throw new InvalidOperationException($"model defect: {function} sleeps outside a task");
        }
        var slot = _slots[_cur];
        var t = slot.Task;
        t.SchedState = TaskSchedState.Sleeping;
        t.WaitChannel = channel;
        var l = channel as LockBase;
        slot.Kind = l is not null ? SchedPointKind.LockAcquire : SchedPointKind.Preempt;
        slot.Obj = l?.Obj ?? 0;
        slot.Function = function;
        slot.AfterSleep = true;
        if (LockNames is not null)
        {
            // Woken inside the lock call the step in progress began with; a wait queue's sleeper is in none.
            slot.LockCall = l is null ? null : Log.Steps[slot.LastStep].LockCall;
            if (l is not null)
            {
                LockNames[l.Obj] = l.Name;
            }
        }
        EndStep();
        _next = Boundary();
        return new SchedYield(this);
    }

    public override void Wake(TaskStruct task)
    {
        if (task.SchedState != TaskSchedState.Sleeping)
        {
            return;
        }
        task.SchedState = TaskSchedState.Runnable;
        task.WaitChannel = null;
        if (task.SchedData is TaskSlot s && s.Index < TaskCount && ReferenceEquals(_slots[s.Index], s))
        {
            // The woken task's next step happens after this one.
            s.WakeStep = _inStep ? Log.Count - 1 : -1;
        }
    }

    public override void Spawn(TaskStruct task, Func<ValueTask> body, string name)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(body);
        if (TaskCount == MaxTasks)
        {
            throw new NotSupportedException($"more than {MaxTasks} tasks in one execution");
        }
        if (TaskCount == _slots.Length)
        {
            Array.Resize(ref _slots, _slots.Length * 2);
        }
        var slot = _slots[TaskCount] ??= new TaskSlot();
        slot.Reset(TaskCount, task, name, body, _inStep ? Log.Count - 1 : -1);
        slot.Continuation = slot.Start ??= () => _ = RunTask(slot);
        task.SchedState = TaskSchedState.New;
        task.SchedData = slot;
        task.WaitChannel = null;
        TaskCount++;
    }

    public override int Choose(string what, int count)
    {
        if (count <= 1 || !_inStep)
        {
            return 0;
        }
        int v = _ctl.PickValue(this, what, count);
        if ((uint)v >= (uint)count)
        {
            v = 0;
        }
        if (!_replayed)
        {
            Log.AddData(new DataRecord(what, count, v));
        }
        return v;
    }

    public override void OnAccess(ulong obj, bool write)
    {
        if (!_inStep)
        {
            return;
        }
        if (write && (ObjId.KindsOf(obj) & _kernel!.InvariantReads & ~ObjKinds.Lock) != 0)
        {
            Log.Steps[Log.Count - 1].Wrote = true;
            CountCheckedWrite();
        }
        if (StoreFootprint && !_replayed)
        {
            AddAccess(obj, write);
        }
    }

    public override void OnEffect(Effect effect)
    {
        if (Log.Count > 0)
        {
            Log.AddEffect(Log.Count - 1, effect);
        }
    }

    public override void OnFinding(Finding finding)
    {
        // Attached to the running step, or to the step that just ended (invariant checks).
        int step = Log.Count - 1;
        if (_ctl is null || step < _ctl.FirstFreshStep)
        {
            return;
        }
        Log.Findings.Add((Math.Max(step, 0), finding));
    }

    protected internal override void Suspend(Action continuation)
    {
        _slots[_cur].Continuation = continuation;
        _switched = true;
        _cur = -1;
    }

    // ---- steps ----

    private async Task RunTask(TaskSlot slot)
    {
        try
        {
            await RunTaskBody(slot.Task, slot.Body!);
        }
#pragma warning disable CA1031 // a model defect must end the execution, not the explorer
        catch (Exception e)
#pragma warning restore CA1031
        {
            Defect ??= e;
        }
        TaskEnded(slot);
    }

    protected internal override bool MakeTaskDead()
    {
        if (!_inStep || _cur < 0)
        {
            return false;
        }
        var slot = _slots[_cur];
        slot.Task.Oopsed = true;
        TaskEnded(slot);
        return true;
    }

    /// <summary>The task's body returned or the task died: its step ends, and so does its part in
    /// the execution.</summary>
    private void TaskEnded(TaskSlot slot)
    {
        slot.Finished = true;
        slot.Task.SchedState = TaskSchedState.Dead;
        if (_inStep && _cur == slot.Index)
        {
            EndStep();
            _next = Defect is null ? Boundary() : -1;
            if (Defect is not null)
            {
                End = ExecutionEnd.Defect;
            }
        }
        _switched = true;
        _cur = -1;
    }

    private void BeginStep(int n)
    {
        var slot = _slots[n];
        int idx = Log.Count;
        _replayed = idx < Log.Kept;
        ref var st = ref _replayed ? ref KeptRecord(slot, n, idx) : ref NewRecord(slot, n);
        if (st.Preempted)
        {
            Preemptions++;
        }
        NextStepNode = -1;
        slot.WakeStep = -1;
        slot.LastStep = idx;
        if (slot.Task.SchedState == TaskSchedState.New)
        {
            slot.Task.SchedState = TaskSchedState.Runnable;
        }
        _cur = n;
        _inStep = true;
        Current = slot.Task;
        // A lock operation reports its own footprint (a reader's, for one, only reads the lock word).
        // A task woken holding a lock that was handed to it resumes inside the lock: the hand-off
        // wrote the word, and this step is taken as writing it too.
        if (!_replayed && StoreFootprint && st.AfterSleep && st.Kind == SchedPointKind.LockAcquire && st.Obj != 0)
        {
            Log.AddFoot(st.Obj | StepLog.WriteBit);
        }
    }

    private ref StepRecord NewRecord(TaskSlot slot, int n)
    {
        ref var st = ref Log.Add();
        st.Thread = n;
        st.Kind = slot.Kind;
        st.AfterSleep = slot.AfterSleep;
        st.Obj = slot.Obj;
        st.Function = slot.Function;
        if (LockNames is not null)
        {
            st.LockCall = slot.LockCall;
            slot.LockCall = null;
        }
        st.FootStart = Log.FootCount;
        st.FootLen = 0;
        st.DataStart = Log.DataCount;
        st.DataLen = 0;
        st.Seq = ++slot.Seq;
        st.SpawnSrc = slot.Seq == 1 ? slot.SpawnStep : -1;
        st.WakeSrc = slot.AfterSleep ? slot.WakeStep : -1;
        st.Prev = slot.LastStep;
        st.Node = NextStepNode;
        st.Wrote = false;
        st.Preempted = LastThread >= 0 && LastThread != n && _slots[LastThread].Enabled;
        return ref st;
    }

    /// <summary>
    /// The record of a step the log kept from the last execution (with its footprint and data
    /// choices), checked against the task that resumes: the same thread at the same point.
    /// </summary>
    private ref StepRecord KeptRecord(TaskSlot slot, int n, int idx)
    {
        ref var st = ref Log.Replay();
        if (st.Thread != n || st.Obj != slot.Obj || st.Kind != slot.Kind || st.Seq != slot.Seq + 1)
        {
            throw new InvalidOperationException(
                $"model nondeterminism: step {idx} of the replayed prefix was thread {st.Thread} at {st.Function}, now thread {n} at {slot.Function}");
        }
        slot.Seq++;
        return ref st;
    }

    private void EndStep()
    {
        int idx = Log.Count - 1;
        ref var st = ref Log.Steps[idx];
        if (!_replayed)
        {
            // The checks after this step read the whole state: such steps are dependent on each other
            // (see StepLog.CheckedState), so DPOR orders them every way the checks could tell apart.
            if (st.Wrote && StoreFootprint && _checks != InvariantCheckMode.Off)
            {
                Log.AddFoot(StepLog.CheckedState | StepLog.WriteBit);
            }
            st.FootLen = Log.FootCount - st.FootStart;
            st.DataLen = Log.DataCount - st.DataStart;
        }
        _inStep = false;
        RunLength = LastThread == st.Thread ? RunLength + 1 : 1;
        LastThread = st.Thread;
        if (st.Wrote)
        {
            _dirty = true;
        }
        if (_graph is not null && _graph.EdgeCount != _edgeCount)
        {
            _edgeCount = _graph.EdgeCount;
            LastEdgeStep = idx;
        }
        _ctl.OnStepEnd(this, idx);
    }

    /// <summary>Checks, then asks the controller for the next task; -1 ends the execution.</summary>
    private int Boundary()
    {
        int ended = Log.Count - 1;
        if (ended >= 0 && _checks != InvariantCheckMode.Off && ended >= _ctl.FirstFreshStep &&
            (_dirty || _checks == InvariantCheckMode.EveryStep))
        {
            CheckInvariants();
        }
        if (Defect is not null)
        {
            End = ExecutionEnd.Defect;
            return -1;
        }
        if (StopReason is not null)
        {
            End = ExecutionEnd.Stopped;
            return -1;
        }
        if (Log.Count >= _maxSteps)
        {
            End = ExecutionEnd.StepLimit;
            return -1;
        }
        int n = 0;
        for (int i = 0; i < TaskCount; i++)
        {
            if (_slots[i].Enabled)
            {
                _enabled[n++] = i;
            }
        }
        if (n == 0)
        {
            for (int i = 0; i < TaskCount; i++)
            {
                if (!_slots[i].Finished)
                {
                    ReportDeadlock();
                    End = ExecutionEnd.Deadlock;
                    return -1;
                }
            }
            End = ExecutionEnd.Completed;
            return -1;
        }
        int pick = _ctl.PickTask(this, _enabled.AsSpan(0, n));
        if (pick < 0)
        {
            StopReason ??= "stopped";
            End = ExecutionEnd.Stopped;
            return -1;
        }
        return pick;
    }

    private void CheckInvariants()
    {
        var k = _kernel!;
        bool busy = k.PageTablesBusy();
        foreach (var (inv, msg) in k.CheckInvariants())
        {
            OnFinding(new Finding(inv, msg, 0, "CheckInvariants"));
        }
        // Page-table invariants wait while a PTL is held; keep the state dirty until they ran.
        if (!busy)
        {
            _dirty = false;
        }
    }

    private void ReportDeadlock()
    {
        var sb = new System.Text.StringBuilder();
        bool oopsed = false;
        for (int i = 0; i < TaskCount; i++)
        {
            var s = _slots[i];
            oopsed |= s.Task.Oopsed;
            if (s.Finished)
            {
                continue;
            }
            if (sb.Length > 0)
            {
                sb.Append("; ");
            }
            string on = s.Task.WaitChannel switch
            {
                LockBase l => l.Name,
                null => "nothing",
                var o => o.GetType().Name,
            };
            sb.Append($"{s.Name} (pid {s.Task.Pid}) sleeps in {KernelSymbols.CName(s.Function)} on {on}");
        }
        // A task that died in BUG/oops leaves its locks held: the hang is a consequence, not a finding.
        if (!oopsed)
        {
            OnFinding(new Finding(Invariants.Deadlock, "no task can run: " + sb, 0, "schedule"));
        }
    }

    private void AddAccess(ulong obj, bool write)
    {
        var log = Log;
        int start = log.Steps[log.Count - 1].FootStart;
        var foot = log.Foot;
        // Deduplicate against the step's recent entries; a repeat further back is harmless.
        int from = Math.Max(start, log.FootCount - 32);
        for (int i = log.FootCount - 1; i >= from; i--)
        {
            if ((foot[i] & ~StepLog.WriteBit) == obj)
            {
                if (write)
                {
                    foot[i] |= StepLog.WriteBit;
                }
                return;
            }
        }
        log.AddFoot(write ? obj | StepLog.WriteBit : obj);
    }
}

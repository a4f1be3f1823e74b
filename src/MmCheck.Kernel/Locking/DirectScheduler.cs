namespace Linux;

/// <summary>
/// The scheduler for running the model without exploring: every scheduling point lets the
/// current task go on; a task that sleeps yields to the next runnable one in FIFO order. Used by
/// unit tests, benchmarks and conformance, where a scenario runs in one fixed order.
/// </summary>
public class DirectScheduler : Scheduler
{
    private readonly Queue<TaskStruct> _runQueue = new();
    private bool _suspended;
    /// <summary>A task died in BUG or an oops (its locks stay held).</summary>
    private bool _oopsed;

    /// <summary>Findings reported so far, in order.</summary>
    public List<Finding> Findings { get; } = [];

    /// <summary>Whether another task is queued to run (a derived scheduler may then switch to it).</summary>
    protected bool OthersRunnable => _runQueue.Count > 0;

    /// <summary>Exceptions that escaped a task body: defects of the model (never findings), kept so
    /// that <see cref="Kernel.Run{T}"/> can report them instead of a silently unfinished task.</summary>
    public List<Exception> Defects { get; } = [];

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

    /// <summary>Queues a task; it runs when the current one finishes or sleeps.</summary>
    public override void Spawn(TaskStruct task, Func<ValueTask> body, string name)
    {
        task.SchedState = TaskSchedState.Runnable;
        task.Continuation = () => _ = RunCatchingDefects(task, body);
        _runQueue.Enqueue(task);
    }

    private async ValueTask RunCatchingDefects(TaskStruct task, Func<ValueTask> body)
    {
        try
        {
            await RunTaskBody(task, body);
        }
        catch (Exception e)
        {
            Defects.Add(e);
            task.SchedState = TaskSchedState.Dead;
        }
    }

    protected internal override bool MakeTaskDead()
    {
        if (Current is not { SchedState: not TaskSchedState.Dead } t)
        {
            return false;
        }
        t.Oopsed = true;
        t.SchedState = TaskSchedState.Dead;
        return true;
    }

    protected internal override void Suspend(Action continuation)
    {
        Current!.Continuation = continuation;
        _suspended = true;
    }

    /// <summary>
    /// Runs <paramref name="body"/> as <paramref name="task"/> until every task is done or asleep.
    /// Returns false if some task is left sleeping (a deadlock, also reported as a finding).
    /// </summary>
    public bool Run(TaskStruct task, Func<ValueTask> body)
    {
        Spawn(task, body, task.Comm);
        return RunUntilIdle();
    }

    /// <summary>Runs the queued tasks until every one is done or asleep; false (and a deadlock
    /// finding per sleeper) if some task is left sleeping.</summary>
    /// <remarks>
    /// Runs without the caller's SynchronizationContext (xunit's, a UI thread's): an await on a
    /// pooled value task (<see cref="InlineAsyncBuilder{TResult}"/>) that captured one would post its
    /// continuation there instead of running it inline, and the model would go on later, on
    /// another thread, outside this loop. A non-default TaskScheduler current at the call would
    /// be used the same way and cannot be cleared here; nothing in MmCheck runs the model inside
    /// a task scheduled on one.
    /// </remarks>
    public bool RunUntilIdle()
    {
        var previous = Current;
        var callerContext = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        HashSet<TaskStruct>? sleeping = null;
        try
        {
            while (_runQueue.Count > 0)
            {
                var t = _runQueue.Dequeue();
                var c = t.Continuation!;
                t.Continuation = null;
                Current = t;
                _suspended = false;
                c();
                _oopsed |= t.Oopsed;
                if (_suspended && t.SchedState == TaskSchedState.Sleeping)
                {
                    (sleeping ??= []).Add(t);
                }
                else if (_suspended)
                {
                    _runQueue.Enqueue(t);
                }
                sleeping?.RemoveWhere(s => s.SchedState != TaskSchedState.Sleeping);
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(callerContext);
        }
        Current = previous;
        sleeping?.RemoveWhere(s => s.SchedState != TaskSchedState.Sleeping);
        if (sleeping is { Count: > 0 })
        {
            // A task that died in BUG/oops leaves its locks held: the hang is a consequence, not a finding.
            if (!_oopsed)
            {
                foreach (var s in sleeping)
                {
                    OnFinding(new Finding(Invariants.Deadlock, $"pid {s.Pid} sleeps forever on {s.WaitChannel}", s.Pid, "schedule"));
                }
            }
            return false;
        }
        return true;
    }
}

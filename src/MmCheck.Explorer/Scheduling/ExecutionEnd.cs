namespace MmCheck.Explorer;

/// <summary>How an execution ended.</summary>
internal enum ExecutionEnd
{
    /// <summary>Every task finished.</summary>
    Completed,
    /// <summary>No task can run but some are unfinished.</summary>
    Deadlock,
    /// <summary>The controller stopped it (sleep set, trace end, goal reached, budget).</summary>
    Stopped,
    /// <summary>Longer than the step bound.</summary>
    StepLimit,
    /// <summary>Kernel code threw something other than a BUG (a defect in MmCheck).</summary>
    Defect,
}

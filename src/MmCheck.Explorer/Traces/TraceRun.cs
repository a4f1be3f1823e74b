using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// One step as a reader sees it: the thread, the kernel function (by its C name), what it did at
/// its scheduling point and on which lock or object, and what changed.
/// </summary>
/// <param name="LockCall">The lock primitive a lock step began with ("down_read", "spin_unlock",
/// "vma_start_write"); null for other steps.</param>
public sealed record StepView(
    int Index,
    int Thread,
    string Function,
    SchedPointKind Kind,
    bool AfterSleep,
    string Object,
    string? LockCall,
    bool Preempted,
    IReadOnlyList<string> Effects,
    IReadOnlyList<Finding> Findings,
    IReadOnlyList<TraceChoice> Choices);

/// <summary>A replayed schedule, step by step, for <see cref="TracePrinter"/>.</summary>
public sealed record TraceRun(string Scenario, IReadOnlyList<string> Threads, IReadOnlyList<StepView> Steps)
{
    public string? Title { get; init; }
    /// <summary>How the run ended ("all threads finished", "deadlock", "end of trace").</summary>
    public string? Ending { get; init; }
    public Outcome? Outcome { get; init; }
}

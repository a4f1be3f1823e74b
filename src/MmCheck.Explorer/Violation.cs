namespace MmCheck.Explorer;

/// <summary>
/// One broken invariant, reported once per (invariant, message class): messages that differ only in
/// numbers (addresses, pfns, pids) are one class. <see cref="Trace"/> is the minimised schedule up to
/// and including the step where it fired; <see cref="Steps"/> is its length.
/// </summary>
public sealed record Violation(string Invariant, string Message, Trace Trace, int Steps)
{
    /// <summary>The readable step log of <see cref="Trace"/> when effects were recorded.</summary>
    public TraceRun? Run { get; init; }

    public override string ToString() => $"{Invariant}: {Message} ({Steps} steps)";
}

using Linux;

namespace MmCheck.Explorer;

/// <summary>Why a trace no longer fits the model: the step where it diverged, expected against actual.</summary>
public sealed record ReplayMismatch(int Step, string Expected, string Actual)
{
    public override string ToString() => $"step {Step}: expected {Expected}, found {Actual}";
}

/// <summary>The result of replaying a trace.</summary>
public sealed record ReplayResult(TraceRun Run, IReadOnlyList<Finding> Findings, ReplayMismatch? Mismatch)
{
    /// <summary>Findings of the prelude schedules (lock-order witnesses), in order.</summary>
    public IReadOnlyList<Finding> PreludeFindings { get; init; } = [];
    /// <summary>Every thread finished (the trace covered a whole execution).</summary>
    public bool Completed { get; init; }
    public Outcome? Outcome => Run.Outcome;
    public bool Fits => Mismatch is null;
}

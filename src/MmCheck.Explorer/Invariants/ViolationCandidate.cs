using Linux;

namespace MmCheck.Explorer;

/// <summary>A lock-class dependency and the schedule that first took it.</summary>
internal readonly record struct EdgeWitness(LockGraph.Node From, LockGraph.Node To, LockGraph.EdgeContext Context, Trace Witness);

/// <summary>A violation as first found, before minimisation.</summary>
internal sealed class ViolationCandidate(string invariant, string message, string classKey, Trace trace)
{
    public string Invariant { get; } = invariant;
    public string Message { get; } = message;
    public string ClassKey { get; } = classKey;
    public Trace Trace { get; set; } = trace;
    /// <summary>For a lock-order cycle: its edges and the schedules that took each.</summary>
    public List<EdgeWitness>? Cycle { get; set; }
}

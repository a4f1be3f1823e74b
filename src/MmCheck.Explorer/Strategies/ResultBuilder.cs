using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// Merges what the phases found, always in the same order (phase, then DFS order or schedule
/// index), so that the result does not depend on which worker ran what: outcome counts add up, the
/// first witness and the first violation of each class win, and the lock-class dependencies are
/// added to the exploration's one graph, where cycles spanning executions show up.
/// </summary>
internal sealed class ResultBuilder
{
    private readonly Dictionary<(LockGraph.Node, LockGraph.Node), Trace> _witness = [];
    private readonly HashSet<string> _classes = [];

    public LockGraph Graph { get; } = new();
    public readonly Dictionary<Outcome, long> Counts = [];
    public readonly Dictionary<Outcome, Trace> OutcomeWitnesses = [];
    public readonly List<ViolationCandidate> Violations = [];
    public readonly List<string> Notes = [];
    public long Schedules;
    public long Redundant;
    public long Steps;
    public long StepLimits;
    /// <summary>CPU time of the exploring threads.</summary>
    public TimeSpan CpuTime;

    public void AddOutcome(Outcome o, long count, Trace? witness)
    {
        Counts[o] = Counts.GetValueOrDefault(o) + count;
        if (witness is not null)
        {
            OutcomeWitnesses.TryAdd(o, witness);
        }
    }

    public void AddViolation(ViolationCandidate v)
    {
        if (_classes.Add(v.ClassKey))
        {
            Violations.Add(v);
        }
    }

    /// <summary>One dependency, with the schedule that first took it.</summary>
    public void AddEdge(EdgeWitness e)
    {
        _witness.TryAdd((e.From, e.To), e.Witness);
        if (Graph.AddEdge(e.From, e.To, e.Context) is { } cycle)
        {
            AddCycle(cycle);
        }
    }

    /// <summary>A cycle that only the merged graph shows: its trace is the schedule that took the
    /// closing dependency, after the schedules that took the others.</summary>
    private void AddCycle(List<(LockGraph.Node From, LockGraph.Node To, LockGraph.EdgeContext Ctx)> cycle)
    {
        string message = LockGraph.Describe(cycle);
        string cls = ViolationClass.Of(Invariants.LockOrder, message);
        if (_classes.Contains(cls))
        {
            return;
        }
        var edges = new List<EdgeWitness>(cycle.Count);
        foreach (var (f, t, ctx) in cycle)
        {
            if (!_witness.TryGetValue((f, t), out var w))
            {
                return;
            }
            edges.Add(new EdgeWitness(f, t, ctx, w));
        }
        var main = TraceFactory.Labelled(edges[0].Witness, Invariants.LockOrder, message);
        edges[0] = edges[0] with { Witness = main };
        AddViolation(new ViolationCandidate(Invariants.LockOrder, message, cls, main) { Cycle = edges });
    }
}

using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// Gathers what one worker's sampled (random or PCT) schedules showed, in schedule order: a witness
/// for each outcome, one violation per class with its trace, and the lock-class
/// dependencies with the schedule that first took each. (DFS workers share <see cref="DfsResults"/>.)
/// </summary>
internal sealed class RunCollector(TraceFactory traces)
{
    public const string ModelDefect = "model-defect";
    public const string SleepSetBlocked = "sleep set";

    private readonly HashSet<string> _classes = [];
    private readonly Dictionary<(LockGraph.Node, LockGraph.Node), Trace> _edgeWitness = [];

    public TraceFactory Traces { get; } = traces;
    /// <summary>The first schedule that ended in each outcome.</summary>
    public readonly Dictionary<Outcome, Trace> OutcomeWitnesses = [];
    public readonly List<ViolationCandidate> Violations = [];
    /// <summary>Dependencies not seen before by this collector, in the order first taken.</summary>
    public readonly List<EdgeWitness> Edges = [];

    /// <summary>Records one execution; returns true when it showed a new violation class.</summary>
    public bool Collect(ExplorerScheduler s, ExecutionEnd end, Outcome? outcome)
    {
        Trace? edgeTrace = null;
        if (s.LastEdgeStep >= 0 && s.Graph is { } g)
        {
            foreach (var (from, to, ctx) in g.Edges)
            {
                if (!_edgeWitness.ContainsKey((from, to)))
                {
                    edgeTrace ??= Traces.Make(s, s.LastEdgeStep);
                    _edgeWitness[(from, to)] = edgeTrace;
                    Edges.Add(new EdgeWitness(from, to, ctx, edgeTrace));
                }
            }
        }

        bool found = false;
        foreach (var (step, f) in s.Log.Findings)
        {
            found |= AddFinding(s, step, f.Invariant, f.Message, edgeTrace);
        }
        if (end == ExecutionEnd.Defect && s.Defect is { } e)
        {
            found |= AddFinding(s, Math.Max(s.Log.Count - 1, 0), ModelDefect, $"{e.GetType().Name}: {e.Message}", edgeTrace);
        }

        if (outcome is not null && !OutcomeWitnesses.ContainsKey(outcome))
        {
            OutcomeWitnesses[outcome] = Traces.Make(s, s.Log.Count - 1, outcome: outcome.ToString());
        }
        return found;
    }

    private bool AddFinding(ExplorerScheduler s, int step, string invariant, string message, Trace? edgeTrace)
    {
        string cls = ViolationClass.Of(invariant, message);
        if (!_classes.Add(cls))
        {
            return false;
        }
        var trace = Traces.Make(s, step, invariant, message);
        var cand = new ViolationCandidate(invariant, message, cls, trace);
        if (invariant == Invariants.LockOrder && s.Graph is { } g && ViolationClass.CycleNodes(message) is { } names)
        {
            cand.Cycle = CycleEdges(g, names, edgeTrace, trace);
        }
        Violations.Add(cand);
        return true;
    }

    /// <summary>The edges of a reported cycle, each with its witness (this execution's own edges
    /// are witnessed by the violation's trace itself).</summary>
    private List<EdgeWitness>? CycleEdges(LockGraph g, List<string> names, Trace? edgeTrace, Trace main)
    {
        if (LockCycles.Resolve(g, names) is not { } cycle)
        {
            return null;
        }
        var edges = new List<EdgeWitness>(cycle.Count);
        foreach (var (from, to, ctx) in cycle)
        {
            if (!_edgeWitness.TryGetValue((from, to), out var w))
            {
                return null;
            }
            edges.Add(new EdgeWitness(from, to, ctx, ReferenceEquals(w, edgeTrace) ? main : w));
        }
        return edges;
    }
}

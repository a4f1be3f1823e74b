using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// What the DFS workers found, shared by all of them. Every entry keeps the execution that comes
/// first in DFS order (the smallest <see cref="RunKey"/>), never the one that arrived first, so the
/// result does not depend on which worker ran what; counts are sums. Traces are made only when an
/// execution improves on what is kept, so memory grows with what was found, not with the schedules.
/// </summary>
internal sealed class DfsResults(TraceFactory traces)
{
    /// <summary>A worker's state for the unit it explores: the unit's key, the next execution
    /// index, how many of the unit's lock-graph edges earlier executions reported.</summary>
    internal sealed class UnitState
    {
        public UnitSpec Spec { get; private set; } = UnitSpec.Root;
        public int Exec;
        /// <summary>The unit's graph only grows, so the edges after these are an execution's new
        /// ones; an edge's index in the graph is its sequence number.</summary>
        public int EdgesSeen;

        public void Begin(UnitSpec spec)
        {
            Spec = spec;
            Exec = 0;
            EdgesSeen = 0;
        }
    }

    private sealed record Kept<T>(RunKey Key, int Seq, T Value);

    private sealed record PendingCycle(List<(LockGraph.Node From, LockGraph.Node To, LockGraph.EdgeContext Ctx, bool Here)> Edges);

    private readonly object _lock = new();
    private readonly Dictionary<Outcome, long> _counts = [];
    private readonly Dictionary<Outcome, Kept<Trace>> _witness = [];
    private readonly Dictionary<string, Kept<(ViolationCandidate Cand, PendingCycle? Cycle)>> _violations = [];
    private readonly Dictionary<(LockGraph.Node, LockGraph.Node), Kept<(LockGraph.EdgeContext Ctx, Trace? Witness)>> _edges = [];
    private long _schedules;
    private long _redundant;
    private long _steps;
    private long _stepLimits;

    public long StepLimits => Interlocked.Read(ref _stepLimits);

    /// <summary>Records one execution; returns true when it showed a violation class not seen before.</summary>
    public bool Collect(UnitState u, ExplorerScheduler s, ExecutionEnd end, Outcome? outcome)
    {
        var key = new RunKey(u.Spec.Key, u.Exec++);
        // This execution's new edges: its graph's edges [newFrom, newTo).
        int newFrom = u.EdgesSeen;
        if (s.LastEdgeStep >= 0 && s.Graph is { } g && g.EdgeCount > newFrom)
        {
            u.EdgesSeen = g.EdgeCount;
        }
        int newTo = u.EdgesSeen;
        bool found = false;
        lock (_lock)
        {
            _schedules++;
            _steps += s.Log.Count;
            if (end == ExecutionEnd.Stopped && s.StopReason == RunCollector.SleepSetBlocked)
            {
                _redundant++;
            }
            else if (end == ExecutionEnd.StepLimit)
            {
                _stepLimits++;
            }

            if (newTo > newFrom)
            {
                Trace? edgeTrace = null;
                for (int seq = newFrom; seq < newTo; seq++)
                {
                    var (from, to, ctx) = s.Graph!.Edges[seq];
                    if (!_edges.TryGetValue((from, to), out var k) || Before(key, seq, k))
                    {
                        edgeTrace ??= traces.Make(s, s.LastEdgeStep);
                        _edges[(from, to)] = new(key, seq, (ctx, edgeTrace));
                    }
                }
            }

            int fseq = 0;
            foreach (var (step, f) in s.Log.Findings)
            {
                found |= AddFinding(key, fseq++, s, step, f.Invariant, f.Message, newFrom, newTo);
            }
            if (end == ExecutionEnd.Defect && s.Defect is { } e)
            {
                found |= AddFinding(key, fseq, s, Math.Max(s.Log.Count - 1, 0), RunCollector.ModelDefect, $"{e.GetType().Name}: {e.Message}", newFrom, newTo);
            }

            if (outcome is not null)
            {
                _counts[outcome] = _counts.GetValueOrDefault(outcome) + 1;
                if (!_witness.TryGetValue(outcome, out var w) || key.CompareTo(w.Key) < 0)
                {
                    _witness[outcome] = new(key, 0, traces.Make(s, s.Log.Count - 1, outcome: outcome.ToString()));
                }
            }
        }
        return found;
    }

    /// <param name="newFrom">The execution's new edges are its graph's [newFrom, newTo).</param>
    private bool AddFinding(RunKey key, int seq, ExplorerScheduler s, int step, string invariant, string message, int newFrom, int newTo)
    {
        string cls = ViolationClass.Of(invariant, message);
        bool isNew = !_violations.TryGetValue(cls, out var kept);
        if (!isNew && !Before(key, seq, kept!))
        {
            return false;
        }
        var cand = new ViolationCandidate(invariant, message, cls, traces.Make(s, step, invariant, message));
        PendingCycle? cycle = null;
        if (invariant == Invariants.LockOrder && s.Graph is { } g && ViolationClass.CycleNodes(message) is { } names &&
            LockCycles.Resolve(g, names) is { } edges)
        {
            bool Here(LockGraph.Node from, LockGraph.Node to) => g.IndexOf(from, to) is int i && i >= newFrom && i < newTo;
            cycle = new PendingCycle(edges.Select(e => (e.From, e.To, e.Ctx, Here(e.From, e.To))).ToList());
        }
        _violations[cls] = new(key, seq, (cand, cycle));
        return isNew;
    }

    private static bool Before<T>(RunKey key, int seq, Kept<T> kept)
    {
        int c = key.CompareTo(kept.Key);
        return c < 0 || (c == 0 && seq < kept.Seq);
    }

    /// <summary>Hands everything to the result, in DFS order.</summary>
    public void WriteTo(ResultBuilder into)
    {
        into.Schedules += _schedules;
        into.Redundant += _redundant;
        into.Steps += _steps;
        into.StepLimits += _stepLimits;
        foreach (var (o, w) in _witness.OrderBy(kv => kv.Value.Key))
        {
            into.AddOutcome(o, _counts[o], w.Value);
        }
        foreach (var (_, kept) in _violations.OrderBy(kv => kv.Value.Key).ThenBy(kv => kv.Value.Seq))
        {
            var (cand, cycle) = kept.Value;
            if (cycle is not null)
            {
                // Dependencies the violating execution did not take itself are replayed first,
                // from the first schedule (in DFS order) that took each.
                var list = new List<EdgeWitness>();
                foreach (var (from, to, ctx, here) in cycle.Edges)
                {
                    var w = here ? cand.Trace : _edges.TryGetValue((from, to), out var k) ? k.Value.Witness : null;
                    if (w is null)
                    {
                        list = null;
                        break;
                    }
                    list.Add(new EdgeWitness(from, to, ctx, w));
                }
                cand.Cycle = list;
            }
            into.AddViolation(cand);
        }
        foreach (var (edge, kept) in _edges.OrderBy(kv => kv.Value.Key).ThenBy(kv => kv.Value.Seq))
        {
            into.AddEdge(new EdgeWitness(edge.Item1, edge.Item2, kept.Value.Ctx, kept.Value.Witness!));
        }
    }
}

using Linux;

namespace MmCheck.Explorer;

/// <summary>The dependencies of a lockdep cycle, from its message and the graph that closed it.</summary>
internal static class LockCycles
{
    public static List<(LockGraph.Node From, LockGraph.Node To, LockGraph.EdgeContext Ctx)>? Resolve(LockGraph g, List<string> names)
    {
        var byName = new Dictionary<string, LockGraph.Node>(StringComparer.Ordinal);
        var ctxs = new Dictionary<(LockGraph.Node, LockGraph.Node), LockGraph.EdgeContext>();
        foreach (var (from, to, ctx) in g.Edges)
        {
            byName.TryAdd(from.ToString(), from);
            byName.TryAdd(to.ToString(), to);
            ctxs[(from, to)] = ctx;
        }
        var edges = new List<(LockGraph.Node, LockGraph.Node, LockGraph.EdgeContext)>(names.Count);
        for (int i = 0; i < names.Count; i++)
        {
            if (!byName.TryGetValue(names[i], out var from) || !byName.TryGetValue(names[(i + 1) % names.Count], out var to) ||
                !ctxs.TryGetValue((from, to), out var ctx))
            {
                return null;
            }
            edges.Add((from, to, ctx));
        }
        return edges;
    }
}

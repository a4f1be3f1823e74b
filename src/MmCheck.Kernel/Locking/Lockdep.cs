namespace Linux;

/// <summary>
/// A lock class (lockdep's struct lock_class_key): every instance of mmap_lock is one class,
/// every split PTE lock another. Ordering is checked between classes, never instances.
/// </summary>
public sealed class LockClass
{
    private static readonly List<LockClass> s_all = [];

    public string Name { get; }
    public int Id { get; }
    /// <summary>Sleeping lock (rwsem, mutex, folio lock) rather than a spinning one.</summary>
    public bool Sleeps { get; }

    private LockClass(string name, bool sleeps)
    {
        Name = name;
        Sleeps = sleeps;
        lock (s_all)
        {
            Id = s_all.Count;
            s_all.Add(this);
        }
    }

    public static LockClass Define(string name, bool sleeps) => new(name, sleeps);

    public static IReadOnlyList<LockClass> All
    {
        get
        {
            lock (s_all)
            {
                return [.. s_all];
            }
        }
    }

    public override string ToString() => Name;

    // The classes of mm, in the order of the tree at the top of Mm/Rmap.cs.
    public static readonly LockClass MmapLock = Define("mm->mmap_lock", sleeps: true);
    public static readonly LockClass VmaLock = Define("vma->vm_lock", sleeps: true);
    public static readonly LockClass FolioLock = Define("folio->flags PG_locked", sleeps: true);
    public static readonly LockClass IMmapRwsem = Define("mapping->i_mmap_rwsem", sleeps: true);
    public static readonly LockClass AnonVmaRwsem = Define("anon_vma->rwsem", sleeps: true);
    public static readonly LockClass PageTableLock = Define("mm->page_table_lock", sleeps: false);
    public static readonly LockClass PtLock = Define("ptlock (split PTE/PMD lock)", sleeps: false);
    public static readonly LockClass IPagesLock = Define("mapping->i_pages lock", sleeps: false);
    public static readonly LockClass IRwsem = Define("inode->i_rwsem", sleeps: true);
    public static readonly LockClass ResourceLock = Define("resource_lock", sleeps: false);
    public static readonly LockClass PgdLock = Define("pgd_lock", sleeps: false);
    public static readonly LockClass MmuNotifierLock = Define("mmu_notifier_invalidate_range", sleeps: true);
}

/// <summary>One lock a task holds, with where it took it (lockdep's struct held_lock) and the task's
/// <see cref="TaskStruct.CheckedWrites"/> then.</summary>
public readonly record struct HeldLock(LockBase Lock, int Subclass, bool Read, string Function, long CheckedWrites);

/// <summary>
/// The class-level dependency graph (lockdep's "lock chains"). One graph spans a whole
/// exploration, across every schedule and kernel instance, so that an inversion is found even if
/// no schedule tried deadlocks on it.
/// </summary>
public sealed class LockGraph
{
    /// <summary>A lock class node: class and subclass (lockdep's nesting annotation).</summary>
    public readonly record struct Node(int ClassId, int Subclass)
    {
        public override string ToString()
        {
            string name = LockClass.All[ClassId].Name;
            return Subclass == 0 ? name : $"{name}/{Subclass}";
        }
    }

    /// <summary>Where an edge was first seen: holding <see cref="HeldIn"/>'s lock, took the next in
    /// <see cref="TakenIn"/>.</summary>
    public readonly record struct EdgeContext(string HeldIn, string TakenIn, string Task);

    /// <summary>The edge's position in <see cref="Edges"/> (its sequence number), or -1.</summary>
    public int IndexOf(Node from, Node to) => _known.TryGetValue(Pack(from, to), out int i) ? i : -1;

    /// <summary>The edges in the order they were added.</summary>
    private readonly List<(Node From, Node To, EdgeContext Ctx)> _edges = [];
    private readonly Dictionary<Node, List<Node>> _succ = [];
    private readonly HashSet<(Node, Node)> _reported = [];
    /// <summary>Each edge's index in <see cref="_edges"/>, by its packed pair, so the common case
    /// (a known edge) is one probe.</summary>
    private readonly Dictionary<long, int> _known = [];

    // FindPath's scratch: edges are added on every execution's first acquisitions, and a fresh
    // queue and maps per search would be most of what lockdep allocates.
    private readonly Dictionary<Node, Node> _prev = [];
    private readonly Queue<Node> _queue = new();

    public int EdgeCount => _edges.Count;

    /// <summary>Forgets every edge, keeping the storage: a worker reuses one graph for unit after
    /// unit instead of allocating a graph per unit.</summary>
    public void Clear()
    {
        _edges.Clear();
        foreach (var list in _succ.Values)
        {
            list.Clear();
        }
        _reported.Clear();
        _known.Clear();
        _lastKnown = -1;
    }

    private static long Pack(Node from, Node to) =>
        ((long)((from.ClassId << 4) | from.Subclass) << 32) | (uint)((to.ClassId << 4) | to.Subclass);

    /// <summary>The edge found by the last successful <see cref="Contains"/>: edges are never
    /// removed, so a repeat of it (one fault after another takes the same locks in the same order)
    /// needs no hash probe.</summary>
    private long _lastKnown = -1;

    /// <summary>Whether the edge is already in the graph (the hot path of every acquisition).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(Node from, Node to)
    {
        long key = Pack(from, to);
        if (key == _lastKnown)
        {
            return true;
        }
        if (!_known.ContainsKey(key))
        {
            return false;
        }
        _lastKnown = key;
        return true;
    }

    /// <summary>The edges in the order they were added.</summary>
    public IReadOnlyList<(Node From, Node To, EdgeContext Ctx)> Edges => _edges;

    /// <summary>Adds an edge; returns the cycle it closes (edges from <paramref name="to"/> back to
    /// <paramref name="from"/>) if it closes one that was not reported before.</summary>
    public List<(Node From, Node To, EdgeContext Ctx)>? AddEdge(Node from, Node to, EdgeContext ctx)
    {
        if (!_known.TryAdd(Pack(from, to), _edges.Count))
        {
            return null;
        }
        _edges.Add((from, to, ctx));
        if (!_succ.TryGetValue(from, out var list))
        {
            _succ[from] = list = [];
        }
        list.Add(to);
        // A new edge closes a cycle only through an edge out of its target: most targets (the
        // innermost locks) have none, and the search is skipped.
        if (!_succ.TryGetValue(to, out var next) || next.Count == 0)
        {
            return null;
        }
        var path = FindPath(to, from);
        if (path is null || !_reported.Add((from, to)))
        {
            return null;
        }
        var cycle = new List<(Node, Node, EdgeContext)> { (from, to, ctx) };
        for (int i = 0; i + 1 < path.Count; i++)
        {
            cycle.Add(_edges[_known[Pack(path[i], path[i + 1])]]);
        }
        return cycle;
    }

    /// <summary>Merges another worker's graph into this one; returns the cycles the merge closes.</summary>
    public List<List<(Node From, Node To, EdgeContext Ctx)>> Merge(LockGraph other)
    {
        var found = new List<List<(Node, Node, EdgeContext)>>();
        foreach (var (f, t, ctx) in other._edges.OrderBy(e => e.From.ClassId).ThenBy(e => e.To.ClassId)
                     .ThenBy(e => e.From.Subclass).ThenBy(e => e.To.Subclass))
        {
            if (AddEdge(f, t, ctx) is { } c)
            {
                found.Add(c);
            }
        }
        return found;
    }

    /// <summary>Breadth-first search for the shortest path of edges <paramref name="from"/> → <paramref name="to"/>.</summary>
    private List<Node>? FindPath(Node from, Node to)
    {
        var prev = _prev;
        var queue = _queue;
        prev.Clear();
        queue.Clear();
        queue.Enqueue(from);
        prev[from] = from;
        while (queue.Count > 0)
        {
            var n = queue.Dequeue();
            if (n == to)
            {
                var path = new List<Node> { n };
                while (path[^1] != from)
                {
                    path.Add(prev[path[^1]]);
                }
                path.Reverse();
                return path;
            }
            if (_succ.TryGetValue(n, out var next))
            {
                foreach (var m in next)
                {
                    if (prev.TryAdd(m, n))
                    {
                        queue.Enqueue(m);
                    }
                }
            }
        }
        return null;
    }

    /// <summary>Formats a cycle the way lockdep prints "possible circular locking dependency".</summary>
    public static string Describe(List<(Node From, Node To, EdgeContext Ctx)> cycle)
    {
        var sb = new System.Text.StringBuilder("possible circular locking dependency: ");
        sb.Append(string.Join(" → ", cycle.Select(c => c.From.ToString()).Append(cycle[0].From.ToString())));
        foreach (var (f, t, ctx) in cycle)
        {
            sb.Append($"; {ctx.Task} took {t} in {ctx.TakenIn} while holding {f} (taken in {ctx.HeldIn})");
        }
        return sb.ToString();
    }
}

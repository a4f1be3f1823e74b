using System.Numerics;

namespace MmCheck.Explorer;

/// <summary>
/// The shared top of the DFS tree and the queue of units, one per choice still to explore at a
/// shared node. Units commit what an execution found (the nodes it reached, the races it needs
/// reversed) in one step at the end of the execution.
/// </summary>
/// <remarks>
/// The result must not depend on timing, so every decision taken here is a function of the request
/// alone, never of what arrived before: a race asks for one of a set of threads at a node; unless
/// one of them is asleep there or is the node's first branch (both fixed when the node was created),
/// the lowest one is added. The set of units is then the same in every run, a unit's spec (its path
/// and its sleep set) is the same, and a unit's exploration is a function of its spec. The price
/// against sequential source-DPOR is a little redundancy: siblings started by requests do not sleep
/// in each other, and a request does not look at what other requests added.
/// </remarks>
internal sealed class DfsCoordinator
{
    private readonly object _lock = new();
    /// <summary>Per worker, the units its executions created, in key order. A worker takes its own
    /// first (they continue the subtree it has just explored, whose nodes are in its core's cache)
    /// and otherwise the first, in key order, of another's.</summary>
    private readonly PriorityQueue<UnitSpec, int[]>[] _queues;
    private readonly bool _plain;
    private int _busy;
    private bool _stopped;

    public DfsCoordinator(int splitDepth, bool plain, int workers)
    {
        SplitDepth = Math.Max(0, splitDepth);
        _plain = plain;
        _queues = new PriorityQueue<UnitSpec, int[]>[Math.Max(1, workers)];
        for (int w = 0; w < _queues.Length; w++)
        {
            _queues[w] = new(UnitKeyComparer.Instance);
        }
    }

    /// <summary>Branching nodes at a smaller depth are shared; deeper ones are explored inside a unit.</summary>
    public int SplitDepth { get; }

    /// <summary>Units were still queued when the exploration stopped.</summary>
    public bool LeftWork
    {
        get
        {
            lock (_lock)
            {
                return _queues.Any(q => q.Count > 0);
            }
        }
    }

    /// <summary>Queues the first unit (the root), for worker 0.</summary>
    public void Enqueue(UnitSpec unit)
    {
        lock (_lock)
        {
            EnqueueLocked(0, unit);
        }
    }

    /// <summary>Takes <paramref name="worker"/>'s next unit, or another worker's; waits while running
    /// units may still produce work.</summary>
    public bool TryTake(int worker, out UnitSpec unit)
    {
        lock (_lock)
        {
            while (true)
            {
                if (!_stopped && TakeLocked(worker, out unit!))
                {
                    _busy++;
                    return true;
                }
                if (_stopped || _busy == 0)
                {
                    unit = null!;
                    Monitor.PulseAll(_lock);
                    return false;
                }
                Monitor.Wait(_lock);
            }
        }
    }

    private bool TakeLocked(int worker, out UnitSpec unit)
    {
        if (_queues[worker].TryDequeue(out unit!, out _))
        {
            return true;
        }
        PriorityQueue<UnitSpec, int[]>? from = null;
        foreach (var q in _queues)
        {
            if (q.Count > 0 && (from is null || UnitKeyComparer.Instance.Compare(q.Peek().Key, from.Peek().Key) < 0))
            {
                from = q;
            }
        }
        return from is not null && from.TryDequeue(out unit!, out _);
    }

    public void Done()
    {
        lock (_lock)
        {
            _busy--;
            Monitor.PulseAll(_lock);
        }
    }

    public void Stop()
    {
        lock (_lock)
        {
            _stopped = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// Commits one execution: the shared nodes it published (in path order) and the races it found
    /// at shared nodes. <paramref name="path"/> is the execution's path of branching nodes, whose
    /// choices are the keys of new units (read there rather than up the shared tree, which other
    /// workers may have built).
    /// </summary>
    public void Commit(int worker, List<DfsNode> path, List<DfsNode> created, List<(SharedNode Node, ulong Candidates)> requests)
    {
        if (created.Count == 0 && requests.Count == 0)
        {
            return;
        }
        lock (_lock)
        {
            foreach (var local in created)
            {
                var n = local.Shared!;
                if (n.IsData)
                {
                    // Every other value of a data choice is a unit, with the sleep set in force.
                    for (int v = 0; v < local.Count; v++)
                    {
                        if (v != n.First)
                        {
                            EnqueueLocked(worker, UnitFor(path, n, v, n.Sleep));
                        }
                    }
                    continue;
                }
                if (_plain)
                {
                    // Plain DFS: every other branch (within the preemption bound) is a unit.
                    for (ulong m = local.Backtrack & ~n.Added; m != 0; m &= m - 1)
                    {
                        int q = BitOperations.TrailingZeroCount(m);
                        n.Added |= 1UL << q;
                        EnqueueLocked(worker, UnitFor(path, n, q, []));
                    }
                }
            }
            foreach (var (n, candidates) in requests)
            {
                RequestLocked(worker, path, n, candidates);
            }
        }
    }

    /// <summary>A race needs one of <paramref name="candidates"/> explored at <paramref name="n"/>.
    /// The lowest is taken, so that races with overlapping candidates agree on one unit.</summary>
    private void RequestLocked(int worker, List<DfsNode> path, SharedNode n, ulong candidates)
    {
        int pick = BitOperations.TrailingZeroCount(candidates);
        if ((candidates & (n.SleepMask | (1UL << n.First))) != 0 || (n.Added & (1UL << pick)) != 0)
        {
            return;
        }
        n.Added |= 1UL << pick;
        var sleep = n.Sleep;
        if (n.FirstFoot is not null && !n.FirstHasData)
        {
            // The first branch is explored by its creator: it sleeps here.
            sleep = [.. n.Sleep, new SleepEntry(n.First, n.FirstFoot)];
        }
        EnqueueLocked(worker, UnitFor(path, n, pick, sleep));
    }

    /// <summary>The unit of choice <paramref name="choice"/> at <paramref name="n"/>, which is
    /// <paramref name="path"/>[n.Depth].</summary>
    private static UnitSpec UnitFor(List<DfsNode> path, SharedNode n, int choice, List<SleepEntry> sleep)
    {
        var key = new int[n.Depth + 1];
        var dataBits = new ulong[(n.Depth >> 6) + 1];
        for (int j = 0; j <= n.Depth; j++)
        {
            key[j] = path[j].Chosen;
            if (path[j].IsData)
            {
                dataBits[j >> 6] |= 1UL << (j & 63);
            }
        }
        key[n.Depth] = choice;
        return new UnitSpec(key, dataBits, n, sleep);
    }

    private void EnqueueLocked(int worker, UnitSpec unit)
    {
        _queues[worker].Enqueue(unit, unit.Key);
        Monitor.PulseAll(_lock);
    }
}

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
    private readonly PriorityQueue<UnitSpec, int[]> _queue = new(UnitKeyComparer.Instance);
    private readonly bool _plain;
    private int _busy;
    private bool _stopped;

    public DfsCoordinator(int splitDepth, bool plain)
    {
        SplitDepth = Math.Max(0, splitDepth);
        _plain = plain;
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
                return _queue.Count > 0;
            }
        }
    }

    public void Enqueue(UnitSpec unit)
    {
        lock (_lock)
        {
            EnqueueLocked(unit);
        }
    }

    /// <summary>Takes the next unit in key order; waits while running units may still produce work.</summary>
    public bool TryTake(out UnitSpec unit)
    {
        lock (_lock)
        {
            while (true)
            {
                if (!_stopped && _queue.TryDequeue(out unit!, out _))
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
    public void Commit(List<DfsNode> path, List<DfsNode> created, List<(SharedNode Node, ulong Candidates)> requests)
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
                            EnqueueLocked(UnitFor(path, n, v, n.Sleep));
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
                        EnqueueLocked(UnitFor(path, n, q, []));
                    }
                }
            }
            foreach (var (n, candidates) in requests)
            {
                RequestLocked(path, n, candidates);
            }
        }
    }

    /// <summary>A race needs one of <paramref name="candidates"/> explored at <paramref name="n"/>.
    /// The lowest is taken, so that races with overlapping candidates agree on one unit.</summary>
    private void RequestLocked(List<DfsNode> path, SharedNode n, ulong candidates)
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
        EnqueueLocked(UnitFor(path, n, pick, sleep));
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

    private void EnqueueLocked(UnitSpec unit)
    {
        _queue.Enqueue(unit, unit.Key);
        Monitor.PulseAll(_lock);
    }
}

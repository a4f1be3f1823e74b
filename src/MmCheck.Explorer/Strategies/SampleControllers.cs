namespace MmCheck.Explorer;

/// <summary>Uniformly random: every enabled task and every data value equally likely at each step.</summary>
internal sealed class RandomController : IScheduleController
{
    private Prng _rng;

    public void Reset(ulong seed) => _rng = new Prng(seed);

    public int FirstFreshStep => 0;

    public int PickTask(ExplorerScheduler s, ReadOnlySpan<int> enabled) => enabled[_rng.Next(enabled.Length)];

    public int PickValue(ExplorerScheduler s, string what, int count) => _rng.Next(count);

    public void OnStepEnd(ExplorerScheduler s, int step)
    {
    }
}

/// <summary>
/// PCT (Burckhardt et al., ASPLOS 2010): random distinct priorities at least d, the highest-priority
/// enabled task runs, and at d-1 random steps in [1, k] the running task drops to priority 1..d-1.
/// Finds a bug of depth d with probability at least 1/(n k^(d-1)).
/// </summary>
internal sealed class PctController : IScheduleController
{
    private Prng _rng;
    private int _depth;
    private readonly long[] _prio = new long[ExplorerScheduler.MaxTasks];
    private int _assigned;
    private readonly List<int> _changes = [];

    public void Reset(ulong seed, int depth, int k)
    {
        _rng = new Prng(seed);
        _depth = Math.Max(1, depth);
        _assigned = 0;
        _changes.Clear();
        for (int i = 0; i < _depth - 1; i++)
        {
            _changes.Add(1 + _rng.Next(Math.Max(1, k)));
        }
    }

    public int FirstFreshStep => 0;

    public int PickTask(ExplorerScheduler s, ReadOnlySpan<int> enabled)
    {
        // Tasks get their priority when first seen (a forked child when it is spawned).
        while (_assigned < s.TaskCount)
        {
            _prio[_assigned] = _depth + ((long)(_rng.NextULong() >> 24) << 6) + _assigned;
            _assigned++;
        }
        int stepsDone = s.Log.Count;
        for (int j = 0; j < _changes.Count; j++)
        {
            if (_changes[j] == stepsDone && s.LastThread >= 0)
            {
                _prio[s.LastThread] = j + 1;
            }
        }
        if (s.RunLength >= s.FairnessSteps && s.LastThread >= 0 && enabled.Length > 1)
        {
            // A task spinning while others wait: below everyone, as a yield would put it.
            _prio[s.LastThread] = 0;
        }
        int best = enabled[0];
        foreach (int t in enabled)
        {
            if (_prio[t] > _prio[best])
            {
                best = t;
            }
        }
        return best;
    }

    public int PickValue(ExplorerScheduler s, string what, int count) => _rng.Next(count);

    public void OnStepEnd(ExplorerScheduler s, int step)
    {
    }
}

/// <summary>The default schedule: the running task keeps the CPU, else the lowest enabled; value 0.</summary>
internal sealed class DefaultController : IScheduleController
{
    /// <summary>Decisions so far that had more than one enabled task to pick from.</summary>
    public int Branches { get; private set; }

    public int FirstFreshStep => 0;

    public int PickTask(ExplorerScheduler s, ReadOnlySpan<int> enabled)
    {
        if (enabled.Length > 1)
        {
            Branches++;
        }
        foreach (int t in enabled)
        {
            if (t == s.LastThread && (s.RunLength < s.FairnessSteps || enabled.Length == 1))
            {
                return t;
            }
        }
        return enabled[0] == s.LastThread && enabled.Length > 1 ? enabled[1] : enabled[0];
    }

    public int PickValue(ExplorerScheduler s, string what, int count) => 0;

    public void OnStepEnd(ExplorerScheduler s, int step)
    {
    }
}

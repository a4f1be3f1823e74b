using System.Numerics;
using Linux;

namespace MmCheck.Explorer;

/// <summary>Settings of a DFS engine.</summary>
internal sealed record DfsSettings(bool Dpor, int? MaxPreemptions, int MaxSteps, InvariantCheckMode Checks, bool KeepReplayedSteps = true)
{
    /// <summary>Plain DFS (no reduction) under a preemption bound: the mode that stays sound with a bound.</summary>
    public bool Plain => !Dpor || MaxPreemptions is not null;
}

/// <summary>
/// Stateless depth-first exploration of one unit of the schedule tree: each execution re-runs the
/// scenario on a fresh kernel, replaying the choices down to the deepest node with work left, then
/// goes on with default choices (the running task keeps the CPU while it can).
/// </summary>
/// <remarks>
/// With DPOR this is source-DPOR with sleep sets: races found in an execution add the initials of
/// the reversed sequence to the backtrack set of the node before the first step of the race, and a
/// thread explored from a node sleeps in its later siblings until a conflicting step runs. Nodes
/// above the split depth belong to the shared tree (<see cref="DfsCoordinator"/>): backtracking
/// there becomes new units rather than local work. Without DPOR, or under a preemption bound, every
/// enabled thread within the bound is explored at every node.
/// </remarks>
internal sealed class DfsEngine : IScheduleController
{
    private readonly ExplorationTarget _target;
    private readonly ExplorerScheduler _s;
    private readonly DfsSettings _settings;
    private readonly DfsCoordinator? _coord;
    private readonly int _split;
    private readonly bool _plain;
    private readonly List<DfsNode> _nodes = [];
    private readonly Stack<DfsNode> _pool = new();
    private readonly List<SleepEntry> _sleep = [];
    private readonly List<SleepEntry> _scratch = [];
    private readonly RaceDetector _races;
    private readonly Action<int, ulong> _onRace;
    private readonly List<int> _created = [];
    private readonly List<DfsNode> _published = [];
    private readonly List<(int Node, ulong Candidates)> _requests = [];
    private readonly List<(SharedNode Node, ulong Candidates)> _commitRequests = [];
    private static readonly List<SleepEntry> s_noSleep = [];
    private static readonly ulong[] s_noFoot = [];
    private UnitSpec _unit = UnitSpec.Root;
    private int _cursor;
    private int _replay;
    private int _firstFresh;
    /// <summary>The scheduler's log and the race detector hold this engine's last execution.</summary>
    private bool _lastInLog;

    /// <summary>The worker this engine runs on (its units go to its own queue).</summary>
    private readonly int _worker;

    public DfsEngine(ExplorationTarget target, ExplorerScheduler scheduler, DfsSettings settings, DfsCoordinator? coordinator, int worker = 0)
    {
        _worker = worker;
        _target = target;
        _s = scheduler;
        _races = scheduler.Races;
        _settings = settings;
        _coord = coordinator;
        _split = coordinator?.SplitDepth ?? 0;
        _plain = settings.Plain;
        _onRace = OnRace;
    }

    /// <summary>Stop an execution as soon as this holds (the minimiser's goal).</summary>
    public Func<ExplorerScheduler, bool>? Goal { get; set; }

    /// <summary>Cut executions that reach this many steps (the minimiser's bound on length).</summary>
    public int PruneSteps { get; set; } = int.MaxValue;

    public int FirstFreshStep => _firstFresh;

    /// <summary>
    /// Explores every schedule of <paramref name="unit"/>. Returns false when
    /// <paramref name="shouldStop"/> cut it short.
    /// </summary>
    public bool ExploreUnit(UnitSpec unit, Func<LockGraph> graphForExecution,
        Action<ExplorerScheduler, ExecutionEnd, Outcome?> onExecution, Func<bool> shouldStop)
    {
        _unit = unit;
        int keep = _lastInLog && _settings.KeepReplayedSteps ? StepsInCommon(unit) : 0;
        _lastInLog = false;
        Truncate(0);
        for (int j = 0; j < unit.Key.Length; j++)
        {
            var n = Rent();
            n.IsData = unit.IsData(j);
            n.Chosen = unit.Key[j];
            n.InSharedTop = true;
            n.Step = -1;
            _nodes.Add(n);
        }
        if (unit.Node is { } own)
        {
            // The shared nodes above are looked up only if a race needs one (SharedAt).
            _nodes[^1].Shared = own;
        }
        _replay = unit.Key.Length;
        bool first = true;
        do
        {
            if (shouldStop())
            {
                return false;
            }
            if (!first && _settings.KeepReplayedSteps)
            {
                // The last execution passed the node this one departs at, with the same choices
                // above it: the steps before that node's are the same.
                keep = _nodes[_replay - 1].Step;
            }
            RunOne(graphForExecution(), onExecution, keep);
            if (first && _cursor < unit.Key.Length)
            {
                throw new InvalidOperationException(
                    $"model nondeterminism: replaying unit {unit} of {_target.Name} ended after {_cursor} of {unit.Key.Length} choices");
            }
            first = false;
        }
        while (Backtrack());
        return true;
    }

    /// <summary>
    /// Steps the last execution has in common with the first of <paramref name="unit"/>: those
    /// before the first branching point where their choices differ (units are taken in depth-first
    /// order, so most share a long prefix with the execution before them).
    /// </summary>
    private int StepsInCommon(UnitSpec unit)
    {
        int n = Math.Min(unit.Key.Length, _nodes.Count);
        if (n == 0)
        {
            return 0;
        }
        int j = 0;
        while (j < n - 1 && _nodes[j].IsData == unit.IsData(j) && _nodes[j].Chosen == unit.Key[j])
        {
            j++;
        }
        return Math.Max(_nodes[j].Step, 0);
    }

    /// <summary>Runs one execution; its first <paramref name="keep"/> steps are the last execution's.</summary>
    private void RunOne(LockGraph graph, Action<ExplorerScheduler, ExecutionEnd, Outcome?> onExecution, int keep)
    {
        _cursor = 0;
        _firstFresh = _replay == 0 ? 0 : int.MaxValue;
        _sleep.Clear();
        if (!_plain)
        {
            // Plain DFS does not use the race detector.
            _races.Rewind(keep);
        }
        _s.BeginExecution(this, storeFootprint: !_plain, recordEffects: false, _settings.MaxSteps, _settings.Checks, keep);
        var ex = _target.Prepare(_s, graph);
        _s.Attach(ex.Kernel, graph);
        var end = _s.Run();
        _lastInLog = true;
        if (_coord is not null)
        {
            Commit();
        }
        if (Goal is not null && end != ExecutionEnd.Stopped && _s.StopReason is null && Goal(_s))
        {
            // A goal that shows only at the end (a deadlock, an outcome).
            _s.StopReason = "goal";
        }
        var outcome = end == ExecutionEnd.Completed ? ex.Observe() : null;
        onExecution(_s, end, outcome);
    }

    // ---- decisions ----

    public int PickTask(ExplorerScheduler s, ReadOnlySpan<int> enabled)
    {
        if (s.Log.Count >= PruneSteps)
        {
            s.StopReason = "pruned";
            return -1;
        }
        ulong en = 0;
        foreach (int t in enabled)
        {
            en |= 1UL << t;
        }
        if (enabled.Length == 1)
        {
            // Forced: not a node. It may still be asleep (every enabled thread covered elsewhere).
            if (!_plain && (SleepMask() & en) != 0)
            {
                s.StopReason = RunCollector.SleepSetBlocked;
                return -1;
            }
            s.NextStepNode = -1;
            return enabled[0];
        }
        int idx = _cursor++;
        DfsNode node;
        if (idx < _replay)
        {
            node = _nodes[idx];
            if (node.IsData)
            {
                throw Nondeterminism(idx, "a data choice", "a thread choice");
            }
            if (node.Step < 0)
            {
                // A prefix node of this unit reached for the first time.
                FillThreadNode(node, s, en);
            }
            else if (node.Enabled != en)
            {
                throw Nondeterminism(idx, $"threads {Mask(node.Enabled)} enabled", $"threads {Mask(en)}");
            }
            if (idx == _replay - 1)
            {
                EnterFresh(node, s.Log.Count);
            }
            s.NextStepNode = idx;
            return node.Chosen;
        }

        node = Rent();
        FillThreadNode(node, s, en);
        node.Sleep.AddRange(_sleep);
        node.SleepMask = SleepMask();
        int choice = DefaultChoice(node, s);
        if (choice < 0)
        {
            Return(node);
            _cursor--;
            s.StopReason = RunCollector.SleepSetBlocked;
            return -1;
        }
        node.Chosen = choice;
        node.Backtrack = _plain ? en & Allowed(node) : 1UL << choice;
        _nodes.Add(node);
        if (idx < _split)
        {
            Share(node, idx);
        }
        s.NextStepNode = idx;
        return choice;
    }

    public int PickValue(ExplorerScheduler s, string what, int count)
    {
        int idx = _cursor++;
        DfsNode node;
        if (idx < _replay)
        {
            node = _nodes[idx];
            if (!node.IsData || (node.Step >= 0 && node.Count != count))
            {
                throw Nondeterminism(idx, node.IsData ? $"'{node.What}' of {node.Count}" : "a thread choice", $"'{what}' of {count}");
            }
            if (node.Step < 0)
            {
                node.Step = s.Log.Count - 1;
                node.Count = count;
                node.What = what;
            }
            if (idx == _replay - 1)
            {
                EnterFresh(node, s.Log.Count - 1);
            }
            return node.Chosen;
        }
        node = Rent();
        node.IsData = true;
        node.Step = s.Log.Count - 1;
        node.Count = count;
        node.What = what;
        node.Chosen = 0;
        // Sleep sets are filtered at step ends only, so this is the set in force before the step.
        node.Sleep.AddRange(_sleep);
        _nodes.Add(node);
        if (idx < _split)
        {
            Share(node, idx);
        }
        return 0;
    }

    public void OnStepEnd(ExplorerScheduler s, int step)
    {
        if (Goal is not null && s.StopReason is null && Goal(s))
        {
            s.StopReason = "goal";
        }
        if (_plain)
        {
            return;
        }
        ref var st = ref s.Log.Steps[step];
        var foot = s.Log.FootOf(step);
        if (st.Node >= 0)
        {
            var node = _nodes[st.Node];
            if (node.ChosenStep < 0)
            {
                node.ChosenStep = step;
                node.ChosenHasData = st.DataLen > 0;
            }
        }
        if (step >= s.Log.Kept)
        {
            _races.AddStep(s.Log, step, s.TaskCount, step >= _firstFresh, _onRace);
        }
        // Threads asleep stay asleep only while steps independent of their next one run.
        if (_sleep.Count > 0)
        {
            for (int i = _sleep.Count - 1; i >= 0; i--)
            {
                if (_sleep[i].Thread == st.Thread || StepLog.Conflict(_sleep[i].Foot, foot))
                {
                    _sleep.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>A race between step <paramref name="c"/> and the current step: one of
    /// <paramref name="initials"/> must be explored at the node before <paramref name="c"/>.</summary>
    private void OnRace(int c, ulong initials)
    {
        int ni = _s.Log.Steps[c].Node;
        if (ni < 0)
        {
            return;
        }
        var node = _nodes[ni];
        ulong cand = initials & node.Enabled;
        if (cand == 0)
        {
            // Cannot happen with a faithful footprint; stay sound by exploring every other thread.
            cand = node.Enabled & ~node.Backtrack;
            if (cand == 0)
            {
                return;
            }
        }
        if (node.InSharedTop)
        {
            // Committed with the execution; the coordinator decides (see its remarks).
            _requests.Add((ni, cand));
            return;
        }
        if ((cand & (node.Backtrack | node.SleepMask)) != 0)
        {
            return;
        }
        // The lowest candidate, as the shared tree does: races with overlapping candidates agree.
        node.Backtrack |= 1UL << BitOperations.TrailingZeroCount(cand);
    }

    // ---- backtracking ----

    private bool Backtrack()
    {
        for (int idx = _nodes.Count - 1; idx >= 0; idx--)
        {
            var node = _nodes[idx];
            if (node.InSharedTop)
            {
                // Shared nodes (above the split) branch into units, never locally.
                break;
            }
            if (node.IsData)
            {
                if (node.Chosen + 1 < node.Count)
                {
                    node.Chosen++;
                    Truncate(idx + 1);
                    _replay = idx + 1;
                    return true;
                }
            }
            else
            {
                node.Done |= 1UL << node.Chosen;
                if (!_plain && node.ChosenStep >= 0 && !node.ChosenHasData)
                {
                    node.DoneEntries.Add(new SleepEntry(node.Chosen, ChosenFoot(node)!));
                }
                ulong pending = node.Backtrack & ~node.Done & ~node.SleepMask & node.Enabled & Allowed(node);
                if (pending != 0)
                {
                    node.Chosen = BitOperations.TrailingZeroCount(pending);
                    node.ChosenStep = -1;
                    node.ChosenFoot = null;
                    Truncate(idx + 1);
                    _replay = idx + 1;
                    return true;
                }
            }
            Truncate(idx);
        }
        return false;
    }

    /// <summary>The replay reached the node where this execution departs from the last one.</summary>
    private void EnterFresh(DfsNode node, int step)
    {
        _firstFresh = step;
        _sleep.Clear();
        if (_plain)
        {
            return;
        }
        if (node.Shared is not null)
        {
            // The unit's own choice: the sleep set its creator computed.
            _sleep.AddRange(_unit.SleepCandidates);
        }
        else if (!node.IsData)
        {
            _sleep.AddRange(node.Sleep);
            foreach (var e in node.DoneEntries)
            {
                if (e.Thread != node.Chosen)
                {
                    _sleep.Add(e);
                }
            }
        }
        else
        {
            // Inside a step: the sleep set in force before it, as in the previous execution.
            _sleep.AddRange(node.Sleep);
        }
    }

    /// <summary>A node above the split depth belongs to the shared tree; it is published only
    /// when something needs it (a race, other values of a data choice, plain DFS's other branches):
    /// no other unit can reach a node deeper than every one that was needed.</summary>
    private void Share(DfsNode node, int idx)
    {
        node.InSharedTop = true;
        if (node.IsData || (_plain && (node.Backtrack & ~(1UL << node.Chosen)) != 0))
        {
            _created.Add(idx);
        }
    }

    /// <summary>Publishes the shared nodes down to the deepest one needed, then hands the new
    /// branches and the races at shared nodes to the coordinator in one go.</summary>
    private void Commit()
    {
        int deepest = -1;
        foreach (int idx in _created)
        {
            deepest = Math.Max(deepest, idx);
        }
        foreach (var (idx, _) in _requests)
        {
            deepest = Math.Max(deepest, idx);
        }
        var published = _published;
        // The unit's own nodes are shared already; the ones below are published down to the deepest needed.
        for (int i = _unit.Key.Length; i <= deepest && i < _nodes.Count; i++)
        {
            var node = _nodes[i];
            if (node.Shared is not null)
            {
                continue;
            }
            var parent = i > 0 ? _nodes[i - 1] : null;
            node.Shared = new SharedNode
            {
                Parent = parent?.Shared,
                Depth = i,
                IsData = node.IsData,
                First = node.Chosen,
                FirstFoot = ChosenFoot(node),
                FirstHasData = node.ChosenHasData,
                SleepMask = node.SleepMask,
                Sleep = node.Sleep.Count == 0 ? s_noSleep : [.. node.Sleep],
                Added = node.IsData ? 0 : 1UL << node.Chosen,
            };
            published.Add(node);
        }
        foreach (var (idx, cand) in _requests)
        {
            _commitRequests.Add((SharedAt(idx), cand));
        }
        _coord!.Commit(_worker, _nodes, published, _commitRequests);
        _created.Clear();
        _requests.Clear();
        _commitRequests.Clear();
        _published.Clear();
    }

    /// <summary>The shared node at <paramref name="idx"/> of the path. A node of the unit's own key
    /// above its choice is found, once, by walking up from the deepest one known.</summary>
    private SharedNode SharedAt(int idx)
    {
        if (_nodes[idx].Shared is null)
        {
            int j = idx + 1;
            while (_nodes[j].Shared is null)
            {
                j++;
            }
            for (; j > idx; j--)
            {
                _nodes[j - 1].Shared = _nodes[j].Shared!.Parent;
            }
        }
        return _nodes[idx].Shared!;
    }

    /// <summary>The footprint of the node's chosen step, copied out of the log on first need
    /// (the log holds the current execution, which passed the node); null before the step ran.</summary>
    private ulong[]? ChosenFoot(DfsNode node)
    {
        if (node.ChosenStep < 0)
        {
            return null;
        }
        if (node.ChosenFoot is null)
        {
            var foot = _s.Log.FootOf(node.ChosenStep);
            node.ChosenFoot = foot.Length == 0 ? s_noFoot : foot.ToArray();
        }
        return node.ChosenFoot;
    }

    private void FillThreadNode(DfsNode node, ExplorerScheduler s, ulong en)
    {
        node.IsData = false;
        node.Step = s.Log.Count;
        node.Enabled = en;
        node.LastThread = s.LastThread;
        node.LastEnabled = s.LastThread >= 0 && (en & (1UL << s.LastThread)) != 0;
        node.PreemptionsBefore = s.Preemptions;
    }

    /// <summary>The running task keeps the CPU when it can (no preemption), unless it has run for
    /// very long while others wait; else the lowest enabled.</summary>
    private int DefaultChoice(DfsNode node, ExplorerScheduler s)
    {
        ulong ok = node.Enabled & ~node.SleepMask & Allowed(node);
        if (ok == 0)
        {
            return -1;
        }
        if (s.LastThread >= 0 && (ok & (1UL << s.LastThread)) != 0)
        {
            ulong others = ok & ~(1UL << s.LastThread);
            if (s.RunLength < s.FairnessSteps || others == 0)
            {
                return s.LastThread;
            }
            return BitOperations.TrailingZeroCount(others);
        }
        return BitOperations.TrailingZeroCount(ok);
    }

    /// <summary>Threads the preemption bound allows at a node.</summary>
    private ulong Allowed(DfsNode node)
    {
        if (_settings.MaxPreemptions is not { } bound || !node.LastEnabled || node.PreemptionsBefore < bound)
        {
            return ulong.MaxValue;
        }
        return 1UL << node.LastThread;
    }

    private ulong SleepMask()
    {
        ulong m = 0;
        foreach (var e in _sleep)
        {
            m |= 1UL << e.Thread;
        }
        return m;
    }

    private DfsNode Rent()
    {
        if (_pool.Count > 0)
        {
            return _pool.Pop();
        }
        var n = new DfsNode();
        n.Reset();
        return n;
    }

    /// <summary>Pools a node, reset: a pooled node must not keep shared nodes (and the tree above
    /// them), footprints or sleep sets alive for the collector to copy.</summary>
    private void Return(DfsNode n)
    {
        n.Reset();
        _pool.Push(n);
    }

    private void Truncate(int count)
    {
        for (int i = _nodes.Count - 1; i >= count; i--)
        {
            Return(_nodes[i]);
        }
        if (_nodes.Count > count)
        {
            _nodes.RemoveRange(count, _nodes.Count - count);
        }
    }

    private InvalidOperationException Nondeterminism(int node, string expected, string actual) =>
        new($"model nondeterminism in {_target.Name}: branching point {node} of unit {_unit} was {expected}, now {actual}");

    private static string Mask(ulong m)
    {
        var parts = new List<int>();
        for (; m != 0; m &= m - 1)
        {
            parts.Add(BitOperations.TrailingZeroCount(m));
        }
        return "{" + string.Join(",", parts) + "}";
    }
}

using System.Globalization;
using Linux;

namespace MmCheck.Explorer;

/// <summary>The entry point: explores a scenario's interleavings with a strategy and reports.</summary>
public static class Explorer
{
    /// <summary>Random and PCT schedules when no budget is given.</summary>
    public const long DefaultSamples = 1000;

    public static ExplorationResult Explore(ExplorationTarget target, ExplorationOptions options, IProgress<ExplorationProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Workers < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Workers must be at least 1");
        }
        if (options.Strategy == Strategy.Replay)
        {
            return ReplayStrategy(target, options);
        }

        long maxSchedules = options.MaxSchedules ?? (options.Strategy is Strategy.Random or Strategy.Pct ? DefaultSamples : long.MaxValue);
        var budget = new ExplorationBudget(maxSchedules, options.TimeLimit, options.StopOnFirstViolation, progress);
        var settings = SettingsOf(options);
        var builder = new ResultBuilder();
        bool complete = false;
        TraceFactory Traces(string strategy) => new(target.Name, strategy, options.Seed, settings);

        switch (options.Strategy)
        {
            case Strategy.Dfs:
                budget.Phase = "dfs";
                complete = DfsExplorer.Run(target, options, budget, Traces(DfsName(options)), builder);
                break;
            case Strategy.Random:
                budget.Phase = "random";
                SampleExplorer.Run(target, options, Strategy.Random, 0, maxSchedules, 1, budget, Traces("random"), builder);
                break;
            case Strategy.Pct:
                budget.Phase = $"pct(d={options.PctDepth})";
                SampleExplorer.Run(target, options, Strategy.Pct, options.PctDepth, maxSchedules, 2, budget, Traces(budget.Phase), builder);
                break;
            case Strategy.Portfolio:
                Portfolio(target, options, Math.Min(options.PortfolioSchedules, maxSchedules), budget, Traces, builder);
                if (!budget.ShouldStop())
                {
                    budget.Phase = "dfs";
                    complete = DfsExplorer.Run(target, options, budget, Traces("portfolio/" + DfsName(options)), builder);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(options), $"unknown strategy {options.Strategy}");
        }
        budget.Report(true);
        // A lock-order cycle across executions shows only when the graphs merge, after exploring.
        var firstViolation = budget.FirstViolation ?? (builder.Violations.Count > 0 ? budget.Elapsed : null);

        var notes = new List<string>(builder.Notes);
        if (budget.StopReason is { } why)
        {
            notes.Add($"stopped: {why}");
        }
        if (builder.StepLimits > 0)
        {
            notes.Add($"{builder.StepLimits} schedules cut at {options.MaxStepsPerSchedule} steps");
        }
        if (options.MaxPreemptions is { } mp && options.Strategy is Strategy.Dfs or Strategy.Portfolio)
        {
            notes.Add($"complete means: every schedule with at most {mp} preemptions");
        }

        budget.Phase = "minimise";
        var violations = Finish(target, options, builder.Violations);

        var outcomes = builder.Counts.Select(kv => (kv.Key, kv.Value))
            .OrderBy(o => o.Key.ToString(), StringComparer.Ordinal).ToList();
        var witnesses = new Dictionary<Outcome, Trace>(builder.OutcomeWitnesses);
        var result = new ExplorationResult
        {
            Name = target.Name,
            Strategy = options.Strategy,
            Seed = options.Seed,
            Workers = options.Workers,
            Complete = complete,
            Schedules = builder.Schedules,
            Redundant = builder.Redundant,
            Steps = builder.Steps,
            Elapsed = budget.Elapsed,
            CpuTime = builder.CpuTime,
            FirstViolationAt = firstViolation,
            Outcomes = outcomes,
            OutcomeWitnesses = witnesses,
            Violations = violations,
            LockGraph = builder.Graph,
            Notes = notes,
        };
        if (options.Condition is { } cond)
        {
            var verdict = result.Evaluate(cond);
            if (verdict.Deciding is { } d && verdict.Witness is { } w && options.Minimize)
            {
                var small = Minimizer.ForOutcome(target, options, w, d);
                witnesses[d] = small;
                verdict = verdict with { Witness = small };
            }
            result = Copy(result, verdict, budget.Elapsed);
        }
        return result;
    }

    /// <summary>
    /// The portfolio's sampling phases: random, then PCT with d = 2 and 3, a third of
    /// <paramref name="n"/> each. A space of one schedule (the default schedule never had a second
    /// option) is left to DFS alone; a phase ends early once it keeps drawing schedules already drawn.
    /// </summary>
    private static void Portfolio(ExplorationTarget target, ExplorationOptions options, long n, ExplorationBudget budget,
        Func<string, TraceFactory> traces, ResultBuilder builder)
    {
        if (n <= 0)
        {
            return;
        }
        budget.Phase = "probe";
        var (k, one) = SampleExplorer.Probe(target, options);
        if (one)
        {
            builder.Notes.Add("one schedule (no decision had a second option): sampling skipped");
            return;
        }
        var history = new SampleHistory();
        long third = n / 3;
        budget.Phase = "random";
        SampleExplorer.Run(target, options, Strategy.Random, 0, third, 1, budget, traces("portfolio/random"), builder, history);
        budget.Phase = "pct(d=2)";
        SampleExplorer.Run(target, options, Strategy.Pct, 2, third, 2, budget, traces("portfolio/pct(d=2)"), builder, history, k);
        budget.Phase = "pct(d=3)";
        SampleExplorer.Run(target, options, Strategy.Pct, 3, n - 2 * third, 3, budget, traces("portfolio/pct(d=3)"), builder, history, k);
    }

    private static ExplorationResult Copy(ExplorationResult r, ConditionVerdict verdict, TimeSpan elapsed) => new()
    {
        Name = r.Name,
        Strategy = r.Strategy,
        Seed = r.Seed,
        Workers = r.Workers,
        Complete = r.Complete,
        Schedules = r.Schedules,
        Redundant = r.Redundant,
        Steps = r.Steps,
        Elapsed = elapsed,
        CpuTime = r.CpuTime,
        FirstViolationAt = r.FirstViolationAt,
        Outcomes = r.Outcomes,
        OutcomeWitnesses = r.OutcomeWitnesses,
        Violations = r.Violations,
        LockGraph = r.LockGraph,
        Notes = r.Notes,
        ReplayMismatch = r.ReplayMismatch,
        ConditionVerdict = verdict,
    };

    /// <summary>Minimises each violation's trace, checks that it replays to the same class, and
    /// (when asked) keeps the readable run of that replay.</summary>
    private static List<Violation> Finish(ExplorationTarget target, ExplorationOptions opt, List<ViolationCandidate> candidates)
    {
        var result = new List<Violation>(candidates.Count);
        foreach (var c in candidates)
        {
            var original = WithPrelude(c);
            var trace = opt.Minimize ? MinimizeCandidate(target, opt, c) : original;
            var check = Replayer.Isolated(target, trace, opt.RecordEffects, opt.InvariantChecks, opt.MaxStepsPerSchedule);
            if (!Shows(check, c.ClassKey) && !ReferenceEquals(trace, original))
            {
                // Cannot happen with a deterministic model; keep the schedule as found rather than a wrong one.
                trace = original;
                check = Replayer.Isolated(target, trace, opt.RecordEffects, opt.InvariantChecks, opt.MaxStepsPerSchedule);
            }
            result.Add(new Violation(c.Invariant, trace.Message ?? c.Message, trace, trace.Steps.Count)
            {
                Run = opt.RecordEffects ? check.Run : null,
            });
        }
        return result;
    }

    private static bool Shows(ReplayResult r, string classKey) =>
        r.Mismatch is null && r.Findings.Concat(r.PreludeFindings).Any(f => ViolationClass.Of(f.Invariant, f.Message) == classKey);

    private static Trace WithPrelude(ViolationCandidate c)
    {
        var prelude = Prelude(c);
        var t = TraceFactory.Labelled(c.Trace, c.Invariant, c.Message);
        return prelude.Count == 0 ? t : TraceFactory.WithPrelude(t, prelude.Select(p => p.Witness).ToList());
    }

    /// <summary>The other schedules a lock-order cycle needs, with the dependencies each contributes.</summary>
    private static List<(Trace Witness, List<EdgeWitness> Edges)> Prelude(ViolationCandidate c)
    {
        var list = new List<(Trace, List<EdgeWitness>)>();
        if (c.Cycle is null)
        {
            return list;
        }
        foreach (var e in c.Cycle)
        {
            if (ReferenceEquals(e.Witness, c.Trace))
            {
                continue;
            }
            int i = list.FindIndex(p => ReferenceEquals(p.Item1, e.Witness));
            if (i < 0)
            {
                list.Add((e.Witness, [e]));
            }
            else
            {
                list[i].Item2.Add(e);
            }
        }
        return list;
    }

    private static Trace MinimizeCandidate(ExplorationTarget target, ExplorationOptions opt, ViolationCandidate c)
    {
        var prelude = Prelude(c);
        if (prelude.Count == 0)
        {
            var t = Minimizer.ForFinding(target, opt, c.Trace, c.ClassKey, null);
            return TraceFactory.Labelled(t, c.Invariant, t.Message ?? c.Message);
        }
        // A cycle whose dependencies were first taken in several schedules: one schedule may take
        // them all; otherwise replay the (shrunk) other schedules first.
        var single = Minimizer.ForFinding(target, opt, c.Trace, c.ClassKey, null);
        if (!ReferenceEquals(single, c.Trace))
        {
            var check = Replayer.Isolated(target, single, false, opt.InvariantChecks, opt.MaxStepsPerSchedule);
            if (Shows(check, c.ClassKey))
            {
                return TraceFactory.Labelled(single, c.Invariant, single.Message ?? c.Message);
            }
        }
        var seed = new LockGraph();
        foreach (var (_, edges) in prelude)
        {
            foreach (var e in edges)
            {
                seed.AddEdge(e.From, e.To, e.Context);
            }
        }
        var main = Minimizer.ForFinding(target, opt, c.Trace, c.ClassKey, seed);
        var pre = new List<Trace>();
        foreach (var (w, edges) in prelude)
        {
            pre.Add(Minimizer.ForEdges(target, opt, w, edges.Select(e => (e.From, e.To)).ToList()));
        }
        return TraceFactory.WithPrelude(TraceFactory.Labelled(main, c.Invariant, main.Message ?? c.Message), pre);
    }

    private static ExplorationResult ReplayStrategy(ExplorationTarget target, ExplorationOptions options)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trace = options.ReplayTrace ?? (options.TracePath is { } path
            ? Trace.Load(path)
            : throw new ArgumentException("the replay strategy needs TracePath or ReplayTrace", nameof(options)));
        var r = Replayer.Replay(target, trace, options.RecordEffects);
        var violations = new List<Violation>();
        var seen = new HashSet<string>();
        foreach (var f in r.PreludeFindings.Concat(r.Findings))
        {
            if (seen.Add(ViolationClass.Of(f.Invariant, f.Message)))
            {
                violations.Add(new Violation(f.Invariant, f.Message, trace, trace.Steps.Count) { Run = options.RecordEffects ? r.Run : null });
            }
        }
        var outcomes = new List<(Outcome, long)>();
        var witnesses = new Dictionary<Outcome, Trace>();
        if (r.Outcome is { } o)
        {
            outcomes.Add((o, 1));
            witnesses[o] = trace;
        }
        var notes = new List<string>();
        if (r.Mismatch is { } mm)
        {
            notes.Add($"the trace does not fit the model: {mm}");
        }
        var result = new ExplorationResult
        {
            Name = target.Name,
            Strategy = Strategy.Replay,
            Seed = trace.Seed,
            Workers = 1,
            Complete = r.Mismatch is null,
            Schedules = 1 + trace.Prelude.Count,
            Steps = r.Run.Steps.Count,
            Elapsed = clock.Elapsed,
            FirstViolationAt = violations.Count > 0 ? clock.Elapsed : null,
            Outcomes = outcomes,
            OutcomeWitnesses = witnesses,
            Violations = violations,
            LockGraph = new LockGraph(),
            Notes = notes,
            ReplayMismatch = r.Mismatch,
        };
        return options.Condition is { } c ? Copy(result, result.Evaluate(c), clock.Elapsed) : result;
    }

    private static string DfsName(ExplorationOptions o) =>
        o.MaxPreemptions is { } k ? $"dfs(preemptions<={k})" : o.Dpor ? "dfs+dpor" : "dfs";

    private static Dictionary<string, string> SettingsOf(ExplorationOptions o)
    {
        var d = new Dictionary<string, string>
        {
            ["strategy"] = o.Strategy.ToString().ToLowerInvariant(),
            ["dpor"] = o.Dpor ? "on" : "off",
            ["splitDepth"] = o.SplitDepth.ToString(CultureInfo.InvariantCulture),
            ["pctDepth"] = o.PctDepth.ToString(CultureInfo.InvariantCulture),
            ["invariantChecks"] = o.InvariantChecks.ToString(),
        };
        if (o.MaxPreemptions is { } mp)
        {
            d["maxPreemptions"] = mp.ToString(CultureInfo.InvariantCulture);
        }
        return d;
    }
}

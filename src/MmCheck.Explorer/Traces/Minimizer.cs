using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// Shrinks a counterexample: the schedule with the fewest preemptions, then the fewest steps, that
/// shows the same thing. Searches plain DFS under preemption bounds 0, 1, … up to the original's
/// count (iterative context bounding), within a budget of executions; returns the original when
/// nothing better is found. Deterministic for a given input.
/// </summary>
internal static class Minimizer
{
    /// <summary>Where the goal is reached in the execution just run: the last step of the
    /// counterexample, or -1.</summary>
    internal delegate int GoalStep(ExplorerScheduler s, ExecutionEnd? end, Outcome? outcome);

    public static Trace ForFinding(ExplorationTarget target, ExplorationOptions opt, Trace original, string classKey, LockGraph? seed)
    {
        static int FindingStep(ExplorerScheduler s, ExecutionEnd? end, Outcome? outcome, string classKey)
        {
            var list = s.Log.Findings;
            for (int i = 0; i < list.Count; i++)
            {
                var (step, f) = list[i];
                if (ViolationClass.Of(f.Invariant, f.Message) == classKey)
                {
                    return step;
                }
            }
            return -1;
        }
        return Search(target, opt, original, seed, (s, end, o) => FindingStep(s, end, o, classKey), (s, g) =>
        {
            foreach (var (step, f) in s.Log.Findings)
            {
                if (step == g && ViolationClass.Of(f.Invariant, f.Message) == classKey)
                {
                    return (f.Invariant, f.Message);
                }
            }
            return (original.Invariant, original.Message);
        });
    }

    /// <summary>The shortest schedule that takes every one of <paramref name="edges"/>.</summary>
    public static Trace ForEdges(ExplorationTarget target, ExplorationOptions opt, Trace original,
        IReadOnlyList<(LockGraph.Node From, LockGraph.Node To)> edges) =>
        Search(target, opt, original, null, (s, end, outcome) =>
        {
            if (s.LastEdgeStep < 0 || s.Graph is null)
            {
                return -1;
            }
            int have = 0;
            foreach (var (from, to, _) in s.Graph.Edges)
            {
                foreach (var (f, t) in edges)
                {
                    if (from == f && to == t)
                    {
                        have++;
                    }
                }
            }
            return have >= edges.Count ? s.LastEdgeStep : -1;
        }, (s, g) => (null, null));

    public static Trace ForOutcome(ExplorationTarget target, ExplorationOptions opt, Trace original, Outcome outcome) =>
        Search(target, opt, original, null, (s, end, o) => o is not null && o.Equals(outcome) ? s.Log.Count - 1 : -1,
            (s, g) => (null, null), outcome.ToString());

    private static Trace Search(ExplorationTarget target, ExplorationOptions opt, Trace original, LockGraph? seed, GoalStep goal,
        Func<ExplorerScheduler, int, (string? Invariant, string? Message)> label, string? outcomeText = null)
    {
        int budget = opt.MinimizeBudget;
        if (budget <= 0)
        {
            return original;
        }
        return WorkerPool.Isolated(() => ExplorerScheduler.Use(sched =>
        {
            var traces = new TraceFactory(original.Scenario, original.Strategy, original.Seed, original.Settings);
            var best = original;
            int used = 0;
            for (int k = 0; k <= original.Preemptions && used < budget; k++)
            {
                var settings = new DfsSettings(Dpor: false, MaxPreemptions: k, opt.MaxStepsPerSchedule, opt.InvariantChecks, opt.KeepReplayedSteps);
                var engine = new DfsEngine(target, sched, settings, null)
                {
                    Goal = s => goal(s, null, null) >= 0,
                    PruneSteps = best.Steps.Count,
                };
                engine.ExploreUnit(UnitSpec.Root, () => Seeded(seed), (s, end, outcome) =>
                {
                    used++;
                    int g = goal(s, end, outcome);
                    if (g < 0)
                    {
                        return;
                    }
                    int pre = 0;
                    for (int i = 0; i <= g; i++)
                    {
                        pre += s.Log.Steps[i].Preempted ? 1 : 0;
                    }
                    if (pre < best.Preemptions || (pre == best.Preemptions && g + 1 < best.Steps.Count))
                    {
                        var (inv, msg) = label(s, g);
                        best = traces.Make(s, g, inv, msg, outcomeText);
                        engine.PruneSteps = g + 1;
                    }
                }, () => used >= budget);
                if (best.Preemptions <= k)
                {
                    break;
                }
            }
            return best;
        }));
    }

    private static LockGraph Seeded(LockGraph? seed)
    {
        var g = new LockGraph();
        if (seed is not null)
        {
            g.Merge(seed);
        }
        return g;
    }
}

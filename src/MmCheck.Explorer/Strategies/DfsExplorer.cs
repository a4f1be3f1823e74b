using Linux;

namespace MmCheck.Explorer;

/// <summary>Runs DFS over the whole tree: units from the coordinator on every worker.</summary>
internal static class DfsExplorer
{
    /// <summary>Explores; returns whether the bounded space was covered completely.</summary>
    public static bool Run(ExplorationTarget target, ExplorationOptions opt, ExplorationBudget budget,
        TraceFactory traces, ResultBuilder into)
    {
        var settings = new DfsSettings(opt.Dpor, opt.MaxPreemptions, opt.MaxStepsPerSchedule, opt.InvariantChecks, opt.KeepReplayedSteps);
        var coord = new DfsCoordinator(opt.SplitDepth, settings.Plain, opt.Workers);
        var results = new DfsResults(traces);
        coord.Enqueue(UnitSpec.Root);
        int incomplete = 0;
        into.CpuTime += WorkerPool.Run(opt.Workers, worker => ExplorerScheduler.Use(sched =>
        {
            var engine = new DfsEngine(target, sched, settings, coord, worker);
            var graph = new LockGraph();
            var state = new DfsResults.UnitState();
            while (coord.TryTake(worker, out var unit))
            {
                try
                {
                    // A fresh lock graph per unit: what lockdep sees inside a unit depends on the
                    // unit alone; cycles across units show when the results merge their edges.
                    graph.Clear();
                    state.Begin(unit);
                    bool complete = engine.ExploreUnit(unit, () => graph, (s, end, outcome) =>
                    {
                        if (results.Collect(state, s, end, outcome))
                        {
                            budget.ViolationFound();
                        }
                        budget.Count(s.Log.Count);
                    }, budget.ShouldStop);
                    if (!complete)
                    {
                        Interlocked.Increment(ref incomplete);
                    }
                }
                finally
                {
                    coord.Done();
                }
                if (budget.ShouldStop())
                {
                    coord.Stop();
                }
            }
        }), coord.Stop);

        results.WriteTo(into);
        return incomplete == 0 && !coord.LeftWork && !budget.Stopped && results.StepLimits == 0;
    }
}

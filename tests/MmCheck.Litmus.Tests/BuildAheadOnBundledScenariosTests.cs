using Linux;
using MmCheck.Explorer;
using MmCheck.Litmus.Runner;
using MmCheck.Litmus.Runtime;

namespace MmCheck.Litmus.Tests;

/// <summary>
/// A scenario target builds its executions' setups a few at a time, against a lock graph of their
/// own, and hands each to its execution's graph (ScenarioTarget's remarks): on every bundled
/// scenario the exploration reports what it reports when each execution builds its own setup
/// against its own graph, down to the step counts and the counterexamples' traces. The setups are
/// per worker thread, so the comparison runs two workers against one.
/// </summary>
public class BuildAheadOnBundledScenariosTests
{
    [Theory]
    [MemberData(nameof(GoldenTests.Scenarios), MemberType = typeof(GoldenTests))]
    public void Building_the_setups_ahead_changes_no_result(string relative)
    {
        var s = GoldenTests.LoadBundled(relative);
        var options = new ExplorationOptions { Strategy = Strategy.Dfs, Workers = 1, Minimize = false, MaxSchedules = 20_000 };
        var each = ScenarioRunner.Explore(s, new ScenarioTarget(s) { BuildAhead = 1 }, options).Exploration;
        var ahead = ScenarioRunner.Explore(s, new ScenarioTarget(s), options with { Workers = 2 }).Exploration;
        Assert.Equal(GoldenTests.Summary(each), GoldenTests.Summary(ahead));
    }

    /// <summary>
    /// What the bundled scenarios cannot show (none reports a lock-order cycle): every execution's
    /// lock graph holds the dependencies the init block records, as when the execution runs the
    /// init block against it, although the kernels were set up against another graph.
    /// </summary>
    [Fact]
    public void Every_executions_lock_graph_gets_the_init_blocks_dependencies()
    {
        var s = GoldenTests.LoadBundled("seeds/seed001-drop-read-take-write-vs-munmap.litmus");
        var reference = new LockGraph();
        ScenarioRuntime.Create(s, reference);
        var init = reference.Edges.Select(e => (e.From, e.To)).ToList();
        Assert.True(init.Count >= 2, $"the init block records {init.Count} dependencies");
        var target = new CheckingTarget(new ScenarioTarget(s), init);
        var r = Explorer.Explorer.Explore(target, new ExplorationOptions { Strategy = Strategy.Dfs, Workers = 1, Minimize = false, MaxSchedules = 50 });
        Assert.Equal(50, r.Schedules);
        Assert.Equal(50, target.Prepared);
        Assert.Equal(0, target.Missing);
    }

    private sealed class CheckingTarget(ScenarioTarget inner, List<(LockGraph.Node From, LockGraph.Node To)> init) : ExplorationTarget
    {
        public int Prepared;
        public int Missing;

        public override string Name => inner.Name;

        public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph)
        {
            var ex = inner.Prepare(scheduler, lockGraph);
            Prepared++;
            if (!ReferenceEquals(ex.Kernel.LockGraph, lockGraph) || init.Any(e => !lockGraph.Contains(e.From, e.To)))
            {
                Missing++;
            }
            return ex;
        }
    }
}

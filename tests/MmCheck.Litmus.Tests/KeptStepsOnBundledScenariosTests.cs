using MmCheck.Explorer;
using MmCheck.Litmus.Runner;

namespace MmCheck.Litmus.Tests;

/// <summary>
/// A DFS execution keeps the record of the steps it shares with the worker's last one (the kernel
/// runs them again, the explorer does not record their footprints again): on every bundled
/// scenario that changes nothing the exploration reports, down to the step counts and the
/// counterexamples' traces. A scenario explored in one schedule keeps no step, so its case only
/// checks that the mechanism leaves a lone execution alone; the others compare kept steps.
/// </summary>
public class KeptStepsOnBundledScenariosTests
{
    [Theory]
    [MemberData(nameof(GoldenTests.Scenarios), MemberType = typeof(GoldenTests))]
    public void Keeping_the_shared_steps_changes_no_result(string relative)
    {
        var s = GoldenTests.LoadBundled(relative);
        var options = new ExplorationOptions { Strategy = Strategy.Dfs, Workers = 1, Minimize = false, MaxSchedules = 20_000 };
        var kept = ScenarioRunner.Explore(s, options).Exploration;
        var again = ScenarioRunner.Explore(s, options with { KeepReplayedSteps = false }).Exploration;
        Assert.Equal(GoldenTests.Summary(again), GoldenTests.Summary(kept));
    }
}

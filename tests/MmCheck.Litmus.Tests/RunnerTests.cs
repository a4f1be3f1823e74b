using MmCheck.Explorer;
using MmCheck.Litmus.Runner;

namespace MmCheck.Litmus.Tests;

public class RunnerTests
{
    private static ScenarioResult Explore(string text, Strategy strategy = Strategy.Dfs)
    {
        var loaded = ScenarioRunner.LoadText(text, "test.litmus");
        Assert.False(loaded.HasErrors, Syntax.DiagnosticFormatter.Format(loaded.Diagnostics));
        return ScenarioRunner.Explore(loaded.Scenario!, new ExplorationOptions { Strategy = strategy });
    }

    [Fact]
    public void The_design_cow_example_always_keeps_the_parent_write_out_of_the_child()
    {
        var r = Explore(Examples.CowBasicAfterFork);
        Assert.True(r.Ok, Golden.Render(r));
        Assert.True(r.Complete);
        Assert.Equal(Observation.Always, r.Observed);
        var state = Assert.Single(r.States);
        Assert.Equal("0x22", state.Outcome["T0:r0"]);
        Assert.Equal("0x11", state.Outcome["T1:r1"]);
    }
}

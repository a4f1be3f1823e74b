using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

public class StrategyTests
{
    private static readonly Condition s_lost = new(Quantifier.Exists, o => o["x"] == "1", "exists (x = 1)");

    [Theory]
    [InlineData(Strategy.Random)]
    [InlineData(Strategy.Pct)]
    public void SamplingFindsTheLostUpdate(Strategy strategy)
    {
        var r = Explorer.Explore(Scenarios.Increment(locked: false), new ExplorationOptions
        {
            Strategy = strategy,
            Seed = 1,
            MaxSchedules = 300,
            PctDepth = 2,
            Condition = s_lost,
        });
        Assert.Equal(300, r.Schedules);
        Assert.False(r.Complete);
        Assert.True(r.ConditionVerdict!.Holds);
    }

    [Fact]
    public void ThePortfolioFindsShallowBugsFirstThenCoversEverything()
    {
        var r = Explorer.Explore(Scenarios.Abba(sameOrder: false), new ExplorationOptions { PortfolioSchedules = 90 });
        Assert.Equal(Strategy.Portfolio, r.Strategy);
        Assert.True(r.Complete);
        Assert.True(TestKit.Has(r, Invariants.Deadlock));
        // Found by the sampling phase, so its trace says so.
        Assert.StartsWith("portfolio/", r.Violations[0].Trace.Strategy, StringComparison.Ordinal);
        Assert.DoesNotContain("dfs", r.Violations[0].Trace.Strategy, StringComparison.Ordinal);
    }

    [Fact]
    public void APortfolioOverASingleScheduleRunsItOnce()
    {
        var r = Explorer.Explore(Scenarios.Alone(), new ExplorationOptions());
        Assert.True(r.Complete);
        Assert.Equal(1, r.Schedules);
        Assert.Equal("11", Assert.Single(r.Outcomes).Outcome["T0:r"]);
        Assert.Contains(r.Notes, n => n.Contains("one schedule", StringComparison.Ordinal));
    }

    [Fact]
    public void ADataChoiceIsADecisionTooSoTheSpaceIsNotOneSchedule()
    {
        // One thread, but it takes A→B or B→A by a data choice: sampling runs, and the inversion is found.
        var r = Explorer.Explore(Scenarios.OrderByChoice(), new ExplorationOptions());
        Assert.True(r.Complete);
        Assert.True(r.Schedules > 2);
        Assert.DoesNotContain(r.Notes, n => n.Contains("one schedule", StringComparison.Ordinal));
        Assert.True(TestKit.Has(r, Invariants.LockOrder));
    }

    [Fact]
    public void ASamplingPhaseThatOnlyRepeatsItselfEndsEarly()
    {
        // Two threads, two locks: a handful of distinct schedules, far fewer than the 300 samples.
        var r = Explorer.Explore(Scenarios.Abba(sameOrder: false), new ExplorationOptions());
        Assert.True(r.Complete);
        Assert.Contains(r.Notes, n => n.Contains("ended after schedule", StringComparison.Ordinal));
        Assert.True(r.Schedules < 300, $"{r.Schedules} schedules");
        Assert.True(TestKit.Has(r, Invariants.Deadlock));
        Assert.DoesNotContain("dfs", r.Violations.First(v => v.Invariant == Invariants.Deadlock).Trace.Strategy, StringComparison.Ordinal);
    }

    [Fact]
    public void ARaceIsStillFoundByTheSamplingPhase()
    {
        var r = Explorer.Explore(Scenarios.FaultVsZap(revalidate: false), new ExplorationOptions { Seed = 1 });
        Assert.True(r.Complete);
        var v = r.Violations.First(x => x.Invariant == Invariants.RefCount);
        Assert.Matches("^portfolio/(random|pct)", v.Trace.Strategy);
    }

    [Fact]
    public void APreemptionBoundLimitsWhatIsCovered()
    {
        var t = Scenarios.Increment(locked: false);
        var none = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Dfs, MaxPreemptions = 0, Condition = s_lost });
        Assert.True(none.Complete);
        Assert.False(none.ConditionVerdict!.Holds);
        Assert.Contains(none.Notes, n => n.Contains("at most 0 preemptions", StringComparison.Ordinal));
        var one = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Dfs, MaxPreemptions = 1, Condition = s_lost });
        Assert.True(one.Complete);
        Assert.True(one.ConditionVerdict!.Holds);
        Assert.True(one.Schedules > none.Schedules);
    }

    [Fact]
    public void StoppingAtTheFirstViolationLeavesTheSpaceIncomplete()
    {
        var r = Explorer.Explore(Scenarios.Abba(sameOrder: false), new ExplorationOptions { Strategy = Strategy.Dfs, StopOnFirstViolation = true });
        Assert.False(r.Complete);
        Assert.NotEmpty(r.Violations);
        Assert.NotNull(r.FirstViolationAt);
        Assert.Contains(r.Notes, n => n.Contains("first violation", StringComparison.Ordinal));
    }

    [Fact]
    public void AScheduleBudgetLeavesTheSpaceIncomplete()
    {
        var r = Explorer.Explore(Scenarios.StoreVsMunmap(), new ExplorationOptions { Strategy = Strategy.Dfs, MaxSchedules = 10 });
        Assert.False(r.Complete);
        Assert.Equal(10, r.Schedules);
    }

    [Fact]
    public void ProgressIsReported()
    {
        var reports = new List<ExplorationProgress>();
        var progress = new SyncProgress(reports);
        Explorer.Explore(Scenarios.StoreVsMunmap(), new ExplorationOptions { Strategy = Strategy.Dfs }, progress);
        Assert.NotEmpty(reports);
        Assert.True(reports[^1].Schedules > 0);
    }

    private sealed class SyncProgress(List<ExplorationProgress> into) : IProgress<ExplorationProgress>
    {
        public void Report(ExplorationProgress value)
        {
            lock (into)
            {
                into.Add(value);
            }
        }
    }
}

public class FairnessTests
{
    [Fact]
    public void ATaskSpinningOnAnotherDoesNotStarveItInSampledSchedules()
    {
        var r = Explorer.Explore(SpinScenarios.SpinWait(), new ExplorationOptions
        {
            Strategy = Strategy.Pct,
            PctDepth = 1,
            MaxStepsPerSchedule = 80,
            MaxSchedules = 50,
        });
        Assert.Empty(r.Violations);
        Assert.DoesNotContain(r.Notes, n => n.Contains("cut at", StringComparison.Ordinal));
        Assert.All(r.Outcomes, o => Assert.Equal("1", o.Outcome["flag"]));
    }

    [Fact]
    public void ASpinLoopHasUnboundedlyManyTracesSoDfsStopsAtTheStepBound()
    {
        // Every number of failed polls before the flag is set is a different trace: DFS covers
        // them up to the step bound and says the space was cut there.
        var r = Explorer.Explore(SpinScenarios.SpinWait(), new ExplorationOptions { Strategy = Strategy.Dfs, MaxStepsPerSchedule = 80 });
        Assert.False(r.Complete);
        Assert.Contains(r.Notes, n => n.Contains("cut at 80 steps", StringComparison.Ordinal));
        Assert.True(r.Schedules < 200);
        Assert.Empty(r.Violations);
        Assert.All(r.Outcomes, o => Assert.Equal("1", o.Outcome["flag"]));
    }
}

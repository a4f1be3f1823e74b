using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

/// <summary>Known races are found, their correct versions are proven clean with complete coverage,
/// and every counterexample replays to the same violation.</summary>
public class KnownRaceTests
{
    private static readonly Condition s_noLostUpdate = new(Quantifier.Forall, o => o["x"] == "2", "forall (x = 2)");

    [Fact]
    public void LostUpdateWithoutALockIsFound()
    {
        var t = Scenarios.Increment(locked: false);
        var r = TestKit.Dfs(t, condition: s_noLostUpdate);
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        var verdict = r.ConditionVerdict!;
        Assert.False(verdict.Holds);
        Assert.Equal("1", verdict.Deciding!["x"]);
        // The witness is minimal (one preemption between a load and its store) and replays to x = 1.
        Assert.Equal(1, verdict.Witness!.Preemptions);
        var replay = Replayer.Replay(t, verdict.Witness);
        Assert.Null(replay.Mismatch);
        Assert.True(replay.Completed);
        Assert.Equal("1", replay.Outcome!["x"]);
    }

    [Fact]
    public void IncrementUnderAMutexIsProvenClean()
    {
        var r = TestKit.Dfs(Scenarios.Increment(locked: true), condition: s_noLostUpdate);
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        Assert.True(r.ConditionVerdict!.Holds);
        Assert.All(r.Outcomes, o => Assert.Equal("2", o.Outcome["x"]));
        Assert.Equal(2, r.Outcomes.Count);
    }

    [Fact]
    public void AbbaDeadlockIsFound()
    {
        var t = Scenarios.Abba(sameOrder: false);
        var r = TestKit.Dfs(t);
        Assert.True(r.Complete);
        Assert.True(TestKit.Has(r, Invariants.Deadlock));
        Assert.True(TestKit.Has(r, Invariants.LockOrder));
        var deadlock = r.Violations.Single(v => v.Invariant == Invariants.Deadlock);
        Assert.Equal(1, deadlock.Trace.Preemptions);
        Assert.Contains("T0", deadlock.Message);
        Assert.Contains("T1", deadlock.Message);
        TestKit.AssertTracesReplay(t, r);
    }

    [Fact]
    public void LocksTakenInOneOrderAreProvenClean()
    {
        var r = TestKit.Dfs(Scenarios.Abba(sameOrder: true));
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        Assert.Single(r.Outcomes);
    }

    [Fact]
    public void AnInversionThatNeverDeadlocksIsStillReported()
    {
        var t = Scenarios.Serialized(sameOrder: false);
        var r = TestKit.Dfs(t);
        Assert.True(r.Complete);
        Assert.False(TestKit.Has(r, Invariants.Deadlock));
        var v = Assert.Single(r.Violations);
        Assert.Equal(Invariants.LockOrder, v.Invariant);
        Assert.Contains("test_lock_A", v.Message);
        Assert.Contains("test_lock_B", v.Message);
        Assert.Equal(0, v.Trace.Preemptions);
        TestKit.AssertTracesReplay(t, r);
    }

    [Fact]
    public void OneOrderUnderAThirdLockIsProvenClean()
    {
        var r = TestKit.Dfs(Scenarios.Serialized(sameOrder: true));
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(int.MaxValue)]
    public void AnInversionAcrossSchedulesIsReportedWithAReplayablePrelude(int splitDepth)
    {
        var t = Scenarios.OrderByChoice();
        var r = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Dfs, SplitDepth = splitDepth });
        Assert.True(r.Complete);
        var v = Assert.Single(r.Violations);
        Assert.Equal(Invariants.LockOrder, v.Invariant);
        // No single schedule takes both orders: the trace replays the other one first.
        Assert.Single(v.Trace.Prelude);
        TestKit.AssertTracesReplay(t, r);
        var alone = Replayer.Replay(t, new Trace
        {
            Scenario = v.Trace.Scenario,
            Strategy = v.Trace.Strategy,
            Threads = v.Trace.Threads,
            Steps = v.Trace.Steps,
        });
        Assert.DoesNotContain(alone.Findings, f => f.Invariant == Invariants.LockOrder);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ABugOnIsAFindingAndTheHangItLeavesIsNotADeadlock(bool stopInFrame)
    {
        var t = Scenarios.CheckUnderLock(bug: true, stopInFrame);
        var r = TestKit.Dfs(t);
        Assert.True(r.Complete);
        // T0 dies holding A; when T1 then sleeps on A nothing can run, but that is the oops's doing.
        var v = Assert.Single(r.Violations);
        Assert.Equal(Invariants.Bug, v.Invariant);
        Assert.Contains("flag set under A", v.Message);
        Assert.All(r.Outcomes, o => Assert.Equal("yes", o.Outcome["T1:done"]));
        Assert.True(r.Outcomes.Sum(o => o.Count) < r.Schedules - r.Redundant, "some execution ended with T1 asleep on A");
        TestKit.AssertTracesReplay(t, r);
    }

    [Fact]
    public void ATaskStoppedWhereTheBugFiresExploresAsOneUnwoundToItsTopFrame()
    {
        var unwound = TestKit.Dfs(Scenarios.CheckUnderLock(bug: true));
        var stopped = TestKit.Dfs(Scenarios.CheckUnderLock(bug: true, stopInFrame: true));
        Assert.Equal((unwound.Schedules, unwound.Redundant, unwound.Steps), (stopped.Schedules, stopped.Redundant, stopped.Steps));
        Assert.Equal(unwound.Outcomes.Select(o => (o.Outcome.ToString(), o.Count)), stopped.Outcomes.Select(o => (o.Outcome.ToString(), o.Count)));
        Assert.Equal(unwound.Violations.Select(v => (v.Invariant, v.Message, v.Trace.Steps.Count)),
            stopped.Violations.Select(v => (v.Invariant, v.Message, v.Trace.Steps.Count)));
    }

    [Fact]
    public void AWarnOnIsAFindingAndTheTaskGoesOn()
    {
        var t = Scenarios.CheckUnderLock(bug: false);
        var r = TestKit.Dfs(t);
        Assert.True(r.Complete);
        var v = Assert.Single(r.Violations);
        Assert.Equal(Invariants.Warn, v.Invariant);
        Assert.Equal(r.Schedules - r.Redundant, r.Outcomes.Sum(o => o.Count));
        Assert.All(r.Outcomes, o => Assert.Equal("yes", o.Outcome["T1:done"]));
        TestKit.AssertTracesReplay(t, r);
    }

    [Fact]
    public void AFixupWithoutPteSameRacingAZapMapsAFreedPage()
    {
        var t = Scenarios.FaultVsZap(revalidate: false);
        var r = TestKit.Dfs(t, effects: true);
        Assert.True(r.Complete);
        Assert.True(TestKit.Has(r, Invariants.RefCount));
        Assert.True(TestKit.Has(r, Invariants.RmapComplete));
        var v = r.Violations.First(x => x.Invariant == Invariants.RefCount);
        Assert.Contains("freed pfn", v.Message);
        Assert.Equal(1, v.Trace.Preemptions);
        TestKit.AssertTracesReplay(t, r);
        // The readable trace shows the two threads and the PTE being zapped and then rewritten.
        string text = TracePrinter.Print(v.Run!);
        Assert.Contains("fixup", text);
        Assert.Contains("zap", text);
        Assert.Contains("zap_pte_range", text);
        Assert.Contains("→", text);
    }

    [Fact]
    public void AFixupThatRechecksWithPteSameIsProvenClean()
    {
        var r = TestKit.Dfs(Scenarios.FaultVsZap(revalidate: true));
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        Assert.All(r.Outcomes, o => Assert.Equal("none", o.Outcome["x"]));
    }

    private static readonly Condition s_noOrphanPte = new(Quantifier.Forall, o => o["x"] == "none", "forall (x = none)");

    [Fact]
    public void AFaultGoingOnWithAStaleVmaAfterMunmapLeavesAnOrphanPte()
    {
        var t = Scenarios.FaultVsMunmap(revalidate: false);
        var r = TestKit.Dfs(t, condition: s_noOrphanPte);
        Assert.True(r.Complete);
        var verdict = r.ConditionVerdict!;
        Assert.False(verdict.Holds);
        Assert.Equal("mapped", verdict.Deciding!["x"]);
        Assert.Equal("none", verdict.Deciding!["vma"]);
        // munmap must run while the fault has dropped the lock: one preemption.
        Assert.Equal(1, verdict.Witness!.Preemptions);
        var replay = Replayer.Replay(t, Trace.FromJson(verdict.Witness.ToJson()));
        Assert.Null(replay.Mismatch);
        Assert.Equal(verdict.Deciding, replay.Outcome);
    }

    [Fact]
    public void AWriterWaitingInVmaStartWriteTurnsNewPerVmaReadersAway()
    {
        // __vma_enter_locked() puts VMA_LOCK_OFFSET in vm_refcnt before it waits, so readers that
        // come while it waits fail vma_start_read() and fall back to the mmap lock.
        var r = TestKit.Dfs(Scenarios.PerVmaReaderWhileWriterWaits());
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        Assert.Equal(new[] { "abort", "ok" }, r.Outcomes.Select(o => o.Outcome["R1"]).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TheOrphanPteShowsAtExitAsABadRssCounter()
    {
        // exit_mmap() zaps only VMAs: the page the stale fault mapped stays counted, and check_mm()
        // reports it when the mm is freed.
        var t = Scenarios.FaultVsMunmap(revalidate: false, exit: true);
        var r = TestKit.Dfs(t);
        Assert.True(r.Complete);
        var v = Assert.Single(r.Violations);
        Assert.Equal(Invariants.BadRssCounter, v.Invariant);
        Assert.Contains("type:MM_ANONPAGES val:1", v.Message);
        Assert.Equal(1, v.Trace.Preemptions);
        TestKit.AssertTracesReplay(t, r);
    }

    [Fact]
    public void TheFixedFaultLeavesEveryRssCounterAtZeroAtExit()
    {
        var r = TestKit.Dfs(Scenarios.FaultVsMunmap(revalidate: true, exit: true));
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        Assert.Equal(new[] { "SIGSEGV", "ok" }, r.Outcomes.Select(o => o.Outcome["fault"]).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AFaultThatLooksTheVmaUpAgainIsProvenClean()
    {
        var r = TestKit.Dfs(Scenarios.FaultVsMunmap(revalidate: true), condition: s_noOrphanPte);
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        Assert.True(r.ConditionVerdict!.Holds);
        // Both orders happen: the fault before munmap, and after it (SIGSEGV).
        Assert.Equal(new[] { "SIGSEGV", "ok" }, r.Outcomes.Select(o => o.Outcome["fault"]).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AStoreRacingMunmapOnTheRealKernelIsClean()
    {
        var r = TestKit.Dfs(Scenarios.StoreVsMunmap(), workers: 2);
        Assert.True(r.Complete);
        Assert.Empty(r.Violations);
        var stores = r.Outcomes.Select(o => o.Outcome["T0:store0"]).ToHashSet();
        Assert.Equal(new[] { "SIGSEGV", "ok" }, stores.Order(StringComparer.Ordinal));
        Assert.All(r.Outcomes, o => Assert.Equal("0", o.Outcome["T1:munmap"]));
    }
}

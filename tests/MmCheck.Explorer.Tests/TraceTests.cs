using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

public class TraceTests
{
    [Fact]
    public void ATraceSurvivesItsFileFormat()
    {
        var r = TestKit.Dfs(Scenarios.Abba(sameOrder: false));
        var v = r.Violations.First(x => x.Invariant == Invariants.Deadlock);
        string path = Path.Combine(Path.GetTempPath(), $"mmcheck-trace-{Guid.NewGuid():N}.json");
        try
        {
            v.Trace.Save(path);
            var back = Trace.Load(path);
            Assert.Equal(v.Trace.ToJson(), back.ToJson());
            Assert.Equal(Invariants.Deadlock, back.Invariant);
            Assert.Equal(v.Steps, back.Steps.Count);
        }
        finally
        {
            System.IO.File.Delete(path);
        }
        Assert.Throws<FormatException>(() => Trace.FromJson("{\"format\":\"something-else\"}"));
        Assert.Throws<FormatException>(() => Trace.FromJson("not json"));
    }

    [Fact]
    public void TheReplayStrategyFollowsATraceFile()
    {
        var t = Scenarios.Abba(sameOrder: false);
        var v = TestKit.Dfs(t).Violations.First(x => x.Invariant == Invariants.Deadlock);
        var r = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Replay, ReplayTrace = v.Trace, RecordEffects = true });
        Assert.Null(r.ReplayMismatch);
        Assert.True(TestKit.Has(r, Invariants.Deadlock));
        Assert.NotNull(r.Violations[0].Run);
    }

    [Fact]
    public void ATraceThatNoLongerFitsIsReportedAtTheStepWhereItDiverges()
    {
        var t = Scenarios.FaultVsZap(revalidate: false);
        var v = TestKit.Dfs(t).Violations[0];
        var steps = v.Trace.Steps.ToList();
        int at = steps.Count / 2;
        steps[at] = steps[at] with { Function = "some_function_the_model_no_longer_has" };
        var changed = new Trace { Scenario = v.Trace.Scenario, Strategy = "dfs", Threads = v.Trace.Threads, Steps = steps };
        var replay = Replayer.Replay(t, changed);
        var mm = Assert.IsType<ReplayMismatch>(replay.Mismatch);
        Assert.Equal(at, mm.Step);
        Assert.Contains("some_function_the_model_no_longer_has", mm.Expected);
        Assert.Contains(steps[at].Kind.ToString(), mm.Actual);

        // A thread that cannot run at that point.
        var other = steps.ToList();
        other[0] = other[0] with { Thread = 7 };
        var bad = Replayer.Replay(t, new Trace { Scenario = "x", Strategy = "dfs", Threads = v.Trace.Threads, Steps = other });
        Assert.Equal(0, bad.Mismatch!.Step);

        var viaExplore = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Replay, ReplayTrace = changed });
        Assert.False(viaExplore.Complete);
        Assert.Contains(viaExplore.Notes, n => n.Contains($"step {at}", StringComparison.Ordinal));
    }

    [Fact]
    public void TheReadableTraceDrawsThreadColumnsWithKernelNamesAndEffects()
    {
        var t = Scenarios.StoreVsMunmap();
        var r = TestKit.Dfs(t);
        var witness = r.OutcomeWitnesses.First(kv => kv.Key["T0:store0"] == "ok").Value;
        var run = Replayer.Replay(t, witness).Run;
        string text = TracePrinter.Print(run);
        string[] lines = text.Split('\n');
        // Header: one column per thread.
        Assert.Contains(lines, l => l.StartsWith("T0", StringComparison.Ordinal) && l.Contains("T1", StringComparison.Ordinal));
        // T1's steps are indented into the second column.
        Assert.Contains(lines, l => l.StartsWith(new string(' ', TracePrinter.ColumnWidth), StringComparison.Ordinal) && l.Contains("munmap", StringComparison.Ordinal));
        // Kernel functions by their C names, locks by name, effects old → new.
        Assert.Contains("do_user_addr_fault", text);
        Assert.Contains("mmap_lock", text);
        Assert.Contains("→", text);
        Assert.Contains("vma", text);
        Assert.Contains("outcome: T0:store0=ok", text);
        Assert.All(run.Steps, s => Assert.DoesNotMatch("^[A-Z][a-z]+[A-Z]", s.Function));
        // What the user access did: the value and frame, or the signal.
        Assert.Matches("stored 0x22 at [0-9a-f]+ \\(pfn [0-9a-f]+\\)", text);
        var segv = Replayer.Replay(t, r.OutcomeWitnesses.First(kv => kv.Key["T0:store0"] == "SIGSEGV").Value).Run;
        Assert.Contains("SIGSEGV on the store to ", TracePrinter.Print(segv), StringComparison.Ordinal);
    }

    [Fact]
    public void LockStepsShowThePrimitiveTheKernelCallsAndTheLockByName()
    {
        var t = Scenarios.StoreVsMunmap();
        var r = TestKit.Dfs(t);
        var run = Replayer.Replay(t, r.OutcomeWitnesses.First(kv => kv.Key["T0:store0"] == "ok").Value).Run;
        var locks = run.Steps.Where(s => s.Kind is SchedPointKind.LockAcquire or SchedPointKind.LockRelease).ToList();
        Assert.NotEmpty(locks);
        Assert.All(locks, s =>
        {
            Assert.NotNull(s.LockCall);
            Assert.DoesNotContain("lock#", s.Object, StringComparison.Ordinal);
            Assert.StartsWith($"{s.Function}: {s.LockCall}({s.Object})", TracePrinter.Describe(s), StringComparison.Ordinal);
        });
        Assert.All(run.Steps.Where(s => s.LockCall is not null), s => Assert.Contains(s, locks));
        // munmap takes mmap_lock for write, write-locks the VMA, and downgrades before zapping
        // (vms_complete_munmap_vmas()): a downgrade is not an unlock.
        var munmap = locks.Where(s => s.Thread == 1).Select(s => $"{s.LockCall} {s.Object}").ToList();
        Assert.Contains(munmap, c => c.StartsWith("down_write mm#", StringComparison.Ordinal) && c.EndsWith(".mmap_lock", StringComparison.Ordinal));
        Assert.Contains(munmap, c => c.StartsWith("vma_start_write vma#", StringComparison.Ordinal));
        Assert.Contains(munmap, c => c.StartsWith("downgrade_write mm#", StringComparison.Ordinal));
        Assert.Contains(munmap, c => c.StartsWith("up_read mm#", StringComparison.Ordinal));
        Assert.DoesNotContain(munmap, c => c.StartsWith("up_write mm#", StringComparison.Ordinal));
        // A task woken inside the call it slept in.
        var woken = new StepView(9, 1, "vfio_pci_mmap_fault", SchedPointKind.LockAcquire, true, "vfio0.vma_lock", "mutex_lock", false, [], [], []);
        Assert.Equal("vfio_pci_mmap_fault: mutex_lock(vfio0.vma_lock): woken", TracePrinter.Describe(woken));
    }

    [Fact]
    public void KernelSymbolsMapCSharpNamesToCNames()
    {
        Assert.Equal("do_user_addr_fault", KernelSymbols.CName("DoUserAddrFault"));
        Assert.Equal("zap_pte_range", KernelSymbols.CName("ZapPteRange"));
        Assert.Equal("store", KernelSymbols.CName("store"));
        Assert.Equal("arch/x86/mm/fault.c", KernelSymbols.File("DoUserAddrFault"));
    }

    [Fact]
    public void CounterexamplesAreMinimised()
    {
        var t = Scenarios.Increment(locked: false);
        var cond = new Condition(Quantifier.NotExists, o => o["x"] == "1");
        var r = TestKit.Dfs(t, condition: cond);
        var w = r.ConditionVerdict!.Witness!;
        // T0 loads, T1 runs entirely, T0 stores: one preemption, and no step more than needed.
        Assert.Equal(1, w.Preemptions);
        var replay = Replayer.Replay(t, w);
        Assert.Equal("1", replay.Outcome!["x"]);
    }
}

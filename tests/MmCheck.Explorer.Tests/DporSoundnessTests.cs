using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

/// <summary>DPOR must see exactly what plain DFS sees: the same final states and the same violations.</summary>
public class DporSoundnessTests
{
    private static (HashSet<string> Outcomes, HashSet<string> Violations, ExplorationResult R) Run(ExplorationTarget t, bool dpor, int split = int.MaxValue, int workers = 1, int plainBudget = 6_000)
    {
        var r = Explorer.Explore(t, new ExplorationOptions
        {
            Strategy = Strategy.Dfs,
            Dpor = dpor,
            SplitDepth = split,
            Workers = workers,
            Minimize = false,
            MaxSchedules = dpor ? 100_000 : plainBudget,
        });
        return ([.. r.Outcomes.Select(o => o.Outcome.ToString())],
            [.. r.Violations.Select(v => ViolationClass.Of(v.Invariant, v.Message))], r);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void DporFindsTheSameStatesAsPlainDfs(int seed) => SameAsPlainDfs(RandomPrograms.Make(seed), plainBudget: 6_000);

    /// <summary>Readers of an rw_semaphore that neither queue nor leave with a waiter only read its
    /// lock word, so DPOR lets them commute; writers, queued readers and trylocks must still be
    /// ordered against them wherever the order changes what happens. Nested sections over two
    /// rwsems and two mutexes, so lock-order deadlocks too.</summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public void DporFindsTheSameStatesAsPlainDfsWithRwSemaphores(int seed) =>
        SameAsPlainDfs(RandomPrograms.Make(seed, threads: 2, ops: 3, rwsem: true), plainBudget: 40_000);

    /// <summary>Every program of two or three threads of one section each, and of two threads of
    /// two sections each, over one rw_semaphore (<see cref="RandomPrograms.RwSections"/>): small
    /// enough for plain DFS to cover, so each is checked in full.</summary>
    [Theory]
    [MemberData(nameof(RwSectionPrograms))]
    public void RwSemaphoreSectionsCommuteOnlyWhereTheyMay(string[] threads) =>
        SameAsPlainDfs(RandomPrograms.RwSections(threads), plainBudget: 100_000, complete: true);

    /// <summary>Readers that neither queue nor leave with a waiter are one Mazurkiewicz trace:
    /// DPOR runs them once whatever their number, where plain DFS runs every order.</summary>
    [Theory]
    [InlineData(2, "RR")]
    [InlineData(3, "R")]
    public void ReadersAloneAreExploredOnce(int readers, string sections)
    {
        var t = RandomPrograms.RwSections([.. Enumerable.Repeat(sections, readers)]);
        var dpor = Run(t, dpor: true);
        var plain = Run(t, dpor: false, plainBudget: 100_000);
        Assert.True(dpor.R.Complete && plain.R.Complete);
        Assert.Equal(1, dpor.R.Schedules);
        Assert.True(plain.R.Schedules > 10, $"plain DFS ran {plain.R.Schedules}");
        Assert.Equal(plain.Outcomes.Order(), dpor.Outcomes.Order());
    }

    /// <summary>Per-VMA lock readers commute with each other but not with vma_start_write() or with
    /// the mmap_write_unlock() that ends the VMA's write lock: mm_lock_seq lives with the mmap
    /// lock's word, which a reader reads.</summary>
    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 1)]
    public void PerVmaReadersSeeWhatPlainDfsSees(int readers, int writes)
    {
        var outcomes = SameAsPlainDfs(Scenarios.PerVmaReadersVsWriter(readers, writes), plainBudget: 300_000, complete: true);
        Assert.Contains(outcomes, o => o.Contains("abort", StringComparison.Ordinal));
        Assert.Contains(outcomes, o => o.Contains("R0=1", StringComparison.Ordinal));
    }

    /// <summary>T0 writes the data word, T1 sets and clears the flag word: three steps on two
    /// objects, none of them in conflict, so one Mazurkiewicz trace. The invariant (flag set only
    /// with the data written) breaks only in the states where T1 set the flag before T0 wrote the
    /// data, which no final state shows and which the default order (T0 first) never passes
    /// through. The checks read the whole state, so DPOR must order the steps after which they run
    /// as plain DFS does; with the checks off it runs the trace once.</summary>
    [Fact]
    public void AStateInvariantBrokenOnlyBetweenStepsIsFoundAsPlainDfsFindsIt()
    {
        var t = Scenarios.FlagBeforeData();
        var dpor = FindsWhatPlainDfsFinds(t, Scenarios.FlagBeforeDataInvariant);

        var withoutChecks = Explorer.Explore(t, new ExplorationOptions
        {
            Strategy = Strategy.Dfs,
            Minimize = false,
            InvariantChecks = InvariantCheckMode.Off,
        });
        Assert.True(withoutChecks.Complete);
        Assert.Equal(1, withoutChecks.Schedules);
        Assert.Empty(withoutChecks.Violations);
        Assert.True(dpor.Schedules > 1, $"DPOR ran {dpor.Schedules} schedule(s)");
    }

    /// <summary>A check that waits while a page-table lock's holder is mid-update must still see
    /// every state some interleaving shows it: a holder that has not written under the lock yet
    /// does not hold it up (taking the lock writes nothing the checks read, so DPOR does not order
    /// it against the other thread's stores), and its release after writing is ordered like a
    /// write. The writer-first case fails when any holder holds the checks up (the rule before
    /// 2026-11-22); the flagger-first case needs the state that is quiet only once the writer has
    /// released the lock.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ACheckWaitingForPageTableLocksSeesWhatPlainDfsSees(bool writerFirst)
    {
        FindsWhatPlainDfsFinds(Scenarios.FlagAndDataUnderPtl(writerFirst), Scenarios.FlagWhileQuietInvariant);
    }

    /// <summary>An invariant that declares what it reads (here user memory only) is honoured: the
    /// steps writing those words are ordered for it as for one that reads everything.</summary>
    [Fact]
    public void AnInvariantReadingUserMemoryOrdersTheStoresItReads()
    {
        FindsWhatPlainDfsFinds(Scenarios.FlagBeforeData(reads: ObjKinds.Word), Scenarios.FlagBeforeDataInvariant);
    }

    /// <summary>Explores <paramref name="t"/> completely with and without DPOR: plain DFS reports
    /// <paramref name="invariant"/>, and DPOR the same violations and final states. Returns DPOR's result.</summary>
    private static ExplorationResult FindsWhatPlainDfsFinds(ExplorationTarget t, string invariant)
    {
        var dpor = Run(t, dpor: true);
        var plain = Run(t, dpor: false, plainBudget: 1_000);
        Assert.True(dpor.R.Complete && plain.R.Complete);
        Assert.Contains(plain.R.Violations, v => v.Invariant == invariant);
        Assert.Equal(plain.Violations.Order(), dpor.Violations.Order());
        Assert.Equal(plain.Outcomes.Order(), dpor.Outcomes.Order());
        return dpor.R;
    }

    /// <summary>No built-in invariant reads user memory, so stores that change nothing else are
    /// neither checked after nor ordered for the checks: with only the built-in invariants the
    /// stores of <see cref="Scenarios.FlagBeforeData"/> are one trace, run once as with the checks off.</summary>
    [Fact]
    public void StoresToUserMemoryAreNotOrderedForTheBuiltInChecks()
    {
        var t = Scenarios.FlagBeforeData(register: false);
        var on = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Dfs, Minimize = false });
        var off = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Dfs, Minimize = false, InvariantChecks = InvariantCheckMode.Off });
        Assert.True(on.Complete && off.Complete);
        Assert.Equal(1, off.Schedules);
        Assert.Equal(off.Schedules, on.Schedules);
        Assert.Empty(on.Violations);
    }

    public static TheoryData<string[]> RwSectionPrograms()
    {
        string[] one = ["R", "W", "T"];
        var d = new TheoryData<string[]>();
        foreach (var a in one)
        {
            foreach (var b in one)
            {
                d.Add([a, b]);
                foreach (var c in one)
                {
                    d.Add([a, b, c]);
                }
            }
        }
        var two = one.SelectMany(a => one.Select(b => a + b)).ToArray();
        foreach (var a in two)
        {
            foreach (var b in two)
            {
                d.Add([a, b]);
            }
        }
        return d;
    }

    /// <summary>Checks DPOR against plain DFS within <paramref name="plainBudget"/> schedules (which
    /// must suffice when <paramref name="complete"/>); returns plain DFS's final states.</summary>
    private static HashSet<string> SameAsPlainDfs(ExplorationTarget t, int plainBudget, bool complete = false)
    {
        var dpor = Run(t, dpor: true);
        Assert.True(dpor.R.Complete);
        var plain = Run(t, dpor: false, plainBudget: plainBudget);
        Assert.True(plain.R.Complete || !complete, $"plain DFS stopped at {plain.R.Schedules} schedules");
        if (plain.R.Complete)
        {
            Assert.Equal(plain.Outcomes.Order(), dpor.Outcomes.Order());
            Assert.Equal(plain.Violations.Order(), dpor.Violations.Order());
            Assert.True(dpor.R.Schedules <= plain.R.Schedules, $"dpor {dpor.R.Schedules} > plain {plain.R.Schedules}");
        }
        else
        {
            Assert.Superset(plain.Outcomes, dpor.Outcomes);
            Assert.Superset(plain.Violations, dpor.Violations);
        }

        // Without a shared top (one sequential unit), or on two workers: the same.
        var local = Run(t, dpor: true, split: 0);
        Assert.Equal(dpor.Outcomes.Order(), local.Outcomes.Order());
        Assert.Equal(dpor.Violations.Order(), local.Violations.Order());
        var two = Run(t, dpor: true, workers: 2);
        Assert.Equal(TestKit.Fingerprint(dpor.R), TestKit.Fingerprint(two.R));
        return plain.Outcomes;
    }

    public static TheoryData<int> Seeds()
    {
        var d = new TheoryData<int>();
        for (int i = 1; i <= 30; i++)
        {
            d.Add(i);
        }
        return d;
    }
}

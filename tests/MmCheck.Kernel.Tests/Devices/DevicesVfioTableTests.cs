using Linux;
using Strategy = Linux.Variants.VfioPciFaultStrategy;

namespace MmCheck.Kernel.Tests;

/// <summary>The per-strategy fault/PTE table, on a 4 MiB BAR (1024 pages, two PMDs) to stay fast.</summary>
public class DevicesVfioTableTests
{
    private const ulong Bar = 4UL << 20;

    private static VfioStrategyRow Row(Strategy s, long pages) => VfioStrategyTable.Run(s, Bar, pages);

    [Fact]
    public void InsertPfnTakesAFaultPerPageAndMapsOnlyWhatWasTouched()
    {
        var one = Row(Strategy.InsertPfn, 1);
        Assert.Equal((1L, 2L, 1L, 0L, 0L), (one.HandlerCalls, one.PgFault, one.Ptes, one.Pmds, one.Puds));
        var sixteen = Row(Strategy.InsertPfn, 16);
        Assert.Equal((16L, 32L, 16L), (sixteen.HandlerCalls, sixteen.PgFault, sixteen.Ptes));
        var all = Row(Strategy.InsertPfn, 1024);
        Assert.Equal((1024L, 1024L), (all.HandlerCalls, all.Ptes));
        Assert.Equal("-", all.Findings);
    }

    [Theory]
    [InlineData(Strategy.InsertFullVma, "-")]
    [InlineData(Strategy.RemapDropMmapLock, "-")]
    // v6.9: track_pfn_remap()'s vm_flags_set(VM_PAT) and remap_pfn_range_internal()'s, both under
    // the mmap read lock (the two frames of Yan Zhao's trace). v5.12: flags written directly.
    [InlineData(Strategy.RemapVmaList, "lock-assert x2")]
    [InlineData(Strategy.RemapNoListCheck, "-")]
    public void WholeVmaStrategiesFaultOnceAndMapEverything(Strategy s, string findings)
    {
        foreach (long n in new long[] { 1, 16, 1024 })
        {
            var r = Row(s, n);
            Assert.Equal(1, r.HandlerCalls);
            Assert.Equal(2, r.PgFault);
            Assert.Equal(1024, r.Ptes);
            Assert.Equal(0, r.Pmds);
            Assert.Equal(findings, r.Findings);
        }
    }

    [Theory]
    [InlineData(Strategy.Huge)]
    [InlineData(Strategy.HugeV612)]
    public void HugeStrategiesMapPmdsFromUnderTheVmaLock(Strategy s)
    {
        var one = Row(s, 1);
        Assert.Equal((1L, 1L, 0L, 1L), (one.HandlerCalls, one.PgFault, one.Ptes, one.Pmds));
        var sixteen = Row(s, 16);
        Assert.Equal((1L, 1L), (sixteen.HandlerCalls, sixteen.Pmds));
        var all = Row(s, 1024);
        Assert.Equal((2L, 2L, 0L, 2L), (all.HandlerCalls, all.PgFault, all.Ptes, all.Pmds));
        Assert.Equal("-", all.Findings);
    }

    [Fact]
    public void TheTableFormatsAsMarkdown()
    {
        var rows = VfioStrategyTable.Build(Bar, [1], [Strategy.Huge, Strategy.InsertPfn]);
        string md = VfioStrategyTable.Format(rows);
        Assert.Contains("| huge | v6.15+ | 1 | 1 | 1 | 0 | 1 | 0 | - |", md);
        // aac6db75a9fc was merged together with d71a989cf5d9 for v6.10-rc4: no release ran it alone.
        Assert.Contains("| insert_pfn | aac6db75a9fc alone | 1 | 2 | 1 | 1 | 0 | 0 | - |", md);
    }

    [Fact]
    public void AnUnalignedFirstFaultDefeatsTheV612HugeHandlerButNotTheAlignedOne()
    {
        // From page 1: v6.12 wants the faulting address itself aligned, falls back to a PTE, and the
        // PTE table then blocks every later PMD in that range ("vfio/pci: Align huge faults to order").
        var old = VfioStrategyTable.Run(Strategy.HugeV612, Bar, 16, firstPage: 1);
        Assert.Equal((16L, 0L), (old.Ptes, old.Pmds));
        var cur = VfioStrategyTable.Run(Strategy.Huge, Bar, 16, firstPage: 1);
        Assert.Equal((0L, 1L, 1L), (cur.Ptes, cur.Pmds, cur.HandlerCalls));
        Assert.Contains("16 from page 1", VfioStrategyTable.Format([old]));
    }
}

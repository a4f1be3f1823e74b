using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>The CPU model's TLB and the tlb-coherent checks.</summary>
public class TlbTests
{
    [Fact]
    public void AnAccessFillsTheTlbAndMunmapFlushesIt()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        Assert.True(p.T.Cpu.Tlb.TryGet(p.Mm.Id, a >> 12, out var e));
        Assert.True(e.Writable && e.Dirty);
        p.Munmap(a, 4096);
        Assert.False(p.T.Cpu.Tlb.TryGet(p.Mm.Id, a >> 12, out _));
        p.AssertClean();
    }

    [Fact]
    public void ClearingAPteWithoutAFlushIsCaughtOnTheWayBackToUserSpace()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var ptep = p.K.WalkPte(p.Mm, a)!.Value;
        p.K.Run(p.T, async () =>
        {
            p.K.PtepGetAndClear(p.Mm, a, ptep);
            await p.K.ReturnToUser(p.T, "buggy_zap");
        });
        Assert.Contains(p.K.Findings, f => f.Invariant == Invariants.TlbCoherent);
    }

    [Fact]
    public void ClearingAPteWithPtepClearFlushIsClean()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var ptep = p.K.WalkPte(p.Mm, a)!.Value;
        p.K.Run(p.T, async () =>
        {
            p.K.PtepClearFlush(p.Vmas[0], a, ptep);
            await p.K.ReturnToUser(p.T, "correct_zap");
        });
        Assert.DoesNotContain(p.K.Findings, f => f.Invariant == Invariants.TlbCoherent);
    }

    [Fact]
    public void FreeingAPageAnotherCpuStillCachesIsCaught()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var ptep = p.K.WalkPte(p.Mm, a)!.Value;
        ulong pfn = p.Pagemap(a).Pfn;
        p.K.Run(p.T, () =>
        {
            var pte = p.K.PtepGetAndClear(p.Mm, a, ptep);
            p.K.FolioRemoveRmapPte(new Folio(pfn), new Page(pfn), p.Vmas[0]);
            p.K.FolioPut(new Folio(pfn));
            return ValueTask.CompletedTask;
        });
        Assert.Contains(p.K.Findings, f => f.Invariant == Invariants.TlbCoherent && f.Message.Contains("freed"));
    }

    [Fact]
    public void MprotectReadOnlyFlushesTheWritableEntry()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        Assert.Equal(0L, p.Mprotect(a, 4096, PROT_READ));
        Assert.False(p.T.Cpu.Tlb.TryGet(p.Mm.Id, a >> 12, out var e) && e.Writable);
        Assert.Equal(SIGSEGV, p.Store(a, 2).Signal);
        p.AssertClean();
    }

    [Fact]
    public void ForkWriteProtectsAndFlushesTheParentsEntries()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var c = p.Fork();
        Assert.False(p.T.Cpu.Tlb.TryGet(p.Mm.Id, a >> 12, out var e) && e.Writable);
        p.Write(a, 2);
        Assert.Equal(1UL, c.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void HardwareWalkSetsAccessedAndDirty()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var pte = new Pte(p.K.WalkPte(p.Mm, a)!.Value.Table.Entries[p.K.Paging.PteIndex(a)]);
        Assert.True(PgTable.PteYoung(pte));
        Assert.True(PgTable.PteDirty(pte));
    }

    /// <summary>A second thread of <paramref name="p"/>'s process, on its own CPU.</summary>
    private static Proc Thread(Proc p) => new(p.K, p.K.CreateThread(p.T, "thread"));

    private static bool Cached(Proc p, ulong a, out TlbEntry e) => p.T.Cpu.Tlb.TryGet(p.Mm.Id, a >> 12, out e);

    [Fact]
    public void AFaultThatFillsAnEmptyPteFlushesNothingBecauseNonPresentEntriesAreNotCached()
    {
        var p = Proc.Boot();
        var t2 = Thread(p);
        ulong a = p.MmapAnon(1);
        // The first access faults: the #PF leaves no TLB entry, the fault installs the PTE, the retry fills it.
        Assert.False(Cached(t2, a, out _));
        t2.Write(a, 7);
        Assert.True(Cached(t2, a, out var e) && e.Writable && e.Dirty);
        Assert.False(Cached(p, a, out _));
        p.AssertClean();
    }

    [Fact]
    public void ReusingAnAnonPageLeavesAnotherCpusReadOnlyEntryStaleAsX86Does()
    {
        // do_wp_page() → wp_page_reuse() → ptep_set_access_flags(): x86 sets RW without a flush;
        // another CPU's read-only entry stays until it takes a (spurious) write fault there.
        var p = Proc.Boot();
        var t2 = Thread(p);
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var c = p.Fork();
        c.Exit();
        // The parent's PTE is read-only and the page no longer shared: the next write reuses it.
        Assert.Equal(1UL, t2.Read(a));
        Assert.True(Cached(t2, a, out var ro) && !ro.Writable);
        ulong pfn = p.Pagemap(a).Pfn;
        p.Write(a, 2);
        Assert.Equal(pfn, p.Pagemap(a).Pfn);
        Assert.True(Cached(t2, a, out var stale) && !stale.Writable && stale.Pfn == pfn);
        // Harmless: same frame, fewer rights. The return-to-user check accepts it.
        p.AssertClean();
        // The other CPU's next write refills its entry writable.
        t2.Write(a, 3);
        Assert.True(Cached(t2, a, out var rw) && rw.Writable);
        Assert.Equal(3UL, p.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void CopyingOnWriteFlushesTheOldFrameFromEveryCpu()
    {
        // wp_page_copy() → ptep_clear_flush(): no CPU may keep translating to the old frame.
        var p = Proc.Boot();
        var t2 = Thread(p);
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var c = p.Fork();
        ulong shared = p.Pagemap(a).Pfn;
        Assert.Equal(1UL, t2.Read(a));
        Assert.True(Cached(t2, a, out var e) && e.Pfn == shared);
        p.Write(a, 2);
        Assert.NotEqual(shared, p.Pagemap(a).Pfn);
        Assert.False(Cached(t2, a, out _));
        Assert.Equal(2UL, t2.Read(a));
        Assert.Equal(1UL, c.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void MadviseDontneedShootsDownEveryCpuOfTheMm()
    {
        var p = Proc.Boot();
        var t2 = Thread(p);
        ulong a = p.MmapAnon(2);
        p.Write(a, 1);
        p.Write(a + 4096, 2);
        Assert.Equal(1UL, t2.Read(a));
        Assert.True(Cached(t2, a, out _));
        Assert.Equal(0L, p.Madvise(a, 4096, MADV_DONTNEED));
        Assert.False(Cached(t2, a, out _));
        Assert.False(Cached(p, a, out _));
        // Outside the range nothing is flushed.
        Assert.True(Cached(p, a + 4096, out _));
        Assert.Equal(0UL, t2.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void MprotectReadOnlyShootsDownTheOtherCpuToo()
    {
        var p = Proc.Boot();
        var t2 = Thread(p);
        ulong a = p.MmapAnon(1);
        t2.Write(a, 1);
        Assert.True(Cached(t2, a, out var e) && e.Writable);
        Assert.Equal(0L, p.Mprotect(a, 4096, PROT_READ));
        Assert.False(Cached(t2, a, out _));
        Assert.Equal(SIGSEGV, t2.Store(a, 2).Signal);
        Assert.Equal(1UL, t2.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void MprotectBackToWritableAlsoFlushesBecauseRwChanged()
    {
        // pte_needs_flush(): a change of RW is in flush_on_change, even when it adds the right.
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        Assert.Equal(0L, p.Mprotect(a, 4096, PROT_READ));
        Assert.Equal(1UL, p.Read(a));
        Assert.True(Cached(p, a, out var ro) && !ro.Writable);
        Assert.Equal(0L, p.Mprotect(a, 4096, PROT_READ | PROT_WRITE));
        Assert.False(Cached(p, a, out _));
        p.AssertClean();
    }

    [Fact]
    public void PteNeedsFlushFollowsX86Rules()
    {
        var pte = PgTable.PfnPte(5, new PgProt(X86Pte.PAGE_SHARED | X86Pte._PAGE_DIRTY));
        // Non-present entries are never cached.
        Assert.False(Linux.Kernel.PteNeedsFlush(new Pte(0), pte));
        // A and D being set needs no flush (the CPU sets them itself); clearing D does.
        Assert.False(Linux.Kernel.PteNeedsFlush(PgTable.PteMkclean(pte), pte));
        Assert.True(Linux.Kernel.PteNeedsFlush(pte, PgTable.PteMkclean(pte)));
        Assert.False(Linux.Kernel.PteNeedsFlush(pte, PgTable.PteMkold(pte)));
        // Software bits never need a flush; a new PFN always does.
        Assert.False(Linux.Kernel.PteNeedsFlush(pte, PgTable.PteMksoftDirty(pte)));
        Assert.True(Linux.Kernel.PteNeedsFlush(pte, PgTable.PfnPte(6, new PgProt(X86Pte.PAGE_SHARED | X86Pte._PAGE_DIRTY))));
        // RW is in flush_on_change: removing and adding write permission both flush.
        Assert.True(Linux.Kernel.PteNeedsFlush(pte, PgTable.PteWrprotect(pte)));
        Assert.True(Linux.Kernel.PteNeedsFlush(PgTable.PteWrprotect(pte), pte));
    }

    [Fact]
    public void ExitOfAThreadlessMmFlushesItsTranslationsOnEveryCpu()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var c = p.Fork();
        Assert.Equal(1UL, c.Read(a));
        Assert.True(Cached(c, a, out _));
        int mm = c.Mm.Id;
        c.Exit();
        Assert.False(c.T.Cpu.Tlb.TryGet(mm, a >> 12, out _));
        p.AssertClean();
    }
}

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
}

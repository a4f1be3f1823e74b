using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// What user space observes of an address space: /proc/pid/pagemap, /proc/kpagecount,
/// /proc/kpageflags, smaps and maps (fs/proc/task_mmu.c, fs/proc/page.c).
/// </summary>
public class ObservationTests
{
    [Fact]
    public void PagemapBitsSitWhereTheKernelDocumentsThem()
    {
        // Documentation/admin-guide/mm/pagemap.rst.
        Assert.Equal(1UL << 63, PagemapEntry.PM_PRESENT);
        Assert.Equal(1UL << 62, PagemapEntry.PM_SWAP);
        Assert.Equal(1UL << 61, PagemapEntry.PM_FILE);
        Assert.Equal(1UL << 58, PagemapEntry.PM_GUARD_REGION);
        Assert.Equal(1UL << 57, PagemapEntry.PM_UFFD_WP);
        Assert.Equal(1UL << 56, PagemapEntry.PM_MMAP_EXCLUSIVE);
        Assert.Equal(1UL << 55, PagemapEntry.PM_SOFT_DIRTY);
        Assert.Equal((1UL << 55) - 1, PagemapEntry.PM_PFRAME_MASK);
    }

    [Fact]
    public void PagemapOfAnUnmappedOrUntouchedAddressIsEmpty()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        Assert.Equal(0UL, p.Pagemap(a).Raw);
        Assert.Equal(0L, p.Munmap(a + 4096, 4096));
        Assert.Equal(0UL, p.Pagemap(a + 4096).Raw);
    }

    [Fact]
    public void PagemapOfAnExclusiveAnonPageIsPresentExclusiveWithItsPfn()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var e = p.Pagemap(a);
        ulong pfn = PgTable.PtePfn(p.K.PtepGet(p.K.WalkPte(p.Mm, a)!.Value));
        Assert.Equal(PagemapEntry.PM_PRESENT | PagemapEntry.PM_MMAP_EXCLUSIVE | pfn, e.Raw);
    }

    [Fact]
    public void PagemapOfTheZeroPageIsPresentButNeitherExclusiveNorFile()
    {
        // The zero page is a special PTE: vm_normal_page() is NULL, so neither PM_FILE nor
        // PM_MMAP_EXCLUSIVE can be derived from a folio.
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Read(a);
        Assert.Equal(PagemapEntry.PM_PRESENT | p.K.ZeroPfn, p.Pagemap(a).Raw);
    }

    [Fact]
    public void PagemapMarksPageCachePagesAsFileAndExclusiveOnlyWhileMappedOnce()
    {
        var p = Proc.Boot();
        long fd = p.Memfd(1);
        ulong a = p.MmapFile(fd, 1, MAP_SHARED);
        ulong b = (ulong)p.Mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
        p.Write(a, 1);
        var e = p.Pagemap(a);
        Assert.True(e.Present && e.File && e.Exclusive);
        Assert.Equal(1UL, p.Read(b));
        Assert.False(p.Pagemap(a).Exclusive);
        Assert.Equal(p.Pagemap(a).Pfn, p.Pagemap(b).Pfn);
        Assert.Equal(2, p.K.KpageCount(p.Pagemap(a).Pfn));
    }

    [Fact]
    public void PagemapOfAGuardRegionReportsTheGuardBitAndNotPresent()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        Assert.Equal(0L, p.Madvise(a, 4096, MADV_GUARD_INSTALL));
        var e = p.Pagemap(a);
        Assert.True(e.Guard);
        Assert.False(e.Present);
        // A guard marker is a PTE marker: a swap-format entry.
        Assert.True(e.Swapped);
    }

    [Fact]
    public void PagemapShowsSoftDirtyOnlyWithTheConfigOption()
    {
        foreach (bool config in new[] { false, true })
        {
            var p = Proc.Boot(new KernelConfig { MemSoftDirty = config });
            ulong a = p.MmapAnon(1);
            p.Write(a, 1);
            Assert.Equal(config, p.Pagemap(a).SoftDirty);
        }
    }

    [Fact]
    public void KpagecountFollowsMappingsAcrossForkCowAndExit()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        ulong pfn = p.Pagemap(a).Pfn;
        Assert.Equal(1, p.K.KpageCount(pfn));
        var c1 = p.Fork();
        var c2 = p.Fork();
        Assert.Equal(3, p.K.KpageCount(pfn));
        c1.Write(a, 2);
        Assert.Equal(2, p.K.KpageCount(pfn));
        Assert.Equal(1, p.K.KpageCount(c1.Pagemap(a).Pfn));
        c2.Exit();
        Assert.Equal(1, p.K.KpageCount(pfn));
        Assert.True(p.Pagemap(a).Exclusive);
        p.AssertClean();
    }

    [Fact]
    public void SmapsCountsRssAnonymousAndPrivateVersusShared()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Write(a, 1);
        p.Write(a + 4096, 2);
        p.Read(a + 2 * 4096);   // the zero page: not in Rss
        var s = p.K.Smaps(p.Vmas[0]);
        Assert.Equal(2 * 4096UL, s.Rss);
        Assert.Equal(2 * 4096UL, s.Anonymous);
        Assert.Equal(2 * 4096UL, s.PrivateDirty);
        Assert.Equal(0UL, s.SharedDirty + s.SharedClean);
        var c = p.Fork();
        s = p.K.Smaps(p.K.VmaAt(p.Mm, a)!);
        // After fork both pages are mapped twice and referenced twice: shared.
        Assert.Equal(2 * 4096UL, s.Rss);
        Assert.Equal(2 * 4096UL, s.SharedDirty + s.SharedClean);
        Assert.Equal(0UL, s.PrivateDirty + s.PrivateClean);
        c.Write(a, 3);
        s = p.K.Smaps(p.K.VmaAt(p.Mm, a)!);
        Assert.Equal(4096UL, s.SharedDirty + s.SharedClean);
        Assert.Equal(4096UL, s.PrivateDirty + s.PrivateClean);
        p.AssertClean();
    }

    [Fact]
    public void MapsLinesHaveTheKernelsFormat()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2, PROT_READ);
        long fd = p.Memfd(2, "buf");
        ulong m = p.MmapFile(fd, 1, MAP_SHARED, off: 4096);
        var lines = p.K.ProcMaps(p.Mm).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string anon = lines.Single(l => l.StartsWith($"{a:x}-", StringComparison.Ordinal));
        // Unnamed: the header and its trailing space, as seq_printf("%lu ") leaves it.
        Assert.Equal($"{a:x}-{a + 8192:x} r--p 00000000 00:00 0 ", anon);
        string file = lines.Single(l => l.StartsWith($"{m:x}-", StringComparison.Ordinal));
        // Named: padded so that the name starts in column 73.
        Assert.Equal(73, file.IndexOf('/', StringComparison.Ordinal));
        Assert.StartsWith($"{m:x}-{m + 4096:x} rw-s 00001000 00:01 ", file);
        Assert.EndsWith("/memfd:buf (deleted)", file);
        Assert.Equal(lines.Length, p.Vmas.Count);
    }

    [Fact]
    public void PagemapReportsAProtNoneHugeLeafAsPresentWithItsPfn()
    {
        // pagemap_pmd_range(): pmd_present() is true for a PROT_NONE huge PMD (P clear, PSE set).
        var p = Proc.Boot();
        ulong a = (ulong)p.Mmap(0, 4UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        ulong huge = (a + (2UL << 20)) & ~((2UL << 20) - 1);
        ulong other = huge == a ? a + (2UL << 20) : a;
        p.Write(other, 1);   // a PMD table that also holds huge's (empty) slot
        var pmd = p.K.MmFindPmd(p.Mm, huge)!.Value;
        Assert.Equal(0UL, pmd.Table.Entries[pmd.Index]);
        var leaf = PgTable.PfnPmd(0x40000, PgTable.Pgprot4kToLarge(new PgProt(X86Pte.PAGE_NONE)));
        Assert.True(PgTable.PmdPresent(leaf) && (leaf.Val & X86Pte._PAGE_PRESENT) == 0);
        pmd.Table.Entries[pmd.Index] = leaf.Val;
        try
        {
            var e = p.Pagemap(huge + 5 * 4096);
            Assert.True(e.Present);
            Assert.Equal(0x40005UL, e.Pfn);
        }
        finally
        {
            pmd.Table.Entries[pmd.Index] = 0;
        }
    }
}

using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>The sparse store of physical memory contents.</summary>
public class PhysMemTests
{
    [Fact]
    public void UntouchedMemoryReadsZeroAndCostsNothing()
    {
        var m = new PhysMem();
        Assert.Equal(0UL, m.Load(0x123456, 8));
        Assert.Equal(0, m.Words);
    }

    [Fact]
    public void AStoreIsVisibleToEveryLaterLoadOfThatAddress()
    {
        var m = new PhysMem();
        m.Store(0x1000, 8, 0x0102030405060708);
        Assert.Equal(0x0102030405060708UL, m.Load(0x1000, 8));
        Assert.Equal(0x08UL, m.Load(0x1000, 1));
        Assert.Equal(0x0506UL, m.Load(0x1002, 2));
        Assert.Equal(1, m.Words);
    }

    [Fact]
    public void UnalignedStoresSpanTwoWords()
    {
        var m = new PhysMem();
        m.Store(0x2005, 8, 0xAABBCCDDEEFF1122);
        Assert.Equal(0xAABBCCDDEEFF1122UL, m.Load(0x2005, 8));
        Assert.Equal(2, m.Words);
        Assert.Equal(0xFF1122UL << 40, m.Load(0x2000, 8));
    }

    [Fact]
    public void ClearAndCopyWorkPerFrame()
    {
        var m = new PhysMem();
        for (ulong i = 0; i < 512; i += 7)
        {
            m.Store((5UL << 12) + i * 8, 8, i + 1);
        }
        m.Store(6UL << 12, 8, 99);
        m.CopyFrame(9, 5);
        for (ulong i = 0; i < 512; i += 7)
        {
            Assert.Equal(i + 1, m.Load((9UL << 12) + i * 8, 8));
        }
        m.ClearFrame(5);
        Assert.Equal(0UL, m.Load(5UL << 12, 8));
        Assert.Equal(99UL, m.Load(6UL << 12, 8));
        Assert.False(m.HasContent(5));
        Assert.True(m.HasContent(9));
    }

    [Fact]
    public void TheStoreSurvivesGrowthAndDeletionChurn()
    {
        var m = new PhysMem();
        var rng = new Random(1);
        var shadow = new Dictionary<ulong, ulong>();
        for (int i = 0; i < 20000; i++)
        {
            ulong frame = (ulong)rng.Next(64);
            ulong addr = (frame << 12) + ((ulong)rng.Next(512) << 3);
            if (rng.Next(10) == 0)
            {
                m.ClearFrame(frame);
                foreach (var k in shadow.Keys.Where(a => a >> 12 == frame).ToList())
                {
                    shadow.Remove(k);
                }
                continue;
            }
            ulong v = (ulong)rng.NextInt64();
            m.Store(addr, 8, v);
            shadow[addr] = v;
        }
        foreach (var (a, v) in shadow)
        {
            Assert.Equal(v, m.Load(a, 8));
        }
    }

    // ---- compactness, measured in bytes the runtime really allocated ----

    [Fact]
    public void LoadsOfUntouchedFramesAllocateNothing()
    {
        var m = new PhysMem();
        m.Store(0x1000, 8, 1);   // warm up the store's first arrays
        long before = GC.GetAllocatedBytesForCurrentThread();
        ulong sum = 0;
        for (ulong f = 0; f < 100_000; f++)
        {
            sum += m.Load((f + 16) << 12, 8);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0UL, sum);
        // Nothing per load (a few bytes of runtime bookkeeping at most, never per frame).
        Assert.True(allocated < 1024, $"{allocated} bytes allocated by 100,000 loads");
        Assert.Equal(1, m.Words);
    }

    [Fact]
    public void AFrameHoldingOneWordCostsFarLessThanAPage()
    {
        const int frames = 20_000;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var m = new PhysMem();
        for (ulong f = 0; f < frames; f++)
        {
            m.Store((f << 12) + 8 * (f % 512), 8, f + 1);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // Everything the store ever allocated, growth included, per frame: a 4 KiB page per frame
        // would be 4096; one word costs a small constant (189 bytes when written, growth included).
        Assert.True(allocated / frames < 512, $"{allocated / frames} bytes allocated per one-word frame");
        Assert.Equal(frames, m.Words);
        Assert.True(m.AllocatedBytes / frames < 512, $"{m.AllocatedBytes / frames} bytes held per one-word frame");
        for (ulong f = 0; f < frames; f += 997)
        {
            Assert.Equal(f + 1, m.Load((f << 12) + 8 * (f % 512), 8));
        }
    }

    [Fact]
    public void TouchingAnonymousMemoryCostsTheModelOnlyTheWordsStored()
    {
        var p = Proc.Boot(new KernelConfig { RamBytes = 256UL << 20 });
        const int pages = 2048;
        ulong a = p.MmapAnon(pages);
        long held = p.K.Mem.AllocatedBytes;
        for (ulong i = 0; i < pages; i++)
        {
            p.Write(a + i * 4096 + 16, i + 1);
        }
        Assert.Equal(pages, p.K.Mem.Words);
        long perPage = (p.K.Mem.AllocatedBytes - held) / pages;
        Assert.True(perPage < 512, $"{perPage} bytes of contents per page holding one word");
        // Reading untouched pages maps the zero page and stores nothing.
        ulong b = p.MmapAnon(pages);
        for (ulong i = 0; i < pages; i++)
        {
            Assert.Equal(0UL, p.Read(b + i * 4096));
        }
        Assert.Equal(pages, p.K.Mem.Words);
    }

    // ---- the frame allocator and the descriptors ----

    [Fact]
    public void TheAllocatorHandsOutRamFramesWithRefcountOneAndTakesThemBackAtZero()
    {
        var k = new Linux.Kernel(new KernelConfig { RamBytes = 64UL << 20 });
        var t = k.CreateKernelThread("alloc");
        long used = k.Buddy.UsedPages;
        var page = k.Run(t, () => new ValueTask<Page?>(k.AllocPage()))!.Value;
        Assert.True(k.PfnValid(page.Pfn));
        Assert.Equal(1, k.PageRefCount(page));
        Assert.Equal(0, k.FolioMapcount(new Folio(page.Pfn)));
        Assert.False(k.PageIsFree(page.Pfn));
        Assert.Equal(used + 1, k.Buddy.UsedPages);
        k.Run(t, () =>
        {
            k.GetPage(page);
            k.PutPage(page);
            Assert.False(k.PageIsFree(page.Pfn));
            k.PutPage(page);
            return ValueTask.CompletedTask;
        });
        Assert.True(k.PageIsFree(page.Pfn));
        Assert.NotEqual(0UL, k.KpageFlags(page.Pfn) & (1UL << Linux.Kernel.Kpf.BUDDY));
        Assert.Equal(used, k.Buddy.UsedPages);
        // Freed frames are reused first (per-CPU lists are LIFO).
        Assert.Equal(page.Pfn, k.Run(t, () => new ValueTask<Page?>(k.AllocPage()))!.Value.Pfn);
        Assert.Empty(k.Findings);
    }

    [Fact]
    public void RunningOutOfFramesTurnsTheFaultIntoAnOomKill()
    {
        var p = Proc.Boot(new KernelConfig { RamBytes = 8UL << 20 });
        ulong a = p.MmapAnon(2040);
        UserAccessResult r = default;
        for (ulong i = 0; i < 2040; i++)
        {
            r = p.Store(a + i * 4096, 1);
            if (!r.Ok)
            {
                break;
            }
        }
        // VM_FAULT_OOM → pagefault_out_of_memory(): the faulting task is the OOM killer's victim.
        Assert.Equal(SIGKILL, r.Signal);
        Assert.True(p.T.FatalSignalPending);
        Assert.Equal(0, p.K.Buddy.FreePages);
    }

    [Fact]
    public void AnAnonymousPageCarriesTheKernelsDescriptorState()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        ulong pfn = p.Pagemap(a).Pfn;
        var k = p.K;
        var f = new Folio(pfn);
        Assert.True(k.FolioTestAnon(f));
        Assert.True(k.PageAnonExclusive(f.Page));
        Assert.Equal(1, k.FolioRefCount(f));
        Assert.Equal(1, k.FolioMapcount(f));
        Assert.False(k.FolioTestLocked(f));
        Assert.False(k.FolioTestSwapcache(f));
        Assert.IsType<AnonVma>(k.FolioMappingObject(f));
        Assert.Equal(a >> 12, k.FolioIndex(f));
        ulong kpf = k.KpageFlags(pfn);
        foreach (int bit in new[] { Linux.Kernel.Kpf.ANON, Linux.Kernel.Kpf.MMAP, Linux.Kernel.Kpf.UPTODATE, Linux.Kernel.Kpf.SWAPBACKED })
        {
            Assert.True((kpf & (1UL << bit)) != 0, $"KPF bit {bit} missing from {kpf:x}");
        }
        Assert.Equal(0UL, kpf & (1UL << Linux.Kernel.Kpf.ZERO_PAGE | 1UL << Linux.Kernel.Kpf.RESERVED | 1UL << Linux.Kernel.Kpf.PGTABLE));
    }

    [Fact]
    public void TheFolioLockIsPgLockedWhileHeld()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var f = new Folio(p.Pagemap(a).Pfn);
        bool lockedInside = false;
        p.K.Run(p.T, async () =>
        {
            await p.K.FolioLock(f);
            lockedInside = p.K.FolioTestLocked(f) && (p.K.KpageFlags(f.Pfn) & (1UL << Linux.Kernel.Kpf.LOCKED)) != 0;
            Assert.False(await p.K.FolioTrylock(f));
            await p.K.FolioUnlock(f);
        });
        Assert.True(lockedInside);
        Assert.False(p.K.FolioTestLocked(f));
        p.AssertClean();
    }

    [Fact]
    public void ASharedFileWriteFaultDirtiesTheFolioButAWriteThroughAWritablePteOnlySetsD()
    {
        var p = Proc.Boot();
        long fd = p.Memfd(2);
        ulong a = p.MmapFile(fd, 2, MAP_SHARED);
        // Write fault: do_shared_fault() → fault_dirty_shared_page() marks the folio dirty.
        p.Write(a, 5);
        var f = new Folio(p.Pagemap(a).Pfn);
        Assert.False(p.K.FolioTestAnon(f));
        Assert.True(p.K.FolioTestDirty(f));
        Assert.NotEqual(0UL, p.K.KpageFlags(f.Pfn) & (1UL << Linux.Kernel.Kpf.DIRTY));
        Assert.True(p.Pagemap(a).File);
        // Read fault first: shmem needs no write notification, so the PTE is mapped writable and
        // clean; the later store goes through the hardware, which sets D in the PTE only.
        Assert.Equal(0UL, p.Read(a + 4096));
        var g = new Folio(p.Pagemap(a + 4096).Pfn);
        var pte = p.K.PtepGet(p.K.WalkPte(p.Mm, a + 4096)!.Value);
        Assert.True(PgTable.PteWrite(pte));
        Assert.False(PgTable.PteDirty(pte));
        p.Write(a + 4096, 6);
        Assert.True(PgTable.PteDirty(p.K.PtepGet(p.K.WalkPte(p.Mm, a + 4096)!.Value)));
        Assert.False(p.K.FolioTestDirty(g));
        p.AssertClean();
    }

    [Fact]
    public void TheZeroPageIsReservedAndMappingItTakesNoReference()
    {
        var p = Proc.Boot();
        var k = p.K;
        ulong z = k.ZeroPfn;
        int refs = k.FolioRefCount(new Folio(z));
        ulong a = p.MmapAnon(64);
        for (ulong i = 0; i < 64; i++)
        {
            p.Read(a + i * 4096);
        }
        Assert.Equal(z, p.Pagemap(a + 63 * 4096).Pfn);
        Assert.Equal(refs, k.FolioRefCount(new Folio(z)));
        Assert.Equal(0, k.FolioMapcount(new Folio(z)));
        ulong kpf = k.KpageFlags(z);
        Assert.NotEqual(0UL, kpf & (1UL << Linux.Kernel.Kpf.ZERO_PAGE));
        Assert.NotEqual(0UL, kpf & (1UL << Linux.Kernel.Kpf.RESERVED));
        // The PTE is special: vm_normal_page() is NULL for it.
        var pte = k.PtepGet(k.WalkPte(p.Mm, a)!.Value);
        Assert.True(PgTable.PteSpecial(pte));
        Assert.Null(k.VmNormalPage(p.Vmas[0], a, pte));
        Assert.Equal(0L, p.Munmap(a, 64 * 4096));
        Assert.False(k.PageIsFree(z));
        p.AssertClean();
    }

    [Fact]
    public void PageTablePagesAreAllocatorFramesMarkedAsTables()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        long used = p.K.Buddy.UsedPages;
        p.Write(a, 1);
        var table = p.K.WalkPte(p.Mm, a)!.Value.Table;
        Assert.True(p.K.PfnValid(table.Pfn));
        Assert.NotEqual(0UL, p.K.KpageFlags(table.Pfn) & (1UL << Linux.Kernel.Kpf.PGTABLE));
        Assert.Equal(0, p.K.KpageCount(table.Pfn));
        // One data page plus whatever tables the walk had to allocate, all from the allocator.
        Assert.True(p.K.Buddy.UsedPages > used + 1);
    }

    [Fact]
    public void IoMemoryHasNoDescriptorButItsContentsAreReal()
    {
        var k = new Linux.Kernel(new KernelConfig { RamBytes = 4UL << 30 });
        ulong bar = PageAllocator.PciHoleStart;
        ulong pfn = bar >> 12;
        Assert.False(k.PfnValid(pfn));
        Assert.Equal(1UL << Linux.Kernel.Kpf.NOPAGE, k.KpageFlags(pfn));
        Assert.Equal(0, k.KpageCount(pfn));
        Assert.True(k.PfnValid((PageAllocator.PciHoleEnd >> 12)));
        Assert.True(k.PfnValid((PageAllocator.PciHoleStart >> 12) - 1));
        // A device register written through any path reads back: memory contents are per physical address.
        k.Mem.Store(bar + 0x10, 4, 0xfeed);
        Assert.Equal(0xfeedUL, k.Mem.Load(bar + 0x10, 4));
    }
}

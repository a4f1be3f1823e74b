using Linux;
using static Linux.FaultFlag;
using static Linux.Mman;
using static Linux.VmFault;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// handle_mm_fault() called directly with FAULT_FLAG_* inputs, checking its VM_FAULT_* results
/// and what each handler (do_anonymous_page, do_read_fault, do_cow_fault, do_shared_fault,
/// do_wp_page) leaves in the page table; and user accesses of every size.
/// </summary>
public class FaultPathTests
{
    /// <summary>A fault under the mmap read lock, as the arch handler's slow path takes it.</summary>
    private static VmFault Fault(Proc p, ulong addr, FaultFlag flags) => p.K.Run(p.T, async () =>
    {
        await p.K.MmapReadLock(p.Mm);
        var vma = p.Mm.MmMt.VmaLookup(addr)!;
        var r = await p.K.HandleMmFault(vma, addr, flags | FAULT_FLAG_DEFAULT | FAULT_FLAG_USER);
        if ((r & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)) == 0)
        {
            await p.K.MmapReadUnlock(p.Mm);
        }
        return r;
    });

    private static Pte PteAt(Proc p, ulong addr) => p.K.PtepGet(p.K.WalkPte(p.Mm, addr)!.Value);

    [Fact]
    public void DoAnonymousPageMapsTheZeroPageOnReadAndAFreshExclusivePageOnWrite()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        long faults = p.K.VmEvent(VmEventItem.PGFAULT), minor = p.K.VmEvent(VmEventItem.MIN_FLT);
        Assert.Equal(VmFault.None, Fault(p, a, 0));
        var z = PteAt(p, a);
        Assert.Equal(p.K.ZeroPfn, PgTable.PtePfn(z));
        Assert.True(PgTable.PteSpecial(z));
        Assert.False(PgTable.PteWrite(z));
        Assert.Equal(VmFault.None, Fault(p, a + 4096, FAULT_FLAG_WRITE));
        var w = PteAt(p, a + 4096);
        Assert.True(PgTable.PteWrite(w) && PgTable.PteDirty(w) && !PgTable.PteSpecial(w));
        Assert.True(p.K.PageAnonExclusive(new Page(PgTable.PtePfn(w))));
        Assert.Equal(faults + 2, p.K.VmEvent(VmEventItem.PGFAULT));
        Assert.Equal(minor + 2, p.K.VmEvent(VmEventItem.MIN_FLT));
        p.AssertClean();
    }

    [Fact]
    public void AWriteFaultOnTheZeroPageCopiesIntoAZeroedPage()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        Assert.Equal(0UL, p.Read(a));
        long cows = p.K.VmEvent(VmEventItem.COW_FAULT);
        Assert.Equal(VmFault.None, Fault(p, a, FAULT_FLAG_WRITE));
        var pte = PteAt(p, a);
        Assert.NotEqual(p.K.ZeroPfn, PgTable.PtePfn(pte));
        Assert.True(PgTable.PteWrite(pte));
        Assert.Equal(cows + 1, p.K.VmEvent(VmEventItem.COW_FAULT));
        Assert.Equal(0UL, p.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void AForcedWriteToAReadOnlyPrivateMappingDirtiesThePteButNeverMakesItWritable()
    {
        // mkdirty.c: setting a PTE dirty must not set it writable (maybe_mkwrite() without VM_WRITE).
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        p.Write(a, 1);
        p.Write(a + 4096, 2);
        var c = p.Fork();
        Assert.Equal(0L, p.Mprotect(a, 2 * 4096, PROT_READ));
        // Shared with the child: the forced write copies (do_wp_page → wp_page_copy).
        ulong shared = p.Pagemap(a).Pfn;
        Assert.Equal(VmFault.None, Fault(p, a, FAULT_FLAG_WRITE));
        var pte = PteAt(p, a);
        Assert.NotEqual(shared, PgTable.PtePfn(pte));
        Assert.True(PgTable.PteDirty(pte));
        Assert.False(PgTable.PteWrite(pte));
        Assert.True(p.Pagemap(a).Exclusive);
        // The parent's copy replaced its mapping of the old page: the child maps it alone.
        Assert.Equal(1, p.K.KpageCount(shared));
        c.Exit();
        // Exclusive page: the forced write reuses it (wp_page_reuse), still read-only.
        ulong own = p.Pagemap(a + 4096).Pfn;
        Assert.Equal(VmFault.None, Fault(p, a + 4096, FAULT_FLAG_WRITE));
        pte = PteAt(p, a + 4096);
        Assert.Equal(own, PgTable.PtePfn(pte));
        Assert.True(PgTable.PteDirty(pte));
        Assert.False(PgTable.PteWrite(pte));
        Assert.Equal(SIGSEGV, p.Store(a + 4096, 3).Signal);
        Assert.Equal(2UL, p.Read(a + 4096));
        p.AssertClean();
    }

    [Fact]
    public void UnshareOfASharedAnonPageCopiesItButLeavesItReadOnly()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 0x11);
        var c = p.Fork();
        ulong shared = p.Pagemap(a).Pfn;
        Assert.Equal(VmFault.None, Fault(p, a, FAULT_FLAG_UNSHARE));
        var pte = PteAt(p, a);
        Assert.NotEqual(shared, PgTable.PtePfn(pte));
        Assert.False(PgTable.PteWrite(pte));
        Assert.True(p.Pagemap(a).Exclusive);
        Assert.True(c.Pagemap(a).Exclusive);
        Assert.Equal(0x11UL, p.Read(a));
        // A later write reuses the now-exclusive copy.
        p.Write(a, 0x22);
        Assert.Equal(PgTable.PtePfn(pte), p.Pagemap(a).Pfn);
        Assert.Equal(0x11UL, c.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void UnshareTogetherWithWriteIsAWarningAndSigsegv()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        Assert.Equal(VM_FAULT_SIGSEGV, Fault(p, a, FAULT_FLAG_UNSHARE | FAULT_FLAG_WRITE));
        Assert.Contains(p.K.Findings, f => f.Invariant == Invariants.Warn);
    }

    [Fact]
    public void UnshareIsIgnoredOnSharedMappings()
    {
        var p = Proc.Boot();
        long fd = p.Memfd(1);
        ulong a = p.MmapFile(fd, 1, MAP_SHARED);
        p.Write(a, 5);
        ulong pfn = p.Pagemap(a).Pfn;
        Assert.Equal(VmFault.None, Fault(p, a, FAULT_FLAG_UNSHARE));
        Assert.Equal(pfn, p.Pagemap(a).Pfn);
        p.AssertClean();
    }

    [Fact]
    public void AWriteFaultOnASharedMappingWithoutVmWriteIsAWarningAndSigsegv()
    {
        var p = Proc.Boot();
        long fd = p.Memfd(1);
        ulong a = p.MmapFile(fd, 1, MAP_SHARED, PROT_READ);
        Assert.True((p.Vmas[0].VmFlags & VmFlags.VM_MAYWRITE) != 0);
        Assert.Equal(VM_FAULT_SIGSEGV, Fault(p, a, FAULT_FLAG_WRITE));
        Assert.Contains(p.K.Findings, f => f.Invariant == Invariants.Warn && f.Message.Contains("forced write"));
    }

    [Fact]
    public void FileFaultsReadCowAndShareThePageCacheAsTheirHandlersDo()
    {
        var p = Proc.Boot();
        long fd = p.Memfd(3);
        ulong sh = p.MmapFile(fd, 3, MAP_SHARED);
        p.Write(sh, 0x5a);
        ulong cache = p.Pagemap(sh).Pfn;
        ulong pr = (ulong)p.Mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
        // do_read_fault(): the page-cache folio itself, read-only in a private mapping. Fault-around
        // (->map_pages, filemap_map_pages()) maps it and answers VM_FAULT_NOPAGE.
        Assert.Equal(VM_FAULT_NOPAGE, Fault(p, pr, 0));
        Assert.Equal(cache, PgTable.PtePfn(PteAt(p, pr)));
        Assert.False(PgTable.PteWrite(PteAt(p, pr)));
        Assert.True(p.Pagemap(pr).File);
        // do_cow_fault(): a write to a not-yet-mapped private page gets an anon copy of the cache.
        // shmem_fault() returned the folio locked, and that VM_FAULT_LOCKED stays in the result.
        Assert.Equal(VM_FAULT_LOCKED, Fault(p, pr + 4096, FAULT_FLAG_WRITE));
        var cow = p.Pagemap(pr + 4096);
        Assert.False(cow.File);
        Assert.True(cow.Exclusive);
        Assert.True(PgTable.PteWrite(PteAt(p, pr + 4096)));
        // do_shared_fault(): a write to a shared page maps the cache folio writable and dirty.
        Assert.Equal(VM_FAULT_LOCKED, Fault(p, sh + 2 * 4096, FAULT_FLAG_WRITE));
        var pte = PteAt(p, sh + 2 * 4096);
        Assert.True(PgTable.PteWrite(pte) && PgTable.PteDirty(pte));
        Assert.True(p.K.FolioTestDirty(new Folio(PgTable.PtePfn(pte))));
        // The private write never reaches the file.
        p.Write(pr + 4096, 0x77);
        Assert.Equal(0UL, p.Read(sh + 4096));
        p.AssertClean();
    }

    [Fact]
    public void AFaultBeyondEndOfFileIsSigbus()
    {
        var p = Proc.Boot();
        long fd = p.Memfd(1);
        ulong a = p.MmapFile(fd, 2, MAP_SHARED);
        Assert.Equal(VM_FAULT_SIGBUS, Fault(p, a + 4096, 0));
        Assert.Equal(SIGBUS, p.Load(a + 4096).Signal);
        Assert.Equal(SIGBUS, p.Store(a + 4096, 1).Signal);
        Assert.True(p.Load(a).Ok);
        p.AssertClean();
    }

    [Fact]
    public void UnderOnlyTheVmaLockAFaultNeedingAnAnonVmaRetriesWhenTheMmapLockIsTaken()
    {
        var p = Proc.Boot();
        var writer = new Proc(p.K, p.K.CreateThread(p.T, "writer"));
        ulong a = p.MmapAnon(1);
        var k = p.K;
        k.Run(writer.T, () => k.MmapWriteLock(p.Mm));
        VmAreaStruct? vma = null;
        var r = k.Run(p.T, async () =>
        {
            vma = await k.LockVmaUnderRcu(p.Mm, a);
            Assert.NotNull(vma);
            return await k.HandleMmFault(vma!, a, FAULT_FLAG_WRITE | FAULT_FLAG_USER | FAULT_FLAG_DEFAULT | FAULT_FLAG_VMA_LOCK);
        });
        // __vmf_anon_prepare() could not trylock the mmap lock: retry, with the VMA lock dropped.
        Assert.Equal(VM_FAULT_RETRY, r);
        Assert.Equal(0, vma!.VmLock.Readers);
        Assert.Null(vma.AnonVma);
        k.Run(writer.T, () => k.MmapWriteUnlock(p.Mm));
        // Without the contention the same fault completes under the VMA lock alone.
        r = k.Run(p.T, async () =>
        {
            var v = await k.LockVmaUnderRcu(p.Mm, a);
            var ret = await k.HandleMmFault(v!, a, FAULT_FLAG_WRITE | FAULT_FLAG_USER | FAULT_FLAG_DEFAULT | FAULT_FLAG_VMA_LOCK);
            await v!.VmLock.EndRead();
            return ret;
        });
        Assert.Equal(VmFault.None, r);
        Assert.NotNull(vma.AnonVma);
        p.AssertClean();
    }

    [Fact]
    public void UserAccessesOfEachSizeTouchExactlyTheirBytesLittleEndian()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, ulong.MaxValue);
        p.Write(a + 8, ulong.MaxValue);
        foreach (int size in new[] { 1, 2, 4, 8 })
        {
            ulong mask = size == 8 ? ulong.MaxValue : (1UL << (8 * size)) - 1;
            p.Write(a + 1, 0x0102030405060708UL, size);
            Assert.Equal(0x0102030405060708UL & mask, p.Read(a + 1, size));
            // The byte before and the bytes after are untouched.
            Assert.Equal(0xffUL, p.Read(a, 1));
            Assert.Equal(0xffUL, p.Read(a + 1 + (ulong)size, 1));
            // Loads zero-extend; the first byte in memory is the least significant.
            Assert.Equal(0x08UL, p.Read(a + 1, 1));
            p.Write(a, ulong.MaxValue);
            p.Write(a + 8, ulong.MaxValue);
        }
        p.AssertClean();
    }

    [Fact]
    public void AccessesTheKernelRefusesAreSignalsNotExceptions()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1, PROT_READ);
        Assert.Equal(SIGSEGV, p.Store(a, 1).Signal);
        Assert.Equal(SIGSEGV, p.Load(a + 4096 * 1024).Signal);
        Assert.Equal(SIGSEGV, p.Load(0).Signal);
        // Above TASK_SIZE: the kernel half of the address space is never a user VMA.
        Assert.Equal(SIGSEGV, p.Load(0xffff888000001000UL).Signal);
        Assert.Equal(SIGSEGV, p.Store(p.K.Paging.TaskSize, 1).Signal);
        Assert.Equal(0L, p.Mprotect(a, 4096, PROT_NONE));
        Assert.Equal(SIGSEGV, p.Load(a).Signal);
        p.AssertClean();
    }
}

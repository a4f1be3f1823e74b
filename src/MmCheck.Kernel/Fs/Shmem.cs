using static Linux.PgTable;
using static Linux.VmFault;

namespace Linux;

// mm/shmem.c (tmpfs, shared anonymous memory, memfd), mm/filemap.c (page cache fault-around),
// mm/memfd.c, fs/open.c (ftruncate) and fs/inode.c (iput/evict), as far as mm needs them.
public sealed partial class Kernel
{
    /// <summary>MFD_NAME_MAX_LEN.</summary>
    public const int MFD_NAME_MAX_LEN = 255 - 6;
    public const int F_SEAL_SEAL = 0x0001;
    public const int F_SEAL_SHRINK = 0x0002;
    public const int F_SEAL_GROW = 0x0004;
    public const int F_SEAL_WRITE = 0x0008;
    public const int F_SEAL_FUTURE_WRITE = 0x0010;
    public const int F_SEAL_EXEC = 0x0020;

    /// <summary>shmem_vm_ops: fault from the page cache, fault-around over it; no ->page_mkwrite.</summary>
    [KernelSymbol("shmem_vm_ops", "mm/shmem.c")]
    public VmOperationsStruct ShmemVmOps => _shmemVmOps ??= new VmOperationsStruct
    {
        Name = "shmem_vm_ops",
        Fault = ShmemFault,
        MapPages = FilemapMapPages,
    };

    /// <summary>shmem_anon_vm_ops: the same for MAP_SHARED|MAP_ANONYMOUS.</summary>
    [KernelSymbol("shmem_anon_vm_ops", "mm/shmem.c")]
    public VmOperationsStruct ShmemAnonVmOps => _shmemAnonVmOps ??= new VmOperationsStruct
    {
        Name = "shmem_anon_vm_ops",
        Fault = ShmemFault,
        MapPages = FilemapMapPages,
    };

    /// <summary>shmem_file_operations.</summary>
    [KernelSymbol("shmem_file_operations", "mm/shmem.c")]
    public FileOperations ShmemFileOperations => _shmemFops ??= new FileOperations
    {
        Name = "shmem_file_operations",
        MmapPrepare = ShmemMmapPrepare,
    };

    private VmOperationsStruct? _shmemVmOps;
    private VmOperationsStruct? _shmemAnonVmOps;
    private FileOperations? _shmemFops;

    /// <summary>shmem_mmap_prepare(): shmem mappings use shmem_vm_ops.</summary>
    /// <remarks>Context: -&gt;mmap_prepare: mmap_lock write-held; only the descriptor exists.</remarks>
    [KernelSymbol("shmem_mmap_prepare", "mm/shmem.c")]
    private ValueTask<int> ShmemMmapPrepare(VmAreaDesc desc)
    {
        desc.VmOps = ShmemVmOps;
        return ValueTask.FromResult(0);
    }

    /// <summary>
    /// shmem_file_setup() (__shmem_file_setup()): an unlinked tmpfs file of the given size (memfd,
    /// shared anonymous memory). Unless <paramref name="flags"/> has VM_NORESERVE, the whole size is
    /// charged to vm_committed_as up front (shmem_acct_size()): -ENOMEM if the overcommit policy refuses.
    /// </summary>
    /// <remarks>
    /// Context: no mm locks needed; the new inode and file are private to the caller
    /// (shmem_zero_setup() calls it with mmap_lock write-held).
    /// </remarks>
    [KernelSymbol("shmem_file_setup", "mm/shmem.c")]
    public (File? File, int Err) ShmemFileSetup(string path, long size, VmFlags flags)
    {
        if (size < 0 || size > MAX_LFS_FILESIZE)
        {
            return (null, -Errno.EINVAL);
        }
        if (ShmemAcctSize(flags, size) != 0)
        {
            return (null, -Errno.ENOMEM);
        }
        var inode = new Inode(this, NextIno(), "shmem", path) { ISize = size, NLink = 0, ShmemFlags = flags & VmFlags.VM_NORESERVE };
        inode.IMapping.CanWriteback = false;
        inode.ICount++;
        return (new File(inode, ShmemFileOperations, Mman.O_RDWR), 0);
    }

    /// <summary>MAX_LFS_FILESIZE on 64-bit: LLONG_MAX, so only a negative size fails the check.</summary>
    private const long MAX_LFS_FILESIZE = long.MaxValue;

    /// <summary>VM_ACCT(): the pages a shmem file of <paramref name="size"/> bytes charges.</summary>
    private static long VmAcct(long size) => (long)(((ulong)size + PAGE_SIZE - 1) >> PAGE_SHIFT);

    /// <summary>shmem_acct_size(): a file without VM_NORESERVE charges its size (VM_ACCT()) at once.</summary>
    /// <remarks>Context: any; the commit counter is global.</remarks>
    [KernelSymbol("shmem_acct_size", "mm/shmem.c")]
    private int ShmemAcctSize(VmFlags flags, long size) =>
        (flags & VmFlags.VM_NORESERVE) != 0 ? 0 : VmEnoughMemory(VmAcct(size));

    /// <summary>shmem_unacct_size(): gives back what shmem_acct_size() charged.</summary>
    /// <remarks>Context: any; the commit counter is global.</remarks>
    [KernelSymbol("shmem_unacct_size", "mm/shmem.c")]
    private void ShmemUnacctSize(VmFlags flags, long size)
    {
        if ((flags & VmFlags.VM_NORESERVE) == 0)
        {
            VmUnacctMemory(VmAcct(size));
        }
    }

    /// <summary>shmem_zero_setup(): MAP_SHARED|MAP_ANONYMOUS becomes a mapping of an unlinked
    /// tmpfs file ("/dev/zero (deleted)") of the VMA's size, charged unless the VMA is VM_NORESERVE.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held (from mmap_region() for a shared anonymous mapping); the VMA
    /// is not yet linked, so replacing vm_file is safe.
    /// </remarks>
    [KernelSymbol("shmem_zero_setup", "mm/shmem.c")]
    public ValueTask<int> ShmemZeroSetup(VmAreaStruct vma)
    {
        var (file, err) = ShmemFileSetup("/dev/zero", (long)(vma.VmEnd - vma.VmStart), vma.VmFlags);
        if (file is null)
        {
            return ValueTask.FromResult(err);
        }
        if (vma.VmFile is { } old)
        {
            Fput(old);
        }
        vma.VmFile = file;
        vma.VmOps = ShmemAnonVmOps;
        return ValueTask.FromResult(0);
    }

    /// <summary>shmem_mapping().</summary>
    public static bool ShmemMapping(AddressSpace m) => m.Host.Kind == "shmem";

    /// <summary>
    /// shmem_get_folio_gfp(SGP_CACHE): the page-cache folio at <paramref name="index"/>, allocated
    /// and zeroed if absent, returned locked with a reference. -EINVAL beyond EOF.
    /// </summary>
    /// <remarks>Context: may sleep; no PTL held. Returns the folio locked and referenced.</remarks>
    [KernelSymbol("shmem_get_folio_gfp", "mm/shmem.c")]
    public async ValueTask<(Folio? Folio, int Err)> ShmemGetFolio(Inode inode, ulong index)
    {
        var mapping = inode.IMapping;
        if ((long)(index << PAGE_SHIFT) >= inode.ISize)
        {
            return (null, -Errno.EINVAL);
        }
        while (true)
        {
            Sched.Access(mapping.PagesObj, write: false);
            if (mapping.IPages.TryGetValue((long)index, out ulong pfn))
            {
                var f = new Folio(pfn);
                if (!FolioTryGet(f))
                {
                    continue;
                }
                await FolioLock(f, "shmem_get_folio_gfp");
                if (FolioMappingObject(f) != mapping)
                {
                    // Truncated while we slept on the lock: look again.
                    await FolioUnlock(f, "shmem_get_folio_gfp");
                    FolioPut(f);
                    continue;
                }
                return (f, 0);
            }
            if (AllocPage(zero: true) is not { } page)
            {
                return (null, -Errno.ENOMEM);
            }
            var folio = new Folio(page.Pfn);
            // shmem_alloc_and_add_folio(): locked, swap-backed, into the page cache.
            FolioSet(folio, PageFlags.PG_locked | PageFlags.PG_swapbacked);
            await mapping.IPagesLock.Lock("shmem_add_to_page_cache");
            Sched.Access(mapping.PagesObj, write: true);
            if (mapping.IPages.ContainsKey((long)index))
            {
                await mapping.IPagesLock.Unlock("shmem_add_to_page_cache");
                FolioClear(folio, PageFlags.PG_locked);
                FolioPut(folio);
                continue;
            }
            mapping.IPages[(long)index] = folio.Pfn;
            MemMap.Mapping(folio.Pfn) = mapping.Handle;
            MemMap.SetIndex(folio.Pfn, index);
            FolioRefAdd(folio, 1);
            await mapping.IPagesLock.Unlock("shmem_add_to_page_cache");
            // The folio lock was set before anyone could see it; lockdep learns of it now.
            var t = Current!;
            var s = FolioLockOf(folio.Pfn);
            s.Owner = t;
            LockdepAcquire(t, s, 0, read: false, trylock: true, "shmem_get_folio_gfp");
            FolioSet(folio, PageFlags.PG_uptodate | PageFlags.PG_lru);
            return (folio, 0);
        }
    }

    /// <summary>shmem_fault(): the page-cache folio for vmf.Pgoff, locked; SIGBUS beyond EOF.</summary>
    /// <remarks>Context: mmap lock or VMA read lock (shmem has ->map_pages); returns VM_FAULT_LOCKED with the folio locked.</remarks>
    [KernelSymbol("shmem_fault", "mm/shmem.c")]
    private async ValueTask<VmFault> ShmemFault(VmFaultInfo vmf)
    {
        var inode = vmf.Vma.VmFile!.FInode;
        var (folio, err) = await ShmemGetFolio(inode, vmf.Pgoff);
        if (err != 0)
        {
            return VmfError(err);
        }
        vmf.Page = folio!.Value.Page;
        return VM_FAULT_LOCKED;
    }

    /// <summary>vmf_error(): -ENOMEM is OOM, anything else SIGBUS.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vmf_error", "include/linux/mm.h")]
    public static VmFault VmfError(int err) => err == -Errno.ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;

    /// <summary>
    /// filemap_map_pages(): maps the up-to-date, unlocked page-cache folios of
    /// [start_pgoff, end_pgoff] that already sit in the cache, under one PTE lock. Returns
    /// VM_FAULT_NOPAGE if the faulting address itself got mapped.
    /// </summary>
    /// <remarks>Context: mmap lock or VMA read lock; takes and releases the PTL.</remarks>
    [KernelSymbol("filemap_map_pages", "mm/filemap.c")]
    public async ValueTask<VmFault> FilemapMapPages(VmFaultInfo vmf, ulong startPgoff, ulong endPgoff)
    {
        var vma = vmf.Vma;
        var mapping = vma.VmFile!.FMapping;
        var ret = VmFault.None;
        Sched.Access(mapping.PagesObj, write: false);
        var candidates = mapping.IPages.Where(kv => (ulong)kv.Key >= startPgoff && (ulong)kv.Key <= endPgoff).ToList();
        if (candidates.Count == 0)
        {
            return ret;
        }
        long isize = mapping.Host.ISize;
        ulong fileEnd = (ulong)((isize + (long)PAGE_SIZE - 1) >> PAGE_SHIFT) - 1;
        if (isize == 0)
        {
            return ret;
        }
        endPgoff = Math.Min(endPgoff, fileEnd);
        // filemap_map_pmd(): install the preallocated PTE table if the PMD is still empty.
        if (PmdNone(PmdpGet(vmf.Pmd)))
        {
            if (vmf.PreallocPte is { } pre)
            {
                var table = (PageTable)Handles.Get(MemMap.Mapping(pre))!;
                if (await PmdInstall(vma.VmMm, vmf.Pmd, table, vmf.Address))
                {
                    vmf.PreallocPte = null;
                }
            }
            else if (await PteAlloc(vma.VmMm, vmf.Pmd, vmf.Address))
            {
                return VM_FAULT_OOM;
            }
        }
        ulong firstAddr = vma.VmStart + ((startPgoff - vma.VmPgoff) << PAGE_SHIFT);
        if (await PteOffsetMapLock(vma.VmMm, vmf.Pmd, firstAddr) is not { } l)
        {
            return ret;
        }
        long rss = 0;
        MmCounter type = MmCounter.MM_FILEPAGES;
        foreach (var (index, pfn) in candidates)
        {
            if ((ulong)index > endPgoff)
            {
                break;
            }
            var folio = new Folio(pfn);
            // next_uptodate_folio(): skip locked, not up to date, or truncated folios.
            if (FolioTest(folio, PageFlags.PG_locked) || !FolioTest(folio, PageFlags.PG_uptodate) ||
                !FolioTryGet(folio))
            {
                continue;
            }
            if (FolioMappingObject(folio) != mapping || FolioTest(folio, PageFlags.PG_hwpoison))
            {
                FolioPut(folio);
                continue;
            }
            FolioSet(folio, PageFlags.PG_locked);
            type = MmCounterFile(folio);
            ulong addr = vma.VmStart + (((ulong)index - vma.VmPgoff) << PAGE_SHIFT);
            var pte = new PtPtr(l.Pte.Table, Paging.PteIndex(addr));
            // filemap_map_order0_folio(): leave non-none entries (markers) to the real fault.
            if (PteNone(PtepGet(pte)))
            {
                if (vmf.Address == addr)
                {
                    ret = VM_FAULT_NOPAGE;
                }
                vmf.Pte = pte;
                SetPteRange(vmf, folio, folio.Page, 1, addr);
                rss++;
                FolioRefAdd(folio, 1);
            }
            FolioClear(folio, PageFlags.PG_locked);
            FolioPut(folio);
        }
        if (rss != 0)
        {
            AddMmCounter(vma.VmMm, type, rss);
        }
        vmf.Pte = null;
        await l.Ptl.Unlock("filemap_map_pages");
        return ret;
    }

    /// <summary>
    /// memfd_create(2): an unlinked tmpfs file; without MFD_ALLOW_SEALING it is sealed against
    /// sealing. Returns the new fd or -errno.
    /// </summary>
    /// <remarks>Context: system call: no locks held; the new file is private until installed.</remarks>
    [KernelSymbol("memfd_create", "mm/memfd.c")]
    public long MemfdCreate(string name, uint flags)
    {
        const uint all = Mman.MFD_CLOEXEC | Mman.MFD_ALLOW_SEALING | Mman.MFD_HUGETLB | Mman.MFD_NOEXEC_SEAL | Mman.MFD_EXEC;
        if ((flags & ~all) != 0)
        {
            // MFD_HUGETLB carries a size in the high bits; without it they are invalid.
            return -Errno.EINVAL;
        }
        if ((flags & Mman.MFD_NOEXEC_SEAL) != 0 && (flags & Mman.MFD_EXEC) != 0)
        {
            return -Errno.EINVAL;
        }
        if ((flags & Mman.MFD_HUGETLB) != 0)
        {
            // hugetlbfs is not modelled; with no huge pages reserved nothing could be mapped.
            return -Errno.EINVAL;
        }
        if (name.Length > MFD_NAME_MAX_LEN)
        {
            return -Errno.EINVAL;
        }
        // memfd files are VM_NORESERVE: nothing is charged until pages are allocated.
        var (file, err) = ShmemFileSetup($"/memfd:{name}", 0, VmFlags.VM_NORESERVE);
        if (file is null)
        {
            return err;
        }
        file.FInode.Seals = (flags & Mman.MFD_ALLOW_SEALING) != 0 ? 0 : F_SEAL_SEAL;
        if ((flags & Mman.MFD_NOEXEC_SEAL) != 0)
        {
            file.FInode.Seals |= F_SEAL_EXEC;
        }
        return Current!.Files.Install(file);
    }

    /// <summary>memfd_check_seals_mmap(): a write-sealed memfd cannot be mapped shared-writable.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held (from mmap). The seals are read without i_rwsem, as the kernel
    /// does.
    /// </remarks>
    [KernelSymbol("memfd_check_seals_mmap", "mm/memfd.c")]
    private static int MemfdCheckSealsMmap(File file, ref VmFlags vmFlags)
    {
        int seals = file.FInode.Seals;
        if ((seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0)
        {
            if ((vmFlags & VmFlags.VM_SHARED) != 0 && (vmFlags & VmFlags.VM_WRITE) != 0)
            {
                return -Errno.EPERM;
            }
            if ((vmFlags & VmFlags.VM_SHARED) != 0)
            {
                vmFlags &= ~VmFlags.VM_MAYWRITE;
            }
        }
        return 0;
    }

    /// <summary>
    /// ftruncate(2) → do_sys_ftruncate() → shmem_setattr(): set i_size; shrinking unmaps the cut
    /// pages from every mapping (COWed private copies too), drops them from the page cache and
    /// zeroes the tail of a partial last page.
    /// </summary>
    /// <remarks>
    /// Context: system call: no mm locks held. Takes i_rwsem for writing around the size change,
    /// which unmaps (i_mmap_rwsem, PTLs) and truncates (folio locks). May sleep.
    /// </remarks>
    [KernelSymbol("do_sys_ftruncate", "fs/open.c")]
    public async ValueTask<long> DoSysFtruncate(long fd, long length)
    {
        if (length < 0)
        {
            return -Errno.EINVAL;
        }
        var file = Current!.Files.Get(fd);
        if (file is null)
        {
            return -Errno.EBADF;
        }
        var inode = file.FInode;
        if (inode.Kind != "shmem" || !file.Writable)
        {
            return -Errno.EINVAL;
        }
        if (length > long.MaxValue - (long)PAGE_SIZE)
        {
            return -Errno.EFBIG;
        }
        await inode.IRwsem.DownWrite("do_truncate");
        long ret = await ShmemSetattrSize(inode, length);
        await inode.IRwsem.UpWrite("do_truncate");
        return ret;
    }

    /// <summary>shmem_setattr() for ATTR_SIZE. Context: i_rwsem write-held.</summary>
    [KernelSymbol("shmem_setattr", "mm/shmem.c")]
    private async ValueTask<int> ShmemSetattrSize(Inode inode, long newsize)
    {
        long oldsize = inode.ISize;
        if ((newsize < oldsize && (inode.Seals & F_SEAL_SHRINK) != 0) ||
            (newsize > oldsize && (inode.Seals & F_SEAL_GROW) != 0))
        {
            return -Errno.EPERM;
        }
        inode.ISize = newsize;
        if (newsize <= oldsize)
        {
            long holebegin = (newsize + (long)PAGE_SIZE - 1) & ~((long)PAGE_SIZE - 1);
            if (oldsize > holebegin)
            {
                await UnmapMappingRange(inode.IMapping, holebegin, 0, evenCows: true);
            }
            await ShmemTruncateRange(inode, newsize);
            if (oldsize > holebegin)
            {
                await UnmapMappingRange(inode.IMapping, holebegin, 0, evenCows: true);
            }
        }
        return 0;
    }

    /// <summary>
    /// shmem_truncate_range(): drop the page cache of [<paramref name="lstart"/>,
    /// <paramref name="lend"/>] (-1: to the end of the file) through shmem_undo_range().
    /// </summary>
    /// <remarks>Context: i_rwsem write-held by the caller (truncate, hole punch), or the inode unreachable
    /// (eviction); takes folio locks.</remarks>
    [KernelSymbol("shmem_truncate_range", "mm/shmem.c")]
    public ValueTask ShmemTruncateRange(Inode inode, long lstart, long lend = -1) => ShmemUndoRange(inode, lstart, lend);

    /// <summary>
    /// shmem_undo_range(): drop the page-cache folios wholly inside [lstart, lend] (lend -1: to the
    /// end), unmapping any that got mapped meanwhile, a folio batch at a time; partial pages at the
    /// edges are zeroed in part.
    /// </summary>
    /// <remarks>Context: as shmem_truncate_range(). Locks each folio it drops or zeroes; may sleep.</remarks>
    [KernelSymbol("shmem_undo_range", "mm/shmem.c")]
    private async ValueTask ShmemUndoRange(Inode inode, long lstart, long lend)
    {
        var mapping = inode.IMapping;
        long start = (lstart + (long)PAGE_SIZE - 1) >> PAGE_SHIFT;
        long end = lend == -1 ? long.MaxValue : (lend + 1) >> PAGE_SHIFT;
        await ShmemZeroPartial(mapping, lstart, lend);
        var found = mapping.IPages.Where(kv => kv.Key >= start && kv.Key < end).ToList();
        bool drained = false;
        for (int first = 0; first < found.Count; first += FOLIO_BATCH_SIZE)
        {
            var batch = found.GetRange(first, Math.Min(FOLIO_BATCH_SIZE, found.Count - first));
            foreach (var (index, pfn) in batch)
            {
                var f = new Folio(pfn);
                FolioGet(f);
                await FolioLock(f, "shmem_undo_range");
                if (FolioMappingObject(f) == mapping)
                {
                    // truncate_inode_folio(): a mapping that raced in is removed first.
                    if (FolioMapped(f))
                    {
                        await UnmapMappingPages(mapping, (ulong)index, 1, evenCows: false);
                    }
                    await FilemapRemoveFolio(mapping, f, index);
                }
                await FolioUnlock(f, "shmem_undo_range");
            }
            FolioBatchRelease(batch.Select(kv => new Folio(kv.Value)), ref drained);
        }
    }

    /// <summary>The partial-page part of shmem_undo_range(): zero the bytes of the hole in the
    /// first and last page when the hole does not cover them whole.</summary>
    private async ValueTask ShmemZeroPartial(AddressSpace mapping, long lstart, long lend)
    {
        async ValueTask ZeroIn(long index, long from, long to)
        {
            if (!mapping.IPages.TryGetValue(index, out ulong pfn))
            {
                return;
            }
            var f = new Folio(pfn);
            FolioGet(f);
            await FolioLock(f, "shmem_undo_range");
            ulong pbase = pfn << PAGE_SHIFT;
            for (long off = from; off < to; off++)
            {
                if ((off & 7) == 0 && off + 8 <= to)
                {
                    Mem.WriteWord(pbase + (ulong)off, 0);
                    off += 7;
                    continue;
                }
                Mem.Store(pbase + (ulong)off, 1, 0);
            }
            await FolioUnlock(f, "shmem_undo_range");
            FolioPut(f);
        }
        long firstPartial = lstart >> PAGE_SHIFT;
        long lastPartial = lend >> PAGE_SHIFT;
        if ((lstart & (long)(PAGE_SIZE - 1)) != 0)
        {
            long to = firstPartial == lastPartial ? (lend & (long)(PAGE_SIZE - 1)) + 1 : (long)PAGE_SIZE;
            await ZeroIn(firstPartial, lstart & (long)(PAGE_SIZE - 1), to);
        }
        if (((lend + 1) & (long)(PAGE_SIZE - 1)) != 0 && (lastPartial != firstPartial || (lstart & (long)(PAGE_SIZE - 1)) == 0))
        {
            await ZeroIn(lastPartial, 0, (lend & (long)(PAGE_SIZE - 1)) + 1);
        }
    }

    /// <summary>filemap_remove_folio(): out of the page cache; the cache's reference is dropped.</summary>
    /// <remarks>Context: folio locked; takes the i_pages lock.</remarks>
    [KernelSymbol("filemap_remove_folio", "mm/filemap.c")]
    private async ValueTask FilemapRemoveFolio(AddressSpace mapping, Folio f, long index)
    {
        await mapping.IPagesLock.Lock("filemap_remove_folio");
        Sched.Access(mapping.PagesObj, write: true);
        mapping.IPages.Remove(index);
        MemMap.Mapping(f.Pfn) = 0;
        await mapping.IPagesLock.Unlock("filemap_remove_folio");
        FolioPut(f);
    }

    /// <summary>iput(): the last reference to an unlinked inode evicts it (its page cache goes).</summary>
    /// <remarks>
    /// Context: no mm locks or i_rwsem held (called from the deferred fput); eviction truncates the
    /// page cache, taking folio locks. May sleep.
    /// </remarks>
    [KernelSymbol("iput", "fs/inode.c")]
    public async ValueTask Iput(Inode inode)
    {
        if (--inode.ICount > 0 || inode.NLink > 0)
        {
            return;
        }
        // shmem_evict_inode(): give back the size charge, then shmem_truncate_range(inode, 0, -1).
        ShmemUnacctSize(inode.ShmemFlags, inode.ISize);
        await ShmemTruncateRange(inode, 0);
    }
}

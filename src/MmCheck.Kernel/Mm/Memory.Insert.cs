using static Linux.PgTable;
using static Linux.VmFault;
using static Linux.VmFlags;

namespace Linux;

// mm/memory.c and mm/huge_memory.c: the insertion API drivers use — remap_pfn_range() and its
// mmap_prepare split, vmf_insert_pfn(_prot), vmf_insert_mixed(), vm_insert_page(),
// vmf_insert_pfn_pmd/pud(), get_locked_pte().
public sealed partial class Kernel
{
    /// <summary>get_locked_pte(): allocates the tables down to the PTE and returns it locked.</summary>
    /// <remarks>
    /// Context: mmap_lock held (read or write) or the VMA read-locked. May allocate tables (and
    /// sleep); returns with the PTE table's PTL held, which the caller releases.
    /// </remarks>
    [KernelSymbol("get_locked_pte", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<(PtPtr Pte, SpinLock Ptl)?> GetLockedPte(MmStruct mm, ulong addr)
    {
        if (await WalkAllocPmd(mm, addr) is not { } pmd)
        {
            return null;
        }
        if (await PteAlloc(mm, pmd, addr))
        {
            return null;
        }
        return await PteOffsetMapLock(mm, pmd, addr);
    }

    /// <summary>
    /// remap_pfn_range(): the legacy form a driver calls from ->mmap (or, wrongly, ->fault). By
    /// release (variant remap_pfn_range.tracking):
    /// <list type="bullet">
    /// <item>current (pfnmap_track): remap_pfn_range_prepare_vma() applies the COW pgoff rule and
    /// sets VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP with vm_flags_set() (which asserts the mmap
    /// write lock), then remap_pfn_range_track() takes a pfnmap_track_ctx for a whole-VMA remap
    /// and refuses a second one with -EINVAL;</item>
    /// <item>v6.3–v6.15 (vm_pat): track_pfn_remap() marks a whole-VMA remap VM_PAT with
    /// vm_flags_set(), then remap_pfn_range_internal() sets the pgoff and the flags;</item>
    /// <item>before v6.3 (direct): the same, with the flags ORed into vma->vm_flags, unchecked.</item>
    /// </list>
    /// Every form fills special PTEs with BUG_ON on one already set, and — since v6.11 — zaps what
    /// it mapped if it fails part-way.
    /// </summary>
    /// <remarks>Context: "only safe if the mm semaphore is held": the mmap write lock.</remarks>
    [KernelSymbol("remap_pfn_range", "mm/memory.c")]
    public async ValueTask<int> RemapPfnRange(VmAreaStruct vma, ulong addr, ulong pfn, ulong size, PgProt prot)
    {
        int err;
        if (Variants.RemapPfnRangeTracking == Variants.RemapPfnTracking.PfnmapTrack)
        {
            err = await RemapPfnRangePrepareVma(vma, addr, pfn, size);
            if (err != 0)
            {
                return err;
            }
            // do_remap_pfn_range().
            return await RemapPfnRangeTrack(vma, addr, pfn, size, prot);
        }
        if (await TrackPfnRemap(vma, addr, PageAlign(size)) != 0)
        {
            return -Errno.EINVAL;
        }
        err = await RemapPfnRangeNotrack(vma, addr, pfn, size, prot);
        if (err != 0)
        {
            await UntrackPfn(vma, rangeGiven: true, mmWrLocked: true);
        }
        return err;
    }

    /// <summary>
    /// get_remap_pgoff(): the "horrible special case" for COW mappings — a private writable PFN
    /// map must be remapped whole, and its vm_pgoff becomes the first PFN so that vm_normal_page()
    /// can tell the original PFNs from COWed anonymous pages. 0 (with <paramref name="vmPgoff"/>
    /// updated for a COW mapping) or -EINVAL.
    /// </summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("get_remap_pgoff", "mm/memory.c")]
    private static int GetRemapPgoff(bool isCow, ulong addr, ulong end, ulong vmStart, ulong vmEnd, ulong pfn, ref ulong vmPgoff)
    {
        if (isCow)
        {
            if (addr != vmStart || end != vmEnd)
            {
                return -Errno.EINVAL;
            }
            vmPgoff = pfn;
        }
        return 0;
    }

    /// <summary>
    /// remap_pfn_range_prepare_vma(): what ->mmap_prepare's remap_pfn_range_prepare() does to the
    /// descriptor, done to a live VMA: the COW pgoff and VM_REMAP_FLAGS through vm_flags_set(),
    /// which asserts the mmap write lock even when the flags are already there.
    /// </summary>
    /// <remarks>Context: mmap_lock write-held (vm_flags_set() asserts it); write-locks the VMA.</remarks>
    [KernelSymbol("remap_pfn_range_prepare_vma", "mm/memory.c")]
    private async ValueTask<int> RemapPfnRangePrepareVma(VmAreaStruct vma, ulong addr, ulong pfn, ulong size)
    {
        ulong pgoff = vma.VmPgoff;
        int err = GetRemapPgoff(MmFlags.IsCowMapping(vma.VmFlags), addr, addr + PageAlign(size), vma.VmStart, vma.VmEnd, pfn, ref pgoff);
        if (err != 0)
        {
            return err;
        }
        vma.VmPgoff = pgoff;
        await VmFlagsSet(vma, VM_REMAP_FLAGS, "remap_pfn_range_prepare_vma");
        return 0;
    }

    /// <summary>
    /// remap_pfn_range_track() (v6.16+): a remap of the whole VMA reserves the range
    /// (pfnmap_track(); the memory-type bookkeeping is not modelled) in a context the VMA keeps
    /// until it is freed — a zap does not drop it — so a VMA that already has one gets -EINVAL
    /// before any PTE is touched. The context is stored only once every PTE is in: two remaps
    /// that race both pass the check. A partial remap only looks the cache mode up.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held (from -&gt;mmap) or, for remap_pfn_range_complete(), the new
    /// VMA not yet visible to faults. Takes PTLs while filling; may sleep.
    /// </remarks>
    [KernelSymbol("remap_pfn_range_track", "mm/memory.c")]
    private async ValueTask<int> RemapPfnRangeTrack(VmAreaStruct vma, ulong addr, ulong pfn, ulong size, PgProt prot)
    {
        size = PageAlign(size);
        PfnmapTrackCtx? ctx = null;
        if (addr == vma.VmStart && addr + size == vma.VmEnd)
        {
            Sched.Access(ObjId.Make(ObjId.Kind.Vma, (ulong)vma.Id), write: false);
            if (vma.PfnmapTrackCtx is not null)
            {
                return -Errno.EINVAL;
            }
            ctx = new PfnmapTrackCtx(pfn, size);
        }
        int err = await RemapPfnRangeNotrack(vma, addr, pfn, size, prot);
        if (ctx is not null && err == 0)
        {
            Sched.Access(ObjId.Make(ObjId.Kind.Vma, (ulong)vma.Id), write: true);
            vma.PfnmapTrackCtx = ctx;
        }
        return err;
    }

    /// <summary>
    /// track_pfn_remap() (arch/x86/mm/pat/memtype.c, v6.3–v6.15; before v6.3 the flag was ORed in
    /// directly): a remap of the whole VMA reserves the range's memory type and marks the VMA
    /// VM_PAT; a partial one only looks the type up. The reservation itself always succeeds for
    /// the I/O memory the model maps.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held for the vm_flags_set() releases (v6.3+); the direct form
    /// writes vm_flags unchecked.
    /// </remarks>
    [KernelSymbol("track_pfn_remap", "arch/x86/mm/pat/memtype.c")]
    private async ValueTask<int> TrackPfnRemap(VmAreaStruct vma, ulong addr, ulong size)
    {
        if (addr == vma.VmStart && size == vma.VmEnd - vma.VmStart)
        {
            await SetRemapVmaFlags(vma, VM_PAT, "track_pfn_remap");
        }
        return 0;
    }

    /// <summary>
    /// untrack_pfn(vma, pfn, size, mm_wr_locked) (before v6.16): drops a VM_PAT VMA's reservation and
    /// the flag. remap_pfn_range() passes the range it failed to map; unmap_single_vma() passes none
    /// (<paramref name="rangeGiven"/> false), and the range is then read back from the page tables by
    /// get_pat_info() — when it cannot be, the reservation and VM_PAT stay. The model's reservations
    /// always succeed, so freeing one (free_pfn_range()) leaves nothing else to undo.
    /// </summary>
    /// <remarks>
    /// Context: mmap lock held, for write when <paramref name="mmWrLocked"/> (then vm_flags_clear(),
    /// else __vm_flags_mod() without the assertion; before v6.3 vm_flags was written directly).
    /// </remarks>
    [KernelSymbol("untrack_pfn", "arch/x86/mm/pat/memtype.c")]
    internal async ValueTask UntrackPfn(VmAreaStruct vma, bool rangeGiven, bool mmWrLocked)
    {
        if ((vma.VmFlags & VM_PAT) == 0 || (!rangeGiven && await GetPatInfo(vma) != 0))
        {
            return;
        }
        if (mmWrLocked && Variants.RemapPfnRangeTracking != Variants.RemapPfnTracking.Direct)
        {
            await VmFlagsClear(vma, VM_PAT);
        }
        else
        {
            SetVmFlags(vma, vma.__VmFlags & ~VM_PAT);
        }
    }

    /// <summary>
    /// get_pat_info() (arch/x86/mm/pat/memtype.c, v6.9–v6.15; before v6.9 the same lookup was open-coded
    /// in untrack_pfn() and track_pfn_copy()): the range a whole-VMA track_pfn_remap() reserved is read
    /// back from the VMA's first page. A COW mapping falls back to vm_pgoff from v6.9; otherwise an
    /// unmapped first page is a WARN — the one the 2024 vfio fork reporters hit. 0 or -EINVAL.
    /// </summary>
    /// <remarks>Context: mmap lock or i_mmap_rwsem held (follow_phys() takes the PTE lock).</remarks>
    [KernelSymbol("get_pat_info", "arch/x86/mm/pat/memtype.c")]
    private async ValueTask<int> GetPatInfo(VmAreaStruct vma)
    {
        if (await FollowPhys(vma))
        {
            return 0;
        }
        if (Variants.PatInfoCowFallback && MmFlags.IsCowMapping(vma.VmFlags))
        {
            return 0;
        }
        WarnOnOnce(true, $"get_pat_info: {vma} has VM_PAT but its first page is not mapped");
        return -Errno.EINVAL;
    }

    /// <summary>
    /// follow_phys(vma, vma->vm_start, …): whether a PFN maps the VMA's first page — from v6.9 never
    /// an anonymous COW copy (the vm_normal_folio() test 04c35ab3bdae added to mm/memory.c:follow_phys()).
    /// The model reads the entry with follow_pfnmap_start(), as v6.12+ does.
    /// </summary>
    /// <remarks>Context: the mmap lock or i_mmap_rwsem held, as for get_pat_info(); takes the PTE lock.</remarks>
    [KernelSymbol("follow_phys", "arch/x86/mm/pat/memtype.c")]
    private async ValueTask<bool> FollowPhys(VmAreaStruct vma)
    {
        var args = new FollowPfnmapArgs { Vma = vma, Address = vma.VmStart };
        if (await FollowPfnmapStart(args) != 0)
        {
            return false;
        }
        bool found = args.Special || !Variants.PatInfoCowFallback;
        await FollowPfnmapEnd(args);
        return found;
    }

    /// <summary>The flag update of the release: vm_flags_set() (v6.3+), or vma->vm_flags |= before.</summary>
    private async ValueTask SetRemapVmaFlags(VmAreaStruct vma, VmFlags flags, string fn)
    {
        if (Variants.RemapPfnRangeTracking == Variants.RemapPfnTracking.Direct)
        {
            SetVmFlags(vma, vma.__VmFlags | flags);
        }
        else
        {
            await VmFlagsSet(vma, flags, fn);
        }
    }

    /// <summary>
    /// remap_pfn_range_notrack(): remap_pfn_range_internal(), and on a failure part-way zap what
    /// it installed (79a61cc3fc04, v6.11: "a partial pfn range mapping is dangerous").
    /// </summary>
    /// <remarks>
    /// Context: as remap_pfn_range(): mmap_lock write-held. A failed remap zaps what it installed
    /// (taking PTLs); may sleep.
    /// </remarks>
    [KernelSymbol("remap_pfn_range_notrack", "mm/memory.c")]
    private async ValueTask<int> RemapPfnRangeNotrack(VmAreaStruct vma, ulong addr, ulong pfn, ulong size, PgProt prot)
    {
        int err = await RemapPfnRangeInternal(vma, addr, pfn, size, prot);
        if (err != 0 && Variants.RemapPfnRangeZapOnError)
        {
            await ZapPageRangeSingle(vma, addr, PageAlign(size), null);
        }
        return err;
    }

    /// <summary>io_remap_pfn_range(): remap_pfn_range() on x86 (no memory encryption bit to clear).</summary>
    /// <remarks>Context: as remap_pfn_range(): mmap_lock write-held.</remarks>
    [KernelSymbol("io_remap_pfn_range", "include/linux/mm.h")]
    public ValueTask<int> IoRemapPfnRange(VmAreaStruct vma, ulong addr, ulong pfn, ulong size, PgProt prot) =>
        RemapPfnRange(vma, addr, pfn, size, prot);

    /// <summary>
    /// remap_pfn_range_prepare(): the ->mmap_prepare() form: flags and the COW pgoff go on the
    /// descriptor; the PTEs are filled by remap_pfn_range_complete() once the VMA is linked.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap_prepare time: the descriptor is private to mmap_region(), which holds
    /// mmap_lock for writing; no VMA exists yet.
    /// </remarks>
    [KernelSymbol("remap_pfn_range_prepare", "mm/memory.c")]
    public static void RemapPfnRangePrepare(VmAreaDesc desc, ulong pfn)
    {
        ulong size = desc.End - desc.Start;
        // Start and end are the VMA's, so the COW rule cannot fail here.
        ulong pgoff = desc.Pgoff;
        GetRemapPgoff(MmFlags.IsCowMapping(desc.VmFlags), desc.Start, desc.End, desc.Start, desc.End, pfn, ref pgoff);
        desc.Pgoff = pgoff;
        desc.VmFlags |= VM_REMAP_FLAGS;
        desc.Action.Type = MmapAction.ActionType.RemapPfn;
        desc.Action.RemapStart = desc.Start;
        desc.Action.RemapStartPfn = pfn;
        desc.Action.RemapSize = size;
        desc.Action.RemapPgProt = desc.PageProt;
    }

    /// <summary>
    /// remap_pfn_range_complete(): fills the PTEs through the same tracking as remap_pfn_range()
    /// (do_remap_pfn_range()); the flags were set at prepare time (remap_pfn_range_internal()
    /// warns if they are missing).
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held, called once the new VMA is linked (mmap_action_complete()).
    /// Takes PTLs; may sleep.
    /// </remarks>
    [KernelSymbol("remap_pfn_range_complete", "mm/memory.c")]
    public ValueTask<int> RemapPfnRangeComplete(VmAreaStruct vma, ulong addr, ulong pfn, ulong size, PgProt prot) =>
        RemapPfnRangeTrack(vma, addr, pfn, size, prot);

    /// <summary>
    /// remap_pfn_range_internal(): before v6.16 it applied the COW pgoff rule and set the remap
    /// flags itself; now they are set beforehand (remap_pfn_range_prepare_vma() or ->mmap_prepare)
    /// and only checked. Then the PGD-level loop.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held (older releases change vm_flags here). Allocates tables as it
    /// goes (may sleep) and takes each PTE table's PTL.
    /// </remarks>
    [KernelSymbol("remap_pfn_range_internal", "mm/memory.c")]
    private async ValueTask<int> RemapPfnRangeInternal(VmAreaStruct vma, ulong addr, ulong pfn, ulong size, PgProt prot)
    {
        var mm = vma.VmMm;
        ulong end = addr + PageAlign(size);
        if (WarnOnOnce(OffsetInPage(addr), "remap_pfn_range: unaligned address"))
        {
            return -Errno.EINVAL;
        }
        if (Variants.RemapPfnRangeTracking == Variants.RemapPfnTracking.PfnmapTrack)
        {
            VmWarnOnOnce((vma.VmFlags & VM_REMAP_FLAGS) != VM_REMAP_FLAGS, $"remap_pfn_range_internal: {vma} lacks the remap flags");
        }
        else
        {
            ulong pgoff = vma.VmPgoff;
            int e = GetRemapPgoff(MmFlags.IsCowMapping(vma.VmFlags), addr, end, vma.VmStart, vma.VmEnd, pfn, ref pgoff);
            if (e != 0)
            {
                return e;
            }
            vma.VmPgoff = pgoff;
            await SetRemapVmaFlags(vma, VM_REMAP_FLAGS, "remap_pfn_range_internal");
        }
        BugOn(addr >= end, "remap_pfn_range of an empty range");
        long pfnBase = (long)pfn - (long)(addr >> PAGE_SHIFT);
        var pgd = PgdOffset(mm, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PgdirShift);
            int err = await RemapP4dRange(mm, pgd, addr, next, pfnBase, prot);
            if (err != 0)
            {
                return err;
            }
            pgd = pgd with { Index = pgd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>remap_p4d_range(): allocate the P4D table under one PGD entry and fill its range.</summary>
    /// <remarks>Context: mmap_lock write-held; may allocate (sleep).</remarks>
    [KernelSymbol("remap_p4d_range", "mm/memory.c")]
    private async ValueTask<int> RemapP4dRange(MmStruct mm, PtPtr pgd, ulong addr, ulong end, long pfnBase, PgProt prot)
    {
        if (await P4dAlloc(mm, pgd, addr) is not { } p4d)
        {
            return -Errno.ENOMEM;
        }
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.P4dShift);
            int err = await RemapPudRange(mm, p4d, addr, next, pfnBase, prot);
            if (err != 0)
            {
                return err;
            }
            p4d = p4d with { Index = p4d.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>remap_pud_range(): allocate the PUD table under one P4D entry and fill its range.</summary>
    /// <remarks>Context: mmap_lock write-held; may allocate (sleep).</remarks>
    [KernelSymbol("remap_pud_range", "mm/memory.c")]
    private async ValueTask<int> RemapPudRange(MmStruct mm, PtPtr p4d, ulong addr, ulong end, long pfnBase, PgProt prot)
    {
        if (await PudAlloc(mm, p4d, addr) is not { } pud)
        {
            return -Errno.ENOMEM;
        }
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PudShift);
            int err = await RemapPmdRange(mm, pud, addr, next, pfnBase, prot);
            if (err != 0)
            {
                return err;
            }
            pud = pud with { Index = pud.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>remap_pmd_range(): allocate the PMD and PTE tables under one PUD entry and fill its range.</summary>
    /// <remarks>Context: mmap_lock write-held; may allocate (sleep).</remarks>
    [KernelSymbol("remap_pmd_range", "mm/memory.c")]
    private async ValueTask<int> RemapPmdRange(MmStruct mm, PtPtr pud, ulong addr, ulong end, long pfnBase, PgProt prot)
    {
        if (await PmdAlloc(mm, pud, addr) is not { } pmd)
        {
            return -Errno.ENOMEM;
        }
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PmdShift);
            VmBugOn(PgTable.PmdLeaf(PmdpGet(pmd)), "remap_pmd_range over a huge PMD");
            int err = await RemapPteRange(mm, pmd, addr, next, pfnBase, prot);
            if (err != 0)
            {
                return err;
            }
            pmd = pmd with { Index = pmd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>remap_pte_range(): under the PTL, each PTE must be none (BUG_ON otherwise).</summary>
    /// <remarks>Context: mmap_lock write-held. Takes and drops the PTE table's PTL around the fill.</remarks>
    [KernelSymbol("remap_pte_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<int> RemapPteRange(MmStruct mm, PtPtr pmd, ulong addr, ulong end, long pfnBase, PgProt prot)
    {
        if (await PteAlloc(mm, pmd, addr))
        {
            return -Errno.ENOMEM;
        }
        if (await PteOffsetMapLock(mm, pmd, addr) is not { } l)
        {
            return -Errno.ENOMEM;
        }
        // The BUG_ON leaves the PTL held, as in the kernel: no try/finally.
        for (var pte = l.Pte; addr != end; addr += PAGE_SIZE, pte = pte with { Index = pte.Index + 1 })
        {
            BugOn(!PteNone(PtepGet(pte)), $"remap_pfn_range: PTE at {addr:x} is already set ({PtepGet(pte)})");
            ulong pfn = (ulong)(pfnBase + (long)(addr >> PAGE_SHIFT));
            SetPteAt(mm, addr, pte, PteMkspecial(PfnPte(pfn, prot)));
        }
        await l.Ptl.Unlock("remap_pte_range");
        return 0;
    }

    /// <summary>
    /// vmf_insert_pfn_prot(): insert one special PTE from a fault handler. Safe under the mmap read
    /// lock (it never touches vm_flags); a PTE already present makes it a no-op (VM_FAULT_NOPAGE).
    /// </summary>
    /// <remarks>
    /// Context: from a fault handler: mmap_lock read-held or the VMA read-locked. Takes and drops
    /// the PTL (get_locked_pte() may allocate tables).
    /// </remarks>
    [KernelSymbol("vmf_insert_pfn_prot", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<VmFault> VmfInsertPfnProt(VmAreaStruct vma, ulong addr, ulong pfn, PgProt prot)
    {
        var f = vma.VmFlags;
        BugOn((f & (VM_PFNMAP | VM_MIXEDMAP)) == 0, $"vmf_insert_pfn into {vma} without VM_PFNMAP|VM_MIXEDMAP");
        BugOn((f & (VM_PFNMAP | VM_MIXEDMAP)) == (VM_PFNMAP | VM_MIXEDMAP), $"{vma} has both VM_PFNMAP and VM_MIXEDMAP");
        BugOn((f & VM_PFNMAP) != 0 && MmFlags.IsCowMapping(f), $"vmf_insert_pfn into COW PFN map {vma}");
        BugOn((f & VM_MIXEDMAP) != 0 && PfnValid(pfn), $"vmf_insert_pfn of a struct-page pfn {pfn:x} into mixed map");
        if (addr < vma.VmStart || addr >= vma.VmEnd)
        {
            return VM_FAULT_SIGBUS;
        }
        return await InsertPfn(vma, addr, pfn, prot, mkwrite: false);
    }

    /// <summary>vmf_insert_pfn().</summary>
    /// <remarks>Context: as vmf_insert_pfn_prot(): mmap_lock read-held or the VMA read-locked.</remarks>
    [KernelSymbol("vmf_insert_pfn", "mm/memory.c")]
    public ValueTask<VmFault> VmfInsertPfn(VmAreaStruct vma, ulong addr, ulong pfn) =>
        VmfInsertPfnProt(vma, addr, pfn, vma.VmPageProt);

    /// <summary>
    /// vm_mixed_zeropage_allowed(): the shared zero page may go into a VM_MIXEDMAP VMA that is a
    /// COW mapping, cannot become writable, or is VM_IO with ->pfn_mkwrite (GUP cannot pin it there).
    /// </summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("vm_mixed_zeropage_allowed", "mm/memory.c")]
    private bool VmMixedZeropageAllowed(VmAreaStruct vma)
    {
        VmWarnOnOnce((vma.VmFlags & VM_PFNMAP) != 0, $"vm_mixed_zeropage_allowed: {vma} is VM_PFNMAP");
        // mm_forbids_zeropage() is false on x86.
        if (MmFlags.IsCowMapping(vma.VmFlags))
        {
            return true;
        }
        if ((vma.VmFlags & (VM_WRITE | VM_MAYWRITE)) == 0)
        {
            return true;
        }
        // vma_is_fsdax(): no DAX files in the model.
        return vma.VmOps?.PfnMkwrite is not null && (vma.VmFlags & VM_IO) != 0;
    }

    /// <summary>vm_mixed_ok(): the PFN may go into the VMA (mirrors vm_normal_page()'s abort conditions).</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("vm_mixed_ok", "mm/memory.c")]
    private bool VmMixedOk(VmAreaStruct vma, ulong pfn, bool mkwrite)
    {
        if (IsZeroPfn(pfn) && (mkwrite || !VmMixedZeropageAllowed(vma)))
        {
            return false;
        }
        if ((vma.VmFlags & VM_MIXEDMAP) != 0)
        {
            return true;
        }
        return IsZeroPfn(pfn);
    }

    /// <summary>
    /// vmf_insert_mixed() → __vm_insert_mixed(mkwrite = false): SIGBUS unless the VMA is
    /// VM_MIXEDMAP (or the PFN is the shared zero page where allowed). x86 has pte_special, so the
    /// entry is always a special PTE from insert_pfn(), never a refcounted page (insert_page() is
    /// only for architectures without ARCH_HAS_PTE_SPECIAL).
    /// </summary>
    /// <remarks>
    /// Context: from a fault handler: mmap_lock read-held or the VMA read-locked. Takes and drops
    /// the PTL.
    /// </remarks>
    [KernelSymbol("vmf_insert_mixed", "mm/memory.c")]
    public async ValueTask<VmFault> VmfInsertMixed(VmAreaStruct vma, ulong addr, ulong pfn)
    {
        if (!VmMixedOk(vma, pfn, mkwrite: false))
        {
            return VM_FAULT_SIGBUS;
        }
        if (addr < vma.VmStart || addr >= vma.VmEnd)
        {
            return VM_FAULT_SIGBUS;
        }
        // pfnmap_setup_cachemode_pfn() and pfn_modify_allowed() change nothing the model tracks.
        return await InsertPfn(vma, addr, pfn, vma.VmPageProt, mkwrite: false);
    }

    /// <summary>insert_pfn(): the PTE under its lock; with mkwrite an existing PTE of the same PFN is made writable.</summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked, no PTL. Takes and drops the PTE table's
    /// PTL; may sleep allocating tables.
    /// </remarks>
    [KernelSymbol("insert_pfn", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> InsertPfn(VmAreaStruct vma, ulong addr, ulong pfn, PgProt prot, bool mkwrite)
    {
        var mm = vma.VmMm;
        if (await GetLockedPte(mm, addr) is not { } l)
        {
            return VM_FAULT_OOM;
        }
        var entry = PtepGet(l.Pte);
        if (!PteNone(entry))
        {
            if (mkwrite)
            {
                if (PtePfn(entry) != pfn)
                {
                    WarnOnOnce(!IsZeroPfn(PtePfn(entry)), $"insert_pfn mkwrite: pfn {pfn:x} differs from mapped {PtePfn(entry):x}");
                }
                else
                {
                    entry = MaybeMkwrite(PteMkdirty(PteMkyoung(entry)), vma);
                    PtepSetAccessFlags(vma, addr, l.Pte, entry, dirty: true);
                }
            }
            await l.Ptl.Unlock("insert_pfn");
            return VM_FAULT_NOPAGE;
        }
        entry = PteMkspecial(PfnPte(pfn, prot));
        if (mkwrite)
        {
            entry = MaybeMkwrite(PteMkdirty(PteMkyoung(entry)), vma);
        }
        SetPteAt(mm, addr, l.Pte, entry);
        await l.Ptl.Unlock("insert_pfn");
        return VM_FAULT_NOPAGE;
    }

    /// <summary>
    /// vm_insert_page(): map a driver's page (refcounted, counted as a file page). Outside
    /// VM_MIXEDMAP it sets that flag, which needs the mmap write lock.
    /// </summary>
    /// <remarks>
    /// Context: normally from -&gt;mmap with mmap_lock write-held: setting VM_MIXEDMAP asserts it
    /// and write-locks the VMA. From a fault handler only if VM_MIXEDMAP is already set. Takes the
    /// PTL.
    /// </remarks>
    [KernelSymbol("vm_insert_page", "mm/memory.c")]
    public async ValueTask<int> VmInsertPage(VmAreaStruct vma, ulong addr, Page page)
    {
        if (addr < vma.VmStart || addr >= vma.VmEnd)
        {
            return -Errno.EFAULT;
        }
        if ((vma.VmFlags & VM_MIXEDMAP) == 0)
        {
            BugOn((vma.VmFlags & VM_PFNMAP) != 0, $"vm_insert_page into VM_PFNMAP {vma}");
            await VmFlagsSet(vma, VM_MIXEDMAP);
        }
        return await InsertPage(vma, addr, page, vma.VmPageProt);
    }

    /// <summary>insert_page(): -EINVAL for anonymous or typed pages, -EBUSY if the PTE is taken.</summary>
    /// <remarks>Context: mmap_lock or the VMA lock held. Takes and drops the PTE table's PTL.</remarks>
    [KernelSymbol("insert_page", "mm/memory.c")]
    private async ValueTask<int> InsertPage(VmAreaStruct vma, ulong addr, Page page, PgProt prot)
    {
        var folio = new Folio(page.Pfn);
        if (FolioTestAnon(folio) || FolioTest(folio, PageFlags.PGTY_table))
        {
            return -Errno.EINVAL;
        }
        if (await GetLockedPte(vma.VmMm, addr) is not { } l)
        {
            return -Errno.ENOMEM;
        }
        int ret = 0;
        if (!PteNone(PtepGet(l.Pte)))
        {
            ret = -Errno.EBUSY;
        }
        else
        {
            FolioGet(folio);
            IncMmCounter(vma.VmMm, MmCounterFile(folio));
            FolioAddFileRmapPte(folio, page, vma);
            SetPteAt(vma.VmMm, addr, l.Pte, MkPte(page, prot));
        }
        await l.Ptl.Unlock("insert_page");
        return ret;
    }

    /// <summary>
    /// vmf_insert_pfn_pmd(): a huge special PFN leaf for a ->huge_fault handler (v6.12 huge
    /// pfnmaps). An existing PMD leaves things as they are.
    /// </summary>
    /// <remarks>
    /// Context: from a -&gt;huge_fault handler: mmap_lock read-held or the VMA read-locked. Takes
    /// and drops the PMD lock.
    /// </remarks>
    [KernelSymbol("vmf_insert_pfn_pmd", "mm/huge_memory.c")]
    public async ValueTask<VmFault> VmfInsertPfnPmd(VmFaultInfo vmf, ulong pfn, bool write)
    {
        var vma = vmf.Vma;
        ulong addr = vmf.Address & ~(Paging.PmdSize - 1);
        var f = vma.VmFlags;
        BugOn((f & (VM_PFNMAP | VM_MIXEDMAP)) == 0, $"vmf_insert_pfn_pmd into {vma} without VM_PFNMAP|VM_MIXEDMAP");
        BugOn((f & (VM_PFNMAP | VM_MIXEDMAP)) == (VM_PFNMAP | VM_MIXEDMAP), $"{vma} has both VM_PFNMAP and VM_MIXEDMAP");
        BugOn((f & VM_PFNMAP) != 0 && MmFlags.IsCowMapping(f), $"vmf_insert_pfn_pmd into COW PFN map {vma}");
        if (addr < vma.VmStart || addr >= vma.VmEnd)
        {
            return VM_FAULT_SIGBUS;
        }
        var ptl = await PmdLock(vma.VmMm, vmf.Pmd);
        if (PmdNone(PmdpGet(vmf.Pmd)))
        {
            var prot = Pgprot4kToLarge(vma.VmPageProt);
            var entry = new Pmd(PfnPmd(pfn, prot).Val | X86Pte._PAGE_SPECIAL);
            if (write)
            {
                entry = new Pmd(entry.Val | X86Pte._PAGE_DIRTY | X86Pte._PAGE_ACCESSED |
                                ((vma.VmFlags & VM_WRITE) != 0 ? X86Pte._PAGE_RW : 0));
            }
            SetPmdAt(vma.VmMm, addr, vmf.Pmd, entry);
        }
        else if (write && PgTable.PmdLeaf(PmdpGet(vmf.Pmd)) && PgTable.PmdPfn(PmdpGet(vmf.Pmd)) == pfn &&
                 (vma.VmFlags & VM_WRITE) != 0)
        {
            var cur = PmdpGet(vmf.Pmd);
            SetPmdAt(vma.VmMm, addr, vmf.Pmd, new Pmd(cur.Val | X86Pte._PAGE_DIRTY | X86Pte._PAGE_ACCESSED | X86Pte._PAGE_RW));
        }
        await ptl.Unlock("vmf_insert_pfn_pmd");
        return VM_FAULT_NOPAGE;
    }

    /// <summary>vmf_insert_pfn_pud(): the PUD-sized (1 GiB) counterpart.</summary>
    /// <remarks>
    /// Context: from a -&gt;huge_fault handler: mmap_lock read-held or the VMA read-locked. Takes
    /// and drops the PUD lock (page_table_lock).
    /// </remarks>
    [KernelSymbol("vmf_insert_pfn_pud", "mm/huge_memory.c")]
    public async ValueTask<VmFault> VmfInsertPfnPud(VmFaultInfo vmf, ulong pfn, bool write)
    {
        var vma = vmf.Vma;
        ulong addr = vmf.Address & ~(Paging.PudSize - 1);
        var f = vma.VmFlags;
        BugOn((f & (VM_PFNMAP | VM_MIXEDMAP)) == 0, $"vmf_insert_pfn_pud into {vma} without VM_PFNMAP|VM_MIXEDMAP");
        BugOn((f & VM_PFNMAP) != 0 && MmFlags.IsCowMapping(f), $"vmf_insert_pfn_pud into COW PFN map {vma}");
        if (addr < vma.VmStart || addr >= vma.VmEnd)
        {
            return VM_FAULT_SIGBUS;
        }
        var ptl = await PudLock(vma.VmMm, vmf.Pud);
        if (PudNone(PudpGet(vmf.Pud)))
        {
            var prot = Pgprot4kToLarge(vma.VmPageProt);
            var entry = new Pud(PfnPud(pfn, prot).Val | X86Pte._PAGE_SPECIAL);
            if (write)
            {
                entry = new Pud(entry.Val | X86Pte._PAGE_DIRTY | X86Pte._PAGE_ACCESSED |
                                ((vma.VmFlags & VM_WRITE) != 0 ? X86Pte._PAGE_RW : 0));
            }
            SetPudAt(vma.VmMm, addr, vmf.Pud, entry);
        }
        await ptl.Unlock("vmf_insert_pfn_pud");
        return VM_FAULT_NOPAGE;
    }
}

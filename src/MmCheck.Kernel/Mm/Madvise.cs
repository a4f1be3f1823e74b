using static Linux.Mman;
using static Linux.PgTable;
using static Linux.VmFlags;

namespace Linux;

/// <summary>enum madvise_lock_mode: which lock a behaviour runs under.</summary>
[KernelSymbol("madvise_lock_mode", "mm/madvise.c")]
public enum MadviseLockMode
{
    MADVISE_NO_LOCK,
    MADVISE_MMAP_READ_LOCK,
    MADVISE_MMAP_WRITE_LOCK,
    /// <summary>Only the VMA's read lock, falling back to the mmap read lock.</summary>
    MADVISE_VMA_READ_LOCK,
}

/// <summary>struct madvise_behavior_range: the part of the request applied to the current VMA.</summary>
[KernelSymbol("madvise_behavior_range", "mm/madvise.c")]
public sealed class MadviseBehaviorRange
{
    public ulong Start;
    public ulong End;
}

/// <summary>struct madvise_behavior: one madvise() request as it walks the VMAs.</summary>
[KernelSymbol("madvise_behavior", "mm/madvise.c")]
public sealed class MadviseBehavior
{
    public required MmStruct Mm;
    public required int Behavior;
    /// <summary>The mmu_gather shared by the batched behaviours (DONTNEED, FREE).</summary>
    public MmuGather? Tlb;
    public MadviseLockMode LockMode;
    public readonly MadviseBehaviorRange Range = new();
    public VmAreaStruct? Prev;
    public VmAreaStruct? Vma;
    /// <summary>The behaviour dropped the mmap lock: the VMA pointers are stale.</summary>
    public bool LockDropped;
}

// mm/madvise.c: madvise(2) — the lock each advice needs, the walk over the VMAs of the range, and
// each advice: VMA flag changes (with splits and merges), zapping (DONTNEED), lazy freeing
// (MADV_FREE), hole punching (REMOVE), deactivation and reclaim (COLD, PAGEOUT), prefaulting
// (POPULATE_*), guard markers (GUARD_*), KSM and THP flags. Also the helpers of mm/ksm.c,
// mm/khugepaged.c, mm/swap.c, mm/vmscan.c, mm/pagewalk.c and mm/shmem.c those need.
public sealed partial class Kernel
{
    /// <summary>-ERESTARTNOINTR: the system call is restarted transparently.</summary>
    public const int ERESTARTNOINTR = 513;

    /// <summary>MAX_MADVISE_GUARD_RETRIES.</summary>
    private const int MAX_MADVISE_GUARD_RETRIES = 3;

    /// <summary>FALLOC_FL_KEEP_SIZE / FALLOC_FL_PUNCH_HOLE (include/uapi/linux/falloc.h).</summary>
    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;

    /// <summary>MMF_VM_MERGEABLE: the mm is registered with ksmd.</summary>
    public const ulong MMF_VM_MERGEABLE = 1UL << 16;

    // ---- madvise_update_vma() and the flag-changing behaviours ----

    /// <summary>
    /// madvise_update_vma(): gives [start, end) of the VMA the new flags — merging with a
    /// neighbour or splitting as needed (vma_modify_flags()). Context: mmap write lock held.
    /// </summary>
    [KernelSymbol("madvise_update_vma", "mm/madvise.c")]
    private async ValueTask<int> MadviseUpdateVma(VmFlags newFlags, MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        var range = mb.Range;
        if (vma.VmFlags == newFlags)
        {
            return 0;
        }
        var (v, err) = await VmaModifyFlags(mb.Prev, vma, range.Start, range.End, newFlags);
        if (v is null)
        {
            return err;
        }
        mb.Vma = v;
        // A merge may have kept sticky flags the request did not carry (vma_modify_flags()).
        newFlags |= v.VmFlags & VM_MAYBE_GUARD;
        // vm_flags is protected by the mmap write lock.
        await VmaStartWrite(v);
        VmFlagsReset(v, newFlags);
        return 0;
    }

    /// <summary>
    /// madvise_willneed(): schedule reads of the range. Anonymous memory would be swapped in and
    /// shmem read from swap — the model has no swap, so nothing is read; other files get
    /// vfs_fadvise(WILLNEED) with the mmap lock dropped (the model's files have no readahead).
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held. For a regular non-shmem file it drops the lock around the
    /// (empty) fadvise, holding a file reference, and takes it again; the walk is told the VMAs
    /// went stale. May sleep.
    /// </remarks>
    [KernelSymbol("madvise_willneed", "mm/madvise.c")]
    private async ValueTask<int> MadviseWillneed(MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        var mm = mb.Mm;
        var file = vma.VmFile;
        // CONFIG_SWAP: swapin_walk_ops over a COW mapping's anon pages finds no swap entries.
        if (file is null)
        {
            return 0;
        }
        if (ShmemMapping(file.FMapping))
        {
            // shmem_swapin_range(): no swapped-out shmem folios in the model.
            return 0;
        }
        // The file reference keeps the file alive while the mmap lock is dropped.
        MarkMmapLockDropped(mb);
        file.FCount++;
        await MmapReadUnlock(mm, "madvise_willneed");
        // vfs_fadvise(file, offset, len, POSIX_FADV_WILLNEED): no readahead to start.
        Fput(file);
        await MmapReadLock(mm, "madvise_willneed");
        return 0;
    }

    /// <summary>mark_mmap_lock_dropped().</summary>
    /// <remarks>
    /// Context: called while the walk holds the mmap lock (never just a VMA lock) by a behaviour
    /// that is about to let it go.
    /// </remarks>
    [KernelSymbol("mark_mmap_lock_dropped", "mm/madvise.c")]
    private void MarkMmapLockDropped(MadviseBehavior mb)
    {
        WarnOnOnce(mb.LockMode == MadviseLockMode.MADVISE_VMA_READ_LOCK, "mmap lock dropped under a VMA lock");
        mb.LockDropped = true;
    }

    /// <summary>
    /// can_do_file_pageout(): file pages may be paged out only by their owner or someone who could
    /// write the file. The model's tasks are privileged (inode_owner_or_capable()).
    /// </summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("can_do_file_pageout", "mm/madvise.c")]
    private static bool CanDoFilePageout(VmAreaStruct vma) => vma.VmFile is not null;

    /// <summary>can_madv_lru_vma(): COLD/PAGEOUT leave mlocked, PFN-mapped and hugetlb VMAs alone.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("can_madv_lru_vma", "mm/madvise.c")]
    private static bool CanMadvLruVma(VmAreaStruct vma) => (vma.VmFlags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) == 0;

    /// <summary>
    /// madvise_cold_or_pageout_pte_range(): the pmd_entry of the COLD/PAGEOUT walk. For each
    /// present page mapped by this PTE alone: COLD makes the PTE old and clears the folio's
    /// referenced bits (deactivation); PAGEOUT isolates the folio for reclaim_pages(), which runs
    /// once the PTL is dropped.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held, no PTL. Takes and drops the PTE table's PTL; the folios to
    /// page out are reclaimed only after the PTL is released (reclaim takes folio locks). Ends at a
    /// preemption point.
    /// </remarks>
    [KernelSymbol("madvise_cold_or_pageout_pte_range", "mm/madvise.c")]
    private async ValueTask<int> MadviseColdOrPageoutPteRange(MmuGather tlb, VmAreaStruct vma, bool pageout, PtPtr pmd, ulong addr, ulong end)
    {
        var mm = tlb.Mm;
        var folioList = new List<(Folio Folio, VmAreaStruct Vma, ulong Addr)>();
        bool pageoutAnonOnlyFilter = pageout && !vma.IsAnonymous && !CanDoFilePageout(vma);
        if (PgTable.PmdLeaf(PmdpGet(pmd)))
        {
            // Huge leaves in the model are PFN maps: vm_normal_folio_pmd() finds no folio.
            return 0;
        }
        if (await PteOffsetMapLock(mm, pmd, addr, "madvise_cold_or_pageout_pte_range") is not { } l)
        {
            return 0;
        }
        var pte = l.Pte;
        for (; addr < end; addr += PAGE_SIZE, pte = pte with { Index = pte.Index + 1 })
        {
            var ptent = PtepGet(pte);
            if (PteNone(ptent) || !PtePresent(ptent))
            {
                continue;
            }
            if (VmNormalFolio(vma, addr, ptent) is not { } folio)
            {
                continue;
            }
            // Leave folios mapped elsewhere too, and folios not on the LRU, alone.
            if (!FolioTest(folio, PageFlags.PG_lru) || FolioMapcount(folio) != 1)
            {
                continue;
            }
            if (pageoutAnonOnlyFilter && !FolioTestAnon(folio))
            {
                continue;
            }
            if (!pageout && PteYoung(ptent))
            {
                // clear_young_dirty_ptes(CYDP_CLEAR_YOUNG) + tlb_remove_tlb_entries().
                WriteEntry(pte, PteMkold(PtepGet(pte)).Val, addr);
                tlb.AdjustRange(addr, PAGE_SIZE);
            }
            // Reclaim would skip a referenced folio: forget the references.
            FolioClear(folio, PageFlags.PG_referenced);
            if (FolioTest(folio, PageFlags.PG_active))
            {
                FolioSet(folio, PageFlags.PG_workingset);
            }
            if (pageout)
            {
                // folio_isolate_lru(): off the LRU, with a reference.
                if (FolioTest(folio, PageFlags.PG_lru))
                {
                    FolioClear(folio, PageFlags.PG_lru);
                    FolioGet(folio);
                    if (FolioTest(folio, PageFlags.PG_unevictable))
                    {
                        FolioPutbackLru(folio);
                    }
                    else
                    {
                        folioList.Add((folio, vma, addr));
                    }
                }
            }
            // else folio_deactivate(): queued on the per-CPU lru_deactivate batch (not modelled).
        }
        await l.Ptl.Unlock("madvise_cold_or_pageout_pte_range");
        if (pageout)
        {
            await ReclaimPages(folioList);
        }
        await Sched.Point(SchedPointKind.Preempt, pmd.Obj, "madvise_cold_or_pageout_pte_range");
        return 0;
    }

    /// <summary>folio_putback_lru(): back on the LRU, dropping the isolation reference.</summary>
    /// <remarks>
    /// Context: the caller owns the isolation reference; no lock needed here (the lruvec lock is
    /// not modelled).
    /// </remarks>
    [KernelSymbol("folio_putback_lru", "mm/vmscan.c")]
    private void FolioPutbackLru(Folio folio)
    {
        FolioSet(folio, PageFlags.PG_lru);
        FolioPut(folio);
    }

    /// <summary>
    /// reclaim_pages() → shrink_folio_list() with references ignored, as far as the model can
    /// reclaim: there is no swap, so an anonymous swap-backed folio cannot be written out and is
    /// activated instead; a lazily freed (MADV_FREE) anonymous folio whose PTE is still clean and
    /// that nobody else holds is discarded (try_to_unmap_one() drops the mapping and the folio is
    /// freed), one that was written again becomes swap-backed again; a page-cache (shmem) folio is
    /// unmapped and, with no swap to write it to, kept in the page cache. The folios were isolated
    /// from a PTE that was their only mapping, so the rmap walk is that one PTE.
    /// </summary>
    /// <remarks>
    /// Context: no PTL held (the madvise walk still holds mmap_lock read). Trylocks each folio,
    /// never waits for one; unmapping takes the PTL.
    /// </remarks>
    [KernelSymbol("reclaim_pages", "mm/vmscan.c")]
    private async ValueTask ReclaimPages(List<(Folio Folio, VmAreaStruct Vma, ulong Addr)> folioList)
    {
        foreach (var (folio, vma, addr) in folioList)
        {
            if (!await FolioTrylock(folio, "shrink_folio_list"))
            {
                FolioPutbackLru(folio);
                continue;
            }
            bool discard = false;
            if (FolioTestAnon(folio) && FolioTest(folio, PageFlags.PG_swapbacked))
            {
                // add_to_swap() fails with no swap device: activate_locked.
                FolioSet(folio, PageFlags.PG_active);
            }
            else
            {
                discard = await TryToUnmapOne(folio, vma, addr);
                if (!discard && !FolioTestAnon(folio))
                {
                    // shmem_writeout() with no swap: redirty and activate.
                    FolioSet(folio, PageFlags.PG_active);
                }
            }
            await FolioUnlock(folio, "shrink_folio_list");
            if (discard)
            {
                // The folio is freed once the isolation reference goes (PGLAZYFREED).
                FolioClear(folio, PageFlags.PG_active | PageFlags.PG_referenced);
                FolioPut(folio);
            }
            else
            {
                FolioPutbackLru(folio);
            }
        }
    }

    /// <summary>
    /// try_to_unmap_one() for the single PTE that maps an isolated folio. A lazyfree anonymous
    /// folio is discarded only if neither its PTE nor the folio was dirtied and no one else holds
    /// a reference; a file folio is unmapped (its PTE's dirty bit moves to the folio). Returns
    /// whether a lazyfree folio was discarded (its mapping reference dropped).
    /// </summary>
    /// <remarks>
    /// Context: folio locked; the mmap_lock read-held by the madvise walk keeps the VMA alive.
    /// Calls the mmu notifiers and takes and drops the PTL.
    /// </remarks>
    [KernelSymbol("try_to_unmap_one", "mm/rmap.c")]
    private async ValueTask<bool> TryToUnmapOne(Folio folio, VmAreaStruct vma, ulong addr)
    {
        var mm = vma.VmMm;
        bool discarded = false;
        if (MmFindPmd(mm, addr) is not { } pmd)
        {
            return false;
        }
        await MmuNotifierInvalidateRangeStart(mm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, addr, addr + PAGE_SIZE);
        if (await PteOffsetMapLock(mm, pmd, addr, "try_to_unmap_one") is { } l)
        {
            var pte = PtepGet(l.Pte);
            if (PtePresent(pte) && PtePfn(pte) == folio.Pfn)
            {
                var pteval = PtepClearFlush(vma, addr, l.Pte);
                if (PteDirty(pteval))
                {
                    FolioMarkDirty(folio);
                }
                if (FolioTestAnon(folio))
                {
                    int refCount = FolioRefCount(folio);
                    int mapCount = FolioMapcount(folio);
                    if (FolioTestDirty(folio))
                    {
                        // Written again after MADV_FREE: keep it, swap-backed again.
                        SetPteAt(mm, addr, l.Pte, pteval);
                        FolioSet(folio, PageFlags.PG_swapbacked);
                        FolioClear(folio, PageFlags.PG_dirty);
                    }
                    else if (refCount != 1 + mapCount)
                    {
                        // Another reference (GUP, a batch): act as if nothing happened.
                        SetPteAt(mm, addr, l.Pte, pteval);
                    }
                    else
                    {
                        DecMmCounter(mm, MmCounter.MM_ANONPAGES);
                        FolioRemoveRmapPte(folio, folio.Page, vma);
                        FolioPut(folio);
                        discarded = true;
                    }
                }
                else
                {
                    DecMmCounter(mm, MmCounterFile(folio));
                    FolioRemoveRmapPte(folio, folio.Page, vma);
                    FolioPut(folio);
                }
            }
            await l.Ptl.Unlock("try_to_unmap_one");
        }
        await MmuNotifierInvalidateRangeEnd(mm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, addr, addr + PAGE_SIZE);
        return discarded;
    }

    /// <summary>madvise_cold_page_range(): the cold walk between tlb_start_vma() and tlb_end_vma().</summary>
    /// <remarks>Context: mmap_lock read-held; PTLs are taken per table by the walk.</remarks>
    [KernelSymbol("madvise_cold_page_range", "mm/madvise.c")]
    private async ValueTask MadviseColdPageRange(MmuGather tlb, MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        await WalkPageRangeVma(vma, mb.Range.Start, mb.Range.End,
            (pmd, addr, next) => MadviseColdOrPageoutPteRange(tlb, vma, pageout: false, pmd, addr, next));
        TlbFlushMmu(tlb);
    }

    /// <summary>madvise_cold(): deactivate the range's exclusively mapped pages.</summary>
    /// <remarks>Context: mmap_lock read-held. May sleep.</remarks>
    [KernelSymbol("madvise_cold", "mm/madvise.c")]
    private async ValueTask<int> MadviseCold(MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        if (!CanMadvLruVma(vma))
        {
            return -Errno.EINVAL;
        }
        LruAddDrain();
        var tlb = TlbGatherMmu(mb.Mm);
        await MadviseColdPageRange(tlb, mb);
        TlbFinishMmu(tlb);
        return 0;
    }

    /// <summary>madvise_pageout_page_range().</summary>
    /// <remarks>Context: mmap_lock read-held; PTLs are taken per table by the walk.</remarks>
    [KernelSymbol("madvise_pageout_page_range", "mm/madvise.c")]
    private async ValueTask MadvisePageoutPageRange(MmuGather tlb, VmAreaStruct vma, MadviseBehaviorRange range)
    {
        await WalkPageRangeVma(vma, range.Start, range.End,
            (pmd, addr, next) => MadviseColdOrPageoutPteRange(tlb, vma, pageout: true, pmd, addr, next));
        TlbFlushMmu(tlb);
    }

    /// <summary>madvise_pageout(): reclaim the range's exclusively mapped pages now.</summary>
    /// <remarks>Context: mmap_lock read-held. May sleep (folio locks, reclaim).</remarks>
    [KernelSymbol("madvise_pageout", "mm/madvise.c")]
    private async ValueTask<int> MadvisePageout(MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        if (!CanMadvLruVma(vma))
        {
            return -Errno.EINVAL;
        }
        // Shared file pages only for those who could write the file (a side channel otherwise).
        if (!vma.IsAnonymous && !CanDoFilePageout(vma) && (vma.VmFlags & VM_MAYSHARE) != 0)
        {
            return 0;
        }
        LruAddDrain();
        var tlb = TlbGatherMmu(mb.Mm);
        await MadvisePageoutPageRange(tlb, vma, mb.Range);
        TlbFinishMmu(tlb);
        return 0;
    }

    /// <summary>
    /// madvise_free_pte_range(): the pmd_entry of MADV_FREE. Each present anonymous page loses its
    /// PTE's young and dirty bits (a TLB flush follows) and its folio is marked lazyfree; an
    /// exclusively mapped folio's dirty flag is cleared first. Poison entries are cleared; guard
    /// markers stay.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked. Takes and drops the table's PTL; under
    /// it a dirty folio is only trylocked.
    /// </remarks>
    [KernelSymbol("madvise_free_pte_range", "mm/madvise.c")]
    private async ValueTask<int> MadviseFreePteRange(MmuGather tlb, VmAreaStruct vma, PtPtr pmd, ulong addr, ulong end)
    {
        var mm = tlb.Mm;
        if (PgTable.PmdLeaf(PmdpGet(pmd)))
        {
            // madvise_free_huge_pmd(): no anonymous huge pages in the model.
            return 0;
        }
        if (await PteOffsetMapLock(mm, pmd, addr, "madvise_free_pte_range") is not { } l)
        {
            return 0;
        }
        var pte = l.Pte;
        for (; addr != end; addr += PAGE_SIZE, pte = pte with { Index = pte.Index + 1 })
        {
            var ptent = PtepGet(pte);
            if (PteNone(ptent))
            {
                continue;
            }
            if (!PtePresent(ptent))
            {
                // Swap entries would be freed here; the model has none. Poison goes too.
                var entry = SwapOps.PteToSwpEntry(ptent);
                if (SwapOps.IsHwpoisonEntry(entry) ||
                    (SwapOps.IsPteMarkerEntry(entry) && (SwapOps.PteMarkerGet(entry) & SwapOps.PTE_MARKER_POISONED) != 0))
                {
                    PteClear(mm, addr, pte);
                }
                continue;
            }
            if (VmNormalFolio(vma, addr, ptent) is not { } folio)
            {
                continue;
            }
            if (FolioTestSwapcache(folio) || FolioTestDirty(folio))
            {
                if (!await FolioTrylock(folio, "madvise_free_pte_range"))
                {
                    continue;
                }
                if (FolioMapcount(folio) != 1)
                {
                    await FolioUnlock(folio, "madvise_free_pte_range");
                    continue;
                }
                FolioClear(folio, PageFlags.PG_dirty);
                await FolioUnlock(folio, "madvise_free_pte_range");
            }
            if (PteYoung(ptent) || PteDirty(ptent))
            {
                // clear_young_dirty_ptes(CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY).
                var old = PtepGetAndClear(mm, addr, pte);
                SetPteAt(mm, addr, pte, PteMkclean(PteMkold(old)));
                tlb.AdjustRange(addr, PAGE_SIZE);
            }
            FolioMarkLazyfree(folio);
        }
        await l.Ptl.Unlock("madvise_free_pte_range");
        await Sched.Point(SchedPointKind.Preempt, pmd.Obj, "madvise_free_pte_range");
        return 0;
    }

    /// <summary>madvise_free_single_vma(): MADV_FREE of one anonymous VMA's range.</summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked; mmu notifier range held open around the
    /// walk.
    /// </remarks>
    [KernelSymbol("madvise_free_single_vma", "mm/madvise.c")]
    private async ValueTask<int> MadviseFreeSingleVma(MadviseBehavior mb)
    {
        var mm = mb.Mm;
        var vma = mb.Vma!;
        var tlb = mb.Tlb!;
        ulong start = mb.Range.Start, end = mb.Range.End;
        // MADV_FREE works only for anonymous VMAs.
        if (!vma.IsAnonymous)
        {
            return -Errno.EINVAL;
        }
        LruAddDrain();
        await MmuNotifierInvalidateRangeStart(mm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, start, end);
        await WalkPageRangeVma(vma, start, end, (pmd, addr, next) => MadviseFreePteRange(tlb, vma, pmd, addr, next));
        // tlb_end_vma().
        TlbFlushMmu(tlb);
        await MmuNotifierInvalidateRangeEnd(mm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, start, end);
        return 0;
    }

    /// <summary>
    /// madvise_dontneed_single_vma(): zap the range with the request's mmu_gather, private COW
    /// copies included; guard markers stay.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked; adds to the request's mmu_gather,
    /// flushed by madvise_finish_tlb().
    /// </remarks>
    [KernelSymbol("madvise_dontneed_single_vma", "mm/madvise.c")]
    private async ValueTask<int> MadviseDontneedSingleVma(MadviseBehavior mb)
    {
        var range = mb.Range;
        await ZapPageRangeSingleBatched(mb.Tlb!, mb.Vma!, range.Start, range.End - range.Start, new ZapDetails());
        return 0;
    }

    /// <summary>
    /// zap_page_range_single_batched(): zap_page_range_single() with the caller's mmu_gather.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock held or the VMA read-locked, so the VMA cannot change; takes the PTLs
    /// itself. May sleep.
    /// </remarks>
    [KernelSymbol("zap_page_range_single_batched", "mm/memory.c")]
    public async ValueTask ZapPageRangeSingleBatched(MmuGather tlb, VmAreaStruct vma, ulong address, ulong size, ZapDetails? details)
    {
        ulong end = address + size;
        await MmuNotifierInvalidateRangeStart(vma.VmMm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, address, end);
        await UnmapSingleVma(tlb, vma, address, end, details, mmWrLocked: false);
        await MmuNotifierInvalidateRangeEnd(vma.VmMm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, address, end);
    }

    /// <summary>
    /// madvise_dontneed_free_valid_vma(): PFN maps never; mlocked VMAs only for
    /// MADV_DONTNEED_LOCKED (hugetlb VMAs do not exist in the model).
    /// </summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("madvise_dontneed_free_valid_vma", "mm/madvise.c")]
    private static bool MadviseDontneedFreeValidVma(MadviseBehavior mb)
    {
        var forbidden = VM_PFNMAP;
        if (mb.Behavior != MADV_DONTNEED_LOCKED)
        {
            forbidden |= VM_LOCKED;
        }
        return (mb.Vma!.VmFlags & forbidden) == 0;
    }

    /// <summary>madvise_dontneed_free(): validity, then DONTNEED or FREE of the VMA's range.</summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked. The kernel drops the mmap lock here
    /// only for userfaultfd, which the model lacks.
    /// </remarks>
    [KernelSymbol("madvise_dontneed_free", "mm/madvise.c")]
    private async ValueTask<int> MadviseDontneedFree(MadviseBehavior mb)
    {
        int behavior = mb.Behavior;
        if (!MadviseDontneedFreeValidVma(mb))
        {
            return -Errno.EINVAL;
        }
        if (mb.Range.Start == mb.Range.End)
        {
            return 0;
        }
        // userfaultfd_remove(): no userfaultfd contexts in the model, so the lock is kept.
        if (behavior is MADV_DONTNEED or MADV_DONTNEED_LOCKED)
        {
            return await MadviseDontneedSingleVma(mb);
        }
        if (behavior == MADV_FREE)
        {
            return await MadviseFreeSingleVma(mb);
        }
        return -Errno.EINVAL;
    }

    /// <summary>
    /// madvise_collapse(): MADV_COLLAPSE refuses VMAs that could hold no PMD-sized THP
    /// (thp_vma_allowable_order(TVA_FORCED_COLLAPSE)); a range covering no aligned PMD is done.
    /// The model has no anonymous or shmem THP: where the kernel would collapse, the pages stay
    /// small and the advice succeeds.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held and still held on return (the kernel drops it around a real
    /// collapse; the model never collapses).
    /// </remarks>
    [KernelSymbol("madvise_collapse", "mm/madvise.c")]
    private int MadviseCollapse(MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        ulong pmdSize = Paging.PmdSize;
        if (!ThpVmaAllowableForcedCollapse(vma))
        {
            return -Errno.EINVAL;
        }
        ulong hstart = (mb.Range.Start + pmdSize - 1) & ~(pmdSize - 1);
        ulong hend = mb.Range.End & ~(pmdSize - 1);
        if (hstart >= hend)
        {
            return 0;
        }
        return 0;
    }

    /// <summary>
    /// __thp_vma_allowable_orders(TVA_FORCED_COLLAPSE, PMD_ORDER): not VM_NOHUGEPAGE, not special,
    /// an aligned PMD fits at the VMA's end (and the file offset is aligned), anonymous VMAs
    /// with an anon_vma, or shmem.
    /// </summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("__thp_vma_allowable_orders", "mm/huge_memory.c")]
    private bool ThpVmaAllowableForcedCollapse(VmAreaStruct vma)
    {
        ulong hpageSize = Paging.PmdSize;
        if ((vma.VmFlags & (VM_NOHUGEPAGE | VM_SPECIAL | VM_HUGETLB)) != 0)
        {
            return false;
        }
        // thp_vma_suitable_order(vma, vm_end - HPAGE_PMD_SIZE, PMD_ORDER).
        if (vma.VmEnd - vma.VmStart < hpageSize)
        {
            return false;
        }
        if (!vma.IsAnonymous && (((vma.VmStart >> PAGE_SHIFT) - vma.VmPgoff) & ((hpageSize >> PAGE_SHIFT) - 1)) != 0)
        {
            return false;
        }
        ulong haddr = (vma.VmEnd - hpageSize) & ~(hpageSize - 1);
        if (haddr < vma.VmStart || haddr + hpageSize > vma.VmEnd)
        {
            return false;
        }
        if (!vma.IsAnonymous)
        {
            return vma.VmFile is { } f && ShmemMapping(f.FMapping);
        }
        return vma.AnonVma is not null;
    }

    /// <summary>
    /// madvise_populate(): fault the range in as reads or writes would, with the kernel's mapping of
    /// errors: -EINVAL (incompatible mapping or permissions), -EFAULT (SIGBUS/SIGSEGV),
    /// -EHWPOISON, -ENOMEM (no VMA or out of memory).
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held on entry and on return; faulting may drop it, and it is taken
    /// again before the next step. May sleep.
    /// </remarks>
    [KernelSymbol("madvise_populate", "mm/madvise.c")]
    private async ValueTask<int> MadvisePopulate(MadviseBehavior mb)
    {
        var mm = mb.Mm;
        bool write = mb.Behavior == MADV_POPULATE_WRITE;
        ulong start = mb.Range.Start, end = mb.Range.End;
        while (start < end)
        {
            var (pages, locked) = await FaultinPageRange(mm, start, end, write);
            if (!locked)
            {
                await MmapReadLock(mm, "madvise_populate");
            }
            if (pages < 0)
            {
                switch (pages)
                {
                    case -Errno.EINTR:
                        return -Errno.EINTR;
                    case -Errno.EINVAL:
                        return -Errno.EINVAL;
                    case -Errno.EHWPOISON:
                        return -Errno.EHWPOISON;
                    case -Errno.EFAULT:
                        return -Errno.EFAULT;
                    default:
                        WarnOnOnce(pages != -Errno.ENOMEM, $"madvise_populate: unhandled return value {pages}");
                        return -Errno.ENOMEM;
                }
            }
            start += (ulong)pages * PAGE_SIZE;
        }
        return 0;
    }

    /// <summary>
    /// madvise_remove(): punch a hole in the file behind a shared writable mapping —
    /// vfs_fallocate(PUNCH_HOLE | KEEP_SIZE) with the mmap lock dropped (i_rwsem ranks above it).
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held. Drops it (holding a file reference) so that fallocate can take
    /// i_rwsem, then takes it again; the walk is told the VMAs went stale.
    /// </remarks>
    [KernelSymbol("madvise_remove", "mm/madvise.c")]
    private async ValueTask<int> MadviseRemove(MadviseBehavior mb)
    {
        var mm = mb.Mm;
        var vma = mb.Vma!;
        ulong start = mb.Range.Start, end = mb.Range.End;
        MarkMmapLockDropped(mb);
        if ((vma.VmFlags & VM_LOCKED) != 0)
        {
            return -Errno.EINVAL;
        }
        var f = vma.VmFile;
        if (f is null)
        {
            return -Errno.EINVAL;
        }
        if (!MmFlags.IsSharedMaywrite(vma.VmFlags))
        {
            return -Errno.EACCES;
        }
        long offset = (long)(start - vma.VmStart) + (long)(vma.VmPgoff << PAGE_SHIFT);
        // The file reference keeps the file while the VMA may go away.
        f.FCount++;
        await MmapReadUnlock(mm, "madvise_remove");
        int error = await VfsFallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, (long)(end - start));
        Fput(f);
        await MmapReadLock(mm, "madvise_remove");
        return error;
    }

    /// <summary>
    /// vfs_fallocate(): checks the mode and the file, then the filesystem's ->fallocate (shmem is
    /// the only regular file in the model; device files are not regular).
    /// </summary>
    /// <remarks>Context: no mmap_lock held (i_rwsem ranks above it). May sleep.</remarks>
    [KernelSymbol("vfs_fallocate", "fs/open.c")]
    public async ValueTask<int> VfsFallocate(File file, int mode, long offset, long len)
    {
        if (offset < 0 || len <= 0)
        {
            return -Errno.EINVAL;
        }
        if ((mode & FALLOC_FL_PUNCH_HOLE) != 0 && (mode & FALLOC_FL_KEEP_SIZE) == 0)
        {
            return -Errno.EOPNOTSUPP;
        }
        if (!file.Writable)
        {
            return -Errno.EBADF;
        }
        if (file.FInode.Kind != "shmem")
        {
            return -Errno.ENODEV;
        }
        if (offset + len < 0)
        {
            return -Errno.EFBIG;
        }
        return await ShmemFallocate(file, mode, offset, len);
    }

    /// <summary>
    /// shmem_fallocate() for FALLOC_FL_PUNCH_HOLE: under i_rwsem, unmap the whole pages of the hole
    /// from every mapping (private COW copies stay), then drop them from the page cache.
    /// Write-sealed files refuse (-EPERM).
    /// </summary>
    /// <remarks>
    /// Context: no mmap_lock held. Takes the inode's i_rwsem for writing; the unmap takes
    /// i_mmap_rwsem and PTLs, the truncation folio locks. May sleep.
    /// </remarks>
    [KernelSymbol("shmem_fallocate", "mm/shmem.c")]
    public async ValueTask<int> ShmemFallocate(File file, int mode, long offset, long len)
    {
        var inode = file.FInode;
        if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) != 0)
        {
            return -Errno.EOPNOTSUPP;
        }
        if ((mode & FALLOC_FL_PUNCH_HOLE) == 0)
        {
            // Preallocation is not modelled.
            return -Errno.EOPNOTSUPP;
        }
        await inode.IRwsem.DownWrite("shmem_fallocate");
        int error = 0;
        if ((inode.Seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0)
        {
            error = -Errno.EPERM;
        }
        else
        {
            var mapping = file.FMapping;
            long unmapStart = (offset + (long)PAGE_SIZE - 1) & ~((long)PAGE_SIZE - 1);
            long unmapEnd = ((offset + len) & ~((long)PAGE_SIZE - 1)) - 1;
            if ((ulong)unmapEnd > (ulong)unmapStart)
            {
                await UnmapMappingRange(mapping, unmapStart, 1 + unmapEnd - unmapStart, evenCows: false);
            }
            await ShmemTruncateRange(inode, offset, offset + len - 1);
        }
        await inode.IRwsem.UpWrite("shmem_fallocate");
        return error;
    }

    // ---- guard regions ----

    /// <summary>is_valid_guard_vma(): not special, not hugetlb, and (for install) not mlocked.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("is_valid_guard_vma", "mm/madvise.c")]
    private static bool IsValidGuardVma(VmAreaStruct vma, bool allowLocked)
    {
        var disallowed = VM_SPECIAL | VM_HUGETLB;
        if (!allowLocked)
        {
            disallowed |= VM_LOCKED;
        }
        return (vma.VmFlags & disallowed) == 0;
    }

    /// <summary>
    /// The guard_install_* walk (walk_page_range_mm_unsafe() with ->install_pte): page tables are
    /// allocated as needed, empty PTEs get a guard marker, existing markers are counted, and any
    /// other entry (or a huge leaf) stops the walk with 1 so the caller zaps and retries.
    /// Returns &lt;0 on error, 0 when the whole range is guarded, &gt;0 if a zap is needed.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked. Allocates missing tables (may sleep;
    /// pmd_install() and friends take page_table_lock or the PMD lock) and holds each PTE table's
    /// PTL while it fills it.
    /// </remarks>
    [KernelSymbol("guard_install_pte_entry", "mm/madvise.c")]
    private async ValueTask<(int Err, ulong NrPages)> GuardInstallWalk(VmAreaStruct vma, ulong start, ulong end)
    {
        var mm = vma.VmMm;
        ulong nrPages = 0;
        ulong addr = start;
        while (addr < end)
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PmdShift);
            var pgd = PgdOffset(mm, addr);
            if (await P4dAlloc(mm, pgd, addr) is not { } p4d || await PudAlloc(mm, p4d, addr) is not { } pud)
            {
                return (-Errno.ENOMEM, nrPages);
            }
            // guard_install_pud_entry() / guard_install_pmd_entry(): huge leaves need a zap.
            if (PudLeaf(PudpGet(pud)))
            {
                return (1, nrPages);
            }
            if (await PmdAlloc(mm, pud, addr) is not { } pmd)
            {
                return (-Errno.ENOMEM, nrPages);
            }
            if (PgTable.PmdLeaf(PmdpGet(pmd)))
            {
                return (1, nrPages);
            }
            if (await PteAlloc(mm, pmd, addr))
            {
                return (-Errno.ENOMEM, nrPages);
            }
            if (await PteOffsetMapLock(mm, pmd, addr, "guard_install_pte_entry") is not { } l)
            {
                continue;
            }
            int err = 0;
            var pte = l.Pte;
            for (; addr < next; addr += PAGE_SIZE, pte = pte with { Index = pte.Index + 1 })
            {
                var ptent = PtepGet(pte);
                if (PteNone(ptent))
                {
                    // guard_install_set_pte(): a marker makes any access fault with SIGSEGV.
                    SetPteAt(mm, addr, pte, SwapOps.MakePteMarker(SwapOps.PTE_MARKER_GUARD));
                    nrPages++;
                    continue;
                }
                if (SwapOps.IsGuardPteMarker(ptent))
                {
                    nrPages++;
                    continue;
                }
                err = 1;
                break;
            }
            await l.Ptl.Unlock("guard_install_pte_entry");
            if (err != 0)
            {
                return (err, nrPages);
            }
            addr = next;
        }
        return (0, nrPages);
    }

    /// <summary>
    /// madvise_guard_install(): install guard markers over the range, zapping whatever is mapped
    /// there first (markers already present stay). The VMA is flagged VM_MAYBE_GUARD; an anonymous
    /// VMA gets its anon_vma. After a few failed attempts (racing faults) the syscall restarts.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held, or only the VMA read-locked when the VMA already has its
    /// anon_vma (anon_vma_prepare() needs the mmap lock). VM_MAYBE_GUARD is set without the VMA
    /// write lock. May sleep.
    /// </remarks>
    [KernelSymbol("madvise_guard_install", "mm/madvise.c")]
    private async ValueTask<int> MadviseGuardInstall(MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        var range = mb.Range;
        if (!IsValidGuardVma(vma, allowLocked: false))
        {
            return -Errno.EINVAL;
        }
        // vma_set_atomic_flag(): set under the read lock, no split, no VMA write lock.
        SetVmFlags(vma, vma.__VmFlags | VM_MAYBE_GUARD);
        if (vma.IsAnonymous)
        {
            int e = await AnonVmaPrepare(vma);
            if (e != 0)
            {
                return e;
            }
        }
        for (int i = 0; i < MAX_MADVISE_GUARD_RETRIES; i++)
        {
            var (err, nrPages) = await GuardInstallWalk(vma, range.Start, range.End);
            if (err < 0)
            {
                return err;
            }
            if (err == 0)
            {
                ulong expected = (range.End - range.Start) >> PAGE_SHIFT;
                WarnOn(nrPages != expected, $"madvise_guard_install: {nrPages} of {expected} pages guarded");
                return 0;
            }
            // Something is mapped: zap it (guard markers survive) and try again.
            await ZapPageRangeSingle(vma, range.Start, range.End - range.Start, null);
        }
        return -ERESTARTNOINTR;
    }

    /// <summary>
    /// madvise_guard_remove(): the guard_remove_* walk clears guard markers (huge leaves cannot
    /// hold any and are skipped); allowed on mlocked VMAs since nothing is lost.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked; the PTL of each table is taken while
    /// its markers are cleared.
    /// </remarks>
    [KernelSymbol("madvise_guard_remove", "mm/madvise.c")]
    private async ValueTask<int> MadviseGuardRemove(MadviseBehavior mb)
    {
        var vma = mb.Vma!;
        var mm = vma.VmMm;
        if (!IsValidGuardVma(vma, allowLocked: true))
        {
            return -Errno.EINVAL;
        }
        return await WalkPageRangeVma(vma, mb.Range.Start, mb.Range.End, async (pmd, addr, next) =>
        {
            // guard_remove_pmd_entry(): a huge leaf has no markers.
            if (PgTable.PmdLeaf(PmdpGet(pmd)))
            {
                return 0;
            }
            if (await PteOffsetMapLock(mm, pmd, addr, "guard_remove_pte_entry") is not { } l)
            {
                return 0;
            }
            var pte = l.Pte;
            for (; addr < next; addr += PAGE_SIZE, pte = pte with { Index = pte.Index + 1 })
            {
                // guard_remove_pte_entry().
                if (SwapOps.IsGuardPteMarker(PtepGet(pte)))
                {
                    PteClear(mm, addr, pte);
                }
            }
            await l.Ptl.Unlock("guard_remove_pte_entry");
            return 0;
        });
    }

    /// <summary>
    /// walk_page_range_vma(): walks the existing page tables of [start, end) of one VMA, calling
    /// <paramref name="pmdEntry"/> for each populated PMD (huge leaves included); PUD leaves are
    /// skipped. A non-zero return stops the walk and is returned.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held or the VMA read-locked. The walker takes no table lock;
    /// pmdEntry takes what it needs.
    /// </remarks>
    [KernelSymbol("walk_page_range_vma", "mm/pagewalk.c")]
    private async ValueTask<int> WalkPageRangeVma(VmAreaStruct vma, ulong start, ulong end, Func<PtPtr, ulong, ulong, ValueTask<int>> pmdEntry)
    {
        var mm = vma.VmMm;
        if (start < vma.VmStart || end > vma.VmEnd || start >= end)
        {
            return start == end ? 0 : -Errno.EINVAL;
        }
        ulong addr = start;
        var pgd = PgdOffset(mm, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PgdirShift);
            var v = PgdpGet(pgd);
            if (!PgdNone(v) && PgdPresent(v))
            {
                int err = await WalkP4dRange(pgd, addr, next, pmdEntry);
                if (err != 0)
                {
                    return err;
                }
            }
            pgd = pgd with { Index = pgd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>walk_p4d_range(): one PGD entry's P4D table, descending into present entries.</summary>
    /// <remarks>Context: as walk_page_range_vma().</remarks>
    [KernelSymbol("walk_p4d_range", "mm/pagewalk.c")]
    private async ValueTask<int> WalkP4dRange(PtPtr pgd, ulong addr, ulong end, Func<PtPtr, ulong, ulong, ValueTask<int>> pmdEntry)
    {
        var p4d = P4dOffset(pgd, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.P4dShift);
            var v = P4dpGet(p4d);
            if (!P4dNone(v) && P4dPresent(v))
            {
                int err = await WalkPudRange(p4d, addr, next, pmdEntry);
                if (err != 0)
                {
                    return err;
                }
            }
            p4d = p4d with { Index = p4d.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>walk_pud_range(): one P4D entry's PUD table; leaves are skipped.</summary>
    /// <remarks>Context: as walk_page_range_vma().</remarks>
    [KernelSymbol("walk_pud_range", "mm/pagewalk.c")]
    private async ValueTask<int> WalkPudRange(PtPtr p4d, ulong addr, ulong end, Func<PtPtr, ulong, ulong, ValueTask<int>> pmdEntry)
    {
        var pud = PudOffset(p4d, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PudShift);
            var v = PudpGet(pud);
            if (!PudNone(v) && PudPresent(v) && !PudLeaf(v))
            {
                int err = await WalkPmdRange(pud, addr, next, pmdEntry);
                if (err != 0)
                {
                    return err;
                }
            }
            pud = pud with { Index = pud.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>walk_pmd_range(): one PUD entry's PMD table, handing each non-empty entry to pmdEntry.</summary>
    /// <remarks>Context: as walk_page_range_vma().</remarks>
    [KernelSymbol("walk_pmd_range", "mm/pagewalk.c")]
    private async ValueTask<int> WalkPmdRange(PtPtr pud, ulong addr, ulong end, Func<PtPtr, ulong, ulong, ValueTask<int>> pmdEntry)
    {
        var pmd = PmdOffset(pud, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PmdShift);
            if (!PmdNone(PmdpGet(pmd)))
            {
                int err = await pmdEntry(pmd, addr, next);
                if (err != 0)
                {
                    return err;
                }
            }
            pmd = pmd with { Index = pmd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    // ---- KSM and THP advice ----

    /// <summary>
    /// ksm_madvise(): MADV_MERGEABLE sets VM_MERGEABLE on VMAs KSM can handle (private, not
    /// special; others are silently left alone) and registers the mm with ksmd; MADV_UNMERGEABLE
    /// breaks the VMA's KSM pages (ksmd does not run here, /sys/kernel/mm/ksm/run = 0, so there are
    /// none) and clears the flag.
    /// </summary>
    /// <remarks>Context: mmap_lock write-held (the new flags are applied by madvise_update_vma()).</remarks>
    [KernelSymbol("ksm_madvise", "mm/ksm.c")]
    public int KsmMadvise(VmAreaStruct vma, ulong start, ulong end, int advice, ref VmFlags vmFlags)
    {
        var mm = vma.VmMm;
        switch (advice)
        {
            case MADV_MERGEABLE:
                if ((vma.VmFlags & VM_MERGEABLE) != 0)
                {
                    return 0;
                }
                if (!VmaKsmCompatible(vma))
                {
                    return 0;
                }
                if ((mm.Flags & MMF_VM_MERGEABLE) == 0)
                {
                    // __ksm_enter().
                    mm.Flags |= MMF_VM_MERGEABLE;
                }
                vmFlags |= VM_MERGEABLE;
                break;
            case MADV_UNMERGEABLE:
                if ((vmFlags & VM_MERGEABLE) == 0)
                {
                    return 0;
                }
                // unmerge_ksm_pages(): no KSM pages exist in the model.
                vmFlags &= ~VM_MERGEABLE;
                break;
        }
        return 0;
    }

    /// <summary>vma_ksm_compatible(): KSM merges only private, ordinary memory.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("vma_ksm_compatible", "mm/ksm.c")]
    private static bool VmaKsmCompatible(VmAreaStruct vma) =>
        (vma.VmFlags & (VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_HUGETLB | VM_MIXEDMAP)) == 0;

    /// <summary>
    /// hugepage_madvise(): MADV_HUGEPAGE / MADV_NOHUGEPAGE swap VM_HUGEPAGE and VM_NOHUGEPAGE
    /// (khugepaged registration has no effect in the model).
    /// </summary>
    /// <remarks>Context: mmap_lock write-held; only computes the new flags.</remarks>
    [KernelSymbol("hugepage_madvise", "mm/khugepaged.c")]
    public static int HugepageMadvise(VmAreaStruct vma, ref VmFlags vmFlags, int advice)
    {
        switch (advice)
        {
            case MADV_HUGEPAGE:
                vmFlags &= ~VM_NOHUGEPAGE;
                vmFlags |= VM_HUGEPAGE;
                break;
            case MADV_NOHUGEPAGE:
                vmFlags &= ~VM_HUGEPAGE;
                vmFlags |= VM_NOHUGEPAGE;
                break;
        }
        return 0;
    }

    // ---- the walk and the dispatcher ----

    /// <summary>
    /// madvise_vma_behavior(): apply the advice to the current VMA's part of the range. Flag
    /// advice ends in madvise_update_vma(), whose -ENOMEM (a split past max_map_count) becomes
    /// -EAGAIN.
    /// </summary>
    /// <remarks>
    /// Context: the lock madvise_lock() chose: mmap_lock write-held for flag changes, read-held for
    /// the walking advice, or only the VMA read-locked for DONTNEED/FREE/GUARD_*. WILLNEED and
    /// REMOVE drop and retake the read lock.
    /// </remarks>
    [KernelSymbol("madvise_vma_behavior", "mm/madvise.c")]
    private async ValueTask<int> MadviseVmaBehavior(MadviseBehavior mb)
    {
        int behavior = mb.Behavior;
        var vma = mb.Vma!;
        var newFlags = vma.VmFlags;
        int error = 0;
        // can_madvise_modify(): mseal() is not modelled.
        switch (behavior)
        {
            case MADV_REMOVE:
                return await MadviseRemove(mb);
            case MADV_WILLNEED:
                return await MadviseWillneed(mb);
            case MADV_COLD:
                return await MadviseCold(mb);
            case MADV_PAGEOUT:
                return await MadvisePageout(mb);
            case MADV_FREE:
            case MADV_DONTNEED:
            case MADV_DONTNEED_LOCKED:
                return await MadviseDontneedFree(mb);
            case MADV_COLLAPSE:
                return MadviseCollapse(mb);
            case MADV_GUARD_INSTALL:
                return await MadviseGuardInstall(mb);
            case MADV_GUARD_REMOVE:
                return await MadviseGuardRemove(mb);
            case MADV_NORMAL:
                newFlags &= ~(VM_RAND_READ | VM_SEQ_READ);
                break;
            case MADV_SEQUENTIAL:
                newFlags = (newFlags & ~VM_RAND_READ) | VM_SEQ_READ;
                break;
            case MADV_RANDOM:
                newFlags = (newFlags & ~VM_SEQ_READ) | VM_RAND_READ;
                break;
            case MADV_DONTFORK:
                newFlags |= VM_DONTCOPY;
                break;
            case MADV_DOFORK:
                // v6.18 refuses VM_IO only; linux-mm after it refuses every VM_SPECIAL VMA.
                if ((newFlags & (Variants.MadviseDoforkRefusesSpecial ? VM_SPECIAL : VM_IO)) != 0)
                {
                    return -Errno.EINVAL;
                }
                newFlags &= ~VM_DONTCOPY;
                break;
            case MADV_WIPEONFORK:
                // Only for anonymous memory.
                if (vma.VmFile is not null || (newFlags & VM_SHARED) != 0)
                {
                    return -Errno.EINVAL;
                }
                newFlags |= VM_WIPEONFORK;
                break;
            case MADV_KEEPONFORK:
                newFlags &= ~VM_WIPEONFORK;
                break;
            case MADV_DONTDUMP:
                newFlags |= VM_DONTDUMP;
                break;
            case MADV_DODUMP:
                if ((newFlags & VM_SPECIAL) != 0)
                {
                    return -Errno.EINVAL;
                }
                newFlags &= ~VM_DONTDUMP;
                break;
            case MADV_MERGEABLE:
            case MADV_UNMERGEABLE:
                error = KsmMadvise(vma, mb.Range.Start, mb.Range.End, behavior, ref newFlags);
                break;
            case MADV_HUGEPAGE:
            case MADV_NOHUGEPAGE:
                error = HugepageMadvise(vma, ref newFlags, behavior);
                break;
        }
        if (error == 0)
        {
            WarnOnOnce(mb.LockMode != MadviseLockMode.MADVISE_MMAP_WRITE_LOCK, "madvise: VMA flags changed without the mmap write lock");
            error = await MadviseUpdateVma(newFlags, mb);
        }
        if (error == -Errno.ENOMEM)
        {
            error = -Errno.EAGAIN;
        }
        return error;
    }

    /// <summary>madvise_behavior_valid(): this kernel's advice values (CONFIG_KSM=y,
    /// CONFIG_TRANSPARENT_HUGEPAGE=y, CONFIG_MEMORY_FAILURE unset).</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("madvise_behavior_valid", "mm/madvise.c")]
    public static bool MadviseBehaviorValid(int behavior) => behavior switch
    {
        MADV_DOFORK or MADV_DONTFORK or MADV_NORMAL or MADV_SEQUENTIAL or MADV_RANDOM or MADV_REMOVE or
            MADV_WILLNEED or MADV_DONTNEED or MADV_DONTNEED_LOCKED or MADV_FREE or MADV_COLD or MADV_PAGEOUT or
            MADV_POPULATE_READ or MADV_POPULATE_WRITE or
            MADV_MERGEABLE or MADV_UNMERGEABLE or
            MADV_HUGEPAGE or MADV_NOHUGEPAGE or MADV_COLLAPSE or
            MADV_DONTDUMP or MADV_DODUMP or MADV_WIPEONFORK or MADV_KEEPONFORK or
            MADV_GUARD_INSTALL or MADV_GUARD_REMOVE => true,
        _ => false,
    };

    /// <summary>prepares_anon_vma(): advice that may call anon_vma_prepare() needs the mmap lock.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("prepares_anon_vma", "mm/madvise.c")]
    private static bool PreparesAnonVma(int behavior) => behavior == MADV_GUARD_INSTALL;

    /// <summary>is_vma_lock_sufficient(): one VMA, our own mm, and no anon_vma to prepare.</summary>
    /// <remarks>Context: the VMA is read-locked (from lock_vma_under_rcu()).</remarks>
    [KernelSymbol("is_vma_lock_sufficient", "mm/madvise.c")]
    private bool IsVmaLockSufficient(VmAreaStruct vma, MadviseBehavior mb)
    {
        if (mb.Range.End > vma.VmEnd)
        {
            return false;
        }
        if (Current!.Mm != vma.VmMm)
        {
            return false;
        }
        if (vma.IsAnonymous && PreparesAnonVma(mb.Behavior) && vma.AnonVma is null)
        {
            return false;
        }
        return true;
    }

    /// <summary>
    /// try_vma_read_lock(): read-lock the VMA at the start of the range if it alone suffices;
    /// otherwise fall back to the mmap read lock (returning false).
    /// </summary>
    /// <remarks>
    /// Context: no mmap_lock held. Returns true with the VMA read-locked, or false with mmap_lock
    /// read-held and the lock mode switched to MADVISE_MMAP_READ_LOCK.
    /// </remarks>
    [KernelSymbol("try_vma_read_lock", "mm/madvise.c")]
    private async ValueTask<bool> TryVmaReadLock(MadviseBehavior mb)
    {
        var mm = mb.Mm;
        var vma = await LockVmaUnderRcu(mm, mb.Range.Start);
        if (vma is not null)
        {
            if (IsVmaLockSufficient(vma, mb))
            {
                mb.Vma = vma;
                return true;
            }
            await vma.VmLock.EndRead("try_vma_read_lock");
        }
        await MmapReadLock(mm, "try_vma_read_lock");
        mb.LockMode = MadviseLockMode.MADVISE_MMAP_READ_LOCK;
        return false;
    }

    /// <summary>
    /// madvise_walk_vmas(): applies the advice to each VMA overlapping the range, each with its part
    /// of the range. Unmapped gaps make the result -ENOMEM but the walk goes on; an error from a
    /// VMA stops it at once.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock held (read or write), or in MADVISE_VMA_READ_LOCK mode nothing: then it
    /// read-locks one VMA and releases it before returning, or falls back to holding mmap_lock
    /// read, which madvise_unlock() releases.
    /// </remarks>
    [KernelSymbol("madvise_walk_vmas", "mm/madvise.c")]
    private async ValueTask<int> MadviseWalkVmas(MadviseBehavior mb)
    {
        var mm = mb.Mm;
        var range = mb.Range;
        ulong lastEnd = range.End;
        int unmappedError = 0;
        int error;
        if (mb.LockMode == MadviseLockMode.MADVISE_VMA_READ_LOCK && await TryVmaReadLock(mb))
        {
            error = await MadviseVmaBehavior(mb);
            await mb.Vma!.VmLock.EndRead("madvise_walk_vmas");
            return error;
        }
        var vma = mm.MmMt.FindVmaPrev(range.Start, out var prev);
        if (vma is not null && range.Start > vma.VmStart)
        {
            prev = vma;
        }
        while (true)
        {
            if (vma is null)
            {
                return -Errno.ENOMEM;
            }
            if (range.Start < vma.VmStart)
            {
                // A gap in the range: report it, but carry on.
                unmappedError = -Errno.ENOMEM;
                range.Start = vma.VmStart;
                if (range.Start >= lastEnd)
                {
                    break;
                }
            }
            range.End = Math.Min(vma.VmEnd, lastEnd);
            mb.Prev = prev;
            mb.Vma = vma;
            error = await MadviseVmaBehavior(mb);
            if (error != 0)
            {
                return error;
            }
            if (mb.LockDropped)
            {
                // The VMAs may have changed meanwhile.
                prev = null;
                vma = null;
                mb.LockDropped = false;
            }
            else
            {
                vma = mb.Vma;
                prev = vma;
            }
            if (vma is not null && range.End < vma.VmEnd)
            {
                range.End = vma.VmEnd;
            }
            if (range.End >= lastEnd)
            {
                break;
            }
            vma = mm.MmMt.FindVma(vma is not null ? vma.VmEnd : range.End);
            range.Start = range.End;
        }
        return unmappedError;
    }

    /// <summary>
    /// get_lock_mode(): flag changes need the mmap write lock; DONTNEED, FREE and the guard advice
    /// try the VMA lock; the rest walk under the mmap read lock.
    /// </summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("get_lock_mode", "mm/madvise.c")]
    private static MadviseLockMode GetLockMode(MadviseBehavior mb) => mb.Behavior switch
    {
        MADV_REMOVE or MADV_WILLNEED or MADV_COLD or MADV_PAGEOUT or MADV_POPULATE_READ or MADV_POPULATE_WRITE or
            MADV_COLLAPSE => MadviseLockMode.MADVISE_MMAP_READ_LOCK,
        MADV_GUARD_INSTALL or MADV_GUARD_REMOVE or MADV_DONTNEED or MADV_DONTNEED_LOCKED or MADV_FREE =>
            MadviseLockMode.MADVISE_VMA_READ_LOCK,
        _ => MadviseLockMode.MADVISE_MMAP_WRITE_LOCK,
    };

    /// <summary>madvise_lock(): take the lock the advice needs and record the mode.</summary>
    /// <remarks>
    /// Context: no mmap_lock held. Returns with the mode's lock held: mmap_lock for writing
    /// (killable: -EINTR) or reading, or nothing for the per-VMA mode. May sleep.
    /// </remarks>
    [KernelSymbol("madvise_lock", "mm/madvise.c")]
    private async ValueTask<int> MadviseLock(MadviseBehavior mb)
    {
        var mm = mb.Mm;
        var lockMode = GetLockMode(mb);
        switch (lockMode)
        {
            case MadviseLockMode.MADVISE_MMAP_WRITE_LOCK:
                if (await MmapWriteLockKillable(mm, "madvise_lock") != 0)
                {
                    return -Errno.EINTR;
                }
                break;
            case MadviseLockMode.MADVISE_MMAP_READ_LOCK:
                await MmapReadLock(mm, "madvise_lock");
                break;
        }
        mb.LockMode = lockMode;
        return 0;
    }

    /// <summary>madvise_unlock(): release what madvise_lock() (or the VMA-lock fallback) took.</summary>
    /// <remarks>
    /// Context: holds the lock recorded in the lock mode (possibly switched by
    /// try_vma_read_lock()); releases it.
    /// </remarks>
    [KernelSymbol("madvise_unlock", "mm/madvise.c")]
    private async ValueTask MadviseUnlock(MadviseBehavior mb)
    {
        var mm = mb.Mm;
        switch (mb.LockMode)
        {
            case MadviseLockMode.MADVISE_MMAP_WRITE_LOCK:
                await MmapWriteUnlock(mm, "madvise_unlock");
                break;
            case MadviseLockMode.MADVISE_MMAP_READ_LOCK:
                await MmapReadUnlock(mm, "madvise_unlock");
                break;
        }
        mb.LockMode = MadviseLockMode.MADVISE_NO_LOCK;
    }

    /// <summary>madvise_batch_tlb_flush(): the zapping advice share one mmu_gather.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("madvise_batch_tlb_flush", "mm/madvise.c")]
    private static bool MadviseBatchTlbFlush(int behavior) =>
        behavior is MADV_DONTNEED or MADV_DONTNEED_LOCKED or MADV_FREE;

    /// <summary>madvise_init_tlb(): start the shared mmu_gather of the zapping advice.</summary>
    /// <remarks>Context: after madvise_lock().</remarks>
    [KernelSymbol("madvise_init_tlb", "mm/madvise.c")]
    private void MadviseInitTlb(MadviseBehavior mb)
    {
        if (MadviseBatchTlbFlush(mb.Behavior))
        {
            mb.Tlb = TlbGatherMmu(mb.Mm);
        }
    }

    /// <summary>madvise_finish_tlb(): flush the shared mmu_gather and free what it collected.</summary>
    /// <remarks>Context: still under the madvise lock, before madvise_unlock(); flushes the gathered range.</remarks>
    [KernelSymbol("madvise_finish_tlb", "mm/madvise.c")]
    private void MadviseFinishTlb(MadviseBehavior mb)
    {
        if (MadviseBatchTlbFlush(mb.Behavior) && mb.Tlb is { } tlb)
        {
            TlbFinishMmu(tlb);
        }
    }

    /// <summary>
    /// check_input_range(): start page-aligned; the length, rounded up, must not wrap to zero or
    /// past the end of the address space.
    /// </summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("check_input_range", "mm/madvise.c")]
    private static int CheckInputRange(ulong start, ulong lenIn)
    {
        if (OffsetInPage(start))
        {
            return -Errno.EINVAL;
        }
        ulong len = PageAlign(lenIn);
        if (lenIn != 0 && len == 0)
        {
            return -Errno.EINVAL;
        }
        if (start + len < start)
        {
            return -Errno.EINVAL;
        }
        return 0;
    }

    /// <summary>is_madvise_populate().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("is_madvise_populate", "mm/madvise.c")]
    private static bool IsMadvisePopulate(MadviseBehavior mb) => mb.Behavior is MADV_POPULATE_READ or MADV_POPULATE_WRITE;

    /// <summary>madvise_do_behavior(): populate walks on its own; everything else walks the VMAs.</summary>
    /// <remarks>
    /// Context: the lock from madvise_lock() held (none in the per-VMA mode); returns with the same
    /// lock held.
    /// </remarks>
    [KernelSymbol("madvise_do_behavior", "mm/madvise.c")]
    private async ValueTask<int> MadviseDoBehavior(ulong start, ulong lenIn, MadviseBehavior mb)
    {
        var range = mb.Range;
        range.Start = start;
        range.End = start + PageAlign(lenIn);
        if (IsMadvisePopulate(mb))
        {
            return await MadvisePopulate(mb);
        }
        return await MadviseWalkVmas(mb);
    }

    /// <summary>
    /// do_madvise(): validate the advice and the range (a zero length succeeds), take the lock
    /// the advice needs, and apply it. A guard install that kept losing races restarts the
    /// system call (-ERESTARTNOINTR never reaches user space).
    /// </summary>
    /// <remarks>
    /// Context: process context, no mm locks held; takes and releases the lock the advice needs.
    /// May sleep.
    /// </remarks>
    [KernelSymbol("do_madvise", "mm/madvise.c")]
    public async ValueTask<int> DoMadvise(MmStruct mm, ulong start, ulong len, int behavior)
    {
        while (true)
        {
            if (!MadviseBehaviorValid(behavior))
            {
                return -Errno.EINVAL;
            }
            int error = CheckInputRange(start, len);
            if (error != 0 || len == 0)
            {
                return error;
            }
            var mb = new MadviseBehavior { Mm = mm, Behavior = behavior };
            error = await MadviseLock(mb);
            if (error != 0)
            {
                return error;
            }
            MadviseInitTlb(mb);
            error = await MadviseDoBehavior(start, len, mb);
            MadviseFinishTlb(mb);
            await MadviseUnlock(mb);
            if (error != -ERESTARTNOINTR)
            {
                return error;
            }
            // restart_syscall(): the task re-enters madvise().
            await Sched.Point(SchedPointKind.Preempt, mm.MmMt.Obj, "restart_syscall");
        }
    }
}

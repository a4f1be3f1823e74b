using static Linux.Mman;
using static Linux.PgTable;
using static Linux.VmFlags;

namespace Linux;

/// <summary>enum mremap_type: what kind of resize an mremap() is.</summary>
[KernelSymbol("mremap_type", "mm/mremap.c")]
public enum MremapType
{
    /// <summary>Not classified yet.</summary>
    MREMAP_INVALID,
    /// <summary>old_len == new_len: nothing to do unless the mapping moves.</summary>
    MREMAP_NO_RESIZE,
    /// <summary>old_len &gt; new_len.</summary>
    MREMAP_SHRINK,
    /// <summary>old_len &lt; new_len.</summary>
    MREMAP_EXPAND,
}

/// <summary>
/// struct vma_remap_struct: one mremap() request and the state it accumulates on its way through
/// do_mremap(). Lengths and addresses are updated as the operation proceeds (a shrink before a
/// move, one VMA at a time of a multi-VMA move, a failed move that unmaps the target instead).
/// </summary>
[KernelSymbol("vma_remap_struct", "mm/mremap.c")]
public sealed class VmaRemapStruct
{
    public ulong Addr;
    public ulong OldLen;
    public ulong NewLen;
    /// <summary>The user's MREMAP_* flags.</summary>
    public readonly int Flags;
    public ulong NewAddr;
    /// <summary>The VMA being remapped; null whenever an unmap may have invalidated it.</summary>
    public VmAreaStruct? Vma;
    /// <summary>|old_len - new_len|.</summary>
    public ulong Delta;
    /// <summary>An mlock()ed mapping grew: populate the new part once the lock is dropped.</summary>
    public bool PopulateExpand;
    public MremapType RemapType = MremapType.MREMAP_INVALID;
    /// <summary>Whether the mmap write lock is still held (a shrink may drop it).</summary>
    public bool MmapLocked;
    /// <summary>Pages charged to overcommit (VM_ACCOUNT), to give back on failure.</summary>
    public long Charged;
    /// <summary>A VMA iterator over the source range would need a reset (remap_move()).</summary>
    public bool VmiNeedsInvalidate;

    public VmaRemapStruct(ulong addr, ulong oldLen, ulong newLen, int flags, ulong newAddr)
    {
        Addr = addr;
        OldLen = oldLen;
        NewLen = newLen;
        Flags = flags;
        NewAddr = newAddr;
    }
}

/// <summary>
/// struct pagetable_move_control: the state of move_page_tables() — source and destination VMAs
/// and addresses, the range, and whether the rmap locks must be held across PTE moves.
/// </summary>
[KernelSymbol("pagetable_move_control", "mm/internal.h")]
public sealed class PagetableMoveControl
{
    public VmAreaStruct Old = null!;
    public VmAreaStruct New = null!;
    public ulong OldAddr;
    public ulong OldEnd;
    public ulong NewAddr;
    /// <summary>The length asked for; old_addr/new_addr may be realigned below the range.</summary>
    public ulong LenIn;
    /// <summary>Take i_mmap_rwsem and the anon_vma lock around each PTE move (rmap may not see
    /// the new VMA after the old one).</summary>
    public bool NeedRmapLocks;
    /// <summary>exec's stack move (never in the model).</summary>
    public bool ForStack;

    /// <summary>PAGETABLE_MOVE(): the control block for moving [oldAddr, oldAddr + len).</summary>
    /// <remarks>Context: any; builds a private control block.</remarks>
    [KernelSymbol("PAGETABLE_MOVE", "mm/internal.h")]
    public static PagetableMoveControl Make(VmAreaStruct? old, VmAreaStruct? @new, ulong oldAddr, ulong newAddr, ulong len) => new()
    {
        Old = old!,
        New = @new!,
        OldAddr = oldAddr,
        OldEnd = oldAddr + len,
        NewAddr = newAddr,
        LenIn = len,
    };
}

// mm/mremap.c: mremap(2) — validation, in-place shrink and expand, moving a VMA (copy_vma() and
// move_page_tables() down to move_ptes()), MREMAP_FIXED, MREMAP_DONTUNMAP, multi-VMA moves.
public sealed partial class Kernel
{
    /// <summary>Kinds of page-table entry move_pgt_entry() can move whole (enum pgt_entry).</summary>
    private enum PgtEntry
    {
        NORMAL_PMD,
        HPAGE_PMD,
        NORMAL_PUD,
        HPAGE_PUD,
    }

    /// <summary>get_old_pud(): the PUD slot of addr, or null if an upper level is empty.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held, so no table on the path can be freed; no page-table lock
    /// taken.
    /// </remarks>
    [KernelSymbol("get_old_pud", "mm/mremap.c")]
    private PtPtr? GetOldPud(MmStruct mm, ulong addr)
    {
        var pgd = PgdOffset(mm, addr);
        if (PgdNone(PgdpGet(pgd)))
        {
            return null;
        }
        var p4d = P4dOffset(pgd, addr);
        if (P4dNone(P4dpGet(p4d)))
        {
            return null;
        }
        var pud = PudOffset(p4d, addr);
        if (PudNone(PudpGet(pud)))
        {
            return null;
        }
        return pud;
    }

    /// <summary>get_old_pmd(): the PMD slot of addr, or null if it (or a level above) is empty.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held, so no table on the path can be freed; no page-table lock
    /// taken.
    /// </remarks>
    [KernelSymbol("get_old_pmd", "mm/mremap.c")]
    private PtPtr? GetOldPmd(MmStruct mm, ulong addr)
    {
        if (GetOldPud(mm, addr) is not { } pud || PudLeaf(PudpGet(pud)))
        {
            return null;
        }
        var pmd = PmdOffset(pud, addr);
        if (PmdNone(PmdpGet(pmd)))
        {
            return null;
        }
        return pmd;
    }

    /// <summary>alloc_new_pud(): the destination PUD slot, allocating the tables above it.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held. May allocate tables (and sleep); installing one takes
    /// page_table_lock.
    /// </remarks>
    [KernelSymbol("alloc_new_pud", "mm/mremap.c")]
    private async ValueTask<PtPtr?> AllocNewPud(MmStruct mm, ulong addr)
    {
        var pgd = PgdOffset(mm, addr);
        if (await P4dAlloc(mm, pgd, addr) is not { } p4d)
        {
            return null;
        }
        return await PudAlloc(mm, p4d, addr);
    }

    /// <summary>alloc_new_pmd(): the destination PMD slot, allocating the tables above it.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held. May allocate tables (and sleep); installing one takes
    /// page_table_lock or the PMD lock.
    /// </remarks>
    [KernelSymbol("alloc_new_pmd", "mm/mremap.c")]
    private async ValueTask<PtPtr?> AllocNewPmd(MmStruct mm, ulong addr)
    {
        if (await AllocNewPud(mm, addr) is not { } pud)
        {
            return null;
        }
        return await PmdAlloc(mm, pud, addr);
    }

    /// <summary>take_rmap_locks(): i_mmap_rwsem, then the anon_vma lock, both for write.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held, no page-table lock. Takes i_mmap_rwsem, then the anon_vma
    /// root rwsem, both for writing; may sleep.
    /// </remarks>
    [KernelSymbol("take_rmap_locks", "mm/mremap.c")]
    private async ValueTask TakeRmapLocks(VmAreaStruct vma)
    {
        if (vma.VmFile is { } f)
        {
            await f.FMapping.IMmapRwsem.DownWrite("take_rmap_locks");
        }
        if (vma.AnonVma is { } av)
        {
            await AnonVmaLockWrite(av, "take_rmap_locks");
        }
    }

    /// <summary>drop_rmap_locks(): the reverse of take_rmap_locks().</summary>
    /// <remarks>
    /// Context: both rmap locks held (as take_rmap_locks() left them); releases them in reverse
    /// order.
    /// </remarks>
    [KernelSymbol("drop_rmap_locks", "mm/mremap.c")]
    private async ValueTask DropRmapLocks(VmAreaStruct vma)
    {
        if (vma.AnonVma is { } av)
        {
            await AnonVmaUnlockWrite(av, "drop_rmap_locks");
        }
        if (vma.VmFile is { } f)
        {
            await f.FMapping.IMmapRwsem.UpWrite("drop_rmap_locks");
        }
    }

    /// <summary>move_soft_dirty_pte(): a moved entry is marked soft-dirty (CONFIG_MEM_SOFT_DIRTY).</summary>
    /// <remarks>Context: both PTE tables' PTLs held by move_ptes(); works on the value only.</remarks>
    [KernelSymbol("move_soft_dirty_pte", "mm/mremap.c")]
    private Pte MoveSoftDirtyPte(Pte pte)
    {
        if (PteNone(pte) || !Config.MemSoftDirty)
        {
            return pte;
        }
        return PtePresent(pte) ? new Pte(pte.Val | X86Pte._PAGE_SOFT_DIRTY_BIT) : SwapOps.PteSwpMksoftDirty(pte);
    }

    /// <summary>
    /// move_ptes(): moves the entries of one PTE table's worth of [old_addr, old_addr + extent) to
    /// the destination table, entry by entry under both PTLs (the destination's nested). If any
    /// present entry moved, the old range's TLB entries are flushed before the PTLs drop, so no CPU
    /// can keep using a page through the old address once another task may free it. The rmap locks
    /// are held across the move when rmap might otherwise miss both the old and the new entry.
    /// Returns 0, or -EAGAIN if a table went away (the caller retries).
    /// </summary>
    /// <remarks>Context: mmap write lock held; the source VMA write-locked.</remarks>
    [KernelSymbol("move_ptes", "mm/mremap.c")]
    private async ValueTask<int> MovePtes(PagetableMoveControl pmc, ulong extent, PtPtr oldPmd, PtPtr newPmd)
    {
        var vma = pmc.Old;
        var mm = vma.VmMm;
        bool forceFlush = false;
        ulong oldAddr = pmc.OldAddr;
        ulong newAddr = pmc.NewAddr;
        ulong oldEnd = oldAddr + extent;
        ulong len = oldEnd - oldAddr;
        int err = 0;
        if (pmc.NeedRmapLocks)
        {
            await TakeRmapLocks(vma);
        }
        if (await PteOffsetMapLock(mm, oldPmd, oldAddr, "move_ptes") is not { } ol)
        {
            err = -Errno.EAGAIN;
        }
        else if (PteOffsetMap(newPmd, newAddr) is not { } newStart)
        {
            // pte_offset_map_rw_nolock() found no table.
            await ol.Ptl.Unlock("move_ptes");
            err = -Errno.EAGAIN;
        }
        else
        {
            var oldPtl = ol.Ptl;
            var newPtl = PteLockptr(mm, newStart.Table);
            if (newPtl != oldPtl)
            {
                await newPtl.Lock("move_ptes", subclass: 1);
            }
            var oldPtep = ol.Pte;
            var newPtep = newStart;
            for (; oldAddr < oldEnd; oldAddr += PAGE_SIZE, newAddr += PAGE_SIZE,
                 oldPtep = oldPtep with { Index = oldPtep.Index + 1 }, newPtep = newPtep with { Index = newPtep.Index + 1 })
            {
                WarnOnOnce(!PteNone(PtepGet(newPtep)), $"move_ptes: destination {newAddr:x} is not empty");
                var oldPte = PtepGet(oldPtep);
                if (PteNone(oldPte))
                {
                    continue;
                }
                if (PtePresent(oldPte))
                {
                    forceFlush = true;
                }
                // get_and_clear_ptes() / move_pte() (a no-op on x86) / move_soft_dirty_pte().
                var pte = PtepGetAndClear(mm, oldAddr, oldPtep);
                pte = MoveSoftDirtyPte(pte);
                SetPteAt(mm, newAddr, newPtep, pte);
            }
            if (forceFlush)
            {
                FlushTlbRange(vma, oldEnd - len, oldEnd);
            }
            if (newPtl != oldPtl)
            {
                await newPtl.Unlock("move_ptes");
            }
            await oldPtl.Unlock("move_ptes");
        }
        if (pmc.NeedRmapLocks)
        {
            await DropRmapLocks(vma);
        }
        return err;
    }

    /// <summary>
    /// move_normal_pmd(): moves a whole PTE table by moving the PMD entry that points to it
    /// (CONFIG_HAVE_MOVE_PMD). Refused if the destination PMD is populated or the PMD is folded.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held (which is why the two PMD locks may nest in either order) and
    /// the rmap locks held. Takes the old PMD lock, then the new one nested if different.
    /// </remarks>
    [KernelSymbol("move_normal_pmd", "mm/mremap.c")]
    private async ValueTask<bool> MoveNormalPmd(PagetableMoveControl pmc, PtPtr oldPmd, PtPtr newPmd)
    {
        var vma = pmc.Old;
        var mm = vma.VmMm;
        if (Paging.PmdFolded)
        {
            return false;
        }
        if (WarnOnOnce(!PmdNone(PmdpGet(newPmd)), $"move_normal_pmd: destination PMD of {pmc.NewAddr:x} is populated"))
        {
            return false;
        }
        var oldPtl = await PmdLock(mm, oldPmd, "move_normal_pmd");
        var newPtl = PmdLockptr(mm, newPmd);
        if (newPtl != oldPtl)
        {
            await newPtl.Lock("move_normal_pmd", subclass: 1);
        }
        bool res = false;
        var pmd = PmdpGet(oldPmd);
        if (PgTable.PmdPresent(pmd) && !PgTable.PmdLeaf(pmd))
        {
            PmdClear(oldPmd, pmc.OldAddr);
            res = true;
            VmBugOn(!PmdNone(PmdpGet(newPmd)), "move_normal_pmd: destination populated under the lock");
            PmdPopulate(mm, newPmd, TableOf(pmd.Val), pmc.NewAddr);
            FlushTlbRange(vma, pmc.OldAddr, pmc.OldAddr + Paging.PmdSize);
        }
        if (newPtl != oldPtl)
        {
            await newPtl.Unlock("move_normal_pmd");
        }
        await oldPtl.Unlock("move_normal_pmd");
        return res;
    }

    /// <summary>move_normal_pud(): moves a whole PMD table (CONFIG_HAVE_MOVE_PUD, more than 2 levels).</summary>
    /// <remarks>
    /// Context: mmap_lock write-held and the rmap locks held. Takes the PUD lock (page_table_lock,
    /// shared by both sides).
    /// </remarks>
    [KernelSymbol("move_normal_pud", "mm/mremap.c")]
    private async ValueTask<bool> MoveNormalPud(PagetableMoveControl pmc, PtPtr oldPud, PtPtr newPud)
    {
        var vma = pmc.Old;
        var mm = vma.VmMm;
        if (Paging.PudFolded || Paging.PmdFolded)
        {
            return false;
        }
        if (WarnOnOnce(!PudNone(PudpGet(newPud)), $"move_normal_pud: destination PUD of {pmc.NewAddr:x} is populated"))
        {
            return false;
        }
        // pud_lock() and pud_lockptr() are both mm->page_table_lock: one lock, no nesting.
        var ptl = await PudLock(mm, oldPud, "move_normal_pud");
        var pud = PudpGet(oldPud);
        WriteEntry(oldPud, 0, pmc.OldAddr);
        VmBugOn(!PudNone(PudpGet(newPud)), "move_normal_pud: destination populated under the lock");
        PudPopulate(mm, newPud, TableOf(pud.Val), pmc.NewAddr);
        FlushTlbRange(vma, pmc.OldAddr, pmc.OldAddr + Paging.PudSize);
        await ptl.Unlock("move_normal_pud");
        return true;
    }

    /// <summary>
    /// move_huge_pmd(): moves a huge PMD leaf (in the model, a special PFN-map leaf) as one entry.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held, the rmap locks held if the move needs them. Takes the old PMD
    /// lock, then the new one nested if different.
    /// </remarks>
    [KernelSymbol("move_huge_pmd", "mm/huge_memory.c")]
    private async ValueTask<bool> MoveHugePmd(VmAreaStruct vma, ulong oldAddr, ulong newAddr, PtPtr oldPmd, PtPtr newPmd)
    {
        var mm = vma.VmMm;
        if (WarnOnOnce(!PmdNone(PmdpGet(newPmd)), $"move_huge_pmd: destination PMD of {newAddr:x} is populated"))
        {
            return false;
        }
        // __pmd_trans_huge_lock().
        var oldPtl = await PmdLock(mm, oldPmd, "move_huge_pmd");
        if (!PgTable.PmdLeaf(PmdpGet(oldPmd)))
        {
            await oldPtl.Unlock("move_huge_pmd");
            return false;
        }
        var newPtl = PmdLockptr(mm, newPmd);
        if (newPtl != oldPtl)
        {
            await newPtl.Lock("move_huge_pmd", subclass: 1);
        }
        var pmd = PmdpHugeGetAndClear(mm, oldAddr, oldPmd);
        bool forceFlush = PgTable.PmdPresent(pmd);
        SetPmdAt(mm, newAddr, newPmd, pmd);
        if (forceFlush)
        {
            FlushTlbRange(vma, oldAddr, oldAddr + Paging.PmdSize);
        }
        if (newPtl != oldPtl)
        {
            await newPtl.Unlock("move_huge_pmd");
        }
        await oldPtl.Unlock("move_huge_pmd");
        return true;
    }

    /// <summary>move_huge_pud(): moves a huge PUD leaf as one entry.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held, the rmap locks held if the move needs them. Takes the PUD
    /// lock (page_table_lock).
    /// </remarks>
    [KernelSymbol("move_huge_pud", "mm/mremap.c")]
    private async ValueTask<bool> MoveHugePud(PagetableMoveControl pmc, PtPtr oldPud, PtPtr newPud)
    {
        var vma = pmc.Old;
        var mm = vma.VmMm;
        if (WarnOnOnce(!PudNone(PudpGet(newPud)), $"move_huge_pud: destination PUD of {pmc.NewAddr:x} is populated"))
        {
            return false;
        }
        var ptl = await PudLock(mm, oldPud, "move_huge_pud");
        var pud = PudpHugeGetAndClear(mm, pmc.OldAddr, oldPud);
        SetPudAt(mm, pmc.NewAddr, newPud, pud);
        FlushTlbRange(vma, pmc.OldAddr, pmc.OldAddr + Paging.PudSize);
        await ptl.Unlock("move_huge_pud");
        return true;
    }

    /// <summary>
    /// get_extent(): how far the move can go at this level — to the next boundary of the source
    /// or of the destination, whichever comes first, and no further than the end.
    /// </summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("get_extent", "mm/mremap.c")]
    private ulong GetExtent(PgtEntry entry, PagetableMoveControl pmc)
    {
        ulong size = entry is PgtEntry.HPAGE_PMD or PgtEntry.NORMAL_PMD ? Paging.PmdSize : Paging.PudSize;
        ulong mask = ~(size - 1);
        ulong oldAddr = pmc.OldAddr, oldEnd = pmc.OldEnd, newAddr = pmc.NewAddr;
        ulong next = (oldAddr + size) & mask;
        // Even if next wrapped, the subtraction below is still right.
        ulong extent = next - oldAddr;
        if (extent > oldEnd - oldAddr)
        {
            extent = oldEnd - oldAddr;
        }
        next = (newAddr + size) & mask;
        if (extent > next - newAddr)
        {
            extent = next - newAddr;
        }
        return extent;
    }

    /// <summary>should_take_rmap_locks(): moving a whole table always takes them.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("should_take_rmap_locks", "mm/mremap.c")]
    private static bool ShouldTakeRmapLocks(PagetableMoveControl pmc, PgtEntry entry) =>
        entry is PgtEntry.NORMAL_PMD or PgtEntry.NORMAL_PUD || pmc.NeedRmapLocks;

    /// <summary>move_pgt_entry(): moves one whole entry at the given level, under the rmap locks if needed.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held and the source VMA write-locked. Takes the rmap locks when
    /// needed, then the page-table locks of the level.
    /// </remarks>
    [KernelSymbol("move_pgt_entry", "mm/mremap.c")]
    private async ValueTask<bool> MovePgtEntry(PagetableMoveControl pmc, PgtEntry entry, PtPtr oldEntry, PtPtr newEntry)
    {
        bool needRmapLocks = ShouldTakeRmapLocks(pmc, entry);
        if (needRmapLocks)
        {
            await TakeRmapLocks(pmc.Old);
        }
        bool moved = entry switch
        {
            PgtEntry.NORMAL_PMD => await MoveNormalPmd(pmc, oldEntry, newEntry),
            PgtEntry.NORMAL_PUD => await MoveNormalPud(pmc, oldEntry, newEntry),
            PgtEntry.HPAGE_PMD => await MoveHugePmd(pmc.Old, pmc.OldAddr, pmc.NewAddr, oldEntry, newEntry),
            PgtEntry.HPAGE_PUD => await MoveHugePud(pmc, oldEntry, newEntry),
            _ => false,
        };
        if (needRmapLocks)
        {
            await DropRmapLocks(pmc.Old);
        }
        return moved;
    }

    /// <summary>can_align_down(): aligning addr down must not reach into another mapping.</summary>
    /// <remarks>Context: mmap_lock write-held (looks at the neighbouring VMA).</remarks>
    [KernelSymbol("can_align_down", "mm/mremap.c")]
    private static bool CanAlignDown(PagetableMoveControl pmc, VmAreaStruct vma, ulong addrToAlign, ulong mask)
    {
        ulong addrMasked = addrToAlign & mask;
        if (!pmc.ForStack && vma.VmStart != addrToAlign)
        {
            return false;
        }
        if (pmc.ForStack && addrMasked >= vma.VmStart)
        {
            return true;
        }
        return vma.VmMm.MmMt.FindVmaIntersection(addrMasked, vma.VmStart) is null;
    }

    /// <summary>can_realign_addr(): both ends equally misaligned, the range reaching the next
    /// boundary, and nothing mapped below either start within the table.</summary>
    /// <remarks>Context: mmap_lock write-held (looks at the VMAs around both ranges).</remarks>
    [KernelSymbol("can_realign_addr", "mm/mremap.c")]
    private static bool CanRealignAddr(PagetableMoveControl pmc, ulong pagetableMask)
    {
        ulong alignMask = ~pagetableMask;
        ulong oldAlign = pmc.OldAddr & alignMask;
        ulong newAlign = pmc.NewAddr & alignMask;
        ulong pagetableSize = alignMask + 1;
        ulong oldAlignNext = pagetableSize - oldAlign;
        if (pmc.LenIn < oldAlignNext)
        {
            return false;
        }
        if (oldAlign == 0)
        {
            return false;
        }
        if (oldAlign != newAlign)
        {
            return false;
        }
        return CanAlignDown(pmc, pmc.Old, pmc.OldAddr, pagetableMask) &&
               CanAlignDown(pmc, pmc.New, pmc.NewAddr, pagetableMask);
    }

    /// <summary>try_realign_addr(): start the move at the table boundary so whole tables can move.</summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("try_realign_addr", "mm/mremap.c")]
    private static void TryRealignAddr(PagetableMoveControl pmc, ulong pagetableMask)
    {
        if (!CanRealignAddr(pmc, pagetableMask))
        {
            return;
        }
        pmc.OldAddr &= pagetableMask;
        pmc.NewAddr &= pagetableMask;
    }

    /// <summary>pmc_done().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pmc_done", "mm/mremap.c")]
    private static bool PmcDone(PagetableMoveControl pmc) => pmc.OldAddr >= pmc.OldEnd;

    /// <summary>pmc_next().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pmc_next", "mm/mremap.c")]
    private static void PmcNext(PagetableMoveControl pmc, ulong extent)
    {
        pmc.OldAddr += extent;
        pmc.NewAddr += extent;
    }

    /// <summary>pmc_progress(): bytes of the asked-for range whose entries have moved.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pmc_progress", "mm/mremap.c")]
    private static ulong PmcProgress(PagetableMoveControl pmc)
    {
        ulong origOldAddr = pmc.OldEnd - pmc.LenIn;
        return pmc.OldAddr < origOldAddr ? 0 : pmc.OldAddr - origOldAddr;
    }

    /// <summary>
    /// move_page_tables(): moves the page-table entries of [old_addr, old_end) to new_addr, a
    /// whole PUD or PMD table at a time where source and destination line up (after realigning to
    /// a PMD boundary when that is safe), otherwise PTE by PTE. Returns how many bytes moved; less
    /// than asked means a destination table could not be allocated.
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("move_page_tables", "mm/mremap.c")]
    public async ValueTask<ulong> MovePageTables(PagetableMoveControl pmc)
    {
        var mm = pmc.Old.VmMm;
        if (pmc.LenIn == 0)
        {
            return 0;
        }
        TryRealignAddr(pmc, ~(Paging.PmdSize - 1));
        ulong rangeStart = pmc.OldAddr, rangeEnd = pmc.OldEnd;
        await MmuNotifierInvalidateRangeStart(mm, MmuNotifierEvent.MMU_NOTIFY_UNMAP, rangeStart, rangeEnd);
        ulong extent;
        for (; !PmcDone(pmc); PmcNext(pmc, extent))
        {
            await Sched.Point(SchedPointKind.Preempt, mm.MmMt.Obj, "move_page_tables");
            extent = GetExtent(PgtEntry.NORMAL_PUD, pmc);
            if (GetOldPud(mm, pmc.OldAddr) is not { } oldPud)
            {
                continue;
            }
            if (await AllocNewPud(mm, pmc.NewAddr) is not { } newPud)
            {
                break;
            }
            if (PudLeaf(PudpGet(oldPud)))
            {
                if (extent == Paging.PudSize)
                {
                    await MovePgtEntry(pmc, PgtEntry.HPAGE_PUD, oldPud, newPud);
                    continue;
                }
                // A partial move of a huge PUD leaf: the model splits it (PFN leaves refault).
                await __SplitHugePud(pmc.Old, oldPud, pmc.OldAddr);
            }
            else if (extent == Paging.PudSize)
            {
                if (await MovePgtEntry(pmc, PgtEntry.NORMAL_PUD, oldPud, newPud))
                {
                    continue;
                }
            }
            extent = GetExtent(PgtEntry.NORMAL_PMD, pmc);
            if (GetOldPmd(mm, pmc.OldAddr) is not { } oldPmd)
            {
                continue;
            }
            if (await AllocNewPmd(mm, pmc.NewAddr) is not { } newPmd)
            {
                break;
            }
            bool failed = false;
            while (true)
            {
                if (PgTable.PmdLeaf(PmdpGet(oldPmd)))
                {
                    if (extent == Paging.PmdSize && await MovePgtEntry(pmc, PgtEntry.HPAGE_PMD, oldPmd, newPmd))
                    {
                        break;
                    }
                    await __SplitHugePmd(pmc.Old, oldPmd, pmc.OldAddr);
                }
                else if (extent == Paging.PmdSize)
                {
                    if (await MovePgtEntry(pmc, PgtEntry.NORMAL_PMD, oldPmd, newPmd))
                    {
                        break;
                    }
                }
                if (PmdNone(PmdpGet(oldPmd)))
                {
                    break;
                }
                if (await PteAlloc(pmc.New.VmMm, newPmd, pmc.NewAddr))
                {
                    failed = true;
                    break;
                }
                if (await MovePtes(pmc, extent, oldPmd, newPmd) >= 0)
                {
                    break;
                }
                // -EAGAIN: a table went away under us; look again.
            }
            if (failed)
            {
                break;
            }
        }
        await MmuNotifierInvalidateRangeEnd(mm, MmuNotifierEvent.MMU_NOTIFY_UNMAP, rangeStart, rangeEnd);
        return PmcProgress(pmc);
    }

    // ---- the vma_remap_struct helpers ----

    /// <summary>vrm_set_delta().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vrm_set_delta", "mm/mremap.c")]
    private static void VrmSetDelta(VmaRemapStruct vrm) =>
        vrm.Delta = vrm.OldLen > vrm.NewLen ? vrm.OldLen - vrm.NewLen : vrm.NewLen - vrm.OldLen;

    /// <summary>vrm_remap_type().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vrm_remap_type", "mm/mremap.c")]
    private static MremapType VrmRemapType(VmaRemapStruct vrm)
    {
        if (vrm.Delta == 0)
        {
            return MremapType.MREMAP_NO_RESIZE;
        }
        return vrm.OldLen > vrm.NewLen ? MremapType.MREMAP_SHRINK : MremapType.MREMAP_EXPAND;
    }

    /// <summary>vrm_overlaps(): would the source and destination ranges overlap?</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vrm_overlaps", "mm/mremap.c")]
    private static bool VrmOverlaps(VmaRemapStruct vrm)
    {
        ulong startOld = vrm.Addr, startNew = vrm.NewAddr;
        ulong endOld = vrm.Addr + vrm.OldLen, endNew = vrm.NewAddr + vrm.NewLen;
        return endOld > startNew && endNew > startOld;
    }

    /// <summary>vrm_implies_new_addr(): MREMAP_FIXED or MREMAP_DONTUNMAP always pick a new address.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vrm_implies_new_addr", "mm/mremap.c")]
    private static bool VrmImpliesNewAddr(VmaRemapStruct vrm) => (vrm.Flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) != 0;

    /// <summary>
    /// vrm_set_new_addr(): get_unmapped_area() for the destination — MAP_FIXED for MREMAP_FIXED,
    /// a hint for MREMAP_DONTUNMAP, anywhere otherwise; MAP_SHARED for shared mappings.
    /// </summary>
    /// <remarks>Context: mmap_lock write-held (searches the address space for a free range).</remarks>
    [KernelSymbol("vrm_set_new_addr", "mm/mremap.c")]
    private long VrmSetNewAddr(VmaRemapStruct vrm)
    {
        var vma = vrm.Vma!;
        int mapFlags = 0;
        ulong internalPgoff = (vrm.Addr - vma.VmStart) >> PAGE_SHIFT;
        ulong pgoff = vma.VmPgoff + internalPgoff;
        ulong newAddr = VrmImpliesNewAddr(vrm) ? vrm.NewAddr : 0;
        if ((vrm.Flags & MREMAP_FIXED) != 0)
        {
            mapFlags |= MAP_FIXED;
        }
        if ((vma.VmFlags & VM_MAYSHARE) != 0)
        {
            mapFlags |= MAP_SHARED;
        }
        long res = GetUnmappedArea(vma.VmMm, vma.VmFile, newAddr, vrm.NewLen, pgoff, mapFlags);
        if (Errno.IsErrValue(res))
        {
            return res;
        }
        vrm.NewAddr = (ulong)res;
        return 0;
    }

    /// <summary>get_unmapped_area(): __get_unmapped_area() for the current mm with no extra vm_flags.</summary>
    /// <remarks>Context: mmap_lock held (at least read): the free range is only free while it is held.</remarks>
    [KernelSymbol("get_unmapped_area", "mm/mmap.c")]
    private long GetUnmappedArea(MmStruct mm, File? file, ulong addr, ulong len, ulong pgoff, int flags) =>
        __GetUnmappedArea(mm, file, addr, len, pgoff, flags, VM_NONE);

    /// <summary>
    /// vrm_calc_charge(): an accounted (VM_ACCOUNT) mapping charges the pages it gains — the whole
    /// new length with MREMAP_DONTUNMAP, since the old range stays.
    /// </summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("vrm_calc_charge", "mm/mremap.c")]
    private bool VrmCalcCharge(VmaRemapStruct vrm)
    {
        vrm.Charged = 0;
        if ((vrm.Vma!.VmFlags & VM_ACCOUNT) == 0)
        {
            return true;
        }
        long charged = (vrm.Flags & MREMAP_DONTUNMAP) != 0
            ? (long)(vrm.NewLen >> PAGE_SHIFT)
            : (long)(vrm.Delta >> PAGE_SHIFT);
        // security_vm_enough_memory_mm() → __vm_enough_memory().
        if (VmEnoughMemory(charged) != 0)
        {
            return false;
        }
        vrm.Charged = charged;
        return true;
    }

    /// <summary>vrm_uncharge().</summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("vrm_uncharge", "mm/mremap.c")]
    private void VrmUncharge(VmaRemapStruct vrm)
    {
        VmUnacctMemory(vrm.Charged);
        vrm.Charged = 0;
    }

    /// <summary>vrm_stat_account(): total/exec/stack/data_vm and locked_vm for the added bytes.</summary>
    /// <remarks>Context: mmap_lock write-held (total_vm and locked_vm are protected by it).</remarks>
    [KernelSymbol("vrm_stat_account", "mm/mremap.c")]
    private static void VrmStatAccount(VmaRemapStruct vrm, ulong bytes)
    {
        long pages = (long)(bytes >> PAGE_SHIFT);
        var vma = vrm.Vma!;
        var mm = vma.VmMm;
        VmStatAccount(mm, vma.VmFlags, pages);
        if ((vma.VmFlags & VM_LOCKED) != 0)
        {
            mm.LockedVm += pages;
        }
    }

    /// <summary>vm_acct_memory(): charge pages without the overcommit check.</summary>
    /// <remarks>Context: any; the committed-memory counter is a global atomic.</remarks>
    [KernelSymbol("vm_acct_memory", "include/linux/mman.h")]
    private void VmAcctMemory(long pages) => CommittedPages += pages;

    /// <summary>
    /// may_expand_vm(): RLIMIT_AS, and RLIMIT_DATA for data mappings. The model's processes run
    /// with both unlimited (the defaults), so only the arithmetic overflow can refuse.
    /// </summary>
    /// <remarks>Context: mmap_lock held (reads total_vm and data_vm).</remarks>
    [KernelSymbol("may_expand_vm", "mm/mmap.c")]
    public static bool MayExpandVm(MmStruct mm, VmFlags flags, long npages)
    {
        const ulong rlimitAsPages = ulong.MaxValue >> PAGE_SHIFT;
        const ulong rlimitDataPages = ulong.MaxValue >> PAGE_SHIFT;
        if ((ulong)mm.TotalVm + (ulong)npages > rlimitAsPages)
        {
            return false;
        }
        if (IsDataMapping(flags) && (ulong)mm.DataVm + (ulong)npages > rlimitDataPages)
        {
            return false;
        }
        return true;
    }

    /// <summary>
    /// mlock_future_ok(): growing an mlocked mapping must stay within RLIMIT_MEMLOCK unless the
    /// task has CAP_IPC_LOCK. The model's tasks are privileged (as the conformance oracle is).
    /// </summary>
    /// <remarks>Context: mmap_lock held (reads locked_vm).</remarks>
    [KernelSymbol("mlock_future_ok", "mm/mmap.c")]
    public static bool MlockFutureOk(MmStruct mm, bool isVmaLocked, ulong bytes) => true;

    /// <summary>
    /// prep_move_vma(): map-count headroom, ->may_split() at the range's ends, and KSM unmerging
    /// of the range (the model has no KSM pages, so that is only the flag check).
    /// </summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("prep_move_vma", "mm/mremap.c")]
    private int PrepMoveVma(VmaRemapStruct vrm)
    {
        var vma = vrm.Vma!;
        ulong oldAddr = vrm.Addr, oldLen = vrm.OldLen;
        // Avoid failing later in do_munmap(), which may split one VMA into three.
        if (vma.VmMm.MapCount >= Config.MaxMapCount - 3)
        {
            return -Errno.ENOMEM;
        }
        if (vma.VmOps?.MaySplit is { } maySplit)
        {
            int err = 0;
            if (vma.VmStart != oldAddr)
            {
                err = maySplit(vma, oldAddr);
            }
            if (err == 0 && vma.VmEnd != oldAddr + oldLen)
            {
                err = maySplit(vma, oldAddr + oldLen);
            }
            if (err != 0)
            {
                return err;
            }
        }
        // Break KSM pages in the moved range, but keep vm_flags as they were.
        var dummy = vma.VmFlags;
        return KsmMadvise(vma, oldAddr, oldAddr + oldLen, MADV_UNMERGEABLE, ref dummy);
    }

    /// <summary>
    /// unmap_source_vma(): unmaps the source range, turning the copy into a move. VM_ACCOUNT is
    /// cleared first so the unmap does not give back what vrm_calc_charge() kept charged, and set
    /// again on whatever remains of the source VMA on either side.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held and kept held: the munmap does not drop it. The flag changes
    /// write-lock the VMAs they touch.
    /// </remarks>
    [KernelSymbol("unmap_source_vma", "mm/mremap.c")]
    private async ValueTask UnmapSourceVma(VmaRemapStruct vrm)
    {
        var vma = vrm.Vma!;
        var mm = vma.VmMm;
        ulong addr = vrm.Addr, len = vrm.OldLen;
        ulong vmStart = 0, vmEnd = 0;
        bool accountableMove = (vma.VmFlags & VM_ACCOUNT) != 0 && (vrm.Flags & MREMAP_DONTUNMAP) == 0;
        if (accountableMove)
        {
            await VmFlagsClear(vma, VM_ACCOUNT);
            vmStart = vma.VmStart;
            vmEnd = vma.VmEnd;
        }
        int err = await DoVmiMunmap(mm, addr, len, unlock: false);
        vrm.Vma = null;
        vrm.VmiNeedsInvalidate = true;
        if (err != 0)
        {
            // OOM: the VMA could not be split; just get the accounting right.
            VmAcctMemory((long)(len >> PAGE_SHIFT));
            return;
        }
        if (accountableMove)
        {
            ulong end = addr + len;
            if (vmStart < addr)
            {
                mm.MmMt.FindVmaPrev(addr, out var prev);
                if (prev is not null)
                {
                    await VmFlagsSet(prev, VM_ACCOUNT);
                }
            }
            if (vmEnd > end && mm.MmMt.FindVma(end) is { } next)
            {
                await VmFlagsSet(next, VM_ACCOUNT);
            }
        }
    }

    /// <summary>
    /// copy_vma_and_data(): copy_vma() the source to the destination, move the page tables, and
    /// call ->mremap(). If the move fell short (or ->mremap() refused), the entries are moved back
    /// and the request is rewritten so the caller unmaps the new VMA instead of the old one.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held and the source VMA write-locked. Page-table moves take the
    /// rmap and page-table locks; may sleep.
    /// </remarks>
    [KernelSymbol("copy_vma_and_data", "mm/mremap.c")]
    private async ValueTask<(int Err, VmAreaStruct? NewVma)> CopyVmaAndData(VmaRemapStruct vrm)
    {
        var vma = vrm.Vma!;
        ulong internalOffset = vrm.Addr - vma.VmStart;
        ulong internalPgoff = internalOffset >> PAGE_SHIFT;
        ulong newPgoff = vma.VmPgoff + internalPgoff;
        int err = 0;
        var pmc = PagetableMoveControl.Make(null, null, vrm.Addr, vrm.NewAddr, vrm.OldLen);
        var (newVma, srcVma, needRmapLocks) = await CopyVma(vma, vrm.NewAddr, vrm.NewLen, newPgoff);
        if (newVma is null)
        {
            VrmUncharge(vrm);
            return (-Errno.ENOMEM, null);
        }
        if (srcVma != vrm.Vma)
        {
            vrm.VmiNeedsInvalidate = true;
        }
        vma = srcVma;
        vrm.Vma = vma;
        pmc.Old = vma;
        pmc.New = newVma;
        pmc.NeedRmapLocks = needRmapLocks;
        ulong movedLen = await MovePageTables(pmc);
        if (movedLen < vrm.OldLen)
        {
            err = -Errno.ENOMEM;
        }
        else if (vma.VmOps?.Mremap is { } mremap)
        {
            err = mremap(newVma);
        }
        if (err != 0)
        {
            // Move the entries back (the old tables are still there) and unmap the new area.
            var revert = PagetableMoveControl.Make(newVma, vma, vrm.NewAddr, vrm.Addr, movedLen);
            revert.NeedRmapLocks = true;
            await MovePageTables(revert);
            vrm.Vma = newVma;
            vrm.OldLen = vrm.NewLen;
            vrm.Addr = vrm.NewAddr;
        }
        return (err, newVma);
    }

    /// <summary>
    /// dontunmap_complete(): MREMAP_DONTUNMAP leaves the old range mapped but empty: it is no
    /// longer mlocked, and if the whole VMA moved it no longer needs its anon_vma links (its next
    /// fault starts afresh). VM_ACCOUNT stays: the old range is still committed.
    /// </summary>
    /// <remarks>Context: mmap_lock write-held. Unlinking the anon_vmas takes the anon_vma root rwsem.</remarks>
    [KernelSymbol("dontunmap_complete", "mm/mremap.c")]
    private async ValueTask DontunmapComplete(VmaRemapStruct vrm, VmAreaStruct newVma)
    {
        var vma = vrm.Vma!;
        ulong start = vrm.Addr, end = vrm.Addr + vrm.OldLen;
        ulong oldStart = vma.VmStart, oldEnd = vma.VmEnd;
        await VmFlagsClear(vma, VM_LOCKED_MASK);
        if (newVma != vma && start == oldStart && end == oldEnd)
        {
            await UnlinkAnonVmas(vma);
        }
    }

    /// <summary>
    /// move_vma(): checks and charges, then copies the VMA and moves its page tables, and finally
    /// unmaps the source (or, for MREMAP_DONTUNMAP, leaves it empty). Returns the new address or
    /// an -errno.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held and still held on return. Write-locks the source VMA before
    /// its entries move; may sleep.
    /// </remarks>
    [KernelSymbol("move_vma", "mm/mremap.c")]
    private async ValueTask<long> MoveVma(VmaRemapStruct vrm)
    {
        int err = PrepMoveVma(vrm);
        if (err != 0)
        {
            return err;
        }
        if (!VrmCalcCharge(vrm))
        {
            return -Errno.ENOMEM;
        }
        // No racing faults on the source while its entries move.
        await VmaStartWrite(vrm.Vma!);
        (err, var newVma) = await CopyVmaAndData(vrm);
        if (err != 0 && newVma is null)
        {
            return err;
        }
        VrmStatAccount(vrm, vrm.NewLen);
        if (err == 0 && (vrm.Flags & MREMAP_DONTUNMAP) != 0)
        {
            await DontunmapComplete(vrm, newVma!);
        }
        else
        {
            await UnmapSourceVma(vrm);
        }
        return err != 0 ? err : (long)vrm.NewAddr;
    }

    /// <summary>
    /// shrink_vma(): unmaps the tail [addr + new_len, addr + old_len), optionally dropping the
    /// mmap lock (munmap's downgrade); without dropping it, finds the VMA at addr again.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held. With dropLock a successful unmap returns with the lock
    /// released (vrm.MmapLocked false); otherwise, and on failure, it is still held.
    /// </remarks>
    [KernelSymbol("shrink_vma", "mm/mremap.c")]
    private async ValueTask<long> ShrinkVma(VmaRemapStruct vrm, bool dropLock)
    {
        var mm = Current!.Mm!;
        ulong unmapStart = vrm.Addr + vrm.NewLen;
        ulong unmapBytes = vrm.Delta;
        VmBugOn(vrm.RemapType != MremapType.MREMAP_SHRINK, "shrink_vma on a remap that does not shrink");
        int res = await DoVmiMunmap(mm, unmapStart, unmapBytes, dropLock);
        vrm.Vma = null;
        if (res != 0)
        {
            // do_vmi_munmap() leaves the lock held on failure.
            vrm.MmapLocked = mm.MmapLock.IsHeldBy(Current!);
            return res;
        }
        if (dropLock)
        {
            vrm.MmapLocked = false;
        }
        else
        {
            vrm.Vma = mm.MmMt.VmaLookup(vrm.Addr);
            if (vrm.Vma is null)
            {
                return -Errno.EFAULT;
            }
        }
        return 0;
    }

    /// <summary>
    /// mremap_to(): moves to vrm.NewAddr — unmapping the destination first for MREMAP_FIXED,
    /// shrinking first if the new length is smaller — then move_vma().
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held and still held on return (its shrink never drops it). May
    /// sleep.
    /// </remarks>
    [KernelSymbol("mremap_to", "mm/mremap.c")]
    private async ValueTask<long> MremapTo(VmaRemapStruct vrm)
    {
        var mm = Current!.Mm!;
        long err;
        if ((vrm.Flags & MREMAP_FIXED) != 0)
        {
            // do_munmap() of the destination.
            err = await DoVmiMunmap(mm, vrm.NewAddr, vrm.NewLen, unlock: false);
            vrm.Vma = null;
            vrm.VmiNeedsInvalidate = true;
            if (err != 0)
            {
                return err;
            }
            // Remapping part of a VMA elsewhere in the same VMA invalidated it: look again.
            vrm.Vma = mm.MmMt.VmaLookup(vrm.Addr);
            if (vrm.Vma is null)
            {
                return -Errno.EFAULT;
            }
        }
        if (vrm.RemapType == MremapType.MREMAP_SHRINK)
        {
            err = await ShrinkVma(vrm, dropLock: false);
            if (err != 0)
            {
                return err;
            }
            vrm.OldLen = vrm.NewLen;
        }
        if ((vrm.Flags & MREMAP_DONTUNMAP) != 0)
        {
            // MREMAP_DONTUNMAP grows the address space by old_len (== new_len).
            long pages = (long)(vrm.OldLen >> PAGE_SHIFT);
            if (!MayExpandVm(mm, vrm.Vma!.VmFlags, pages))
            {
                return -Errno.ENOMEM;
            }
        }
        err = VrmSetNewAddr(vrm);
        if (err != 0)
        {
            return err;
        }
        return await MoveVma(vrm);
    }

    /// <summary>vma_expandable(): nothing mapped in [vm_end, vm_end + delta) and the result fits.</summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("vma_expandable", "mm/mremap.c")]
    private bool VmaExpandable(VmAreaStruct vma, ulong delta)
    {
        ulong end = vma.VmEnd + delta;
        if (end < vma.VmEnd)
        {
            return false;
        }
        if (vma.VmMm.MmMt.FindVmaIntersection(vma.VmEnd, end) is not null)
        {
            return false;
        }
        long r = GetUnmappedArea(vma.VmMm, null, vma.VmStart, end - vma.VmStart, 0, MAP_FIXED);
        return ((ulong)r & ~PAGE_MASK) == 0;
    }

    /// <summary>vrm_can_expand_in_place(): the range ends where the VMA ends and there is room after it.</summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("vrm_can_expand_in_place", "mm/mremap.c")]
    private bool VrmCanExpandInPlace(VmaRemapStruct vrm)
    {
        ulong suffixBytes = vrm.Vma!.VmEnd - vrm.Addr;
        if (suffixBytes != vrm.OldLen)
        {
            return false;
        }
        return VmaExpandable(vrm.Vma, vrm.Delta);
    }

    /// <summary>expand_vma_in_place(): charge, then vma_merge_extend() by delta.</summary>
    /// <remarks>Context: mmap_lock write-held; the merge write-locks the VMAs it changes.</remarks>
    [KernelSymbol("expand_vma_in_place", "mm/mremap.c")]
    private async ValueTask<long> ExpandVmaInPlace(VmaRemapStruct vrm)
    {
        var vma = vrm.Vma!;
        if (!VrmCalcCharge(vrm))
        {
            return -Errno.ENOMEM;
        }
        var merged = await VmaMergeExtend(vma, vrm.Delta);
        if (merged is null)
        {
            VrmUncharge(vrm);
            return -Errno.ENOMEM;
        }
        vrm.Vma = merged;
        VrmStatAccount(vrm, vrm.Delta);
        return 0;
    }

    /// <summary>
    /// vma_merge_extend(): grows a VMA by delta at its end, merging with the next VMA if it then
    /// touches it and is compatible. Null if the VMA cannot be extended (VM_SPECIAL).
    /// </summary>
    /// <remarks>Context: mmap_lock write-held; the merge write-locks the VMAs it changes.</remarks>
    [KernelSymbol("vma_merge_extend", "mm/vma.c")]
    public ValueTask<VmAreaStruct?> VmaMergeExtend(VmAreaStruct vma, ulong delta)
    {
        var mm = vma.VmMm;
        return VmaMergeNewRange(new VmaMergeStruct
        {
            Mm = mm,
            Prev = vma,
            Middle = null,
            Next = mm.MmMt.FindVma(vma.VmEnd),
            Start = vma.VmEnd,
            End = vma.VmEnd + delta,
            Pgoff = LinearPageIndex(vma, vma.VmEnd),
            VmFlags = vma.VmFlags,
            File = vma.VmFile,
            AnonVma = vma.AnonVma,
            AnonName = vma.AnonName,
        });
    }

    /// <summary>expand_vma(): in place if possible, else (with MREMAP_MAYMOVE) move to a new address.</summary>
    /// <remarks>Context: mmap_lock write-held and still held on return.</remarks>
    [KernelSymbol("expand_vma", "mm/mremap.c")]
    private async ValueTask<long> ExpandVma(VmaRemapStruct vrm)
    {
        long err;
        if (VrmCanExpandInPlace(vrm))
        {
            err = await ExpandVmaInPlace(vrm);
            if (err != 0)
            {
                return err;
            }
            return (long)vrm.Addr;
        }
        if ((vrm.Flags & MREMAP_MAYMOVE) == 0)
        {
            return -Errno.ENOMEM;
        }
        err = VrmSetNewAddr(vrm);
        if (err != 0)
        {
            return err;
        }
        return await MoveVma(vrm);
    }

    /// <summary>mremap_at(): resize where the mapping is (moving only if it must grow and cannot).</summary>
    /// <remarks>
    /// Context: mmap_lock write-held. A shrink returns with it dropped (vrm.MmapLocked false); the
    /// other paths keep it.
    /// </remarks>
    [KernelSymbol("mremap_at", "mm/mremap.c")]
    private async ValueTask<long> MremapAt(VmaRemapStruct vrm)
    {
        switch (vrm.RemapType)
        {
            case MremapType.MREMAP_NO_RESIZE:
                return (long)vrm.Addr;
            case MremapType.MREMAP_SHRINK:
                {
                    // Always in place: unmap the tail, dropping the mmap lock as munmap does.
                    long res = await ShrinkVma(vrm, dropLock: true);
                    return res != 0 ? res : (long)vrm.Addr;
                }
            case MremapType.MREMAP_EXPAND:
                return await ExpandVma(vrm);
        }
        WarnOnOnce(true, "mremap_at: unclassified remap");
        return -Errno.EINVAL;
    }

    /// <summary>vrm_will_map_new(): does the operation map address space not mapped before?</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vrm_will_map_new", "mm/mremap.c")]
    private static bool VrmWillMapNew(VmaRemapStruct vrm) =>
        vrm.RemapType == MremapType.MREMAP_EXPAND || VrmImpliesNewAddr(vrm);

    /// <summary>vrm_move_only(): MREMAP_FIXED with no resize — a pure move, possibly of many VMAs.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vrm_move_only", "mm/mremap.c")]
    private static bool VrmMoveOnly(VmaRemapStruct vrm) =>
        (vrm.Flags & MREMAP_FIXED) != 0 && vrm.OldLen == vrm.NewLen;

    /// <summary>
    /// vma_multi_allowed(): a VMA can be one of several moved together unless its file picks its
    /// own addresses (MREMAP_FIXED might not be obeyed). Shmem is known to obey it.
    /// </summary>
    /// <remarks>Context: mmap_lock held (the VMA is stable).</remarks>
    [KernelSymbol("vma_multi_allowed", "mm/mremap.c")]
    private static bool VmaMultiAllowed(VmAreaStruct vma)
    {
        var file = vma.VmFile;
        if (file is null || file.FOp.GetUnmappedArea is null)
        {
            return true;
        }
        return ShmemMapping(file.FMapping);
    }

    /// <summary>
    /// check_prep_vma(): the per-VMA checks, in the kernel's order: the VMA exists; classify the
    /// resize; then, only for a remap that maps new space, no duplicating of private mappings,
    /// DONTUNMAP restrictions, the range within the VMA, pgoff overflow, no growing of
    /// VM_DONTEXPAND/VM_PFNMAP, the mlock and address-space limits.
    /// </summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("check_prep_vma", "mm/mremap.c")]
    private int CheckPrepVma(VmaRemapStruct vrm)
    {
        var vma = vrm.Vma;
        var mm = Current!.Mm!;
        ulong addr = vrm.Addr;
        if (vma is null)
        {
            return -Errno.EFAULT;
        }
        // mseal() and hugetlb VMAs do not exist in the model.
        VrmSetDelta(vrm);
        vrm.RemapType = VrmRemapType(vrm);
        if (!VrmImpliesNewAddr(vrm))
        {
            vrm.NewAddr = addr;
        }
        if (!VrmWillMapNew(vrm))
        {
            return 0;
        }
        ulong oldLen = vrm.OldLen, newLen = vrm.NewLen;
        // old_len == 0 "duplicates" a mapping: only meaningful for shared ones.
        if (oldLen == 0 && (vma.VmFlags & (VM_SHARED | VM_MAYSHARE)) == 0)
        {
            return -Errno.EINVAL;
        }
        if ((vrm.Flags & MREMAP_DONTUNMAP) != 0 && (vma.VmFlags & (VM_DONTEXPAND | VM_PFNMAP)) != 0)
        {
            return -Errno.EINVAL;
        }
        // A shrink may unmap across VMA boundaries; what stays must lie in this VMA.
        if (vrm.RemapType == MremapType.MREMAP_SHRINK)
        {
            oldLen = newLen;
        }
        if (oldLen > vma.VmEnd - addr)
        {
            return -Errno.EFAULT;
        }
        if (newLen == oldLen)
        {
            return 0;
        }
        if ((vma.VmFlags & VM_LOCKED) != 0)
        {
            vrm.PopulateExpand = true;
        }
        ulong pgoff = ((addr - vma.VmStart) >> PAGE_SHIFT) + vma.VmPgoff;
        if (pgoff + (newLen >> PAGE_SHIFT) < pgoff)
        {
            return -Errno.EINVAL;
        }
        if ((vma.VmFlags & (VM_DONTEXPAND | VM_PFNMAP)) != 0)
        {
            return -Errno.EFAULT;
        }
        if (!MlockFutureOk(mm, (vma.VmFlags & VM_LOCKED) != 0, vrm.Delta))
        {
            return -Errno.EAGAIN;
        }
        if (!MayExpandVm(mm, vma.VmFlags, (long)(vrm.Delta >> PAGE_SHIFT)))
        {
            return -Errno.ENOMEM;
        }
        return 0;
    }

    /// <summary>
    /// check_mremap_params(): the checks that need no VMA — flags, alignment, lengths, and for a
    /// chosen new address its range, alignment, MREMAP_MAYMOVE, DONTUNMAP's fixed size, overlap.
    /// </summary>
    /// <remarks>Context: any; pure (no lock taken yet).</remarks>
    [KernelSymbol("check_mremap_params", "mm/mremap.c")]
    private long CheckMremapParams(VmaRemapStruct vrm)
    {
        ulong addr = vrm.Addr;
        int flags = vrm.Flags;
        ulong taskSize = Paging.TaskSize;
        if ((flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) != 0)
        {
            return -Errno.EINVAL;
        }
        if (OffsetInPage(addr))
        {
            return -Errno.EINVAL;
        }
        // A zero old_len is the "duplicate a shared mapping" case; a zero new_len is nonsense.
        if (vrm.NewLen == 0)
        {
            return -Errno.EINVAL;
        }
        if (vrm.NewLen > taskSize)
        {
            return -Errno.EINVAL;
        }
        if (!VrmImpliesNewAddr(vrm))
        {
            return 0;
        }
        if (vrm.NewAddr > taskSize - vrm.NewLen)
        {
            return -Errno.EINVAL;
        }
        if (OffsetInPage(vrm.NewAddr))
        {
            return -Errno.EINVAL;
        }
        if ((flags & MREMAP_MAYMOVE) == 0)
        {
            return -Errno.EINVAL;
        }
        if ((flags & MREMAP_DONTUNMAP) != 0 && vrm.OldLen != vrm.NewLen)
        {
            return -Errno.EINVAL;
        }
        if (VrmOverlaps(vrm))
        {
            return -Errno.EINVAL;
        }
        // move_vma() needs four maps of headroom; both the source and the destination may first
        // be split in three by the unmaps before it. Refuse before anything is unmapped.
        if (Current!.Mm!.MapCount + 2 >= Config.MaxMapCount - 3)
        {
            return -Errno.ENOMEM;
        }
        return 0;
    }

    /// <summary>
    /// remap_move(): a pure MREMAP_FIXED move of [addr, addr + old_len), which may span several
    /// VMAs (and gaps between them, but not before the first): each VMA moves to the same offset
    /// from new_addr, keeping the gaps. A VMA whose file chooses its own addresses can only move
    /// alone.
    /// </summary>
    /// <remarks>Context: mmap_lock write-held for the whole walk (no step may drop it).</remarks>
    [KernelSymbol("remap_move", "mm/mremap.c")]
    private async ValueTask<long> RemapMove(VmaRemapStruct vrm)
    {
        var mm = Current!.Mm!;
        ulong start = vrm.Addr;
        ulong end = vrm.Addr + vrm.OldLen;
        ulong newAddr = vrm.NewAddr;
        ulong targetAddr = newAddr;
        long res = -Errno.EFAULT;
        ulong lastEnd = 0;
        bool seenVma = false;
        ulong cursor = start;
        // for_each_vma_range(): the VMAs intersecting [cursor, end), in address order.
        while (cursor < end && mm.MmMt.FindVmaIntersection(cursor, end) is { } vma)
        {
            ulong addr = Math.Max(vma.VmStart, start);
            ulong len = Math.Min(end, vma.VmEnd) - addr;
            if (!seenVma && start < vma.VmStart)
            {
                return -Errno.EFAULT;
            }
            ulong offset = seenVma ? vma.VmStart - lastEnd : 0;
            lastEnd = vma.VmEnd;
            vrm.Vma = vma;
            vrm.Addr = addr;
            vrm.NewAddr = targetAddr + offset;
            vrm.OldLen = vrm.NewLen = len;
            bool multiAllowed = VmaMultiAllowed(vma);
            if (!multiAllowed)
            {
                if (seenVma)
                {
                    return -Errno.EFAULT;
                }
                if (vma.VmEnd < end)
                {
                    return -Errno.EFAULT;
                }
            }
            long resVma = CheckPrepVma(vrm);
            if (resVma == 0)
            {
                resVma = await MremapTo(vrm);
            }
            if (Errno.IsErrValue(resVma))
            {
                return resVma;
            }
            if (!seenVma)
            {
                WarnOnOnce(multiAllowed && resVma != (long)newAddr, "remap_move: first VMA did not land at new_addr");
                res = resVma;
            }
            WarnOnOnce(!vrm.MmapLocked, "remap_move: mmap lock dropped");
            WarnOnOnce(vrm.PopulateExpand, "remap_move: a move expanded");
            // vma_iter_invalidate(): the walk continues from where this VMA ended.
            vrm.VmiNeedsInvalidate = false;
            seenVma = true;
            targetAddr = (ulong)resVma + vrm.NewLen;
            cursor = lastEnd;
        }
        return res;
    }

    /// <summary>
    /// do_mremap(): page-aligns the lengths, validates, takes the mmap write lock, and either moves
    /// (MREMAP_FIXED without resize, possibly several VMAs) or remaps the single VMA at addr —
    /// to a new address (MREMAP_FIXED / MREMAP_DONTUNMAP) or where it is. An mlocked mapping that
    /// grew is populated after the lock is dropped. Returns the (new) address or an -errno.
    /// </summary>
    /// <remarks>
    /// Context: process context, no mm locks held. Takes mmap_lock for writing (killable: -EINTR)
    /// and releases it unless a shrink already did; populating a grown mlocked mapping happens
    /// after, under the read lock mm_populate() takes. May sleep.
    /// </remarks>
    [KernelSymbol("do_mremap", "mm/mremap.c")]
    public async ValueTask<long> DoMremap(ulong addr, ulong oldLen, ulong newLen, int flags, ulong newAddr)
    {
        var mm = Current!.Mm!;
        var vrm = new VmaRemapStruct(addr, PageAlign(oldLen), PageAlign(newLen), flags, newAddr);
        long res = CheckMremapParams(vrm);
        if (res != 0)
        {
            return res;
        }
        if (await MmapWriteLockKillable(mm) != 0)
        {
            return -Errno.EINTR;
        }
        vrm.MmapLocked = true;
        if (VrmMoveOnly(vrm))
        {
            res = await RemapMove(vrm);
        }
        else
        {
            vrm.Vma = mm.MmMt.VmaLookup(vrm.Addr);
            res = CheckPrepVma(vrm);
            if (res == 0)
            {
                res = VrmImpliesNewAddr(vrm) ? await MremapTo(vrm) : await MremapAt(vrm);
            }
        }
        bool failed = Errno.IsErrValue(res);
        if (vrm.MmapLocked)
        {
            await MmapWriteUnlock(mm);
        }
        if (!failed && vrm.PopulateExpand)
        {
            await MmPopulate(vrm.NewAddr + vrm.OldLen, vrm.Delta);
        }
        return res;
    }

    /// <summary>
    /// copy_vma(): a VMA for [addr, addr + len) with the source's attributes and the given pgoff —
    /// a neighbour expanded over the range if compatible (the source itself, for a not yet
    /// faulted anonymous VMA whose pgoff is rebased to the new address), else a duplicate linked
    /// into the tree, i_mmap and the source's anon_vmas. Returns the new VMA (null on failure), the
    /// source (replaced by the merged VMA if it was merged into), and whether move_ptes() must take
    /// the rmap locks (rmap might walk the new VMA before the old).
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("copy_vma", "mm/vma.c")]
    public async ValueTask<(VmAreaStruct? NewVma, VmAreaStruct Vma, bool NeedRmapLocks)> CopyVma(VmAreaStruct vma, ulong addr, ulong len, ulong pgoff)
    {
        ulong vmaStart = vma.VmStart;
        var mm = vma.VmMm;
        bool faultedInAnonVma = true;
        // An anonymous VMA with no pages yet takes the new address as its pgoff: more merges.
        if (vma.IsAnonymous && vma.AnonVma is null)
        {
            pgoff = addr >> PAGE_SHIFT;
            faultedInAnonVma = false;
        }
        var newVma = mm.MmMt.FindVmaPrev(addr, out var prev);
        if (newVma is not null && newVma.VmStart < addr + len)
        {
            return (null, vma, false);
        }
        var vmg = new VmaMergeStruct
        {
            Mm = mm,
            Prev = prev,
            Next = newVma,
            Start = addr,
            End = addr + len,
            Pgoff = pgoff,
            VmFlags = vma.VmFlags,
            File = vma.VmFile,
            AnonVma = vma.AnonVma,
            AnonName = vma.AnonName,
            CopiedFrom = vma,
        };
        newVma = await VmaMergeNewRange(vmg);
        bool needRmapLocks;
        if (newVma is not null)
        {
            if (vmaStart >= newVma.VmStart && vmaStart < newVma.VmEnd)
            {
                // Merging with itself is only possible for an unfaulted anonymous VMA, whose
                // pgoff could be rebased.
                VmBugOn(faultedInAnonVma, $"copy_vma: {vma} merged into {newVma} with pages");
                vma = newVma;
            }
            needRmapLocks = newVma.VmPgoff <= vma.VmPgoff;
        }
        else
        {
            newVma = VmAreaDup(vma);
            VmaSetRange(newVma, addr, addr + len, pgoff);
            await AnonVmaClone(newVma, vma, VmaOperation.VMA_OP_REMAP);
            if (newVma.VmFile is { } f)
            {
                f.FCount++;
            }
            if (newVma.VmOps?.Open is { } open)
            {
                await open(newVma);
            }
            await VmaLink(mm, newVma);
            needRmapLocks = false;
        }
        return (newVma, vma, needRmapLocks);
    }
}

using static Linux.PgTable;
using static Linux.VmFlags;

namespace Linux;

/// <summary>struct vma_merge_struct: a proposed range and its attributes, and what a merge did.</summary>
[KernelSymbol("vma_merge_struct", "mm/vma.h")]
public sealed class VmaMergeStruct
{
    public required MmStruct Mm;
    public VmAreaStruct? Prev;
    public VmAreaStruct? Middle;
    public VmAreaStruct? Next;
    public VmAreaStruct? Target;
    public ulong Start;
    public ulong End;
    public ulong Pgoff;
    public VmFlags VmFlags;
    public File? File;
    public AnonVma? AnonVma;
    public string? AnonName;
    /// <summary>mremap: the VMA being copied from (its fork history also blocks anon_vma sharing).</summary>
    public VmAreaStruct? CopiedFrom;
    public bool JustExpand;
    internal bool RemoveMiddle;
    internal bool RemoveNext;
    internal bool AdjustMiddleStart;
    internal bool AdjustNextStart;
    public bool NoMem;
}

/// <summary>struct vma_munmap_struct: the VMAs an unmap gathered, and what they accounted.</summary>
[KernelSymbol("vma_munmap_struct", "mm/vma.h")]
public sealed class VmaMunmapStruct
{
    public required MmStruct Mm;
    public VmAreaStruct? Vma;
    public VmAreaStruct? Prev;
    public VmAreaStruct? Next;
    public ulong Start;
    public ulong End;
    /// <summary>Bounds for freeing page tables: the neighbours that stay.</summary>
    public ulong UnmapStart;
    public ulong UnmapEnd;
    /// <summary>Downgrade the mmap lock to read before zapping (munmap(2)).</summary>
    public bool Unlock;
    public readonly List<VmAreaStruct> Detached = [];
    public long NrPages;
    public long LockedVm;
    public long NrAccounted;
    public long ExecVm;
    public long StackVm;
    public long DataVm;
    public bool ClearPtes;
}

// mm/vma.c: VMA merging, splitting, linking into the tree and i_mmap, and the munmap machinery.
public sealed partial class Kernel
{
    /// <summary>vm_area_alloc().</summary>
    /// <remarks>
    /// Context: any (mmap_lock write-held by callers that will link it); the new VMA is private
    /// until linked.
    /// </remarks>
    [KernelSymbol("vm_area_alloc", "mm/vma_init.c")]
    public VmAreaStruct VmAreaAlloc(MmStruct mm) => new(this, mm);

    /// <summary>vm_area_dup(): a copy with no anon_vma chain and a fresh lock.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held by the caller (or, for fork, the parent's mmap_lock write-
    /// held); the copy is private until linked.
    /// </remarks>
    [KernelSymbol("vm_area_dup", "mm/vma_init.c")]
    public VmAreaStruct VmAreaDup(VmAreaStruct orig, MmStruct? mm = null)
    {
        var n = new VmAreaStruct(this, mm ?? orig.VmMm)
        {
            VmStart = orig.VmStart,
            VmEnd = orig.VmEnd,
            VmPageProt = orig.VmPageProt,
            __VmFlags = orig.__VmFlags,
            VmPgoff = orig.VmPgoff,
            VmFile = orig.VmFile,
            VmOps = orig.VmOps,
            VmPrivateData = orig.VmPrivateData,
            AnonVma = orig.AnonVma,
            AnonName = orig.AnonName,
        };
        return n;
    }

    /// <summary>vma_set_range().</summary>
    private void VmaSetRange(VmAreaStruct vma, ulong start, ulong end, ulong pgoff)
    {
        Sched.Access(ObjId.Make(ObjId.Kind.Vma, (ulong)vma.Id), write: true);
        vma.VmStart = start;
        vma.VmEnd = end;
        vma.VmPgoff = pgoff;
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new VmaEffect(vma.VmMm.Id, "range", start, end, vma.VmFlags));
        }
    }

    /// <summary>vma_is_fork_child(): a VMA whose anon_vma chain came from a parent.</summary>
    private static bool VmaIsForkChild(VmAreaStruct? vma) =>
        vma is { AnonVma: not null } && vma.AnonVmaChain.Count != 1;

    private static bool IsMergeableVma(VmaMergeStruct vmg, bool mergeNext)
    {
        var vma = mergeNext ? vmg.Next! : vmg.Prev!;
        // VM_IGNORE_MERGE: soft-dirty and the sticky VM_MAYBE_GUARD do not prevent a merge.
        if (((vma.VmFlags ^ vmg.VmFlags) & ~(VM_SOFTDIRTY | VM_MAYBE_GUARD)) != 0)
        {
            return false;
        }
        return vma.VmFile == vmg.File && vma.AnonName == vmg.AnonName;
    }

    private static bool IsMergeableAnonVma(VmaMergeStruct vmg, bool mergeNext)
    {
        var tgt = mergeNext ? vmg.Next! : vmg.Prev!;
        var src = vmg.Middle;
        var tgtAnon = tgt.AnonVma;
        var srcAnon = vmg.AnonVma;
        if (tgtAnon is null && srcAnon is not null)
        {
            return !VmaIsForkChild(src) && !VmaIsForkChild(vmg.CopiedFrom);
        }
        if (tgtAnon is not null && srcAnon is null)
        {
            return !VmaIsForkChild(tgt);
        }
        return srcAnon == tgtAnon;
    }

    /// <summary>can_vma_merge_before(): the range can join vmg.Next at its start.</summary>
    /// <remarks>Context: mmap_lock write-held (the neighbours are stable).</remarks>
    [KernelSymbol("can_vma_merge_before", "mm/vma.c")]
    private static bool CanVmaMergeBefore(VmaMergeStruct vmg)
    {
        ulong pglen = (vmg.End - vmg.Start) >> PAGE_SHIFT;
        return IsMergeableVma(vmg, true) && IsMergeableAnonVma(vmg, true) && vmg.Next!.VmPgoff == vmg.Pgoff + pglen;
    }

    /// <summary>can_vma_merge_after(): the range can join vmg.Prev at its end.</summary>
    /// <remarks>Context: mmap_lock write-held (the neighbours are stable).</remarks>
    [KernelSymbol("can_vma_merge_after", "mm/vma.c")]
    private static bool CanVmaMergeAfter(VmaMergeStruct vmg) =>
        IsMergeableVma(vmg, false) && IsMergeableAnonVma(vmg, false) &&
        vmg.Prev!.VmPgoff + vmg.Prev.Pages == vmg.Pgoff;

    /// <summary>can_vma_merge_left(): vmg.Prev ends where the range starts and can absorb it.</summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("can_vma_merge_left", "mm/vma.c")]
    private static bool CanVmaMergeLeft(VmaMergeStruct vmg) =>
        vmg.Prev is not null && vmg.Prev.VmEnd == vmg.Start && CanVmaMergeAfter(vmg);

    /// <summary>can_vma_merge_right(): vmg.Next starts where the range ends and can absorb it; with a left merge too, prev's and next's anon_vmas must agree.</summary>
    /// <remarks>Context: mmap_lock write-held.</remarks>
    [KernelSymbol("can_vma_merge_right", "mm/vma.c")]
    private static bool CanVmaMergeRight(VmaMergeStruct vmg, bool canMergeLeft)
    {
        var next = vmg.Next;
        if (next is null || vmg.End != next.VmStart || !CanVmaMergeBefore(vmg))
        {
            return false;
        }
        if (!canMergeLeft)
        {
            return true;
        }
        var prev = vmg.Prev!;
        return prev.AnonVma is null || next.AnonVma is null || prev.AnonVma == next.AnonVma;
    }

    /// <summary>can_merge_remove_vma(): only VMAs without ->close can be merged away.</summary>
    private static bool CanMergeRemoveVma(VmAreaStruct vma) => vma.VmOps?.Close is null;

    /// <summary>
    /// dup_anon_vma(): when the expanded VMA has no anon_vma but the one it absorbs does, the
    /// expanded one takes it over (anon_vma_clone).
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held and dst write-locked (asserted). Cloning takes the anon_vma
    /// root rwsem; may sleep.
    /// </remarks>
    [KernelSymbol("dup_anon_vma", "mm/vma.c")]
    private async ValueTask<VmAreaStruct?> DupAnonVma(VmAreaStruct dst, VmAreaStruct src)
    {
        if (src.AnonVma is not null && dst.AnonVma is null)
        {
            dst.VmLock.AssertWriteLocked();
            dst.AnonVma = src.AnonVma;
            await AnonVmaClone(dst, src, VmaOperation.VMA_OP_MERGE_UNFAULTED);
            return dst;
        }
        return null;
    }

    /// <summary>vma_prepare(): takes i_mmap_rwsem and the anon_vma lock, and takes the VMAs out of
    /// i_mmap while their ranges change.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held and the VMAs involved write-locked. Takes i_mmap_rwsem (file
    /// VMAs), then the anon_vma root rwsem, both for writing, and returns with them held for
    /// vma_complete().
    /// </remarks>
    [KernelSymbol("vma_prepare", "mm/vma.c")]
    private async ValueTask VmaPrepare(VmAreaStruct vma, VmAreaStruct? adjNext, VmAreaStruct? insert, AnonVma? av)
    {
        var mapping = vma.VmFile?.FMapping;
        if (mapping is not null)
        {
            await mapping.IMmapRwsem.DownWrite("vma_prepare");
            if (insert?.VmFile is not null)
            {
                mapping.IMmap.Add(insert);
            }
        }
        if (av is not null)
        {
            await AnonVmaLockWrite(av, "vma_prepare");
        }
        if (mapping is not null)
        {
            mapping.IMmap.Remove(vma);
            if (adjNext is not null)
            {
                mapping.IMmap.Remove(adjNext);
            }
        }
    }

    /// <summary>vma_complete(): puts the VMAs back in i_mmap, stores an inserted VMA, removes merged-away
    /// ones, and drops the locks vma_prepare() took.</summary>
    /// <remarks>
    /// Context: the locks vma_prepare() took (plus mmap_lock write and the VMA write locks).
    /// Releases i_mmap_rwsem and the anon_vma lock; a removed VMA's anon_vma links are then dropped
    /// under the anon_vma lock again.
    /// </remarks>
    [KernelSymbol("vma_complete", "mm/vma.c")]
    private async ValueTask VmaComplete(VmAreaStruct vma, VmAreaStruct? adjNext, VmAreaStruct? insert, AnonVma? av,
        VmAreaStruct? remove, VmAreaStruct? remove2)
    {
        var mm = vma.VmMm;
        var mapping = vma.VmFile?.FMapping;
        if (mapping is not null)
        {
            if (adjNext is not null)
            {
                mapping.IMmap.Add(adjNext);
            }
            mapping.IMmap.Add(vma);
        }
        if (remove is not null && mapping is not null)
        {
            mapping.IMmap.Remove(remove);
            if (remove2 is not null)
            {
                mapping.IMmap.Remove(remove2);
            }
        }
        else if (insert is not null)
        {
            mm.MmMt.Insert(insert);
            mm.MapCount++;
            if (Sched.RecordsEffects)
            {
                Sched.OnEffect(new VmaEffect(mm.Id, "inserted", insert.VmStart, insert.VmEnd, insert.VmFlags));
            }
        }
        if (av is not null)
        {
            await AnonVmaUnlockWrite(av, "vma_complete");
        }
        if (mapping is not null)
        {
            await mapping.IMmapRwsem.UpWrite("vma_complete");
        }
        foreach (var r in new[] { remove, remove2 })
        {
            if (r is null)
            {
                continue;
            }
            if (r.Attached)
            {
                mm.MmMt.Remove(r);
            }
            if (r.VmFile is { } f)
            {
                Fput(f);
            }
            if (r.AnonVma is not null)
            {
                await UnlinkAnonVmas(r);
            }
            mm.MapCount--;
            if (Sched.RecordsEffects)
            {
                Sched.OnEffect(new VmaEffect(mm.Id, "merged away", r.VmStart, r.VmEnd, r.VmFlags));
            }
        }
    }

    /// <summary>
    /// __split_vma(): splits at <paramref name="addr"/>; the new VMA takes the part below
    /// (<paramref name="newBelow"/>) or above. Bypasses max_map_count. Returns 0 or -errno.
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("__split_vma", "mm/vma.c")]
    public async ValueTask<int> __SplitVma(VmAreaStruct vma, ulong addr, bool newBelow)
    {
        WarnOn(vma.VmStart >= addr, $"__split_vma at {addr:x} outside {vma}");
        WarnOn(vma.VmEnd <= addr, $"__split_vma at {addr:x} outside {vma}");
        if (vma.VmOps?.MaySplit is { } maySplit)
        {
            int err = maySplit(vma, addr);
            if (err != 0)
            {
                return err;
            }
        }
        var n = VmAreaDup(vma);
        if (newBelow)
        {
            n.VmEnd = addr;
        }
        else
        {
            n.VmStart = addr;
            n.VmPgoff += (addr - vma.VmStart) >> PAGE_SHIFT;
        }
        n.AnonVma = vma.AnonVma;
        if (vma.AnonVma is not null)
        {
            await AnonVmaClone(n, vma, VmaOperation.VMA_OP_SPLIT);
        }
        if (n.VmFile is { } file)
        {
            file.FCount++;
        }
        if (n.VmOps?.Open is { } open)
        {
            await open(n);
        }
        await VmaStartWrite(vma);
        await VmaStartWrite(n);
        await VmaPrepare(vma, null, n, vma.AnonVma);
        // vma_adjust_trans_huge(): huge leaves straddling the boundary are split.
        await SplitHugeAt(vma, addr);
        if (newBelow)
        {
            VmaSetRange(vma, addr, vma.VmEnd, vma.VmPgoff + ((addr - n.VmStart) >> PAGE_SHIFT));
        }
        else
        {
            VmaSetRange(vma, vma.VmStart, addr, vma.VmPgoff);
        }
        vma.VmMm.MmMt.Touch();
        await VmaComplete(vma, null, n, vma.AnonVma, null, null);
        return 0;
    }

    /// <summary>split_vma(): refuses past max_map_count.</summary>
    /// <remarks>Context: mmap_lock write-held; write-locks both halves. May sleep.</remarks>
    [KernelSymbol("split_vma", "mm/vma.c")]
    public ValueTask<int> SplitVma(VmAreaStruct vma, ulong addr, bool newBelow)
    {
        if (vma.VmMm.MapCount >= Config.MaxMapCount)
        {
            return ValueTask.FromResult(-Errno.ENOMEM);
        }
        return __SplitVma(vma, addr, newBelow);
    }

    /// <summary>Splits a huge PMD/PUD leaf that straddles <paramref name="addr"/> (vma_adjust_trans_huge()).</summary>
    private async ValueTask SplitHugeAt(VmAreaStruct vma, ulong addr)
    {
        if ((addr & (Paging.PmdSize - 1)) == 0 || (vma.VmFlags & (VM_PFNMAP | VM_MIXEDMAP)) == 0)
        {
            return;
        }
        if (MmFindPmd(vma.VmMm, addr) is { } pmd && PgTable.PmdLeaf(PmdpGet(pmd)))
        {
            await __SplitHugePmd(vma, pmd, addr);
        }
        var pgd = PgdOffset(vma.VmMm, addr);
        if (!Paging.PmdFolded && !PgdNone(PgdpGet(pgd)))
        {
            var p4d = P4dOffset(pgd, addr);
            if (!P4dNone(P4dpGet(p4d)))
            {
                var pud = PudOffset(p4d, addr);
                if (PudLeaf(PudpGet(pud)) && (addr & (Paging.PudSize - 1)) != 0)
                {
                    await __SplitHugePud(vma, pud, addr);
                }
            }
        }
    }

    /// <summary>
    /// commit_merge(): applies a merge decided by vma_merge_existing_range()/vma_expand(): the
    /// target's range grows, an adjusted neighbour shrinks, absorbed VMAs go.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held and every VMA involved write-locked.
    /// vma_prepare()/vma_complete() take and drop the rmap locks around the range changes.
    /// </remarks>
    [KernelSymbol("commit_merge", "mm/vma.c")]
    private async ValueTask CommitMerge(VmaMergeStruct vmg)
    {
        var vma = vmg.AdjustNextStart ? vmg.Middle! : vmg.Target!;
        VmAreaStruct? remove = null, remove2 = null;
        if (vmg.RemoveMiddle)
        {
            remove = vmg.Middle;
        }
        if (vmg.RemoveNext)
        {
            if (remove is null)
            {
                remove = vmg.Next;
            }
            else
            {
                remove2 = vmg.Next;
            }
        }
        var adjust = vmg.AdjustMiddleStart ? vmg.Middle : vmg.AdjustNextStart ? vmg.Next : null;
        var av = vma.AnonVma ?? adjust?.AnonVma;
        // Sticky flags (VM_MAYBE_GUARD) of any merged range stay on the VMA that takes it over.
        var sticky = (vmg.VmFlags | (remove?.VmFlags ?? VM_NONE) | (remove2?.VmFlags ?? VM_NONE)) & VM_MAYBE_GUARD;
        var grown = vmg.AdjustNextStart ? vmg.Next! : vma;
        if ((grown.VmFlags & sticky) != sticky)
        {
            SetVmFlags(grown, grown.VmFlags | sticky);
        }
        await VmaPrepare(vma, adjust, null, av);
        if (vmg.AdjustNextStart)
        {
            var next = vmg.Next!;
            VmaSetRange(vma, vmg.Start, vmg.End, vmg.Pgoff);
            VmaSetRange(next, vmg.End, next.VmEnd, next.VmPgoff - ((next.VmStart - vmg.End) >> PAGE_SHIFT));
        }
        else
        {
            // The VMAs being absorbed leave the tree before the target grows over them.
            foreach (var r in new[] { remove, remove2 })
            {
                if (r is not null && r.Attached)
                {
                    vma.VmMm.MmMt.Remove(r);
                }
            }
            VmaSetRange(vma, vmg.Start, vmg.End, vmg.Pgoff);
            if (vmg.AdjustMiddleStart)
            {
                var mid = vmg.Middle!;
                VmaSetRange(mid, vmg.End, mid.VmEnd, mid.VmPgoff + ((vmg.End - mid.VmStart) >> PAGE_SHIFT));
            }
        }
        vma.VmMm.MmMt.Touch();
        await VmaComplete(vma, adjust, null, av, remove, remove2);
    }

    /// <summary>
    /// vma_merge_existing_range(): after [start, end) of vmg.Middle changes attributes, try to fold
    /// it into the previous and/or next VMA. Returns the merged VMA or null.
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("vma_merge_existing_range", "mm/vma.c")]
    public async ValueTask<VmAreaStruct?> VmaMergeExistingRange(VmaMergeStruct vmg)
    {
        MmapAssertWriteLocked(vmg.Mm);
        var middle = vmg.Middle!;
        var prev = vmg.Prev;
        ulong start = vmg.Start, end = vmg.End;
        bool leftSide = start == middle.VmStart;
        bool rightSide = end == middle.VmEnd;
        if ((vmg.VmFlags & VM_SPECIAL) != 0 || (!leftSide && !rightSide))
        {
            return null;
        }
        bool mergeLeft = leftSide && CanVmaMergeLeft(vmg);
        bool mergeRight = false;
        VmAreaStruct? next = null;
        if (rightSide)
        {
            next = vmg.Next = vmg.Mm.MmMt.Next(middle);
            mergeRight = CanVmaMergeRight(vmg, mergeLeft);
        }
        if (!mergeLeft && !mergeRight)
        {
            return null;
        }
        bool mergeBoth = mergeLeft && mergeRight;
        vmg.RemoveMiddle = leftSide && rightSide;
        if (vmg.RemoveMiddle && !CanMergeRemoveVma(middle))
        {
            return null;
        }
        vmg.RemoveNext = mergeBoth;
        if (vmg.RemoveNext && !CanMergeRemoveVma(next!))
        {
            vmg.RemoveNext = false;
            mergeRight = false;
            mergeBoth = false;
        }
        await VmaStartWrite(middle);
        if (mergeRight)
        {
            await VmaStartWrite(next!);
            vmg.Target = next;
        }
        if (mergeLeft)
        {
            await VmaStartWrite(prev!);
            vmg.Target = prev;
        }
        if (mergeBoth)
        {
            vmg.Start = prev!.VmStart;
            vmg.End = next!.VmEnd;
            vmg.Pgoff = prev.VmPgoff;
            await DupAnonVma(prev, next.AnonVma is not null ? next : middle);
        }
        else if (mergeLeft)
        {
            vmg.Start = prev!.VmStart;
            vmg.Pgoff = prev.VmPgoff;
            if (!vmg.RemoveMiddle)
            {
                vmg.AdjustMiddleStart = true;
            }
            await DupAnonVma(prev, middle);
        }
        else
        {
            ulong pglen = (vmg.End - vmg.Start) >> PAGE_SHIFT;
            if (vmg.RemoveMiddle)
            {
                vmg.End = next!.VmEnd;
                vmg.Pgoff = next.VmPgoff - pglen;
            }
            else
            {
                vmg.AdjustNextStart = true;
                vmg.Start = middle.VmStart;
                vmg.End = start;
                vmg.Pgoff = middle.VmPgoff;
            }
            await DupAnonVma(next!, middle);
        }
        await CommitMerge(vmg);
        return vmg.Target;
    }

    /// <summary>
    /// vma_merge_new_range(): a new range [start, end) is about to be mapped; expand a compatible
    /// neighbour (or two) over it instead of creating a VMA. Returns the expanded VMA or null.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held (asserted). Write-locks the VMAs it expands or removes; takes
    /// the rmap locks through vma_prepare(). May sleep.
    /// </remarks>
    [KernelSymbol("vma_merge_new_range", "mm/vma.c")]
    public async ValueTask<VmAreaStruct?> VmaMergeNewRange(VmaMergeStruct vmg)
    {
        MmapAssertWriteLocked(vmg.Mm);
        var prev = vmg.Prev;
        var next = vmg.Next;
        ulong end = vmg.End;
        if ((vmg.VmFlags & VM_SPECIAL) != 0 || (prev is null && next is null))
        {
            return null;
        }
        bool canMergeLeft = CanVmaMergeLeft(vmg);
        bool canMergeRight = !vmg.JustExpand && CanVmaMergeRight(vmg, canMergeLeft);
        if (canMergeRight)
        {
            vmg.End = next!.VmEnd;
            vmg.Target = next;
        }
        if (canMergeLeft)
        {
            vmg.Start = prev!.VmStart;
            vmg.Target = prev;
            vmg.Pgoff = prev.VmPgoff;
            if (canMergeRight && !CanMergeRemoveVma(next!))
            {
                vmg.End = end;
            }
        }
        if (vmg.Target is not null && await VmaExpand(vmg) == 0)
        {
            return vmg.Target;
        }
        return null;
    }

    /// <summary>
    /// vma_expand(): grow vmg.Target to [start, end), absorbing vmg.Next if the range now covers it.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held. Write-locks the target (and next, when absorbed), then
    /// commits under the rmap locks.
    /// </remarks>
    [KernelSymbol("vma_expand", "mm/vma.c")]
    public async ValueTask<int> VmaExpand(VmaMergeStruct vmg)
    {
        var target = vmg.Target!;
        var next = vmg.Next;
        bool removeNext = next is not null && next != target && vmg.End == next.VmEnd;
        await VmaStartWrite(target);
        if (removeNext)
        {
            await VmaStartWrite(next!);
            await DupAnonVma(target, next!);
        }
        else if (vmg.Middle is { } mid && mid != target)
        {
            await DupAnonVma(target, mid);
        }
        // copy_vma(): the range copied from another VMA brings that VMA's anon_vma along.
        if (vmg.CopiedFrom is { } copiedFrom)
        {
            await DupAnonVma(target, copiedFrom);
        }
        vmg.RemoveNext = removeNext;
        vmg.RemoveMiddle = false;
        await CommitMerge(vmg);
        return 0;
    }

    /// <summary>
    /// vma_modify(): change attributes of [start, end) of a VMA — merge with a neighbour if the new
    /// attributes allow, else split off the parts outside the range. Returns the VMA that now
    /// covers exactly [start, end), or an -errno.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held. Merging or splitting write-locks the VMAs it changes; may
    /// sleep.
    /// </remarks>
    [KernelSymbol("vma_modify", "mm/vma.c")]
    public async ValueTask<(VmAreaStruct? Vma, int Err)> VmaModify(VmaMergeStruct vmg)
    {
        var vma = vmg.Middle!;
        ulong start = vmg.Start, end = vmg.End;
        var merged = await VmaMergeExistingRange(vmg);
        if (merged is not null)
        {
            return (merged, 0);
        }
        if (vma.VmStart < start)
        {
            int err = await SplitVma(vma, start, newBelow: true);
            if (err != 0)
            {
                return (null, err);
            }
        }
        if (vma.VmEnd > end)
        {
            int err = await SplitVma(vma, end, newBelow: false);
            if (err != 0)
            {
                return (null, err);
            }
        }
        return (vma, 0);
    }

    /// <summary>vma_modify_flags(): vma_modify() for new vm_flags (mprotect, madvise).</summary>
    /// <remarks>
    /// Context: mmap_lock write-held (mprotect, madvise); see vma_modify(). The caller sets the
    /// flags afterwards under the VMA write lock.
    /// </remarks>
    [KernelSymbol("vma_modify_flags", "mm/vma.c")]
    public ValueTask<(VmAreaStruct? Vma, int Err)> VmaModifyFlags(VmAreaStruct? prev, VmAreaStruct vma, ulong start, ulong end, VmFlags flags) =>
        VmaModify(new VmaMergeStruct
        {
            Mm = vma.VmMm,
            Prev = prev,
            Middle = vma,
            Start = start,
            End = end,
            Pgoff = vma.VmPgoff + ((start - vma.VmStart) >> PAGE_SHIFT),
            VmFlags = flags,
            File = vma.VmFile,
            AnonVma = vma.AnonVma,
            AnonName = vma.AnonName,
        });

    /// <summary>vma_link_file(): a file VMA joins its mapping's i_mmap (optionally keeping the lock).</summary>
    /// <remarks>
    /// Context: mmap_lock write-held. Takes i_mmap_rwsem for writing and, with holdRmapLock,
    /// returns with it still held (mmap_region() releases it).
    /// </remarks>
    [KernelSymbol("vma_link_file", "mm/vma.c")]
    public async ValueTask VmaLinkFile(VmAreaStruct vma, bool holdRmapLock)
    {
        if (vma.VmFile is not { } file)
        {
            return;
        }
        var mapping = file.FMapping;
        await mapping.IMmapRwsem.DownWrite("vma_link_file");
        Sched.Access(mapping.PagesObj, write: true);
        mapping.IMmap.Add(vma);
        if (!holdRmapLock)
        {
            await mapping.IMmapRwsem.UpWrite("vma_link_file");
        }
    }

    /// <summary>unlink_file_vma(): the VMA leaves i_mmap.</summary>
    /// <remarks>
    /// Context: mmap_lock held (write, or the final exit_mmap() teardown). Takes and drops
    /// i_mmap_rwsem for writing.
    /// </remarks>
    [KernelSymbol("unlink_file_vma", "mm/vma.c")]
    public async ValueTask UnlinkFileVma(VmAreaStruct vma)
    {
        if (vma.VmFile is not { } file)
        {
            return;
        }
        var mapping = file.FMapping;
        await mapping.IMmapRwsem.DownWrite("unlink_file_vma");
        Sched.Access(mapping.PagesObj, write: true);
        mapping.IMmap.Remove(vma);
        await mapping.IMmapRwsem.UpWrite("unlink_file_vma");
    }

    /// <summary>vma_link(): inserts a VMA into the tree and i_mmap.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held. Write-locks the new VMA before it becomes visible; takes
    /// i_mmap_rwsem for the file link.
    /// </remarks>
    [KernelSymbol("vma_link", "mm/vma.c")]
    public async ValueTask VmaLink(MmStruct mm, VmAreaStruct vma)
    {
        await VmaStartWrite(vma);
        mm.MmMt.Insert(vma);
        mm.MapCount++;
        await VmaLinkFile(vma, holdRmapLock: false);
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new VmaEffect(mm.Id, "inserted", vma.VmStart, vma.VmEnd, vma.VmFlags));
        }
    }

    /// <summary>vma_close(): ->close.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held (or exit_mmap() teardown); the VMA is detached. -&gt;close may
    /// sleep.
    /// </remarks>
    [KernelSymbol("vma_close", "mm/internal.h")]
    private async ValueTask VmaClose(VmAreaStruct vma)
    {
        if (vma.VmOps?.Close is { } close)
        {
            await close(vma);
        }
    }

    /// <summary>remove_vma(): ->close, drop the file, free.</summary>
    /// <remarks>
    /// Context: the VMA is detached; mmap_lock held (read after a munmap downgrade is enough). May
    /// sleep.
    /// </remarks>
    [KernelSymbol("remove_vma", "mm/vma.c")]
    public async ValueTask RemoveVma(VmAreaStruct vma)
    {
        MightSleep();
        await VmaClose(vma);
        if (vma.VmFile is { } f)
        {
            Fput(f);
        }
    }

    /// <summary>
    /// vms_gather_munmap_vmas(): splits the VMAs at the range's ends and detaches those inside,
    /// write-locking each. The tree still holds them until the caller clears the range.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held. Splits at the edges and write-locks every VMA it detaches;
    /// may sleep.
    /// </remarks>
    [KernelSymbol("vms_gather_munmap_vmas", "mm/vma.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<int> VmsGatherMunmapVmas(VmaMunmapStruct vms)
    {
        var mm = vms.Mm;
        var tree = mm.MmMt;
        var vma = vms.Vma!;
        if (vms.Start > vma.VmStart)
        {
            if (vms.End < vma.VmEnd && mm.MapCount >= Config.MaxMapCount)
            {
                return -Errno.ENOMEM;
            }
            int error = await __SplitVma(vma, vms.Start, newBelow: true);
            if (error != 0)
            {
                return error;
            }
        }
        tree.FindVmaPrev(vms.Start, out var p);
        vms.Prev = p;
        if (vms.Prev is not null)
        {
            vms.UnmapStart = vms.Prev.VmEnd;
        }
        foreach (var next in tree.Overlapping(vms.Start, vms.End))
        {
            if (next.VmEnd > vms.End)
            {
                int error = await __SplitVma(next, vms.End, newBelow: false);
                if (error != 0)
                {
                    return error;
                }
            }
            await VmaStartWrite(next);
            vms.Detached.Add(next);
            long nrpages = (long)next.Pages;
            vms.NrPages += nrpages;
            if ((next.VmFlags & VM_LOCKED) != 0)
            {
                vms.LockedVm += nrpages;
            }
            if ((next.VmFlags & VM_ACCOUNT) != 0)
            {
                vms.NrAccounted += nrpages;
            }
            if (IsExecMapping(next.VmFlags))
            {
                vms.ExecVm += nrpages;
            }
            else if (IsStackMapping(next.VmFlags))
            {
                vms.StackVm += nrpages;
            }
            else if (IsDataMapping(next.VmFlags))
            {
                vms.DataVm += nrpages;
            }
        }
        vms.Next = tree.FindVma(vms.End);
        if (vms.Next is not null)
        {
            vms.UnmapEnd = vms.Next.VmStart;
        }
        vms.ClearPtes = true;
        return 0;
    }

    /// <summary>vma_iter_clear(): the gathered VMAs leave the tree.</summary>
    private void VmsClearTree(VmaMunmapStruct vms)
    {
        foreach (var v in vms.Detached)
        {
            if (v.Attached)
            {
                vms.Mm.MmMt.Remove(v);
                if (Sched.RecordsEffects)
                {
                    Sched.OnEffect(new VmaEffect(vms.Mm.Id, "removed", v.VmStart, v.VmEnd, v.VmFlags));
                }
            }
        }
    }

    /// <summary>vms_clear_ptes(): zaps the gathered VMAs and frees their page tables.</summary>
    /// <remarks>
    /// Context: mmap_lock held: write, or read after the munmap downgrade (mmWrLocked false).
    /// Zapping takes the PTLs; freeing tables takes the rmap locks.
    /// </remarks>
    [KernelSymbol("vms_clear_ptes", "mm/vma.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask VmsClearPtes(VmaMunmapStruct vms, bool mmWrLocked)
    {
        if (!vms.ClearPtes || vms.Detached.Count == 0)
        {
            return;
        }
        var tlb = TlbGatherMmu(vms.Mm);
        await UnmapVmas(tlb, vms.Detached, vms.Start, vms.End);
        await FreePgtables(tlb, vms.Detached, vms.UnmapStart, vms.UnmapEnd, mmWrLocked);
        TlbFinishMmu(tlb);
        vms.ClearPtes = false;
    }

    /// <summary>
    /// vms_complete_munmap_vmas(): accounting, the optional downgrade to the read lock, zapping,
    /// and removing the VMAs (->close, fput).
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held. With vms.Unlock it downgrades to read for the zap and returns
    /// with the lock released; otherwise it returns with the write lock still held.
    /// </remarks>
    [KernelSymbol("vms_complete_munmap_vmas", "mm/vma.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    public async ValueTask VmsCompleteMunmapVmas(VmaMunmapStruct vms)
    {
        var mm = vms.Mm;
        mm.MapCount -= vms.Detached.Count;
        mm.LockedVm -= vms.LockedVm;
        if (vms.Unlock)
        {
            await MmapWriteDowngrade(mm);
        }
        if (vms.NrPages == 0)
        {
            return;
        }
        await VmsClearPtes(vms, !vms.Unlock);
        mm.TotalVm -= vms.NrPages;
        mm.ExecVm -= vms.ExecVm;
        mm.StackVm -= vms.StackVm;
        mm.DataVm -= vms.DataVm;
        foreach (var v in vms.Detached)
        {
            await RemoveVma(v);
        }
        VmUnacctMemory(vms.NrAccounted);
        if (vms.Unlock)
        {
            await MmapReadUnlock(mm);
        }
    }

    /// <summary>do_vmi_align_munmap(): gather, clear the tree, complete.</summary>
    /// <remarks>
    /// Context: mmap_lock write-held. With unlock, returns with it released on success; on failure
    /// it is still held.
    /// </remarks>
    [KernelSymbol("do_vmi_align_munmap", "mm/vma.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<int> DoVmiAlignMunmap(VmAreaStruct vma, MmStruct mm, ulong start, ulong end, bool unlock)
    {
        var vms = new VmaMunmapStruct { Mm = mm, Vma = vma, Start = start, End = end, Unlock = unlock };
        int error = await VmsGatherMunmapVmas(vms);
        if (error != 0)
        {
            // gather_failed: the lock stays held whatever `unlock` says; __vm_munmap() drops it.
            return error;
        }
        VmsClearTree(vms);
        await VmsCompleteMunmapVmas(vms);
        return 0;
    }

    /// <summary>
    /// do_vmi_munmap(): validates and unmaps [start, start+len). With <paramref name="unlock"/>
    /// the mmap lock is dropped on success (downgraded to read for the zap).
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("do_vmi_munmap", "mm/vma.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<int> DoVmiMunmap(MmStruct mm, ulong start, ulong len, bool unlock)
    {
        if (OffsetInPage(start) || start > Paging.TaskSize || len > Paging.TaskSize - start)
        {
            return -Errno.EINVAL;
        }
        ulong end = start + PageAlign(len);
        if (end == start)
        {
            return -Errno.EINVAL;
        }
        var vma = mm.MmMt.FindVmaIntersection(start, end);
        if (vma is null)
        {
            if (unlock)
            {
                await MmapWriteUnlock(mm);
            }
            return 0;
        }
        return await DoVmiAlignMunmap(vma, mm, start, end, unlock);
    }

    // ---- vm statistics (mm/vma.c, mm/internal.h) ----

    private static bool IsExecMapping(VmFlags f) => (f & (VM_EXEC | VM_WRITE | VM_STACK)) == VM_EXEC;

    private static bool IsStackMapping(VmFlags f) => (f & VM_STACK) == VM_STACK;

    private static bool IsDataMapping(VmFlags f) => (f & (VM_WRITE | VM_SHARED | VM_STACK)) == VM_WRITE;

    /// <summary>vm_stat_account().</summary>
    /// <remarks>Context: mmap_lock write-held (the counters it updates are protected by it).</remarks>
    [KernelSymbol("vm_stat_account", "mm/mmap.c")]
    public static void VmStatAccount(MmStruct mm, VmFlags flags, long npages)
    {
        mm.TotalVm += npages;
        if (IsExecMapping(flags))
        {
            mm.ExecVm += npages;
        }
        else if (IsStackMapping(flags))
        {
            mm.StackVm += npages;
        }
        else if (IsDataMapping(flags))
        {
            mm.DataVm += npages;
        }
    }

    /// <summary>vm_committed_as: pages charged by VM_ACCOUNT mappings.</summary>
    public long CommittedPages { get; private set; }

    /// <summary>
    /// __vm_enough_memory() with overcommit_memory=0 (the heuristic): refuse only a request
    /// larger than all of RAM (there is no swap in the model).
    /// </summary>
    /// <remarks>Context: any; the global commit counter is atomic.</remarks>
    [KernelSymbol("__vm_enough_memory", "mm/util.c")]
    public int VmEnoughMemory(long pages)
    {
        CommittedPages += pages;
        if (pages > Buddy.TotalPages)
        {
            CommittedPages -= pages;
            return -Errno.ENOMEM;
        }
        return 0;
    }

    /// <summary>vm_unacct_memory().</summary>
    /// <remarks>Context: any; the global commit counter is atomic.</remarks>
    [KernelSymbol("vm_unacct_memory", "include/linux/mman.h")]
    public void VmUnacctMemory(long pages) => CommittedPages -= pages;

    /// <summary>fput(): drops a file reference; the last one queues the release as task work,
    /// which runs on the way back to user space.</summary>
    /// <remarks>Context: any; the final release is deferred to task work, run without mm locks.</remarks>
    [KernelSymbol("fput", "fs/file_table.c")]
    public void Fput(File f)
    {
        if (--f.FCount == 0)
        {
            _deferredFput.Add(f);
        }
    }

    private readonly List<File> _deferredFput = [];

    /// <summary>____fput(): the deferred final release (->release, then the inode reference).</summary>
    /// <remarks>
    /// Context: task work on the way back to user space: no mm locks held. -&gt;release and iput
    /// may sleep.
    /// </remarks>
    [KernelSymbol("____fput", "fs/file_table.c")]
    private async ValueTask RunDeferredFput()
    {
        while (_deferredFput.Count > 0)
        {
            var f = _deferredFput[^1];
            _deferredFput.RemoveAt(_deferredFput.Count - 1);
            if (f.FOp.Release is { } release)
            {
                await release(f);
            }
            await Iput(f.FInode);
        }
    }
}

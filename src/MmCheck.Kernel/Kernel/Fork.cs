namespace Linux;

// kernel/fork.c (copy_process, copy_mm, dup_mm) and dup_mmap() (mm/mmap.c).
public sealed partial class Kernel
{
    /// <summary>
    /// fork(2) → kernel_clone() → copy_process(): a new process whose mm is a copy of the
    /// caller's. Returns the child task (the caller's return value is its pid), or an -errno.
    /// </summary>
    /// <remarks>Context: process context, no locks held; may sleep.</remarks>
    [KernelSymbol("kernel_clone", "kernel/fork.c")]
    public async ValueTask<(TaskStruct? Child, int Err)> KernelClone()
    {
        var parent = Current!;
        var oldmm = parent.Mm!;
        var (mm, err) = await DupMm(oldmm);
        if (mm is null)
        {
            return (null, err);
        }
        var child = NewTaskForFork(parent, mm, parent.Files.Dup());
        return (child, 0);
    }

    /// <summary>dup_mm(): a fresh mm (new PGD) filled by dup_mmap().</summary>
    /// <remarks>Context: no locks held; dup_mmap() takes the mmap locks.</remarks>
    [KernelSymbol("dup_mm", "kernel/fork.c")]
    private async ValueTask<(MmStruct? Mm, int Err)> DupMm(MmStruct oldmm)
    {
        if (TryMmAllocCore(isInitMm: false) is not { } mm)
        {
            return (null, -Errno.ENOMEM);
        }
        mm.MmapBase = oldmm.MmapBase;
        mm.TaskSize = oldmm.TaskSize;
        int err = await DupMmap(mm, oldmm);
        if (err != 0)
        {
            await MmputNoTask(mm);
            return (null, err);
        }
        return (mm, 0);
    }

    /// <summary>
    /// dup_mmap(): under both mmap write locks (the child's nested), duplicate every VMA except
    /// VM_DONTCOPY ones; VM_WIPEONFORK VMAs start empty; others join the parent's anon_vmas and get
    /// their page tables copied. Since 35e351780fa9 (v6.9) the new VMA goes into the tree, then
    /// ->open() runs, then it is linked into i_mmap, then copy_page_range() fills it; before
    /// (variant dup_mmap.open_order = open_after_copy) it was linked into i_mmap first, then the
    /// tree, then copy_page_range(), and ->open() came last. The parent's TLB is flushed at the end.
    /// </summary>
    /// <remarks>Context: no locks held on entry; takes the parent's mmap write lock, then the child's nested.</remarks>
    [KernelSymbol("dup_mmap", "mm/mmap.c")]
    public async ValueTask<int> DupMmap(MmStruct mm, MmStruct oldmm)
    {
        await MmapWriteLockKillable(oldmm);
        await MmapWriteLockNested(mm, 1);
        mm.TotalVm = oldmm.TotalVm;
        mm.DataVm = oldmm.DataVm;
        mm.ExecVm = oldmm.ExecVm;
        mm.StackVm = oldmm.StackVm;
        bool openFirst = Variants.DupMmapOpenBeforeCopy;
        int retval = 0;
        foreach (var mpnt in oldmm.MmMt.Snapshot())
        {
            await VmaStartWrite(mpnt);
            if ((mpnt.VmFlags & VmFlags.VM_DONTCOPY) != 0)
            {
                VmStatAccount(mm, mpnt.VmFlags, -(long)mpnt.Pages);
                continue;
            }
            if ((mpnt.VmFlags & VmFlags.VM_ACCOUNT) != 0 && VmEnoughMemory((long)mpnt.Pages) != 0)
            {
                retval = -Errno.ENOMEM;
                break;
            }
            var tmp = VmAreaDup(mpnt, mm);
            VmaPfnmapTrackCtxDup(mpnt, tmp);
            if ((tmp.VmFlags & VmFlags.VM_WIPEONFORK) != 0)
            {
                tmp.AnonVma = null;
            }
            else if (await AnonVmaFork(tmp, mpnt) != 0)
            {
                retval = -Errno.ENOMEM;
                break;
            }
            await VmFlagsClear(tmp, VmFlags.VM_LOCKED_MASK);
            if (openFirst)
            {
                mm.MmMt.Insert(tmp);
                mm.MapCount++;
                if (tmp.VmOps?.Open is { } open)
                {
                    await open(tmp);
                }
                await DupMmapLinkFile(tmp, mpnt);
                if ((tmp.VmFlags & VmFlags.VM_WIPEONFORK) == 0)
                {
                    retval = await CopyPageRange(tmp, mpnt);
                }
            }
            else
            {
                await DupMmapLinkFile(tmp, mpnt);
                mm.MmMt.Insert(tmp);
                mm.MapCount++;
                if ((tmp.VmFlags & VmFlags.VM_WIPEONFORK) == 0)
                {
                    retval = await CopyPageRange(tmp, mpnt);
                }
                if (tmp.VmOps?.Open is { } open)
                {
                    await open(tmp);
                }
            }
            if (retval != 0)
            {
                break;
            }
        }
        await MmapWriteUnlock(mm);
        FlushTlbMm(oldmm);
        await MmapWriteUnlock(oldmm);
        return retval;
    }

    /// <summary>dup_mmap()'s file step: insert the child VMA into i_mmap just after the parent's.</summary>
    private async ValueTask DupMmapLinkFile(VmAreaStruct tmp, VmAreaStruct mpnt)
    {
        if (tmp.VmFile is not { } file)
        {
            return;
        }
        file.FCount++;
        var mapping = file.FMapping;
        await mapping.IMmapRwsem.DownWrite("dup_mmap");
        int at = mapping.IMmap.IndexOf(mpnt);
        mapping.IMmap.Insert(at < 0 ? mapping.IMmap.Count : at + 1, tmp);
        await mapping.IMmapRwsem.UpWrite("dup_mmap");
    }

    /// <summary>
    /// vma_pfnmap_track_ctx_dup() (vm_area_dup(), v6.16+): the copy shares the original's
    /// pfnmap_track_ctx, taking a reference.
    /// </summary>
    /// <remarks>Context: vm_area_dup() at fork: the parent's mmap_lock write-held; the kref is atomic.</remarks>
    [KernelSymbol("vma_pfnmap_track_ctx_dup", "mm/vma_init.c")]
    private static void VmaPfnmapTrackCtxDup(VmAreaStruct orig, VmAreaStruct n)
    {
        if (orig.PfnmapTrackCtx is { } ctx)
        {
            ctx.Kref++;
            n.PfnmapTrackCtx = ctx;
        }
    }
}

using static Linux.FaultFlag;
using static Linux.PgTable;
using static Linux.VmFault;

namespace Linux;

// mm/memory.c: the page-fault path, from handle_mm_fault() down to the PTE.
public sealed partial class Kernel
{
    /// <summary>
    /// handle_mm_fault(): resolves a fault at <paramref name="address"/> in <paramref name="vma"/>.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock read-held, or the VMA read-locked when FAULT_FLAG_VMA_LOCK. On
    /// VM_FAULT_RETRY or VM_FAULT_COMPLETED that lock has been released.
    /// </remarks>
    [KernelSymbol("handle_mm_fault", "mm/memory.c")]
    public ValueTask<VmFault> HandleMmFault(VmAreaStruct vma, ulong address, FaultFlag flags)
    {
        CountVmEvent(VmEventItem.PGFAULT);
        var ret = SanitizeFaultFlags(vma, ref flags);
        if (ret != 0)
        {
            return new ValueTask<VmFault>(ret);
        }
        if ((vma.VmFlags & VmFlags.VM_HUGETLB) != 0)
        {
            Bug("hugetlb VMAs are not modelled");
        }
        // __handle_mm_fault() with the task's pooled fault frame (struct vm_fault lives on the
        // kernel stack; here it is reused so that a fault allocates nothing).
        var t = Current!;
        var vmf = t.FaultFrames.TryPop(out var frame) ? frame : new VmFaultInfo();
        vmf.Vma = vma;
        vmf.Address = address & PAGE_MASK;
        vmf.RealAddress = address;
        vmf.Flags = flags;
        vmf.Pgoff = LinearPageIndex(vma, address);
        (vmf.Pmd, vmf.Pud, vmf.Pte, vmf.Ptl, vmf.OrigPte, vmf.OrigPmd) = (default, default, null, null, default, default);
        (vmf.CowPage, vmf.Page, vmf.PreallocPte) = (null, null, null);
        // No async frame of its own when __handle_mm_fault() completes without suspending.
        var pending = __HandleMmFault(vmf);
        return pending.IsCompletedSuccessfully
            ? new ValueTask<VmFault>(HandleMmFaultDone(t, vmf, flags, pending.Result))
            : HandleMmFaultAfterSuspend(t, vmf, flags, pending);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> HandleMmFaultAfterSuspend(TaskStruct t, VmFaultInfo vmf, FaultFlag flags, ValueTask<VmFault> pending) =>
        HandleMmFaultDone(t, vmf, flags, await pending);

    /// <summary>The tail of handle_mm_fault(): the frame goes back to the task's pool, the fault is counted.</summary>
    private VmFault HandleMmFaultDone(TaskStruct t, VmFaultInfo vmf, FaultFlag flags, VmFault ret)
    {
        t.FaultFrames.Push(vmf);
        MmAccountFault(flags, ret);
        return ret;
    }

    /// <summary>mm_account_fault(): major/minor fault counts; retries are not counted.</summary>
    /// <remarks>Context: the end of handle_mm_fault(), possibly after the fault dropped the mmap_lock or the VMA
    /// lock; touches only the event counters.</remarks>
    [KernelSymbol("mm_account_fault", "mm/memory.c")]
    private void MmAccountFault(FaultFlag flags, VmFault ret)
    {
        if ((ret & VM_FAULT_RETRY) != 0)
        {
            return;
        }
        bool major = (ret & VM_FAULT_MAJOR) != 0 || (flags & FAULT_FLAG_TRIED) != 0;
        CountVmEvent(major ? VmEventItem.MAJ_FLT : VmEventItem.MIN_FLT);
    }

    /// <summary>sanitize_fault_flags(): write faults need VM_MAYWRITE; FOLL_FORCE only on COW mappings.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock held (vm_flags stable).</remarks>
    [KernelSymbol("sanitize_fault_flags", "mm/memory.c")]
    private VmFault SanitizeFaultFlags(VmAreaStruct vma, ref FaultFlag flags)
    {
        if ((flags & FAULT_FLAG_UNSHARE) != 0)
        {
            if (WarnOnOnce((flags & FAULT_FLAG_WRITE) != 0, "FAULT_FLAG_UNSHARE with FAULT_FLAG_WRITE"))
            {
                return VM_FAULT_SIGSEGV;
            }
            if (!MmFlags.IsCowMapping(vma.VmFlags))
            {
                flags &= ~FAULT_FLAG_UNSHARE;
            }
        }
        else if ((flags & FAULT_FLAG_WRITE) != 0)
        {
            if (WarnOnOnce((vma.VmFlags & VmFlags.VM_MAYWRITE) == 0, $"write fault on {vma} without VM_MAYWRITE"))
            {
                return VM_FAULT_SIGSEGV;
            }
            if (WarnOnOnce((vma.VmFlags & VmFlags.VM_WRITE) == 0 && !MmFlags.IsCowMapping(vma.VmFlags),
                    $"forced write fault on shared {vma}"))
            {
                return VM_FAULT_SIGSEGV;
            }
        }
        if (WarnOnOnce((flags & (FAULT_FLAG_VMA_LOCK | FAULT_FLAG_RETRY_NOWAIT)) == (FAULT_FLAG_VMA_LOCK | FAULT_FLAG_RETRY_NOWAIT),
                "FAULT_FLAG_RETRY_NOWAIT under the VMA lock"))
        {
            return VM_FAULT_SIGSEGV;
        }
        return VmFault.None;
    }

    /// <summary>
    /// thp_vma_allowable_order() for the fault path. Anonymous THP is not modelled (this
    /// machine runs THP in "madvise" mode and the model keeps anon folios order-0); VMAs
    /// whose driver has ->huge_fault get huge leaves when the range is suitably aligned.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock held.</remarks>
    [KernelSymbol("thp_vma_allowable_order", "include/linux/huge_mm.h")]
    private bool ThpVmaAllowableOrder(VmAreaStruct vma, ulong address, int shift)
    {
        if ((vma.VmFlags & VmFlags.VM_NOHUGEPAGE) != 0 || vma.IsAnonymous || vma.VmOps?.HugeFault is null)
        {
            return false;
        }
        return ThpVmaSuitableOrder(vma, address, shift);
    }

    /// <summary>thp_vma_suitable_order(): the huge page fits in the VMA and its file offset is aligned.</summary>
    /// <remarks>Context: the VMA stable (mmap_lock or VMA read lock held); reads only its bounds and
    /// offset.</remarks>
    [KernelSymbol("thp_vma_suitable_order", "include/linux/huge_mm.h")]
    public static bool ThpVmaSuitableOrder(VmAreaStruct vma, ulong address, int shift)
    {
        ulong size = 1UL << shift;
        ulong haddr = address & ~(size - 1);
        ulong pages = size >> PAGE_SHIFT;
        if (!vma.IsAnonymous && (((vma.VmStart >> PAGE_SHIFT) - vma.VmPgoff) & (pages - 1)) != 0)
        {
            return false;
        }
        return haddr >= vma.VmStart && haddr + size <= vma.VmEnd;
    }

    /// <summary>__handle_mm_fault(): walks (allocating) to the PMD, tries huge leaves, then the PTE.</summary>
    /// <remarks>Context: mmap_lock read-held, or the VMA read-locked (FAULT_FLAG_VMA_LOCK); no page-table lock.</remarks>
    [KernelSymbol("__handle_mm_fault", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> __HandleMmFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var flags = vmf.Flags;
        ulong address = vmf.RealAddress;
        var mm = vma.VmMm;
        var pgd = PgdOffset(mm, address);
        if (await P4dAlloc(mm, pgd, address) is not { } p4d)
        {
            return VM_FAULT_OOM;
        }
        if (await PudAlloc(mm, p4d, address) is not { } pud)
        {
            return VM_FAULT_OOM;
        }
        vmf.Pud = pud;
        VmFault ret;
        if (!Paging.PmdFolded)
        {
            var pudv = PudpGet(pud);
            if (PudNone(pudv) && ThpVmaAllowableOrder(vma, address, Paging.PudShift))
            {
                ret = await CreateHugePud(vmf);
                if ((ret & VM_FAULT_FALLBACK) == 0)
                {
                    return ret;
                }
            }
            else if (PudLeaf(pudv))
            {
                if ((flags & FAULT_FLAG_WRITE) != 0 && !PgTable.PudWrite(pudv))
                {
                    ret = await WpHugePud(vmf, pudv);
                    if ((ret & VM_FAULT_FALLBACK) == 0)
                    {
                        return ret;
                    }
                }
                else
                {
                    return VmFault.None;
                }
            }
        }
        if (await PmdAlloc(mm, pud, address) is not { } pmd)
        {
            return VM_FAULT_OOM;
        }
        vmf.Pmd = pmd;
        if (PmdNone(PmdpGet(pmd)) && ThpVmaAllowableOrder(vma, address, Paging.PmdShift))
        {
            ret = await CreateHugePmd(vmf);
            if ((ret & VM_FAULT_FALLBACK) == 0)
            {
                return ret;
            }
        }
        else
        {
            vmf.OrigPmd = await PmdpGetLockless(pmd, "__handle_mm_fault");
            if (PgTable.PmdLeaf(vmf.OrigPmd))
            {
                if ((flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) != 0 && !PgTable.PmdWrite(vmf.OrigPmd))
                {
                    ret = await WpHugePmd(vmf);
                    if ((ret & VM_FAULT_FALLBACK) == 0)
                    {
                        return ret;
                    }
                }
                else
                {
                    return VmFault.None;
                }
            }
        }
        return await HandlePteFault(vmf);
    }

    /// <summary>create_huge_pmd(): only ->huge_fault in the model (anonymous THP is not modelled).</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; the PMD lock is taken by the handler.</remarks>
    [KernelSymbol("create_huge_pmd", "mm/memory.c")]
    private async ValueTask<VmFault> CreateHugePmd(VmFaultInfo vmf) =>
        vmf.Vma.VmOps?.HugeFault is { } hf ? await hf(vmf, Paging.PmdShift - PAGE_SHIFT) : VM_FAULT_FALLBACK;

    /// <summary>create_huge_pud().</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; the PUD lock is taken by the handler.</remarks>
    [KernelSymbol("create_huge_pud", "mm/memory.c")]
    private async ValueTask<VmFault> CreateHugePud(VmFaultInfo vmf) =>
        vmf.Vma.VmOps?.HugeFault is { } hf ? await hf(vmf, Paging.PudShift - PAGE_SHIFT) : VM_FAULT_FALLBACK;

    /// <summary>wp_huge_pmd(): a write to a read-only huge PFN map goes back to the driver, which
    /// may split (VM_FAULT_FALLBACK) — the kernel then splits the PMD.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; PMD lock not held.</remarks>
    [KernelSymbol("wp_huge_pmd", "mm/memory.c")]
    private async ValueTask<VmFault> WpHugePmd(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        if ((vma.VmFlags & (VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE)) != 0 && vma.VmOps?.HugeFault is { } hf)
        {
            var ret = await hf(vmf, Paging.PmdShift - PAGE_SHIFT);
            if ((ret & VM_FAULT_FALLBACK) == 0)
            {
                return ret;
            }
        }
        await __SplitHugePmd(vma, vmf.Pmd, vmf.Address);
        return VM_FAULT_FALLBACK;
    }

    /// <summary>wp_huge_pud().</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; PUD lock not held.</remarks>
    [KernelSymbol("wp_huge_pud", "mm/memory.c")]
    private async ValueTask<VmFault> WpHugePud(VmFaultInfo vmf, Pud orig)
    {
        var vma = vmf.Vma;
        if ((vma.VmFlags & (VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE)) != 0 && vma.VmOps?.HugeFault is { } hf)
        {
            var ret = await hf(vmf, Paging.PudShift - PAGE_SHIFT);
            if ((ret & VM_FAULT_FALLBACK) == 0)
            {
                return ret;
            }
        }
        await __SplitHugePud(vma, vmf.Pud, vmf.Address);
        return VM_FAULT_FALLBACK;
    }

    /// <summary>
    /// handle_pte_fault(): reads the PTE without its lock, dispatches on what it saw, and for a
    /// present PTE re-checks it under the PTL before touching it.
    /// </summary>
    /// <remarks>Context: mmap read lock or VMA lock; returns with PTL released.</remarks>
    [KernelSymbol("handle_pte_fault", "mm/memory.c")]
    private ValueTask<VmFault> HandlePteFault(VmFaultInfo vmf)
    {
        // The steps up to the dispatch run without an async frame of their own when the lockless
        // read's scheduling point lets the task go on; otherwise they resume after it.
        if (PmdNone(PmdpGet(vmf.Pmd)))
        {
            vmf.Pte = null;
            vmf.Flags &= ~FAULT_FLAG_ORIG_PTE_VALID;
        }
        else
        {
            var pte = PteOffsetMap(vmf.Pmd, vmf.Address);
            if (pte is not { } p)
            {
                return new ValueTask<VmFault>(VmFault.None);
            }
            vmf.Pte = p;
            vmf.Ptl = PteLockptr(vmf.Vma.VmMm, p.Table);
            var read = PtepGetLockless(p, "handle_pte_fault");
            if (!read.IsCompletedSuccessfully)
            {
                return HandlePteFaultAfterRead(vmf, read);
            }
            HandlePteFaultSaw(vmf, read.Result);
        }
        return HandlePteFaultDispatch(vmf);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> HandlePteFaultAfterRead(VmFaultInfo vmf, ValueTask<Pte> read)
    {
        HandlePteFaultSaw(vmf, await read);
        return await HandlePteFaultDispatch(vmf);
    }

    /// <summary>handle_pte_fault(): what the lockless read saw (a none PTE means no PTE).</summary>
    private static void HandlePteFaultSaw(VmFaultInfo vmf, Pte orig)
    {
        vmf.OrigPte = orig;
        vmf.Flags |= FAULT_FLAG_ORIG_PTE_VALID;
        if (PteNone(orig))
        {
            vmf.Pte = null;
        }
    }

    /// <summary>handle_pte_fault(): the dispatch on what the lockless read saw.</summary>
    private ValueTask<VmFault> HandlePteFaultDispatch(VmFaultInfo vmf)
    {
        if (vmf.Pte is not { } ptep)
        {
            return DoPteMissing(vmf);
        }
        if (!PtePresent(vmf.OrigPte))
        {
            return DoSwapPage(vmf);
        }
        if (PteProtnone(vmf.OrigPte) && vmf.Vma.IsAccessible)
        {
            // NUMA hinting faults need change_prot_numa(), which the single-node model never runs.
            Bug($"NUMA hinting PTE at {vmf.Address:x} in {vmf.Vma}");
        }
        return HandlePteFaultPresent(vmf, ptep);
    }

    /// <summary>handle_pte_fault() for a present PTE: re-check it under the PTL, then a write
    /// fault on a read-only PTE goes to do_wp_page(), anything else just updates A/D.</summary>
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> HandlePteFaultPresent(VmFaultInfo vmf, PtPtr ptep)
    {
        var vma = vmf.Vma;
        var ptl = vmf.Ptl!;
        await ptl.Lock("handle_pte_fault");
        var entry = vmf.OrigPte;
        if (!PteSame(PtepGet(ptep), entry))
        {
            // update_mmu_tlb(): nothing to do on x86.
            await ptl.Unlock("handle_pte_fault");
            return VmFault.None;
        }
        if ((vmf.Flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) != 0)
        {
            if (!PteWrite(entry))
            {
                return await DoWpPage(vmf);
            }
            if ((vmf.Flags & FAULT_FLAG_WRITE) != 0)
            {
                entry = PteMkdirty(entry);
            }
        }
        entry = PteMkyoung(entry);
        // ptep_set_access_flags(); on x86 a spurious fault needs no flush (the #PF dropped the entry).
        PtepSetAccessFlags(vma, vmf.Address, ptep, entry, (vmf.Flags & FAULT_FLAG_WRITE) != 0);
        await ptl.Unlock("handle_pte_fault");
        return VmFault.None;
    }

    /// <summary>do_pte_missing(): an empty PTE: do_anonymous_page() or do_fault().</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no page-table lock held.</remarks>
    [KernelSymbol("do_pte_missing", "mm/memory.c")]
    private ValueTask<VmFault> DoPteMissing(VmFaultInfo vmf) =>
        vmf.Vma.IsAnonymous ? DoAnonymousPage(vmf) : DoFault(vmf);

    /// <summary>vmf_pte_changed(): did the PTE change since the fault read it?</summary>
    /// <remarks>Context: the PTL of vmf-&gt;pte held.</remarks>
    [KernelSymbol("vmf_pte_changed", "mm/memory.c")]
    private bool VmfPteChanged(VmFaultInfo vmf)
    {
        var cur = PtepGet(vmf.Pte!.Value);
        return (vmf.Flags & FAULT_FLAG_ORIG_PTE_VALID) != 0 ? !PteSame(cur, vmf.OrigPte) : !PteNone(cur);
    }

    /// <summary>
    /// do_anonymous_page(): a read maps the shared zero page read-only; a write allocates a
    /// zeroed, exclusive anonymous folio.
    /// </summary>
    /// <remarks>Context: mmap read lock or VMA lock; PTE unmapped and unlocked on return.</remarks>
    [KernelSymbol("do_anonymous_page", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> DoAnonymousPage(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var mm = vma.VmMm;
        ulong addr = vmf.Address;
        if ((vma.VmFlags & VmFlags.VM_SHARED) != 0)
        {
            return VM_FAULT_SIGBUS;
        }
        if (await PteAlloc(mm, vmf.Pmd, addr))
        {
            return VM_FAULT_OOM;
        }
        Pte entry;
        VmFault ret = VmFault.None;
        if ((vmf.Flags & FAULT_FLAG_WRITE) == 0)
        {
            entry = PteMkspecial(PfnPte(MyZeroPfn(addr), vma.VmPageProt));
            if (await PteOffsetMapLock(mm, vmf.Pmd, addr) is not { } z)
            {
                return VmFault.None;
            }
            (vmf.Pte, vmf.Ptl) = (z.Pte, z.Ptl);
            if (VmfPteChanged(vmf))
            {
                await z.Ptl.Unlock();
                return VmFault.None;
            }
            ret = CheckStableAddressSpace(mm);
            if (ret == 0)
            {
                SetPtes(mm, addr, z.Pte, entry, 1);
            }
            await z.Ptl.Unlock();
            return ret;
        }

        ret = await VmfAnonPrepare(vmf);
        if (ret != 0)
        {
            return ret;
        }
        if (VmaAllocFolio(vma, addr, zero: true) is not { } folio)
        {
            return VM_FAULT_OOM;
        }
        FolioMarkUptodate(folio);
        entry = MkPte(folio.Page, vma.VmPageProt);
        if ((vma.VmFlags & VmFlags.VM_WRITE) != 0)
        {
            entry = PteMkwriteNovma(PteMkdirty(entry));
        }
        if (await PteOffsetMapLock(mm, vmf.Pmd, addr) is not { } l)
        {
            FolioPut(folio);
            return VmFault.None;
        }
        (vmf.Pte, vmf.Ptl) = (l.Pte, l.Ptl);
        if (VmfPteChanged(vmf))
        {
            await l.Ptl.Unlock();
            FolioPut(folio);
            return VmFault.None;
        }
        ret = CheckStableAddressSpace(mm);
        if (ret != 0)
        {
            await l.Ptl.Unlock();
            FolioPut(folio);
            return ret;
        }
        AddMmCounter(mm, MmCounter.MM_ANONPAGES, 1);
        FolioAddNewAnonRmap(folio, vma, addr, RmapFlags.RMAP_EXCLUSIVE);
        FolioSet(folio, PageFlags.PG_lru);
        SetPtes(mm, addr, l.Pte, entry, 1);
        await l.Ptl.Unlock();
        return VmFault.None;
    }

    /// <summary>
    /// vmf_anon_prepare(): an anon_vma for the VMA. Under only the VMA lock it must take the mmap
    /// lock (trylock) because __anon_vma_prepare() looks at neighbouring VMAs; failing that it
    /// drops the VMA lock and asks for a retry under the mmap lock.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no page-table lock held; may sleep.</remarks>
    [KernelSymbol("vmf_anon_prepare", "mm/internal.h")]
    private ValueTask<VmFault> VmfAnonPrepare(VmFaultInfo vmf) =>
        vmf.Vma.AnonVma is not null ? new ValueTask<VmFault>(VmFault.None) : VmfAnonPrepareSlow(vmf);

    private async ValueTask<VmFault> VmfAnonPrepareSlow(VmFaultInfo vmf)
    {
        var ret = await __VmfAnonPrepare(vmf);
        if ((ret & VM_FAULT_RETRY) != 0)
        {
            await vmf.Vma.VmLock.EndRead("vmf_anon_prepare");
        }
        return ret;
    }

    /// <remarks>Context: mmap_lock read-held, or only the VMA read lock, in which case the mmap lock is trylocked.</remarks>
    [KernelSymbol("__vmf_anon_prepare", "mm/memory.c")]
    private async ValueTask<VmFault> __VmfAnonPrepare(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        if (vma.AnonVma is not null)
        {
            return VmFault.None;
        }
        bool vmaLock = (vmf.Flags & FAULT_FLAG_VMA_LOCK) != 0;
        if (vmaLock && !await MmapReadTrylock(vma.VmMm))
        {
            return VM_FAULT_RETRY;
        }
        var ret = await __AnonVmaPrepare(vma) != 0 ? VM_FAULT_OOM : VmFault.None;
        if (vmaLock)
        {
            await MmapReadUnlock(vma.VmMm);
        }
        return ret;
    }

    /// <summary>
    /// vmf_can_call_fault(): ->fault may need the mmap lock unless the VMA has ->map_pages;
    /// under only the VMA lock, drop it and retry.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock; with only the VMA lock it is dropped before VM_FAULT_RETRY.</remarks>
    [KernelSymbol("vmf_can_call_fault", "mm/memory.c")]
    private async ValueTask<VmFault> VmfCanCallFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        if (vma.VmOps?.MapPages is not null || (vmf.Flags & FAULT_FLAG_VMA_LOCK) == 0)
        {
            return VmFault.None;
        }
        await vma.VmLock.EndRead("vmf_can_call_fault");
        return VM_FAULT_RETRY;
    }

    /// <summary>do_fault(): file-backed (or driver) VMAs: read, COW or shared fault.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no PTL held.</remarks>
    [KernelSymbol("do_fault", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> DoFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var mm = vma.VmMm;
        VmFault ret;
        if (vma.VmOps?.Fault is null)
        {
            // The VMA was not fully populated at mmap, or is missing VM_DONTEXPAND.
            if (await PteOffsetMapLock(mm, vmf.Pmd, vmf.Address) is not { } l)
            {
                ret = VM_FAULT_SIGBUS;
            }
            else
            {
                ret = PteNone(PtepGet(l.Pte)) ? VM_FAULT_SIGBUS : VM_FAULT_NOPAGE;
                await l.Ptl.Unlock();
            }
        }
        else if ((vmf.Flags & FAULT_FLAG_WRITE) == 0)
        {
            ret = await DoReadFault(vmf);
        }
        else if ((vma.VmFlags & VmFlags.VM_SHARED) == 0)
        {
            ret = await DoCowFault(vmf);
        }
        else
        {
            ret = await DoSharedFault(vmf);
        }
        if (vmf.PreallocPte is { } pre)
        {
            FreePageTable((PageTable)Handles.Get(MemMap.Mapping(pre))!);
            vmf.PreallocPte = null;
        }
        return ret;
    }

    /// <summary>should_fault_around().</summary>
    /// <remarks>Context: mmap_lock or VMA read lock held.</remarks>
    [KernelSymbol("should_fault_around", "mm/memory.c")]
    private bool ShouldFaultAround(VmFaultInfo vmf) =>
        vmf.Vma.VmOps?.MapPages is not null && (Config.FaultAroundBytes >> PAGE_SHIFT) > 1;

    /// <summary>
    /// do_fault_around(): maps the page-cache pages already present around the fault, within the
    /// VMA and one page table, naturally aligned to fault_around_bytes.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock; ->map_pages takes the PTL itself.</remarks>
    [KernelSymbol("do_fault_around", "mm/memory.c")]
    private async ValueTask<VmFault> DoFaultAround(VmFaultInfo vmf)
    {
        ulong nrPages = Config.FaultAroundBytes >> PAGE_SHIFT;
        ulong pteOff = (ulong)Paging.PteIndex(vmf.Address);
        ulong vmaOff = vmf.Pgoff - vmf.Vma.VmPgoff;
        ulong fromPte = Math.Max(pteOff & ~(nrPages - 1), pteOff - Math.Min(pteOff, vmaOff));
        ulong toPte = Math.Min(Math.Min(fromPte + nrPages, (ulong)Paging.PtrsPerPte), pteOff + vmf.Vma.Pages - vmaOff) - 1;
        if (PmdNone(PmdpGet(vmf.Pmd)))
        {
            if (PteAllocOne(vmf.Vma.VmMm) is not { } pre)
            {
                return VM_FAULT_OOM;
            }
            vmf.PreallocPte = pre.Pfn;
        }
        return await vmf.Vma.VmOps!.MapPages!(vmf, vmf.Pgoff + fromPte - pteOff, vmf.Pgoff + toPte - pteOff);
    }

    /// <summary>do_read_fault(): fault-around first, then ->fault and finish_fault().</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no PTL held.</remarks>
    [KernelSymbol("do_read_fault", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> DoReadFault(VmFaultInfo vmf)
    {
        VmFault ret;
        if (ShouldFaultAround(vmf))
        {
            ret = await DoFaultAround(vmf);
            if (ret != 0)
            {
                return ret;
            }
        }
        ret = await VmfCanCallFault(vmf);
        if (ret != 0)
        {
            return ret;
        }
        ret = await __DoFault(vmf);
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0)
        {
            return ret;
        }
        ret |= await FinishFault(vmf);
        var folio = new Folio(vmf.Page!.Value.Pfn);
        await FolioUnlock(folio, "do_read_fault");
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0)
        {
            FolioPut(folio);
        }
        return ret;
    }

    /// <summary>do_cow_fault(): a write to a private file mapping copies the page into a new anon folio.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no PTL held.</remarks>
    [KernelSymbol("do_cow_fault", "mm/memory.c")]
    private async ValueTask<VmFault> DoCowFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var ret = await VmfCanCallFault(vmf);
        if (ret == 0)
        {
            ret = await VmfAnonPrepare(vmf);
        }
        if (ret != 0)
        {
            return ret;
        }
        if (VmaAllocFolio(vma, vmf.Address, zero: false) is not { } folio)
        {
            return VM_FAULT_OOM;
        }
        vmf.CowPage = folio.Page;
        ret = await __DoFault(vmf);
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0)
        {
            FolioPut(folio);
            return ret;
        }
        if ((ret & VM_FAULT_DONE_COW) != 0)
        {
            return ret;
        }
        CopyUserHighpage(vmf.CowPage.Value, vmf.Page!.Value);
        FolioMarkUptodate(folio);
        ret |= await FinishFault(vmf);
        var page = new Folio(vmf.Page!.Value.Pfn);
        await FolioUnlock(page, "do_cow_fault");
        FolioPut(page);
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0)
        {
            FolioPut(folio);
        }
        return ret;
    }

    /// <summary>do_shared_fault(): ->fault, ->page_mkwrite if any, then map writable and dirty.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no PTL held.</remarks>
    [KernelSymbol("do_shared_fault", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> DoSharedFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var ret = await VmfCanCallFault(vmf);
        if (ret != 0)
        {
            return ret;
        }
        ret = await __DoFault(vmf);
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0)
        {
            return ret;
        }
        var folio = new Folio(vmf.Page!.Value.Pfn);
        if (vma.VmOps?.PageMkwrite is not null)
        {
            await FolioUnlock(folio, "do_shared_fault");
            var tmp = await DoPageMkwrite(vmf, folio);
            if (tmp == 0 || (tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0)
            {
                FolioPut(folio);
                return tmp;
            }
        }
        ret |= await FinishFault(vmf);
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0)
        {
            await FolioUnlock(folio, "do_shared_fault");
            FolioPut(folio);
            return ret;
        }
        ret |= await FaultDirtySharedPage(vmf, folio);
        return ret;
    }

    /// <summary>
    /// __do_fault(): preallocates a PTE table if the PMD is empty (so no allocation happens under
    /// the folio lock), calls ->fault, and returns with the folio locked.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no PTL held. Returns with the folio locked unless the result is an error, NOPAGE or RETRY.</remarks>
    [KernelSymbol("__do_fault", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> __DoFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        if (PmdNone(PmdpGet(vmf.Pmd)) && vmf.PreallocPte is null)
        {
            if (PteAllocOne(vma.VmMm) is not { } pre)
            {
                return VM_FAULT_OOM;
            }
            vmf.PreallocPte = pre.Pfn;
        }
        var ret = await vma.VmOps!.Fault!(vmf);
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY | VM_FAULT_DONE_COW)) != 0)
        {
            return ret;
        }
        var folio = new Folio(vmf.Page!.Value.Pfn);
        if ((ret & VM_FAULT_LOCKED) == 0)
        {
            await FolioLock(folio, "__do_fault");
        }
        else
        {
            VmBugOn(!FolioTestLocked(folio), $"->fault returned VM_FAULT_LOCKED with pfn {folio.Pfn:x} unlocked");
        }
        return ret;
    }

    /// <summary>
    /// finish_fault(): installs the PTE for the page ->fault (or the COW copy) produced, after
    /// re-checking under the PTL that nobody faulted it in meanwhile. Consumes one reference.
    /// </summary>
    /// <remarks>Context: folio locked; takes and releases the PTL.</remarks>
    [KernelSymbol("finish_fault", "mm/memory.c")]
    public async ValueTask<VmFault> FinishFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var mm = vma.VmMm;
        bool isCow = (vmf.Flags & FAULT_FLAG_WRITE) != 0 && (vma.VmFlags & VmFlags.VM_SHARED) == 0;
        var page = isCow ? vmf.CowPage!.Value : vmf.Page!.Value;
        var folio = new Folio(page.Pfn);
        ulong addr = vmf.Address;
        VmFault ret;
        if ((vma.VmFlags & VmFlags.VM_SHARED) == 0)
        {
            ret = CheckStableAddressSpace(mm);
            if (ret != 0)
            {
                return ret;
            }
        }
        if (PmdNone(PmdpGet(vmf.Pmd)))
        {
            if (vmf.PreallocPte is { } pre)
            {
                var table = (PageTable)Handles.Get(MemMap.Mapping(pre))!;
                if (await PmdInstall(mm, vmf.Pmd, table, addr))
                {
                    vmf.PreallocPte = null;
                }
            }
            else if (await PteAlloc(mm, vmf.Pmd, addr))
            {
                return VM_FAULT_OOM;
            }
        }
        if (await PteOffsetMapLock(mm, vmf.Pmd, addr) is not { } l)
        {
            return VM_FAULT_NOPAGE;
        }
        (vmf.Pte, vmf.Ptl) = (l.Pte, l.Ptl);
        if (VmfPteChanged(vmf))
        {
            ret = VM_FAULT_NOPAGE;
        }
        else
        {
            SetPteRange(vmf, folio, page, 1, addr);
            AddMmCounter(mm, isCow ? MmCounter.MM_ANONPAGES : MmCounterFile(folio), 1);
            ret = VmFault.None;
        }
        await l.Ptl.Unlock("finish_fault");
        return ret;
    }

    /// <summary>set_pte_range(): PTEs for consecutive pages of a folio, with their rmap.</summary>
    /// <remarks>Context: the PTL held; the folio locked, or new and not yet visible (a COW copy). Does not
    /// sleep.</remarks>
    [KernelSymbol("set_pte_range", "mm/memory.c")]
    public void SetPteRange(VmFaultInfo vmf, Folio folio, Page page, int nr, ulong addr)
    {
        var vma = vmf.Vma;
        bool write = (vmf.Flags & FAULT_FLAG_WRITE) != 0;
        bool prefault = vmf.Address < addr || vmf.Address >= addr + (ulong)nr * PAGE_SIZE;
        var entry = MkPte(page, vma.VmPageProt);
        // x86 does not want old prefaulted PTEs (arch_wants_old_prefaulted_pte() is false).
        _ = prefault;
        if (write)
        {
            entry = MaybeMkwrite(PteMkdirty(entry), vma);
        }
        else if (PteWrite(entry) && FolioTestDirty(folio))
        {
            entry = PteMkdirty(entry);
        }
        if (write && (vma.VmFlags & VmFlags.VM_SHARED) == 0)
        {
            VmBugOn(nr != 1, "a COW copy is a single page");
            FolioAddNewAnonRmap(folio, vma, addr, RmapFlags.RMAP_EXCLUSIVE);
            FolioSet(folio, PageFlags.PG_lru);
        }
        else
        {
            FolioAddFileRmapPtes(folio, page, nr, vma);
        }
        SetPtes(vma.VmMm, addr, vmf.Pte!.Value, entry, nr);
    }

    /// <summary>do_page_mkwrite(): lets the backing store know a page is about to become writable.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; PTL not held; the folio is locked on a successful return.</remarks>
    [KernelSymbol("do_page_mkwrite", "mm/memory.c")]
    private async ValueTask<VmFault> DoPageMkwrite(VmFaultInfo vmf, Folio folio)
    {
        var oldFlags = vmf.Flags;
        vmf.Flags = FAULT_FLAG_WRITE | FAULT_FLAG_MKWRITE;
        var ret = await vmf.Vma.VmOps!.PageMkwrite!(vmf);
        vmf.Flags = oldFlags;
        if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0)
        {
            return ret;
        }
        if ((ret & VM_FAULT_LOCKED) == 0)
        {
            await FolioLock(folio, "do_page_mkwrite");
            if (FolioMappingObject(folio) is null)
            {
                await FolioUnlock(folio, "do_page_mkwrite");
                return VM_FAULT_NOPAGE;
            }
            ret |= VM_FAULT_LOCKED;
        }
        return ret;
    }

    /// <summary>fault_dirty_shared_page(): the written page is dirty; releases the folio lock.</summary>
    /// <remarks>Context: folio locked on entry; unlocked on return.</remarks>
    [KernelSymbol("fault_dirty_shared_page", "mm/memory.c")]
    private async ValueTask<VmFault> FaultDirtySharedPage(VmFaultInfo vmf, Folio folio)
    {
        FolioMarkDirty(folio);
        await FolioUnlock(folio, "fault_dirty_shared_page");
        return VmFault.None;
    }

    // ---- write-protect faults ----

    /// <summary>
    /// do_wp_page(): a write to a present read-only PTE. Shared mappings are made writable (after
    /// ->pfn_mkwrite/->page_mkwrite); private anon pages are reused when exclusive, otherwise copied.
    /// </summary>
    /// <remarks>Context: entered with the PTL held; returns with it released.</remarks>
    [KernelSymbol("do_wp_page", "mm/memory.c")]
    private async ValueTask<VmFault> DoWpPage(VmFaultInfo vmf)
    {
        bool unshare = (vmf.Flags & FAULT_FLAG_UNSHARE) != 0;
        var vma = vmf.Vma;
        if (!unshare && PteUffdWp(PtepGet(vmf.Pte!.Value)))
        {
            // No userfaultfd is registered in the model: clear the leftover bit as the async mode does.
            var pte = PteClearUffdWp(PtepGet(vmf.Pte.Value));
            SetPteAt(vma.VmMm, vmf.Address, vmf.Pte.Value, pte);
            vmf.OrigPte = pte;
        }
        vmf.Page = VmNormalPage(vma, vmf.Address, vmf.OrigPte);
        Folio? folio = vmf.Page is { } pg ? new Folio(pg.Pfn) : null;

        if ((vma.VmFlags & (VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE)) != 0)
        {
            if (vmf.Page is null)
            {
                return await WpPfnShared(vmf);
            }
            return await WpPageShared(vmf, folio!.Value);
        }

        if (folio is { } f && FolioTestAnon(f))
        {
            bool reuse = Variants.DoWpPageReuse == Variants.WpReuseRule.AnonExclusive
                ? PageAnonExclusive(vmf.Page!.Value) || await WpCanReuseAnonFolio(f, vma)
                : await WpCanReuseByRefcount(f);
            if (reuse)
            {
                if (Variants.DoWpPageReuse == Variants.WpReuseRule.AnonExclusive && !PageAnonExclusive(vmf.Page!.Value))
                {
                    SetPageAnonExclusive(vmf.Page!.Value);
                }
                if (unshare)
                {
                    await vmf.Ptl!.Unlock("do_wp_page");
                    return VmFault.None;
                }
                await WpPageReuse(vmf, f);
                return VmFault.None;
            }
        }
        if (folio is { } g)
        {
            FolioGet(g);
        }
        await vmf.Ptl!.Unlock("do_wp_page");
        return await WpPageCopy(vmf);
    }

    /// <summary>
    /// wp_can_reuse_anon_folio(): without PageAnonExclusive, reuse only if ours is the only
    /// reference, checked again under the folio lock; the folio then moves to this VMA's anon_vma.
    /// </summary>
    /// <remarks>Context: PTL held (only trylocks the folio).</remarks>
    [KernelSymbol("wp_can_reuse_anon_folio", "mm/memory.c")]
    private async ValueTask<bool> WpCanReuseAnonFolio(Folio folio, VmAreaStruct vma)
    {
        if (FolioRefCount(folio) > 3)
        {
            return false;
        }
        // The kernel drains this CPU's LRU batches only for a folio without PG_lru. The model's new
        // folios are on the LRU at once (no lru_add batch), and a folio on the lazyfree batch keeps
        // PG_lru until the batch moves, so that drain never applies here.
        int swapcache = FolioTestSwapcache(folio) ? 1 : 0;
        if (FolioRefCount(folio) > 1 + swapcache)
        {
            return false;
        }
        if (!await FolioTrylock(folio, "wp_can_reuse_anon_folio"))
        {
            return false;
        }
        if (FolioRefCount(folio) != 1)
        {
            await FolioUnlock(folio, "wp_can_reuse_anon_folio");
            return false;
        }
        FolioMoveAnonRmap(folio, vma);
        await FolioUnlock(folio, "wp_can_reuse_anon_folio");
        return true;
    }

    /// <summary>
    /// The reuse test of do_wp_page() in v5.9–v5.18 (09854ba94c6a): the page count alone, then
    /// mapcount and count again under the page lock. Variant do_wp_page.reuse=refcount.
    /// </summary>
    private async ValueTask<bool> WpCanReuseByRefcount(Folio folio)
    {
        if (FolioRefCount(folio) != 1)
        {
            return false;
        }
        if (!await FolioTrylock(folio, "do_wp_page"))
        {
            return false;
        }
        bool ok = FolioMapcount(folio) == 1 && FolioRefCount(folio) == 1;
        await FolioUnlock(folio, "do_wp_page");
        return ok;
    }

    /// <summary>wp_page_reuse(): make the existing PTE writable and dirty; releases the PTL.</summary>
    /// <remarks>Context: PTL held on entry; released on return.</remarks>
    [KernelSymbol("wp_page_reuse", "mm/memory.c")]
    private async ValueTask WpPageReuse(VmFaultInfo vmf, Folio? folio)
    {
        var vma = vmf.Vma;
        VmBugOn((vmf.Flags & FAULT_FLAG_WRITE) == 0, "wp_page_reuse without a write fault");
        if (folio is { } f && Variants.DoWpPageReuse == Variants.WpReuseRule.AnonExclusive)
        {
            VmBugOn(FolioTestAnon(f) && !PageAnonExclusive(vmf.Page!.Value),
                $"reusing anon pfn {f.Pfn:x} that is not PageAnonExclusive");
        }
        var entry = PteMkyoung(vmf.OrigPte);
        entry = MaybeMkwrite(PteMkdirty(entry), vma);
        PtepSetAccessFlags(vma, vmf.Address, vmf.Pte!.Value, entry, dirty: true);
        await vmf.Ptl!.Unlock("wp_page_reuse");
        CountVmEvent(VmEventItem.PGREUSE);
    }

    /// <summary>
    /// wp_page_copy(): copy the page (or zero-fill for the zero page) into a new exclusive anon
    /// folio and switch the PTE under the PTL if it did not change; the old page loses its
    /// mapping only after the PTE points to the new one.
    /// </summary>
    /// <remarks>Context: PTL not held; the old folio carries a reference taken by the caller.</remarks>
    [KernelSymbol("wp_page_copy", "mm/memory.c")]
    private async ValueTask<VmFault> WpPageCopy(VmFaultInfo vmf)
    {
        bool unshare = (vmf.Flags & FAULT_FLAG_UNSHARE) != 0;
        var vma = vmf.Vma;
        var mm = vma.VmMm;
        Folio? oldFolio = vmf.Page is { } pg ? new Folio(pg.Pfn) : null;
        var ret = await VmfAnonPrepare(vmf);
        if (ret != 0)
        {
            if (oldFolio is { } of)
            {
                FolioPut(of);
            }
            return ret;
        }
        bool pfnIsZero = IsZeroPfn(PtePfn(vmf.OrigPte));
        if (VmaAllocFolio(vma, vmf.Address, zero: pfnIsZero) is not { } newFolio)
        {
            if (oldFolio is { } of)
            {
                FolioPut(of);
            }
            return VM_FAULT_OOM;
        }
        if (!pfnIsZero)
        {
            // __wp_page_copy_user(): copy from the old page (or, without one, from user memory).
            if (vmf.Page is { } src)
            {
                CopyUserHighpage(newFolio.Page, src);
            }
            else
            {
                CopyUserHighpage(newFolio.Page, new Page(PtePfn(vmf.OrigPte)));
            }
        }
        FolioMarkUptodate(newFolio);
        await MmuNotifierInvalidateRangeStart(mm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, vmf.Address, vmf.Address + PAGE_SIZE);

        Folio? toPut = newFolio;
        bool copied = false;
        var l = await PteOffsetMapLock(mm, vmf.Pmd, vmf.Address);
        if (l is { } lk && PteSame(PtepGet(lk.Pte), vmf.OrigPte))
        {
            (vmf.Pte, vmf.Ptl) = (lk.Pte, lk.Ptl);
            if (oldFolio is { } of)
            {
                if (!FolioTestAnon(of))
                {
                    DecMmCounter(mm, MmCounterFile(of));
                    IncMmCounter(mm, MmCounter.MM_ANONPAGES);
                }
            }
            else
            {
                IncMmCounter(mm, MmCounter.MM_ANONPAGES);
            }
            var entry = MkPte(newFolio.Page, vma.VmPageProt);
            if (unshare)
            {
                if (PteSoftDirty(vmf.OrigPte))
                {
                    entry = new Pte(entry.Val | X86Pte._PAGE_SOFT_DIRTY_BIT);
                }
                if (PteUffdWp(vmf.OrigPte))
                {
                    entry = PteMkuffdWp(entry);
                }
            }
            else
            {
                entry = MaybeMkwrite(PteMkdirty(entry), vma);
            }
            // Clear and flush first so no TLB holds the old PTE while another loads the new one.
            PtepClearFlush(vma, vmf.Address, lk.Pte);
            FolioAddNewAnonRmap(newFolio, vma, vmf.Address, RmapFlags.RMAP_EXCLUSIVE);
            FolioSet(newFolio, PageFlags.PG_lru);
            BugOn(unshare && PteWrite(entry), "unshare produced a writable PTE");
            SetPteAt(mm, vmf.Address, lk.Pte, entry);
            if (oldFolio is { } old)
            {
                FolioRemoveRmapPte(old, vmf.Page!.Value, vma);
            }
            toPut = oldFolio;
            copied = true;
            await lk.Ptl.Unlock("wp_page_copy");
        }
        else if (l is { } lk2)
        {
            await lk2.Ptl.Unlock("wp_page_copy");
        }
        await MmuNotifierInvalidateRangeEnd(mm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, vmf.Address, vmf.Address + PAGE_SIZE);
        if (toPut is { } tp)
        {
            FolioPut(tp);
        }
        if (oldFolio is { } o)
        {
            _ = copied;
            FolioPut(o);
        }
        CountVmEvent(VmEventItem.COW_FAULT);
        return VmFault.None;
    }

    /// <summary>finish_mkwrite_fault(): after ->pfn_mkwrite/->page_mkwrite, re-check and reuse.</summary>
    /// <remarks>Context: PTL not held; taken, and released by wp_page_reuse() or on a changed PTE.</remarks>
    [KernelSymbol("finish_mkwrite_fault", "mm/memory.c")]
    private async ValueTask<VmFault> FinishMkwriteFault(VmFaultInfo vmf, Folio? folio)
    {
        WarnOnOnce((vmf.Vma.VmFlags & VmFlags.VM_SHARED) == 0, "finish_mkwrite_fault on a private VMA");
        if (await PteOffsetMapLock(vmf.Vma.VmMm, vmf.Pmd, vmf.Address) is not { } l)
        {
            return VM_FAULT_NOPAGE;
        }
        (vmf.Pte, vmf.Ptl) = (l.Pte, l.Ptl);
        if (!PteSame(PtepGet(l.Pte), vmf.OrigPte))
        {
            await l.Ptl.Unlock("finish_mkwrite_fault");
            return VM_FAULT_NOPAGE;
        }
        await WpPageReuse(vmf, folio);
        return VmFault.None;
    }

    /// <summary>wp_pfn_shared(): a write to a read-only PFN in a shared mapping: ->pfn_mkwrite, then writable.</summary>
    /// <remarks>Context: PTL held on entry; released on return.</remarks>
    [KernelSymbol("wp_pfn_shared", "mm/memory.c")]
    private async ValueTask<VmFault> WpPfnShared(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        if (vma.VmOps?.PfnMkwrite is { } mkwrite)
        {
            await vmf.Ptl!.Unlock("wp_pfn_shared");
            var ret = await VmfCanCallFault(vmf);
            if (ret != 0)
            {
                return ret;
            }
            vmf.Flags |= FAULT_FLAG_MKWRITE;
            ret = await mkwrite(vmf);
            if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0)
            {
                return ret;
            }
            return await FinishMkwriteFault(vmf, null);
        }
        await WpPageReuse(vmf, null);
        return VmFault.None;
    }

    /// <summary>wp_page_shared(): a write to a read-only page in a shared mapping.</summary>
    /// <remarks>Context: PTL held on entry; released before ->page_mkwrite.</remarks>
    [KernelSymbol("wp_page_shared", "mm/memory.c")]
    private async ValueTask<VmFault> WpPageShared(VmFaultInfo vmf, Folio folio)
    {
        var vma = vmf.Vma;
        var ret = VmFault.None;
        FolioGet(folio);
        if (vma.VmOps?.PageMkwrite is not null)
        {
            await vmf.Ptl!.Unlock("wp_page_shared");
            var tmp = await VmfCanCallFault(vmf);
            if (tmp != 0)
            {
                FolioPut(folio);
                return tmp;
            }
            tmp = await DoPageMkwrite(vmf, folio);
            if (tmp == 0 || (tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0)
            {
                FolioPut(folio);
                return tmp;
            }
            tmp = await FinishMkwriteFault(vmf, folio);
            if ((tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0)
            {
                await FolioUnlock(folio, "wp_page_shared");
                FolioPut(folio);
                return tmp;
            }
        }
        else
        {
            await WpPageReuse(vmf, folio);
            await FolioLock(folio, "wp_page_shared");
        }
        ret |= await FaultDirtySharedPage(vmf, folio);
        FolioPut(folio);
        return ret;
    }

    // ---- non-present PTEs ----

    /// <summary>
    /// do_swap_page(): the dispatch on non-present entries. The model has no swap device, so a
    /// genuine swap entry or a migration entry cannot exist; markers, hwpoison and
    /// device-exclusive entries are handled as the kernel does.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no PTL held.</remarks>
    [KernelSymbol("do_swap_page", "mm/memory.c")]
    private async ValueTask<VmFault> DoSwapPage(VmFaultInfo vmf)
    {
        var entry = SwapOps.PteToSwpEntry(vmf.OrigPte);
        if (SwapOps.NonSwapEntry(entry))
        {
            if (SwapOps.IsDeviceExclusiveEntry(entry))
            {
                vmf.Page = new Page(SwapOps.SwpOffsetPfn(entry));
                return await RemoveDeviceExclusiveEntry(vmf);
            }
            if (SwapOps.IsHwpoisonEntry(entry))
            {
                return VM_FAULT_HWPOISON;
            }
            if (SwapOps.IsPteMarkerEntry(entry))
            {
                return await HandlePteMarker(vmf);
            }
        }
        PrintBadPte(vmf.Vma, vmf.Address, vmf.OrigPte, $"unexpected non-present entry {entry}");
        return VM_FAULT_SIGBUS;
    }

    /// <summary>handle_pte_marker(): poisoned → HWPOISON, guard → SIGSEGV, uffd-wp → treat as missing.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; no PTL held.</remarks>
    [KernelSymbol("handle_pte_marker", "mm/memory.c")]
    private async ValueTask<VmFault> HandlePteMarker(VmFaultInfo vmf)
    {
        ulong marker = SwapOps.PteMarkerGet(SwapOps.PteToSwpEntry(vmf.OrigPte));
        if (WarnOnOnce(marker == 0, "empty PTE marker"))
        {
            return VM_FAULT_SIGBUS;
        }
        if ((marker & SwapOps.PTE_MARKER_POISONED) != 0)
        {
            return VM_FAULT_HWPOISON;
        }
        if ((marker & SwapOps.PTE_MARKER_GUARD) != 0)
        {
            return VM_FAULT_SIGSEGV;
        }
        if ((marker & SwapOps.PTE_MARKER_UFFD_WP) != 0)
        {
            // pte_marker_handle_uffd_wp(): with no uffd-wp registration, just clear the marker.
            return await PteMarkerClear(vmf);
        }
        return VM_FAULT_SIGBUS;
    }

    /// <remarks>Context: mmap_lock or VMA read lock; takes and releases the PTL.</remarks>
    [KernelSymbol("pte_marker_clear", "mm/memory.c")]
    private async ValueTask<VmFault> PteMarkerClear(VmFaultInfo vmf)
    {
        if (await PteOffsetMapLock(vmf.Vma.VmMm, vmf.Pmd, vmf.Address) is not { } l)
        {
            return VmFault.None;
        }
        if (PteSame(vmf.OrigPte, PtepGet(l.Pte)))
        {
            PteClear(vmf.Vma.VmMm, vmf.Address, l.Pte);
        }
        await l.Ptl.Unlock("pte_marker_clear");
        return VmFault.None;
    }

    /// <summary>
    /// remove_device_exclusive_entry(): a CPU access ends a device's exclusive access: with the
    /// folio locked and the device told (MMU_NOTIFY_CLEAR), restore the original PTE.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock; takes the folio lock, then the PTL.</remarks>
    [KernelSymbol("remove_device_exclusive_entry", "mm/memory.c")]
    private async ValueTask<VmFault> RemoveDeviceExclusiveEntry(VmFaultInfo vmf)
    {
        var folio = new Folio(vmf.Page!.Value.Pfn);
        var vma = vmf.Vma;
        if (!FolioTryGet(folio))
        {
            return VmFault.None;
        }
        await FolioLock(folio, "remove_device_exclusive_entry");
        await MmuNotifierInvalidateRangeStart(vma.VmMm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, vmf.Address, vmf.Address + PAGE_SIZE);
        if (await PteOffsetMapLock(vma.VmMm, vmf.Pmd, vmf.Address) is { } l)
        {
            if (PteSame(PtepGet(l.Pte), vmf.OrigPte))
            {
                RestoreExclusivePte(vma, folio, vmf.Page!.Value, vmf.Address, l.Pte, vmf.OrigPte);
            }
            await l.Ptl.Unlock("remove_device_exclusive_entry");
        }
        await FolioUnlock(folio, "remove_device_exclusive_entry");
        FolioPut(folio);
        await MmuNotifierInvalidateRangeEnd(vma.VmMm, MmuNotifierEvent.MMU_NOTIFY_CLEAR, vmf.Address, vmf.Address + PAGE_SIZE);
        return VmFault.None;
    }

    /// <summary>
    /// restore_exclusive_pte(): the device-exclusive entry becomes a present PTE again: old, clean
    /// unless the folio is dirty, writable only if the VMA is and the page is exclusive.
    /// Context: folio locked, PTL held.
    /// </summary>
    [KernelSymbol("restore_exclusive_pte", "mm/memory.c")]
    public void RestoreExclusivePte(VmAreaStruct vma, Folio folio, Page page, ulong address, PtPtr ptep, Pte orig)
    {
        VmBugOn(!FolioTestLocked(folio), "restore_exclusive_pte: folio not locked");
        var pte = PteMkold(MkPte(page, vma.VmPageProt));
        if (SwapOps.PteSwpSoftDirty(orig))
        {
            pte = new Pte(pte.Val | X86Pte._PAGE_SOFT_DIRTY_BIT);
        }
        if (SwapOps.PteSwpUffdWp(orig))
        {
            pte = PteMkuffdWp(pte);
        }
        if ((vma.VmFlags & VmFlags.VM_WRITE) != 0 && CanChangePteWritable(vma, address, pte))
        {
            if (FolioTestDirty(folio))
            {
                pte = PteMkdirty(pte);
            }
            pte = PteMkwriteNovma(pte);
        }
        SetPteAt(vma.VmMm, address, ptep, pte);
    }

    /// <summary>
    /// can_change_pte_writable(): may a PTE be made writable without a write fault? Private: only
    /// exclusive anon pages; shared: only without write-notify (no dirty tracking wanted).
    /// </summary>
    /// <remarks>Context: the PTL held (change_pte_range(), restore_exclusive_pte()); does not sleep.</remarks>
    [KernelSymbol("can_change_pte_writable", "mm/mprotect.c")]
    public bool CanChangePteWritable(VmAreaStruct vma, ulong addr, Pte pte)
    {
        if (PteProtnone(pte))
        {
            return false;
        }
        if (PteUffdWp(pte))
        {
            return false;
        }
        if ((vma.VmFlags & VmFlags.VM_SHARED) == 0)
        {
            var page = VmNormalPage(vma, addr, pte);
            return page is { } p && FolioTestAnon(new Folio(p.Pfn)) &&
                   (Variants.DoWpPageReuse != Variants.WpReuseRule.AnonExclusive || PageAnonExclusive(p));
        }
        return PteDirty(pte) || !VmaWantsWritenotify(vma, vma.VmPageProt);
    }
}

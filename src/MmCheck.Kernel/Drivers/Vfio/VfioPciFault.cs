using static Linux.PgTable;
using static Linux.VmFault;
using Strategy = Linux.Variants.VfioPciFaultStrategy;

namespace Linux;

// drivers/vfio/pci/vfio_pci_core.c: how a fault on a BAR mmap is served, release by release
// (variant vfio_pci.fault). Sources: the current handler from the mm tree; the v6.12 handler from
// "[PATCH 19/19] vfio/pci: Implement huge_fault support" (linux-kernel, 2024-08-09); the v6.10-v6.11
// handler and aac6db75a9fc's from the same patch's removed lines and from the 6.6 stable backport of
// aac6db75a9fc (kvm list, 2024-07-17, Axel Rasmussen), whose removed lines are the v5.13–v6.9
// handler; the v5.8–v5.12 handler from the removed lines of 6a45ece4c9af "vfio/pci: Handle
// concurrent vma faults" (kvm list, 2021-03); Yan Zhao's unmerged proposal from
// <20230508125842.28193-1-yan.y.zhao@intel.com> (linux-kernel, 2023-05-08).
public sealed partial class Kernel
{
    /// <summary>PMD_ORDER and PUD_ORDER on x86-64.</summary>
    private int PmdOrder => Paging.PmdShift - PAGE_SHIFT;

    private int PudOrder => Paging.PudShift - PAGE_SHIFT;

    private readonly Dictionary<Strategy, VmOperationsStruct> _vfioPciMmapOps = [];

    /// <summary>vfio_pci_mmap_ops of the configured release.</summary>
    /// <remarks>Context: any; builds (once per release) the ops table the VMA points to.</remarks>
    [KernelSymbol("vfio_pci_mmap_ops", "drivers/vfio/pci/vfio_pci_core.c")]
    private VmOperationsStruct VfioPciMmapOps(Strategy s)
    {
        if (_vfioPciMmapOps.TryGetValue(s, out var ops))
        {
            return ops;
        }
        ops = s switch
        {
            Strategy.Huge or Strategy.HugeV612 => new VmOperationsStruct
            {
                Name = "vfio_pci_mmap_ops",
                Fault = VfioPciMmapPageFault,
                HugeFault = VfioPciMmapHugeFault,
            },
            Strategy.InsertFullVma => new VmOperationsStruct { Name = "vfio_pci_mmap_ops", Fault = VfioPciMmapFaultFullVma },
            Strategy.InsertPfn => new VmOperationsStruct { Name = "vfio_pci_mmap_ops", Fault = VfioPciMmapFaultInsertPfn },
            Strategy.RemapVmaList => new VmOperationsStruct
            {
                Name = "vfio_pci_mmap_ops",
                Open = VfioPciMmapOpen,
                Close = VfioPciMmapClose,
                Fault = VfioPciMmapFaultVmaList,
            },
            Strategy.RemapDropMmapLock => new VmOperationsStruct
            {
                Name = "vfio_pci_mmap_ops",
                Open = VfioPciMmapOpen,
                Close = VfioPciMmapClose,
                Fault = VfioPciMmapFaultDropMmapLock,
            },
            _ => new VmOperationsStruct
            {
                Name = "vfio_pci_mmap_ops",
                Open = VfioPciMmapOpen,
                Close = VfioPciMmapClose,
                Fault = VfioPciMmapFaultNoListCheck,
            },
        };
        _vfioPciMmapOps[s] = ops;
        return ops;
    }

    /// <summary>vma_to_pfn() (v6.10+): the BAR's first PFN plus the page offset inside the region.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock read-held or the VMA read-locked in the fault).</remarks>
    [KernelSymbol("vma_to_pfn", "drivers/vfio/pci/vfio_pci_core.c")]
    private static ulong VmaToPfn(VmAreaStruct vma)
    {
        var vdev = (VfioPciCoreDevice)vma.VmPrivateData!;
        int shift = VfioPciCoreDevice.VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT;
        int index = (int)(vma.VmPgoff >> shift);
        ulong pgoff = vma.VmPgoff & ((1UL << shift) - 1);
        return (vdev.Pdev.ResourceStart(index) >> PAGE_SHIFT) + pgoff;
    }

    // ---- v6.12+: ->huge_fault ----

    /// <summary>is_aligned_for_order(): a huge mapping fits the VMA and the PFN is order-aligned.</summary>
    /// <remarks>Context: the VMA is stable; pure otherwise.</remarks>
    [KernelSymbol("is_aligned_for_order", "include/linux/vfio_pci_core.h")]
    private static bool IsAlignedForOrder(VmAreaStruct vma, ulong addr, ulong pfn, int order) =>
        !(order != 0 && (addr < vma.VmStart || addr + (PAGE_SIZE << order) > vma.VmEnd || (pfn & ((1UL << order) - 1)) != 0));

    /// <summary>
    /// vfio_pci_vmf_insert_pfn(): under memory_lock read, SIGBUS while memory is disabled, else a
    /// PTE, PMD or PUD for the PFN.
    /// </summary>
    /// <remarks>
    /// Context: memory_lock read-held (asserted) under the fault's mmap_lock read or VMA read lock.
    /// Takes the PTL, PMD or PUD lock to insert.
    /// </remarks>
    [KernelSymbol("vfio_pci_vmf_insert_pfn", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<VmFault> VfioPciVmfInsertPfn(VfioPciCoreDevice vdev, VmFaultInfo vmf, ulong pfn, int order)
    {
        LockdepAssertHeld(vdev.MemoryLock, "vfio_pci_vmf_insert_pfn");
        if (vdev.PmRuntimeEngaged || !__VfioPciMemoryEnabled(vdev))
        {
            return VM_FAULT_SIGBUS;
        }
        if (order == 0)
        {
            return await VmfInsertPfn(vmf.Vma, vmf.Address, pfn);
        }
        if (order == PmdOrder)
        {
            return await VmfInsertPfnPmd(vmf, pfn, write: false);
        }
        if (order == PudOrder && !Paging.PmdFolded)
        {
            return await VmfInsertPfnPud(vmf, pfn, write: false);
        }
        return VM_FAULT_FALLBACK;
    }

    /// <summary>
    /// vfio_pci_mmap_huge_fault(vmf, order). Current ("vfio/pci: Align huge faults to order",
    /// v6.15): align the faulting address down to the order and insert the mapping that covers it
    /// when the range and the PFN are aligned, else VM_FAULT_FALLBACK. v6.12 (f9e54c3a2f5b): fall
    /// back unless the faulting address itself is order-aligned; the PFN is not checked.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;huge_fault: mmap_lock read-held or the VMA read-locked. Takes memory_lock for
    /// reading around the insert; may sleep.
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_huge_fault", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<VmFault> VfioPciMmapHugeFault(VmFaultInfo vmf, int order)
    {
        var vma = vmf.Vma;
        var vdev = (VfioPciCoreDevice)vma.VmPrivateData!;
        if (order != 0)
        {
            vdev.HugeFaultCalls++;
        }
        else
        {
            vdev.FaultCalls++;
        }
        if (Variants.VfioPciFault == Strategy.HugeV612)
        {
            ulong size = PAGE_SIZE << order;
            if (order != 0 && ((vmf.Address & (size - 1)) != 0 || vmf.Address + size > vma.VmEnd))
            {
                return VM_FAULT_FALLBACK;
            }
            ulong pgoff = vmf.Pgoff - vma.VmPgoff;
            await vdev.MemoryLock.DownRead("vfio_pci_mmap_huge_fault");
            var r = await VfioPciVmfInsertPfn(vdev, vmf, VmaToPfn(vma) + pgoff, order);
            await vdev.MemoryLock.UpRead("vfio_pci_mmap_huge_fault");
            return r;
        }
        ulong addr = vmf.Address & ~((PAGE_SIZE << order) - 1);
        ulong pfn = VmaToPfn(vma) + ((addr - vma.VmStart) >> PAGE_SHIFT);
        var ret = VM_FAULT_FALLBACK;
        if (IsAlignedForOrder(vma, addr, pfn, order))
        {
            await vdev.MemoryLock.DownRead("vfio_pci_mmap_huge_fault");
            ret = await VfioPciVmfInsertPfn(vdev, vmf, pfn, order);
            await vdev.MemoryLock.UpRead("vfio_pci_mmap_huge_fault");
        }
        return ret;
    }

    /// <summary>vfio_pci_mmap_page_fault(): the order-0 case of the huge handler.</summary>
    /// <remarks>
    /// Context: -&gt;fault: mmap_lock read-held or the VMA read-locked; as
    /// vfio_pci_mmap_huge_fault().
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_page_fault", "drivers/vfio/pci/vfio_pci_core.c")]
    private ValueTask<VmFault> VfioPciMmapPageFault(VmFaultInfo vmf) => VfioPciMmapHugeFault(vmf, 0);

    // ---- v6.10-v6.11: vmf_insert_pfn() per fault ----

    /// <summary>
    /// vfio_pci_mmap_fault() as aac6db75a9fc left it (merged for v6.10-rc4 together with d71a989cf5d9,
    /// so never released on its own): one vmf_insert_pfn() for the faulting page
    /// under memory_lock read. Safe under the mmap read lock: it never touches vm_flags, and a
    /// PTE already there makes it a no-op.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;fault: mmap_lock read-held or the VMA read-locked. Takes memory_lock for
    /// reading, then the PTL; may sleep.
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_fault", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<VmFault> VfioPciMmapFaultInsertPfn(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var vdev = (VfioPciCoreDevice)vma.VmPrivateData!;
        vdev.FaultCalls++;
        ulong pgoff = vmf.Pgoff - vma.VmPgoff;
        ulong pfn = VmaToPfn(vma);
        var ret = VM_FAULT_SIGBUS;
        await vdev.MemoryLock.DownRead("vfio_pci_mmap_fault");
        if (!vdev.PmRuntimeEngaged && __VfioPciMemoryEnabled(vdev))
        {
            ret = await VmfInsertPfn(vma, vmf.Address, pfn + pgoff);
        }
        await vdev.MemoryLock.UpRead("vfio_pci_mmap_fault");
        return ret;
    }

    /// <summary>
    /// vfio_pci_mmap_fault() of v6.10–v6.11 (d71a989cf5d9 "vfio/pci: Insert full vma on mmap'd MMIO
    /// fault"): the faulting page, then every other page of the VMA with vmf_insert_pfn(),
    /// stopping quietly at the first error.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;fault: mmap_lock read-held or the VMA read-locked. Takes memory_lock for
    /// reading and a PTL per inserted page; may sleep.
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_fault", "drivers/vfio/pci/vfio_pci_core.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<VmFault> VfioPciMmapFaultFullVma(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var vdev = (VfioPciCoreDevice)vma.VmPrivateData!;
        vdev.FaultCalls++;
        ulong pgoff = vmf.Pgoff - vma.VmPgoff;
        ulong addr = vma.VmStart;
        ulong pfn = VmaToPfn(vma);
        var ret = VM_FAULT_SIGBUS;
        await vdev.MemoryLock.DownRead("vfio_pci_mmap_fault");
        if (!vdev.PmRuntimeEngaged && __VfioPciMemoryEnabled(vdev))
        {
            ret = await VmfInsertPfn(vma, vmf.Address, pfn + pgoff);
            if ((ret & VM_FAULT_ERROR) == 0)
            {
                for (; addr < vma.VmEnd; addr += PAGE_SIZE, pfn++)
                {
                    if (addr == vmf.Address)
                    {
                        continue;
                    }
                    if ((await VmfInsertPfn(vma, addr, pfn) & VM_FAULT_ERROR) != 0)
                    {
                        break;
                    }
                }
            }
        }
        await vdev.MemoryLock.UpRead("vfio_pci_mmap_fault");
        return ret;
    }

    // ---- v5.8–v6.9: io_remap_pfn_range() of the whole VMA, tracked on vma_list ----

    /// <summary>
    /// vfio_pci_mmap_open(): a VMA created by fork or split starts zapped, so that the list only
    /// tracks VMAs faulted since the last zap (undone by 35e351780fa9, v6.9, which runs ->open
    /// before copy_page_range() fills the child).
    /// </summary>
    /// <remarks>
    /// Context: -&gt;open: mmap_lock write-held (split, or the parent's during fork). Zapping takes
    /// the PTLs.
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_open", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask VfioPciMmapOpen(VmAreaStruct vma) =>
        await ZapVmaPtes(vma, vma.VmStart, vma.VmEnd - vma.VmStart);

    /// <summary>vfio_pci_mmap_close(): the VMA leaves vma_list (it is about to be freed).</summary>
    /// <remarks>
    /// Context: -&gt;close: mmap_lock write-held, or exit_mmap() teardown. Takes vma_lock (ranks
    /// below mmap_lock).
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_close", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask VfioPciMmapClose(VmAreaStruct vma)
    {
        var vdev = (VfioPciCoreDevice)vma.VmPrivateData!;
        await vdev.VmaLock.Lock("vfio_pci_mmap_close");
        Sched.Access(vdev.StateObj, write: true);
        vdev.VmaList.Remove(vma);
        await vdev.VmaLock.Unlock("vfio_pci_mmap_close");
        vdev.ClosedVmas.Add(vma);
    }

    /// <summary>The list walk of vfio_pci_mmap_fault(): is the VMA on vma_list? Caller holds vma_lock.</summary>
    private bool VfioVmaListed(VfioPciCoreDevice vdev, VmAreaStruct vma)
    {
        Sched.Access(vdev.StateObj, write: false);
        return vdev.VmaList.Contains(vma);
    }

    /// <summary>__vfio_pci_add_vma(): the VMA joins vma_list. Caller holds vma_lock.</summary>
    /// <remarks>Context: vma_lock held (checked).</remarks>
    [KernelSymbol("__vfio_pci_add_vma", "drivers/vfio/pci/vfio_pci_core.c")]
    private void __VfioPciAddVma(VfioPciCoreDevice vdev, VmAreaStruct vma)
    {
        VmBugOn(!vdev.VmaLock.IsHeldBy(Current!), "__vfio_pci_add_vma without vma_lock");
        Sched.Access(vdev.StateObj, write: true);
        vdev.VmaList.Insert(0, vma);
    }

    /// <summary>
    /// The body of vfio_pci_mmap_fault() in v5.13–v6.9 (6a45ece4c9af): under vma_lock and
    /// memory_lock read, unless the VMA is already on vma_list, io_remap_pfn_range() the whole
    /// VMA — which calls vm_flags_set() and so asserts the mmap write lock the fault path does not
    /// hold (bc292ab00f6c, v6.3: the seed-001 report) — and add it to the list.
    /// </summary>
    private async ValueTask<VmFault> VfioPciMmapFaultRemapLocked(VfioPciCoreDevice vdev, VmAreaStruct vma)
    {
        var ret = VM_FAULT_NOPAGE;
        await vdev.VmaLock.Lock("vfio_pci_mmap_fault");
        await vdev.MemoryLock.DownRead("vfio_pci_mmap_fault");
        if (vdev.PmRuntimeEngaged || !__VfioPciMemoryEnabled(vdev))
        {
            ret = VM_FAULT_SIGBUS;
        }
        else if (!VfioVmaListed(vdev, vma))
        {
            if (await IoRemapPfnRange(vma, vma.VmStart, vma.VmPgoff, vma.VmEnd - vma.VmStart, vma.VmPageProt) != 0)
            {
                ret = VM_FAULT_SIGBUS;
                await ZapVmaPtes(vma, vma.VmStart, vma.VmEnd - vma.VmStart);
            }
            else
            {
                __VfioPciAddVma(vdev, vma);
            }
        }
        await vdev.MemoryLock.UpRead("vfio_pci_mmap_fault");
        await vdev.VmaLock.Unlock("vfio_pci_mmap_fault");
        return ret;
    }

    /// <summary>vfio_pci_mmap_fault() of v5.13–v6.9.</summary>
    /// <remarks>
    /// Context: -&gt;fault: only mmap_lock read-held (or the VMA read-locked), yet
    /// io_remap_pfn_range() wants it write-held: vm_flags_set() reports that since v6.3. Takes
    /// vma_lock, then memory_lock for reading.
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_fault", "drivers/vfio/pci/vfio_pci_core.c")]
    private ValueTask<VmFault> VfioPciMmapFaultVmaList(VmFaultInfo vmf)
    {
        var vdev = (VfioPciCoreDevice)vmf.Vma.VmPrivateData!;
        vdev.FaultCalls++;
        return VfioPciMmapFaultRemapLocked(vdev, vmf.Vma);
    }

    /// <summary>
    /// vfio_pci_mmap_fault() of v5.8–v5.12: the VMA is added to vma_list and vma_lock dropped
    /// before io_remap_pfn_range(), so two threads faulting the same VMA both remap it and the
    /// second hits remap_pte_range()'s BUG_ON(!pte_none()).
    /// </summary>
    /// <remarks>
    /// Context: -&gt;fault: mmap_lock read-held. Takes vma_lock and memory_lock for reading, but
    /// drops vma_lock before the remap, so two faults can remap the same VMA.
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_fault", "drivers/vfio/pci/vfio_pci.c")]
    private async ValueTask<VmFault> VfioPciMmapFaultNoListCheck(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var vdev = (VfioPciCoreDevice)vma.VmPrivateData!;
        vdev.FaultCalls++;
        var ret = VM_FAULT_NOPAGE;
        await vdev.VmaLock.Lock("vfio_pci_mmap_fault");
        await vdev.MemoryLock.DownRead("vfio_pci_mmap_fault");
        if (!__VfioPciMemoryEnabled(vdev))
        {
            ret = VM_FAULT_SIGBUS;
            await vdev.VmaLock.Unlock("vfio_pci_mmap_fault");
        }
        else
        {
            __VfioPciAddVma(vdev, vma);
            await vdev.VmaLock.Unlock("vfio_pci_mmap_fault");
            if (await IoRemapPfnRange(vma, vma.VmStart, vma.VmPgoff, vma.VmEnd - vma.VmStart, vma.VmPageProt) != 0)
            {
                ret = VM_FAULT_SIGBUS;
            }
        }
        await vdev.MemoryLock.UpRead("vfio_pci_mmap_fault");
        return ret;
    }

    /// <summary>
    /// Yan Zhao's proposal (May 2023, not merged): drop the mmap read lock inside ->fault and take
    /// it for write around the v6.4 handler, returning VM_FAULT_COMPLETED (lock released) on
    /// success or with the read lock taken again otherwise. Between the unlock and the lock the
    /// VMA can be unmapped and freed by another thread; the handler then remaps a dead VMA.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;fault: mmap_lock read-held (asserted). Drops it, takes it for writing
    /// (killable) around the remap under vma_lock and memory_lock, and returns VM_FAULT_COMPLETED
    /// with no lock held, or with the read lock taken again. The VMA may be freed while no lock is
    /// held.
    /// </remarks>
    [KernelSymbol("vfio_pci_mmap_fault", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<VmFault> VfioPciMmapFaultDropMmapLock(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var vdev = (VfioPciCoreDevice)vma.VmPrivateData!;
        var mm = vma.VmMm;
        vdev.FaultCalls++;
        MmapAssertLocked(mm, "vfio_pci_mmap_fault");
        await MmapReadUnlock(mm, "vfio_pci_mmap_fault");
        if (await MmapWriteLockKillable(mm, "vfio_pci_mmap_fault") != 0)
        {
            return VM_FAULT_RETRY;
        }
        KasanCheckVma(vdev, vma, "vfio_pci_mmap_fault");
        var ret = await VfioPciMmapFaultRemapLocked(vdev, vma);
        await MmapWriteUnlock(mm, "vfio_pci_mmap_fault");
        if (ret == VM_FAULT_NOPAGE)
        {
            ret |= VM_FAULT_COMPLETED;
        }
        else
        {
            await MmapReadLock(mm, "vfio_pci_mmap_fault");
        }
        return ret;
    }

    /// <summary>
    /// What KASAN reports when a handler dereferences a VMA that was closed and freed while it
    /// slept without the mmap lock (munmap ran vm_ops->close and vm_area_free()).
    /// </summary>
    private void KasanCheckVma(VfioPciCoreDevice vdev, VmAreaStruct vma, string fn)
    {
        if (vdev.ClosedVmas.Contains(vma) || !vma.Attached)
        {
            Violation(Invariants.UseAfterFree,
                $"KASAN: use-after-free of {vma}: it was unmapped and freed while {fn} had dropped the mmap lock, " +
                "and the handler goes on to populate it", fn);
        }
    }
}

using static Linux.PgTable;

namespace Linux;

// drivers/vfio/vfio_iommu_type1.c: resolving the user addresses of a VFIO_IOMMU_MAP_DMA to PFNs.
// Ordinary memory is pinned with pin_user_pages_remote(); a VM_PFNMAP range (another device's
// BAR mmap, for peer-to-peer DMA) is refused by GUP and then faulted in with fixup_user_fault()
// under the mmap read lock — the path of Yan Zhao's trace in seed 001 — and read back with
// follow_pfnmap_start() (follow_pte() before v6.12).
public sealed partial class Kernel
{
    /// <summary>is_invalid_reserved_pfn(): no struct page, or a reserved one.</summary>
    /// <remarks>Context: any; reads the page descriptor only.</remarks>
    [KernelSymbol("is_invalid_reserved_pfn", "drivers/vfio/vfio_iommu_type1.c")]
    private bool IsInvalidReservedPfn(ulong pfn) =>
        !PfnValid(pfn) || (MemMap.PeekFlags(pfn) & (uint)PageFlags.PG_reserved) != 0;

    /// <summary>
    /// follow_fault_pfn(): the PFN mapped at <paramref name="vaddr"/>; if nothing is mapped, fault
    /// it in with fixup_user_fault() and look again. -EAGAIN if the fault dropped the mmap lock
    /// (the VMA may be gone: the caller looks it up again).
    /// </summary>
    /// <remarks>Context: mmap read lock held.</remarks>
    [KernelSymbol("follow_fault_pfn", "drivers/vfio/vfio_iommu_type1.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<(int Ret, ulong Pfn, ulong AddrMask)> FollowFaultPfn(VmAreaStruct vma, MmStruct mm, ulong vaddr, bool writeFault)
    {
        var args = new FollowPfnmapArgs { Vma = vma, Address = vaddr };
        int ret = await FollowPfnmapStart(args);
        if (ret != 0)
        {
            var flags = FaultFlag.FAULT_FLAG_REMOTE | (writeFault ? FaultFlag.FAULT_FLAG_WRITE : FaultFlag.None);
            var (fret, unlocked) = await FixupUserFault(mm, vaddr, flags, allowUnlock: true);
            if (unlocked)
            {
                return (-Errno.EAGAIN, 0, 0);
            }
            if (fret != 0)
            {
                return (fret, 0, 0);
            }
            ret = await FollowPfnmapStart(args);
            if (ret != 0)
            {
                return (ret, 0, 0);
            }
        }
        (int, ulong, ulong) result = writeFault && !args.Writable ? (-Errno.EFAULT, 0, 0) : (0, args.Pfn, args.AddrMask);
        await FollowPfnmapEnd(args);
        return result;
    }

    /// <summary>
    /// vaddr_get_pfns(): under the mmap read lock, pin ordinary pages, or for a VM_PFNMAP VMA
    /// resolve the PFN (faulting it in if needed). Returns the number of contiguous PFNs from
    /// <c>Pfn</c> (pages pinned, or the rest of the leaf for a PFN map), or -errno.
    /// </summary>
    /// <remarks>
    /// Context: no mmap_lock held on entry. Takes it for reading around the pin or the PFN lookup
    /// (a fault may drop and retake it) and releases it before returning; may sleep.
    /// </remarks>
    [KernelSymbol("vaddr_get_pfns", "drivers/vfio/vfio_iommu_type1.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<(long Ret, ulong Pfn, List<Page> Pages)> VaddrGetPfns(MmStruct mm, ulong vaddr, long npages, bool write)
    {
        var pages = new List<Page>();
        var flags = (write ? Foll.FOLL_WRITE : Foll.None) | Foll.FOLL_LONGTERM;
        ulong pfn = 0;
        await MmapReadLock(mm, "vaddr_get_pfns");
        long ret = await PinUserPagesRemote(mm, vaddr, npages, flags, pages);
        if (ret > 0)
        {
            pfn = pages[0].Pfn;
        }
        else
        {
            if (ret == 0)
            {
                ret = -Errno.EFAULT;
            }
            while (true)
            {
                var vma = mm.MmMt.VmaLookup(vaddr);
                if (vma is null || (vma.VmFlags & VmFlags.VM_PFNMAP) == 0)
                {
                    break;
                }
                var (r, p, mask) = await FollowFaultPfn(vma, mm, vaddr, write);
                if (r == -Errno.EAGAIN)
                {
                    continue;
                }
                ret = r;
                if (r == 0)
                {
                    if (IsInvalidReservedPfn(p))
                    {
                        pfn = p;
                        ulong epfn = (p | (~mask >> PAGE_SHIFT)) + 1;
                        ret = Math.Min(npages, (long)(epfn - p));
                    }
                    else
                    {
                        ret = -Errno.EFAULT;
                    }
                }
                break;
            }
        }
        await MmapReadUnlock(mm, "vaddr_get_pfns");
        return (ret, pfn, pages);
    }

    /// <summary>
    /// VFIO_IOMMU_MAP_DMA as far as mm is concerned (vfio_pin_pages_remote() over the range):
    /// the PFNs behind [vaddr, vaddr + npages pages) of the current task's mm, or -errno. Pins
    /// taken on ordinary pages are kept (the DMA mapping holds them).
    /// </summary>
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<(long Ret, List<ulong> Pfns)> VfioIommuMapDma(ulong vaddr, long npages, bool write)
    {
        var mm = Current!.Mm!;
        var pfns = new List<ulong>();
        while (npages > 0)
        {
            var (ret, pfn, pages) = await VaddrGetPfns(mm, vaddr, npages, write);
            if (ret <= 0)
            {
                return (ret == 0 ? -Errno.EFAULT : ret, pfns);
            }
            if (pages.Count > 0)
            {
                pfns.AddRange(pages.Select(p => p.Pfn));
            }
            else
            {
                for (long i = 0; i < ret; i++)
                {
                    pfns.Add(pfn + (ulong)i);
                }
            }
            npages -= ret;
            vaddr += (ulong)ret << PAGE_SHIFT;
        }
        return (pfns.Count, pfns);
    }
}

using static Linux.Foll;
using static Linux.VmFault;

namespace Linux;

// mm/gup.c: fixup_user_fault() and pin_user_pages_remote(), the two GUP entries a driver that
// resolves user addresses for a device uses (VFIO type1's vaddr_get_pfns()).
public sealed partial class Kernel
{
    /// <summary>gup_vma_lookup(): the VMA containing the address (GUP no longer grows stacks).</summary>
    /// <remarks>Context: mmap_lock held (read at least).</remarks>
    [KernelSymbol("gup_vma_lookup", "mm/gup.c")]
    private static VmAreaStruct? GupVmaLookup(MmStruct mm, ulong addr)
    {
        var vma = mm.MmMt.FindVma(addr);
        return vma is not null && addr >= vma.VmStart ? vma : null;
    }

    /// <summary>vma_permits_fault(): the access the fault stands for is allowed by the VMA.</summary>
    /// <remarks>Context: mmap_lock held (the VMA is stable).</remarks>
    [KernelSymbol("vma_permits_fault", "mm/gup.c")]
    private static bool VmaPermitsFault(VmAreaStruct vma, FaultFlag faultFlags)
    {
        var need = (faultFlags & FaultFlag.FAULT_FLAG_WRITE) != 0 ? VmFlags.VM_WRITE : VmFlags.VM_READ;
        return (vma.VmFlags & need) != 0;
    }

    /// <summary>
    /// fixup_user_fault(): resolve a fault at <paramref name="address"/> of <paramref name="mm"/> on
    /// behalf of the kernel, as a user access would. With <paramref name="allowUnlock"/> (the
    /// caller passed <c>unlocked</c>) the fault may drop the mmap lock; it is always held again
    /// on return, and <c>Unlocked</c> tells the caller that it was dropped.
    /// </summary>
    /// <remarks>Context: mmap read lock held; held again on return.</remarks>
    [KernelSymbol("fixup_user_fault", "mm/gup.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<(int Ret, bool Unlocked)> FixupUserFault(MmStruct mm, ulong address, FaultFlag faultFlags, bool allowUnlock)
    {
        bool unlocked = false;
        if (allowUnlock)
        {
            faultFlags |= FaultFlag.FAULT_FLAG_ALLOW_RETRY | FaultFlag.FAULT_FLAG_KILLABLE;
        }
        while (true)
        {
            var vma = GupVmaLookup(mm, address);
            if (vma is null)
            {
                return (-Errno.EFAULT, unlocked);
            }
            if (!VmaPermitsFault(vma, faultFlags))
            {
                return (-Errno.EFAULT, unlocked);
            }
            if ((faultFlags & FaultFlag.FAULT_FLAG_KILLABLE) != 0 && Current!.FatalSignalPending)
            {
                return (-Errno.EINTR, unlocked);
            }
            var ret = await HandleMmFault(vma, address, faultFlags);
            if ((ret & VM_FAULT_COMPLETED) != 0)
            {
                // The fault dropped the lock; take it again so the caller's unlock pairs.
                await MmapReadLock(mm, "fixup_user_fault");
                if (!allowUnlock)
                {
                    // "*unlocked = true" through the NULL a caller that allows no retry passes.
                    Oops("NULL pointer dereference in fixup_user_fault(): the fault released the mmap lock " +
                         "although FAULT_FLAG_ALLOW_RETRY was not set (unlocked == NULL)");
                }
                return (0, true);
            }
            if ((ret & VM_FAULT_ERROR) != 0)
            {
                int err = VmFaultToErrno(ret, 0);
                BugOn(err == 0, $"fixup_user_fault: fault error {ret} without an errno");
                return (err, unlocked);
            }
            if ((ret & VM_FAULT_RETRY) != 0)
            {
                await MmapReadLock(mm, "fixup_user_fault");
                if (!allowUnlock)
                {
                    Oops("NULL pointer dereference in fixup_user_fault(): VM_FAULT_RETRY without FAULT_FLAG_ALLOW_RETRY (unlocked == NULL)");
                }
                unlocked = true;
                faultFlags |= FaultFlag.FAULT_FLAG_TRIED;
                continue;
            }
            return (0, unlocked);
        }
    }

    /// <summary>
    /// pin_user_pages_remote() with <c>locked == NULL</c>: FOLL_PIN|FOLL_REMOTE pins of another (or
    /// the current) mm under the caller's mmap read lock, which is never dropped. VM_IO/VM_PFNMAP
    /// ranges are refused by check_vma_flags() (-EFAULT).
    /// </summary>
    /// <remarks>Context: mmap read lock held.</remarks>
    [KernelSymbol("pin_user_pages_remote", "mm/gup.c")]
    public async ValueTask<long> PinUserPagesRemote(MmStruct mm, ulong start, long nrPages, Foll gupFlags, List<Page> pages)
    {
        MmapAssertLocked(mm);
        mm.Flags |= MmStruct.MMF_HAS_PINNED;
        var (ret, locked) = await __GetUserPages(mm, start, nrPages, gupFlags | FOLL_PIN | FOLL_REMOTE, pages);
        WarnOnOnce(!locked, "pin_user_pages_remote: the mmap lock was dropped without FOLL_UNLOCKABLE");
        if (WarnOnOnce(ret == 0, "pin_user_pages_remote: nothing pinned"))
        {
            return -Errno.EFAULT;
        }
        return ret;
    }
}

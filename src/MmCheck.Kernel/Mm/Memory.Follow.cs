using static Linux.PgTable;

namespace Linux;

/// <summary>
/// struct follow_pfnmap_args: what follow_pfnmap_start() found, valid (and the page-table lock
/// held) until follow_pfnmap_end().
/// </summary>
[KernelSymbol("follow_pfnmap_args", "include/linux/mm.h")]
public sealed class FollowPfnmapArgs
{
    public required VmAreaStruct Vma;
    public required ulong Address;
    /// <summary>The PFN mapped at Address.</summary>
    public ulong Pfn;
    /// <summary>The mask of the leaf that maps it (PAGE_MASK, PMD_MASK or PUD_MASK).</summary>
    public ulong AddrMask;
    public bool Writable;
    public bool Special;
    public PgProt PgProt;
    internal SpinLock? Lock;
}

// mm/memory.c: follow_pfnmap_start()/follow_pfnmap_end() (6da8e9634bb7 "mm: new follow_pfnmap
// API", v6.12): look up the PFN behind a VM_IO/VM_PFNMAP address, at any leaf level, holding the
// leaf's page-table lock until the caller is done with it.
public sealed partial class Kernel
{
    /// <summary>pfnmap_lockdep_assert(): the mmap lock or the file's i_mmap_rwsem keeps the PFN map stable.</summary>
    /// <remarks>
    /// Context: checks that the mmap_lock or the file's i_mmap_rwsem is held, as the kernel's
    /// lockdep assertion does.
    /// </remarks>
    [KernelSymbol("pfnmap_lockdep_assert", "mm/memory.c")]
    private void PfnmapLockdepAssert(VmAreaStruct vma)
    {
        var t = Current;
        if (t is null)
        {
            return;
        }
        bool held = vma.VmMm.MmapLock.IsHeldBy(t) ||
                    (vma.VmFile is { } f && f.FMapping.IMmapRwsem.IsHeldBy(t));
        if (!held)
        {
            Violation(Invariants.LockAssert, $"follow_pfnmap_start: neither the mmap lock nor i_mmap_rwsem of {vma} is held", "follow_pfnmap_start");
        }
    }

    /// <summary>
    /// follow_pfnmap_start(): 0 with the leaf's lock held and <paramref name="args"/> filled, or
    /// -EINVAL when nothing is mapped there (or the VMA is not a PFN map).
    /// </summary>
    /// <remarks>Context: mmap read lock (or i_mmap_rwsem) held.</remarks>
    [KernelSymbol("follow_pfnmap_start", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<int> FollowPfnmapStart(FollowPfnmapArgs args)
    {
        var vma = args.Vma;
        ulong address = args.Address;
        var mm = vma.VmMm;
        PfnmapLockdepAssert(vma);
        if (address < vma.VmStart || address >= vma.VmEnd)
        {
            return -Errno.EINVAL;
        }
        if ((vma.VmFlags & (VmFlags.VM_IO | VmFlags.VM_PFNMAP)) == 0)
        {
            return -Errno.EINVAL;
        }
        while (true)
        {
            var pgd = PgdOffset(mm, address);
            if (PgdNone(PgdpGet(pgd)))
            {
                return -Errno.EINVAL;
            }
            var p4d = P4dOffset(pgd, address);
            if (P4dNone(P4dpGet(p4d)))
            {
                return -Errno.EINVAL;
            }
            var pudp = PudOffset(p4d, address);
            var pud = PudpGet(pudp);
            if (PudNone(pud))
            {
                return -Errno.EINVAL;
            }
            if (PudLeaf(pud))
            {
                var lk = await PudLock(mm, pudp, "follow_pfnmap_start");
                pud = PudpGet(pudp);
                if (!PudLeaf(pud))
                {
                    await lk.Unlock("follow_pfnmap_start");
                    continue;
                }
                ulong mask = ~(Paging.PudSize - 1);
                Setup(args, lk, PgTable.PudPfn(pud), mask, PudWrite(pud), (pud.Val & X86Pte._PAGE_SPECIAL) != 0, pud.Val);
                return 0;
            }
            var pmdp = PmdOffset(pudp, address);
            var pmd = await PmdpGetLockless(pmdp, "follow_pfnmap_start");
            if (PgTable.PmdLeaf(pmd))
            {
                var lk = await PmdLock(mm, pmdp, "follow_pfnmap_start");
                pmd = PmdpGet(pmdp);
                if (!PgTable.PmdLeaf(pmd))
                {
                    await lk.Unlock("follow_pfnmap_start");
                    continue;
                }
                ulong mask = ~(Paging.PmdSize - 1);
                Setup(args, lk, PgTable.PmdPfn(pmd), mask, PmdWrite(pmd), (pmd.Val & X86Pte._PAGE_SPECIAL) != 0, pmd.Val);
                return 0;
            }
            if (PmdNone(pmd) || await PteOffsetMapLock(mm, pmdp, address) is not { } l)
            {
                return -Errno.EINVAL;
            }
            var pte = PtepGet(l.Pte);
            if (!PtePresent(pte))
            {
                await l.Ptl.Unlock("follow_pfnmap_start");
                return -Errno.EINVAL;
            }
            Setup(args, l.Ptl, PtePfn(pte), PAGE_MASK, PteWrite(pte), PteSpecial(pte), pte.Val);
            return 0;
        }
    }

    /// <summary>pfnmap_args_setup(): the PFN of the page at args.Address within the leaf.</summary>
    /// <remarks>
    /// Context: under the page-table lock follow_pfnmap_start() took, which it records for
    /// follow_pfnmap_end().
    /// </remarks>
    [KernelSymbol("pfnmap_args_setup", "mm/memory.c")]
    private static void Setup(FollowPfnmapArgs args, SpinLock lk, ulong basePfn, ulong addrMask, bool writable, bool special, ulong entry)
    {
        args.Lock = lk;
        args.Pfn = basePfn + ((args.Address & ~addrMask) >> PAGE_SHIFT);
        args.AddrMask = addrMask;
        args.Writable = writable;
        args.Special = special;
        args.PgProt = new PgProt(entry & ~X86Pte.PTE_PFN_MASK);
    }

    /// <summary>follow_pfnmap_end(): drops the lock follow_pfnmap_start() returned with.</summary>
    /// <remarks>
    /// Context: the page-table lock follow_pfnmap_start() returned with; releases it. The mmap_lock
    /// or i_mmap_rwsem is still held.
    /// </remarks>
    [KernelSymbol("follow_pfnmap_end", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    public async ValueTask FollowPfnmapEnd(FollowPfnmapArgs args)
    {
        if (args.Lock is { } lk)
        {
            args.Lock = null;
            await lk.Unlock("follow_pfnmap_end");
        }
    }
}

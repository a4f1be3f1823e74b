using static Linux.Mman;
using static Linux.PgTable;
using static Linux.VmFlags;

namespace Linux;

// mm/mprotect.c: mprotect(2) → mprotect_fixup() → change_protection(), one walker per level.
public sealed partial class Kernel
{
    /// <summary>
    /// do_mprotect_pkey(): changes the access of every VMA in [start, start+len); the range must
    /// be fully mapped (-ENOMEM at the first hole) and the new access within each VMA's VM_MAY*.
    /// </summary>
    /// <remarks>Context: system call body: no locks held; takes the mmap write lock.</remarks>
    [KernelSymbol("do_mprotect_pkey", "mm/mprotect.c")]
    public async ValueTask<int> DoMprotectPkey(ulong start, ulong len, int prot)
    {
        var mm = Current!.Mm!;
        int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
        prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
        if (grows == (PROT_GROWSDOWN | PROT_GROWSUP))
        {
            return -Errno.EINVAL;
        }
        if (OffsetInPage(start))
        {
            return -Errno.EINVAL;
        }
        if (len == 0)
        {
            return 0;
        }
        len = PageAlign(len);
        ulong end = start + len;
        if (end <= start)
        {
            return -Errno.ENOMEM;
        }
        if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) != 0)
        {
            return -Errno.EINVAL;
        }
        await MmapWriteLockKillable(mm);
        int error = -Errno.ENOMEM;
        var tree = mm.MmMt;
        var vma = tree.FindVmaIntersection(start, end);
        if (vma is null)
        {
            await MmapWriteUnlock(mm);
            return error;
        }
        if ((grows & PROT_GROWSDOWN) != 0)
        {
            error = -Errno.EINVAL;
            if ((vma.VmFlags & VM_GROWSDOWN) == 0)
            {
                await MmapWriteUnlock(mm);
                return error;
            }
            start = vma.VmStart;
        }
        else if (vma.VmStart > start || (grows & PROT_GROWSUP) != 0)
        {
            if ((grows & PROT_GROWSUP) != 0)
            {
                error = -Errno.EINVAL;
            }
            await MmapWriteUnlock(mm);
            return error;
        }
        var prev = tree.Prev(vma);
        if (start > vma.VmStart)
        {
            prev = vma;
        }
        var tlb = TlbGatherMmu(mm);
        ulong nstart = start;
        ulong tmp = vma.VmStart;
        error = 0;
        for (var cur = vma; cur is not null && cur.VmStart < end; cur = tree.FindVma(tmp))
        {
            if (cur.VmStart != tmp)
            {
                error = -Errno.ENOMEM;
                break;
            }
            var newflags = CalcVmProtBits(prot) | (cur.VmFlags & ~VM_ACCESS_FLAGS);
            // newflags >> 4 moves VM_MAY* over VM_*: the new access must be allowed.
            if (((ulong)newflags & ~((ulong)newflags >> 4) & (ulong)VM_ACCESS_FLAGS) != 0)
            {
                error = -Errno.EACCES;
                break;
            }
            tmp = Math.Min(cur.VmEnd, end);
            (error, prev) = await MprotectFixup(tlb, cur, prev, nstart, tmp, newflags);
            if (error != 0)
            {
                break;
            }
            tmp = prev!.VmEnd;
            nstart = tmp;
        }
        TlbFinishMmu(tlb);
        if (error == 0 && tmp < end)
        {
            error = -Errno.ENOMEM;
        }
        await MmapWriteUnlock(mm);
        return error;
    }

    /// <summary>
    /// mprotect_fixup(): charge a private mapping that becomes writable (VM_ACCOUNT), merge or
    /// split so one VMA covers [start, end), set its flags and page protection, and change the PTEs.
    /// Returns the error and the VMA now covering the range (the new *pprev).
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("mprotect_fixup", "mm/mprotect.c")]
    public async ValueTask<(int Err, VmAreaStruct? Prev)> MprotectFixup(MmuGather tlb, VmAreaStruct vma, VmAreaStruct? prev,
        ulong start, ulong end, VmFlags newflags)
    {
        var mm = vma.VmMm;
        var oldflags = vma.VmFlags;
        long nrpages = (long)((end - start) >> PAGE_SHIFT);
        long charged = 0;
        if (newflags == oldflags)
        {
            return (0, vma);
        }
        if ((newflags & VM_WRITE) != 0)
        {
            if ((oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE)) == 0)
            {
                charged = nrpages;
                if (VmEnoughMemory(charged) != 0)
                {
                    return (-Errno.ENOMEM, prev);
                }
                newflags |= VM_ACCOUNT;
            }
        }
        else if ((oldflags & VM_ACCOUNT) != 0 && vma.IsAnonymous && vma.AnonVma is null)
        {
            newflags &= ~VM_ACCOUNT;
        }
        var (v, err) = await VmaModifyFlags(prev, vma, start, end, newflags);
        if (v is null)
        {
            VmUnacctMemory(charged);
            return (err, prev);
        }
        vma = v;
        await VmaStartWrite(vma);
        VmFlagsReset(vma, newflags);
        bool tryChangeWritable = (vma.VmFlags & VM_SHARED) != 0
            ? VmaWantsWritenotify(vma, vma.VmPageProt)
            : (vma.VmFlags & VM_WRITE) != 0;
        VmaSetPageProt(vma);
        await ChangeProtection(tlb, vma, start, end, tryChangeWritable);
        if ((oldflags & VM_ACCOUNT) != 0 && (newflags & VM_ACCOUNT) == 0)
        {
            VmUnacctMemory(nrpages);
        }
        if ((oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED && (newflags & VM_WRITE) != 0)
        {
            await PopulateVmaPageRange(vma, start, end);
        }
        VmStatAccount(mm, oldflags, -nrpages);
        VmStatAccount(mm, newflags, nrpages);
        return (0, vma);
    }

    /// <summary>
    /// change_protection(): rewrites the PTEs of [start, end) with the VMA's new protection,
    /// making a PTE writable early only where no write fault is needed (can_change_pte_writable()).
    /// </summary>
    /// <remarks>Context: mmap write lock held; the caller's mmu_gather flushes what changed.</remarks>
    [KernelSymbol("change_protection", "mm/mprotect.c")]
    public async ValueTask<long> ChangeProtection(MmuGather tlb, VmAreaStruct vma, ulong start, ulong end, bool tryChangeWritable)
    {
        var mm = vma.VmMm;
        var newprot = vma.VmPageProt;
        long pages = 0;
        await MmuNotifierInvalidateRangeStart(mm, MmuNotifierEvent.MMU_NOTIFY_PROTECTION_VMA, start, end);
        ulong addr = start;
        var pgd = PgdOffset(mm, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PgdirShift);
            var v = PgdpGet(pgd);
            if (!PgdNone(v) && PgdPresent(v))
            {
                pages += await ChangeP4dRange(tlb, vma, pgd, addr, next, newprot, tryChangeWritable);
            }
            pgd = pgd with { Index = pgd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        // tlb_end_vma(): flush this VMA's range now.
        TlbFlushMmu(tlb);
        await MmuNotifierInvalidateRangeEnd(mm, MmuNotifierEvent.MMU_NOTIFY_PROTECTION_VMA, start, end);
        return pages;
    }

    /// <remarks>Context: as change_protection().</remarks>
    [KernelSymbol("change_p4d_range", "mm/mprotect.c")]
    private async ValueTask<long> ChangeP4dRange(MmuGather tlb, VmAreaStruct vma, PtPtr pgd, ulong addr, ulong end, PgProt newprot, bool tcw)
    {
        long pages = 0;
        var p4d = P4dOffset(pgd, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.P4dShift);
            var v = P4dpGet(p4d);
            if (!P4dNone(v) && P4dPresent(v))
            {
                pages += await ChangePudRange(tlb, vma, p4d, addr, next, newprot, tcw);
            }
            p4d = p4d with { Index = p4d.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return pages;
    }

    /// <remarks>Context: as change_protection().</remarks>
    [KernelSymbol("change_pud_range", "mm/mprotect.c")]
    private async ValueTask<long> ChangePudRange(MmuGather tlb, VmAreaStruct vma, PtPtr p4d, ulong addr, ulong end, PgProt newprot, bool tcw)
    {
        long pages = 0;
        var pud = PudOffset(p4d, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PudShift);
            var v = PudpGet(pud);
            if (PudLeaf(v))
            {
                // Huge PFN-map leaves refault at the new protection.
                await __SplitHugePud(vma, pud, addr);
            }
            else if (!PudNone(v) && PudPresent(v))
            {
                pages += await ChangePmdRange(tlb, vma, pud, addr, next, newprot, tcw);
            }
            pud = pud with { Index = pud.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return pages;
    }

    /// <remarks>Context: as change_protection().</remarks>
    [KernelSymbol("change_pmd_range", "mm/mprotect.c")]
    private async ValueTask<long> ChangePmdRange(MmuGather tlb, VmAreaStruct vma, PtPtr pud, ulong addr, ulong end, PgProt newprot, bool tcw)
    {
        long pages = 0;
        var pmd = PmdOffset(pud, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PmdShift);
            var v = PmdpGet(pmd);
            if (PgTable.PmdLeaf(v))
            {
                await __SplitHugePmd(vma, pmd, addr);
            }
            else if (!PmdNone(v))
            {
                pages += await ChangePteRange(tlb, vma, pmd, addr, next, newprot, tcw);
            }
            await Sched.Point(SchedPointKind.Preempt, pmd.Obj, "change_pmd_range");
            pmd = pmd with { Index = pmd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return pages;
    }

    /// <summary>change_pte_range(): under the PTL, pte_modify() each present PTE; markers stay.</summary>
    /// <remarks>Context: as change_protection(); takes and releases the PTL.</remarks>
    [KernelSymbol("change_pte_range", "mm/mprotect.c")]
    private async ValueTask<long> ChangePteRange(MmuGather tlb, VmAreaStruct vma, PtPtr pmd, ulong addr, ulong end, PgProt newprot, bool tcw)
    {
        var mm = vma.VmMm;
        if (await PteOffsetMapLock(mm, pmd, addr) is not { } l)
        {
            return 0;
        }
        long pages = 0;
        var pte = l.Pte;
        for (; addr != end; addr += PAGE_SIZE, pte = pte with { Index = pte.Index + 1 })
        {
            var oldpte = PtepGet(pte);
            if (PtePresent(oldpte))
            {
                var ptent = PteModify(oldpte, newprot);
                if (tcw && !PteWrite(ptent) && CanChangePteWritable(vma, addr, ptent))
                {
                    ptent = PteMkwriteNovma(ptent);
                }
                // ptep_modify_prot_start()/commit(): an atomic swap against hardware A/D updates.
                PtepGetAndClear(mm, addr, pte);
                SetPteAt(mm, addr, pte, ptent);
                if (PteNeedsFlush(oldpte, ptent))
                {
                    tlb.AdjustRange(addr, PAGE_SIZE);
                }
                pages++;
            }
        }
        await l.Ptl.Unlock("change_pte_range");
        return pages;
    }

    /// <summary>pte_needs_flush() (x86): a present PTE losing P, A or D, changing PFN, or changing
    /// any protection or cache bit must be flushed.</summary>
    /// <remarks>Context: any; pure (compares two PTE values).</remarks>
    [KernelSymbol("pte_needs_flush", "arch/x86/include/asm/tlbflush.h")]
    public static bool PteNeedsFlush(Pte oldpte, Pte newpte)
    {
        if ((oldpte.Val & X86Pte._PAGE_PRESENT) == 0)
        {
            return false;
        }
        if (PtePfn(oldpte) != PtePfn(newpte))
        {
            return true;
        }
        const ulong flushOnClear = X86Pte._PAGE_DIRTY | X86Pte._PAGE_PRESENT | X86Pte._PAGE_ACCESSED;
        const ulong softwareFlags = (1UL << 9) | (1UL << 10) | (1UL << 11) | (1UL << 57) | X86Pte._PAGE_SAVED_DIRTY;
        const ulong flushOnChange = X86Pte._PAGE_RW | X86Pte._PAGE_USER | X86Pte._PAGE_PWT | X86Pte._PAGE_PCD |
                                    X86Pte._PAGE_PSE | X86Pte._PAGE_GLOBAL | X86Pte._PAGE_PAT | X86Pte._PAGE_PAT_LARGE |
                                    X86Pte._PAGE_PKEY_MASK | X86Pte._PAGE_NX;
        ulong oldflags = PteFlags(oldpte), newflags = PteFlags(newpte);
        ulong diff = (oldflags ^ newflags) & ~softwareFlags & ~X86Pte._PAGE_ACCESSED;
        return (diff & oldflags & flushOnClear) != 0 || (diff & flushOnChange) != 0;
    }
}

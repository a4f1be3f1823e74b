namespace Linux;

// mm/huge_memory.c, the part the model needs: huge leaves exist only as special PFN mappings
// (vmf_insert_pfn_pmd/pud), so splitting one zaps it and zapping one just clears it.
public sealed partial class Kernel
{
    /// <summary>vma_is_special_huge(): a DAX or PFN-map VMA, whose huge leaves have no folio.</summary>
    /// <remarks>Context: the VMA stable (mmap_lock, its VMA lock or an rmap lock held); reads its flags and file
    /// only.</remarks>
    [KernelSymbol("vma_is_special_huge", "include/linux/huge_mm.h")]
    public static bool VmaIsSpecialHuge(VmAreaStruct vma) =>
        vma.VmFile is not null && (vma.VmFlags & (VmFlags.VM_PFNMAP | VmFlags.VM_MIXEDMAP)) != 0;

    /// <summary>
    /// copy_huge_pmd() for the only huge leaves the model has, special (PFN map) ones: the child
    /// gets the parent's entry, old. Which entry depends on <see cref="Variants.CopyHugePmdSpecial"/>:
    /// since v6.12 the one the caller read before either lock (the kernel reads it with
    /// pmdp_get_lockless() and does not look again), so a zap of the parent's PMD through i_mmap in
    /// between (unmap_mapping_range(), which takes no mmap lock) leaves the child mapping what was
    /// just revoked; the proposal re-reads it under the source lock; before v6.12 nothing is copied.
    /// </summary>
    /// <remarks>Context: fork: both mmap locks write-held; takes the destination PMD lock, then the
    /// source PMD lock nested.</remarks>
    [KernelSymbol("copy_huge_pmd", "mm/huge_memory.c")]
    private async ValueTask CopyHugePmd(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPmd, PtPtr srcPmd, ulong addr, Pmd pmd)
    {
        var rule = Variants.CopyHugePmdSpecial;
        if (rule == Variants.CopyHugePmdSpecialRule.Skip)
        {
            // "Skip if can be re-fill on fault": a PFN map is not anonymous.
            return;
        }
        var dstPtl = await PmdLock(dstVma.VmMm, dstPmd);
        var srcPtl = PmdLockptr(srcVma.VmMm, srcPmd);
        await srcPtl.Lock("copy_huge_pmd", subclass: 1);
        if (rule == Variants.CopyHugePmdSpecialRule.Recheck)
        {
            pmd = PmdpGet(srcPmd);
        }
        if (PgTable.PmdLeaf(pmd))
        {
            VmWarnOnOnce(MmFlags.IsCowMapping(srcVma.VmFlags) && PgTable.PmdWrite(pmd), $"copy_huge_pmd: writable special PMD in COW {srcVma}");
            SetPmdAt(dstVma.VmMm, addr, dstPmd, PgTable.PmdMkold(pmd));
        }
        await srcPtl.Unlock("copy_huge_pmd");
        await dstPtl.Unlock("copy_huge_pmd");
    }

    /// <summary>copy_huge_pud(): under both PUD locks (each mm's page_table_lock, the source's
    /// nested) the parent's leaf is read again and given to the child, old. The kernel also
    /// write-protects a writable leaf of a COW mapping in both; the model's only PUD leaves are vfio
    /// BARs, which vfio_pci_core_mmap() maps VM_SHARED only, so that branch is not mirrored.</summary>
    /// <remarks>Context: fork: both mmap locks write-held; takes the destination mm's
    /// page_table_lock, then the source's nested.</remarks>
    [KernelSymbol("copy_huge_pud", "mm/huge_memory.c")]
    private async ValueTask CopyHugePud(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPud, PtPtr srcPud, ulong addr)
    {
        var dstPtl = await PudLock(dstVma.VmMm, dstPud);
        var srcPtl = PudLockptr(srcVma.VmMm, srcPud);
        await srcPtl.Lock("copy_huge_pud", subclass: 1);
        var pud = PudpGet(srcPud);
        if (PudLeaf(pud))
        {
            SetPudAt(dstVma.VmMm, addr, dstPud, PgTable.PudMkold(pud));
        }
        await srcPtl.Unlock("copy_huge_pud");
        await dstPtl.Unlock("copy_huge_pud");
    }

    /// <summary>__split_huge_pmd(): a special PMD cannot be split into PTEs of pages, so it is
    /// cleared and flushed; the range refaults at PTE granularity.</summary>
    /// <remarks>Context: mmap lock (or i_mmap_rwsem) held; takes the PMD lock.</remarks>
    [KernelSymbol("__split_huge_pmd", "mm/huge_memory.c")]
    public async ValueTask __SplitHugePmd(VmAreaStruct vma, PtPtr pmd, ulong address)
    {
        ulong haddr = address & ~(Paging.PmdSize - 1);
        var ptl = await PmdLock(vma.VmMm, pmd);
        if (PgTable.PmdLeaf(PmdpGet(pmd)))
        {
            BugOn(!VmaIsSpecialHuge(vma), $"huge PMD in {vma}, which is not a special mapping");
            PmdpHugeGetAndClear(vma.VmMm, haddr, pmd);
            FlushTlbRange(vma, haddr, haddr + Paging.PmdSize);
        }
        await ptl.Unlock("__split_huge_pmd");
    }

    /// <summary>__split_huge_pud().</summary>
    /// <remarks>Context: mmap lock (or i_mmap_rwsem) held; takes the PUD lock.</remarks>
    [KernelSymbol("__split_huge_pud", "mm/huge_memory.c")]
    public async ValueTask __SplitHugePud(VmAreaStruct vma, PtPtr pud, ulong address)
    {
        ulong haddr = address & ~(Paging.PudSize - 1);
        var ptl = await PudLock(vma.VmMm, pud);
        if (PudLeaf(PudpGet(pud)))
        {
            BugOn(!VmaIsSpecialHuge(vma), $"huge PUD in {vma}, which is not a special mapping");
            PudpHugeGetAndClear(vma.VmMm, haddr, pud);
            FlushTlbRange(vma, haddr, haddr + Paging.PudSize);
        }
        await ptl.Unlock("__split_huge_pud");
    }

    /// <summary>zap_huge_pmd(): clears a whole special PMD leaf. Returns true if one was there.</summary>
    /// <remarks>Context: as zap_pmd_range(); takes the PMD lock.</remarks>
    [KernelSymbol("zap_huge_pmd", "mm/huge_memory.c")]
    public async ValueTask<bool> ZapHugePmd(MmuGather tlb, VmAreaStruct vma, PtPtr pmd, ulong addr)
    {
        var ptl = await PmdLock(vma.VmMm, pmd);
        if (!PgTable.PmdLeaf(PmdpGet(pmd)))
        {
            await ptl.Unlock("zap_huge_pmd");
            return false;
        }
        BugOn(!VmaIsSpecialHuge(vma), $"huge PMD in {vma}, which is not a special mapping");
        PmdpHugeGetAndClear(vma.VmMm, addr, pmd);
        tlb.AdjustRange(addr, Paging.PmdSize);
        await ptl.Unlock("zap_huge_pmd");
        return true;
    }

    /// <summary>zap_huge_pud().</summary>
    /// <remarks>Context: as zap_pud_range(); takes the PUD lock.</remarks>
    [KernelSymbol("zap_huge_pud", "mm/huge_memory.c")]
    public async ValueTask<bool> ZapHugePud(MmuGather tlb, VmAreaStruct vma, PtPtr pud, ulong addr)
    {
        var ptl = await PudLock(vma.VmMm, pud);
        if (!PudLeaf(PudpGet(pud)))
        {
            await ptl.Unlock("zap_huge_pud");
            return false;
        }
        BugOn(!VmaIsSpecialHuge(vma), $"huge PUD in {vma}, which is not a special mapping");
        PudpHugeGetAndClear(vma.VmMm, addr, pud);
        tlb.AdjustRange(addr, Paging.PudSize);
        await ptl.Unlock("zap_huge_pud");
        return true;
    }
}

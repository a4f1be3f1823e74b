using static Linux.PgTable;

namespace Linux;

// mm/rmap.c: mapping_wrprotect_range() (v6.15, "mm: provide mapping_wrprotect_range()"): write-protect
// and clean every PTE that maps a range of PFNs at a range of file offsets, found through i_mmap —
// the way fbdev deferred I/O re-arms its write notification, with or without struct pages.
public sealed partial class Kernel
{
    /// <summary>
    /// mapping_wrprotect_range(): for each shared VMA of <paramref name="mapping"/> that maps
    /// [pgoff, pgoff + nrPages), write-protect and clean the PTEs that map [pfn, pfn + nrPages).
    /// Returns how many PTEs were cleaned.
    /// </summary>
    /// <remarks>
    /// Context: no PTL or mmap_lock needed. Takes i_mmap_rwsem for reading, and each VMA's PTLs
    /// under it; may sleep.
    /// </remarks>
    [KernelSymbol("mapping_wrprotect_range", "mm/rmap.c")]
    public async ValueTask<int> MappingWrprotectRange(AddressSpace mapping, ulong pgoff, ulong pfn, ulong nrPages)
    {
        int cleaned = 0;
        ulong last = pgoff + nrPages - 1;
        await mapping.IMmapRwsem.DownRead("mapping_wrprotect_range");
        Sched.Access(mapping.PagesObj, write: false);
        foreach (var vma in mapping.IMmap.ToList())
        {
            // invalid_mkclean_vma(): only shared mappings are cleaned.
            if ((vma.VmFlags & VmFlags.VM_SHARED) == 0 || vma.LastPgoff < pgoff || vma.VmPgoff > last)
            {
                continue;
            }
            cleaned += await PfnMkcleanRange(vma, pgoff, pfn, nrPages);
        }
        await mapping.IMmapRwsem.UpRead("mapping_wrprotect_range");
        return cleaned;
    }

    /// <summary>pfn_mkclean_range() → page_vma_mkclean_one(): one VMA's PTEs of the range.</summary>
    /// <remarks>
    /// Context: i_mmap_rwsem read-held (the VMA stays in i_mmap). Opens an mmu notifier range and
    /// takes and drops each PTE's PTL.
    /// </remarks>
    [KernelSymbol("pfn_mkclean_range", "mm/rmap.c")]
    private async ValueTask<int> PfnMkcleanRange(VmAreaStruct vma, ulong pgoff, ulong pfn, ulong nrPages)
    {
        var mm = vma.VmMm;
        int cleaned = 0;
        ulong first = Math.Max(pgoff, vma.VmPgoff);
        ulong end = Math.Min(pgoff + nrPages, vma.LastPgoff + 1);
        if (first >= end)
        {
            return 0;
        }
        ulong start = VmaAddress(vma, first);
        ulong stop = start + ((end - first) << PAGE_SHIFT);
        await MmuNotifierInvalidateRangeStart(mm, MmuNotifierEvent.MMU_NOTIFY_PROTECTION_PAGE, start, stop);
        for (ulong idx = first; idx < end; idx++)
        {
            ulong addr = VmaAddress(vma, idx);
            if (MmFindPmd(mm, addr) is not { } pmd || PmdNone(PmdpGet(pmd)) || PgTable.PmdLeaf(PmdpGet(pmd)))
            {
                continue;
            }
            if (await PteOffsetMapLock(mm, pmd, addr) is not { } l)
            {
                continue;
            }
            var pte = PtepGet(l.Pte);
            if (PtePresent(pte) && PtePfn(pte) == pfn + (idx - pgoff) && (PteDirty(pte) || PteWrite(pte)))
            {
                var entry = PtepClearFlush(vma, addr, l.Pte);
                entry = PteMkclean(PteWrprotect(entry));
                SetPteAt(mm, addr, l.Pte, entry);
                cleaned++;
            }
            await l.Ptl.Unlock("page_vma_mkclean_one");
        }
        await MmuNotifierInvalidateRangeEnd(mm, MmuNotifierEvent.MMU_NOTIFY_PROTECTION_PAGE, start, stop);
        return cleaned;
    }
}

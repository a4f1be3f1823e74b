using static Linux.PgTable;

namespace Linux;

/// <summary>struct zap_details: what a zap may skip.</summary>
[KernelSymbol("zap_details", "include/linux/mm.h")]
public sealed class ZapDetails
{
    /// <summary>Only zap pages of this mapping's folios (truncation).</summary>
    public Folio? SingleFolio;
    /// <summary>!even_cows: keep private COWed (anonymous) pages — page cache invalidation.</summary>
    public bool SkipCows;
    /// <summary>ZAP_FLAG_DROP_MARKER: remove PTE markers too.</summary>
    public bool DropMarkers;
}

// mm/memory.c: tearing mappings down — unmap_vmas(), zap_*_range() one function per level,
// zap_page_range_single(), zap_vma_ptes(), unmap_mapping_range(), free_pgtables().
public sealed partial class Kernel
{
    /// <summary>
    /// unmap_vmas(): zaps [start, end) of every VMA in <paramref name="vmas"/>, inside one
    /// MMU_NOTIFY_UNMAP invalidation.
    /// </summary>
    /// <remarks>Context: mmap lock held (read after munmap's downgrade); VMAs detached from the tree.</remarks>
    [KernelSymbol("unmap_vmas", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    public async ValueTask UnmapVmas(MmuGather tlb, IReadOnlyList<VmAreaStruct> vmas, ulong start, ulong end)
    {
        if (vmas.Count == 0)
        {
            return;
        }
        var mm = vmas[0].VmMm;
        // mm_wr_locked: munmap without the downgrade and mmap()'s error path hold the lock for write;
        // exit_mmap() and a downgraded munmap pass false, and hold it for read.
        bool mmWrLocked = Current is { } t && mm.MmapLock.IsWriteHeldBy(t);
        await MmuNotifierInvalidateRangeStart(mm, MmuNotifierEvent.MMU_NOTIFY_UNMAP, start, end);
        foreach (var vma in vmas)
        {
            await UnmapSingleVma(tlb, vma, start, end, null, mmWrLocked);
        }
        await MmuNotifierInvalidateRangeEnd(mm, MmuNotifierEvent.MMU_NOTIFY_UNMAP, start, end);
    }

    /// <summary>
    /// unmap_single_vma(): clamps the range to the VMA. Until v6.16 a VM_PFNMAP VMA's PAT
    /// reservation goes with any zap of it (untrack_pfn(vma, 0, 0, mm_wr_locked)); since, the
    /// reservation lives as long as the VMA (pfnmap_track_ctx).
    /// </summary>
    /// <remarks>Context: mmap lock held (write if <paramref name="mmWrLocked"/>); the caller gathers in an mmu_gather and flushes.</remarks>
    [KernelSymbol("unmap_single_vma", "mm/memory.c")]
    private async ValueTask UnmapSingleVma(MmuGather tlb, VmAreaStruct vma, ulong startAddr, ulong endAddr, ZapDetails? details, bool mmWrLocked)
    {
        ulong start = Math.Max(vma.VmStart, startAddr);
        if (start >= vma.VmEnd)
        {
            return;
        }
        ulong end = Math.Min(vma.VmEnd, endAddr);
        if (end <= vma.VmStart)
        {
            return;
        }
        if ((vma.VmFlags & VmFlags.VM_PFNMAP) != 0 && Variants.RemapPfnRangeTracking != Variants.RemapPfnTracking.PfnmapTrack)
        {
            await UntrackPfn(vma, rangeGiven: false, mmWrLocked);
        }
        if (start != end)
        {
            await UnmapPageRange(tlb, vma, start, end, details);
        }
    }

    /// <summary>unmap_page_range(): the PGD-level loop.</summary>
    /// <remarks>Context: mmap lock held (or i_mmap_rwsem for unmap_mapping_range()); no PTL held.</remarks>
    [KernelSymbol("unmap_page_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    public async ValueTask UnmapPageRange(MmuGather tlb, VmAreaStruct vma, ulong addr, ulong end, ZapDetails? details)
    {
        var mm = vma.VmMm;
        var pgd = PgdOffset(mm, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PgdirShift);
            var v = PgdpGet(pgd);
            if (!PgdNone(v) && PgdPresent(v))
            {
                await ZapP4dRange(tlb, vma, pgd, addr, next, details);
            }
            pgd = pgd with { Index = pgd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        // tlb_end_vma(): flush per VMA unless the whole mm is going.
        if (!tlb.FullMm)
        {
            TlbFlushMmu(tlb);
        }
    }

    /// <remarks>Context: as unmap_page_range().</remarks>
    [KernelSymbol("zap_p4d_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask ZapP4dRange(MmuGather tlb, VmAreaStruct vma, PtPtr pgd, ulong addr, ulong end, ZapDetails? details)
    {
        var p4d = P4dOffset(pgd, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.P4dShift);
            var v = P4dpGet(p4d);
            if (!P4dNone(v) && P4dPresent(v))
            {
                await ZapPudRange(tlb, vma, p4d, addr, next, details);
            }
            p4d = p4d with { Index = p4d.Index + 1 };
            addr = next;
        }
        while (addr != end);
    }

    /// <remarks>Context: as unmap_page_range().</remarks>
    [KernelSymbol("zap_pud_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask ZapPudRange(MmuGather tlb, VmAreaStruct vma, PtPtr p4d, ulong addr, ulong end, ZapDetails? details)
    {
        var pud = PudOffset(p4d, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PudShift);
            var v = PudpGet(pud);
            if (PudLeaf(v))
            {
                if (next - addr != Paging.PudSize)
                {
                    await __SplitHugePud(vma, pud, addr);
                }
                else if (await ZapHugePud(tlb, vma, pud, addr))
                {
                    pud = pud with { Index = pud.Index + 1 };
                    addr = next;
                    continue;
                }
            }
            v = PudpGet(pud);
            if (!PudNone(v) && PudPresent(v))
            {
                await ZapPmdRange(tlb, vma, pud, addr, next, details);
            }
            pud = pud with { Index = pud.Index + 1 };
            addr = next;
        }
        while (addr != end);
    }

    /// <remarks>Context: as unmap_page_range(); takes the PMD lock for huge leaves.</remarks>
    [KernelSymbol("zap_pmd_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask ZapPmdRange(MmuGather tlb, VmAreaStruct vma, PtPtr pud, ulong addr, ulong end, ZapDetails? details)
    {
        var pmd = PmdOffset(pud, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PmdShift);
            var v = PmdpGet(pmd);
            if (PgTable.PmdLeaf(v))
            {
                if (next - addr != Paging.PmdSize)
                {
                    await __SplitHugePmd(vma, pmd, addr);
                }
                else if (await ZapHugePmd(tlb, vma, pmd, addr))
                {
                    pmd = pmd with { Index = pmd.Index + 1 };
                    addr = next;
                    continue;
                }
            }
            if (!PmdNone(PmdpGet(pmd)))
            {
                await ZapPteRange(tlb, vma, pmd, addr, next, details);
            }
            await Sched.Point(SchedPointKind.Preempt, pmd.Obj, "zap_pmd_range");
            pmd = pmd with { Index = pmd.Index + 1 };
            addr = next;
        }
        while (addr != end);
    }

    /// <summary>
    /// zap_pte_range(): under the PTE lock, clear each entry; present pages lose their rmap now and
    /// their reference after the TLB flush (mmu_gather).
    /// </summary>
    /// <remarks>Context: as unmap_page_range(); takes and releases the PTL.</remarks>
    [KernelSymbol("zap_pte_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask ZapPteRange(MmuGather tlb, VmAreaStruct vma, PtPtr pmd, ulong addr, ulong end, ZapDetails? details)
    {
        var mm = vma.VmMm;
        if (await PteOffsetMapLock(mm, pmd, addr) is not { } l)
        {
            return;
        }
        var rss = new long[4];
        ZapPtes(tlb, vma, l.Pte, addr, end, details, rss);
        for (int i = 0; i < rss.Length; i++)
        {
            if (rss[i] != 0)
            {
                AddMmCounter(mm, (MmCounter)i, rss[i]);
            }
        }
        await l.Ptl.Unlock("zap_pte_range");
    }

    /// <summary>
    /// zap_pte_range()'s loop over the entries of [addr, end), under the PTL. It has no scheduling
    /// point, so it is a plain method: its variables stay in registers instead of the async frame
    /// (and it is not inlined into that frame, where the JIT runs out of registers).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ZapPtes(MmuGather tlb, VmAreaStruct vma, PtPtr pte, ulong addr, ulong end, ZapDetails? details, long[] rss)
    {
        for (; addr != end; addr += PAGE_SIZE, pte = pte with { Index = pte.Index + 1 })
        {
            var ptent = PtepGet(pte);
            if (PteNone(ptent))
            {
                continue;
            }
            if (PtePresent(ptent))
            {
                ZapPresentPte(tlb, vma, pte, ptent, addr, details, rss);
            }
            else
            {
                ZapNonpresentPte(tlb, vma, pte, ptent, addr, details, rss);
            }
        }
    }

    /// <summary>should_zap_cows() / should_zap_folio().</summary>
    private bool ShouldZapFolio(ZapDetails? details, Folio f) =>
        details is null || !details.SkipCows || !FolioTestAnon(f);

    /// <summary>zap_present_ptes() for one PTE.</summary>
    /// <remarks>Context: the PTL held (zap_pte_range()); does not sleep.</remarks>
    [KernelSymbol("zap_present_ptes", "mm/memory.c")]
    private void ZapPresentPte(MmuGather tlb, VmAreaStruct vma, PtPtr pte, Pte ptent, ulong addr, ZapDetails? details, long[] rss)
    {
        var mm = vma.VmMm;
        var page = VmNormalPage(vma, addr, ptent);
        if (page is not { } p)
        {
            PtepGetAndClear(mm, addr, pte);
            tlb.AdjustRange(addr, PAGE_SIZE);
            return;
        }
        var folio = new Folio(p.Pfn);
        if (!ShouldZapFolio(details, folio))
        {
            return;
        }
        ptent = PtepGetAndClear(mm, addr, pte);
        if (!FolioTestAnon(folio))
        {
            if (PteDirty(ptent))
            {
                FolioMarkDirty(folio);
            }
            rss[(int)MmCounterFile(folio)]--;
        }
        else
        {
            rss[(int)MmCounter.MM_ANONPAGES]--;
        }
        tlb.AdjustRange(addr, PAGE_SIZE);
        FolioRemoveRmapPte(folio, p, vma);
        if (MemMap.MapCount(folio.Pfn) < 0)
        {
            PrintBadPte(vma, addr, ptent, "mapcount below zero after unmap");
        }
        TlbRemoveFolio(tlb, folio);
    }

    /// <summary>zap_nonpresent_ptes() for one entry.</summary>
    /// <remarks>Context: the PTL held (zap_pte_range()); does not sleep.</remarks>
    [KernelSymbol("zap_nonpresent_ptes", "mm/memory.c")]
    private void ZapNonpresentPte(MmuGather tlb, VmAreaStruct vma, PtPtr pte, Pte ptent, ulong addr, ZapDetails? details, long[] rss)
    {
        var entry = SwapOps.PteToSwpEntry(ptent);
        if (SwapOps.IsDevicePrivateEntry(entry) || SwapOps.IsDeviceExclusiveEntry(entry))
        {
            var folio = new Folio(SwapOps.SwpOffsetPfn(entry));
            if (!ShouldZapFolio(details, folio))
            {
                return;
            }
            rss[(int)MmCounterOf(folio)]--;
            FolioRemoveRmapPte(folio, folio.Page, vma);
            FolioPut(folio);
        }
        else if (SwapOps.IsPteMarkerEntry(entry))
        {
            ulong marker = SwapOps.PteMarkerGet(entry);
            if ((marker & SwapOps.PTE_MARKER_GUARD) != 0)
            {
                if (details is null || !details.DropMarkers)
                {
                    return;
                }
            }
            else if (details is not null && details.SkipCows)
            {
                return;
            }
        }
        else if (SwapOps.IsHwpoisonEntry(entry))
        {
            if (details is not null && details.SkipCows)
            {
                return;
            }
        }
        else
        {
            WarnOnOnce(true, $"zap_nonpresent_ptes: unexpected entry {entry} at {addr:x}");
        }
        PteClear(vma.VmMm, addr, pte);
    }

    /// <summary>
    /// zap_page_range_single(): zap one VMA's range with its own mmu_gather, under
    /// MMU_NOTIFY_CLEAR.
    /// </summary>
    /// <remarks>Context: mmap lock held (read at least), or i_mmap_rwsem read-held.</remarks>
    [KernelSymbol("zap_page_range_single", "mm/memory.c")]
    public async ValueTask ZapPageRangeSingle(VmAreaStruct vma, ulong address, ulong size, ZapDetails? details)
    {
        var tlb = TlbGatherMmu(vma.VmMm);
        await ZapPageRangeSingleBatched(tlb, vma, address, size, details);
        TlbFinishMmu(tlb);
    }

    /// <summary>zap_vma_ptes(): drivers remove PTEs they installed in a VM_PFNMAP VMA.</summary>
    /// <remarks>Context: mmap lock held (read at least); for VM_PFNMAP VMAs.</remarks>
    [KernelSymbol("zap_vma_ptes", "mm/memory.c")]
    public async ValueTask ZapVmaPtes(VmAreaStruct vma, ulong address, ulong size)
    {
        if (address < vma.VmStart || address + size > vma.VmEnd || (vma.VmFlags & VmFlags.VM_PFNMAP) == 0)
        {
            return;
        }
        await ZapPageRangeSingle(vma, address, size, null);
    }

    /// <summary>
    /// unmap_mapping_pages(): zaps [start, start+nr) of the file in every VMA on i_mmap.
    /// Takes no mmap_lock: only VMAs already linked into i_mmap are found.
    /// </summary>
    /// <remarks>Context: no mmap lock needed; takes i_mmap_rwsem for read.</remarks>
    [KernelSymbol("unmap_mapping_pages", "mm/memory.c")]
    public async ValueTask UnmapMappingPages(AddressSpace mapping, ulong start, ulong nr, bool evenCows)
    {
        var details = new ZapDetails { SkipCows = !evenCows };
        ulong first = start;
        ulong last = start + nr - 1;
        if (last < first)
        {
            last = ulong.MaxValue;
        }
        await mapping.IMmapRwsem.DownRead("unmap_mapping_pages");
        Sched.Access(mapping.PagesObj, write: false);
        foreach (var vma in mapping.IMmap.ToList())
        {
            if (vma.LastPgoff < first || vma.VmPgoff > last)
            {
                continue;
            }
            ulong startIdx = Math.Max(first, vma.VmPgoff);
            ulong endIdx = Math.Min(last, vma.LastPgoff) + 1;
            ulong s = vma.VmStart + ((startIdx - vma.VmPgoff) << PAGE_SHIFT);
            ulong size = (endIdx - startIdx) << PAGE_SHIFT;
            await ZapPageRangeSingle(vma, s, size, details);
        }
        await mapping.IMmapRwsem.UpRead("unmap_mapping_pages");
    }

    /// <summary>unmap_mapping_range(): byte range, rounded out to pages; holelen 0 means to the end.</summary>
    /// <remarks>Context: may sleep; takes i_mmap_rwsem for read, then each VMA's page-table locks;
    /// no mmap lock needed or taken.</remarks>
    [KernelSymbol("unmap_mapping_range", "mm/memory.c")]
    public ValueTask UnmapMappingRange(AddressSpace mapping, long holebegin, long holelen, bool evenCows)
    {
        ulong hba = (ulong)holebegin >> PAGE_SHIFT;
        ulong hlen = ((ulong)holelen + PAGE_SIZE - 1) >> PAGE_SHIFT;
        return UnmapMappingPages(mapping, hba, hlen, evenCows);
    }

    /// <summary>
    /// free_pgtables(): unlinks each VMA from rmap (anon_vma and i_mmap), then frees the page
    /// tables of runs of nearby VMAs, bounded by the neighbours that stay.
    /// </summary>
    /// <remarks>Context: mmap lock held; the VMAs are already out of the tree.</remarks>
    [KernelSymbol("free_pgtables", "mm/memory.c")]
    public async ValueTask FreePgtables(MmuGather tlb, IReadOnlyList<VmAreaStruct> vmas, ulong floor, ulong ceiling, bool mmWrLocked)
    {
        int i = 0;
        while (i < vmas.Count)
        {
            var vma = vmas[i];
            ulong addr = vma.VmStart;
            if (mmWrLocked)
            {
                await VmaStartWrite(vma);
            }
            await UnlinkAnonVmas(vma);
            await UnlinkFileVma(vma);
            while (i + 1 < vmas.Count && vmas[i + 1].VmStart <= vma.VmEnd + Paging.PmdSize)
            {
                vma = vmas[++i];
                if (mmWrLocked)
                {
                    await VmaStartWrite(vma);
                }
                await UnlinkAnonVmas(vma);
                await UnlinkFileVma(vma);
            }
            ulong ceil = i + 1 < vmas.Count ? vmas[i + 1].VmStart : ceiling;
            FreePgdRange(tlb.Mm, addr, vma.VmEnd, floor, ceil);
            i++;
        }
    }
}

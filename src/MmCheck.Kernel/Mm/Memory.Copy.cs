using static Linux.PgTable;

namespace Linux;

// mm/memory.c: copying page tables at fork — copy_page_range() one function per level,
// copy_present_ptes() with folio_try_dup_anon_rmap_pte() and the eager copy of pinned pages.
public sealed partial class Kernel
{
    /// <summary>
    /// vma_needs_copy(): page tables are copied only where a fault could not rebuild them: PFN
    /// maps, and VMAs with anonymous pages.
    /// </summary>
    /// <remarks>Context: fork: both mmap locks write-held; reads only the two VMAs.</remarks>
    [KernelSymbol("vma_needs_copy", "mm/memory.c")]
    private static bool VmaNeedsCopy(VmAreaStruct dst, VmAreaStruct src) =>
        (dst.VmFlags & VmFlags.VM_UFFD_WP) != 0 ||
        // Guard markers cannot be refaulted: copy them (VM_MAYBE_GUARD).
        (src.VmFlags & VmFlags.VM_MAYBE_GUARD) != 0 ||
        (src.VmFlags & (VmFlags.VM_PFNMAP | VmFlags.VM_MIXEDMAP)) != 0 ||
        src.AnonVma is not null;

    /// <summary>
    /// copy_page_range(): copies the source VMA's page tables into the child's. For COW mappings
    /// the parent's writable PTEs are write-protected inside an MMU_NOTIFY_PROTECTION_PAGE
    /// invalidation and the write_protect_seq window that GUP-fast checks.
    /// </summary>
    /// <remarks>Context: both mmap locks write-held; the source VMA write-locked.</remarks>
    [KernelSymbol("copy_page_range", "mm/memory.c")]
    public async ValueTask<int> CopyPageRange(VmAreaStruct dstVma, VmAreaStruct srcVma)
    {
        if (!VmaNeedsCopy(dstVma, srcVma))
        {
            return 0;
        }
        ulong addr = srcVma.VmStart, end = srcVma.VmEnd;
        var srcMm = srcVma.VmMm;
        var dstMm = dstVma.VmMm;
        bool isCow = MmFlags.IsCowMapping(srcVma.VmFlags);
        if (isCow)
        {
            await MmuNotifierInvalidateRangeStart(srcMm, MmuNotifierEvent.MMU_NOTIFY_PROTECTION_PAGE, addr, end);
            srcVma.VmLock.AssertWriteLocked();
            srcMm.WriteProtectSeq++;
        }
        int ret = 0;
        var dstPgd = PgdOffset(dstMm, addr);
        var srcPgd = PgdOffset(srcMm, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PgdirShift);
            var v = PgdpGet(srcPgd);
            if (!PgdNone(v) && PgdPresent(v))
            {
                if (await CopyP4dRange(dstVma, srcVma, dstPgd, srcPgd, addr, next) != 0)
                {
                    ret = -Errno.ENOMEM;
                    break;
                }
            }
            dstPgd = dstPgd with { Index = dstPgd.Index + 1 };
            srcPgd = srcPgd with { Index = srcPgd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        if (isCow)
        {
            srcMm.WriteProtectSeq++;
            await MmuNotifierInvalidateRangeEnd(srcMm, MmuNotifierEvent.MMU_NOTIFY_PROTECTION_PAGE, srcVma.VmStart, end);
        }
        return ret;
    }

    /// <remarks>Context: both mmap locks write-held; the source VMA write-locked.</remarks>
    [KernelSymbol("copy_p4d_range", "mm/memory.c")]
    private async ValueTask<int> CopyP4dRange(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPgd, PtPtr srcPgd, ulong addr, ulong end)
    {
        if (await P4dAlloc(dstVma.VmMm, dstPgd, addr) is not { } dstP4d)
        {
            return -Errno.ENOMEM;
        }
        var srcP4d = P4dOffset(srcPgd, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.P4dShift);
            var v = P4dpGet(srcP4d);
            if (!P4dNone(v) && P4dPresent(v) && await CopyPudRange(dstVma, srcVma, dstP4d, srcP4d, addr, next) != 0)
            {
                return -Errno.ENOMEM;
            }
            dstP4d = dstP4d with { Index = dstP4d.Index + 1 };
            srcP4d = srcP4d with { Index = srcP4d.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <remarks>Context: both mmap locks write-held; the source VMA write-locked.</remarks>
    [KernelSymbol("copy_pud_range", "mm/memory.c")]
    private async ValueTask<int> CopyPudRange(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstP4d, PtPtr srcP4d, ulong addr, ulong end)
    {
        if (await PudAlloc(dstVma.VmMm, dstP4d, addr) is not { } dstPud)
        {
            return -Errno.ENOMEM;
        }
        var srcPud = PudOffset(srcP4d, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PudShift);
            var v = PudpGet(srcPud);
            if (PudLeaf(v))
            {
                await CopyHugePud(dstVma, srcVma, dstPud, srcPud, addr);
            }
            else if (!PudNone(v) && PudPresent(v) && await CopyPmdRange(dstVma, srcVma, dstPud, srcPud, addr, next) != 0)
            {
                return -Errno.ENOMEM;
            }
            dstPud = dstPud with { Index = dstPud.Index + 1 };
            srcPud = srcPud with { Index = srcPud.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <remarks>Context: both mmap locks write-held; the source VMA write-locked.</remarks>
    [KernelSymbol("copy_pmd_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<int> CopyPmdRange(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPud, PtPtr srcPud, ulong addr, ulong end)
    {
        if (await PmdAlloc(dstVma.VmMm, dstPud, addr) is not { } dstPmd)
        {
            return -Errno.ENOMEM;
        }
        var srcPmd = PmdOffset(srcPud, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PmdShift);
            var v = PmdpGet(srcPmd);
            if (PgTable.PmdLeaf(v))
            {
                await CopyHugePmd(dstVma, srcVma, dstPmd, srcPmd, addr, v);
            }
            else if (!PmdNone(v) && await CopyPteRange(dstVma, srcVma, dstPmd, srcPmd, addr, next) != 0)
            {
                return -Errno.ENOMEM;
            }
            dstPmd = dstPmd with { Index = dstPmd.Index + 1 };
            srcPmd = srcPmd with { Index = srcPmd.Index + 1 };
            addr = next;
        }
        while (addr != end);
        return 0;
    }

    /// <summary>
    /// copy_pte_range(): under the destination PTL and (nested) the source PTL, copy each entry.
    /// A page that must be copied eagerly needs a preallocated folio: drop both locks, allocate,
    /// and resume (-EAGAIN).
    /// </summary>
    /// <remarks>Context: both mmap locks write-held; takes the destination PTL, then the source PTL nested.</remarks>
    [KernelSymbol("copy_pte_range", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<int> CopyPteRange(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPmd, PtPtr srcPmd, ulong addr, ulong end)
    {
        var dstMm = dstVma.VmMm;
        var srcMm = srcVma.VmMm;
        Folio? prealloc = null;
        int ret;
        while (true)
        {
            ret = 0;
            var rss = new long[4];
            if (await PteAlloc(dstMm, dstPmd, addr))
            {
                return -Errno.ENOMEM;
            }
            if (await PteOffsetMapLock(dstMm, dstPmd, addr) is not { } dl)
            {
                return -Errno.ENOMEM;
            }
            var srcPtePtr = PteOffsetMap(srcPmd, addr);
            if (srcPtePtr is not { } srcPte0)
            {
                await dl.Ptl.Unlock("copy_pte_range");
                break;
            }
            var srcPtl = PteLockptr(srcMm, srcPte0.Table);
            await srcPtl.Lock("copy_pte_range", subclass: 1);
            var dstPte = dl.Pte;
            var srcPte = srcPte0;
            while (true)
            {
                // The none and present entries from addr on, up to the first non-present one.
                ulong from = addr;
                ret = CopyPtes(dstVma, srcVma, dstPte, srcPte, ref addr, end, rss, ref prealloc);
                int moved = (int)((addr - from) >> PAGE_SHIFT);
                (dstPte, srcPte) = (dstPte with { Index = dstPte.Index + moved }, srcPte with { Index = srcPte.Index + moved });
                if (ret == -Errno.EAGAIN || addr == end)
                {
                    break;
                }
                ret = await CopyNonpresentPte(dstMm, dstPte, srcPte, dstVma, srcVma, addr);
                if (ret == -Errno.EBUSY)
                {
                    break;
                }
                if (ret != 0)
                {
                    // Device-exclusive entry restored: copy the now present PTE.
                    WarnOnOnce(ret != -Errno.ENOENT, $"copy_nonpresent_pte returned {ret}");
                    ret = CopyPresentPteAndPut(dstVma, srcVma, dstPte, srcPte, PtepGet(srcPte), addr, rss, ref prealloc);
                    if (ret == -Errno.EAGAIN)
                    {
                        break;
                    }
                }
                addr += PAGE_SIZE;
                (dstPte, srcPte) = (dstPte with { Index = dstPte.Index + 1 }, srcPte with { Index = srcPte.Index + 1 });
            }
            await srcPtl.Unlock("copy_pte_range");
            for (int i = 0; i < rss.Length; i++)
            {
                if (rss[i] != 0)
                {
                    AddMmCounter(dstMm, (MmCounter)i, rss[i]);
                }
            }
            await dl.Ptl.Unlock("copy_pte_range");
            await Sched.Point(SchedPointKind.Preempt, srcPmd.Obj, "copy_pte_range");
            if (ret == -Errno.EBUSY)
            {
                break;
            }
            if (ret == -Errno.EAGAIN)
            {
                prealloc = VmaAllocFolio(srcVma, addr, zero: false);
                if (prealloc is null)
                {
                    return -Errno.ENOMEM;
                }
            }
            ret = 0;
            if (addr == end)
            {
                break;
            }
        }
        if (prealloc is { } p)
        {
            FolioPut(p);
        }
        return ret;
    }

    /// <summary>
    /// copy_pte_range()'s loop over none and present entries from <paramref name="addr"/>, under both
    /// PTLs: it stops at <paramref name="end"/>, at a non-present entry (left for the caller:
    /// copy_nonpresent_pte() may take the folio lock, a scheduling point), or on -EAGAIN, with
    /// <paramref name="addr"/> at the entry it stopped on. A plain method, so that its variables stay
    /// in registers instead of the async frame (and not inlined into it, where the JIT runs out of
    /// registers). Returns the last copy_present_ptes() result (0 if none).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int CopyPtes(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPte, PtPtr srcPte, ref ulong addr, ulong end,
        long[] rss, ref Folio? prealloc)
    {
        int ret = 0;
        ulong a = addr;
        for (; a != end; a += PAGE_SIZE, dstPte = dstPte with { Index = dstPte.Index + 1 }, srcPte = srcPte with { Index = srcPte.Index + 1 })
        {
            var ptent = PtepGet(srcPte);
            if (PteNone(ptent))
            {
                continue;
            }
            if (!PtePresent(ptent))
            {
                break;
            }
            ret = CopyPresentPteAndPut(dstVma, srcVma, dstPte, srcPte, ptent, a, rss, ref prealloc);
            if (ret == -Errno.EAGAIN)
            {
                break;
            }
        }
        addr = a;
        return ret;
    }

    /// <summary>copy_present_ptes() for one PTE, then (as copy_pte_range() does after each) the put
    /// of a preallocated folio it did not use.</summary>
    private int CopyPresentPteAndPut(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPte, PtPtr srcPte, Pte ptent, ulong addr,
        long[] rss, ref Folio? prealloc)
    {
        int ret = CopyPresentPte(dstVma, srcVma, dstPte, srcPte, ptent, addr, rss, ref prealloc);
        if (ret != -Errno.EAGAIN && prealloc is { } unused)
        {
            FolioPut(unused);
            prealloc = null;
        }
        return ret;
    }

    /// <summary>
    /// copy_present_ptes() for one PTE: special PTEs are copied as they are; an anon page is shared
    /// (losing PageAnonExclusive) unless it may be pinned, in which case the child gets a copy;
    /// a file page gains a mapping.
    /// </summary>
    /// <remarks>Context: fork: both PTLs held (the source one nested) and both mmap locks write-held; does not
    /// sleep.</remarks>
    [KernelSymbol("copy_present_ptes", "mm/memory.c")]
    private int CopyPresentPte(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPte, PtPtr srcPte, Pte pte, ulong addr,
        long[] rss, ref Folio? prealloc)
    {
        var page = VmNormalPage(srcVma, addr, pte);
        if (page is { } p)
        {
            var folio = new Folio(p.Pfn);
            FolioGet(folio);
            if (FolioTestAnon(folio))
            {
                if (FolioTryDupAnonRmapPte(folio, p, dstVma, srcVma) != 0)
                {
                    FolioPut(folio);
                    int err = CopyPresentPage(dstVma, srcVma, dstPte, srcPte, addr, rss, ref prealloc, p);
                    return err != 0 ? err : 1;
                }
                rss[(int)MmCounter.MM_ANONPAGES]++;
            }
            else
            {
                FolioDupFileRmapPte(folio, p, dstVma);
                rss[(int)MmCounterFile(folio)]++;
            }
        }
        __CopyPresentPtes(dstVma, srcVma, dstPte, srcPte, pte, addr);
        return 1;
    }

    /// <summary>
    /// __copy_present_ptes(): in a COW mapping both sides end up read-only (the parent's PTE is
    /// write-protected now, its TLB flushed when dup_mmap() finishes); the child's entry is old,
    /// and clean in a shared mapping.
    /// </summary>
    /// <remarks>Context: as copy_present_ptes().</remarks>
    [KernelSymbol("__copy_present_ptes", "mm/memory.c")]
    private void __CopyPresentPtes(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPte, PtPtr srcPte, Pte pte, ulong addr)
    {
        if (MmFlags.IsCowMapping(srcVma.VmFlags) && PteWrite(pte))
        {
            PtepSetWrprotect(srcVma.VmMm, addr, srcPte);
            pte = PteWrprotect(pte);
        }
        if ((srcVma.VmFlags & VmFlags.VM_SHARED) != 0)
        {
            pte = PteMkclean(pte);
        }
        pte = PteMkold(pte);
        if ((dstVma.VmFlags & VmFlags.VM_UFFD_WP) == 0)
        {
            pte = PteClearUffdWp(pte);
        }
        SetPteAt(dstVma.VmMm, addr, dstPte, pte);
    }

    /// <summary>
    /// copy_present_page(): the child gets its own copy of a page the parent may have pinned, so the
    /// pin keeps referring to the parent's page. -EAGAIN if no folio was preallocated.
    /// </summary>
    /// <remarks>Context: as copy_present_ptes(); the new folio was allocated beforehand, outside the locks.</remarks>
    [KernelSymbol("copy_present_page", "mm/memory.c")]
    private int CopyPresentPage(VmAreaStruct dstVma, VmAreaStruct srcVma, PtPtr dstPte, PtPtr srcPte, ulong addr,
        long[] rss, ref Folio? prealloc, Page page)
    {
        if (prealloc is not { } newFolio)
        {
            return -Errno.EAGAIN;
        }
        CopyUserHighpage(newFolio.Page, page);
        prealloc = null;
        FolioMarkUptodate(newFolio);
        FolioAddNewAnonRmap(newFolio, dstVma, addr, RmapFlags.RMAP_EXCLUSIVE);
        FolioSet(newFolio, PageFlags.PG_lru);
        rss[(int)MmCounter.MM_ANONPAGES]++;
        var pte = MkPte(newFolio.Page, dstVma.VmPageProt);
        pte = MaybeMkwrite(PteMkdirty(pte), dstVma);
        SetPteAt(dstVma.VmMm, addr, dstPte, pte);
        return 0;
    }

    /// <summary>
    /// copy_nonpresent_pte(): guard markers stay, uffd-wp markers only for uffd-wp children,
    /// device-exclusive entries are restored first (-ENOENT: copy the present PTE), hwpoison
    /// entries are copied. Returns 0, -ENOENT or -EBUSY.
    /// </summary>
    /// <remarks>Context: both PTLs held.</remarks>
    [KernelSymbol("copy_nonpresent_pte", "mm/memory.c")]
    private async ValueTask<int> CopyNonpresentPte(MmStruct dstMm, PtPtr dstPte, PtPtr srcPte,
        VmAreaStruct dstVma, VmAreaStruct srcVma, ulong addr)
    {
        var orig = PtepGet(srcPte);
        var entry = SwapOps.PteToSwpEntry(orig);
        if (SwapOps.IsDeviceExclusiveEntry(entry))
        {
            VmBugOn(!MmFlags.IsCowMapping(srcVma.VmFlags), "device-exclusive entry in a shared mapping");
            if (await TryRestoreExclusivePte(srcVma, addr, srcPte, orig))
            {
                return -Errno.ENOENT;
            }
            return -Errno.EBUSY;
        }
        if (SwapOps.IsPteMarkerEntry(entry))
        {
            ulong marker = SwapOps.PteMarkerGet(entry);
            ulong copied = marker & SwapOps.PTE_MARKER_GUARD;
            if ((dstVma.VmFlags & VmFlags.VM_UFFD_WP) != 0)
            {
                copied |= marker & SwapOps.PTE_MARKER_UFFD_WP;
            }
            copied |= marker & SwapOps.PTE_MARKER_POISONED;
            if (copied != 0)
            {
                SetPteAt(dstMm, addr, dstPte, SwapOps.MakePteMarker(copied));
            }
            return 0;
        }
        var pte = orig;
        if ((dstVma.VmFlags & VmFlags.VM_UFFD_WP) == 0)
        {
            pte = SwapOps.PteSwpClearUffdWp(pte);
        }
        SetPteAt(dstMm, addr, dstPte, pte);
        return 0;
    }

    /// <summary>try_restore_exclusive_pte(): needs the folio lock without sleeping (trylock).</summary>
    /// <remarks>Context: both PTE locks held (copy_nonpresent_pte()); does not sleep.</remarks>
    [KernelSymbol("try_restore_exclusive_pte", "mm/memory.c")]
    private async ValueTask<bool> TryRestoreExclusivePte(VmAreaStruct vma, ulong addr, PtPtr ptep, Pte orig)
    {
        var folio = new Folio(SwapOps.SwpOffsetPfn(SwapOps.PteToSwpEntry(orig)));
        if (!await FolioTrylock(folio, "try_restore_exclusive_pte"))
        {
            return false;
        }
        RestoreExclusivePte(vma, folio, folio.Page, addr, ptep, orig);
        await FolioUnlock(folio, "try_restore_exclusive_pte");
        return true;
    }
}

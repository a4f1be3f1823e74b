namespace Linux;

/// <summary>
/// The frame allocator (mm/page_alloc.c, much simplified in mechanism, not in contract): hands out
/// free RAM frames and takes them back. Fresh frames come from a bump pointer over the RAM ranges;
/// freed ones go on a LIFO list and are reused first, as the per-CPU lists do. Deterministic.
/// </summary>
/// <remarks>
/// RAM is laid out as on an x86 PC: [1 MiB, 3 GiB) and from 4 GiB upward, leaving the PCI MMIO
/// hole [3 GiB, 4 GiB) where device BARs live (pfn_valid() is false there).
/// </remarks>
[KernelSymbol("buddy allocator", "mm/page_alloc.c")]
public sealed class PageAllocator
{
    public const ulong LowRamStart = 1UL << 20;
    public const ulong PciHoleStart = 3UL << 30;
    public const ulong PciHoleEnd = 4UL << 30;

    private readonly (ulong Start, ulong End)[] _ram;   // PFN ranges [Start, End)
    private int _range;
    private ulong _bump;
    private readonly Stack<ulong> _free = new();

    public PageAllocator(ulong ramBytes)
    {
        ulong pages = ramBytes >> PgTable.PAGE_SHIFT;
        ulong lowStart = LowRamStart >> PgTable.PAGE_SHIFT;
        ulong lowEnd = Math.Min(lowStart + pages, PciHoleStart >> PgTable.PAGE_SHIFT);
        ulong rest = pages - (lowEnd - lowStart);
        _ram = rest == 0
            ? [(lowStart, lowEnd)]
            : [(lowStart, lowEnd), (PciHoleEnd >> PgTable.PAGE_SHIFT, (PciHoleEnd >> PgTable.PAGE_SHIFT) + rest)];
        _bump = _ram[0].Start;
        TotalPages = (long)pages;
    }

    public IReadOnlyList<(ulong Start, ulong End)> RamRanges => _ram;

    public ulong MaxPfn => _ram[^1].End;

    public long TotalPages { get; }

    public long FreePages => TotalPages - UsedPages;

    public long UsedPages { get; private set; }

    /// <summary>pfn_valid(): the frame is RAM and has a struct page.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool PfnValid(ulong pfn) =>
        (pfn >= _ram[0].Start && pfn < _ram[0].End) || (_ram.Length > 1 && pfn >= _ram[1].Start && pfn < _ram[1].End);

    /// <summary>Takes one free frame, or returns false when memory is exhausted.</summary>
    public bool TryAlloc(out ulong pfn)
    {
        if (_free.Count > 0)
        {
            pfn = _free.Pop();
            UsedPages++;
            return true;
        }
        while (_range < _ram.Length)
        {
            if (_bump < _ram[_range].End)
            {
                pfn = _bump++;
                UsedPages++;
                return true;
            }
            if (++_range < _ram.Length)
            {
                _bump = _ram[_range].Start;
            }
        }
        pfn = 0;
        return false;
    }

    public void Free(ulong pfn)
    {
        _free.Push(pfn);
        UsedPages--;
    }
}

// mm/page_alloc.c and the folio reference helpers of include/linux/mm.h and page_ref.h.
public sealed partial class Kernel
{
    /// <summary>pfn_valid().</summary>
    /// <remarks>Context: any; does not sleep (the RAM layout is fixed at boot).</remarks>
    [KernelSymbol("pfn_valid", "include/linux/mmzone.h")]
    public bool PfnValid(ulong pfn) => Buddy.PfnValid(pfn);

    /// <summary>is_zero_pfn().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("is_zero_pfn", "include/linux/pgtable.h")]
    public bool IsZeroPfn(ulong pfn) => pfn == ZeroPfn;

    /// <summary>my_zero_pfn().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("my_zero_pfn", "include/linux/pgtable.h")]
    public ulong MyZeroPfn(ulong addr) => ZeroPfn;

    private ulong AllocZeroPage()
    {
        if (!Buddy.TryAlloc(out ulong pfn))
        {
            throw new InvalidOperationException("model defect: no RAM for the zero page");
        }
        MemMap.Flags(pfn) = (uint)(PageFlags.PG_reserved | PageFlags.PGTY_zero | PageFlags.PG_uptodate);
        MemMap.RefCount(pfn) = 1;
        return pfn;
    }

    /// <summary>
    /// alloc_pages(gfp, 0): a frame with refcount 1, or null when out of memory. With
    /// <paramref name="zero"/> (__GFP_ZERO) its contents read as zeroes — as every frame the model
    /// frees does anyway.
    /// </summary>
    /// <remarks>Context: process context with no spinlock held, since the GFP flags its callers pass may sleep
    /// (reclaim). The model neither sleeps nor reclaims: it returns null at once when RAM runs out.</remarks>
    [KernelSymbol("alloc_pages", "mm/page_alloc.c")]
    public Page? AllocPage(bool zero = true)
    {
        Sched.Access(ObjId.Make(ObjId.Kind.Allocator, 0), write: true);
        if (!Buddy.TryAlloc(out ulong pfn))
        {
            return null;
        }
        MemMap.Flags(pfn) = 0;
        MemMap.RefCount(pfn) = 1;
        MemMap.MapCount(pfn) = 0;
        MemMap.Mapping(pfn) = 0;
        MemMap.SetIndex(pfn, 0);
        Sched.Access(ObjId.Folio(pfn), write: true);
        return new Page(pfn);
    }

    /// <summary>vma_alloc_zeroed_movable_folio() / folio_prealloc(): an order-0 folio for user memory.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock (the VMA and its mempolicy stable); may sleep, so no page-table
    /// lock held.</remarks>
    [KernelSymbol("vma_alloc_folio", "mm/mempolicy.c")]
    public Folio? VmaAllocFolio(VmAreaStruct vma, ulong addr, bool zero)
    {
        var p = AllocPage(zero);
        return p is { } page ? new Folio(page.Pfn) : null;
    }

    /// <summary>
    /// free_unref_folios() → free_pages_prepare(): the frame returns to the allocator. A frame still
    /// mapped, or still reachable through a TLB, is the kernel's "Bad page state" or worse.
    /// </summary>
    /// <remarks>Context: any; does not sleep. The last reference is gone (folio_put() or pagetable_free()) and
    /// nothing should map the frame any more.</remarks>
    [KernelSymbol("free_pages_prepare", "mm/page_alloc.c")]
    internal void FreeFrame(ulong pfn, string fn)
    {
        uint flags = MemMap.Flags(pfn);
        if ((flags & (uint)(PageFlags.PG_reserved | PageFlags.PGTY_zero)) != 0)
        {
            Violation(Invariants.RefCount, $"freeing reserved page pfn {pfn:x}", fn);
            return;
        }
        int mapcount = MemMap.MapCount(pfn);
        if (mapcount != 0)
        {
            Violation(Invariants.RefCount, $"Bad page state: freeing pfn {pfn:x} with mapcount {mapcount}", fn);
        }
        if ((flags & (uint)PageFlags.PG_locked) != 0)
        {
            Violation(Invariants.RefCount, $"Bad page state: freeing locked pfn {pfn:x}", fn);
        }
        foreach (var cpu in Cpus)
        {
            if (cpu.Tlb.MapsPfn(pfn, out ulong va, out int mmId))
            {
                Violation(Invariants.TlbCoherent,
                    $"pfn {pfn:x} freed while cpu{cpu.Id}'s TLB still maps it at {va:x} (mm#{mmId}): no flush before free", fn);
            }
        }
        if ((flags & (uint)PageFlags.ModelHasContent) != 0)
        {
            Mem.ClearFrame(pfn);
        }
        MemMap.Flags(pfn) = (uint)PageFlags.PGTY_buddy;
        MemMap.Mapping(pfn) = 0;
        MemMap.SetIndex(pfn, 0);
        Sched.Access(ObjId.Folio(pfn), write: true);
        Sched.Access(ObjId.Make(ObjId.Kind.Allocator, 0), write: true);
        Buddy.Free(pfn);
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new NoteEffect($"pfn {pfn:x} freed"));
        }
    }

    /// <summary>Whether a RAM frame is free (in the allocator).</summary>
    public bool PageIsFree(ulong pfn) => (MemMap.PeekFlags(pfn) & (uint)PageFlags.PGTY_buddy) != 0;

    // ---- folio reference counting (include/linux/mm.h, page_ref.h) ----

    /// <remarks>Context: any; a racy snapshot unless the caller keeps new references out.</remarks>
    [KernelSymbol("folio_ref_count", "include/linux/page_ref.h")]
    public int FolioRefCount(Folio f)
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: false);
        return MemMap.RefCount(f.Pfn);
    }

    /// <remarks>Context: any; does not sleep. The caller already owns a reference, or holds the PTL of an entry that
    /// maps the folio.</remarks>
    [KernelSymbol("folio_ref_add", "include/linux/page_ref.h")]
    public void FolioRefAdd(Folio f, int n, [CallerMemberName] string fn = "")
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: true);
        ref int rc = ref MemMap.RefCount(f.Pfn);
        int old = rc;
        if (old <= 0)
        {
            Violation(Invariants.UseAfterFree, $"folio_ref_add on free pfn {f.Pfn:x} (refcount {old})", fn);
        }
        rc = old + n;
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new FolioCountEffect(f.Pfn, "refcount", old, rc));
        }
    }

    /// <summary>folio_get().</summary>
    /// <remarks>Context: as folio_ref_add().</remarks>
    [KernelSymbol("folio_get", "include/linux/mm.h")]
    public void FolioGet(Folio f, [CallerMemberName] string fn = "") => FolioRefAdd(f, 1, fn);

    /// <summary>folio_try_get(): takes a reference unless the count is already zero.</summary>
    /// <remarks>Context: any; does not sleep. The speculative get of lockless lookups (page cache, GUP-fast), which
    /// recheck the folio after it.</remarks>
    [KernelSymbol("folio_try_get", "include/linux/page_ref.h")]
    public bool FolioTryGet(Folio f)
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: true);
        ref int rc = ref MemMap.RefCount(f.Pfn);
        if (rc <= 0)
        {
            return false;
        }
        rc++;
        return true;
    }

    /// <summary>folio_put(): drops a reference, freeing the folio at zero.</summary>
    /// <remarks>Context: any; does not sleep. Dropping the last reference frees the folio.</remarks>
    [KernelSymbol("folio_put", "include/linux/mm.h")]
    public void FolioPut(Folio f, [CallerMemberName] string fn = "") => FolioPutRefs(f, 1, fn);

    /// <summary>folio_put_refs().</summary>
    /// <remarks>Context: any; does not sleep. Dropping the last reference frees the folio.</remarks>
    [KernelSymbol("folio_put_refs", "include/linux/mm.h")]
    public void FolioPutRefs(Folio f, int refs, [CallerMemberName] string fn = "")
    {
        ulong pfn = f.Pfn;
        if (IsZeroPfn(pfn))
        {
            return;
        }
        Sched.Access(ObjId.Folio(pfn), write: true);
        ref int rc = ref MemMap.RefCount(pfn);
        int old = rc;
        rc = old - refs;
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new FolioCountEffect(pfn, "refcount", old, rc));
        }
        if (rc < 0)
        {
            Violation(Invariants.RefCount, $"refcount of pfn {pfn:x} went negative ({old} - {refs})", fn);
            rc = 0;
            return;
        }
        if (rc == 0)
        {
            FreeFrame(pfn, fn);
        }
    }

    /// <remarks>Context: as folio_ref_count().</remarks>
    [KernelSymbol("page_ref_count", "include/linux/page_ref.h")]
    public int PageRefCount(Page p) => FolioRefCount(new Folio(p.Pfn));

    /// <remarks>Context: as folio_get().</remarks>
    [KernelSymbol("get_page", "include/linux/mm.h")]
    public void GetPage(Page p, [CallerMemberName] string fn = "") => FolioGet(new Folio(p.Pfn), fn);

    /// <remarks>Context: as folio_put().</remarks>
    [KernelSymbol("put_page", "include/linux/mm.h")]
    public void PutPage(Page p, [CallerMemberName] string fn = "") => FolioPut(new Folio(p.Pfn), fn);

    // ---- flags ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool FolioTest(Folio f, PageFlags flag)
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: false);
        return (MemMap.Flags(f.Pfn) & (uint)flag) != 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void FolioSet(Folio f, PageFlags flag)
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: true);
        MemMap.Flags(f.Pfn) |= (uint)flag;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void FolioClear(Folio f, PageFlags flag)
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: true);
        MemMap.Flags(f.Pfn) &= ~(uint)flag;
    }

    /// <remarks>Context: any; stable while the caller holds a reference (an anon folio stays anon until it is
    /// freed).</remarks>
    [KernelSymbol("folio_test_anon", "include/linux/page-flags.h")]
    public bool FolioTestAnon(Folio f) => FolioTest(f, PageFlags.PAGE_MAPPING_ANON);

    /// <remarks>Context: any; a snapshot unless the folio lock is held.</remarks>
    [KernelSymbol("folio_test_swapcache", "include/linux/page-flags.h")]
    public bool FolioTestSwapcache(Folio f) => FolioTest(f, PageFlags.PG_swapcache);

    /// <summary>folio_test_locked(): whether PG_locked is set.</summary>
    /// <remarks>Context: any; a snapshot unless the caller holds the folio lock itself.</remarks>
    [KernelSymbol("folio_test_locked", "include/linux/page-flags.h")]
    public bool FolioTestLocked(Folio f) => FolioTest(f, PageFlags.PG_locked);

    /// <remarks>Context: any; a snapshot: the bit can be set concurrently.</remarks>
    [KernelSymbol("folio_test_dirty", "include/linux/page-flags.h")]
    public bool FolioTestDirty(Folio f) => FolioTest(f, PageFlags.PG_dirty);

    /// <remarks>Context: the folio lock held, or (zap_pte_range(), follow_page_pte()) the folio mapped and the PTL
    /// held, which keeps truncation away as well.</remarks>
    [KernelSymbol("folio_mark_dirty", "mm/page-writeback.c")]
    public void FolioMarkDirty(Folio f) => FolioSet(f, PageFlags.PG_dirty);

    /// <remarks>Context: the folio is new and not yet visible to anyone else (this is the non-atomic variant); no
    /// lock.</remarks>
    [KernelSymbol("__folio_mark_uptodate", "include/linux/page-flags.h")]
    public void FolioMarkUptodate(Folio f) => FolioSet(f, PageFlags.PG_uptodate);

    /// <remarks>Context: the PTL of an entry that maps the page (or the folio lock) for a stable answer; does not
    /// sleep.</remarks>
    [KernelSymbol("PageAnonExclusive", "include/linux/page-flags.h")]
    public bool PageAnonExclusive(Page p) => FolioTest(new Folio(p.Pfn), PageFlags.PG_anon_exclusive);

    /// <remarks>Context: the PTL of an entry that maps the page held, or the folio new and not yet mapped.</remarks>
    [KernelSymbol("SetPageAnonExclusive", "include/linux/page-flags.h")]
    public void SetPageAnonExclusive(Page p) => FolioSet(new Folio(p.Pfn), PageFlags.PG_anon_exclusive);

    /// <remarks>Context: the PTL of an entry that maps the page held, with no GUP-fast pin able to start meanwhile
    /// (fork: the source PTL held and write_protect_seq raised).</remarks>
    [KernelSymbol("ClearPageAnonExclusive", "include/linux/page-flags.h")]
    public void ClearPageAnonExclusive(Page p) => FolioClear(new Folio(p.Pfn), PageFlags.PG_anon_exclusive);

    /// <summary>folio_mapcount().</summary>
    /// <remarks>Context: any; a snapshot (other mappings change it under their own PTLs).</remarks>
    [KernelSymbol("folio_mapcount", "include/linux/mm.h")]
    public int FolioMapcount(Folio f)
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: false);
        return MemMap.MapCount(f.Pfn);
    }

    /// <summary>folio_mapped().</summary>
    /// <remarks>Context: as folio_mapcount().</remarks>
    [KernelSymbol("folio_mapped", "include/linux/mm.h")]
    public bool FolioMapped(Folio f) => FolioMapcount(f) > 0;

    /// <summary>folio_maybe_dma_pinned(): for small folios, refcount ≥ GUP_PIN_COUNTING_BIAS.</summary>
    /// <remarks>Context: any; a hint that may be stale, exact only where no new pin can start (fork: the source PTL
    /// held and write_protect_seq raised).</remarks>
    [KernelSymbol("folio_maybe_dma_pinned", "include/linux/mm.h")]
    public bool FolioMaybeDmaPinned(Folio f) => FolioRefCount(f) >= GUP_PIN_COUNTING_BIAS;

    /// <summary>GUP_PIN_COUNTING_BIAS: a FOLL_PIN adds this to the refcount of a small folio.</summary>
    public const int GUP_PIN_COUNTING_BIAS = 1 << 10;

    /// <summary>folio_needs_cow_for_dma(): fork must copy rather than share a possibly pinned page.</summary>
    /// <remarks>Context: fork: both mmap locks write-held, the source PTL held and the source mm's write_protect_seq
    /// raised.</remarks>
    [KernelSymbol("folio_needs_cow_for_dma", "include/linux/mm.h")]
    public bool FolioNeedsCowForDma(VmAreaStruct vma, Folio f)
    {
        if (!MmFlags.IsCowMapping(vma.VmFlags))
        {
            return false;
        }
        if ((vma.VmMm.Flags & MmStruct.MMF_HAS_PINNED) == 0)
        {
            return false;
        }
        return FolioMaybeDmaPinned(f);
    }

    /// <summary>The anon_vma or address_space a folio belongs to (folio->mapping).</summary>
    public object? FolioMappingObject(Folio f)
    {
        int h = MemMap.Mapping(f.Pfn);
        return h == 0 ? null : Handles.Get(h);
    }

    /// <summary>folio_anon_vma().</summary>
    /// <remarks>Context: any; the result is usable only while something keeps the anon_vma alive (a mapping held
    /// stable by a PTL, the mmap lock or an rmap lock, or a reference from folio_get_anon_vma()).</remarks>
    [KernelSymbol("folio_anon_vma", "mm/util.c")]
    public AnonVma? FolioAnonVma(Folio f) => FolioTestAnon(f) ? FolioMappingObject(f) as AnonVma : null;

    /// <summary>folio->index.</summary>
    public ulong FolioIndex(Folio f) => MemMap.GetIndex(f.Pfn);
}

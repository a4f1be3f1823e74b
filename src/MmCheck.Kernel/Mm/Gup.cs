using static Linux.Foll;
using static Linux.PgTable;
using static Linux.VmFault;

namespace Linux;

// mm/gup.c: get_user_pages and friends — the slow path under the mmap lock, pinning
// (FOLL_PIN with GUP_PIN_COUNTING_BIAS), unshare-on-pin, and the lockless GUP-fast walk.
public sealed partial class Kernel
{
    /// <summary>
    /// check_vma_flags(): what GUP refuses — VM_IO/VM_PFNMAP, writes without VM_WRITE unless forced
    /// into a COW mapping, long-term writable pins of dirty-tracked file mappings, reads without
    /// VM_READ unless forced.
    /// </summary>
    /// <remarks>Context: mmap_lock read-held (or the VMA otherwise stable).</remarks>
    [KernelSymbol("check_vma_flags", "mm/gup.c")]
    public int CheckVmaFlags(VmAreaStruct vma, Foll gupFlags)
    {
        var vmFlags = vma.VmFlags;
        bool write = (gupFlags & FOLL_WRITE) != 0;
        bool vmaAnon = vma.IsAnonymous;
        if ((vmFlags & (VmFlags.VM_IO | VmFlags.VM_PFNMAP)) != 0)
        {
            return -Errno.EFAULT;
        }
        if ((gupFlags & FOLL_ANON) != 0 && !vmaAnon)
        {
            return -Errno.EFAULT;
        }
        if (write)
        {
            if (!vmaAnon && !WritableFileMappingAllowed(vma, gupFlags))
            {
                return -Errno.EFAULT;
            }
            if ((vmFlags & VmFlags.VM_WRITE) == 0)
            {
                if ((gupFlags & FOLL_FORCE) == 0)
                {
                    return -Errno.EFAULT;
                }
                if (!MmFlags.IsCowMapping(vmFlags))
                {
                    return -Errno.EFAULT;
                }
            }
        }
        else if ((vmFlags & VmFlags.VM_READ) == 0)
        {
            if ((gupFlags & FOLL_FORCE) == 0 || (vmFlags & VmFlags.VM_MAYREAD) == 0)
            {
                return -Errno.EFAULT;
            }
        }
        return 0;
    }

    /// <summary>writable_file_mapping_allowed(): only FOLL_PIN|FOLL_LONGTERM of a dirty-tracked mapping is refused.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock held).</remarks>
    [KernelSymbol("writable_file_mapping_allowed", "mm/gup.c")]
    private bool WritableFileMappingAllowed(VmAreaStruct vma, Foll gupFlags)
    {
        if ((gupFlags & (FOLL_PIN | FOLL_LONGTERM)) != (FOLL_PIN | FOLL_LONGTERM))
        {
            return true;
        }
        return !VmaNeedsDirtyTracking(vma);
    }

    /// <summary>vma_needs_dirty_tracking(): shared writable and the backer tracks dirty pages.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock held, or write-locked by mprotect/mmap).</remarks>
    [KernelSymbol("vma_needs_dirty_tracking", "mm/mmap.c")]
    public bool VmaNeedsDirtyTracking(VmAreaStruct vma)
    {
        if ((vma.VmFlags & (VmFlags.VM_WRITE | VmFlags.VM_SHARED)) != (VmFlags.VM_WRITE | VmFlags.VM_SHARED))
        {
            return false;
        }
        if (vma.VmOps?.PageMkwrite is not null)
        {
            return true;
        }
        return vma.VmFile is { } f && f.FMapping.CanWriteback;
    }

    /// <summary>
    /// gup_must_unshare(): a read-only pin of an anon page that is not exclusive must first unshare
    /// it (FAULT_FLAG_UNSHARE), so the pin cannot end up on a page a later COW replaces.
    /// </summary>
    /// <remarks>
    /// Context: under the PTL that maps the page (or in the lockless fast path); looks at
    /// PageAnonExclusive.
    /// </remarks>
    [KernelSymbol("gup_must_unshare", "mm/internal.h")]
    public bool GupMustUnshare(VmAreaStruct? vma, Foll flags, Page page)
    {
        if ((flags & (FOLL_WRITE | FOLL_PIN)) != FOLL_PIN)
        {
            return false;
        }
        var folio = new Folio(page.Pfn);
        if (!FolioTestAnon(folio))
        {
            if ((flags & FOLL_LONGTERM) == 0)
            {
                return false;
            }
            return vma is null || MmFlags.IsCowMapping(vma.VmFlags);
        }
        if (Variants.DoWpPageReuse != Variants.WpReuseRule.AnonExclusive)
        {
            // Before PageAnonExclusive there was no unsharing: R/O pins could go stale (CVE-2020-29374).
            return false;
        }
        return !PageAnonExclusive(page);
    }

    /// <summary>can_follow_write_pte(): may GUP write through this PTE without a write fault?</summary>
    /// <remarks>Context: under the PTL that maps the page.</remarks>
    [KernelSymbol("can_follow_write_pte", "mm/gup.c")]
    private bool CanFollowWritePte(Pte pte, Page? page, VmAreaStruct vma, Foll flags)
    {
        if (PteWrite(pte))
        {
            return true;
        }
        if ((flags & FOLL_FORCE) == 0)
        {
            return false;
        }
        var vf = vma.VmFlags;
        if ((vf & (VmFlags.VM_MAYSHARE | VmFlags.VM_SHARED)) != 0 || (vf & VmFlags.VM_MAYWRITE) == 0 || (vf & VmFlags.VM_WRITE) != 0)
        {
            return false;
        }
        if (page is not { } p || !FolioTestAnon(new Folio(p.Pfn)) || !PageAnonExclusive(p))
        {
            return false;
        }
        return !PteUffdWp(pte);
    }

    /// <summary>
    /// try_grab_folio(): FOLL_GET takes a reference, FOLL_PIN takes GUP_PIN_COUNTING_BIAS of them
    /// (none on the zero page, which never goes away).
    /// </summary>
    /// <remarks>
    /// Context: under the PTL that maps the folio (or the lockless fast path, which rechecks): the
    /// folio cannot be freed meanwhile. Does not sleep.
    /// </remarks>
    [KernelSymbol("try_grab_folio", "mm/gup.c")]
    public int TryGrabFolio(Folio folio, int refs, Foll flags)
    {
        if (MemMap.RefCount(folio.Pfn) <= 0)
        {
            return -Errno.ENOMEM;
        }
        if ((flags & FOLL_GET) != 0)
        {
            FolioRefAdd(folio, refs);
        }
        else if ((flags & FOLL_PIN) != 0)
        {
            if (IsZeroPfn(folio.Pfn))
            {
                return 0;
            }
            FolioRefAdd(folio, refs * GUP_PIN_COUNTING_BIAS);
        }
        return 0;
    }

    /// <summary>gup_put_folio(): drops what try_grab_folio() took.</summary>
    /// <remarks>Context: any; does not sleep. Dropping the last reference frees the folio.</remarks>
    [KernelSymbol("gup_put_folio", "mm/gup.c")]
    public void GupPutFolio(Folio folio, int refs, Foll flags)
    {
        if ((flags & FOLL_PIN) != 0)
        {
            if (IsZeroPfn(folio.Pfn))
            {
                return;
            }
            FolioPutRefs(folio, refs * GUP_PIN_COUNTING_BIAS);
        }
        else
        {
            FolioPutRefs(folio, refs);
        }
    }

    /// <summary>unpin_user_page().</summary>
    /// <remarks>Context: any; no locks needed. Does not sleep.</remarks>
    [KernelSymbol("unpin_user_page", "mm/gup.c")]
    public void UnpinUserPage(Page page) => GupPutFolio(new Folio(page.Pfn), 1, FOLL_PIN);

    /// <summary>What follow_page_mask() found.</summary>
    private enum FollowResult { Page, NoPage, Unshare, NoStructPage, Error }

    /// <summary>
    /// follow_page_mask() down to follow_page_pte(): the page mapped at <paramref name="address"/>
    /// with the reference GUP wants, or why there is none.
    /// </summary>
    /// <remarks>Context: mmap read lock held; takes and releases the PTL.</remarks>
    [KernelSymbol("follow_page_pte", "mm/gup.c")]
    private async ValueTask<(FollowResult Kind, Page Page, int Err)> FollowPageMask(VmAreaStruct vma, ulong address, Foll flags)
    {
        var mm = vma.VmMm;
        if (MmFindPmd(mm, address) is not { } pmd)
        {
            return (FollowResult.NoPage, default, 0);
        }
        if (PgTable.PmdLeaf(PmdpGet(pmd)))
        {
            // Huge leaves in the model are special PFN maps, which check_vma_flags() refused.
            return (FollowResult.Error, default, -Errno.EFAULT);
        }
        if (await PteOffsetMapLock(mm, pmd, address) is not { } l)
        {
            return (FollowResult.NoPage, default, 0);
        }
        // No try/finally: a BUG or oops under the PTL leaves it held, as in the kernel.
        var r = FollowPagePteLocked(vma, address, flags, PtepGet(l.Pte));
        await l.Ptl.Unlock("follow_page_pte");
        return r;
    }

    /// <summary>follow_page_pte() between pte_offset_map_lock() and its unlock.</summary>
    /// <remarks>Context: mmap read lock and the PTE table's PTL held.</remarks>
    private (FollowResult Kind, Page Page, int Err) FollowPagePteLocked(VmAreaStruct vma, ulong address, Foll flags, Pte pte)
    {
        if (!PtePresent(pte) || PteProtnone(pte))
        {
            return (FollowResult.NoPage, default, 0);
        }
        var page = VmNormalPage(vma, address, pte);
        if ((flags & FOLL_WRITE) != 0 && !CanFollowWritePte(pte, page, vma, flags))
        {
            return (FollowResult.NoPage, default, 0);
        }
        if (page is null)
        {
            if (IsZeroPfn(PtePfn(pte)))
            {
                page = new Page(PtePfn(pte));
            }
            else
            {
                return (FollowResult.NoStructPage, default, -Errno.EEXIST);
            }
        }
        var p = page.Value;
        if (!PteWrite(pte) && GupMustUnshare(vma, flags, p))
        {
            return (FollowResult.Unshare, default, 0);
        }
        int ret = TryGrabFolio(new Folio(p.Pfn), 1, flags);
        if (ret != 0)
        {
            return (FollowResult.Error, default, ret);
        }
        if ((flags & FOLL_TOUCH) != 0 && (flags & FOLL_WRITE) != 0 && !PteDirty(pte) && !FolioTestDirty(new Folio(p.Pfn)))
        {
            FolioMarkDirty(new Folio(p.Pfn));
        }
        return (FollowResult.Page, p, 0);
    }

    /// <summary>
    /// faultin_page(): a fault on behalf of GUP. -EBUSY when the fault dropped the mmap lock,
    /// -EAGAIN when it completed without it, else 0 or the errno of the fault.
    /// </summary>
    /// <remarks>Context: mmap read lock held; the fault may drop it (reported back as not locked).</remarks>
    [KernelSymbol("faultin_page", "mm/gup.c")]
    private async ValueTask<(int Ret, bool Locked)> FaultinPage(VmAreaStruct vma, ulong address, Foll flags, bool unshare)
    {
        var faultFlags = FaultFlag.None;
        if ((flags & FOLL_NOFAULT) != 0)
        {
            return (-Errno.EFAULT, true);
        }
        if ((flags & FOLL_WRITE) != 0)
        {
            faultFlags |= FaultFlag.FAULT_FLAG_WRITE;
        }
        if ((flags & FOLL_REMOTE) != 0)
        {
            faultFlags |= FaultFlag.FAULT_FLAG_REMOTE;
        }
        if ((flags & FOLL_UNLOCKABLE) != 0)
        {
            faultFlags |= FaultFlag.FAULT_FLAG_ALLOW_RETRY | FaultFlag.FAULT_FLAG_KILLABLE;
        }
        if ((flags & FOLL_TRIED) != 0)
        {
            faultFlags |= FaultFlag.FAULT_FLAG_TRIED;
        }
        if (unshare)
        {
            faultFlags |= FaultFlag.FAULT_FLAG_UNSHARE;
        }
        var ret = await HandleMmFault(vma, address, faultFlags);
        if ((ret & VM_FAULT_COMPLETED) != 0)
        {
            return (-Errno.EAGAIN, false);
        }
        if ((ret & VM_FAULT_ERROR) != 0)
        {
            int err = VmFaultToErrno(ret, flags);
            BugOn(err == 0, $"faultin_page: fault error {ret} without an errno");
            return (err, true);
        }
        if ((ret & VM_FAULT_RETRY) != 0)
        {
            return (-Errno.EBUSY, false);
        }
        return (0, true);
    }

    /// <summary>vm_fault_to_errno().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vm_fault_to_errno", "include/linux/mm.h")]
    public static int VmFaultToErrno(VmFault f, Foll flags)
    {
        if ((f & VM_FAULT_OOM) != 0)
        {
            return -Errno.ENOMEM;
        }
        if ((f & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) != 0)
        {
            return (flags & FOLL_HWPOISON) != 0 ? -Errno.EHWPOISON : -Errno.EFAULT;
        }
        if ((f & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)) != 0)
        {
            return -Errno.EFAULT;
        }
        return 0;
    }

    /// <summary>
    /// __get_user_pages(): walks [start, start + n pages) faulting pages in as needed; returns the
    /// number of pages done (or an -errno if none) and whether the mmap lock is still held.
    /// </summary>
    /// <remarks>Context: mmap read lock held on entry; it may be dropped with FOLL_UNLOCKABLE.</remarks>
    [KernelSymbol("__get_user_pages", "mm/gup.c")]
    public async ValueTask<(long Ret, bool Locked)> __GetUserPages(MmStruct mm, ulong start, long nrPages, Foll gupFlags, List<Page>? pages)
    {
        long i = 0;
        int ret = 0;
        VmAreaStruct? vma = null;
        while (nrPages > 0)
        {
            if (vma is null || start >= vma.VmEnd)
            {
                if ((gupFlags & FOLL_MADV_POPULATE) != 0)
                {
                    vma = mm.MmMt.VmaLookup(start);
                    if (vma is null)
                    {
                        ret = -Errno.ENOMEM;
                        break;
                    }
                    if (CheckVmaFlags(vma, gupFlags) != 0)
                    {
                        ret = -Errno.EINVAL;
                        break;
                    }
                }
                else
                {
                    vma = mm.MmMt.VmaLookup(start);
                    if (vma is null)
                    {
                        ret = -Errno.EFAULT;
                        break;
                    }
                    ret = CheckVmaFlags(vma, gupFlags);
                    if (ret != 0)
                    {
                        break;
                    }
                }
            }
            await Sched.Point(SchedPointKind.Preempt, mm.MmMt.Obj, "__get_user_pages");
            var (kind, page, err) = await FollowPageMask(vma, start, gupFlags);
            if (kind is FollowResult.NoPage or FollowResult.Unshare)
            {
                var (fr, locked) = await FaultinPage(vma, start, gupFlags, kind == FollowResult.Unshare);
                if (fr == 0)
                {
                    continue;
                }
                if (fr is -Errno.EBUSY or -Errno.EAGAIN)
                {
                    return (i, locked);
                }
                ret = fr;
                break;
            }
            if (kind == FollowResult.NoStructPage)
            {
                if (pages is not null)
                {
                    ret = err;
                    break;
                }
            }
            else if (kind == FollowResult.Error)
            {
                ret = err;
                break;
            }
            else
            {
                pages?.Add(page);
            }
            i++;
            start += PAGE_SIZE;
            nrPages--;
        }
        return (i != 0 ? i : ret, true);
    }

    /// <summary>
    /// __get_user_pages_locked(): keeps calling __get_user_pages(), retaking the mmap read lock
    /// when a fault dropped it (FOLL_TRIED on the retry).
    /// </summary>
    /// <remarks>Context: takes the mmap read lock itself when asked to, else holds it; it may be dropped and retaken across retries.</remarks>
    [KernelSymbol("__get_user_pages_locked", "mm/gup.c")]
    private async ValueTask<long> __GetUserPagesLocked(MmStruct mm, ulong start, long nrPages, Foll flags, List<Page>? pages, bool takeLock)
    {
        if ((flags & FOLL_PIN) != 0)
        {
            mm.Flags |= MmStruct.MMF_HAS_PINNED;
        }
        if (takeLock)
        {
            await MmapReadLock(mm, "__get_user_pages_locked");
        }
        long done = 0;
        flags |= FOLL_UNLOCKABLE;
        while (true)
        {
            var (ret, locked) = await __GetUserPages(mm, start, nrPages, flags, pages);
            if (locked)
            {
                done = ret < 0 && done != 0 ? done : ret < 0 ? ret : done + ret;
                break;
            }
            if (ret > 0)
            {
                done += ret;
                nrPages -= ret;
                start += (ulong)ret << PAGE_SHIFT;
            }
            if (nrPages == 0)
            {
                return done;
            }
            await MmapReadLock(mm, "__get_user_pages_locked");
            flags |= FOLL_TRIED;
        }
        await MmapReadUnlock(mm, "__get_user_pages_locked");
        return done;
    }

    /// <summary>pin_user_pages_unlocked(): takes the mmap read lock itself.</summary>
    /// <remarks>Context: no mmap lock held; takes it.</remarks>
    [KernelSymbol("pin_user_pages_unlocked", "mm/gup.c")]
    public async ValueTask<long> PinUserPagesUnlocked(ulong start, long nrPages, List<Page> pages, Foll gupFlags)
    {
        var mm = Current!.Mm!;
        return await __GetUserPagesLocked(mm, start, nrPages, gupFlags | FOLL_PIN | FOLL_TOUCH, pages, takeLock: true);
    }

    /// <summary>get_user_pages_unlocked().</summary>
    /// <remarks>Context: no mmap lock held; takes it.</remarks>
    [KernelSymbol("get_user_pages_unlocked", "mm/gup.c")]
    public async ValueTask<long> GetUserPagesUnlocked(ulong start, long nrPages, List<Page> pages, Foll gupFlags)
    {
        var mm = Current!.Mm!;
        return await __GetUserPagesLocked(mm, start, nrPages, gupFlags | FOLL_GET | FOLL_TOUCH, pages, takeLock: true);
    }

    /// <summary>
    /// pin_user_pages_fast(): GUP-fast first (no locks, interrupts off), then the slow path for
    /// whatever it could not pin. Returns the number pinned or an -errno.
    /// </summary>
    /// <remarks>Context: no locks held; a lockless walk first, then the slow path under the mmap read lock.</remarks>
    [KernelSymbol("pin_user_pages_fast", "mm/gup.c")]
    public async ValueTask<long> PinUserPagesFast(ulong start, long nrPages, Foll gupFlags, List<Page> pages) =>
        await InternalGetUserPagesFast(start, nrPages, gupFlags | FOLL_PIN, pages);

    /// <summary>get_user_pages_fast().</summary>
    /// <remarks>Context: no locks held; a lockless walk first, then the slow path under the mmap read lock.</remarks>
    [KernelSymbol("get_user_pages_fast", "mm/gup.c")]
    public async ValueTask<long> GetUserPagesFast(ulong start, long nrPages, Foll gupFlags, List<Page> pages) =>
        await InternalGetUserPagesFast(start, nrPages, gupFlags | FOLL_GET, pages);

    /// <remarks>Context: no locks held; a lockless walk first, then the slow path under the mmap read lock.</remarks>
    [KernelSymbol("internal_get_user_pages_fast", "mm/gup.c")]
    private async ValueTask<long> InternalGetUserPagesFast(ulong start, long nrPages, Foll gupFlags, List<Page> pages)
    {
        var mm = Current!.Mm!;
        if ((gupFlags & FOLL_PIN) != 0)
        {
            mm.Flags |= MmStruct.MMF_HAS_PINNED;
        }
        ulong len = (ulong)nrPages << PAGE_SHIFT;
        if (start + len < start || start + len > Paging.TaskSize)
        {
            return -Errno.EFAULT;
        }
        long nrPinned = await GupFast(mm, start, nrPages, gupFlags, pages);
        if (nrPinned == nrPages)
        {
            return nrPinned;
        }
        long ret = await __GetUserPagesLocked(mm, start + ((ulong)nrPinned << PAGE_SHIFT), nrPages - nrPinned,
            gupFlags | FOLL_TOUCH, pages, takeLock: true);
        if (ret < 0)
        {
            return nrPinned != 0 ? nrPinned : ret;
        }
        return nrPinned + ret;
    }

    /// <summary>
    /// gup_fast(): a lockless walk of the page tables (the caller would have interrupts off, which
    /// holds off page-table freeing). It gives up on anything unusual: special or non-present
    /// PTEs, a write to a read-only PTE, a page that must be unshared, or a concurrent fork
    /// (write_protect_seq) for FOLL_PIN.
    /// </summary>
    /// <remarks>Context: no locks held (interrupts off in the kernel): a lockless walk that rechecks every entry.</remarks>
    [KernelSymbol("gup_fast", "mm/gup.c")]
    private async ValueTask<long> GupFast(MmStruct mm, ulong start, long nrPages, Foll gupFlags, List<Page> pages)
    {
        long seq = 0;
        if ((gupFlags & FOLL_PIN) != 0)
        {
            seq = mm.WriteProtectSeq;
            if ((seq & 1) != 0)
            {
                return 0;
            }
        }
        long nr = 0;
        ulong addr = start;
        int firstIndex = pages.Count;
        for (; nr < nrPages; nr++, addr += PAGE_SIZE)
        {
            await Sched.Point(SchedPointKind.GupFast, ObjId.Make(ObjId.Kind.VmaTree, (ulong)mm.Id), "gup_fast_pte_range");
            if (WalkPte(mm, addr) is not { } ptep)
            {
                break;
            }
            var pte = PtepGet(ptep);
            if (!PtePresent(pte) || PteProtnone(pte) || PteSpecial(pte))
            {
                break;
            }
            if ((gupFlags & FOLL_WRITE) != 0 && !PteWrite(pte))
            {
                break;
            }
            var page = new Page(PtePfn(pte));
            var folio = new Folio(page.Pfn);
            if (!PfnValid(page.Pfn) || TryGrabFolio(folio, 1, gupFlags) != 0)
            {
                break;
            }
            if (PtepGet(ptep) != pte)
            {
                GupPutFolio(folio, 1, gupFlags);
                break;
            }
            if (!PteWrite(pte) && GupMustUnshare(null, gupFlags, page))
            {
                GupPutFolio(folio, 1, gupFlags);
                break;
            }
            pages.Add(page);
        }
        if ((gupFlags & FOLL_PIN) != 0 && mm.WriteProtectSeq != seq)
        {
            for (int i = firstIndex; i < pages.Count; i++)
            {
                GupPutFolio(new Folio(pages[i].Pfn), 1, gupFlags);
            }
            pages.RemoveRange(firstIndex, pages.Count - firstIndex);
            return 0;
        }
        return nr;
    }

    /// <summary>
    /// populate_vma_page_range(): faults in a range of one VMA: writable private mappings with write
    /// faults (to break COW), others with forced reads (using the zero page); then drains this CPU's
    /// LRU batches, as faultin_page_range() does. A PROT_NONE or unreadable VMA is refused with
    /// -EFAULT before any of that: MAP_POPULATE of a PROT_NONE mapping drains nothing.
    /// </summary>
    /// <remarks>Context: mmap read lock held; the faults may drop it (reported back).</remarks>
    [KernelSymbol("populate_vma_page_range", "mm/gup.c")]
    public async ValueTask<(long Ret, bool Locked)> PopulateVmaPageRange(VmAreaStruct vma, ulong start, ulong end)
    {
        var mm = vma.VmMm;
        long nrPages = (long)((end - start) >> PAGE_SHIFT);
        if ((vma.VmFlags & VmFlags.VM_LOCKONFAULT) != 0)
        {
            return (nrPages, true);
        }
        if (!vma.IsAccessible || (vma.VmFlags & VmFlags.VM_MAYREAD) == 0)
        {
            return (-Errno.EFAULT, true);
        }
        var gupFlags = FOLL_TOUCH | FOLL_UNLOCKABLE;
        gupFlags |= (vma.VmFlags & (VmFlags.VM_WRITE | VmFlags.VM_SHARED)) == VmFlags.VM_WRITE ? FOLL_WRITE : FOLL_FORCE;
        var result = await __GetUserPages(mm, start, nrPages, gupFlags, null);
        LruAddDrain();
        return result;
    }

    /// <summary>__mm_populate(): populate [start, start+len), VMA by VMA, skipping VM_IO/VM_PFNMAP.</summary>
    /// <remarks>Context: no mmap lock held; takes the read lock and retakes it after a fault dropped it.</remarks>
    [KernelSymbol("__mm_populate", "mm/gup.c")]
    public async ValueTask<int> MmPopulate(ulong start, ulong len, bool ignoreErrors = true)
    {
        var mm = Current!.Mm!;
        ulong end = start + len;
        VmAreaStruct? vma = null;
        bool locked = false;
        long ret = 0;
        for (ulong nstart = start, nend; nstart < end; nstart = nend)
        {
            if (!locked)
            {
                locked = true;
                await MmapReadLock(mm, "__mm_populate");
                vma = mm.MmMt.FindVmaIntersection(nstart, end);
            }
            else if (nstart >= vma!.VmEnd)
            {
                vma = mm.MmMt.FindVmaIntersection(vma.VmEnd, end);
            }
            if (vma is null)
            {
                break;
            }
            nend = Math.Min(end, vma.VmEnd);
            if ((vma.VmFlags & (VmFlags.VM_IO | VmFlags.VM_PFNMAP)) != 0)
            {
                continue;
            }
            if (nstart < vma.VmStart)
            {
                nstart = vma.VmStart;
            }
            var (r, stillLocked) = await PopulateVmaPageRange(vma, nstart, nend);
            locked = stillLocked;
            if (r < 0)
            {
                if (ignoreErrors)
                {
                    ret = 0;
                    continue;
                }
                ret = r;
                break;
            }
            nend = nstart + ((ulong)r << PAGE_SHIFT);
            ret = 0;
        }
        if (locked)
        {
            await MmapReadUnlock(mm, "__mm_populate");
        }
        return (int)ret;
    }

    /// <summary>
    /// faultin_page_range(): MADV_POPULATE_(READ|WRITE) — fault in like a user access would,
    /// failing with -EFAULT/-ENOMEM/-EHWPOISON where the access would have; then drains this CPU's
    /// LRU batches (a folio a batch holds is then referenced by its mappings alone).
    /// </summary>
    /// <remarks>Context: mmap read lock held; the faults may drop it (reported back).</remarks>
    [KernelSymbol("faultin_page_range", "mm/gup.c")]
    public async ValueTask<(long Ret, bool Locked)> FaultinPageRange(MmStruct mm, ulong start, ulong end, bool write)
    {
        long nrPages = (long)((end - start) >> PAGE_SHIFT);
        var gupFlags = FOLL_TOUCH | FOLL_HWPOISON | FOLL_UNLOCKABLE | FOLL_MADV_POPULATE;
        if (write)
        {
            gupFlags |= FOLL_WRITE;
        }
        var (ret, locked) = await __GetUserPages(mm, start, nrPages, gupFlags, null);
        LruAddDrain();
        return locked ? (ret, true) : (Math.Max(ret, 0), false);
    }
}

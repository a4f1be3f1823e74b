namespace Linux;

/*
 * Lock order in the mm model (the same nesting as the tree at the top of the kernel's mm/rmap.c;
 * docs/locking.md holds the same tree, and lockdep enforces it through LockClass):
 *
 *   inode->i_rwsem                  (truncate, ftruncate; never taken by a fault)
 *     mm->mmap_lock
 *       folio lock (PG_locked)      (fault paths lock the page cache folio they map)
 *         vma->vm_lock              (vma_start_write(): writers exclude the fault-path readers)
 *           mapping->i_mmap_rwsem   (vma_link_file, unmap_mapping_range, rmap walks of file folios)
 *             anon_vma->rwsem       (anon_vma_prepare/clone/fork, rmap walks of anon folios)
 *               mm->page_table_lock or the split PTE/PMD lock
 *                 mapping->i_pages lock   (page cache insertion and removal)
 *
 * A fault holding only the per-VMA lock (FAULT_FLAG_VMA_LOCK) sits where mmap_lock sits: it may
 * take mmap_lock only with a trylock (__vmf_anon_prepare()) and otherwise returns VM_FAULT_RETRY.
 * Fork takes the child's mmap_lock nested inside the parent's (SINGLE_DEPTH_NESTING), and
 * copy_pte_range() the source PTL nested inside the destination's. resource_lock nests inside
 * nothing of mm: __request_region() drops it before revoking mappings.
 */

/// <summary>Why anon_vma_clone() is called (enum vma_operation).</summary>
public enum VmaOperation
{
    VMA_OP_SPLIT,
    VMA_OP_MERGE_UNFAULTED,
    VMA_OP_REMAP,
    VMA_OP_FORK,
}

/// <summary>rmap flags (RMAP_EXCLUSIVE).</summary>
[Flags]
public enum RmapFlags
{
    RMAP_NONE = 0,
    RMAP_EXCLUSIVE = 1,
}

// mm/rmap.c: anon_vma life cycle, adding and removing folio mappings, and rmap walks.
public sealed partial class Kernel
{
    /// <summary>anon_vma_alloc(): refcount 1, its own root and parent.</summary>
    /// <remarks>Context: any; the new anon_vma is private until linked. Takes no lock.</remarks>
    [KernelSymbol("anon_vma_alloc", "mm/rmap.c")]
    private AnonVma AnonVmaAlloc()
    {
        // folio->mapping stores the handle, so the object is created knowing it.
        int h = Handles.Reserve();
        var av = new AnonVma(this, NextAnonVmaId(), h);
        Handles.Set(h, av);
        return av;
    }

    /// <summary>get_anon_vma().</summary>
    /// <remarks>Context: the caller already holds a reference or a lock that keeps the anon_vma alive.</remarks>
    [KernelSymbol("get_anon_vma", "include/linux/rmap.h")]
    private static void GetAnonVma(AnonVma av) => av.Refcount++;

    /// <summary>put_anon_vma(): at zero the anon_vma is freed, and its reference on the root dropped.</summary>
    /// <remarks>
    /// Context: any; the last put frees the anon_vma and drops its reference on the root
    /// (the kernel's brief lock/unlock before the free is not modelled).
    /// </remarks>
    [KernelSymbol("put_anon_vma", "include/linux/rmap.h")]
    private void PutAnonVma(AnonVma av)
    {
        if (--av.Refcount > 0)
        {
            return;
        }
        WarnOn(av.Refcount < 0, $"{av} refcount went negative");
        var root = av.Root;
        Handles.Unregister(av.Handle);
        if (root != av)
        {
            PutAnonVma(root);
        }
    }

    /// <summary>anon_vma_lock_write(): take the root anon_vma's rwsem for writing.</summary>
    /// <remarks>
    /// Context: may sleep; takes the root's rwsem for writing. The caller keeps the anon_vma alive
    /// (mmap_lock held, or a reference).
    /// </remarks>
    [KernelSymbol("anon_vma_lock_write", "include/linux/rmap.h")]
    public ValueTask AnonVmaLockWrite(AnonVma av, [CallerMemberName] string fn = "") => av.Root.Rwsem.DownWrite(fn);

    /// <summary>anon_vma_unlock_write().</summary>
    /// <remarks>Context: the root's rwsem write-held; releases it.</remarks>
    [KernelSymbol("anon_vma_unlock_write", "include/linux/rmap.h")]
    public ValueTask AnonVmaUnlockWrite(AnonVma av, [CallerMemberName] string fn = "") => av.Root.Rwsem.UpWrite(fn);

    /// <summary>anon_vma_lock_read(): take the root anon_vma's rwsem for reading.</summary>
    /// <remarks>Context: may sleep; takes the root's rwsem for reading (rmap walkers).</remarks>
    [KernelSymbol("anon_vma_lock_read", "include/linux/rmap.h")]
    public ValueTask AnonVmaLockRead(AnonVma av, [CallerMemberName] string fn = "") => av.Root.Rwsem.DownRead(fn);

    /// <summary>anon_vma_unlock_read().</summary>
    /// <remarks>Context: the root's rwsem read-held; releases it.</remarks>
    [KernelSymbol("anon_vma_unlock_read", "include/linux/rmap.h")]
    public ValueTask AnonVmaUnlockRead(AnonVma av, [CallerMemberName] string fn = "") => av.Root.Rwsem.UpRead(fn);

    /// <summary>anon_vma_chain_assign() + anon_vma_interval_tree_insert().</summary>
    private static void AnonVmaChainLink(VmAreaStruct vma, AnonVma av)
    {
        var avc = new AnonVmaChain(vma, av);
        vma.AnonVmaChain.Add(avc);
        av.RbRoot.Add(avc);
    }

    /// <summary>anon_vma_prepare(): the common case (the VMA already has one) needs no locks.</summary>
    /// <remarks>
    /// Context: mmap_lock held (read at least); the slow path takes the anon_vma lock and
    /// page_table_lock and may sleep.
    /// </remarks>
    [KernelSymbol("anon_vma_prepare", "include/linux/rmap.h")]
    public ValueTask<int> AnonVmaPrepare(VmAreaStruct vma) =>
        vma.AnonVma is not null ? ValueTask.FromResult(0) : __AnonVmaPrepare(vma);

    /// <summary>
    /// __anon_vma_prepare(): attach an anon_vma, reusing an adjacent VMA's when they are
    /// compatible (the common case after mprotect split one), else a new root.
    /// Context: mmap_lock held (read at least).
    /// </summary>
    [KernelSymbol("__anon_vma_prepare", "mm/rmap.c")]
    public async ValueTask<int> __AnonVmaPrepare(VmAreaStruct vma)
    {
        var mm = vma.VmMm;
        MmapAssertLocked(mm);
        MightSleep();
        var av = FindMergeableAnonVma(vma);
        AnonVma? allocated = null;
        if (av is null)
        {
            av = AnonVmaAlloc();
            av.NumChildren++;   // the new root is its own parent
            allocated = av;
        }
        await AnonVmaLockWrite(av);
        await mm.PageTableLock.Lock();
        if (vma.AnonVma is null)
        {
            vma.AnonVma = av;
            AnonVmaChainLink(vma, av);
            av.NumActiveVmas++;
            allocated = null;
        }
        await mm.PageTableLock.Unlock();
        await AnonVmaUnlockWrite(av);
        if (allocated is not null)
        {
            PutAnonVma(allocated);
        }
        return 0;
    }

    /// <summary>anon_vma_compatible(): could a and b share one anon_vma if they were one VMA?</summary>
    /// <remarks>Context: mmap_lock held (both VMAs stable).</remarks>
    [KernelSymbol("anon_vma_compatible", "mm/vma.c")]
    private static bool AnonVmaCompatible(VmAreaStruct a, VmAreaStruct b) =>
        a.VmEnd == b.VmStart && a.VmFile == b.VmFile &&
        ((a.VmFlags ^ b.VmFlags) & ~(VmFlags.VM_ACCESS_FLAGS | VmFlags.VM_SOFTDIRTY | VmFlags.VM_MAYBE_GUARD)) == 0 &&
        b.VmPgoff == a.VmPgoff + ((b.VmStart - a.VmStart) >> PgTable.PAGE_SHIFT);

    /// <summary>reusable_anon_vma(): old's anon_vma if it is compatible and old is its only user.</summary>
    /// <remarks>Context: mmap_lock held (read at least); old's anon_vma is read racily, as the kernel does.</remarks>
    [KernelSymbol("reusable_anon_vma", "mm/vma.c")]
    private static AnonVma? ReusableAnonVma(VmAreaStruct old, VmAreaStruct a, VmAreaStruct b) =>
        AnonVmaCompatible(a, b) && old.AnonVma is { } av && old.AnonVmaChain.Count == 1 ? av : null;

    /// <summary>find_mergeable_anon_vma(): try the next VMA, then the previous one.</summary>
    /// <remarks>Context: mmap_lock held (read at least): the neighbours are stable.</remarks>
    [KernelSymbol("find_mergeable_anon_vma", "mm/vma.c")]
    private AnonVma? FindMergeableAnonVma(VmAreaStruct vma)
    {
        var tree = vma.VmMm.MmMt;
        var next = tree.Next(vma);
        if (next is not null && ReusableAnonVma(next, vma, next) is { } a)
        {
            return a;
        }
        var prev = tree.Prev(vma);
        if (prev is not null && ReusableAnonVma(prev, prev, vma) is { } b)
        {
            return b;
        }
        return null;
    }

    /// <summary>
    /// anon_vma_clone(): links <paramref name="dst"/> into every anon_vma <paramref name="src"/> is
    /// in. On fork, an anon_vma with no VMA left and at most one child is reused as dst's own.
    /// </summary>
    /// <remarks>Context: mmap write lock held; takes the anon_vma root rwsem.</remarks>
    [KernelSymbol("anon_vma_clone", "mm/rmap.c")]
    public async ValueTask<int> AnonVmaClone(VmAreaStruct dst, VmAreaStruct src, VmaOperation op)
    {
        MmapAssertWriteLocked(src.VmMm);
        var active = src.AnonVma;
        if (active is null)
        {
            return 0;
        }
        var chains = src.AnonVmaChain.ToList();
        await AnonVmaLockWrite(active);
        foreach (var pavc in chains)
        {
            AnonVmaChainLink(dst, pavc.AnonVma);
        }
        if (op == VmaOperation.VMA_OP_FORK)
        {
            // maybe_reuse_anon_vma(), over the chain newest to oldest as the kernel walks it.
            for (int i = chains.Count - 1; i >= 0; i--)
            {
                var av = chains[i].AnonVma;
                if (dst.AnonVma is null && av.NumActiveVmas == 0 && av.NumChildren <= 1)
                {
                    dst.AnonVma = av;
                    av.NumActiveVmas++;
                }
            }
        }
        else
        {
            dst.AnonVma!.NumActiveVmas++;
        }
        await AnonVmaUnlockWrite(active);
        return 0;
    }

    /// <summary>
    /// anon_vma_fork(): the child VMA joins the parent's anon_vmas (so rmap finds pages still
    /// shared with the child) and gets its own anon_vma for the pages it COWs.
    /// </summary>
    /// <remarks>Context: both mmap locks write-held; takes the anon_vma root rwsem.</remarks>
    [KernelSymbol("anon_vma_fork", "mm/rmap.c")]
    public async ValueTask<int> AnonVmaFork(VmAreaStruct vma, VmAreaStruct pvma)
    {
        if (pvma.AnonVma is null)
        {
            return 0;
        }
        vma.AnonVma = null;
        var av = AnonVmaAlloc();
        int rc = await AnonVmaClone(vma, pvma, VmaOperation.VMA_OP_FORK);
        if (rc != 0 || vma.AnonVma is not null)
        {
            PutAnonVma(av);
            return rc;
        }
        av.NumActiveVmas = 1;
        av.Root = pvma.AnonVma.Root;
        av.Parent = pvma.AnonVma;
        GetAnonVma(av.Root);
        vma.AnonVma = av;
        await AnonVmaLockWrite(av);
        AnonVmaChainLink(vma, av);
        av.Parent.NumChildren++;
        await AnonVmaUnlockWrite(av);
        return 0;
    }

    /// <summary>
    /// unlink_anon_vmas(): severs the VMA from every anon_vma; anon_vmas left with no VMA are put.
    /// Context: mmap_lock held.
    /// </summary>
    [KernelSymbol("unlink_anon_vmas", "mm/rmap.c")]
    public async ValueTask UnlinkAnonVmas(VmAreaStruct vma)
    {
        MmapAssertLocked(vma.VmMm);
        var active = vma.AnonVma;
        if (active is null)
        {
            WarnOn(vma.AnonVmaChain.Count != 0, $"{vma} has anon_vma chains but no anon_vma");
            return;
        }
        await AnonVmaLockWrite(active);
        var empty = new List<AnonVma>();
        foreach (var avc in vma.AnonVmaChain)
        {
            var av = avc.AnonVma;
            av.RbRoot.Remove(avc);
            if (av.RbRoot.Count == 0)
            {
                av.Parent.NumChildren--;
                empty.Add(av);
            }
        }
        active.NumActiveVmas--;
        vma.AnonVma = null;
        vma.AnonVmaChain.Clear();
        await AnonVmaUnlockWrite(active);
        foreach (var av in empty)
        {
            WarnOn(av.NumChildren != 0, $"{av} freed with {av.NumChildren} children");
            WarnOn(av.NumActiveVmas != 0, $"{av} freed with {av.NumActiveVmas} active VMAs");
            PutAnonVma(av);
        }
    }

    // ---- folio rmap ----

    /// <summary>linear_page_index(): the page offset of addr within the VMA's object.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock, its VMA lock, or an rmap lock held).</remarks>
    [KernelSymbol("linear_page_index", "include/linux/pagemap.h")]
    public static ulong LinearPageIndex(VmAreaStruct vma, ulong addr) =>
        ((addr - vma.VmStart) >> PgTable.PAGE_SHIFT) + vma.VmPgoff;

    /// <summary>vma_address(): where page offset pgoff sits in the VMA, or ulong.MaxValue if outside.</summary>
    /// <remarks>Context: the VMA is stable (an rmap lock or the mmap lock held).</remarks>
    [KernelSymbol("vma_address", "mm/internal.h")]
    public static ulong VmaAddress(VmAreaStruct vma, ulong pgoff)
    {
        if (pgoff < vma.VmPgoff)
        {
            return ulong.MaxValue;
        }
        ulong addr = vma.VmStart + ((pgoff - vma.VmPgoff) << PgTable.PAGE_SHIFT);
        return addr < vma.VmEnd ? addr : ulong.MaxValue;
    }

    private void AddMapcount(Folio f, int delta, string fn)
    {
        Sched.Access(ObjId.Folio(f.Pfn), write: true);
        ref int mc = ref MemMap.MapCount(f.Pfn);
        int old = mc;
        mc = old + delta;
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new FolioCountEffect(f.Pfn, "mapcount", old, mc));
        }
        if (mc < 0)
        {
            Bug($"mapcount of pfn {f.Pfn:x} went negative", fn);
        }
    }

    /// <summary>__folio_set_anon(): folio->mapping = anon_vma | PAGE_MAPPING_ANON, and the index.</summary>
    /// <remarks>Context: the PTL held and the folio new or locked; the VMA's anon_vma already set.</remarks>
    [KernelSymbol("__folio_set_anon", "mm/rmap.c")]
    private void __FolioSetAnon(Folio f, VmAreaStruct vma, ulong addr, bool exclusive)
    {
        var av = vma.AnonVma!;
        // A page exclusive to this VMA can live in the VMA's own anon_vma; a shared one must be in
        // the root so every process that might map it is found.
        if (!exclusive)
        {
            av = av.Root;
        }
        Sched.Access(ObjId.Folio(f.Pfn), write: true);
        MemMap.Mapping(f.Pfn) = av.Handle;
        MemMap.Flags(f.Pfn) |= (uint)PageFlags.PAGE_MAPPING_ANON;
        MemMap.SetIndex(f.Pfn, LinearPageIndex(vma, addr));
    }

    /// <summary>
    /// folio_add_new_anon_rmap(): a freshly allocated folio becomes anonymous and mapped once;
    /// RMAP_EXCLUSIVE marks its page PageAnonExclusive.
    /// </summary>
    /// <remarks>Context: the PTL held; the folio is new (not yet visible), so it need not be locked.</remarks>
    [KernelSymbol("folio_add_new_anon_rmap", "mm/rmap.c")]
    public void FolioAddNewAnonRmap(Folio f, VmAreaStruct vma, ulong addr, RmapFlags flags)
    {
        bool exclusive = (flags & RmapFlags.RMAP_EXCLUSIVE) != 0;
        VmBugOn(addr < vma.VmStart || addr >= vma.VmEnd, $"folio_add_new_anon_rmap: {addr:x} outside {vma}");
        FolioSet(f, PageFlags.PG_swapbacked);
        __FolioSetAnon(f, vma, addr, exclusive: true);
        AddMapcount(f, 1, "folio_add_new_anon_rmap");
        if (exclusive && Variants.DoWpPageReuse == Variants.WpReuseRule.AnonExclusive)
        {
            SetPageAnonExclusive(f.Page);
        }
    }

    /// <summary>folio_add_anon_rmap_ptes(): map an existing anon folio again (swap-in, restore).</summary>
    /// <remarks>Context: the PTL held and the folio locked.</remarks>
    [KernelSymbol("folio_add_anon_rmap_ptes", "mm/rmap.c")]
    public void FolioAddAnonRmapPtes(Folio f, Page page, int nr, VmAreaStruct vma, ulong addr, RmapFlags flags)
    {
        AddMapcount(f, nr, "folio_add_anon_rmap_ptes");
        if ((flags & RmapFlags.RMAP_EXCLUSIVE) != 0 && Variants.DoWpPageReuse == Variants.WpReuseRule.AnonExclusive)
        {
            SetPageAnonExclusive(page);
        }
    }

    /// <summary>folio_add_file_rmap_ptes(): a page cache folio is mapped by nr more PTEs.</summary>
    /// <remarks>Context: the PTL held.</remarks>
    [KernelSymbol("folio_add_file_rmap_ptes", "mm/rmap.c")]
    public void FolioAddFileRmapPtes(Folio f, Page page, int nr, VmAreaStruct vma) =>
        AddMapcount(f, nr, "folio_add_file_rmap_ptes");

    /// <summary>folio_add_file_rmap_pte().</summary>
    /// <remarks>Context: the PTL held.</remarks>
    [KernelSymbol("folio_add_file_rmap_pte", "include/linux/rmap.h")]
    public void FolioAddFileRmapPte(Folio f, Page page, VmAreaStruct vma) => FolioAddFileRmapPtes(f, page, 1, vma);

    /// <summary>folio_remove_rmap_ptes(): nr fewer PTEs map the folio. The caller drops references.</summary>
    /// <remarks>Context: the PTL held.</remarks>
    [KernelSymbol("folio_remove_rmap_ptes", "mm/rmap.c")]
    public void FolioRemoveRmapPtes(Folio f, Page page, int nr, VmAreaStruct vma) =>
        AddMapcount(f, -nr, "folio_remove_rmap_ptes");

    /// <summary>folio_remove_rmap_pte().</summary>
    /// <remarks>Context: the PTL held.</remarks>
    [KernelSymbol("folio_remove_rmap_pte", "include/linux/rmap.h")]
    public void FolioRemoveRmapPte(Folio f, Page page, VmAreaStruct vma) => FolioRemoveRmapPtes(f, page, 1, vma);

    /// <summary>folio_dup_file_rmap_pte(): fork shares a file folio with the child.</summary>
    /// <remarks>Context: fork: both mmap_locks write-held and the source PTL held.</remarks>
    [KernelSymbol("folio_dup_file_rmap_pte", "include/linux/rmap.h")]
    public void FolioDupFileRmapPte(Folio f, Page page, VmAreaStruct dstVma) =>
        AddMapcount(f, 1, "folio_dup_file_rmap_pte");

    /// <summary>
    /// folio_try_dup_anon_rmap_pte(): fork wants to share an anon page with the child. An
    /// exclusive page that may be pinned cannot be shared (-EBUSY: the caller copies it);
    /// otherwise it stops being exclusive and gains a mapping.
    /// </summary>
    /// <remarks>
    /// Context: fork: both mmap_locks write-held and the source PTL held (so no GUP-fast pin can
    /// appear unseen).
    /// </remarks>
    [KernelSymbol("folio_try_dup_anon_rmap_pte", "include/linux/rmap.h")]
    public int FolioTryDupAnonRmapPte(Folio f, Page page, VmAreaStruct dstVma, VmAreaStruct srcVma)
    {
        if (Variants.DoWpPageReuse == Variants.WpReuseRule.AnonExclusive)
        {
            if (PageAnonExclusive(page) && FolioNeedsCowForDma(srcVma, f))
            {
                return -Errno.EBUSY;
            }
            ClearPageAnonExclusive(page);
        }
        else if (FolioNeedsCowForDma(srcVma, f))
        {
            // Before PageAnonExclusive, copy_present_page() keyed on the pin alone (70e806e4e645).
            return -Errno.EBUSY;
        }
        AddMapcount(f, 1, "folio_try_dup_anon_rmap_pte");
        return 0;
    }

    /// <summary>
    /// folio_move_anon_rmap(): a reused page now belongs to this VMA's own anon_vma.
    /// Context: folio locked.
    /// </summary>
    [KernelSymbol("folio_move_anon_rmap", "mm/rmap.c")]
    public void FolioMoveAnonRmap(Folio f, VmAreaStruct vma)
    {
        var av = vma.AnonVma!;
        Sched.Access(ObjId.Folio(f.Pfn), write: true);
        MemMap.Mapping(f.Pfn) = av.Handle;
    }

    // ---- rmap walks ----

    /// <summary>
    /// Whether rmap_walk_anon() / rmap_walk_file(), without locks or scheduling points, visits
    /// <paramref name="vma"/> at <paramref name="addr"/> for the folio: the VMAs linked into its
    /// anon_vma (av->rb_root holds the AVCs of every VMA forked from it) or its mapping's i_mmap.
    /// For checkers only.
    /// </summary>
    public bool RmapReaches(Folio f, VmAreaStruct vma, ulong addr)
    {
        int h = MemMap.Mapping(f.Pfn);
        if (h == 0)
        {
            return false;
        }
        ulong pgoff = MemMap.GetIndex(f.Pfn);
        var mapping = Handles.Get(h);
        if ((MemMap.Flags(f.Pfn) & (uint)PageFlags.PAGE_MAPPING_ANON) != 0 && mapping is AnonVma av)
        {
            foreach (var avc in av.RbRoot)
            {
                if (avc.Vma == vma && VmaAddress(vma, pgoff) == addr)
                {
                    return true;
                }
            }
        }
        else if (mapping is AddressSpace ms)
        {
            foreach (var v in ms.IMmap)
            {
                if (v == vma && VmaAddress(vma, pgoff) == addr)
                {
                    return true;
                }
            }
        }
        return false;
    }
}

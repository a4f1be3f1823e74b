using static Linux.PgTable;

namespace Linux;

// Page-table pages: allocation (mm/memory.c __pte_alloc, __pmd_alloc, pmd_install; mm/pgtable-generic.c;
// arch/x86/mm/pgtable.c pgd_alloc), the per-level offset walkers with folding (include/linux/pgtable.h,
// asm-generic/pgtable-nop4d.h / -nopud.h / -nopmd.h), the entry accessors, and freeing (free_pgtables).
public sealed partial class Kernel
{
    /// <summary>pgd_list: every PGD, for arch_sync_kernel_mappings() on x86-32. Protected by pgd_lock.</summary>
    public readonly List<MmStruct> PgdList = [];

    /// <summary>Every page-table page this instance built, freed or not, for <see cref="RecyclePageTables"/>.</summary>
    private readonly List<PageTable> _tables = [];

    /// <summary>Gives every table's entries and the table cache back (<see cref="Recycle"/>).</summary>
    private void RecyclePageTables()
    {
        foreach (var t in _tables)
        {
            t.Recycle();
        }
        _tables.Clear();
        RecycledArrays<PageTable?>.Return(_tableCache);
        _tableCache = [];
    }

    /// <summary>A fresh page-table page (pagetable_alloc + pagetable_*_ctor), or null when out of memory.</summary>
    internal PageTable? TryNewPageTable(MmStruct? mm, int level)
    {
        var p = AllocPage(zero: true);
        if (p is not { } page)
        {
            return null;
        }
        var t = new PageTable(this, mm!, page.Pfn, level, Paging.PtrsOfLevel(level));
        _tables.Add(t);
        MemMap.Flags(page.Pfn) = (uint)PageFlags.PGTY_table;
        MemMap.Mapping(page.Pfn) = Handles.Register(t);
        return t;
    }

    internal PageTable NewPageTable(MmStruct? mm, int level, int entries) =>
        TryNewPageTable(mm, level) ?? throw new InvalidOperationException("model defect: no RAM for a page table at boot");

    /// <summary>pagetable_free(): the table page goes back to the allocator.</summary>
    /// <remarks>Context: any; does not sleep. The table is unhooked from its parent (or was never installed), so no
    /// walker can reach it.</remarks>
    [KernelSymbol("pagetable_free", "include/linux/mm.h")]
    internal void FreePageTable(PageTable t, [CallerMemberName] string fn = "")
    {
        ulong pfn = t.Pfn;
        int slot = (int)(pfn & (TableCacheSize - 1));
        if (_tableCache[slot] == t)
        {
            _tableCache[slot] = null;
        }
        Handles.Unregister(MemMap.Mapping(pfn));
        MemMap.Mapping(pfn) = 0;
        MemMap.Flags(pfn) = 0;
        FolioPut(new Folio(pfn), fn);
    }

    private const int TableCacheSize = 64;
    /// <summary>The tables <see cref="TableOf"/> found last, direct-mapped by pfn. A table's entry is
    /// dropped when <see cref="FreePageTable"/> frees it, so a hit is the table the descriptor names.
    /// Model-only: it saves the descriptor and handle lookups that every level of every walk makes.</summary>
    private PageTable?[] _tableCache = RecycledArrays<PageTable?>.Rent(TableCacheSize);

    /// <summary>The table a non-leaf entry points to (pXd_pgtable / page_address of its pfn).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PageTable TableOf(ulong entry)
    {
        ulong pfn = TablePfn(entry);
        int slot = (int)(pfn & (TableCacheSize - 1));
        return _tableCache[slot] is { } t && t.Pfn == pfn ? t : TableOfSlow(pfn, slot);
    }

    private PageTable TableOfSlow(ulong pfn, int slot)
    {
        var t = (PageTable?)Handles.Get(MemMap.Mapping(pfn));
        if (t is not null)
        {
            _tableCache[slot] = t;
        }
        return t!;
    }

    /// <summary>pgd_alloc() → pgd_ctor(): copies the kernel half of init_mm's PGD and joins pgd_list.</summary>
    /// <remarks>Context: pgd_alloc() for a new mm. The kernel holds pgd_lock around it; the model takes no lock
    /// (nothing here yields).</remarks>
    [KernelSymbol("pgd_ctor", "arch/x86/mm/pgtable.c")]
    private void PgdCtor(MmStruct mm)
    {
        int boundary = KernelPgdBoundary;
        for (int i = boundary; i < Paging.PtrsPerPgd; i++)
        {
            ulong v = InitMm.Pgd.Entries[i];
            mm.Pgd.Entries[i] = v;
            if (v != 0)
            {
                mm.Pgd.Used++;
            }
        }
        PgdList.Add(mm);
    }

    /// <summary>KERNEL_PGD_BOUNDARY: pgd_index(PAGE_OFFSET).</summary>
    public int KernelPgdBoundary => Paging.PgdIndex(Paging.TaskSize == 0xC0000000UL ? 0xC0000000UL : 0xffff888000000000UL);

    // ---- offsets (one per level, folded levels return their parent's slot) ----

    /// <remarks>Context: any; the PGD lives as long as the mm.</remarks>
    [KernelSymbol("pgd_offset", "include/linux/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PtPtr PgdOffset(MmStruct mm, ulong addr) => new(mm.Pgd, Paging.PgdIndex(addr));

    /// <remarks>Context: any; init_mm's PGD is never freed.</remarks>
    [KernelSymbol("pgd_offset_k", "include/linux/pgtable.h")]
    public PtPtr PgdOffsetK(ulong addr) => PgdOffset(InitMm, addr);

    /// <remarks>Context: the tables on the path kept alive (mmap_lock, the VMA lock or an rmap lock held, or the
    /// lockless GUP-fast walk); reads the parent entry without a lock.</remarks>
    [KernelSymbol("p4d_offset", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PtPtr P4dOffset(PtPtr pgd, ulong addr) =>
        Paging.P4dFolded ? pgd : new(TableOf(pgd.Table.Entries[pgd.Index]), Paging.P4dIndex(addr));

    /// <remarks>Context: as p4d_offset().</remarks>
    [KernelSymbol("pud_offset", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PtPtr PudOffset(PtPtr p4d, ulong addr) =>
        Paging.PudFolded ? p4d : new(TableOf(p4d.Table.Entries[p4d.Index]), Paging.PudIndex(addr));

    /// <remarks>Context: as p4d_offset().</remarks>
    [KernelSymbol("pmd_offset", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PtPtr PmdOffset(PtPtr pud, ulong addr) =>
        Paging.PmdFolded ? pud : new(TableOf(pud.Table.Entries[pud.Index]), Paging.PmdIndex(addr));

    /// <summary>pte_offset_kernel(): the PTE slot under a PMD known to point to a table.</summary>
    /// <remarks>Context: the PMD points to a PTE table that cannot go away (kernel tables, or the caller's lock);
    /// takes nothing.</remarks>
    [KernelSymbol("pte_offset_kernel", "include/linux/pgtable.h")]
    public PtPtr PteOffsetKernel(PtPtr pmd, ulong addr) => new(TableOf(pmd.Table.Entries[pmd.Index]), Paging.PteIndex(addr));

    /// <summary>__pte_offset_map(): null unless the PMD points to a PTE table.</summary>
    /// <remarks>Context: the PMD's table kept alive (mmap_lock, the VMA lock or an rmap lock held); no PTL taken. The
    /// kernel enters an RCU read-side section here that pte_unmap() leaves; the model has no RCU.</remarks>
    [KernelSymbol("__pte_offset_map", "mm/pgtable-generic.c")]
    public PtPtr? PteOffsetMap(PtPtr pmd, ulong addr)
    {
        var v = PmdpGet(pmd);
        if (PmdNone(v) || PgTable.PmdLeaf(v) || !PgTable.PmdPresent(v))
        {
            return null;
        }
        return new PtPtr(TableOf(v.Val), Paging.PteIndex(addr));
    }

    // ---- the folded predicates: a level above a folded one is never none ----

    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pgd_none", "include/asm-generic/pgtable-nop4d.h")]
    public bool PgdNone(Pgd pgd) => !Paging.P4dFolded && PgTable.PgdNoneValue(pgd);

    public bool PgdPresent(Pgd pgd) => Paging.P4dFolded || (pgd.Val & X86Pte._PAGE_PRESENT) != 0;

    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("p4d_none", "include/asm-generic/pgtable-nopud.h")]
    public bool P4dNone(P4d p4d) => !Paging.PudFolded && PgTable.P4dNone(p4d);

    public bool P4dPresent(P4d p4d) => Paging.PudFolded || (p4d.Val & X86Pte._PAGE_PRESENT) != 0;

    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pud_none", "include/asm-generic/pgtable-nopmd.h")]
    public bool PudNone(Pud pud) => !Paging.PmdFolded && PgTable.PudNone(pud);

    public bool PudPresent(Pud pud) => Paging.PmdFolded || PgTable.PudPresent(pud);

    public bool PudLeaf(Pud pud) => !Paging.PmdFolded && PgTable.PudLeaf(pud);

    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pmd_none", "arch/x86/include/asm/pgtable.h")]
    public bool PmdNone(Pmd pmd) => PgTable.PmdNone(pmd);

    // ---- entry reads (footprint: read of the slot) ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong ReadEntry(PtPtr p)
    {
        Sched.Access(p.Obj, write: false);
        return p.Table.Entries[p.Index];
    }

    /// <remarks>Context: the PTL held for a stable value; otherwise a snapshot the caller revalidates under the PTL
    /// (see ptep_get_lockless()).</remarks>
    [KernelSymbol("ptep_get", "include/linux/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte PtepGet(PtPtr p) => new(ReadEntry(p));

    /// <remarks>Context: the PMD lock held for a stable value; otherwise a snapshot the caller rechecks (as
    /// pte_offset_map_lock() does).</remarks>
    [KernelSymbol("pmdp_get", "include/linux/pgtable.h")]
    public Pmd PmdpGet(PtPtr p) => new(ReadEntry(p));

    /// <remarks>Context: the PUD lock (mm-&gt;page_table_lock) held for a stable value; otherwise a snapshot the
    /// caller rechecks.</remarks>
    [KernelSymbol("pudp_get", "include/linux/pgtable.h")]
    public Pud PudpGet(PtPtr p) => new(ReadEntry(p));

    /// <remarks>Context: a snapshot, the tables kept alive by the caller's lock; a none value is rechecked under
    /// mm-&gt;page_table_lock before a table is installed there.</remarks>
    [KernelSymbol("p4dp_get", "include/linux/pgtable.h")]
    public P4d P4dpGet(PtPtr p) => new(ReadEntry(p));

    /// <remarks>Context: as p4dp_get().</remarks>
    [KernelSymbol("pgdp_get", "include/linux/pgtable.h")]
    public Pgd PgdpGet(PtPtr p) => new(ReadEntry(p));

    /// <summary>ptep_get_lockless(): the fault path's READ_ONCE of a PTE without the PTL.</summary>
    /// <remarks>Context: the PTE table pinned (mmap or VMA read lock, or pte_offset_map()); no PTL.</remarks>
    [KernelSymbol("ptep_get_lockless", "include/linux/pgtable.h")]
    public ValueTask<Pte> PtepGetLockless(PtPtr p, [CallerMemberName] string fn = "")
    {
        var point = Sched.Point(SchedPointKind.ReadOnce, p.Obj, fn);
        return point.IsCompleted ? new ValueTask<Pte>(PtepGet(p)) : PtepGetAfterPoint(point, p);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<Pte> PtepGetAfterPoint(SchedYield point, PtPtr p)
    {
        await point;
        return PtepGet(p);
    }

    /// <summary>pmdp_get_lockless(): a READ_ONCE of a PMD without its lock.</summary>
    /// <remarks>Context: the PMD table pinned (mmap or VMA read lock); no PMD lock.</remarks>
    [KernelSymbol("pmdp_get_lockless", "include/linux/pgtable.h")]
    public ValueTask<Pmd> PmdpGetLockless(PtPtr p, [CallerMemberName] string fn = "")
    {
        var point = Sched.Point(SchedPointKind.ReadOnce, p.Obj, fn);
        return point.IsCompleted ? new ValueTask<Pmd>(PmdpGet(p)) : PmdpGetAfterPoint(point, p);
    }

    private async ValueTask<Pmd> PmdpGetAfterPoint(SchedYield point, PtPtr p)
    {
        await point;
        return PmdpGet(p);
    }

    // ---- entry writes (footprint: write of the slot; effect for traces) ----

    /// <summary>Every page-table write in the model goes through here. Leaf writes by the kernel are
    /// remembered until the task returns to user space, to check that the TLBs were flushed.</summary>
    internal void WriteEntry(PtPtr p, ulong val, ulong addr, bool byHardware = false)
    {
        var t = p.Table;
        ref ulong slot = ref t.Entries[p.Index];
        ulong old = slot;
        // Only replacing a present leaf can leave a stale translation behind; installing one over
        // an empty or non-present entry cannot (another task's pending flush is its own to do).
        if (!byHardware && (old & X86Pte._PAGE_PRESENT) != 0 &&
            (t.Level == 1 || ((val | old) & X86Pte._PAGE_PSE) != 0))
        {
            NoteLeafWrite(t.Mm, addr);
        }
        Sched.Access(p.Obj, write: true);
        if (old == val)
        {
            return;
        }
        slot = val;
        if (old == 0)
        {
            t.Used++;
        }
        else if (val == 0)
        {
            t.Used--;
        }
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new PtEntryEffect(t.Mm?.Id ?? -1, addr, t.Level, old, val));
        }
    }

    /// <summary>set_pte_at().</summary>
    /// <remarks>Context: the PTL held; does not sleep.</remarks>
    [KernelSymbol("set_pte_at", "include/linux/pgtable.h")]
    public void SetPteAt(MmStruct mm, ulong addr, PtPtr ptep, Pte pte) => WriteEntry(ptep, pte.Val, addr);

    /// <summary>set_ptes(): consecutive PTEs for consecutive PFNs.</summary>
    /// <remarks>Context: the PTL held; does not sleep.</remarks>
    [KernelSymbol("set_ptes", "include/linux/pgtable.h")]
    public void SetPtes(MmStruct mm, ulong addr, PtPtr ptep, Pte pte, int nr)
    {
        for (int i = 0; i < nr; i++)
        {
            WriteEntry(new PtPtr(ptep.Table, ptep.Index + i), pte.Val, addr + ((ulong)i << PAGE_SHIFT));
            pte = new Pte(pte.Val + PAGE_SIZE);
        }
    }

    /// <summary>pte_clear().</summary>
    /// <remarks>Context: the PTL held; does not sleep.</remarks>
    [KernelSymbol("pte_clear", "include/linux/pgtable.h")]
    public void PteClear(MmStruct mm, ulong addr, PtPtr ptep) => WriteEntry(ptep, 0, addr);

    /// <summary>ptep_get_and_clear(): atomic xchg with 0 (racing hardware A/D updates).</summary>
    /// <remarks>Context: the PTL held; atomic against the CPU's A/D updates. Does not sleep.</remarks>
    [KernelSymbol("ptep_get_and_clear", "arch/x86/include/asm/pgtable.h")]
    public Pte PtepGetAndClear(MmStruct mm, ulong addr, PtPtr ptep)
    {
        var old = PtepGet(ptep);
        WriteEntry(ptep, 0, addr);
        return old;
    }

    /// <summary>ptep_set_wrprotect(): clears RW atomically.</summary>
    /// <remarks>Context: the PTL held (fork: the source PTL); does not sleep.</remarks>
    [KernelSymbol("ptep_set_wrprotect", "arch/x86/include/asm/pgtable.h")]
    public void PtepSetWrprotect(MmStruct mm, ulong addr, PtPtr ptep)
    {
        var old = PtepGet(ptep);
        WriteEntry(ptep, PteWrprotect(old).Val, addr);
    }

    /// <summary>ptep_set_access_flags() on x86: writes the entry only for a write (dirty) fault;
    /// x86 needs no flush, a CPU re-walks on a spurious fault.</summary>
    /// <remarks>Context: the PTL held; does not sleep.</remarks>
    [KernelSymbol("ptep_set_access_flags", "arch/x86/mm/pgtable.c")]
    public bool PtepSetAccessFlags(VmAreaStruct vma, ulong addr, PtPtr ptep, Pte entry, bool dirty)
    {
        bool changed = !PteSame(PtepGet(ptep), entry);
        if (changed && dirty)
        {
            WriteEntry(ptep, entry.Val, addr);
        }
        return changed;
    }

    /// <summary>ptep_clear_flush(): clears the PTE and flushes the TLB if the old entry could be cached.</summary>
    /// <remarks>Context: the PTL held; the TLB flush runs under it (IPIs, no sleeping).</remarks>
    [KernelSymbol("ptep_clear_flush", "mm/pgtable-generic.c")]
    public Pte PtepClearFlush(VmAreaStruct vma, ulong addr, PtPtr ptep)
    {
        var pte = PtepGetAndClear(vma.VmMm, addr, ptep);
        if (PteAccessible(vma.VmMm, pte))
        {
            FlushTlbPage(vma, addr);
        }
        return pte;
    }

    /// <summary>pte_accessible(): present and not PROT_NONE (x86 ignores the pending-flush case
    /// because it has no lazy TLB batching across mm here).</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pte_accessible", "arch/x86/include/asm/pgtable.h")]
    public static bool PteAccessible(MmStruct mm, Pte pte) => (pte.Val & X86Pte._PAGE_PRESENT) != 0;

    /// <remarks>Context: the PMD lock (pmd_lock()) held; does not sleep.</remarks>
    [KernelSymbol("set_pmd_at", "arch/x86/include/asm/pgtable.h")]
    public void SetPmdAt(MmStruct mm, ulong addr, PtPtr pmdp, Pmd pmd) => WriteEntry(pmdp, pmd.Val, addr);

    /// <remarks>Context: the PUD lock (mm-&gt;page_table_lock) held; does not sleep.</remarks>
    [KernelSymbol("set_pud_at", "arch/x86/include/asm/pgtable.h")]
    public void SetPudAt(MmStruct mm, ulong addr, PtPtr pudp, Pud pud) => WriteEntry(pudp, pud.Val, addr);

    /// <remarks>Context: the PMD lock held (move_normal_pmd()); or, freeing tables (free_pte_range()), no lock,
    /// because the VMAs are detached and unlinked from rmap so no walker can reach the entry.</remarks>
    [KernelSymbol("pmd_clear", "arch/x86/include/asm/pgtable.h")]
    public void PmdClear(PtPtr pmdp, ulong addr) => WriteEntry(pmdp, 0, addr);

    /// <summary>pmdp_huge_get_and_clear().</summary>
    /// <remarks>Context: the PMD lock held; does not sleep.</remarks>
    [KernelSymbol("pmdp_huge_get_and_clear", "arch/x86/include/asm/pgtable.h")]
    public Pmd PmdpHugeGetAndClear(MmStruct mm, ulong addr, PtPtr pmdp)
    {
        var old = PmdpGet(pmdp);
        WriteEntry(pmdp, 0, addr);
        return old;
    }

    /// <summary>pudp_huge_get_and_clear().</summary>
    /// <remarks>Context: the PUD lock (mm-&gt;page_table_lock) held; does not sleep.</remarks>
    [KernelSymbol("pudp_huge_get_and_clear", "arch/x86/include/asm/pgtable.h")]
    public Pud PudpHugeGetAndClear(MmStruct mm, ulong addr, PtPtr pudp)
    {
        var old = PudpGet(pudp);
        WriteEntry(pudp, 0, addr);
        return old;
    }

    /// <summary>pmd_populate(): points a PMD (or its folded stand-in) at a PTE table.</summary>
    /// <remarks>Context: the PMD lock held (pmd_install(), move_normal_pmd()); does not sleep.</remarks>
    [KernelSymbol("pmd_populate", "arch/x86/include/asm/pgalloc.h")]
    public void PmdPopulate(MmStruct mm, PtPtr pmd, PageTable pte, ulong addr) =>
        WriteEntry(pmd, (pte.Pfn << PAGE_SHIFT) | X86Pte._PAGE_TABLE, addr);

    /// <remarks>Context: the PUD lock (mm-&gt;page_table_lock) held (__pmd_alloc(), move_normal_pud()).</remarks>
    [KernelSymbol("pud_populate", "arch/x86/include/asm/pgalloc.h")]
    public void PudPopulate(MmStruct mm, PtPtr pud, PageTable pmd, ulong addr) =>
        WriteEntry(pud, (pmd.Pfn << PAGE_SHIFT) | X86Pte._PAGE_TABLE, addr);

    /// <remarks>Context: mm-&gt;page_table_lock held (__pud_alloc()).</remarks>
    [KernelSymbol("p4d_populate", "arch/x86/include/asm/pgalloc.h")]
    public void P4dPopulate(MmStruct mm, PtPtr p4d, PageTable pud, ulong addr) =>
        WriteEntry(p4d, (pud.Pfn << PAGE_SHIFT) | X86Pte._PAGE_TABLE, addr);

    /// <remarks>Context: mm-&gt;page_table_lock held (__p4d_alloc()).</remarks>
    [KernelSymbol("pgd_populate", "arch/x86/include/asm/pgalloc.h")]
    public void PgdPopulate(MmStruct mm, PtPtr pgd, PageTable p4d, ulong addr) =>
        WriteEntry(pgd, (p4d.Pfn << PAGE_SHIFT) | X86Pte._PAGE_TABLE, addr);

    // ---- locks ----

    /// <summary>pte_lockptr(): the split lock of the PTE table a PMD points to.</summary>
    /// <remarks>Context: the PTE table pinned; takes nothing.</remarks>
    [KernelSymbol("pte_lockptr", "include/linux/mm.h")]
    public SpinLock PteLockptr(MmStruct mm, PageTable pteTable) => pteTable.Ptl!;

    /// <summary>pmd_lockptr(): the split lock of the PMD table; page_table_lock when PMDs are folded.</summary>
    /// <remarks>Context: the PMD table pinned; takes nothing.</remarks>
    [KernelSymbol("pmd_lockptr", "include/linux/mm.h")]
    public SpinLock PmdLockptr(MmStruct mm, PtPtr pmd) =>
        Paging.PmdFolded || pmd.Table.Level != 2 ? mm.PageTableLock : pmd.Table.Ptl!;

    /// <summary>pmd_lock(): the PMD table's split lock (page_table_lock when PMDs are folded).</summary>
    /// <remarks>Context: mmap_lock or VMA read lock (the PMD table cannot go away); no PTE lock of
    /// the table below held (the PMD lock nests outside it).</remarks>
    [KernelSymbol("pmd_lock", "include/linux/mm.h")]
    public async ValueTask<SpinLock> PmdLock(MmStruct mm, PtPtr pmd, [CallerMemberName] string fn = "")
    {
        var ptl = PmdLockptr(mm, pmd);
        await ptl.Lock(fn);
        return ptl;
    }

    /// <summary>pud_lockptr(): PUDs have no split lock; mm->page_table_lock.</summary>
    /// <remarks>Context: any; takes nothing.</remarks>
    [KernelSymbol("pud_lockptr", "include/linux/mm.h")]
    public static SpinLock PudLockptr(MmStruct mm, PtPtr pud) => mm.PageTableLock;

    /// <summary>pud_lock(): takes <see cref="PudLockptr"/>.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock (the PUD table cannot go away); no
    /// page-table lock of this mm held.</remarks>
    [KernelSymbol("pud_lock", "include/linux/mm.h")]
    public async ValueTask<SpinLock> PudLock(MmStruct mm, PtPtr pud, [CallerMemberName] string fn = "")
    {
        var ptl = PudLockptr(mm, pud);
        await ptl.Lock(fn);
        return ptl;
    }

    /// <summary>
    /// pte_offset_map_lock(): maps the PTE table under a PMD and takes its lock, re-checking that
    /// the PMD did not change meanwhile (else retries). Null if there is no PTE table.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock, or the rmap lock of a folio the table maps;
    /// no PTE lock held. Returns with the PTE lock held when a table is found.</remarks>
    [KernelSymbol("pte_offset_map_lock", "mm/pgtable-generic.c")]
    public ValueTask<(PtPtr Pte, SpinLock Ptl)?> PteOffsetMapLock(MmStruct mm, PtPtr pmd, ulong addr,
        [CallerMemberName] string fn = "")
    {
        // The same steps without an async frame when the lock is taken at once (every fault of a
        // direct run, most steps of an exploration); otherwise the general loop below.
        var pmdval = PmdpGet(pmd);
        if (PteOffsetMap(pmd, addr) is not { } p)
        {
            return default; // completed, with no table
        }
        var ptl = PteLockptr(mm, p.Table);
        var locked = ptl.Lock(fn);
        if (!locked.IsCompletedSuccessfully)
        {
            return PteOffsetMapLockSlow(mm, pmd, addr, pmdval, p, ptl, locked, fn);
        }
        locked.GetAwaiter().GetResult();
        if (PmdpGet(pmd) == pmdval)
        {
            return new ValueTask<(PtPtr Pte, SpinLock Ptl)?>((p, ptl));
        }
        return PteOffsetMapLockRetry(mm, pmd, addr, ptl, fn);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<(PtPtr Pte, SpinLock Ptl)?> PteOffsetMapLockSlow(MmStruct mm, PtPtr pmd, ulong addr,
        Pmd pmdval, PtPtr p, SpinLock ptl, ValueTask locked, string fn)
    {
        await locked;
        if (PmdpGet(pmd) == pmdval)
        {
            return (p, ptl);
        }
        return await PteOffsetMapLockRetry(mm, pmd, addr, ptl, fn);
    }

    /// <summary>The PMD changed while we waited for the lock: unlock and start over.</summary>
    private async ValueTask<(PtPtr Pte, SpinLock Ptl)?> PteOffsetMapLockRetry(MmStruct mm, PtPtr pmd, ulong addr,
        SpinLock held, string fn)
    {
        await held.Unlock(fn);
        while (true)
        {
            var pmdval = PmdpGet(pmd);
            var pte = PteOffsetMap(pmd, addr);
            if (pte is not { } p)
            {
                return null;
            }
            var ptl = PteLockptr(mm, p.Table);
            await ptl.Lock(fn);
            if (PmdpGet(pmd) == pmdval)
            {
                return (p, ptl);
            }
            await ptl.Unlock(fn);
        }
    }

    /// <summary>pte_unmap_unlock().</summary>
    /// <remarks>Context: <paramref name="ptl"/> held (from pte_offset_map_lock()).</remarks>
    [KernelSymbol("pte_unmap_unlock", "include/linux/mm.h")]
    public ValueTask PteUnmapUnlock(PtPtr pte, SpinLock ptl, [CallerMemberName] string fn = "") => ptl.Unlock(fn);

    // ---- allocation: p?d_alloc() and the install-under-lock re-checks ----

    /// <summary>p4d_alloc(): inline fast path; __p4d_alloc() only when the PGD entry is empty.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; may sleep; no page-table lock held.</remarks>
    [KernelSymbol("p4d_alloc", "include/linux/mm.h")]
    public ValueTask<PtPtr?> P4dAlloc(MmStruct mm, PtPtr pgd, ulong addr) =>
        PgdNone(PgdpGet(pgd)) ? P4dAllocSlow(mm, pgd, addr) : new ValueTask<PtPtr?>(P4dOffset(pgd, addr));

    private async ValueTask<PtPtr?> P4dAllocSlow(MmStruct mm, PtPtr pgd, ulong addr) =>
        await __P4dAlloc(mm, pgd, addr) != 0 ? null : P4dOffset(pgd, addr);

    /// <summary>pud_alloc(): __pud_alloc() only when the P4D entry is empty.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; may sleep; no page-table lock held.</remarks>
    [KernelSymbol("pud_alloc", "include/linux/mm.h")]
    public ValueTask<PtPtr?> PudAlloc(MmStruct mm, PtPtr p4d, ulong addr) =>
        P4dNone(P4dpGet(p4d)) ? PudAllocSlow(mm, p4d, addr) : new ValueTask<PtPtr?>(PudOffset(p4d, addr));

    private async ValueTask<PtPtr?> PudAllocSlow(MmStruct mm, PtPtr p4d, ulong addr) =>
        await __PudAlloc(mm, p4d, addr) != 0 ? null : PudOffset(p4d, addr);

    /// <summary>pmd_alloc(): __pmd_alloc() only when the PUD entry is empty.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; may sleep; no page-table lock held.</remarks>
    [KernelSymbol("pmd_alloc", "include/linux/mm.h")]
    public ValueTask<PtPtr?> PmdAlloc(MmStruct mm, PtPtr pud, ulong addr) =>
        PudNone(PudpGet(pud)) ? PmdAllocSlow(mm, pud, addr) : new ValueTask<PtPtr?>(PmdOffset(pud, addr));

    private async ValueTask<PtPtr?> PmdAllocSlow(MmStruct mm, PtPtr pud, ulong addr) =>
        await __PmdAlloc(mm, pud, addr) != 0 ? null : PmdOffset(pud, addr);

    /// <summary>__p4d_alloc(): allocate, then install under page_table_lock unless someone beat us.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; takes mm->page_table_lock to install.</remarks>
    [KernelSymbol("__p4d_alloc", "mm/memory.c")]
    public async ValueTask<int> __P4dAlloc(MmStruct mm, PtPtr pgd, ulong addr)
    {
        var n = TryNewPageTable(mm, 4);
        if (n is null)
        {
            return -Errno.ENOMEM;
        }
        await mm.PageTableLock.Lock();
        if (PgdPresent(PgdpGet(pgd)) && !PgTable.PgdNoneValue(PgdpGet(pgd)))
        {
            FreePageTable(n);
        }
        else
        {
            PgdPopulate(mm, pgd, n, addr);
        }
        await mm.PageTableLock.Unlock();
        return 0;
    }

    /// <summary>__pud_alloc().</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; takes mm->page_table_lock to install.</remarks>
    [KernelSymbol("__pud_alloc", "mm/memory.c")]
    public async ValueTask<int> __PudAlloc(MmStruct mm, PtPtr p4d, ulong addr)
    {
        var n = TryNewPageTable(mm, 3);
        if (n is null)
        {
            return -Errno.ENOMEM;
        }
        await mm.PageTableLock.Lock();
        if (!PgTable.P4dNone(P4dpGet(p4d)))
        {
            FreePageTable(n);
        }
        else
        {
            P4dPopulate(mm, p4d, n, addr);
        }
        await mm.PageTableLock.Unlock();
        return 0;
    }

    /// <summary>__pmd_alloc(): install under pud_lock() (page_table_lock).</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; takes pud_lock() to install.</remarks>
    [KernelSymbol("__pmd_alloc", "mm/memory.c")]
    public async ValueTask<int> __PmdAlloc(MmStruct mm, PtPtr pud, ulong addr)
    {
        var n = TryNewPageTable(mm, 2);
        if (n is null)
        {
            return -Errno.ENOMEM;
        }
        var ptl = await PudLock(mm, pud);
        if (!PgTable.PudNone(PudpGet(pud)))
        {
            FreePageTable(n);
        }
        else
        {
            PudPopulate(mm, pud, n, addr);
        }
        await ptl.Unlock();
        return 0;
    }

    /// <summary>pte_alloc_one(): a PTE table page, not yet installed.</summary>
    /// <remarks>Context: may sleep (GFP_PGTABLE_USER); no page-table lock held.</remarks>
    [KernelSymbol("pte_alloc_one", "include/asm-generic/pgalloc.h")]
    public PageTable? PteAllocOne(MmStruct mm) => TryNewPageTable(mm, 1);

    /// <summary>
    /// pmd_install(): installs a preallocated PTE table under the PMD lock if the PMD is still none;
    /// otherwise the caller frees it. Returns whether it was consumed.
    /// </summary>
    /// <remarks>Context: mmap_lock or VMA read lock; takes pmd_lock() to install.</remarks>
    [KernelSymbol("pmd_install", "mm/memory.c")]
    public async ValueTask<bool> PmdInstall(MmStruct mm, PtPtr pmd, PageTable pte, ulong addr)
    {
        var ptl = await PmdLock(mm, pmd);
        bool installed = false;
        if (PmdNone(PmdpGet(pmd)))
        {
            PmdPopulate(mm, pmd, pte, addr);
            installed = true;
        }
        await ptl.Unlock();
        return installed;
    }

    /// <summary>__pte_alloc(): 0 or -ENOMEM.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock (the tables above cannot be freed under it); no PTL held.</remarks>
    [KernelSymbol("__pte_alloc", "mm/memory.c")]
    public async ValueTask<int> __PteAlloc(MmStruct mm, PtPtr pmd, ulong addr)
    {
        var n = PteAllocOne(mm);
        if (n is null)
        {
            return -Errno.ENOMEM;
        }
        if (!await PmdInstall(mm, pmd, n, addr))
        {
            FreePageTable(n);
        }
        return 0;
    }

    /// <summary>pte_alloc(): true on failure, as the kernel's macro.</summary>
    /// <remarks>Context: mmap_lock or VMA read lock; may sleep; no page-table lock held.</remarks>
    [KernelSymbol("pte_alloc", "include/linux/mm.h")]
    public ValueTask<bool> PteAlloc(MmStruct mm, PtPtr pmd, ulong addr) =>
        PmdNone(PmdpGet(pmd)) ? PteAllocSlow(mm, pmd, addr) : new ValueTask<bool>(false);

    private async ValueTask<bool> PteAllocSlow(MmStruct mm, PtPtr pmd, ulong addr) =>
        await __PteAlloc(mm, pmd, addr) != 0;

    /// <summary>
    /// Walks to the PMD slot for <paramref name="addr"/>, allocating tables on the way
    /// (the prefix of __handle_mm_fault() and get_locked_pte()). Null on -ENOMEM.
    /// </summary>
    public async ValueTask<PtPtr?> WalkAllocPmd(MmStruct mm, ulong addr)
    {
        var pgd = PgdOffset(mm, addr);
        if (await P4dAlloc(mm, pgd, addr) is not { } p4d)
        {
            return null;
        }
        if (await PudAlloc(mm, p4d, addr) is not { } pud)
        {
            return null;
        }
        return await PmdAlloc(mm, pud, addr);
    }

    /// <summary>
    /// Walks to the PMD slot without allocating; null if an upper level is empty or a leaf
    /// (the walk of follow_page_mask(), mm_find_pmd()).
    /// </summary>
    /// <remarks>Context: the upper tables kept alive by the mmap lock, the VMA lock or an rmap lock (or the lockless
    /// GUP-fast walk); reads each level without a page-table lock.</remarks>
    [KernelSymbol("mm_find_pmd", "mm/rmap.c")]
    public PtPtr? MmFindPmd(MmStruct mm, ulong addr)
    {
        var pgd = PgdOffset(mm, addr);
        if (PgdNone(PgdpGet(pgd)))
        {
            return null;
        }
        var p4d = P4dOffset(pgd, addr);
        if (P4dNone(P4dpGet(p4d)))
        {
            return null;
        }
        var pud = PudOffset(p4d, addr);
        var pudv = PudpGet(pud);
        if (PudNone(pudv) || PudLeaf(pudv))
        {
            return null;
        }
        return PmdOffset(pud, addr);
    }

    /// <summary>Walks to the PTE slot without allocating (no locks: for the model's observers).</summary>
    public PtPtr? WalkPte(MmStruct mm, ulong addr)
    {
        if (MmFindPmd(mm, addr) is not { } pmd)
        {
            return null;
        }
        return PteOffsetMap(pmd, addr);
    }

    // ---- freeing: free_pgtables() → free_pgd_range() → … → free_pte_range() ----

    /// <summary>
    /// free_pgd_range(): frees the page tables that map only [addr, end), staying clear of the
    /// tables [floor, ceiling) keeps using (a neighbouring VMA's). The same level-by-level descent
    /// and rounding as the kernel.
    /// </summary>
    /// <remarks>Context: mmap_lock held (write, or read after munmap's downgrade); the VMAs are out of the tree and
    /// unlinked from rmap, so no walker reaches these tables. Takes no page-table lock.</remarks>
    [KernelSymbol("free_pgd_range", "mm/memory.c")]
    public void FreePgdRange(MmStruct mm, ulong addr, ulong end, ulong floor, ulong ceiling)
    {
        ulong pmdMask = Paging.PmdSize - 1;
        addr &= ~pmdMask;
        if (addr < floor)
        {
            addr += Paging.PmdSize;
            if (addr == 0)
            {
                return;
            }
        }
        if (ceiling != 0)
        {
            ceiling &= ~pmdMask;
            if (ceiling == 0)
            {
                return;
            }
        }
        if (end - 1 > ceiling - 1)
        {
            end -= Paging.PmdSize;
        }
        if (addr > end - 1)
        {
            return;
        }
        var pgd = PgdOffset(mm, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PgdirShift);
            if (!PgdNone(PgdpGet(pgd)) && PgdPresent(PgdpGet(pgd)))
            {
                FreeP4dRange(mm, pgd, addr, next, floor, ceiling);
            }
            pgd = pgd with { Index = pgd.Index + 1 };
            addr = next;
        }
        while (addr != end && pgd.Index < Paging.PtrsPerPgd);
    }

    /// <remarks>Context: as free_pgd_range().</remarks>
    [KernelSymbol("free_p4d_range", "mm/memory.c")]
    private void FreeP4dRange(MmStruct mm, PtPtr pgd, ulong addr, ulong end, ulong floor, ulong ceiling)
    {
        ulong start = addr;
        var p4d = P4dOffset(pgd, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.P4dShift);
            if (!P4dNone(P4dpGet(p4d)))
            {
                FreePudRange(mm, p4d, addr, next, floor, ceiling);
            }
            p4d = p4d with { Index = p4d.Index + 1 };
            addr = next;
        }
        while (addr != end && !Paging.P4dFolded);
        if (!Paging.P4dFolded)
        {
            FreeTableIfUnused(mm, pgd, start, end, floor, ceiling, Paging.PgdirShift);
        }
    }

    /// <remarks>Context: as free_pgd_range().</remarks>
    [KernelSymbol("free_pud_range", "mm/memory.c")]
    private void FreePudRange(MmStruct mm, PtPtr p4d, ulong addr, ulong end, ulong floor, ulong ceiling)
    {
        ulong start = addr;
        var pud = PudOffset(p4d, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PudShift);
            var v = PudpGet(pud);
            if (!PudNone(v) && !PudLeaf(v))
            {
                FreePmdRange(mm, pud, addr, next, floor, ceiling);
            }
            pud = pud with { Index = pud.Index + 1 };
            addr = next;
        }
        while (addr != end && !Paging.PudFolded);
        if (!Paging.PudFolded)
        {
            FreeTableIfUnused(mm, p4d, start, end, floor, ceiling, Paging.P4dShift);
        }
    }

    /// <remarks>Context: as free_pgd_range().</remarks>
    [KernelSymbol("free_pmd_range", "mm/memory.c")]
    private void FreePmdRange(MmStruct mm, PtPtr pud, ulong addr, ulong end, ulong floor, ulong ceiling)
    {
        ulong start = addr;
        var pmd = PmdOffset(pud, addr);
        do
        {
            ulong next = PagingMode.AddrEnd(addr, end, Paging.PmdShift);
            var v = PmdpGet(pmd);
            if (!PmdNone(v) && !PgTable.PmdLeaf(v))
            {
                FreePteRange(mm, pmd, addr);
            }
            pmd = pmd with { Index = pmd.Index + 1 };
            addr = next;
        }
        while (addr != end && !Paging.PmdFolded);
        if (!Paging.PmdFolded)
        {
            FreeTableIfUnused(mm, pud, start, end, floor, ceiling, Paging.PudShift);
        }
    }

    /// <summary>free_pte_range(): clears the PMD and frees the PTE table.</summary>
    /// <remarks>Context: as free_pgd_range().</remarks>
    [KernelSymbol("free_pte_range", "mm/memory.c")]
    private void FreePteRange(MmStruct mm, PtPtr pmd, ulong addr)
    {
        var table = TableOf(PmdpGet(pmd).Val);
        PmdClear(pmd, addr);
        FreePageTable(table);
    }

    /// <summary>
    /// The tail of free_p?d_range(): the table under <paramref name="parent"/> is freed only if the
    /// range, rounded out to the parent's coverage, lies within [floor, ceiling).
    /// </summary>
    private void FreeTableIfUnused(MmStruct mm, PtPtr parent, ulong start, ulong end, ulong floor, ulong ceiling, int parentShift)
    {
        ulong mask = (1UL << parentShift) - 1;
        start &= ~mask;
        if (start < floor)
        {
            return;
        }
        if (ceiling != 0)
        {
            ceiling &= ~mask;
            if (ceiling == 0)
            {
                return;
            }
        }
        if (end - 1 > ceiling - 1)
        {
            return;
        }
        ulong v = parent.Table.Entries[parent.Index];
        if (v == 0)
        {
            return;
        }
        var table = TableOf(v);
        WriteEntry(parent, 0, start);
        FreePageTable(table);
    }
}

using static Linux.PgTable;

namespace Linux;

// mm/memory.c: helpers shared by the fault, copy and zap paths; include/linux/mm.h counters.
public sealed partial class Kernel
{
    /// <summary>
    /// vm_normal_page(): the struct page behind a PTE, or null for "special" mappings that have
    /// none or must not be refcounted: raw PFN maps, the zero page, and (without pte_special)
    /// the linear originals of a COW PFN map.
    /// </summary>
    /// <remarks>Context: the PTL held, or a PTE value the caller revalidates under it; the VMA stable. Does not
    /// sleep.</remarks>
    [KernelSymbol("vm_normal_page", "mm/memory.c")]
    public Page? VmNormalPage(VmAreaStruct vma, ulong addr, Pte pte)
    {
        ulong pfn = PtePfn(pte);
        if (PteSpecial(pte))
        {
            if ((vma.VmFlags & (VmFlags.VM_PFNMAP | VmFlags.VM_MIXEDMAP)) != 0)
            {
                return null;
            }
            if (IsZeroPfn(pfn))
            {
                return null;
            }
            PrintBadPte(vma, addr, pte, "special PTE outside a PFN map");
            return null;
        }
        if (!PfnValid(pfn))
        {
            PrintBadPte(vma, addr, pte, "non-special PTE without a struct page");
            return null;
        }
        return new Page(pfn);
    }

    /// <summary>vm_normal_folio().</summary>
    /// <remarks>Context: as vm_normal_page().</remarks>
    [KernelSymbol("vm_normal_folio", "mm/memory.c")]
    public Folio? VmNormalFolio(VmAreaStruct vma, ulong addr, Pte pte) =>
        VmNormalPage(vma, addr, pte) is { } p ? new Folio(p.Pfn) : null;

    /// <summary>print_bad_pte(): "BUG: Bad page map" — a report, the kernel carries on.</summary>
    /// <remarks>Context: any; reports and carries on.</remarks>
    [KernelSymbol("print_bad_pte", "mm/memory.c")]
    private void PrintBadPte(VmAreaStruct vma, ulong addr, Pte pte, string why) =>
        Violation(Invariants.Bug, $"Bad page map in {vma} at {addr:x}: {pte} ({why})", "print_bad_pte");

    /// <summary>maybe_mkwrite(): writable only if the VMA is.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("maybe_mkwrite", "include/linux/mm.h")]
    public static Pte MaybeMkwrite(Pte pte, VmAreaStruct vma) =>
        (vma.VmFlags & VmFlags.VM_WRITE) != 0 ? PteMkwriteNovma(pte) : pte;

    /// <summary>pte_mkdirty(): D, and soft-dirty when CONFIG_MEM_SOFT_DIRTY.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("pte_mkdirty", "arch/x86/include/asm/pgtable.h")]
    public Pte PteMkdirty(Pte pte) =>
        new(pte.Val | X86Pte._PAGE_DIRTY | (Config.MemSoftDirty ? X86Pte._PAGE_SOFT_DIRTY_BIT : 0));

    /// <summary>mk_pte() / folio_mk_pte().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("mk_pte", "include/linux/mm.h")]
    public static Pte MkPte(Page page, PgProt prot) => PfnPte(page.Pfn, prot);

    /// <remarks>Context: any; does not sleep (a per-CPU counter in the kernel). Callers usually hold the PTL of the
    /// entries they account.</remarks>
    [KernelSymbol("add_mm_counter", "include/linux/mm.h")]
    public void AddMmCounter(MmStruct mm, MmCounter member, long value)
    {
        Sched.Access(ObjId.Make(ObjId.Kind.Other, 0x1000_0000UL + (ulong)mm.Id), write: true);
        mm.RssStat[(int)member] += value;
    }

    public void IncMmCounter(MmStruct mm, MmCounter member) => AddMmCounter(mm, member, 1);

    public void DecMmCounter(MmStruct mm, MmCounter member) => AddMmCounter(mm, member, -1);

    /// <summary>mm_counter_file(): shmem pages are counted apart from other file pages.</summary>
    /// <remarks>Context: any; the caller holds a reference to the folio.</remarks>
    [KernelSymbol("mm_counter_file", "include/linux/mm.h")]
    public MmCounter MmCounterFile(Folio f) =>
        FolioTest(f, PageFlags.PG_swapbacked) ? MmCounter.MM_SHMEMPAGES : MmCounter.MM_FILEPAGES;

    /// <summary>mm_counter().</summary>
    /// <remarks>Context: any; the caller holds a reference to the folio.</remarks>
    [KernelSymbol("mm_counter", "include/linux/mm.h")]
    public MmCounter MmCounterOf(Folio f) => FolioTestAnon(f) ? MmCounter.MM_ANONPAGES : MmCounterFile(f);

    /// <summary>check_stable_address_space(): the OOM reaper may be tearing the mm down.</summary>
    /// <remarks>Context: the PTL held, just before a fault installs an entry in a private mapping.</remarks>
    [KernelSymbol("check_stable_address_space", "include/linux/oom.h")]
    public static VmFault CheckStableAddressSpace(MmStruct mm) =>
        (mm.Flags & MmStruct.MMF_UNSTABLE) != 0 ? VmFault.VM_FAULT_SIGBUS : VmFault.None;

    /// <summary>copy_user_highpage(): the contents of one page into another.</summary>
    /// <remarks>Context: any; does not sleep (fork calls it under both PTLs). The caller holds references to both
    /// pages.</remarks>
    [KernelSymbol("copy_user_highpage", "include/linux/highmem.h")]
    public void CopyUserHighpage(Page to, Page from)
    {
        Sched.Access(ObjId.Folio(from.Pfn), write: false);
        Sched.Access(ObjId.Folio(to.Pfn), write: true);
        Mem.CopyFrame(to.Pfn, from.Pfn);
        if (Mem.HasContent(to.Pfn))
        {
            MemMap.Flags(to.Pfn) |= (uint)PageFlags.ModelHasContent;
        }
    }

    // ---- the folio lock (PG_locked with a wait queue per contended folio) ----

    private readonly Dictionary<ulong, FolioLockState> _folioLocks = [];

    private sealed class FolioLockState(Kernel k, ulong pfn) : LockBase(k, LockClass.FolioLock, new LockLabel("folio(pfn ", pfn, ").lock", Hex: true))
    {
        public readonly WaitQueueHead Sleepers = new(k);
        public TaskStruct? Owner;

        public override bool IsHeldBy(TaskStruct t) => Owner == t;

        public override bool IsLocked => Owner is not null;
    }

    private FolioLockState FolioLockOf(ulong pfn)
    {
        if (!_folioLocks.TryGetValue(pfn, out var s))
        {
            _folioLocks[pfn] = s = new FolioLockState(this, pfn);
        }
        return s;
    }

    /// <summary>folio_lock(): sleeps until PG_locked is ours.</summary>
    /// <remarks>Context: may sleep: no spinlock held; the folio lock nests inside mmap_lock and
    /// outside i_mmap_rwsem and the page-table locks.</remarks>
    [KernelSymbol("folio_lock", "include/linux/pagemap.h")]
    public async ValueTask FolioLock(Folio f, [CallerMemberName] string fn = "")
    {
        var s = FolioLockOf(f.Pfn);
        await Sched.LockPoint(SchedPointKind.LockAcquire, s, "folio_lock", fn);
        Sched.Access(s.Obj, write: true);
        var t = Current!;
        MightSleep(fn);
        LockdepAcquire(t, s, 0, read: false, trylock: false, fn);
        while (FolioTest(f, PageFlags.PG_locked))
        {
            await s.Sleepers.Sleep(fn);
        }
        FolioSet(f, PageFlags.PG_locked);
        s.Owner = t;
    }

    /// <summary>folio_trylock(): false when PG_locked is someone's.</summary>
    /// <remarks>Context: any; does not sleep.</remarks>
    [KernelSymbol("folio_trylock", "include/linux/pagemap.h")]
    public async ValueTask<bool> FolioTrylock(Folio f, [CallerMemberName] string fn = "")
    {
        var s = FolioLockOf(f.Pfn);
        await Sched.LockPoint(SchedPointKind.LockAcquire, s, "folio_trylock", fn);
        Sched.Access(s.Obj, write: true);
        if (FolioTest(f, PageFlags.PG_locked))
        {
            return false;
        }
        var t = Current!;
        LockdepAcquire(t, s, 0, read: false, trylock: true, fn);
        FolioSet(f, PageFlags.PG_locked);
        s.Owner = t;
        return true;
    }

    /// <summary>folio_unlock(): clears PG_locked and wakes waiters.</summary>
    /// <remarks>Context: the folio locked by the caller.</remarks>
    [KernelSymbol("folio_unlock", "mm/filemap.c")]
    public async ValueTask FolioUnlock(Folio f, [CallerMemberName] string fn = "")
    {
        var s = FolioLockOf(f.Pfn);
        await Sched.LockPoint(SchedPointKind.LockRelease, s, "folio_unlock", fn);
        Sched.Access(s.Obj, write: true);
        var t = Current!;
        if (!FolioTest(f, PageFlags.PG_locked))
        {
            Bug($"folio_unlock of unlocked pfn {f.Pfn:x}", fn);
        }
        FolioClear(f, PageFlags.PG_locked);
        s.Owner = null;
        LockdepRelease(t, s, fn);
        if (s.Sleepers.HasSleepers)
        {
            s.Sleepers.WakeUpAll();
        }
        else
        {
            _folioLocks.Remove(f.Pfn);
        }
    }
}

using static Linux.PgTable;

namespace Linux;

/// <summary>A checkable invariant: a stable name (see <see cref="Invariants"/>), a check that
/// returns the violations it sees in the kernel's current state, and the kinds of object the check
/// reads (<see cref="ObjKinds.All"/> unless it says less). A step that writes none of them cannot
/// change its verdict: the explorer neither runs the checks after it nor orders it against the
/// steps that do, so a declaration that leaves out a kind the check reads hides violations.</summary>
public sealed record KernelInvariant(string Name, string Description, Func<Kernel, IEnumerable<string>> Check,
    ObjKinds Reads = ObjKinds.All);

// The built-in mm invariants, checked by the explorer after the steps that may change them. Each
// holds only outside the critical sections that update it, so checks that read page tables and
// folio counters wait while a page-table lock's holder is mid-update (PageTablesBusy).
public sealed partial class Kernel
{
    /// <summary>What the built-in checks read: page tables, folio descriptors, VMAs and their trees,
    /// page caches, resources, driver and mm state, and the locks (a page-table check waits while a
    /// PTL is held). None reads user memory, a TLB or the page allocator's free lists: a folio's
    /// being free is its descriptor's state, which freeing writes too.</summary>
    private const ObjKinds MmStateKinds = ObjKinds.All & ~(ObjKinds.Word | ObjKinds.Tlb | ObjKinds.Allocator);

    /// <summary>The built-in invariants; a check takes the kernel, so one set serves every instance.</summary>
    private static readonly KernelInvariant[] BuiltinInvariants =
    [
        new(Invariants.RmapComplete,
            "a folio's mapcount equals the page-table entries that map it, and rmap finds each of them",
            k => k.CheckRmapComplete(), MmStateKinds),
        new(Invariants.AnonExclusive,
            "a writable anonymous PTE maps a PageAnonExclusive page",
            k => k.CheckAnonExclusive(), MmStateKinds),
        new(Invariants.RefCount,
            "a mapped folio holds at least one reference per mapping and is not free",
            k => k.CheckRefcounts(), MmStateKinds),
        // The device layer's (Drivers/DeviceInvariants.cs): cheap when no revoke or write-notify backer exists.
        new(Invariants.RevokedIomemMapped,
            "after a revoke of an iomem range (a region claim, a vfio memory disable) returns, no user PTE maps it until it is released",
            k => k.CheckRevokedIomemMapped(), MmStateKinds),
        new(Invariants.WriteNotify,
            "in a write-notify VMA a PTE is writable only if the backer's mkwrite ran for the page since it was last cleaned",
            k => k.CheckWriteNotify(), MmStateKinds),
    ];

    private readonly List<KernelInvariant> _invariants = [.. BuiltinInvariants];

    /// <summary>The registered invariants, built-in first.</summary>
    public IReadOnlyList<KernelInvariant> InvariantRegistry => _invariants;

    /// <summary>The kinds of object some registered invariant reads.</summary>
    public ObjKinds InvariantReads { get; private set; } = s_builtinReads;

    private static readonly ObjKinds s_builtinReads = BuiltinInvariants.Aggregate(ObjKinds.None, (r, i) => r | i.Reads);

    /// <summary>Adds an invariant to the registry: later layers (devices, notifiers) and tests add theirs here.</summary>
    public void RegisterInvariant(KernelInvariant invariant)
    {
        ArgumentNullException.ThrowIfNull(invariant);
        _invariants.Add(invariant);
        InvariantReads |= invariant.Reads;
    }

    /// <summary>A user PTE of a live mm, as the page-table checks read it.</summary>
    private readonly record struct PteLeaf(MmStruct Mm, VmAreaStruct Vma, ulong Addr, ulong Entry);

    /// <summary>Scratch for <see cref="PteLeaves"/>, per thread: a thread runs one kernel's checks
    /// at a time, and an explorer checks after most steps of every execution.</summary>
    [ThreadStatic]
    private static List<PteLeaf>? t_pteLeaves;

    /// <summary>During a <see cref="CheckInvariants"/> pass that runs the page-table checks, the user
    /// PTEs, walked once at its start (the checks only read); null otherwise.</summary>
    private List<PteLeaf>? _passPteLeaves;

    /// <summary>
    /// Whether some task is inside a page-table lock's section and has written state the checks
    /// read since it took the lock: the checks of mapcounts wait until such an update is complete.
    /// A holder that has written nothing yet has changed nothing, so it does not hold them up; its
    /// release after a write is itself a write (<see cref="PageTablesQuiescedObj"/>), so the moments
    /// the checks may run are decided by the writes alone, in whatever order they come. Without a
    /// scheduler that counts writes, every holder counts as having written.
    /// </summary>
    public bool PageTablesBusy()
    {
        bool counted = Sched.RecordsFootprint;
        foreach (var t in Tasks)
        {
            foreach (var h in t.HeldLocks)
            {
                if (IsPageTableLock(h.Lock) && (!counted || h.CheckedWrites != t.CheckedWrites))
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>The object a page-table lock's release writes when its holder wrote under it: the
    /// page-table checks' waiting ends there.</summary>
    internal static readonly ulong PageTablesQuiescedObj = ObjId.Make(ObjId.Kind.Other, ObjId.IdMask - 1);

    private static bool IsPageTableLock(LockBase l) => l.Class == LockClass.PtLock || l.Class == LockClass.PageTableLock;

    /// <summary>Runs every registered invariant and returns the violations; the explorer calls
    /// this after the steps that changed state. The built-in checks allocate nothing when everything holds.</summary>
    public IEnumerable<(string Invariant, string Message)> CheckInvariants()
    {
        bool quiet = !PageTablesBusy();
        List<(string, string)>? found = null;
        _passPteLeaves = quiet ? CollectPteLeaves(t_pteLeaves ??= []) : null;
        try
        {
            foreach (var inv in _invariants)
            {
                if (!quiet && inv.Name is Invariants.RmapComplete or Invariants.AnonExclusive or Invariants.RefCount)
                {
                    continue;
                }
                foreach (var msg in inv.Check(this))
                {
                    (found ??= []).Add((inv.Name, msg));
                }
            }
        }
        finally
        {
            _passPteLeaves?.Clear();
            _passPteLeaves = null;
        }
        return (IEnumerable<(string, string)>?)found ?? [];
    }

    /// <summary>Every user PTE (present or not, not none) of every live mm, with its VMA: the pass's
    /// walk inside <see cref="CheckInvariants"/>, a fresh one outside it.</summary>
    private List<PteLeaf> PteLeaves() => _passPteLeaves ?? CollectPteLeaves([]);

    private List<PteLeaf> CollectPteLeaves(List<PteLeaf> list)
    {
        foreach (var mm in Mms)
        {
            if (mm == InitMm || mm.Dead)
            {
                continue;
            }
            for (int i = 0; i < mm.MmMt.Count; i++)
            {
                var vma = mm.MmMt[i];
                for (ulong a = vma.VmStart; NextLeaf(mm, ref a, vma.VmEnd, out ulong e, out int level);
                     a = PagingMode.AddrEnd(a, vma.VmEnd, Paging.ShiftOfLevel(level)))
                {
                    if (level == 1)
                    {
                        list.Add(new PteLeaf(mm, vma, a, e));
                    }
                }
            }
        }
        return list;
    }

    /// <summary>
    /// The non-none leaf entries mapping [start, end) of <paramref name="mm"/>: PTEs (present or not)
    /// and huge leaves. A walk that stops above the PTE level skips everything the stopping entry
    /// covers, so a large sparse mapping costs its page tables, not its size.
    /// </summary>
    internal IEnumerable<(ulong Addr, ulong Entry, int Level)> LeavesInRange(MmStruct mm, ulong start, ulong end)
    {
        for (ulong a = start; NextLeaf(mm, ref a, end, out ulong e, out int level); a = PagingMode.AddrEnd(a, end, Paging.ShiftOfLevel(level)))
        {
            yield return (a, e, level);
        }
    }

    /// <summary>Moves <paramref name="addr"/> to the first non-none leaf entry at or above it, below
    /// <paramref name="end"/> (see <see cref="LeavesInRange"/>); false when there is none.</summary>
    private bool NextLeaf(MmStruct mm, ref ulong addr, ulong end, out ulong entry, out int level)
    {
        for (; addr < end; addr = PagingMode.AddrEnd(addr, end, Paging.ShiftOfLevel(level)))
        {
            if (PeekLeaf(mm, addr, out entry, out level) && (level != 1 || !PteNone(new Pte(entry))))
            {
                return true;
            }
        }
        (entry, level) = (0, 0);
        return false;
    }

    /// <summary>The folio an entry references for rmap purposes (present normal pages and device entries).</summary>
    private Folio? RmapFolioOf(VmAreaStruct vma, ulong entry)
    {
        var pte = new Pte(entry);
        if (PtePresent(pte))
        {
            return VmNormalPageQuiet(vma, pte) is { } p ? new Folio(p.Pfn) : null;
        }
        var swp = SwapOps.PteToSwpEntry(pte);
        if (SwapOps.IsDevicePrivateEntry(swp) || SwapOps.IsDeviceExclusiveEntry(swp))
        {
            return new Folio(SwapOps.SwpOffsetPfn(swp));
        }
        return null;
    }

    /// <summary>What a check found: the checks below make their list at the first violation, so
    /// that one finding nothing (nearly every one the explorer runs) allocates nothing. The empty
    /// result is the shared empty array (typed as the list, [] would be a new List).</summary>
    private static IEnumerable<string> Found(List<string>? bad) => (IEnumerable<string>?)bad ?? [];

    private IEnumerable<string> CheckRmapComplete()
    {
        List<string>? bad = null;
        var counts = t_mapCounts ??= [];
        foreach (var (mm, vma, addr, e) in PteLeaves())
        {
            if (RmapFolioOf(vma, e) is not { } f)
            {
                continue;
            }
            counts[f.Pfn] = counts.GetValueOrDefault(f.Pfn) + 1;
            if (!RmapReaches(f, vma, addr))
            {
                (bad ??= []).Add($"rmap cannot find mm#{mm.Id} {addr:x} → pfn {f.Pfn:x} ({FolioMappingObject(f)?.ToString() ?? "no mapping"}, index {FolioIndex(f):x})");
            }
        }
        foreach (var (pfn, n) in counts)
        {
            int mc = MemMap.MapCount(pfn);
            if (mc != n)
            {
                (bad ??= []).Add($"pfn {pfn:x} has mapcount {mc} but {n} page-table entries map it");
            }
        }
        counts.Clear();
        return Found(bad);
    }

    /// <summary>Scratch of <see cref="CheckRmapComplete"/>: PTEs counted per PFN.</summary>
    [ThreadStatic]
    private static Dictionary<ulong, int>? t_mapCounts;

    private IEnumerable<string> CheckAnonExclusive()
    {
        if (Variants.DoWpPageReuse != Variants.WpReuseRule.AnonExclusive)
        {
            return [];
        }
        List<string>? bad = null;
        foreach (var (mm, vma, addr, e) in PteLeaves())
        {
            var pte = new Pte(e);
            if (!PtePresent(pte) || !PteWrite(pte) || VmNormalPageQuiet(vma, pte) is not { } p)
            {
                continue;
            }
            uint f = MemMap.PeekFlags(p.Pfn);
            if ((f & (uint)PageFlags.PAGE_MAPPING_ANON) != 0 && (f & (uint)PageFlags.PG_anon_exclusive) == 0)
            {
                (bad ??= []).Add($"mm#{mm.Id} maps anon pfn {p.Pfn:x} writable at {addr:x} but it is not PageAnonExclusive");
            }
        }
        return Found(bad);
    }

    private IEnumerable<string> CheckRefcounts()
    {
        List<string>? bad = null;
        foreach (var (mm, vma, addr, e) in PteLeaves())
        {
            if (RmapFolioOf(vma, e) is not { } f)
            {
                continue;
            }
            if (PageIsFree(f.Pfn))
            {
                (bad ??= []).Add($"mm#{mm.Id} maps freed pfn {f.Pfn:x} at {addr:x}");
            }
            else if (MemMap.RefCount(f.Pfn) < MemMap.MapCount(f.Pfn))
            {
                (bad ??= []).Add($"pfn {f.Pfn:x} has refcount {MemMap.RefCount(f.Pfn)} below its mapcount {MemMap.MapCount(f.Pfn)}");
            }
        }
        return Found(bad);
    }
}

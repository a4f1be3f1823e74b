using static Linux.PgTable;

namespace Linux;

/// <summary>A checkable invariant: a stable name (see <see cref="Invariants"/>) and a check that
/// returns the violations it sees in the kernel's current state.</summary>
public sealed record KernelInvariant(string Name, string Description, Func<Kernel, IEnumerable<string>> Check);

// The built-in mm invariants, checked by the explorer at every scheduling point. Each holds only
// outside the critical sections that update it, so checks that read page tables and folio
// counters run only while no page-table lock is held by anyone.
public sealed partial class Kernel
{
    /// <summary>The registry: later layers (devices, notifiers) add theirs here.</summary>
    public readonly List<KernelInvariant> InvariantRegistry = [];

    /// <summary>Set when page tables or folio counters changed since the last check.</summary>
    internal bool StateDirty = true;

    private void RegisterBuiltinInvariants()
    {
        InvariantRegistry.Add(new KernelInvariant(Invariants.RmapComplete,
            "a folio's mapcount equals the page-table entries that map it, and rmap finds each of them",
            k => k.CheckRmapComplete()));
        InvariantRegistry.Add(new KernelInvariant(Invariants.AnonExclusive,
            "a writable anonymous PTE maps a PageAnonExclusive page",
            k => k.CheckAnonExclusive()));
        InvariantRegistry.Add(new KernelInvariant(Invariants.RefCount,
            "a mapped folio holds at least one reference per mapping and is not free",
            k => k.CheckRefcounts()));
        // The device layer's (Drivers/DeviceInvariants.cs): cheap when no revoke or write-notify backer exists.
        InvariantRegistry.Add(new KernelInvariant(Invariants.RevokedIomemMapped,
            "after a revoke of an iomem range (a region claim, a vfio memory disable) returns, no user PTE maps it until it is released",
            k => k.CheckRevokedIomemMapped()));
        InvariantRegistry.Add(new KernelInvariant(Invariants.WriteNotify,
            "in a write-notify VMA a PTE is writable only if the backer's mkwrite ran for the page since it was last cleaned",
            k => k.CheckWriteNotify()));
    }

    /// <summary>Whether some task holds a page-table lock (checks of mapcounts wait for quiescence).</summary>
    public bool PageTablesBusy()
    {
        foreach (var t in Tasks)
        {
            foreach (var h in t.HeldLocks)
            {
                if (h.Lock.Class == LockClass.PtLock || h.Lock.Class == LockClass.PageTableLock)
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>Runs every registered invariant; the explorer calls this at each scheduling point.</summary>
    public IEnumerable<(string Invariant, string Message)> CheckInvariants()
    {
        bool quiet = !PageTablesBusy();
        foreach (var inv in InvariantRegistry)
        {
            if (!quiet && inv.Name is Invariants.RmapComplete or Invariants.AnonExclusive or Invariants.RefCount)
            {
                continue;
            }
            foreach (var msg in inv.Check(this))
            {
                yield return (inv.Name, msg);
            }
        }
    }

    /// <summary>Every user mapping of every live mm: (mm, vma, address, leaf entry, level).</summary>
    private IEnumerable<(MmStruct Mm, VmAreaStruct Vma, ulong Addr, ulong Entry)> AllLeafEntries()
    {
        foreach (var mm in Mms)
        {
            if (mm == InitMm || mm.Dead)
            {
                continue;
            }
            foreach (var vma in mm.MmMt.Snapshot())
            {
                foreach (var (a, e, level) in LeavesInRange(mm, vma.VmStart, vma.VmEnd))
                {
                    if (level == 1)
                    {
                        yield return (mm, vma, a, e);
                    }
                }
            }
        }
    }

    /// <summary>
    /// The non-none leaf entries mapping [start, end) of <paramref name="mm"/>: PTEs (present or not)
    /// and huge leaves. A walk that stops above the PTE level skips everything the stopping entry
    /// covers, so a large sparse mapping costs its page tables, not its size.
    /// </summary>
    internal IEnumerable<(ulong Addr, ulong Entry, int Level)> LeavesInRange(MmStruct mm, ulong start, ulong end)
    {
        for (ulong a = start; a < end;)
        {
            bool leaf = PeekLeaf(mm, a, out ulong e, out int level);
            if (leaf && (level != 1 || !PteNone(new Pte(e))))
            {
                yield return (a, e, level);
            }
            a = PagingMode.AddrEnd(a, end, Paging.ShiftOfLevel(level));
        }
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

    private IEnumerable<string> CheckRmapComplete()
    {
        var counts = new Dictionary<ulong, int>();
        foreach (var (mm, vma, addr, e) in AllLeafEntries())
        {
            if (RmapFolioOf(vma, e) is not { } f)
            {
                continue;
            }
            counts[f.Pfn] = counts.GetValueOrDefault(f.Pfn) + 1;
            bool found = RmapCandidates(f).Any(h => h.Vma == vma && h.Address == addr);
            if (!found)
            {
                yield return $"rmap cannot find mm#{mm.Id} {addr:x} → pfn {f.Pfn:x} ({FolioMappingObject(f)?.ToString() ?? "no mapping"}, index {FolioIndex(f):x})";
            }
        }
        foreach (var (pfn, n) in counts)
        {
            int mc = MemMap.MapCount(pfn);
            if (mc != n)
            {
                yield return $"pfn {pfn:x} has mapcount {mc} but {n} page-table entries map it";
            }
        }
    }

    private IEnumerable<string> CheckAnonExclusive()
    {
        if (Variants.DoWpPageReuse != Variants.WpReuseRule.AnonExclusive)
        {
            yield break;
        }
        foreach (var (mm, vma, addr, e) in AllLeafEntries())
        {
            var pte = new Pte(e);
            if (!PtePresent(pte) || !PteWrite(pte) || VmNormalPageQuiet(vma, pte) is not { } p)
            {
                continue;
            }
            uint f = MemMap.PeekFlags(p.Pfn);
            if ((f & (uint)PageFlags.PAGE_MAPPING_ANON) != 0 && (f & (uint)PageFlags.PG_anon_exclusive) == 0)
            {
                yield return $"mm#{mm.Id} maps anon pfn {p.Pfn:x} writable at {addr:x} but it is not PageAnonExclusive";
            }
        }
    }

    private IEnumerable<string> CheckRefcounts()
    {
        foreach (var (mm, vma, addr, e) in AllLeafEntries())
        {
            if (RmapFolioOf(vma, e) is not { } f)
            {
                continue;
            }
            if (PageIsFree(f.Pfn))
            {
                yield return $"mm#{mm.Id} maps freed pfn {f.Pfn:x} at {addr:x}";
            }
            else if (MemMap.RefCount(f.Pfn) < MemMap.MapCount(f.Pfn))
            {
                yield return $"pfn {f.Pfn:x} has refcount {MemMap.RefCount(f.Pfn)} below its mapcount {MemMap.MapCount(f.Pfn)}";
            }
        }
    }
}

using static Linux.PgTable;

namespace Linux;

/// <summary>
/// A range of physical addresses whose user mappings were revoked: from the moment the revoke
/// returned until <see cref="StillRevoked"/> turns false (the claim is released, device memory is
/// enabled again), no user page table may map a PFN of it in a VMA <see cref="Subject"/> selects.
/// </summary>
public sealed record RevokedRange(ulong Start, ulong End, Func<bool> StillRevoked, Func<VmAreaStruct?, bool> Subject, string What);

// The device layer's built-in invariants (design.md, "Built-in invariants"):
//   revoked-iomem-mapped — after a revoke returns, no user PTE maps the revoked range;
//   write-notify          — in a write-notify VMA a PTE is writable only for a page whose
//                           backer's ->page_mkwrite/->pfn_mkwrite has run since it was cleaned.
// Both read page tables directly (every mm, never i_mmap), as the explorer does at each point.
public sealed partial class Kernel
{
    private bool _devicesReady;
    private readonly List<RevokedRange> _revoked = [];
    private readonly HashSet<VmOperationsStruct> _writeNotifyOps = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<(int Mapping, ulong Pgoff)> _writeNotified = [];
    private readonly Dictionary<(int Mapping, ulong Pgoff), int> _writeNotifyInflight = [];

    /// <summary>
    /// Brings up the device layer once: the revoke hook of kernel/resource.c and /dev/mem (the
    /// device invariants are built in, Debug/Checks.cs). Every device entry point calls it;
    /// calling it again does nothing.
    /// </summary>
    public void EnsureDevices()
    {
        if (_devicesReady)
        {
            return;
        }
        _devicesReady = true;
        RevokeIomemHook = RevokeIomem;
        // iomem_init_inode() is an fs_initcall: the inode exists before any driver claims a region.
        _iomemInode ??= IomemInitInode();
        DevMemInit();
    }

    /// <summary>Ranges revoked and not yet released, oldest first (for observers).</summary>
    public IReadOnlyList<RevokedRange> RevokedRanges => _revoked;

    /// <summary>Records that a revoke of [start, end] just returned.</summary>
    internal void NoteRevocation(ulong start, ulong end, Func<bool> stillRevoked, Func<VmAreaStruct?, bool> subject, string what)
    {
        _revoked.RemoveAll(r => !r.StillRevoked());
        _revoked.Add(new RevokedRange(start, end, stillRevoked, subject, what));
    }

    /// <summary>
    /// Whether a mapping belongs to the raw physical-memory interfaces a region claim revokes:
    /// /dev/mem and PCI procfs/sysfs resource files, whatever their f_mapping (before
    /// 636b21b50152 procfs and sysfs had their own), and PTEs no VMA in the tree owns (a VMA
    /// populated before it was linked). A driver's own mapping of its region is not.
    /// </summary>
    internal bool IsRawIomemVma(VmAreaStruct? vma) =>
        vma is null || (vma.VmFile is { } f && (f.FMapping == _iomemInode?.IMapping || f.FInode.Kind is DevMemKind or ProcBusPciKind or PciSysfsResourceKind));

    /// <summary>A present user leaf: its mm, address, the PFN of its first page, how many pages,
    /// its level (1 PTE, 2 PMD, 3 PUD) and the entry.</summary>
    public readonly record struct UserLeaf(MmStruct Mm, ulong Addr, ulong Pfn, ulong Pages, int Level, ulong Entry);

    /// <summary>Scratch for the revoked-range check, per thread (see <see cref="t_pteLeaves"/>).</summary>
    [ThreadStatic]
    private static List<UserLeaf>? t_userLeaves;

    /// <summary>Every present user leaf of every live mm.</summary>
    public List<UserLeaf> UserLeaves()
    {
        var leaves = new List<UserLeaf>();
        CollectUserLeaves(leaves);
        return leaves;
    }

    private void CollectUserLeaves(List<UserLeaf> into)
    {
        into.Clear();
        foreach (var mm in Mms)
        {
            if (mm != InitMm && !mm.Dead)
            {
                WalkUserLeaves(into, mm, mm.Pgd, 5, 0);
            }
        }
    }

    private void WalkUserLeaves(List<UserLeaf> into, MmStruct mm, PageTable table, int entryLevel, ulong baseAddr)
    {
        var p = Paging;
        int shift = entryLevel == 5 ? p.PgdirShift : p.ShiftOfLevel(entryLevel);
        int next = NextLevel(entryLevel);
        for (int i = 0; i < table.Entries.Length; i++)
        {
            ulong v = table.Entries[i];
            if (v == 0)
            {
                continue;
            }
            ulong addr = baseAddr + ((ulong)i << shift);
            if (entryLevel == 5 && addr >= mm.TaskSize)
            {
                break;
            }
            if (entryLevel == 1)
            {
                var pte = new Pte(v);
                if (PtePresent(pte))
                {
                    into.Add(new UserLeaf(mm, addr, PtePfn(pte), 1, 1, v));
                }
                continue;
            }
            if ((v & X86Pte._PAGE_PRESENT) == 0)
            {
                continue;
            }
            // A huge leaf: a PMD or PUD with PSE, or a 2-level PGD entry with PSE (a 4 MiB page).
            bool leaf = (v & X86Pte._PAGE_PSE) != 0 && (entryLevel is 2 or 3 || (entryLevel == 5 && next == 1));
            if (leaf)
            {
                ulong pfn = (v & X86Pte.PTE_PFN_MASK & ~((1UL << shift) - 1)) >> PAGE_SHIFT;
                into.Add(new UserLeaf(mm, addr, pfn, 1UL << (shift - PAGE_SHIFT), entryLevel == 5 ? 2 : entryLevel, v));
                continue;
            }
            if (Handles.Get(MemMap.Mapping(TablePfn(v))) is PageTable child)
            {
                WalkUserLeaves(into, mm, child, next, addr);
            }
        }
    }

    /// <summary>The next level holding a table below <paramref name="level"/> (0 below PTEs).</summary>
    private int NextLevel(int level)
    {
        var p = Paging;
        for (int l = level - 1; l >= 1; l--)
        {
            if ((l == 4 && p.P4dFolded) || (l == 3 && p.PudFolded) || (l == 2 && p.PmdFolded))
            {
                continue;
            }
            return l;
        }
        return 0;
    }

    internal IEnumerable<string> CheckRevokedIomemMapped()
    {
        _revoked.RemoveAll(r => !r.StillRevoked());
        return _revoked.Count == 0 ? [] : CheckRevokedRangesMapped();
    }

    /// <summary>One finding per mapping (address space and VMA) that still maps a revoked range,
    /// naming the first page found and how many more there are: the check runs after most steps,
    /// and a message per mapped page at every one of them was most of what a violating exploration
    /// allocated.</summary>
    private IEnumerable<string> CheckRevokedRangesMapped()
    {
        List<(MmStruct Mm, RevokedRange Range, ulong Pfn, ulong Addr, int Level, VmAreaStruct? Vma, ulong Pages)>? hits = null;
        var leaves = t_userLeaves ??= [];
        CollectUserLeaves(leaves);
        foreach (var (mm, addr, pfn, pages, level, _) in leaves)
        {
            ulong first = pfn, last = pfn + pages - 1;
            foreach (var r in _revoked)
            {
                ulong rs = r.Start >> PAGE_SHIFT, re = r.End >> PAGE_SHIFT;
                if (last < rs || first > re)
                {
                    continue;
                }
                var vma = mm.MmMt.VmaLookup(addr);
                if (!r.Subject(vma))
                {
                    continue;
                }
                ulong n = Math.Min(last, re) - Math.Max(first, rs) + 1;
                hits ??= [];
                int i = hits.Count - 1;
                while (i >= 0 && !(hits[i].Mm == mm && hits[i].Vma == vma && hits[i].Range == r))
                {
                    i--;
                }
                if (i < 0)
                {
                    hits.Add((mm, r, Math.Max(first, rs), addr, level, vma, n));
                }
                else
                {
                    hits[i] = hits[i] with { Pages = hits[i].Pages + n };
                }
                break;
            }
        }
        leaves.Clear();
        if (hits is null)
        {
            yield break;
        }
        foreach (var (mm, r, pfn, addr, level, vma, pages) in hits)
        {
            string lvl = level switch { 1 => "PTE", 2 => "PMD", 3 => "PUD", _ => "leaf" };
            string more = pages > 1 ? $" and {pages - 1} more page(s) of the range" : "";
            yield return $"mm#{mm.Id} still maps pfn {pfn:x} at {addr:x} ({lvl}, " +
                         $"{(vma is null ? "no VMA in the tree" : vma.ToString() + " of " + vma.VmFile)}){more} after the revoke for {r.What}";
        }
    }

    // ---- write-notify ----

    /// <summary>
    /// Registers a backer's vm_operations for the write-notify invariant: its ->page_mkwrite and
    /// ->pfn_mkwrite are wrapped so that each call marks the page (file mapping, page offset) as
    /// notified. The backer clears the mark when it cleans the page (<see cref="NoteWriteNotifyCleaned"/>).
    /// </summary>
    public VmOperationsStruct TrackWriteNotify(VmOperationsStruct ops)
    {
        var tracked = new VmOperationsStruct
        {
            Name = ops.Name,
            Open = ops.Open,
            Close = ops.Close,
            MaySplit = ops.MaySplit,
            Mremap = ops.Mremap,
            Fault = ops.Fault,
            HugeFault = ops.HugeFault,
            MapPages = ops.MapPages,
            MapName = ops.MapName,
            PageMkwrite = ops.PageMkwrite is { } pm ? vmf => NotedMkwrite(vmf, pm) : null,
            PfnMkwrite = ops.PfnMkwrite is { } fm ? vmf => NotedMkwrite(vmf, fm) : null,
        };
        _writeNotifyOps.Add(tracked);
        return tracked;
    }

    private async ValueTask<VmFault> NotedMkwrite(VmFaultInfo vmf, Func<VmFaultInfo, ValueTask<VmFault>> mkwrite)
    {
        if (vmf.Vma.VmFile is not { } f)
        {
            return await mkwrite(vmf);
        }
        // A call in progress counts (the backer may make the PTE writable itself, and its cleaning
        // may run while the call waits for the backer's lock); a finished call marks the page.
        var key = (f.FMapping.Handle, vmf.Pgoff);
        _writeNotifyInflight[key] = _writeNotifyInflight.GetValueOrDefault(key) + 1;
        try
        {
            return await mkwrite(vmf);
        }
        finally
        {
            if (--_writeNotifyInflight[key] == 0)
            {
                _writeNotifyInflight.Remove(key);
            }
            _writeNotified.Add(key);
        }
    }

    /// <summary>The backer cleaned (write-protected) pages [pgoff, pgoff + nr) of the mapping.</summary>
    public void NoteWriteNotifyCleaned(AddressSpace mapping, ulong pgoff, ulong nr)
    {
        for (ulong i = 0; i < nr; i++)
        {
            _writeNotified.Remove((mapping.Handle, pgoff + i));
        }
    }

    /// <summary>Whether the backer's mkwrite ran (or is running) for the page since it was last cleaned.</summary>
    public bool WriteNotified(AddressSpace mapping, ulong pgoff) =>
        _writeNotified.Contains((mapping.Handle, pgoff)) || _writeNotifyInflight.ContainsKey((mapping.Handle, pgoff));

    internal IEnumerable<string> CheckWriteNotify() => _writeNotifyOps.Count == 0 ? [] : CheckWriteNotifyMappings();

    private IEnumerable<string> CheckWriteNotifyMappings()
    {
        foreach (var mm in Mms.ToList())
        {
            if (mm == InitMm || mm.Dead)
            {
                continue;
            }
            foreach (var vma in mm.MmMt.Snapshot())
            {
                if (vma.VmOps is not { } ops || !_writeNotifyOps.Contains(ops) || vma.VmFile is not { } file ||
                    !VmaWantsWritenotify(vma, vma.VmPageProt))
                {
                    continue;
                }
                foreach (var (leafAddr, e, level) in LeavesInRange(mm, vma.VmStart, vma.VmEnd))
                {
                    bool writable = level == 1 ? PtePresent(new Pte(e)) && PteWrite(new Pte(e)) : (e & X86Pte._PAGE_RW) != 0;
                    if (!writable)
                    {
                        continue;
                    }
                    // Each page of a huge leaf has its own write-notify state.
                    ulong leafEnd = PagingMode.AddrEnd(leafAddr, vma.VmEnd, Paging.ShiftOfLevel(level));
                    for (ulong a = leafAddr; a < leafEnd; a += PAGE_SIZE)
                    {
                        var key = (file.FMapping.Handle, LinearPageIndex(vma, a));
                        if (!_writeNotified.Contains(key) && !_writeNotifyInflight.ContainsKey(key))
                        {
                            yield return $"mm#{mm.Id} {vma} ({ops.Name}) maps page {key.Item2:x} of {file} writable at {a:x} " +
                                         "but the backer's mkwrite never ran for it: its writes go unnoticed";
                        }
                    }
                }
            }
        }
    }
}

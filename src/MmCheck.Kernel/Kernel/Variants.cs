using System.Globalization;

namespace Linux;

/// <summary>
/// Historical behaviours, each named after the upstream change it reverts or the proposal it adds
/// (design.md, "Which kernel"). The baseline is the release the conformance oracle runs on; a
/// preset (<c>kernel = v5.10</c>) selects the variants that release had.
/// </summary>
public sealed record Variants
{
    /// <summary>One variant: its scenario name, its values (the first is the baseline), and what it is.</summary>
    public sealed record Info(string Name, string[] Values, string Description, string Upstream);

    /// <summary>The reuse rule of do_wp_page() for anonymous pages.</summary>
    public enum WpReuseRule
    {
        /// <summary>5.19+: reuse if PageAnonExclusive, else wp_can_reuse_anon_folio() (refcount 1 after
        /// draining), and mark the page exclusive.</summary>
        AnonExclusive,
        /// <summary>5.9–5.18 (09854ba94c6a "mm: do_wp_page() simplification"): reuse iff the page's
        /// refcount is 1; there is no PageAnonExclusive, so fork's pinned-page copy keys on the pin alone.</summary>
        Refcount,
    }

    public WpReuseRule DoWpPageReuse { get; init; } = WpReuseRule.AnonExclusive;

    /// <summary>How vfio-pci populates a BAR mmap (drivers/vfio/pci/vfio_pci_core.c), by release.</summary>
    public enum VfioPciFaultStrategy
    {
        /// <summary>v6.15+: ->huge_fault aligns the address down to the order and inserts a PMD/PUD
        /// when range and pfn are order-aligned ("vfio/pci: Align huge faults to order").</summary>
        Huge,
        /// <summary>v6.12 (f9e54c3a2f5b "vfio/pci: implement huge_fault support"): the faulting
        /// address itself must be order-aligned; the pfn is not checked.</summary>
        HugeV612,
        /// <summary>v6.10–v6.11 (d71a989cf5d9 "vfio/pci: Insert full vma on mmap'd MMIO fault",
        /// merged with aac6db75a9fc for v6.10-rc4): vmf_insert_pfn() of the faulting page, then of
        /// the rest of the VMA, errors ignored.</summary>
        InsertFullVma,
        /// <summary>aac6db75a9fc "vfio/pci: Use unmap_mapping_range()" on its own (v6.10-rc4 merge,
        /// never a release without d71a989cf5d9): vmf_insert_pfn() of the faulting page only;
        /// revocation through the device inode's i_mmap.</summary>
        InsertPfn,
        /// <summary>Yan Zhao's May 2023 proposal "vfio/pci: take mmap write lock for
        /// io_remap_pfn_range" (not merged): drop the mmap read lock inside ->fault.</summary>
        RemapDropMmapLock,
        /// <summary>v5.13–v6.9 (6a45ece4c9af "vfio/pci: Handle concurrent vma faults"): remap the
        /// whole VMA unless it is on vdev->vma_list, under vma_lock and memory_lock.</summary>
        RemapVmaList,
        /// <summary>v5.8–v5.12 (11c4cd07ba11 "vfio-pci: Fault mmaps to enable vma tracking"): the VMA
        /// is added to the list and vma_lock dropped before io_remap_pfn_range().</summary>
        RemapNoListCheck,
    }

    public VfioPciFaultStrategy VfioPciFault { get; init; } = VfioPciFaultStrategy.Huge;

    /// <summary>proc_bus_pci_mmap() refuses exclusively claimed BARs (v5.12, "PCI: Obey iomem
    /// restrictions for procfs mmap").</summary>
    public bool ProcBusPciMmapExclusiveCheck { get; init; } = true;

    /// <summary>procfs and sysfs PCI resource files map through iomem_get_mapping(), so a claim
    /// revokes them (636b21b50152 "PCI: Revoke mappings like devmem", v5.12).</summary>
    public bool PciRevokeMappings { get; init; } = true;

    /// <summary>/dev/mem uses ->mmap_prepare with a deferred remap ("mm: update mem char driver to
    /// use mmap_prepare", 2025, after v6.18) rather than remap_pfn_range() inside ->mmap.</summary>
    public bool DevmemMmapPrepare { get; init; }

    /// <summary>When the first page of a VM_PAT COW mapping is not a PFN-map entry, get_pat_info() falls
    /// back to vm_pgoff (04c35ab3bdae "x86/mm/pat: fix VM_PAT handling in COW mappings", v6.9);
    /// before, untrack_pfn()/track_pfn_copy() WARNed and gave up for every mapping alike.</summary>
    public bool PatInfoCowFallback { get; init; } = true;

    /// <summary>How remap_pfn_range() marks the VMA and tracks the PFN range's memory type (x86 PAT).</summary>
    public enum RemapPfnTracking
    {
        /// <summary>v6.16+ ("mm: convert VM_PFNMAP tracking to pfnmap_track() + pfnmap_untrack()",
        /// David Hildenbrand): a remap of the whole VMA takes a vma->pfnmap_track_ctx; a second one
        /// is refused with -EINVAL. The flags go through vm_flags_set().</summary>
        PfnmapTrack,
        /// <summary>v6.3–v6.15: track_pfn_remap() sets VM_PAT for a whole-VMA remap, and the
        /// VM_IO|VM_PFNMAP|… flags, both with vm_flags_set(), which asserts the mmap write lock
        /// (bc292ab00f6c "mm: introduce vma->vm_flags wrapper functions").</summary>
        VmPat,
        /// <summary>Before v6.3: the same flags written directly (vma->vm_flags |= …), no assertion.</summary>
        Direct,
    }

    public RemapPfnTracking RemapPfnRangeTracking { get; init; } = RemapPfnTracking.PfnmapTrack;

    /// <summary>remap_pfn_range() zaps what it mapped when it fails part-way (79a61cc3fc04 "mm: avoid
    /// leaving partial pfn mappings around in error case", v6.11).</summary>
    public bool RemapPfnRangeZapOnError { get; init; } = true;

    /// <summary>dup_mmap() calls vm_ops->open() before copy_page_range() and links the file VMA
    /// into i_mmap after it (35e351780fa9 "fork: defer linking file vma until vma is fully
    /// initialized", v6.9); before, i_mmap first, then the page tables, then ->open().</summary>
    public bool DupMmapOpenBeforeCopy { get; init; } = true;

    /// <summary>How /proc/bus/pci's mmap installs the BAR: the kernel's way and the proposals of the seed-000 thread.</summary>
    public enum ProcBusPciMmapStyle
    {
        /// <summary>proc_bus_pci_mmap(): io_remap_pfn_range() inside ->mmap (every release).</summary>
        Mmap,
        /// <summary>Proposal: ->mmap_prepare with a deferred remap action, as mmap_mem_prepare() does
        /// (the PTEs are filled after vma_link_file(); the exclusivity check still comes first).</summary>
        MmapPrepare,
        /// <summary>Proposal: ->mmap_prepare with hide_from_rmap_until_complete; the action re-checks
        /// iomem_is_exclusive() under the held i_mmap_rwsem before filling the PTEs.</summary>
        MmapPrepareRecheck,
        /// <summary>Proposal (Daniel Vetter): no PTE in ->mmap; ->fault checks iomem_is_exclusive()
        /// and then vmf_insert_pfn()s the page, with no lock held across the two.</summary>
        Fault,
    }

    public ProcBusPciMmapStyle ProcBusPciMmap { get; init; } = ProcBusPciMmapStyle.Mmap;

    /// <summary>What fork's copy_huge_pmd() does with a special (PFN map) PMD leaf.</summary>
    public enum CopyHugePmdSpecialRule
    {
        /// <summary>v6.12+ (bc02afbd4d73 "mm/fork: accept huge pfnmap entries"): the child gets the
        /// entry read before the PMD locks (pmdp_get_lockless()), not re-read under them: the
        /// comment says the write mmap lock keeps it stable, but a zap through i_mmap
        /// (unmap_mapping_range()) does not take the mmap lock.</summary>
        Lockless,
        /// <summary>Proposal (MmCheck, not upstream): re-read the entry under the source PMD lock, as
        /// the anonymous path below it does, and copy what is there then (nothing if it was zapped).</summary>
        Recheck,
        /// <summary>Before v6.12: a PMD of a non-anonymous VMA is not copied; the child refaults it.</summary>
        Skip,
    }

    public CopyHugePmdSpecialRule CopyHugePmdSpecial { get; init; } = CopyHugePmdSpecialRule.Lockless;

    /// <summary>madvise(MADV_DOFORK) refuses every VM_SPECIAL VMA (the vDSO, PFN and mixed maps), as
    /// linux-mm after v6.18 does; v6.18 (this machine) and every release before refuse VM_IO only.</summary>
    public bool MadviseDoforkRefusesSpecial { get; init; }

    /// <summary>Every variant with its scenario spellings; an enum-valued one lists them in the
    /// enum's order (<see cref="EnumValue{T}"/>).</summary>
    public static readonly IReadOnlyList<Info> All =
    [
        new("do_wp_page.reuse", ["anon_exclusive", "refcount"],
            "how do_wp_page() decides to reuse an anonymous page instead of copying it",
            "refcount: before 6c287605fd56 \"mm: remember exclusively mapped anonymous pages with PG_anon_exclusive\" (v5.19); " +
            "09854ba94c6a \"mm: do_wp_page() simplification\" (v5.9) introduced the refcount rule"),
        new("vfio_pci.fault", ["huge", "huge_v6.12", "insert_full_vma", "insert_pfn", "remap_drop_mmap_lock", "remap_vma_list", "remap_no_list_check"],
            "how vfio-pci populates an mmap of a BAR",
            "huge: v6.15 \"vfio/pci: Align huge faults to order\" (c1d9dac0db16); huge_v6.12: f9e54c3a2f5b (v6.12-v6.14); " +
            "insert_full_vma: d71a989cf5d9 (v6.10-v6.11); insert_pfn: aac6db75a9fc alone (never released); remap_drop_mmap_lock: Yan Zhao's unmerged 2023 patch; " +
            "remap_vma_list: 6a45ece4c9af (v5.13-v6.9); remap_no_list_check: 11c4cd07ba11 (v5.8-v5.12)"),
        new("proc_bus_pci_mmap.exclusive_check", ["on", "off"],
            "proc_bus_pci_mmap() refuses to map a BAR that iomem_is_exclusive()",
            "off: before \"PCI: Obey iomem restrictions for procfs mmap\" (v5.12)"),
        new("pci.revoke_mappings", ["on", "off"],
            "procfs/sysfs PCI resource files get f_mapping = iomem_get_mapping(), so revoke_iomem() reaches them",
            "off: before 636b21b50152 \"PCI: Revoke mappings like devmem\" (v5.12)"),
        new("devmem.mmap", ["mmap", "mmap_prepare"],
            "whether /dev/mem populates through remap_pfn_range() inside ->mmap or ->mmap_prepare's deferred remap",
            "mmap_prepare: \"mm: update mem char driver to use mmap_prepare\" (Lorenzo Stoakes, 2025, v6.19)"),
        new("get_pat_info", ["cow_pgoff", "pte_only"],
            "how untrack_pfn()/track_pfn_copy() find a VM_PAT VMA's physical range when its first page is not mapped (tracking before v6.16)",
            "pte_only: before 04c35ab3bdae \"x86/mm/pat: fix VM_PAT handling in COW mappings\" (v6.9), which added the vm_pgoff fallback for COW mappings"),
        new("remap_pfn_range.tracking", ["pfnmap_track", "vm_pat", "direct"],
            "how remap_pfn_range() sets the VMA's flags and tracks the PFN range (a second whole-VMA remap: -EINVAL, or BUG_ON a set PTE)",
            "pfnmap_track: v6.16 \"mm: convert VM_PFNMAP tracking to pfnmap_track() + pfnmap_untrack()\"; " +
            "vm_pat: v6.3-v6.15 (vm_flags_set(), bc292ab00f6c); direct: before v6.3 (vma->vm_flags |= ...)"),
        new("remap_pfn_range.zap_on_error", ["on", "off"],
            "remap_pfn_range() zaps the PTEs it installed when it fails part-way",
            "off: before 79a61cc3fc04 \"mm: avoid leaving partial pfn mappings around in error case\" (v6.11)"),
        new("dup_mmap.open_order", ["open_before_copy", "open_after_copy"],
            "whether fork's dup_mmap() calls vm_ops->open() before copy_page_range() (and links i_mmap after it)",
            "open_after_copy: before 35e351780fa9 \"fork: defer linking file vma until vma is fully initialized\" (v6.9)"),
        new("proc_bus_pci.mmap", ["mmap", "mmap_prepare", "mmap_prepare_recheck", "fault"],
            "how /proc/bus/pci installs a BAR: remap in ->mmap (the kernel), or one of the seed-000 thread's proposals",
            "mmap: proc_bus_pci_mmap() in every release; mmap_prepare, mmap_prepare_recheck: ->mmap_prepare conversions " +
            "(mmap_action, 2025) without and with hide_from_rmap_until_complete plus a re-check; fault: populate in ->fault (Daniel Vetter, Oct 2020)"),
        new("copy_huge_pmd.special", ["lockless", "recheck", "skip"],
            "what fork's copy_huge_pmd() gives the child for a special (PFN map) PMD leaf of the parent",
            "lockless: bc02afbd4d73 \"mm/fork: accept huge pfnmap entries\" (v6.12) and later, the entry read before the PMD locks; " +
            "recheck: an MmCheck proposal, re-read under the source PMD lock; skip: before v6.12, not copied (the child refaults)"),
        new("madvise.dofork", ["vm_io", "vm_special"],
            "which VMAs madvise(MADV_DOFORK) refuses with -EINVAL",
            "vm_io: v6.18 and earlier (madvise_vma_behavior() tests VM_IO); vm_special: linux-mm after v6.18 tests VM_SPECIAL, as MADV_DODUMP does"),
    ];

    /// <summary>The baseline: this machine's kernel.</summary>
    public static Variants Current { get; } = new();

    /// <summary>Kernel presets by release name.</summary>
    public static Variants? Preset(string kernel)
    {
        if (kernel is "current" or "baseline")
        {
            return Current;
        }
        if (!TryParseRelease(kernel, out int major, out int minor))
        {
            return null;
        }
        var v = Current;
        if (major < 5 || (major == 5 && minor < 19))
        {
            v = v with { DoWpPageReuse = WpReuseRule.Refcount };
        }
        v = v with { VfioPciFault = VfioFaultOf(major, minor) };
        if (major < 5 || (major == 5 && minor < 12))
        {
            v = v with { ProcBusPciMmapExclusiveCheck = false, PciRevokeMappings = false };
        }
        int r = (major * 100) + minor;
        if (r >= 619)
        {
            v = v with { DevmemMmapPrepare = true };
        }
        if (r < 616)
        {
            v = v with { RemapPfnRangeTracking = r < 603 ? RemapPfnTracking.Direct : RemapPfnTracking.VmPat };
        }
        if (r < 611)
        {
            v = v with { RemapPfnRangeZapOnError = false };
        }
        if (r < 609)
        {
            v = v with { DupMmapOpenBeforeCopy = false, PatInfoCowFallback = false };
        }
        if (r < 612)
        {
            v = v with { CopyHugePmdSpecial = CopyHugePmdSpecialRule.Skip };
        }
        return v;
    }

    /// <summary>
    /// The vfio-pci fault strategy a release shipped (before v5.8 vfio remapped in ->mmap, which
    /// the model does not carry; such presets get the v5.8 handler). b7c5e64fecfa, aac6db75a9fc and
    /// d71a989cf5d9 were merged together for v6.10-rc4, so no release ran aac6db75a9fc's
    /// single-page handler (insert_pfn) without the full-VMA pre-fault.
    /// </summary>
    private static VfioPciFaultStrategy VfioFaultOf(int major, int minor)
    {
        int r = (major * 100) + minor;
        return r switch
        {
            < 513 => VfioPciFaultStrategy.RemapNoListCheck,
            < 610 => VfioPciFaultStrategy.RemapVmaList,
            < 612 => VfioPciFaultStrategy.InsertFullVma,
            < 615 => VfioPciFaultStrategy.HugeV612,
            _ => VfioPciFaultStrategy.Huge,
        };
    }

    private static bool TryParseRelease(string s, out int major, out int minor)
    {
        major = minor = 0;
        if (!s.StartsWith('v'))
        {
            return false;
        }
        var parts = s[1..].Split('.');
        return parts.Length >= 2 &&
               int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out major) &&
               int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out minor) &&
               major >= 2;
    }

    /// <summary>Sets one variant by its scenario name; returns null with an error if unknown.</summary>
    public Variants? With(string name, string value, out string? error)
    {
        error = null;
        switch (name)
        {
            case "do_wp_page.reuse":
                if (EnumValue<WpReuseRule>(name, value) is { } reuse)
                {
                    return this with { DoWpPageReuse = reuse };
                }
                break;
            case "vfio_pci.fault":
                if (EnumValue<VfioPciFaultStrategy>(name, value) is { } fault)
                {
                    return this with { VfioPciFault = fault };
                }
                break;
            case "proc_bus_pci_mmap.exclusive_check":
                if (value is "on" or "off")
                {
                    return this with { ProcBusPciMmapExclusiveCheck = value == "on" };
                }
                break;
            case "pci.revoke_mappings":
                if (value is "on" or "off")
                {
                    return this with { PciRevokeMappings = value == "on" };
                }
                break;
            case "get_pat_info":
                if (value is "cow_pgoff" or "pte_only")
                {
                    return this with { PatInfoCowFallback = value == "cow_pgoff" };
                }
                break;
            case "devmem.mmap":
                if (value is "mmap_prepare" or "mmap")
                {
                    return this with { DevmemMmapPrepare = value == "mmap_prepare" };
                }
                break;
            case "remap_pfn_range.tracking":
                if (EnumValue<RemapPfnTracking>(name, value) is { } tracking)
                {
                    return this with { RemapPfnRangeTracking = tracking };
                }
                break;
            case "remap_pfn_range.zap_on_error":
                if (value is "on" or "off")
                {
                    return this with { RemapPfnRangeZapOnError = value == "on" };
                }
                break;
            case "dup_mmap.open_order":
                if (value is "open_before_copy" or "open_after_copy")
                {
                    return this with { DupMmapOpenBeforeCopy = value == "open_before_copy" };
                }
                break;
            case "proc_bus_pci.mmap":
                if (EnumValue<ProcBusPciMmapStyle>(name, value) is { } style)
                {
                    return this with { ProcBusPciMmap = style };
                }
                break;
            case "copy_huge_pmd.special":
                if (EnumValue<CopyHugePmdSpecialRule>(name, value) is { } rule)
                {
                    return this with { CopyHugePmdSpecial = rule };
                }
                break;
            case "madvise.dofork":
                if (value is "vm_io" or "vm_special")
                {
                    return this with { MadviseDoforkRefusesSpecial = value == "vm_special" };
                }
                break;
            default:
                error = $"unknown variant '{name}'; known: {string.Join(", ", All.Select(i => i.Name))}";
                return null;
        }
        var info = All.First(i => i.Name == name);
        error = $"variant '{name}' has no value '{value}'; values: {string.Join(", ", info.Values)}";
        return null;
    }

    /// <summary>The variants that differ from the baseline, as "name=value" pairs.</summary>
    public IEnumerable<string> Describe()
    {
        if (DoWpPageReuse != WpReuseRule.AnonExclusive)
        {
            yield return "do_wp_page.reuse=refcount";
        }
        if (VfioPciFault != VfioPciFaultStrategy.Huge)
        {
            yield return "vfio_pci.fault=" + VfioPciFaultName(VfioPciFault);
        }
        if (!ProcBusPciMmapExclusiveCheck)
        {
            yield return "proc_bus_pci_mmap.exclusive_check=off";
        }
        if (!PciRevokeMappings)
        {
            yield return "pci.revoke_mappings=off";
        }
        if (DevmemMmapPrepare)
        {
            yield return "devmem.mmap=mmap_prepare";
        }
        if (!PatInfoCowFallback && RemapPfnRangeTracking != RemapPfnTracking.PfnmapTrack)
        {
            yield return "get_pat_info=pte_only";
        }
        if (RemapPfnRangeTracking != RemapPfnTracking.PfnmapTrack)
        {
            yield return "remap_pfn_range.tracking=" + EnumName("remap_pfn_range.tracking", RemapPfnRangeTracking);
        }
        if (!RemapPfnRangeZapOnError)
        {
            yield return "remap_pfn_range.zap_on_error=off";
        }
        if (!DupMmapOpenBeforeCopy)
        {
            yield return "dup_mmap.open_order=open_after_copy";
        }
        if (ProcBusPciMmap != ProcBusPciMmapStyle.Mmap)
        {
            yield return "proc_bus_pci.mmap=" + EnumName("proc_bus_pci.mmap", ProcBusPciMmap);
        }
        if (CopyHugePmdSpecial != CopyHugePmdSpecialRule.Lockless)
        {
            yield return "copy_huge_pmd.special=" + EnumName("copy_huge_pmd.special", CopyHugePmdSpecial);
        }
        if (MadviseDoforkRefusesSpecial)
        {
            yield return "madvise.dofork=vm_special";
        }
    }

    /// <summary>The scenario spelling of a vfio-pci fault strategy.</summary>
    public static string VfioPciFaultName(VfioPciFaultStrategy s) => EnumName("vfio_pci.fault", s);

    /// <summary>An enum-valued variant's value: its scenario spellings are its <see cref="Info.Values"/>,
    /// listed in the enum's order.</summary>
    private static T? EnumValue<T>(string name, string value) where T : struct, Enum
    {
        int i = Array.IndexOf(All.First(v => v.Name == name).Values, value);
        return i < 0 ? null : (T)Enum.ToObject(typeof(T), i);
    }

    /// <summary>The scenario spelling of an enum-valued variant's value (see <see cref="EnumValue{T}"/>).</summary>
    private static string EnumName<T>(string name, T value) where T : struct, Enum =>
        All.First(v => v.Name == name).Values[Convert.ToInt32(value, CultureInfo.InvariantCulture)];
}

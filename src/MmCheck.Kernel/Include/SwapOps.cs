using static Linux.X86Pte;

namespace Linux;

/// <summary>
/// swp_entry_t: the arch-independent form of a non-present entry (include/linux/swapops.h):
/// a 5-bit type and an offset, which for migration, device and hwpoison entries is a PFN.
/// </summary>
[KernelSymbol("swp_entry_t", "include/linux/mm_types.h")]
public readonly record struct SwpEntry(uint Type, ulong Offset)
{
    public override string ToString() => SwapOps.TypeName(Type) switch
    {
        "swap" => $"swap(type {Type}, offset {Offset:x})",
        "pte_marker" => $"pte_marker({SwapOps.MarkerNames(Offset)})",
        var n => $"{n}(pfn {Offset & SwapOps.SwpPfnMask:x})",
    };
}

/// <summary>include/linux/swap.h and swapops.h, with the x86-64 arch encoding of pgtable_64.h.</summary>
/// <remarks>
/// Context: any; every helper here converts or tests entry values only (a pte_t or a swp_entry_t), never a
/// live table: no locks, never sleeps. The caller reads the entry itself, under the PTL or locklessly.
/// </remarks>
public static class SwapOps
{
    public const int MAX_SWAPFILES_SHIFT = 5;
    public const int SWP_DEVICE_NUM = 3;
    public const int SWP_MIGRATION_NUM = 3;
    public const int SWP_HWPOISON_NUM = 1;
    public const int SWP_PTE_MARKER_NUM = 1;
    public const uint MAX_SWAPFILES = (1 << MAX_SWAPFILES_SHIFT) - SWP_DEVICE_NUM - SWP_MIGRATION_NUM - SWP_HWPOISON_NUM - SWP_PTE_MARKER_NUM;
    public const uint SWP_HWPOISON = MAX_SWAPFILES;
    public const uint SWP_MIGRATION_READ = MAX_SWAPFILES + SWP_HWPOISON_NUM;
    public const uint SWP_MIGRATION_READ_EXCLUSIVE = MAX_SWAPFILES + SWP_HWPOISON_NUM + 1;
    public const uint SWP_MIGRATION_WRITE = MAX_SWAPFILES + SWP_HWPOISON_NUM + 2;
    public const uint SWP_DEVICE_WRITE = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM;
    public const uint SWP_DEVICE_READ = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + 1;
    public const uint SWP_DEVICE_EXCLUSIVE = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + 2;
    public const uint SWP_PTE_MARKER = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + SWP_DEVICE_NUM;

    /// <summary>PTE marker bits (include/linux/swapops.h).</summary>
    public const ulong PTE_MARKER_UFFD_WP = 1UL << 0;
    public const ulong PTE_MARKER_POISONED = 1UL << 1;
    public const ulong PTE_MARKER_GUARD = 1UL << 2;

    /// <summary>SWP_PFN_BITS = MAX_PHYSMEM_BITS - PAGE_SHIFT with 4-level paging.</summary>
    public const int SWP_PFN_BITS = 46 - 12;
    public const ulong SwpPfnMask = (1UL << SWP_PFN_BITS) - 1;
    public const ulong SWP_MIG_YOUNG = 1UL << SWP_PFN_BITS;
    public const ulong SWP_MIG_DIRTY = 1UL << (SWP_PFN_BITS + 1);

    // x86-64 arch encoding (arch/x86/include/asm/pgtable_64.h).
    public const int SWP_TYPE_BITS = 5;
    public const int SWP_OFFSET_FIRST_BIT = _PAGE_BIT_PROTNONE + 1;
    public const int SWP_OFFSET_SHIFT = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS;

    [KernelSymbol("__swp_entry", "arch/x86/include/asm/pgtable_64.h")]
    public static ulong ArchSwpEntry(uint type, ulong offset) =>
        ((~offset) << SWP_OFFSET_SHIFT >> SWP_TYPE_BITS) | ((ulong)type << (64 - SWP_TYPE_BITS));

    [KernelSymbol("__swp_type", "arch/x86/include/asm/pgtable_64.h")]
    public static uint ArchSwpType(ulong v) => (uint)(v >> (64 - SWP_TYPE_BITS));

    [KernelSymbol("__swp_offset", "arch/x86/include/asm/pgtable_64.h")]
    public static ulong ArchSwpOffset(ulong v) => (~v) << SWP_TYPE_BITS >> SWP_OFFSET_SHIFT;

    /// <summary>is_swap_pte(): neither none nor present.</summary>
    [KernelSymbol("is_swap_pte", "include/linux/swapops.h")]
    public static bool IsSwapPte(Pte pte) => !PgTable.PteNone(pte) && !PgTable.PtePresent(pte);

    /// <summary>pte_to_swp_entry(): drops the soft-dirty, uffd-wp and exclusive flag bits first.</summary>
    [KernelSymbol("pte_to_swp_entry", "include/linux/swapops.h")]
    public static SwpEntry PteToSwpEntry(Pte pte)
    {
        ulong v = pte.Val & ~(_PAGE_SWP_SOFT_DIRTY | _PAGE_SWP_UFFD_WP | _PAGE_SWP_EXCLUSIVE);
        return new SwpEntry(ArchSwpType(v), ArchSwpOffset(v));
    }

    [KernelSymbol("swp_entry_to_pte", "include/linux/swapops.h")]
    public static Pte SwpEntryToPte(SwpEntry e) => new(ArchSwpEntry(e.Type, e.Offset));

    [KernelSymbol("pte_swp_exclusive", "arch/x86/include/asm/pgtable.h")]
    public static bool PteSwpExclusive(Pte pte) => (pte.Val & _PAGE_SWP_EXCLUSIVE) != 0;

    [KernelSymbol("pte_swp_mkexclusive", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteSwpMkexclusive(Pte pte) => new(pte.Val | _PAGE_SWP_EXCLUSIVE);

    [KernelSymbol("pte_swp_clear_exclusive", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteSwpClearExclusive(Pte pte) => new(pte.Val & ~_PAGE_SWP_EXCLUSIVE);

    [KernelSymbol("pte_swp_soft_dirty", "arch/x86/include/asm/pgtable.h")]
    public static bool PteSwpSoftDirty(Pte pte) => (pte.Val & _PAGE_SWP_SOFT_DIRTY) != 0;

    [KernelSymbol("pte_swp_mksoft_dirty", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteSwpMksoftDirty(Pte pte) => new(pte.Val | _PAGE_SWP_SOFT_DIRTY);

    [KernelSymbol("pte_swp_uffd_wp", "arch/x86/include/asm/pgtable.h")]
    public static bool PteSwpUffdWp(Pte pte) => (pte.Val & _PAGE_SWP_UFFD_WP) != 0;

    [KernelSymbol("pte_swp_mkuffd_wp", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteSwpMkuffdWp(Pte pte) => new(pte.Val | _PAGE_SWP_UFFD_WP);

    [KernelSymbol("pte_swp_clear_uffd_wp", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteSwpClearUffdWp(Pte pte) => new(pte.Val & ~_PAGE_SWP_UFFD_WP);

    // ---- entry kinds ----

    [KernelSymbol("non_swap_entry", "include/linux/swapops.h")]
    public static bool NonSwapEntry(SwpEntry e) => e.Type >= MAX_SWAPFILES;

    [KernelSymbol("is_migration_entry", "include/linux/swapops.h")]
    public static bool IsMigrationEntry(SwpEntry e) =>
        e.Type is SWP_MIGRATION_READ or SWP_MIGRATION_READ_EXCLUSIVE or SWP_MIGRATION_WRITE;

    [KernelSymbol("is_writable_migration_entry", "include/linux/swapops.h")]
    public static bool IsWritableMigrationEntry(SwpEntry e) => e.Type == SWP_MIGRATION_WRITE;

    [KernelSymbol("is_readable_exclusive_migration_entry", "include/linux/swapops.h")]
    public static bool IsReadableExclusiveMigrationEntry(SwpEntry e) => e.Type == SWP_MIGRATION_READ_EXCLUSIVE;

    [KernelSymbol("is_device_private_entry", "include/linux/swapops.h")]
    public static bool IsDevicePrivateEntry(SwpEntry e) => e.Type is SWP_DEVICE_WRITE or SWP_DEVICE_READ;

    [KernelSymbol("is_writable_device_private_entry", "include/linux/swapops.h")]
    public static bool IsWritableDevicePrivateEntry(SwpEntry e) => e.Type == SWP_DEVICE_WRITE;

    [KernelSymbol("is_device_exclusive_entry", "include/linux/swapops.h")]
    public static bool IsDeviceExclusiveEntry(SwpEntry e) => e.Type == SWP_DEVICE_EXCLUSIVE;

    [KernelSymbol("is_hwpoison_entry", "include/linux/swapops.h")]
    public static bool IsHwpoisonEntry(SwpEntry e) => e.Type == SWP_HWPOISON;

    [KernelSymbol("is_pte_marker_entry", "include/linux/swapops.h")]
    public static bool IsPteMarkerEntry(SwpEntry e) => e.Type == SWP_PTE_MARKER;

    [KernelSymbol("is_pfn_swap_entry", "include/linux/swapops.h")]
    public static bool IsPfnSwapEntry(SwpEntry e) =>
        IsMigrationEntry(e) || IsDevicePrivateEntry(e) || IsDeviceExclusiveEntry(e) || IsHwpoisonEntry(e);

    [KernelSymbol("swp_offset_pfn", "include/linux/swapops.h")]
    public static ulong SwpOffsetPfn(SwpEntry e) => e.Offset & SwpPfnMask;

    [KernelSymbol("make_readable_migration_entry", "include/linux/swapops.h")]
    public static SwpEntry MakeReadableMigrationEntry(ulong pfn) => new(SWP_MIGRATION_READ, pfn);

    [KernelSymbol("make_readable_exclusive_migration_entry", "include/linux/swapops.h")]
    public static SwpEntry MakeReadableExclusiveMigrationEntry(ulong pfn) => new(SWP_MIGRATION_READ_EXCLUSIVE, pfn);

    [KernelSymbol("make_writable_migration_entry", "include/linux/swapops.h")]
    public static SwpEntry MakeWritableMigrationEntry(ulong pfn) => new(SWP_MIGRATION_WRITE, pfn);

    [KernelSymbol("make_migration_entry_young", "include/linux/swapops.h")]
    public static SwpEntry MakeMigrationEntryYoung(SwpEntry e) => e with { Offset = e.Offset | SWP_MIG_YOUNG };

    [KernelSymbol("make_migration_entry_dirty", "include/linux/swapops.h")]
    public static SwpEntry MakeMigrationEntryDirty(SwpEntry e) => e with { Offset = e.Offset | SWP_MIG_DIRTY };

    [KernelSymbol("is_migration_entry_young", "include/linux/swapops.h")]
    public static bool IsMigrationEntryYoung(SwpEntry e) => (e.Offset & SWP_MIG_YOUNG) != 0;

    [KernelSymbol("is_migration_entry_dirty", "include/linux/swapops.h")]
    public static bool IsMigrationEntryDirty(SwpEntry e) => (e.Offset & SWP_MIG_DIRTY) != 0;

    [KernelSymbol("make_readable_device_private_entry", "include/linux/swapops.h")]
    public static SwpEntry MakeReadableDevicePrivateEntry(ulong pfn) => new(SWP_DEVICE_READ, pfn);

    [KernelSymbol("make_writable_device_private_entry", "include/linux/swapops.h")]
    public static SwpEntry MakeWritableDevicePrivateEntry(ulong pfn) => new(SWP_DEVICE_WRITE, pfn);

    [KernelSymbol("make_device_exclusive_entry", "include/linux/swapops.h")]
    public static SwpEntry MakeDeviceExclusiveEntry(ulong pfn) => new(SWP_DEVICE_EXCLUSIVE, pfn);

    [KernelSymbol("make_hwpoison_entry", "include/linux/swapops.h")]
    public static SwpEntry MakeHwpoisonEntry(ulong pfn) => new(SWP_HWPOISON, pfn);

    [KernelSymbol("make_pte_marker_entry", "include/linux/swapops.h")]
    public static SwpEntry MakePteMarkerEntry(ulong marker) => new(SWP_PTE_MARKER, marker);

    [KernelSymbol("make_pte_marker", "include/linux/swapops.h")]
    public static Pte MakePteMarker(ulong marker) => SwpEntryToPte(MakePteMarkerEntry(marker));

    [KernelSymbol("pte_marker_get", "include/linux/swapops.h")]
    public static ulong PteMarkerGet(SwpEntry e) => e.Offset & (PTE_MARKER_UFFD_WP | PTE_MARKER_POISONED | PTE_MARKER_GUARD);

    [KernelSymbol("is_guard_pte_marker", "include/linux/swapops.h")]
    public static bool IsGuardPteMarker(Pte pte)
    {
        var e = PteToSwpEntry(pte);
        return IsSwapPte(pte) && IsPteMarkerEntry(e) && (PteMarkerGet(e) & PTE_MARKER_GUARD) != 0;
    }

    public static string TypeName(uint type) => type switch
    {
        < MAX_SWAPFILES => "swap",
        SWP_HWPOISON => "hwpoison",
        SWP_MIGRATION_READ => "migration_read",
        SWP_MIGRATION_READ_EXCLUSIVE => "migration_read_exclusive",
        SWP_MIGRATION_WRITE => "migration_write",
        SWP_DEVICE_WRITE => "device_private_write",
        SWP_DEVICE_READ => "device_private_read",
        SWP_DEVICE_EXCLUSIVE => "device_exclusive",
        _ => "pte_marker",
    };

    public static string MarkerNames(ulong marker)
    {
        var parts = new List<string>();
        if ((marker & PTE_MARKER_UFFD_WP) != 0) { parts.Add("uffd_wp"); }
        if ((marker & PTE_MARKER_POISONED) != 0) { parts.Add("poisoned"); }
        if ((marker & PTE_MARKER_GUARD) != 0) { parts.Add("guard"); }
        return parts.Count == 0 ? "0" : string.Join("|", parts);
    }
}

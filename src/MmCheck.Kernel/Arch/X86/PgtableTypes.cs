using System.Text;

namespace Linux;

/// <summary>
/// arch/x86/include/asm/pgtable_types.h: the bits of an x86 page-table entry, bit-exact.
/// Names follow the kernel's _PAGE_* macros.
/// </summary>
[KernelSymbol("_PAGE_*", "arch/x86/include/asm/pgtable_types.h")]
public static class X86Pte
{
    public const int _PAGE_BIT_PRESENT = 0;
    public const int _PAGE_BIT_RW = 1;
    public const int _PAGE_BIT_USER = 2;
    public const int _PAGE_BIT_PWT = 3;
    public const int _PAGE_BIT_PCD = 4;
    public const int _PAGE_BIT_ACCESSED = 5;
    public const int _PAGE_BIT_DIRTY = 6;
    public const int _PAGE_BIT_PSE = 7;
    public const int _PAGE_BIT_PAT = 7;
    public const int _PAGE_BIT_GLOBAL = 8;
    public const int _PAGE_BIT_SOFTW1 = 9;
    public const int _PAGE_BIT_SOFTW2 = 10;
    public const int _PAGE_BIT_SOFTW3 = 11;
    public const int _PAGE_BIT_PAT_LARGE = 12;
    public const int _PAGE_BIT_SOFTW4 = 57;
    public const int _PAGE_BIT_SOFTW5 = 58;
    public const int _PAGE_BIT_PKEY_BIT0 = 59;
    public const int _PAGE_BIT_NX = 63;
    public const int _PAGE_BIT_SPECIAL = _PAGE_BIT_SOFTW1;
    public const int _PAGE_BIT_UFFD_WP = _PAGE_BIT_SOFTW2;
    public const int _PAGE_BIT_SOFT_DIRTY = _PAGE_BIT_SOFTW3;
    public const int _PAGE_BIT_SAVED_DIRTY = _PAGE_BIT_SOFTW5;
    /// <summary>When P is clear, G marks PROT_NONE (and NUMA hinting) entries.</summary>
    public const int _PAGE_BIT_PROTNONE = _PAGE_BIT_GLOBAL;

    public const ulong _PAGE_PRESENT = 1UL << _PAGE_BIT_PRESENT;
    public const ulong _PAGE_RW = 1UL << _PAGE_BIT_RW;
    public const ulong _PAGE_USER = 1UL << _PAGE_BIT_USER;
    public const ulong _PAGE_PWT = 1UL << _PAGE_BIT_PWT;
    public const ulong _PAGE_PCD = 1UL << _PAGE_BIT_PCD;
    public const ulong _PAGE_ACCESSED = 1UL << _PAGE_BIT_ACCESSED;
    public const ulong _PAGE_DIRTY = 1UL << _PAGE_BIT_DIRTY;
    public const ulong _PAGE_PSE = 1UL << _PAGE_BIT_PSE;
    public const ulong _PAGE_PAT = 1UL << _PAGE_BIT_PAT;
    public const ulong _PAGE_GLOBAL = 1UL << _PAGE_BIT_GLOBAL;
    public const ulong _PAGE_SPECIAL = 1UL << _PAGE_BIT_SPECIAL;
    public const ulong _PAGE_UFFD_WP = 1UL << _PAGE_BIT_UFFD_WP;
    /// <summary>The soft-dirty bit. The kernel defines _PAGE_SOFT_DIRTY as 0 without
    /// CONFIG_MEM_SOFT_DIRTY; the model keeps the bit and consults the config where it is set.</summary>
    public const ulong _PAGE_SOFT_DIRTY_BIT = 1UL << _PAGE_BIT_SOFT_DIRTY;
    public const ulong _PAGE_PAT_LARGE = 1UL << _PAGE_BIT_PAT_LARGE;
    public const ulong _PAGE_SAVED_DIRTY = 1UL << _PAGE_BIT_SAVED_DIRTY;
    public const ulong _PAGE_PKEY_MASK = 0xFUL << _PAGE_BIT_PKEY_BIT0;
    public const ulong _PAGE_NX = 1UL << _PAGE_BIT_NX;
    public const ulong _PAGE_PROTNONE = 1UL << _PAGE_BIT_PROTNONE;

    /// <summary>Swap-entry flag bits (pgtable_64.h / pgtable.h): soft-dirty in RW, uffd-wp in USER,
    /// the anon-exclusive marker in PWT.</summary>
    public const ulong _PAGE_SWP_SOFT_DIRTY = _PAGE_RW;
    public const ulong _PAGE_SWP_UFFD_WP = _PAGE_USER;
    public const ulong _PAGE_SWP_EXCLUSIVE = _PAGE_PWT;

    /// <summary>__PHYSICAL_MASK_SHIFT is 52; PTE_PFN_MASK covers bits 12..51.</summary>
    public const int __PHYSICAL_MASK_SHIFT = 52;
    public const ulong PTE_PFN_MASK = ((1UL << __PHYSICAL_MASK_SHIFT) - 1) & ~0xFFFUL;
    /// <summary>Large (PSE) leaves keep PAT in bit 12, so their pfn mask starts at the leaf size.</summary>
    public const ulong PTE_FLAGS_MASK = ~PTE_PFN_MASK;

    /// <summary>_PAGE_CHG_MASK: what pte_modify() preserves across a protection change.</summary>
    public const ulong _COMMON_PAGE_CHG_MASK = PTE_PFN_MASK | _PAGE_PCD | _PAGE_PWT | _PAGE_SPECIAL |
                                               _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY_BIT |
                                               _PAGE_SAVED_DIRTY | _PAGE_UFFD_WP;
    public const ulong _PAGE_CHG_MASK = _COMMON_PAGE_CHG_MASK | _PAGE_PAT;
    public const ulong _HPAGE_CHG_MASK = _COMMON_PAGE_CHG_MASK | _PAGE_PSE | _PAGE_PAT_LARGE;

    /// <summary>_PAGE_CACHE_MASK: PWT, PCD and PAT select the cache mode.</summary>
    public const ulong _PAGE_CACHE_MASK = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT;

    // The user protections of protection_map[] (pgtable_types.h: PAGE_NONE ... PAGE_SHARED_EXEC).
    // x86 presets _PAGE_ACCESSED so the CPU does not have to set it on first use.
    public const ulong PAGE_NONE = _PAGE_ACCESSED | _PAGE_GLOBAL;
    public const ulong PAGE_SHARED = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
    public const ulong PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;
    public const ulong PAGE_COPY_NOEXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
    public const ulong PAGE_COPY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
    public const ulong PAGE_COPY = PAGE_COPY_NOEXEC;
    public const ulong PAGE_READONLY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX;
    public const ulong PAGE_READONLY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;

    /// <summary>_KERNPG_TABLE / _PAGE_TABLE: what a populated non-leaf entry carries.</summary>
    public const ulong _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
    public const ulong _KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;

    /// <summary>__PAGE_KERNEL: kernel mappings (vmalloc, direct map).</summary>
    public const ulong __PAGE_KERNEL = _PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_GLOBAL | _PAGE_NX;
    public const ulong PAGE_KERNEL = __PAGE_KERNEL;
    public const ulong PAGE_KERNEL_IO = __PAGE_KERNEL;
    public const ulong PAGE_KERNEL_NOCACHE = __PAGE_KERNEL | _PAGE_PCD;

    /// <summary>protection_map[] (arch/x86/mm/pgprot.c), indexed by VM_READ|VM_WRITE|VM_EXEC|VM_SHARED.</summary>
    [KernelSymbol("protection_map", "arch/x86/mm/pgprot.c")]
    public static readonly ulong[] ProtectionMap =
    [
        PAGE_NONE, PAGE_READONLY, PAGE_COPY, PAGE_COPY,
        PAGE_READONLY_EXEC, PAGE_READONLY_EXEC, PAGE_COPY_EXEC, PAGE_COPY_EXEC,
        PAGE_NONE, PAGE_READONLY, PAGE_SHARED, PAGE_SHARED,
        PAGE_READONLY_EXEC, PAGE_READONLY_EXEC, PAGE_SHARED_EXEC, PAGE_SHARED_EXEC,
    ];

    /// <summary>The cache modes the PWT/PCD/PAT index selects (the kernel's default PAT layout).</summary>
    public enum CacheMode : byte { WB = 0, WC = 1, UC_MINUS = 2, UC = 3, WT = 4, WP = 5 }

    /// <summary>cachemode2protval(): the PTE bits for a cache mode in the default PAT layout
    /// (PAT0 WB, PAT1 WC, PAT2 UC-, PAT3 UC, PAT4 WB, PAT5 WP, PAT6 UC-, PAT7 WT).</summary>
    public static ulong CacheModeBits(CacheMode mode) => mode switch
    {
        CacheMode.WB => 0,
        CacheMode.WC => _PAGE_PWT,
        CacheMode.UC_MINUS => _PAGE_PCD,
        CacheMode.UC => _PAGE_PCD | _PAGE_PWT,
        CacheMode.WP => _PAGE_PAT | _PAGE_PWT,
        CacheMode.WT => _PAGE_PAT | _PAGE_PCD | _PAGE_PWT,
        _ => 0,
    };

    /// <summary>A readable form of an entry at a level, for traces: "pfn 1a2b P RW U A D".</summary>
    public static string Format(ulong v, int level)
    {
        if (v == 0)
        {
            return "none";
        }
        if ((v & _PAGE_PRESENT) == 0 && (v & _PAGE_PROTNONE) == 0)
        {
            return SwapOps.PteToSwpEntry(new Pte(v)).ToString();
        }
        var sb = new StringBuilder();
        bool large = level > 1 && (v & _PAGE_PSE) != 0;
        ulong pfn = (v & PTE_PFN_MASK) >> 12;
        if (large)
        {
            pfn &= ~((1UL << (9 * (level - 1))) - 1);
        }
        sb.Append("pfn ").Append(pfn.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        if ((v & _PAGE_PRESENT) != 0) { sb.Append(" P"); } else { sb.Append(" PROTNONE"); }
        if ((v & _PAGE_RW) != 0) { sb.Append(" RW"); }
        if ((v & _PAGE_USER) != 0) { sb.Append(" U"); }
        if ((v & _PAGE_PWT) != 0) { sb.Append(" PWT"); }
        if ((v & _PAGE_PCD) != 0) { sb.Append(" PCD"); }
        if ((v & _PAGE_ACCESSED) != 0) { sb.Append(" A"); }
        if ((v & _PAGE_DIRTY) != 0) { sb.Append(" D"); }
        if ((v & _PAGE_PSE) != 0) { sb.Append(level == 1 ? " PAT" : " PSE"); }
        if (large && (v & _PAGE_PAT_LARGE) != 0) { sb.Append(" PAT"); }
        if ((v & _PAGE_GLOBAL) != 0 && (v & _PAGE_PRESENT) != 0) { sb.Append(" G"); }
        if ((v & _PAGE_SPECIAL) != 0) { sb.Append(" SPECIAL"); }
        if ((v & _PAGE_UFFD_WP) != 0) { sb.Append(" UFFD_WP"); }
        if ((v & _PAGE_SOFT_DIRTY_BIT) != 0) { sb.Append(" SD"); }
        if ((v & _PAGE_SAVED_DIRTY) != 0) { sb.Append(" SAVED_DIRTY"); }
        if ((v & _PAGE_NX) != 0) { sb.Append(" NX"); }
        return sb.ToString();
    }
}

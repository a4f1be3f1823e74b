using static Linux.X86Pte;

namespace Linux;

/// <summary>pte_t: a PTE's raw bits.</summary>
[KernelSymbol("pte_t", "arch/x86/include/asm/pgtable_64_types.h")]
public readonly record struct Pte(ulong Val)
{
    public override string ToString() => X86Pte.Format(Val, 1);
}

/// <summary>pmd_t.</summary>
[KernelSymbol("pmd_t", "arch/x86/include/asm/pgtable_64_types.h")]
public readonly record struct Pmd(ulong Val)
{
    public override string ToString() => X86Pte.Format(Val, 2);
}

/// <summary>pud_t.</summary>
[KernelSymbol("pud_t", "arch/x86/include/asm/pgtable_types.h")]
public readonly record struct Pud(ulong Val)
{
    public override string ToString() => X86Pte.Format(Val, 3);
}

/// <summary>p4d_t.</summary>
[KernelSymbol("p4d_t", "arch/x86/include/asm/pgtable_types.h")]
public readonly record struct P4d(ulong Val)
{
    public override string ToString() => X86Pte.Format(Val, 4);
}

/// <summary>pgd_t.</summary>
[KernelSymbol("pgd_t", "arch/x86/include/asm/pgtable_types.h")]
public readonly record struct Pgd(ulong Val)
{
    public override string ToString() => X86Pte.Format(Val, 5);
}

/// <summary>pgprot_t: the protection bits of an entry.</summary>
[KernelSymbol("pgprot_t", "arch/x86/include/asm/pgtable_types.h")]
public readonly record struct PgProt(ulong Val);

/// <summary>
/// A page-table page: a frame from the page allocator (PageTable page type) whose contents are
/// the entries. Level 1 holds PTEs, 2 PMDs, 3 PUDs, 4 P4Ds, 5 is the PGD.
/// </summary>
/// <remarks>struct ptdesc overlays the page; the split lock lives here as ptdesc->ptl.</remarks>
[KernelSymbol("ptdesc", "include/linux/mm_types.h")]
public sealed class PageTable
{
    public readonly ulong Pfn;
    public readonly int Level;
    /// <summary>The entries, one per slot. Written only through the set_*/ptep_* helpers, under the
    /// table's lock: the split PTL for PTE tables, the split PMD lock for PMD tables, mm->page_table_lock
    /// above (init_mm's for kernel tables). The CPU sets A/D, and GUP-fast and the page walker read,
    /// without any lock.</summary>
    public ulong[] Entries { get; private set; }
    /// <summary>ptdesc->ptl: the split PTE (level 1) or PMD (level 2) lock.</summary>
    public readonly SpinLock? Ptl;
    /// <summary>The mm that owns it; init_mm for kernel tables.</summary>
    public MmStruct Mm { get; internal set; }
    /// <summary>Number of non-none entries, to free empty tables cheaply (model-only). Same lock as
    /// <see cref="Entries"/>.</summary>
    internal int Used;

    internal PageTable(Kernel k, MmStruct mm, ulong pfn, int level, int entries)
    {
        Pfn = pfn;
        Level = level;
        Mm = mm;
        Entries = RecycledArrays<ulong>.Rent(entries);
        if (level <= 2)
        {
            Ptl = new SpinLock(k, LockClass.PtLock, new LockLabel("ptl(pfn ", pfn, ")", Hex: true));
        }
    }

    /// <summary>Gives the entries back (<see cref="Kernel.Recycle"/>); a stale use then fails loudly.</summary>
    internal void Recycle()
    {
        RecycledArrays<ulong>.Return(Entries);
        Entries = [];
    }

    public override string ToString() => $"{PgTable.LevelName(Level)} table pfn {Pfn:x}";
}

/// <summary>A pointer to one entry of a page-table page (pte_t *, pmd_t *, …).</summary>
public readonly record struct PtPtr(PageTable Table, int Index)
{
    public ulong Obj => ObjId.PtEntry(Table.Pfn, Index);

    public override string ToString() => $"{Table}[{Index}]";
}

/// <summary>
/// include/linux/pgtable.h and arch/x86/include/asm/pgtable.h: the pure helpers on entry values.
/// Helpers that depend on folding live on <see cref="Kernel"/>.
/// </summary>
/// <remarks>
/// Context: any; every helper here works on entry or protection values only, never on a live table: no
/// locks, never sleeps. Reading or writing a live entry (ptep_get(), set_pte_at(), ptep_get_and_clear(),
/// pmdp_get_lockless(), …) is done by the <see cref="Kernel"/> accessors, each with its own Context.
/// </remarks>
public static class PgTable
{
    public const ulong PAGE_SIZE = 4096;
    public const int PAGE_SHIFT = 12;
    public const ulong PAGE_MASK = ~(PAGE_SIZE - 1);

    public static string LevelName(int level) => level switch
    {
        1 => "PTE",
        2 => "PMD",
        3 => "PUD",
        4 => "P4D",
        _ => "PGD",
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PageAlign(ulong addr) => (addr + PAGE_SIZE - 1) & PAGE_MASK;

    public static bool OffsetInPage(ulong addr) => (addr & (PAGE_SIZE - 1)) != 0;

    /// <summary>__pte_needs_invert(): non-present, non-empty entries keep their PFN inverted (L1TF).</summary>
    [KernelSymbol("__pte_needs_invert", "arch/x86/include/asm/pgtable-invert.h")]
    public static bool PteNeedsInvert(ulong val) => val != 0 && (val & _PAGE_PRESENT) == 0;

    [KernelSymbol("protnone_mask", "arch/x86/include/asm/pgtable-invert.h")]
    public static ulong ProtnoneMask(ulong val) => PteNeedsInvert(val) ? ~0UL : 0;

    [KernelSymbol("flip_protnone_guard", "arch/x86/include/asm/pgtable-invert.h")]
    public static ulong FlipProtnoneGuard(ulong oldval, ulong val, ulong mask)
    {
        if (PteNeedsInvert(oldval) != PteNeedsInvert(val))
        {
            val = (val & ~mask) | (~val & mask);
        }
        return val;
    }

    // ---- PTE predicates (arch/x86/include/asm/pgtable.h) ----

    /// <summary>pte_none(): A and D alone do not make an entry non-empty (the KNL erratum mask).</summary>
    [KernelSymbol("pte_none", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool PteNone(Pte pte) => (pte.Val & ~(_PAGE_DIRTY | _PAGE_ACCESSED)) == 0;

    /// <summary>pte_present(): P, or a PROT_NONE entry.</summary>
    [KernelSymbol("pte_present", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool PtePresent(Pte pte) => (pte.Val & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0;

    [KernelSymbol("pte_protnone", "arch/x86/include/asm/pgtable.h")]
    public static bool PteProtnone(Pte pte) => (pte.Val & (_PAGE_PROTNONE | _PAGE_PRESENT)) == _PAGE_PROTNONE;

    [KernelSymbol("pte_write", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool PteWrite(Pte pte) => (pte.Val & _PAGE_RW) != 0;

    [KernelSymbol("pte_dirty", "arch/x86/include/asm/pgtable.h")]
    public static bool PteDirty(Pte pte) => (pte.Val & _PAGE_DIRTY) != 0;

    [KernelSymbol("pte_young", "arch/x86/include/asm/pgtable.h")]
    public static bool PteYoung(Pte pte) => (pte.Val & _PAGE_ACCESSED) != 0;

    [KernelSymbol("pte_special", "arch/x86/include/asm/pgtable.h")]
    public static bool PteSpecial(Pte pte) => (pte.Val & _PAGE_SPECIAL) != 0;

    [KernelSymbol("pte_uffd_wp", "arch/x86/include/asm/pgtable.h")]
    public static bool PteUffdWp(Pte pte) => (pte.Val & _PAGE_UFFD_WP) != 0;

    [KernelSymbol("pte_soft_dirty", "arch/x86/include/asm/pgtable.h")]
    public static bool PteSoftDirty(Pte pte) => (pte.Val & _PAGE_SOFT_DIRTY_BIT) != 0;

    [KernelSymbol("pte_user", "arch/x86/include/asm/pgtable.h")]
    public static bool PteUser(Pte pte) => (pte.Val & _PAGE_USER) != 0;

    /// <summary>pte_pfn(): the PFN, un-inverting PROT_NONE entries.</summary>
    [KernelSymbol("pte_pfn", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PtePfn(Pte pte)
    {
        ulong v = pte.Val;
        v ^= ProtnoneMask(v);
        return (v & PTE_PFN_MASK) >> PAGE_SHIFT;
    }

    [KernelSymbol("pte_flags", "arch/x86/include/asm/pgtable_types.h")]
    public static ulong PteFlags(Pte pte) => pte.Val & PTE_FLAGS_MASK;

    [KernelSymbol("pte_same", "include/linux/pgtable.h")]
    public static bool PteSame(Pte a, Pte b) => a.Val == b.Val;

    // ---- PTE constructors and modifiers ----

    /// <summary>pfn_pte(): builds a PTE, inverting the PFN for non-present protections.</summary>
    [KernelSymbol("pfn_pte", "arch/x86/include/asm/pgtable.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pte PfnPte(ulong pfn, PgProt prot)
    {
        ulong p = pfn << PAGE_SHIFT;
        p ^= ProtnoneMask(prot.Val);
        p &= PTE_PFN_MASK;
        return new Pte(p | prot.Val);
    }

    [KernelSymbol("pte_mkwrite_novma", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkwriteNovma(Pte pte) => new(pte.Val | _PAGE_RW);

    /// <summary>pte_wrprotect(). Without user shadow stacks pte_mksaveddirty() is a no-op.</summary>
    [KernelSymbol("pte_wrprotect", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteWrprotect(Pte pte) => new(pte.Val & ~_PAGE_RW);

    [KernelSymbol("pte_mkclean", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkclean(Pte pte) => new(pte.Val & ~_PAGE_DIRTY);

    [KernelSymbol("pte_mkold", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkold(Pte pte) => new(pte.Val & ~_PAGE_ACCESSED);

    [KernelSymbol("pmd_mkold", "arch/x86/include/asm/pgtable.h")]
    public static Pmd PmdMkold(Pmd pmd) => new(pmd.Val & ~_PAGE_ACCESSED);

    [KernelSymbol("pud_mkold", "arch/x86/include/asm/pgtable.h")]
    public static Pud PudMkold(Pud pud) => new(pud.Val & ~_PAGE_ACCESSED);

    [KernelSymbol("pte_mkyoung", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkyoung(Pte pte) => new(pte.Val | _PAGE_ACCESSED);

    [KernelSymbol("pte_mkspecial", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkspecial(Pte pte) => new(pte.Val | _PAGE_SPECIAL);

    [KernelSymbol("pte_mkuffd_wp", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkuffdWp(Pte pte) => new((pte.Val | _PAGE_UFFD_WP) & ~_PAGE_RW);

    [KernelSymbol("pte_clear_uffd_wp", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteClearUffdWp(Pte pte) => new(pte.Val & ~_PAGE_UFFD_WP);

    [KernelSymbol("pte_clear_soft_dirty", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteClearSoftDirty(Pte pte) => new(pte.Val & ~_PAGE_SOFT_DIRTY_BIT);

    [KernelSymbol("pte_mkhuge", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkhuge(Pte pte) => new(pte.Val | _PAGE_PSE);

    [KernelSymbol("pte_huge", "arch/x86/include/asm/pgtable.h")]
    public static bool PteHuge(Pte pte) => (pte.Val & _PAGE_PSE) != 0;

    [KernelSymbol("pte_clrhuge", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteClrhuge(Pte pte) => new(pte.Val & ~_PAGE_PSE);

    [KernelSymbol("pte_mksoft_dirty", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMksoftDirty(Pte pte) => new(pte.Val | _PAGE_SOFT_DIRTY_BIT);

    [KernelSymbol("pte_global", "arch/x86/include/asm/pgtable.h")]
    public static bool PteGlobal(Pte pte) => (pte.Val & _PAGE_GLOBAL) != 0;

    [KernelSymbol("pte_mkglobal", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkglobal(Pte pte) => new(pte.Val | _PAGE_GLOBAL);

    [KernelSymbol("pte_clrglobal", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteClrglobal(Pte pte) => new(pte.Val & ~_PAGE_GLOBAL);

    /// <summary>pte_exec(): executable unless NX is set.</summary>
    [KernelSymbol("pte_exec", "arch/x86/include/asm/pgtable.h")]
    public static bool PteExec(Pte pte) => (pte.Val & _PAGE_NX) == 0;

    [KernelSymbol("pte_mkexec", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteMkexec(Pte pte) => new(pte.Val & ~_PAGE_NX);

    /// <summary>pgprot2cachemode() for the default PAT layout: the inverse of
    /// <see cref="X86Pte.CacheModeBits"/> over the PWT, PCD and (4 KiB) PAT bits.</summary>
    [KernelSymbol("pgprot2cachemode", "arch/x86/include/asm/pgtable_types.h")]
    public static X86Pte.CacheMode Pgprot2Cachemode(PgProt prot)
    {
        ulong v = prot.Val;
        int index = ((v & _PAGE_PAT) != 0 ? 4 : 0) | ((v & _PAGE_PCD) != 0 ? 2 : 0) | ((v & _PAGE_PWT) != 0 ? 1 : 0);
        // PAT0..7 = WB, WC, UC-, UC, WB, WP, UC-, WT.
        return index switch
        {
            0 or 4 => X86Pte.CacheMode.WB,
            1 => X86Pte.CacheMode.WC,
            2 or 6 => X86Pte.CacheMode.UC_MINUS,
            3 => X86Pte.CacheMode.UC,
            5 => X86Pte.CacheMode.WP,
            _ => X86Pte.CacheMode.WT,
        };
    }

    /// <summary>pte_modify(): new protection bits, keeping _PAGE_CHG_MASK (PFN, cache mode, A, D, …).</summary>
    [KernelSymbol("pte_modify", "arch/x86/include/asm/pgtable.h")]
    public static Pte PteModify(Pte pte, PgProt newprot)
    {
        ulong oldval = pte.Val;
        ulong val = oldval & _PAGE_CHG_MASK;
        val |= newprot.Val & ~_PAGE_CHG_MASK;
        val = FlipProtnoneGuard(oldval, val, PTE_PFN_MASK);
        return new Pte(val);
    }

    /// <summary>pgprot_modify(): carries the cache bits of the old protection into the new one.</summary>
    [KernelSymbol("pgprot_modify", "arch/x86/include/asm/pgtable.h")]
    public static PgProt PgprotModify(PgProt oldprot, PgProt newprot)
    {
        ulong preservebits = oldprot.Val & _PAGE_CHG_MASK;
        ulong addbits = newprot.Val & ~_PAGE_CHG_MASK;
        return new PgProt(preservebits | addbits);
    }

    /// <summary>pgprot_noncached() on x86: UC- is what ioremap gives; PCD|PWT is UC.</summary>
    [KernelSymbol("pgprot_noncached", "arch/x86/include/asm/pgtable.h")]
    public static PgProt PgprotNoncached(PgProt p) =>
        new((p.Val & ~_PAGE_CACHE_MASK) | CacheModeBits(CacheMode.UC_MINUS));

    [KernelSymbol("pgprot_writecombine", "arch/x86/mm/pat/memtype.c")]
    public static PgProt PgprotWritecombine(PgProt p) =>
        new((p.Val & ~_PAGE_CACHE_MASK) | CacheModeBits(CacheMode.WC));

    // ---- upper levels: values only; folding is the Kernel's business ----

    [KernelSymbol("pmd_none", "arch/x86/include/asm/pgtable.h")]
    public static bool PmdNone(Pmd pmd) => (pmd.Val & ~(_PAGE_DIRTY | _PAGE_ACCESSED)) == 0;

    /// <summary>pmd_present(): P, PROT_NONE, or PSE (a splitting huge PMD keeps PSE).</summary>
    [KernelSymbol("pmd_present", "arch/x86/include/asm/pgtable.h")]
    public static bool PmdPresent(Pmd pmd) => (pmd.Val & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE)) != 0;

    /// <summary>pmd_leaf(): a huge (PSE) mapping rather than a table pointer.</summary>
    [KernelSymbol("pmd_leaf", "arch/x86/include/asm/pgtable.h")]
    public static bool PmdLeaf(Pmd pmd) => (pmd.Val & _PAGE_PSE) != 0;

    [KernelSymbol("pmd_special", "arch/x86/include/asm/pgtable.h")]
    public static bool PmdSpecial(Pmd pmd) => (pmd.Val & _PAGE_SPECIAL) != 0;

    [KernelSymbol("pmd_write", "arch/x86/include/asm/pgtable.h")]
    public static bool PmdWrite(Pmd pmd) => (pmd.Val & _PAGE_RW) != 0;

    /// <summary>pmd_pfn(): for a leaf, the first PFN of the huge page.</summary>
    [KernelSymbol("pmd_pfn", "arch/x86/include/asm/pgtable.h")]
    public static ulong PmdPfn(Pmd pmd)
    {
        ulong v = pmd.Val;
        v ^= ProtnoneMask(v);
        ulong mask = PmdLeaf(pmd) ? PTE_PFN_MASK & ~((1UL << 21) - 1) : PTE_PFN_MASK;
        return (v & mask) >> PAGE_SHIFT;
    }

    [KernelSymbol("pud_none", "arch/x86/include/asm/pgtable.h")]
    public static bool PudNone(Pud pud) => (pud.Val & ~(_PAGE_DIRTY | _PAGE_ACCESSED)) == 0;

    [KernelSymbol("pud_present", "arch/x86/include/asm/pgtable.h")]
    public static bool PudPresent(Pud pud) => (pud.Val & _PAGE_PRESENT) != 0;

    [KernelSymbol("pud_leaf", "arch/x86/include/asm/pgtable.h")]
    public static bool PudLeaf(Pud pud) => (pud.Val & (_PAGE_PSE | _PAGE_PRESENT)) == (_PAGE_PSE | _PAGE_PRESENT);

    [KernelSymbol("pud_special", "arch/x86/include/asm/pgtable.h")]
    public static bool PudSpecial(Pud pud) => (pud.Val & _PAGE_SPECIAL) != 0;

    [KernelSymbol("pud_write", "arch/x86/include/asm/pgtable.h")]
    public static bool PudWrite(Pud pud) => (pud.Val & _PAGE_RW) != 0;

    [KernelSymbol("pud_pfn", "arch/x86/include/asm/pgtable.h")]
    public static ulong PudPfn(Pud pud)
    {
        ulong v = pud.Val;
        v ^= ProtnoneMask(v);
        ulong mask = PudLeaf(pud) ? PTE_PFN_MASK & ~((1UL << 30) - 1) : PTE_PFN_MASK;
        return (v & mask) >> PAGE_SHIFT;
    }

    [KernelSymbol("p4d_none", "arch/x86/include/asm/pgtable.h")]
    public static bool P4dNone(P4d p4d) => (p4d.Val & ~(_PAGE_DIRTY | _PAGE_ACCESSED)) == 0;

    [KernelSymbol("pgd_none", "arch/x86/include/asm/pgtable.h")]
    public static bool PgdNoneValue(Pgd pgd) => pgd.Val == 0;

    /// <summary>The PFN of the table a non-leaf entry points to.</summary>
    public static ulong TablePfn(ulong entry) => (entry & PTE_PFN_MASK) >> PAGE_SHIFT;

    /// <summary>pfn_pmd() for a huge leaf: PSE set, PAT moved to bit 12 by the caller's prot.</summary>
    [KernelSymbol("pfn_pmd", "arch/x86/include/asm/pgtable.h")]
    public static Pmd PfnPmd(ulong pfn, PgProt prot)
    {
        ulong p = pfn << PAGE_SHIFT;
        p ^= ProtnoneMask(prot.Val);
        p &= PTE_PFN_MASK;
        return new Pmd(p | prot.Val);
    }

    [KernelSymbol("pfn_pud", "arch/x86/include/asm/pgtable.h")]
    public static Pud PfnPud(ulong pfn, PgProt prot)
    {
        ulong p = pfn << PAGE_SHIFT;
        p ^= ProtnoneMask(prot.Val);
        p &= PTE_PFN_MASK;
        return new Pud(p | prot.Val);
    }

    /// <summary>pgprot_4k_2_large(): moves PAT from bit 7 to bit 12 and sets PSE for a huge leaf.</summary>
    [KernelSymbol("pgprot_4k_2_large", "arch/x86/include/asm/pgtable_types.h")]
    public static PgProt Pgprot4kToLarge(PgProt p)
    {
        ulong v = p.Val;
        ulong pat = (v & _PAGE_PAT) != 0 ? _PAGE_PAT_LARGE : 0;
        return new PgProt((v & ~_PAGE_PAT) | pat | _PAGE_PSE);
    }
}

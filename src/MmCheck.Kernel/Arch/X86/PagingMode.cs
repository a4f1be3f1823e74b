namespace Linux;

/// <summary>
/// The page-table geometry of an x86 paging mode: how many levels are real, their shifts and
/// sizes, and which are folded (pgtable-nop4d.h, -nopud.h, -nopmd.h). Level numbers: 1 is the
/// PTE table, 2 the PMD table, 3 PUD, 4 P4D, 5 PGD.
/// </summary>
public sealed class PagingMode
{
    public string Name { get; }
    public int PageShift => 12;
    public ulong PageSize => 1UL << PageShift;

    public int PgdirShift { get; }
    public int P4dShift { get; }
    public int PudShift { get; }
    public int PmdShift { get; }

    public int PtrsPerPgd { get; }
    public int PtrsPerP4d { get; }
    public int PtrsPerPud { get; }
    public int PtrsPerPmd { get; }
    public int PtrsPerPte { get; }

    public bool P4dFolded { get; }
    public bool PudFolded { get; }
    public bool PmdFolded { get; }

    /// <summary>sizeof(pte_t): 8, or 4 on x86-32 without PAE.</summary>
    public int EntryBytes { get; }

    /// <summary>TASK_SIZE: the top of the user address space.</summary>
    public ulong TaskSize { get; }

    /// <summary>DEFAULT_MAP_WINDOW: mmap's default upper bound (47 bits even on LA57).</summary>
    public ulong DefaultMapWindow { get; }

    /// <summary>MAX_PHYSMEM_BITS.</summary>
    public int MaxPhysmemBits { get; }

    /// <summary>Whether entries have an NX bit.</summary>
    public bool HasNx { get; }

    /// <summary>Start of the kernel's vmalloc area (VMALLOC_START).</summary>
    public ulong VmallocStart { get; }
    public ulong VmallocEnd { get; }

    private PagingMode(string name, int pgdShift, int ptrsPgd, int p4dShift, int ptrsP4d, int pudShift, int ptrsPud,
        int pmdShift, int ptrsPmd, int ptrsPte, int entryBytes, ulong taskSize, ulong mapWindow, int physBits,
        bool nx, ulong vmallocStart, ulong vmallocEnd)
    {
        Name = name;
        PgdirShift = pgdShift;
        PtrsPerPgd = ptrsPgd;
        P4dShift = p4dShift;
        PtrsPerP4d = ptrsP4d;
        PudShift = pudShift;
        PtrsPerPud = ptrsPud;
        PmdShift = pmdShift;
        PtrsPerPmd = ptrsPmd;
        PtrsPerPte = ptrsPte;
        P4dFolded = ptrsP4d == 1;
        PudFolded = ptrsPud == 1;
        PmdFolded = ptrsPmd == 1;
        EntryBytes = entryBytes;
        TaskSize = taskSize;
        DefaultMapWindow = mapWindow;
        MaxPhysmemBits = physBits;
        HasNx = nx;
        VmallocStart = vmallocStart;
        VmallocEnd = vmallocEnd;
    }

    /// <summary>x86-64 with 4-level paging: PML4 → [P4D folded] → PUD → PMD → PTE.</summary>
    public static readonly PagingMode X86_64_4Level = new("x86_64", 39, 512, 39, 1, 30, 512, 21, 512, 512, 8,
        (1UL << 47) - 4096, (1UL << 47) - 4096, 46, nx: true, 0xffffc90000000000UL, 0xffffe8ffffffffffUL);

    /// <summary>x86-64 with LA57: PGD → P4D → PUD → PMD → PTE.</summary>
    public static readonly PagingMode X86_64_5Level = new("x86_64-la57", 48, 512, 39, 512, 30, 512, 21, 512, 512, 8,
        (1UL << 56) - 4096, (1UL << 47) - 4096, 52, nx: true, 0xffa0000000000000UL, 0xffd1ffffffffffffUL);

    /// <summary>x86-32 2-level: PGD (1024 entries of 4 bytes) → PTE; P4D, PUD and PMD folded.</summary>
    public static readonly PagingMode X86_32_2Level = new("i386", 22, 1024, 22, 1, 22, 1, 22, 1, 1024, 4,
        0xC0000000UL, 0xC0000000UL, 32, nx: false, 0xF8000000UL, 0xFF7FE000UL);

    /// <summary>x86-32 PAE: PGD (4 entries) → PMD → PTE, 8-byte entries.</summary>
    public static readonly PagingMode X86_32_Pae = new("i386-pae", 30, 4, 30, 1, 30, 1, 21, 512, 512, 8,
        0xC0000000UL, 0xC0000000UL, 36, nx: true, 0xF8000000UL, 0xFF7FE000UL);

    public static IReadOnlyList<PagingMode> All { get; } = [X86_64_4Level, X86_64_5Level, X86_32_2Level, X86_32_Pae];

    public static PagingMode? ByName(string name) => name switch
    {
        "x86_64" or "x86_64-4level" => X86_64_4Level,
        "x86_64-la57" or "x86_64-5level" => X86_64_5Level,
        "i386" or "x86_32" or "x86_32-2level" => X86_32_2Level,
        "i386-pae" or "x86_32-pae" => X86_32_Pae,
        _ => null,
    };

    /// <summary>The number of real (unfolded) levels.</summary>
    public int Levels => 2 + (PmdFolded ? 0 : 1) + (PudFolded ? 0 : 1) + (P4dFolded ? 0 : 1);

    public int PgdIndex(ulong addr) => (int)((addr >> PgdirShift) & (ulong)(PtrsPerPgd - 1));
    public int P4dIndex(ulong addr) => P4dFolded ? 0 : (int)((addr >> P4dShift) & (ulong)(PtrsPerP4d - 1));
    public int PudIndex(ulong addr) => PudFolded ? 0 : (int)((addr >> PudShift) & (ulong)(PtrsPerPud - 1));
    public int PmdIndex(ulong addr) => PmdFolded ? 0 : (int)((addr >> PmdShift) & (ulong)(PtrsPerPmd - 1));
    public int PteIndex(ulong addr) => (int)((addr >> PageShift) & (ulong)(PtrsPerPte - 1));

    public ulong PgdirSize => 1UL << PgdirShift;
    public ulong P4dSize => 1UL << P4dShift;
    public ulong PudSize => 1UL << PudShift;
    public ulong PmdSize => 1UL << PmdShift;

    /// <summary>The frame a present leaf entry of (1 &lt;&lt; <paramref name="shift"/>) bytes maps at
    /// <paramref name="va"/>: its base frame plus the page's offset inside the leaf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong LeafPfn(ulong entry, int shift, ulong va)
    {
        ulong mask = (1UL << shift) - 1;
        return ((entry & X86Pte.PTE_PFN_MASK & ~mask) >> PgTable.PAGE_SHIFT) + ((va & mask) >> PgTable.PAGE_SHIFT);
    }

    /// <summary>pXd_addr_end(): the next boundary of a level, clamped to <paramref name="end"/>.</summary>
    public static ulong AddrEnd(ulong addr, ulong end, int shift)
    {
        ulong boundary = (addr + (1UL << shift)) & ~((1UL << shift) - 1);
        return boundary - 1 < end - 1 ? boundary : end;
    }

    /// <summary>The shift of the entries a table at <paramref name="level"/> holds.</summary>
    public int ShiftOfLevel(int level) => level switch
    {
        1 => PageShift,
        2 => PmdShift,
        3 => PudShift,
        4 => P4dShift,
        _ => PgdirShift,
    };

    public int PtrsOfLevel(int level) => level switch
    {
        1 => PtrsPerPte,
        2 => PtrsPerPmd,
        3 => PtrsPerPud,
        4 => PtrsPerP4d,
        _ => PtrsPerPgd,
    };

    public override string ToString() => Name;
}

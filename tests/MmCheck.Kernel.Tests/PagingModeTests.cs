using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// The page-table geometry is a parameter of the kernel (KernelConfig.Paging): the values of each
/// x86 paging mode, and the same kernel code running on 4-level, 5-level (LA57), 2-level and PAE
/// tables with the per-level walkers skipping folded levels. Only the geometry varies: entries use
/// the x86-64 encoding in every mode (the 32-bit formats are not modelled yet).
/// </summary>
public class PagingModeTests
{
    public static TheoryData<string, int, int, int, int, int, int> Geometries => new()
    {
        // name, levels, PGDIR_SHIFT, PTRS_PER_PGD, PMD_SHIFT, PTRS_PER_PMD, PTRS_PER_PTE
        { "x86_64", 4, 39, 512, 21, 512, 512 },
        { "x86_64-la57", 5, 48, 512, 21, 512, 512 },
        { "i386", 2, 22, 1024, 22, 1, 1024 },
        { "i386-pae", 3, 30, 4, 21, 512, 512 },
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void EachModeHasTheKernelsShiftsAndTableSizes(string name, int levels, int pgdShift, int ptrsPgd,
        int pmdShift, int ptrsPmd, int ptrsPte)
    {
        var m = PagingMode.ByName(name)!;
        Assert.Equal(levels, m.Levels);
        Assert.Equal(pgdShift, m.PgdirShift);
        Assert.Equal(ptrsPgd, m.PtrsPerPgd);
        Assert.Equal(pmdShift, m.PmdShift);
        Assert.Equal(ptrsPmd, m.PtrsPerPmd);
        Assert.Equal(ptrsPte, m.PtrsPerPte);
        // The levels together translate exactly the bits of a virtual address the mode has.
        int bits = 12 + Log2(ptrsPte) + (m.PmdFolded ? 0 : 9) + (m.PudFolded ? 0 : 9) + (m.P4dFolded ? 0 : 9) + Log2(ptrsPgd);
        Assert.Equal(name switch { "x86_64" => 48, "x86_64-la57" => 57, _ => 32 }, bits);
    }

    [Fact]
    public void FourLevelFoldsP4dAndFiveLevelDoesNot()
    {
        Assert.True(PagingMode.X86_64_4Level.P4dFolded);
        Assert.False(PagingMode.X86_64_4Level.PudFolded);
        Assert.False(PagingMode.X86_64_5Level.P4dFolded);
        Assert.True(PagingMode.X86_32_2Level.PmdFolded && PagingMode.X86_32_2Level.PudFolded);
        Assert.Equal(4, PagingMode.X86_32_2Level.EntryBytes);
        Assert.False(PagingMode.X86_32_2Level.HasNx);
        Assert.True(PagingMode.X86_32_Pae.HasNx);
        // DEFAULT_MAP_WINDOW stays at 47 bits with LA57; TASK_SIZE grows to 56.
        Assert.Equal((1UL << 47) - 4096, PagingMode.X86_64_5Level.DefaultMapWindow);
        Assert.Equal((1UL << 56) - 4096, PagingMode.X86_64_5Level.TaskSize);
    }

    [Fact]
    public void PmdAddrEndClampsToTheNextBoundaryOrTheEnd()
    {
        Assert.Equal(0x200000UL, PagingMode.AddrEnd(0x1000, 0x400000, 21));
        Assert.Equal(0x3000UL, PagingMode.AddrEnd(0x1000, 0x3000, 21));
        // pXd_addr_end() compares boundary-1 with end-1, so an end of 0 (the top of the space) works.
        Assert.Equal(0x200000UL, PagingMode.AddrEnd(0x1000, 0, 21));
    }

    private static int Log2(int n) => System.Numerics.BitOperations.Log2((uint)n);

    /// <summary>The table levels the walk passes through for an address, top first.</summary>
    private static List<int> TableLevels(Linux.Kernel k, MmStruct mm, ulong addr)
    {
        var levels = new List<int>();
        var pgd = k.PgdOffset(mm, addr);
        levels.Add(pgd.Table.Level);
        var p4d = k.P4dOffset(pgd, addr);
        if (p4d.Table != pgd.Table)
        {
            levels.Add(p4d.Table.Level);
        }
        var pud = k.PudOffset(p4d, addr);
        if (pud.Table != p4d.Table)
        {
            levels.Add(pud.Table.Level);
        }
        var pmd = k.PmdOffset(pud, addr);
        if (pmd.Table != pud.Table)
        {
            levels.Add(pmd.Table.Level);
        }
        levels.Add(k.PteOffsetKernel(pmd, addr).Table.Level);
        return levels;
    }

    public static TheoryData<string, int[]> Walks => new()
    {
        { "x86_64", [5, 3, 2, 1] },
        { "x86_64-la57", [5, 4, 3, 2, 1] },
        { "i386", [5, 1] },
        { "i386-pae", [5, 2, 1] },
    };

    [Theory]
    [MemberData(nameof(Walks))]
    public void TheSameKernelCodeFaultsForksAndUnmapsInEveryMode(string name, int[] expectedLevels)
    {
        var p = Proc.Boot(new KernelConfig { Paging = PagingMode.ByName(name)!, RamBytes = 256UL << 20 });
        ulong a = p.MmapAnon(4);
        Assert.True(a < p.K.Paging.TaskSize);
        p.Write(a, 0x11);
        p.Write(a + 3 * 4096, 0x33, 4);
        // The walk passes through exactly the unfolded levels, each a page-table page of the mode's size.
        Assert.Equal(expectedLevels, TableLevels(p.K, p.Mm, a));
        var pte = p.K.WalkPte(p.Mm, a)!.Value;
        Assert.Equal(p.K.Paging.PtrsPerPte, pte.Table.Entries.Length);
        Assert.Equal(p.K.Paging.PtrsPerPgd, p.Mm.Pgd.Entries.Length);
        Assert.Equal(p.Pagemap(a).Pfn, PgTable.PtePfn(p.K.PtepGet(pte)));

        var c = p.Fork();
        p.Write(a, 0x22);
        Assert.Equal(0x11UL, c.Read(a));
        Assert.Equal(0x22UL, p.Read(a));
        Assert.Equal(0x33UL, c.Read(a + 3 * 4096, 4));
        Assert.True(p.Pagemap(a).Exclusive);
        Assert.True(c.Pagemap(a).Exclusive);

        Assert.Equal(0L, p.Munmap(a, 4 * 4096));
        Assert.Equal(SIGSEGV, p.Load(a).Signal);
        c.Exit();
        p.AssertClean();
    }

    [Fact]
    public void FiveLevelPagingMapsAboveTheFourLevelLimitOnlyWhenAskedTo()
    {
        var p = Proc.Boot(new KernelConfig { Paging = PagingMode.X86_64_5Level, RamBytes = 256UL << 20 });
        // Without a hint above 47 bits mmap stays below DEFAULT_MAP_WINDOW, as on LA57 hardware.
        ulong low = p.MmapAnon(1);
        Assert.True(low < 1UL << 47);
        // A hint above it is honoured.
        ulong hint = 1UL << 50;
        long high = p.Mmap(hint, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        Assert.Equal((long)hint, high);
        p.Write(hint, 0x5a);
        Assert.Equal(0x5aUL, p.Read(hint));
        Assert.NotEqual(p.K.Paging.PgdIndex(low), p.K.Paging.PgdIndex(hint));
        p.AssertClean();
    }
}

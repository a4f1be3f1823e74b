using Linux;
using static Linux.PgTable;
using static Linux.X86Pte;
using CacheMode = Linux.X86Pte.CacheMode;

namespace MmCheck.Kernel.Tests;

/// <summary>Bit-exact x86-64 encodings: every PTE bit and every non-present entry type.</summary>
public class PteEncodingTests
{
    /// <summary>Each x86 PTE bit with the kernel helpers that test, set and clear it.</summary>
    private static readonly Dictionary<string, (int Bit, Func<Pte, bool> Test, Func<Pte, Pte> Set, Func<Pte, Pte> Clear)> s_bits = new()
    {
        // present, user, pwt, pcd and setting dirty have no single-bit kernel helper: raw bit operations.
        ["present"] = (0, p => (p.Val & _PAGE_PRESENT) != 0, p => new Pte(p.Val | _PAGE_PRESENT), p => new Pte(p.Val & ~_PAGE_PRESENT)),
        ["rw"] = (1, PteWrite, PteMkwriteNovma, PteWrprotect),
        ["user"] = (2, PteUser, p => new Pte(p.Val | _PAGE_USER), p => new Pte(p.Val & ~_PAGE_USER)),
        ["pwt"] = (3, p => (p.Val & _PAGE_PWT) != 0, p => new Pte(p.Val | _PAGE_PWT), p => new Pte(p.Val & ~_PAGE_PWT)),
        ["pcd"] = (4, p => (p.Val & _PAGE_PCD) != 0, p => new Pte(p.Val | _PAGE_PCD), p => new Pte(p.Val & ~_PAGE_PCD)),
        ["accessed"] = (5, PteYoung, PteMkyoung, PteMkold),
        ["dirty"] = (6, PteDirty, p => new Pte(p.Val | _PAGE_DIRTY), PteMkclean),
        ["pse/pat"] = (7, PteHuge, PteMkhuge, PteClrhuge),
        ["global"] = (8, PteGlobal, PteMkglobal, PteClrglobal),
        ["special"] = (9, PteSpecial, PteMkspecial, p => new Pte(p.Val & ~_PAGE_SPECIAL)),
        // pte_mkuffd_wp() also write-protects (checked below); RW is put back to isolate bit 10.
        ["uffd-wp"] = (10, PteUffdWp, p => new Pte(PteMkuffdWp(p).Val | (p.Val & _PAGE_RW)), PteClearUffdWp),
        ["soft-dirty"] = (11, PteSoftDirty, PteMksoftDirty, PteClearSoftDirty),
        ["nx"] = (63, p => !PteExec(p), p => new Pte(p.Val | _PAGE_NX), PteMkexec),
    };

    public static TheoryData<string> BitNames => new(s_bits.Keys);

    [Theory]
    [MemberData(nameof(BitNames))]
    public void EveryPteBitRoundTripsThroughTheKernelsHelpersAndTouchesOnlyItsBit(string name)
    {
        var (bit, test, set, clear) = s_bits[name];
        foreach (ulong pfn in new ulong[] { 0x1, 0x12345, (1UL << 40) - 1 })
        {
            // Start from an entry with every other helper bit in both states.
            foreach (ulong others in new[] { 0UL, PAGE_SHARED_EXEC | _PAGE_DIRTY, ~0UL & ~PTE_PFN_MASK })
            {
                var basePte = new Pte(((pfn << 12) & PTE_PFN_MASK) | (others & ~(1UL << bit)));
                Assert.False(test(basePte));
                var on = set(basePte);
                Assert.True(test(on));
                Assert.Equal(basePte.Val | (1UL << bit), on.Val);
                var off = clear(on);
                Assert.False(test(off));
                Assert.Equal(basePte.Val, off.Val);
                Assert.Equal(pfn, (on.Val & PTE_PFN_MASK) >> 12);
            }
        }
    }

    [Fact]
    public void TheUserProtectionsHaveTheExactX86Values()
    {
        // pgtable_types.h: P|RW|US|A = 0x27, NX = bit 63; PAGE_NONE is A|G (PROTNONE).
        Assert.Equal(0x8000000000000027UL, PAGE_SHARED);
        Assert.Equal(0x27UL, PAGE_SHARED_EXEC);
        Assert.Equal(0x8000000000000025UL, PAGE_COPY);
        Assert.Equal(0x8000000000000025UL, PAGE_READONLY);
        Assert.Equal(0x25UL, PAGE_READONLY_EXEC);
        Assert.Equal(0x120UL, PAGE_NONE);
        Assert.Equal(0x67UL, _PAGE_TABLE);
        Assert.Equal(0x8000000000000163UL, PAGE_KERNEL);
        Assert.Equal(0xFFFFFFFFFF000UL, PTE_PFN_MASK);
        // A PTE for pfn 0x1234 mapped shared writable: the bytes a real page table holds.
        Assert.Equal(0x8000000001234027UL, PfnPte(0x1234, new PgProt(PAGE_SHARED)).Val);
        var wr = PteMkyoung(new Pte(PfnPte(0x1234, new PgProt(PAGE_SHARED)).Val | _PAGE_DIRTY));
        Assert.Equal(0x8000000001234067UL, wr.Val);
        Assert.False(PteExec(wr));
        Assert.True(PteExec(PfnPte(0x1234, new PgProt(PAGE_SHARED_EXEC))));
    }

    [Fact]
    public void CacheModesRoundTripThroughPwtPcdAndPat()
    {
        foreach (var mode in Enum.GetValues<CacheMode>())
        {
            var prot = new PgProt(PAGE_SHARED | CacheModeBits(mode));
            Assert.Equal(mode, Pgprot2Cachemode(prot));
            var pte = PfnPte(0x99, prot);
            Assert.Equal(mode, Pgprot2Cachemode(new PgProt(PteFlags(pte))));
            // mprotect (pte_modify) keeps the cache mode: PWT, PCD and PAT are in _PAGE_CHG_MASK.
            Assert.Equal(mode, Pgprot2Cachemode(new PgProt(PteModify(pte, new PgProt(PAGE_READONLY)).Val)));
        }
        Assert.Equal(CacheMode.UC_MINUS, Pgprot2Cachemode(PgprotNoncached(new PgProt(PAGE_SHARED))));
        Assert.Equal(CacheMode.WC, Pgprot2Cachemode(PgprotWritecombine(new PgProt(PAGE_SHARED))));
    }

    [Fact]
    public void PteModifyChangesProtectionBitsButKeepsNxOnlyFromTheNewProtection()
    {
        var exec = PfnPte(0x42, new PgProt(PAGE_SHARED_EXEC));
        var noexec = PteModify(exec, new PgProt(PAGE_READONLY));
        Assert.False(PteExec(noexec));
        Assert.True(PteExec(PteModify(noexec, new PgProt(PAGE_READONLY_EXEC))));
        // Special, uffd-wp and soft-dirty are software bits kept across mprotect.
        var sw = new Pte(exec.Val | _PAGE_SPECIAL | _PAGE_UFFD_WP | _PAGE_SOFT_DIRTY_BIT);
        var m = PteModify(sw, new PgProt(PAGE_READONLY));
        Assert.True(PteSpecial(m) && PteUffdWp(m) && PteSoftDirty(m));
        // Global is not in the change mask: user protections never carry it.
        Assert.False(PteGlobal(PteModify(PteMkglobal(exec), new PgProt(PAGE_READONLY))));
    }

    [Fact]
    public void PfnPteRoundTripsThePfnAndTheProtection()
    {
        foreach (ulong pfn in new ulong[] { 0, 1, 0x1234, (1UL << 40) - 1 })
        {
            var pte = PfnPte(pfn, new PgProt(PAGE_SHARED));
            Assert.Equal(pfn, PtePfn(pte));
            Assert.True(PtePresent(pte));
            Assert.True(PteWrite(pte));
            Assert.Equal(PAGE_SHARED, PteFlags(pte));
        }
    }

    [Fact]
    public void ProtNoneEntriesInvertThePfnAndStayPresentToTheKernel()
    {
        var pte = PfnPte(0x1234, new PgProt(PAGE_NONE));
        Assert.False((pte.Val & _PAGE_PRESENT) != 0);
        Assert.True(PtePresent(pte));
        Assert.True(PteProtnone(pte));
        Assert.Equal(0x1234UL, PtePfn(pte));
        // The raw PFN field is inverted (L1TF).
        Assert.NotEqual(0x1234UL, (pte.Val & PTE_PFN_MASK) >> 12);
        // pte_modify() back to an accessible protection flips it back.
        var back = PteModify(pte, new PgProt(PAGE_READONLY));
        Assert.Equal(0x1234UL, (back.Val & PTE_PFN_MASK) >> 12);
        Assert.Equal(0x1234UL, PtePfn(back));
    }

    [Fact]
    public void PteModifyKeepsTheChangeMaskAndReplacesTheRest()
    {
        var pte = new Pte(PfnPte(0x42, new PgProt(PAGE_SHARED)).Val | _PAGE_DIRTY | _PAGE_SPECIAL | _PAGE_PCD);
        var m = PteModify(pte, new PgProt(PAGE_READONLY));
        Assert.Equal(0x42UL, PtePfn(m));
        Assert.True(PteDirty(m));
        Assert.True(PteSpecial(m));
        Assert.True((m.Val & _PAGE_PCD) != 0);
        Assert.False(PteWrite(m));
    }

    [Fact]
    public void PteNoneIgnoresAccessedAndDirtyAlone()
    {
        Assert.True(PteNone(new Pte(0)));
        Assert.True(PteNone(new Pte(_PAGE_ACCESSED | _PAGE_DIRTY)));
        Assert.False(PteNone(new Pte(_PAGE_PRESENT)));
    }

    [Fact]
    public void ProtectionMapMatchesX86()
    {
        Assert.Equal(PAGE_NONE, MmFlags.VmGetPageProt(0).Val);
        Assert.Equal(PAGE_COPY, MmFlags.VmGetPageProt(VmFlags.VM_READ | VmFlags.VM_WRITE).Val);
        Assert.Equal(PAGE_SHARED, MmFlags.VmGetPageProt(VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_SHARED).Val);
        Assert.Equal(PAGE_READONLY_EXEC, MmFlags.VmGetPageProt(VmFlags.VM_READ | VmFlags.VM_EXEC).Val);
        Assert.False(PteWrite(new Pte(PAGE_COPY)));
        Assert.True((PAGE_COPY & _PAGE_NX) != 0);
    }

    public static TheoryData<string, uint> Types => new()
    {
        { "swap", 0 },
        { "swap", 23 },
        { "hwpoison", SwapOps.SWP_HWPOISON },
        { "migration_read", SwapOps.SWP_MIGRATION_READ },
        { "migration_read_exclusive", SwapOps.SWP_MIGRATION_READ_EXCLUSIVE },
        { "migration_write", SwapOps.SWP_MIGRATION_WRITE },
        { "device_private_write", SwapOps.SWP_DEVICE_WRITE },
        { "device_private_read", SwapOps.SWP_DEVICE_READ },
        { "device_exclusive", SwapOps.SWP_DEVICE_EXCLUSIVE },
        { "pte_marker", SwapOps.SWP_PTE_MARKER },
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void EveryNonPresentEntryTypeRoundTrips(string name, uint type)
    {
        foreach (ulong offset in new ulong[] { 0, 1, 0x1234, (1UL << 34) - 1 })
        {
            var e = new SwpEntry(type, offset);
            var pte = SwapOps.SwpEntryToPte(e);
            Assert.False((pte.Val & _PAGE_PRESENT) != 0);
            Assert.False((pte.Val & _PAGE_PROTNONE) != 0);
            Assert.False((pte.Val & _PAGE_PSE) != 0);
            Assert.Equal(0UL, pte.Val & (_PAGE_ACCESSED | _PAGE_DIRTY));
            if (type != 0 || offset != 0)
            {
                Assert.True(SwapOps.IsSwapPte(pte));
            }
            Assert.Equal(e, SwapOps.PteToSwpEntry(pte));
            Assert.Equal(name, SwapOps.TypeName(type));
        }
    }

    [Fact]
    public void SwapTypeOccupiesTheTopFiveBitsAndTheOffsetIsInverted()
    {
        var pte = SwapOps.SwpEntryToPte(new SwpEntry(SwapOps.SWP_DEVICE_EXCLUSIVE, 0));
        Assert.Equal((ulong)SwapOps.SWP_DEVICE_EXCLUSIVE, pte.Val >> 59);
        // Offset 0 stored inverted fills bits 9..58.
        Assert.Equal(((1UL << 50) - 1) << 9, pte.Val & (((1UL << 50) - 1) << 9));
        Assert.Equal(24u, SwapOps.MAX_SWAPFILES);
        Assert.Equal(31u, SwapOps.SWP_PTE_MARKER);
    }

    [Fact]
    public void SwapEntryFlagsUseRwUserAndPwt()
    {
        var pte = SwapOps.SwpEntryToPte(SwapOps.MakeReadableMigrationEntry(0x55));
        var withAll = SwapOps.PteSwpMkexclusive(SwapOps.PteSwpMkuffdWp(SwapOps.PteSwpMksoftDirty(pte)));
        Assert.Equal(pte.Val | _PAGE_RW | _PAGE_USER | _PAGE_PWT, withAll.Val);
        Assert.True(SwapOps.PteSwpExclusive(withAll));
        Assert.True(SwapOps.PteSwpUffdWp(withAll));
        Assert.True(SwapOps.PteSwpSoftDirty(withAll));
        Assert.Equal(SwapOps.PteToSwpEntry(pte), SwapOps.PteToSwpEntry(withAll));
    }

    [Fact]
    public void MigrationEntriesCarryYoungAndDirtyAbovethePfn()
    {
        var e = SwapOps.MakeMigrationEntryDirty(SwapOps.MakeMigrationEntryYoung(SwapOps.MakeWritableMigrationEntry(0x777)));
        var back = SwapOps.PteToSwpEntry(SwapOps.SwpEntryToPte(e));
        Assert.True(SwapOps.IsMigrationEntryYoung(back));
        Assert.True(SwapOps.IsMigrationEntryDirty(back));
        Assert.Equal(0x777UL, SwapOps.SwpOffsetPfn(back));
        Assert.True(SwapOps.IsWritableMigrationEntry(back));
    }

    [Fact]
    public void PteMarkersRoundTripTheirBits()
    {
        foreach (ulong m in new[] { SwapOps.PTE_MARKER_UFFD_WP, SwapOps.PTE_MARKER_POISONED, SwapOps.PTE_MARKER_GUARD })
        {
            var pte = SwapOps.MakePteMarker(m);
            var e = SwapOps.PteToSwpEntry(pte);
            Assert.True(SwapOps.IsPteMarkerEntry(e));
            Assert.Equal(m, SwapOps.PteMarkerGet(e));
        }
        Assert.True(SwapOps.IsGuardPteMarker(SwapOps.MakePteMarker(SwapOps.PTE_MARKER_GUARD)));
    }

    [Fact]
    public void HugeLeavesMovePatToBit12()
    {
        var prot = Pgprot4kToLarge(new PgProt(PAGE_SHARED | _PAGE_PAT));
        Assert.True((prot.Val & _PAGE_PSE) != 0);
        Assert.True((prot.Val & _PAGE_PAT_LARGE) != 0);
        var pmd = PfnPmd(0x200, prot);
        Assert.True(PmdLeaf(pmd));
        Assert.Equal(0x200UL, PmdPfn(pmd));
    }

    [Fact]
    public void UffdWpMarkingWriteProtects()
    {
        var pte = PteMkuffdWp(PfnPte(0x10, new PgProt(PAGE_SHARED)));
        Assert.True(PteUffdWp(pte));
        Assert.False(PteWrite(pte));
    }

    public static TheoryData<uint> AllTypes => new()
    {
        0, 1, SwapOps.MAX_SWAPFILES - 1, SwapOps.SWP_HWPOISON, SwapOps.SWP_MIGRATION_READ,
        SwapOps.SWP_MIGRATION_READ_EXCLUSIVE, SwapOps.SWP_MIGRATION_WRITE, SwapOps.SWP_DEVICE_WRITE,
        SwapOps.SWP_DEVICE_READ, SwapOps.SWP_DEVICE_EXCLUSIVE, SwapOps.SWP_PTE_MARKER,
    };

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void EveryNonPresentTypeCarriesSoftDirtyUffdWpAndExclusiveIndependently(uint type)
    {
        var e = new SwpEntry(type, type == SwapOps.SWP_PTE_MARKER ? SwapOps.PTE_MARKER_GUARD : 0x2345);
        var pte = SwapOps.SwpEntryToPte(e);
        var flags = new (ulong Bit, Func<Pte, Pte> Set, Func<Pte, bool> Test)[]
        {
            (_PAGE_RW, SwapOps.PteSwpMksoftDirty, SwapOps.PteSwpSoftDirty),
            (_PAGE_USER, SwapOps.PteSwpMkuffdWp, SwapOps.PteSwpUffdWp),
            (_PAGE_PWT, SwapOps.PteSwpMkexclusive, SwapOps.PteSwpExclusive),
        };
        foreach (var (bit, set, test) in flags)
        {
            var with = set(pte);
            Assert.Equal(pte.Val | bit, with.Val);
            Assert.True(test(with));
            foreach (var other in flags.Where(f => f.Bit != bit))
            {
                Assert.False(other.Test(with));
            }
            // The flag is no part of the entry, and the entry stays non-present, non-none.
            Assert.Equal(e, SwapOps.PteToSwpEntry(with));
            Assert.True(SwapOps.IsSwapPte(with));
            Assert.False(PgTable.PtePresent(with));
        }
        Assert.Equal(pte, SwapOps.PteSwpClearExclusive(SwapOps.PteSwpMkexclusive(pte)));
        Assert.Equal(pte, SwapOps.PteSwpClearUffdWp(SwapOps.PteSwpMkuffdWp(pte)));
    }

    [Fact]
    public void EachKindOfEntryIsRecognisedByItsOwnPredicateOnly()
    {
        const ulong pfn = 0xabcde;
        var kinds = new (string Name, SwpEntry Entry)[]
        {
            ("swap", new SwpEntry(3, 0x777)),
            ("hwpoison", SwapOps.MakeHwpoisonEntry(pfn)),
            ("migration_read", SwapOps.MakeReadableMigrationEntry(pfn)),
            ("migration_read_exclusive", SwapOps.MakeReadableExclusiveMigrationEntry(pfn)),
            ("migration_write", SwapOps.MakeWritableMigrationEntry(pfn)),
            ("device_private_read", SwapOps.MakeReadableDevicePrivateEntry(pfn)),
            ("device_private_write", SwapOps.MakeWritableDevicePrivateEntry(pfn)),
            ("device_exclusive", SwapOps.MakeDeviceExclusiveEntry(pfn)),
            ("pte_marker", SwapOps.MakePteMarkerEntry(SwapOps.PTE_MARKER_UFFD_WP | SwapOps.PTE_MARKER_GUARD)),
        };
        foreach (var (name, entry) in kinds)
        {
            var back = SwapOps.PteToSwpEntry(SwapOps.SwpEntryToPte(entry));
            Assert.Equal(entry, back);
            Assert.Equal(name, SwapOps.TypeName(back.Type));
            Assert.Equal(name != "swap", SwapOps.NonSwapEntry(back));
            Assert.Equal(name.StartsWith("migration", StringComparison.Ordinal), SwapOps.IsMigrationEntry(back));
            Assert.Equal(name == "migration_write", SwapOps.IsWritableMigrationEntry(back));
            Assert.Equal(name == "migration_read_exclusive", SwapOps.IsReadableExclusiveMigrationEntry(back));
            Assert.Equal(name.StartsWith("device_private", StringComparison.Ordinal), SwapOps.IsDevicePrivateEntry(back));
            Assert.Equal(name == "device_private_write", SwapOps.IsWritableDevicePrivateEntry(back));
            Assert.Equal(name == "device_exclusive", SwapOps.IsDeviceExclusiveEntry(back));
            Assert.Equal(name == "hwpoison", SwapOps.IsHwpoisonEntry(back));
            Assert.Equal(name == "pte_marker", SwapOps.IsPteMarkerEntry(back));
            bool hasPfn = name is not ("swap" or "pte_marker");
            Assert.Equal(hasPfn, SwapOps.IsPfnSwapEntry(back));
            if (hasPfn)
            {
                Assert.Equal(pfn, SwapOps.SwpOffsetPfn(back));
            }
        }
        var marker = SwapOps.PteToSwpEntry(SwapOps.MakePteMarker(SwapOps.PTE_MARKER_UFFD_WP | SwapOps.PTE_MARKER_GUARD));
        Assert.Equal(SwapOps.PTE_MARKER_UFFD_WP | SwapOps.PTE_MARKER_GUARD, SwapOps.PteMarkerGet(marker));
    }

    [Fact]
    public void ASwapEntryHasTheExactX86Layout()
    {
        // pgtable_64.h: type in bits 59-63, the offset inverted in bits 9-58, flags in 1-3, P/A/D/PSE/G clear.
        var pte = SwapOps.SwpEntryToPte(new SwpEntry(2, 0x5));
        ulong expected = (2UL << 59) | ((~0x5UL << 14) >> 5);
        Assert.Equal(expected, pte.Val);
        Assert.Equal(0x10UL << 59 | (((1UL << 50) - 1 - 0x1234) << 9),
            SwapOps.SwpEntryToPte(new SwpEntry(0x10, 0x1234)).Val);
        Assert.Equal(0UL, pte.Val & 0x1FF & ~(_PAGE_RW | _PAGE_USER | _PAGE_PWT | _PAGE_PCD));
    }
}

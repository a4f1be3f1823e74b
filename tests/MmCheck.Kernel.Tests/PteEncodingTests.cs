using Linux;
using static Linux.PgTable;
using static Linux.X86Pte;

namespace MmCheck.Kernel.Tests;

/// <summary>Bit-exact x86-64 encodings: every PTE bit and every non-present entry type.</summary>
public class PteEncodingTests
{
    public static TheoryData<string, ulong, int> Bits => new()
    {
        { "present", _PAGE_PRESENT, 0 },
        { "rw", _PAGE_RW, 1 },
        { "user", _PAGE_USER, 2 },
        { "pwt", _PAGE_PWT, 3 },
        { "pcd", _PAGE_PCD, 4 },
        { "accessed", _PAGE_ACCESSED, 5 },
        { "dirty", _PAGE_DIRTY, 6 },
        { "pse/pat", _PAGE_PSE, 7 },
        { "global", _PAGE_GLOBAL, 8 },
        { "special", _PAGE_SPECIAL, 9 },
        { "uffd-wp", _PAGE_UFFD_WP, 10 },
        { "soft-dirty", _PAGE_SOFT_DIRTY_BIT, 11 },
        { "pat-large", _PAGE_PAT_LARGE, 12 },
        { "saved-dirty", _PAGE_SAVED_DIRTY, 58 },
        { "nx", _PAGE_NX, 63 },
    };

    [Theory]
    [MemberData(nameof(Bits))]
    public void EveryPteBitSitsWhereX86PutsIt(string name, ulong mask, int bit)
    {
        Assert.Equal(1UL << bit, mask);
        Assert.False(string.IsNullOrEmpty(name));
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
}

using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>Pins (FOLL_PIN) against fork and COW, and the pre-5.19 reuse rule as a variant.</summary>
public class PinAndVariantTests
{
    private static ulong PhysRead(Linux.Kernel k, ulong pfn) => k.Mem.Load(pfn << 12, 8);

    [Fact]
    public void ForkCopiesAPinnedExclusivePageForTheChildRightAway()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 0x11);
        var pages = new List<Page>();
        Assert.Equal(1L, p.K.Run(p.T, () => p.K.PinUserPagesFast(a, 1, Foll.FOLL_WRITE | Foll.FOLL_LONGTERM, pages)));
        ulong pinned = pages[0].Pfn;
        Assert.True((p.Mm.Flags & MmStruct.MMF_HAS_PINNED) != 0);
        var c = p.Fork();
        Assert.Equal(pinned, p.Pagemap(a).Pfn);
        Assert.NotEqual(pinned, c.Pagemap(a).Pfn);
        Assert.Equal(0x11UL, c.Read(a));
        // The parent's mapping stayed writable: its write lands in the pinned page.
        long faults = p.K.VmEvent("pgfault");
        p.Write(a, 0x22);
        Assert.Equal(faults, p.K.VmEvent("pgfault"));
        Assert.Equal(0x22UL, PhysRead(p.K, pinned));
        Assert.Equal(0x11UL, c.Read(a));
        p.K.UnpinUserPage(pages[0]);
        p.AssertClean();
    }

    [Fact]
    public void AReadOnlyPinOfASharedPageUnsharesItFirst()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 0x11);
        var c = p.Fork();
        var pages = new List<Page>();
        Assert.Equal(1L, p.K.Run(c.T, () => c.K.PinUserPagesFast(a, 1, Foll.FOLL_LONGTERM, pages)));
        // The child's pin is on a private copy: the parent's page is untouched and exclusive again.
        Assert.NotEqual(p.Pagemap(a).Pfn, pages[0].Pfn);
        Assert.Equal(pages[0].Pfn, c.Pagemap(a).Pfn);
        Assert.True(c.K.PageAnonExclusive(pages[0]));
        p.Write(a, 0x22);
        Assert.Equal(0x11UL, PhysRead(p.K, pages[0].Pfn));
        p.K.UnpinUserPage(pages[0]);
        p.AssertClean();
    }

    [Fact]
    public void AReadOnlyPinSeesLaterWritesOfAPreviouslySharedPage()
    {
        // cow.c "R/O GUP pin on R/O-mapped previously-shared page".
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 0x11);
        p.Fork().Exit();
        var pages = new List<Page>();
        Assert.Equal(1L, p.K.Run(p.T, () => p.K.PinUserPagesFast(a, 1, Foll.FOLL_LONGTERM, pages)));
        p.Write(a, 0x33);
        Assert.Equal(pages[0].Pfn, p.Pagemap(a).Pfn);
        Assert.Equal(0x33UL, PhysRead(p.K, pages[0].Pfn));
        p.K.UnpinUserPage(pages[0]);
        p.AssertClean();
    }

    [Fact]
    public void BeforeAnonExclusiveTheRefcountRuleCopiesAwayFromAReadOnlyPin()
    {
        var p = Proc.Boot(new KernelConfig { Variants = Variants.Preset("v5.10")! });
        Assert.Equal(Variants.WpReuseRule.Refcount, p.K.Variants.DoWpPageReuse);
        ulong a = p.MmapAnon(1);
        p.Write(a, 0x11);
        p.Fork().Exit();
        var pages = new List<Page>();
        Assert.Equal(1L, p.K.Run(p.T, () => p.K.PinUserPagesFast(a, 1, Foll.FOLL_LONGTERM, pages)));
        p.Write(a, 0x33);
        // The write faulted (the PTE was read-only after fork) and, with the pin raising the
        // refcount, copied: the pin is left on the old page and misses the write.
        Assert.NotEqual(pages[0].Pfn, p.Pagemap(a).Pfn);
        Assert.Equal(0x11UL, PhysRead(p.K, pages[0].Pfn));
        Assert.Empty(p.K.Findings);
        p.K.UnpinUserPage(pages[0]);
    }

    [Fact]
    public void BasicCowBehavesTheSameUnderTheRefcountRule()
    {
        var p = Proc.Boot(new KernelConfig { Variants = Variants.Preset("v5.10")! });
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var c = p.Fork();
        p.Write(a, 2);
        Assert.Equal(1UL, c.Read(a));
        c.Write(a, 3);
        Assert.Equal(2UL, p.Read(a));
        Assert.Empty(p.K.Findings);
    }

    [Fact]
    public void EveryVariantValueParsesAndIsDescribedBackAsSpelled()
    {
        // The first value is the baseline's; any other is what a golden and the JSON report show.
        // get_pat_info is only consulted (and described) when remap_pfn_range() uses the VM_PAT path.
        foreach (var info in Variants.All)
        {
            var from = info.Name == "get_pat_info" ? Variants.Current.With("remap_pfn_range.tracking", "vm_pat", out _)! : Variants.Current;
            foreach (var value in info.Values)
            {
                var v = from.With(info.Name, value, out string? error);
                Assert.True(v is not null, error);
                var described = v!.Describe().Where(d => d.StartsWith(info.Name + "=", StringComparison.Ordinal)).ToList();
                Assert.Equal(value == info.Values[0] ? [] : [$"{info.Name}={value}"], described);
            }
        }
    }

    [Fact]
    public void VariantsHaveNamesAndRejectUnknownValues()
    {
        Assert.NotNull(Variants.Current.With("do_wp_page.reuse", "refcount", out _));
        Assert.Null(Variants.Current.With("do_wp_page.reuse", "bogus", out var e1));
        Assert.Contains("anon_exclusive", e1);
        Assert.Null(Variants.Current.With("no.such", "x", out var e2));
        Assert.Contains("unknown variant", e2);
        Assert.Equal(Variants.WpReuseRule.AnonExclusive, Variants.Preset("v6.6")!.DoWpPageReuse);
        Assert.Null(Variants.Preset("six"));
    }

    [Fact]
    public void GupRefusesPfnMapsAndUnforcedWritesToReadOnlyMappings()
    {
        var p = Proc.Boot();
        ulong ro = p.MmapAnon(1, PROT_READ);
        var pages = new List<Page>();
        Assert.Equal(-Errno.EFAULT, p.K.Run(p.T, () => p.K.PinUserPagesFast(ro, 1, Foll.FOLL_WRITE, pages)));
        Assert.Equal(1L, p.K.Run(p.T, () => p.K.GetUserPagesFast(ro, 1, Foll.None, pages)));
        Assert.Equal(p.K.ZeroPfn, pages[0].Pfn);
    }
}

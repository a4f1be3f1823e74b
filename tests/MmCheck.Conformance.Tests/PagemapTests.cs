using Xunit.Abstractions;
using static MmCheck.Conformance.Native.LinuxAbi;
using static MmCheck.Conformance.Tests.TestOracle;

namespace MmCheck.Conformance.Tests;

public sealed class PagemapTests(ITestOutputHelper output)
{
    [Fact]
    public void Untouched_private_anonymous_page_is_not_present()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var a = o.MapAnon(0, 4);
        for (ulong i = 0; i < 4; i++)
        {
            var e = o.Pagemap(0, a + i * P);
            Assert.False(e.Present);
            Assert.False(e.Exclusive);
            Assert.Equal(0UL, e.Pfn);
        }
        var smaps = o.Smaps(0, a);
        Assert.NotNull(smaps);
        Assert.Equal(0, smaps.RssKb);
    }

    [Fact]
    public void Read_fault_of_private_anonymous_memory_maps_the_shared_zero_page()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var a = o.MapAnon(0, 4);
        Assert.Equal(0UL, o.MustLoad(0, a));
        Assert.Equal(0UL, o.MustLoad(0, a + 2 * P + 100, 4));

        var e0 = o.Pagemap(0, a);
        var e2 = o.Pagemap(0, a + 2 * P);
        Assert.True(e0.Present);
        Assert.False(e0.Exclusive);             // no struct page is mapped exclusively: it is the zero page
        Assert.False(e0.FileOrSharedAnon);
        Assert.NotEqual(0UL, e0.Pfn);
        Assert.Equal(e0.Pfn, e2.Pfn);           // both map the one zero page
        Assert.True(HasKpf(o.KpageFlags(e0.Pfn), KPF_ZERO_PAGE));
        Assert.False(o.Pagemap(0, a + P).Present);   // anonymous memory has no fault-around
    }

    [Fact]
    public void Write_fault_maps_an_exclusive_anonymous_page_that_is_not_the_zero_page()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var a = o.MapAnon(0, 2);
        o.MustLoad(0, a + P);
        var zero = o.Pagemap(0, a + P).Pfn;

        o.MustStore(0, a, 0x1234);
        var e = o.Pagemap(0, a);
        Assert.True(e.Present);
        Assert.True(e.Exclusive);
        Assert.False(e.FileOrSharedAnon);
        Assert.NotEqual(zero, e.Pfn);
        var flags = o.KpageFlags(e.Pfn);
        Assert.True(HasKpf(flags, KPF_ANON));
        Assert.False(HasKpf(flags, KPF_ZERO_PAGE));
        Assert.Equal(1UL, o.KpageCount(e.Pfn));

        // A write to the zero-page-mapped page replaces it by a fresh exclusive page.
        o.MustStore(0, a + P, 1);
        var e1 = o.Pagemap(0, a + P);
        Assert.True(e1.Exclusive);
        Assert.NotEqual(zero, e1.Pfn);
        Assert.NotEqual(e.Pfn, e1.Pfn);
        Assert.Equal(8, o.Smaps(0, a)!.AnonymousKb);
    }
}

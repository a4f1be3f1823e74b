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

    [Fact]
    public void A_page_faulted_in_just_before_munmap_outlives_it_unmapped_and_counts_as_freed()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        // mm/vma.c:unmap_region() leaves this CPU's LRU-add batch alone, so a freshly faulted page
        // usually outlives munmap() there: anonymous, mapped nowhere. Sometimes the batch was
        // drained meanwhile and the page is already free; try until the first case shows.
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var a = o.MapAnon(0, 1);
            o.MustStore(0, a, 0x5a);
            var pfn = o.Pagemap(0, a).Pfn;
            Assert.False(NativeSide.LooksFreed(o.KpageFlags(pfn)));
            Assert.Equal(0, o.Munmap(0, a, P));
            var flags = o.KpageFlags(pfn);
            if (HasKpf(flags, KPF_ANON) && !HasKpf(flags, KPF_MMAP))
            {
                output.WriteLine($"attempt {attempt}: kpageflags after munmap 0x{flags:x}");
                Assert.True(NativeSide.LooksFreed(flags));
                return;
            }
        }
        Assert.Fail("in 20 attempts no page outlived munmap() in an LRU-add batch: does unmap_region() drain it again?");
    }

    [Theory]
    [InlineData(0UL, true)]                                                  // on a per-CPU free list
    [InlineData(1UL << KPF_BUDDY, true)]
    [InlineData(0x400005008UL, true)]                                        // anon, swap-backed, uptodate, mapped nowhere
    [InlineData(0x400005808UL, false)]                                       // the same page mapped
    [InlineData(0x400007008UL, false)]                                       // in the swap cache: a fault can map it again
    [InlineData(0x400205008UL, false)]                                       // KSM: merging can map it again
    [InlineData((1UL << KPF_UPTODATE) | (1UL << KPF_LRU), false)]            // unmapped page cache
    [InlineData(1UL << KPF_SLAB, false)]
    public void Which_kpageflags_count_as_freed(ulong flags, bool freed) =>
        Assert.Equal(freed, NativeSide.LooksFreed(flags));
}

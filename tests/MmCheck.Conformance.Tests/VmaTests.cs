using Xunit.Abstractions;
using static MmCheck.Conformance.Native.LinuxAbi;
using static MmCheck.Conformance.Tests.TestOracle;

namespace MmCheck.Conformance.Tests;

public sealed class VmaTests(ITestOutputHelper output)
{
    [Fact]
    public void Munmap_in_the_middle_of_a_three_page_mapping_leaves_two_vmas()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var a = o.MapAnon(0, 3);
        var whole = o.Smaps(0, a);
        Assert.NotNull(whole);
        Assert.Equal((a, a + 3 * P), (whole.Start, whole.End));
        Assert.True(whole.HasVmFlag("rd") && whole.HasVmFlag("wr"));

        Assert.Equal(0, o.Munmap(0, a + P, P));
        var low = o.Smaps(0, a);
        var high = o.Smaps(0, a + 2 * P);
        Assert.NotNull(low);
        Assert.NotNull(high);
        Assert.Equal((a, a + P), (low.Start, low.End));
        Assert.Equal((a + 2 * P, a + 3 * P), (high.Start, high.End));
        Assert.Null(o.Smaps(0, a + P));
        Assert.Equal(SIGSEGV, o.Load(0, a + P, 1).Signal);
    }

    [Fact]
    public void Munmap_with_an_unaligned_address_is_EINVAL()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var a = o.MapAnon(0, 2);
        Assert.Equal(-EINVAL, o.Munmap(0, a + 1, P));
        Assert.Equal(-EINVAL, o.Munmap(0, a, 0));
        Assert.Equal(0, o.Munmap(0, a, P + 1));          // the length is rounded up
        Assert.Null(o.Smaps(0, a + P));
    }

    [Fact]
    public void Mremap_with_MAYMOVE_grows_a_mapping_boxed_in_by_vvar_by_moving_it_with_its_contents()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var top = o.Layout(0).MmapTop;
        var a = o.MapAnon(0, 2);
        Assert.Equal(top - 2 * P, a);                   // [vvar] is directly above: no room to grow
        o.MustStore(0, a + P, 0x77);

        Assert.Equal(-ENOMEM, o.Mremap(0, a, 2 * P, 4 * P, 0));
        var b = (ulong)o.Mremap(0, a, 2 * P, 4 * P, MREMAP_MAYMOVE);
        Assert.NotEqual(a, b);
        Assert.Equal(0UL, b % P);
        Assert.Equal(a - 4 * P, b);                     // top-down: the highest free fit, just below the old one
        Assert.Equal(0x77UL, o.MustLoad(0, b + P));
        Assert.Equal(0UL, o.MustLoad(0, b + 3 * P));
        Assert.Equal(SIGSEGV, o.Load(0, a, 8).Signal); // the old range is gone
        Assert.Equal((b, b + 4 * P), (o.Smaps(0, b)!.Start, o.Smaps(0, b)!.End));
    }

    [Fact]
    public void Mremap_grows_in_place_when_the_range_above_is_free()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var a = o.MapAnon(0, 4);
        Assert.Equal(0, o.Munmap(0, a + 2 * P, 2 * P));
        o.MustStore(0, a, 9);
        Assert.Equal((long)a, o.Mremap(0, a, 2 * P, 4 * P, 0));
        Assert.Equal(9UL, o.MustLoad(0, a));
        Assert.Equal(a + 4 * P, o.Smaps(0, a)!.End);
    }

    [Fact]
    public void Madvise_DONTNEED_on_private_anonymous_memory_drops_the_page_and_it_reads_as_zero()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var a = o.MapAnon(0, 2);
        o.MustStore(0, a, 0xfeed);
        o.MustStore(0, a + P, 0xbeef);
        Assert.True(o.Pagemap(0, a).Present);

        Assert.Equal(0, o.Madvise(0, a, P, MADV_DONTNEED));
        Assert.False(o.Pagemap(0, a).Present);
        Assert.Equal(0xbeefUL, o.MustLoad(0, a + P));   // the other page is untouched
        Assert.Equal(0UL, o.MustLoad(0, a));
        Assert.Equal(4, o.Smaps(0, a)!.AnonymousKb);
    }
}

using Xunit.Abstractions;
using static MmCheck.Conformance.Tests.TestOracle;

namespace MmCheck.Conformance.Tests;

public sealed class ForkTests(ITestOutputHelper output)
{
    [Fact]
    public void Forked_child_shares_the_frame_until_it_writes_then_the_parent_page_is_exclusive_again()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var a = o.MapAnon(0, 1);
        o.MustStore(0, a, 0xabcdef);
        var before = o.Pagemap(0, a);
        Assert.True(before.Exclusive);

        Assert.Equal(1, o.Fork(0, 1));
        Assert.NotEqual(o.Pid(0), o.Pid(1));
        Assert.Equal(0xabcdefUL, o.MustLoad(1, a));     // the child reads the parent's value

        var parent = o.Pagemap(0, a);
        var child = o.Pagemap(1, a);
        Assert.Equal(before.Pfn, parent.Pfn);
        Assert.Equal(parent.Pfn, child.Pfn);
        Assert.False(parent.Exclusive);
        Assert.False(child.Exclusive);
        Assert.Equal(2UL, o.KpageCount(parent.Pfn));

        o.MustStore(1, a, 0x55);                        // COW in the child
        parent = o.Pagemap(0, a);
        child = o.Pagemap(1, a);
        Assert.Equal(before.Pfn, parent.Pfn);
        Assert.NotEqual(parent.Pfn, child.Pfn);
        Assert.True(parent.Exclusive);
        Assert.True(child.Exclusive);
        Assert.Equal(1UL, o.KpageCount(parent.Pfn));
        Assert.Equal(1UL, o.KpageCount(child.Pfn));
        Assert.Equal(0xabcdefUL, o.MustLoad(0, a));
        Assert.Equal(0x55UL, o.MustLoad(1, a));
    }

    [Fact]
    public void Exit_of_the_child_drops_the_shared_mapcount_back_to_one()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var a = o.MapAnon(0, 1);
        o.MustStore(0, a, 3);
        var pfn = o.Pagemap(0, a).Pfn;
        Assert.Equal(1, o.Fork(0, 1));
        Assert.Equal(2UL, o.KpageCount(pfn));
        o.Exit(1);
        Assert.Equal(1UL, o.KpageCount(pfn));
        Assert.Equal(3UL, o.MustLoad(0, a));
        Assert.Equal(2, o.Fork(0, 2));                  // ids are reusable; a grandchild works too
        Assert.Equal(3, o.Fork(2, 3));
        Assert.Equal(3UL, o.MustLoad(3, a));
        Assert.Equal(3UL, o.KpageCount(pfn));
    }
}

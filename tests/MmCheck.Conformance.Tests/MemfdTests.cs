using Xunit.Abstractions;
using static MmCheck.Conformance.Native.LinuxAbi;
using static MmCheck.Conformance.Tests.TestOracle;

namespace MmCheck.Conformance.Tests;

public sealed class MemfdTests(ITestOutputHelper output)
{
    [Fact]
    public void Memfd_mapped_shared_in_two_processes_shares_the_frame()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var fd = (int)o.MemfdCreate(0, "shared", 0);
        Assert.Equal(3, fd);                                 // subjects start with only 0, 1, 2 below 100
        Assert.Equal(0, o.Ftruncate(0, fd, (long)(2 * P)));
        Assert.Equal(1, o.Fork(0, 1));                        // the child inherits the fd

        var a0 = (ulong)o.Mmap(0, 0, 2 * P, RW, MAP_SHARED, fd, 0);
        var a1 = (ulong)o.Mmap(1, 0, 2 * P, RW, MAP_SHARED, fd, 0);
        o.MustStore(0, a0 + 8, 0xc0ffee);
        Assert.Equal(0xc0ffeeUL, o.MustLoad(1, a1 + 8));
        o.MustStore(1, a1 + 16, 0x1);
        Assert.Equal(0x1UL, o.MustLoad(0, a0 + 16));

        var e0 = o.Pagemap(0, a0);
        var e1 = o.Pagemap(1, a1);
        Assert.True(e0.Present && e1.Present);
        Assert.True(e0.FileOrSharedAnon && e1.FileOrSharedAnon);
        Assert.Equal(e0.Pfn, e1.Pfn);
        Assert.False(e0.Exclusive);
        Assert.Equal(2UL, o.KpageCount(e0.Pfn));
        Assert.False(HasKpf(o.KpageFlags(e0.Pfn), KPF_ANON));
        Assert.True(o.Smaps(0, a0)!.HasVmFlag("sh"));
    }

    [Fact]
    public void Access_beyond_EOF_of_a_memfd_mapping_gives_SIGBUS_until_the_file_grows()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var fd = (int)o.MemfdCreate(0, "short", MFD_CLOEXEC);
        Assert.Equal(0, o.Ftruncate(0, fd, (long)P));
        var a = (ulong)o.Mmap(0, 0, 2 * P, RW, MAP_SHARED, fd, 0);
        o.MustStore(0, a, 1);

        var r = o.Load(0, a + P, 4);
        Assert.Equal(SIGBUS, r.Signal);
        Assert.Equal(BUS_ADRERR, r.SignalCode);
        Assert.Equal(SIGBUS, o.Store(0, a + P + 8, 8, 1).Signal);
        Assert.Equal(1UL, o.MustLoad(0, a));

        Assert.Equal(0, o.Ftruncate(0, fd, (long)(2 * P)));
        Assert.Equal(0UL, o.MustLoad(0, a + P));
        Assert.Equal(0, o.Close(0, fd));                 // the mapping keeps the file
        Assert.Equal(1UL, o.MustLoad(0, a));
        Assert.Equal(-EBADF, o.Close(0, fd));
    }

    [Fact]
    public void Read_fault_on_a_shared_memfd_mapping_also_maps_neighbouring_cached_pages()
    {
        using var o = Start(output, needPfns: true);
        if (o is null)
            return;
        var fd = (int)o.MemfdCreate(0, "around", 0);
        Assert.Equal(0, o.Ftruncate(0, fd, (long)(8 * P)));
        var writer = (ulong)o.Mmap(0, 0, 8 * P, RW, MAP_SHARED, fd, 0);
        for (ulong i = 0; i < 4; i++)
            o.MustStore(0, writer + i * P, i + 1);         // pages 0-3 are in the page cache, 4-7 are not

        var reader = (ulong)o.Mmap(0, 0, 8 * P, PROT_READ, MAP_SHARED, fd, 0);
        Assert.Equal(1UL, o.MustLoad(0, reader));
        for (ulong i = 0; i < 4; i++)
        {
            var e = o.Pagemap(0, reader + i * P);
            Assert.True(e.Present, $"page {i} should be mapped by fault-around");
            Assert.Equal(o.Pagemap(0, writer + i * P).Pfn, e.Pfn);
        }
        for (ulong i = 4; i < 8; i++)
            Assert.False(o.Pagemap(0, reader + i * P).Present);  // nothing cached: nothing mapped
    }
}

using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>memfd_create, ftruncate and shared/private file mappings over the shmem page cache.</summary>
public class ShmemTests
{
    private const int RW = PROT_READ | PROT_WRITE;

    [Fact]
    public void MemfdIsAFreshUnlinkedFileOfSizeZero()
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("buf");
        Assert.Equal(0L, fd);
        long a = p.Mmap(0, 4096, RW, MAP_SHARED, fd);
        Assert.Equal(SIGBUS, p.Load((ulong)a).Signal);
        Assert.Contains("/memfd:buf (deleted)", p.K.ProcMaps(p.Mm));
    }

    [Fact]
    public void MemfdNameLimitAndFlags()
    {
        var p = Proc.Boot();
        Assert.Equal(-Errno.EINVAL, p.MemfdCreate(new string('n', 250)));
        Assert.True(p.MemfdCreate(new string('n', 249)) >= 0);
        Assert.Equal(-Errno.EINVAL, p.MemfdCreate("x", 0x100));
        Assert.Equal(-Errno.EINVAL, p.MemfdCreate("x", MFD_EXEC | MFD_NOEXEC_SEAL));
    }

    [Fact]
    public void SharedFileMappingsShareThePageAcrossProcesses()
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("s");
        Assert.Equal(0L, p.Ftruncate(fd, 8192));
        long a = p.Mmap(0, 8192, RW, MAP_SHARED, fd);
        p.Write((ulong)a, 0x99);
        var c = p.Fork();
        Assert.Equal(0x99UL, c.Read((ulong)a));
        c.Write((ulong)a + 4096, 0x42);
        Assert.Equal(0x42UL, p.Read((ulong)a + 4096));
        Assert.Equal(p.Pagemap((ulong)a).Pfn, c.Pagemap((ulong)a).Pfn);
        Assert.True(p.Pagemap((ulong)a).File);
        p.AssertClean();
    }

    [Fact]
    public void PrivateFileMappingCopiesOnWrite()
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("p");
        p.Ftruncate(fd, 4096);
        long shared = p.Mmap(0, 4096, RW, MAP_SHARED, fd);
        p.Write((ulong)shared, 0x10);
        long priv = p.Mmap(0, 4096, RW, MAP_PRIVATE, fd);
        Assert.Equal(0x10UL, p.Read((ulong)priv));
        Assert.Equal(p.Pagemap((ulong)shared).Pfn, p.Pagemap((ulong)priv).Pfn);
        p.Write((ulong)priv, 0x20);
        Assert.Equal(0x10UL, p.Read((ulong)shared));
        Assert.NotEqual(p.Pagemap((ulong)shared).Pfn, p.Pagemap((ulong)priv).Pfn);
        Assert.False(p.Pagemap((ulong)priv).File);
        p.AssertClean();
    }

    [Fact]
    public void ReadFaultMapsNeighbouringCachedPagesByFaultAround()
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("fa");
        p.Ftruncate(fd, 16 * 4096);
        long w = p.Mmap(0, 16 * 4096, RW, MAP_SHARED, fd);
        for (ulong i = 0; i < 16; i++)
        {
            p.Write((ulong)w + i * 4096, i);
        }
        long r = p.Mmap(0, 16 * 4096, PROT_READ, MAP_SHARED, fd);
        ulong fault = (ulong)r + 5 * 4096;
        Assert.Equal(5UL, p.Read(fault));
        // fault_around_bytes is 64 KiB: the 64 KiB-aligned window around the fault, clipped to
        // the VMA, is mapped by the one fault; nothing outside it.
        ulong winStart = Math.Max(fault & ~0xFFFFUL, (ulong)r);
        ulong winEnd = Math.Min((fault & ~0xFFFFUL) + 0x10000, (ulong)r + 16 * 4096);
        for (ulong i = 0; i < 16; i++)
        {
            ulong va = (ulong)r + i * 4096;
            Assert.Equal(va >= winStart && va < winEnd, p.Pagemap(va).Present);
        }
        p.AssertClean();
    }

    [Fact]
    public void TruncateUnmapsTheCutPagesAndZeroesThePartialTail()
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("t");
        p.Ftruncate(fd, 2 * 4096);
        long a = p.Mmap(0, 2 * 4096, RW, MAP_SHARED, fd);
        p.Write((ulong)a + 8, 0x1111);
        p.Write((ulong)a + 4096, 0x2222);
        Assert.Equal(0L, p.Ftruncate(fd, 4));
        Assert.Equal(SIGBUS, p.Load((ulong)a + 4096).Signal);
        Assert.Equal(0UL, p.Read((ulong)a + 8));
        Assert.Equal(0L, p.Ftruncate(fd, 2 * 4096));
        Assert.Equal(0UL, p.Read((ulong)a + 4096));
        p.AssertClean();
    }

    [Fact]
    public void FtruncateErrnos()
    {
        var p = Proc.Boot();
        Assert.Equal(-Errno.EBADF, p.Ftruncate(9, 10));
        long fd = p.MemfdCreate("e");
        Assert.Equal(-Errno.EINVAL, p.Ftruncate(fd, -1));
    }

    [Fact]
    public void SharedAnonymousMappingShowsAsDevZeroDeleted()
    {
        var p = Proc.Boot();
        p.MmapAnon(1, flags: MAP_SHARED | MAP_ANONYMOUS);
        Assert.Contains("/dev/zero (deleted)", p.K.ProcMaps(p.Mm));
    }

    [Fact]
    public void ThePageCacheIsFreedWhenTheLastMappingAndFileGo()
    {
        var p = Proc.Boot();
        long used = p.K.Buddy.UsedPages;
        long fd = p.MemfdCreate("gone");
        p.Ftruncate(fd, 4 * 4096);
        long a = p.Mmap(0, 4 * 4096, RW, MAP_SHARED, fd);
        for (ulong i = 0; i < 4; i++)
        {
            p.Write((ulong)a + i * 4096, i + 1);
        }
        Assert.Equal(0L, p.K.Run(p.T, () => p.K.SysClose(fd)));
        Assert.Equal(2UL, p.Read((ulong)a + 4096));
        Assert.Equal(0L, p.Munmap((ulong)a, 4 * 4096));
        Assert.Equal(used, p.K.Buddy.UsedPages);
    }
}

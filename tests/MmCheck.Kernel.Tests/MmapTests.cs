using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>mmap, munmap and mprotect: placement, errno paths, splitting and merging.</summary>
public class MmapTests
{
    private const int RW = PROT_READ | PROT_WRITE;
    private const int PA = MAP_PRIVATE | MAP_ANONYMOUS;

    [Fact]
    public void FirstMappingSitsDirectlyBelowMmapBaseAndTheNextBelowIt()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        Assert.Equal(p.Mm.MmapBase - 4 * 4096, a);
        long b = p.Mmap(0, 4096, PROT_READ, PA);
        Assert.Equal((long)a - 4096, b);
    }

    [Fact]
    public void MmapBaseLeavesTheStackGapBelowTaskSize()
    {
        var p = Proc.Boot();
        // 8 MiB stack limit + 1 MiB guard is below the 128 MiB minimum gap.
        Assert.Equal(p.K.Paging.TaskSize - (128UL << 20), p.Mm.MmapBase);
    }

    [Fact]
    public void AdjacentCompatibleAnonymousMappingsMerge()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        ulong b = p.MmapAnon(2);
        Assert.Equal(a - 2 * 4096, b);
        Assert.Single(p.Vmas);
        Assert.Equal(b, p.Vmas[0].VmStart);
        Assert.Equal(a + 2 * 4096, p.Vmas[0].VmEnd);
    }

    [Fact]
    public void MappingsWithDifferentProtectionDoNotMerge()
    {
        var p = Proc.Boot();
        p.MmapAnon(2);
        p.MmapAnon(2, PROT_READ);
        Assert.Equal(2, p.Vmas.Count);
    }

    [Fact]
    public void LargeAnonymousMappingsAreAlignedToThePmdSize()
    {
        var p = Proc.Boot();
        p.MmapAnon(1);
        long a = p.Mmap(0, 2UL << 20, RW, PA);
        Assert.Equal(0L, a & ((2L << 20) - 1));
    }

    [Theory]
    [InlineData(0UL, 0UL, RW, PA, -Errno.EINVAL)]
    [InlineData(0UL, 4096UL, RW, MAP_ANONYMOUS, -Errno.EINVAL)]
    [InlineData(0x12345UL, 4096UL, RW, PA | MAP_FIXED, -Errno.EINVAL)]
    [InlineData(0UL, ulong.MaxValue - 100, RW, PA, -Errno.ENOMEM)]
    [InlineData(0UL, 1UL << 48, RW, PA, -Errno.ENOMEM)]
    public void InvalidMmapArgumentsFailWithTheKernelsErrno(ulong addr, ulong len, int prot, int flags, long expected)
    {
        var p = Proc.Boot();
        Assert.Equal(expected, p.Mmap(addr, len, prot, flags));
        Assert.Empty(p.Vmas);
    }

    [Fact]
    public void UnalignedOffsetIsInvalid()
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("x");
        Assert.Equal(-Errno.EINVAL, p.Mmap(0, 4096, RW, MAP_SHARED, fd, 100));
    }

    [Fact]
    public void MappingABadFileDescriptorIsEbadf()
    {
        var p = Proc.Boot();
        Assert.Equal(-Errno.EBADF, p.Mmap(0, 4096, RW, MAP_SHARED, 42, 0));
    }

    [Fact]
    public void FixedNoreplaceOverAnExistingMappingIsEexist()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        Assert.Equal(-Errno.EEXIST, p.Mmap(a + 4096, 4096, RW, PA | MAP_FIXED_NOREPLACE));
        Assert.Equal((long)a - 4096 * 8, p.Mmap(a - 4096 * 8, 4096, RW, PA | MAP_FIXED_NOREPLACE));
    }

    [Fact]
    public void MapFixedReplacesWhatWasThereAndDropsItsContents()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(3);
        p.Write(a + 4096, 0x77);
        Assert.Equal((long)(a + 4096), p.Mmap(a + 4096, 4096, PROT_READ, PA | MAP_FIXED));
        Assert.Equal(0UL, p.Read(a + 4096));
        Assert.Equal(3, p.Vmas.Count);
        Assert.Equal(SIGSEGV, p.Store(a + 4096, 1).Signal);
        p.AssertClean();
    }

    [Fact]
    public void AHintIsHonouredWhenFree()
    {
        var p = Proc.Boot();
        ulong hint = 0x10000000;
        Assert.Equal((long)hint, p.Mmap(hint, 4096, RW, PA));
    }

    [Fact]
    public void AHintInsideThePageBelowMmapMinAddrIsNoHint()
    {
        // round_hint_to_min() masks the hint to a page first: 1 becomes 0, i.e. no hint.
        var p = Proc.Boot();
        Assert.Equal((long)(p.Mm.MmapBase - 4096), p.Mmap(1, 4096, RW, PA));
        var q = Proc.Boot(new KernelConfig { MmapMinAddr = 65536 });
        Assert.Equal(65536L, q.Mmap(8192, 4096, RW, PA));
    }

    [Fact]
    public void MunmapInTheMiddleSplitsTheMapping()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(3);
        for (ulong i = 0; i < 3; i++)
        {
            p.Write(a + i * 4096, i + 1);
        }
        Assert.Equal(0L, p.Munmap(a + 4096, 4096));
        Assert.Equal(2, p.Vmas.Count);
        Assert.Equal(SIGSEGV, p.Load(a + 4096).Signal);
        Assert.Equal(1UL, p.Read(a));
        Assert.Equal(3UL, p.Read(a + 8192));
        Assert.Equal(4096UL, p.K.Smaps(p.Vmas[0]).Rss);
        p.AssertClean();
    }

    [Theory]
    [InlineData(1UL, 4096UL, -Errno.EINVAL)]
    [InlineData(0x10000UL, 0UL, -Errno.EINVAL)]
    [InlineData(0x7ffffffff000UL, 0x2000UL, -Errno.EINVAL)]
    public void MunmapRejectsBadRanges(ulong addr, ulong len, long expected)
    {
        var p = Proc.Boot();
        Assert.Equal(expected, p.Munmap(addr, len));
    }

    [Fact]
    public void MunmapOfAnUnmappedRangeSucceeds()
    {
        var p = Proc.Boot();
        Assert.Equal(0L, p.Munmap(0x10000000, 4096));
    }

    [Fact]
    public void MunmapFreesThePagesAndTheirTables()
    {
        var p = Proc.Boot();
        long used = p.K.Buddy.UsedPages;
        ulong a = p.MmapAnon(8);
        for (ulong i = 0; i < 8; i++)
        {
            p.Write(a + i * 4096, i);
        }
        Assert.True(p.K.Buddy.UsedPages >= used + 8);
        Assert.Equal(0L, p.Munmap(a, 8 * 4096));
        Assert.Equal(used, p.K.Buddy.UsedPages);
        p.AssertClean();
    }

    [Fact]
    public void MprotectInTheMiddleSplitsIntoThree()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(3);
        Assert.Equal(0L, p.Mprotect(a + 4096, 4096, PROT_READ));
        Assert.Equal(3, p.Vmas.Count);
        Assert.Equal(SIGSEGV, p.Store(a + 4096, 1).Signal);
        p.Write(a, 1);
        Assert.Equal(0L, p.Mprotect(a + 4096, 4096, RW));
        Assert.Single(p.Vmas);
        p.AssertClean();
    }

    [Fact]
    public void MprotectOverAHoleFailsWithEnomemAfterChangingWhatWasMapped()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(3);
        Assert.Equal(0L, p.Munmap(a + 4096, 4096));
        Assert.Equal(-Errno.ENOMEM, p.Mprotect(a, 3 * 4096, PROT_READ));
        Assert.Equal(VmFlags.VM_READ, p.Vmas[0].VmFlags & VmFlags.VM_ACCESS_FLAGS);
    }

    [Theory]
    [InlineData(1UL, -Errno.EINVAL)]
    public void MprotectRejectsUnalignedStarts(ulong offset, long expected)
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        Assert.Equal(expected, p.Mprotect(a + offset, 4096, PROT_READ));
    }

    [Fact]
    public void MprotectWithUnknownBitsIsEinval()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        Assert.Equal(-Errno.EINVAL, p.Mprotect(a, 4096, 0x40));
    }

    [Fact]
    public void ProtNoneFaultsOnReadAndWrite()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1, PROT_NONE);
        Assert.Equal(SIGSEGV, p.Load(a).Signal);
        Assert.Equal(SIGSEGV, p.Store(a, 1).Signal);
        Assert.Equal(0L, p.Mprotect(a, 4096, PROT_READ));
        Assert.Equal(0UL, p.Read(a));
    }

    [Fact]
    public void PopulateFaultsInEveryPageOfAWritablePrivateMapping()
    {
        var p = Proc.Boot();
        long a = p.Mmap(0, 4 * 4096, RW, PA | MAP_POPULATE);
        for (ulong i = 0; i < 4; i++)
        {
            var e = p.Pagemap((ulong)a + i * 4096);
            Assert.True(e.Present);
            Assert.NotEqual(p.K.ZeroPfn, e.Pfn);
        }
        Assert.Equal(4 * 4096UL, p.K.Smaps(p.Vmas[0]).Anonymous);
    }

    [Fact]
    public void PopulateOfAReadOnlyPrivateMappingUsesTheZeroPage()
    {
        var p = Proc.Boot();
        long a = p.Mmap(0, 2 * 4096, PROT_READ, PA | MAP_POPULATE);
        Assert.Equal(p.K.ZeroPfn, p.Pagemap((ulong)a).Pfn);
        Assert.Equal(0UL, p.K.Smaps(p.Vmas[0]).Rss);
    }

    [Fact]
    public void UnalignedAndPageCrossingAccessesWork()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        p.Write(a + 4093, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, p.Read(a + 4093));
        Assert.Equal(0x88UL, p.Read(a + 4093, 1));
        Assert.Equal(0x5566UL, p.Read(a + 4096 - 1, 2));
        Assert.Equal(0x11223344UL, p.Read(a + 4097, 4));
        p.Write(a + 3, 0xabcd, 2);
        Assert.Equal(0xabcdUL, p.Read(a + 3, 2));
    }

    [Fact]
    public void AnAccessStraddlingIntoAnUnmappedPageFaultsWithoutPartialEffect()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        Assert.Equal(0L, p.Munmap(a + 4096, 4096));
        Assert.Equal(SIGSEGV, p.Store(a + 4092, ulong.MaxValue).Signal);
        Assert.Equal(0UL, p.Read(a + 4088));
    }
}

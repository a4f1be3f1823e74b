using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>madvise(2): every advice the model implements, the range walk, and the errno rules.</summary>
public class MadviseTests
{
    private const ulong P = 4096;
    private const int RW = PROT_READ | PROT_WRITE;
    private const int PA = MAP_PRIVATE | MAP_ANONYMOUS;

    private static long Madvise(Proc p, ulong addr, ulong len, int advice)
    {
        long r = p.Madvise(addr, len, advice);
        p.AssertClean();
        return r;
    }

    private static VmAreaStruct Vma(Proc p, ulong addr) => p.K.VmaAt(p.Mm, addr)!;

    private static SmapsInfo Smaps(Proc p, ulong addr) => p.K.Smaps(Vma(p, addr));

    private static (Proc P, long Fd) WithMemfd(ulong pages)
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("m");
        Assert.Equal(0, p.Ftruncate(fd, (long)(pages * P)));
        return (p, fd);
    }

    [Theory]
    [InlineData(0UL, 1UL, 9999, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, -1, -Errno.EINVAL)]
    [InlineData(1UL, 1UL, MADV_NORMAL, -Errno.EINVAL)]
    [InlineData(1UL, 0UL, MADV_NORMAL, -Errno.EINVAL)]
    [InlineData(0UL, 0UL, MADV_DONTNEED, 0)]
    [InlineData(0UL, ulong.MaxValue, MADV_NORMAL, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, MADV_HWPOISON, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, MADV_SOFT_OFFLINE, -Errno.EINVAL)]
    public void MadviseInvalidRequestsFailWithTheKernelsErrno(ulong startOff, ulong len, int advice, long expected)
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        Assert.Equal(expected, Madvise(p, a + startOff, len, advice));
    }

    [Fact]
    public void MadviseLengthIsRoundedUpToPages()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 1);
        Assert.Equal(0, Madvise(p, a, P + 1, MADV_DONTNEED));
        Assert.Equal(0UL, p.Read(a + P));
        Assert.Equal(3UL, p.Read(a + (2 * P)));
    }

    [Fact]
    public void MadviseDontneedPrivateAnonReadsZero()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x10);
        Assert.Equal(0, Madvise(p, a + P, 2 * P, MADV_DONTNEED));
        Assert.False(p.Pagemap(a + P).Present);
        Assert.Equal(2UL * 4096, Smaps(p, a).Rss);
        Assert.Equal(0UL, p.Read(a + P));
        Assert.Equal(0x10UL, p.Read(a));
        Assert.Equal(0x13UL, p.Read(a + (3 * P)));
        Assert.Equal(2, p.Mm.GetMmCounter(MmCounter.MM_ANONPAGES));
        p.AssertClean();
    }

    [Fact]
    public void MadviseDontneedOfASharedMappingRereadsThePageCache()
    {
        var (p, fd) = WithMemfd(2);
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED, fd);
        p.Write((ulong)s, 0x42);
        Assert.Equal(0, Madvise(p, (ulong)s, 2 * P, MADV_DONTNEED));
        Assert.False(p.Pagemap((ulong)s).Present);
        Assert.Equal(0x42UL, p.Read((ulong)s));
        p.AssertClean();
    }

    [Fact]
    public void MadviseDontneedOfAPrivateFileMappingDropsTheCowCopy()
    {
        var (p, fd) = WithMemfd(2);
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED, fd);
        p.Write((ulong)s, 0x1);
        long pr = p.Mmap(0, 2 * P, RW, MAP_PRIVATE, fd);
        p.Write((ulong)pr, 0x2);
        Assert.Equal(0, Madvise(p, (ulong)pr, P, MADV_DONTNEED));
        Assert.Equal(0x1UL, p.Read((ulong)pr));
        p.AssertClean();
    }

    [Fact]
    public void MadviseDontneedRefusesMlockedVmasButDontneedLockedZapsThem()
    {
        var p = Proc.Boot();
        long l = p.Mmap(0, 2 * P, RW, PA | MAP_LOCKED);
        p.Write((ulong)l, 5);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)l, P, MADV_DONTNEED));
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)l, P, MADV_FREE));
        Assert.Equal(5UL, p.Read((ulong)l));
        Assert.Equal(0, Madvise(p, (ulong)l, P, MADV_DONTNEED_LOCKED));
        Assert.Equal(0UL, p.Read((ulong)l));
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)l, P, MADV_COLD));
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)l, P, MADV_PAGEOUT));
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)l, P, MADV_REMOVE));
    }

    [Fact]
    public void MadviseOverAGapReturnsEnomemButAppliesToTheMappedParts()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(6);
        p.Fill(a, 6, 0x20);
        Assert.Equal(0, p.Munmap(a + (2 * P), 2 * P));
        Assert.Equal(-Errno.ENOMEM, Madvise(p, a, 6 * P, MADV_DONTNEED));
        Assert.Equal(0UL, p.Read(a));
        Assert.Equal(0UL, p.Read(a + (5 * P)));
        Assert.Equal(-Errno.ENOMEM, Madvise(p, a, 6 * P, MADV_RANDOM));
        Assert.NotEqual((VmFlags)0, Vma(p, a).VmFlags & VmFlags.VM_RAND_READ);
        Assert.NotEqual((VmFlags)0, Vma(p, a + (5 * P)).VmFlags & VmFlags.VM_RAND_READ);
        Assert.Equal(-Errno.ENOMEM, Madvise(p, a + (2 * P), 2 * P, MADV_NORMAL));
        Assert.Equal(-Errno.ENOMEM, Madvise(p, a + (2 * P), 2 * P, MADV_POPULATE_READ));
    }

    [Fact]
    public void MadviseRandomSplitsTheVmaAndNormalMergesItBack()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(6);
        p.Write(a, 1);
        Assert.Equal(0, Madvise(p, a + (2 * P), 2 * P, MADV_RANDOM));
        Assert.Equal(3, p.Vmas.Count);
        Assert.NotEqual((VmFlags)0, Vma(p, a + (2 * P)).VmFlags & VmFlags.VM_RAND_READ);
        Assert.Equal((VmFlags)0, Vma(p, a).VmFlags & VmFlags.VM_RAND_READ);
        Assert.Equal(0, Madvise(p, a + (2 * P), 2 * P, MADV_SEQUENTIAL));
        var f = Vma(p, a + (2 * P)).VmFlags;
        Assert.Equal(VmFlags.VM_SEQ_READ, f & (VmFlags.VM_SEQ_READ | VmFlags.VM_RAND_READ));
        Assert.Equal(0, Madvise(p, a + (2 * P), 2 * P, MADV_NORMAL));
        Assert.Single(p.Vmas);
        Assert.Equal(1UL, p.Read(a));
    }

    [Fact]
    public void MadviseDontforkOmitsTheRangeFromAChildAndDoforkRestoresIt()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x30);
        Assert.Equal(0, Madvise(p, a + (2 * P), 2 * P, MADV_DONTFORK));
        Assert.Equal("rd wr mr mw me dc ac", MmFlags.Format(Vma(p, a + (2 * P)).VmFlags));
        var c = p.Fork();
        Assert.Equal(0x30UL, c.Read(a));
        Assert.Equal(SIGSEGV, c.Load(a + (2 * P)).Signal);
        Assert.Equal(0, Madvise(p, a + (2 * P), 2 * P, MADV_DOFORK));
        Assert.Single(p.Vmas);
        var c2 = p.Fork();
        Assert.Equal(0x33UL, c2.Read(a + (3 * P)));
        p.AssertClean();
    }

    [Fact]
    public void MadviseDoforkAndDodumpRefuseSpecialVmas()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        Vma(p, a).__VmFlags |= VmFlags.VM_IO;
        Assert.Equal(-Errno.EINVAL, Madvise(p, a, P, MADV_DOFORK));
        Assert.Equal(-Errno.EINVAL, Madvise(p, a, P, MADV_DODUMP));
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_DONTFORK));
    }

    [Fact]
    public void MadviseWipeonforkGivesTheChildZeroedMemory()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        p.Fill(a, 2, 0x60);
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_WIPEONFORK));
        Assert.NotEqual((VmFlags)0, Vma(p, a).VmFlags & VmFlags.VM_WIPEONFORK);
        var c = p.Fork();
        Assert.Equal(0UL, c.Read(a));
        Assert.Equal(0x60UL, p.Read(a));
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_KEEPONFORK));
        var c2 = p.Fork();
        Assert.Equal(0x61UL, c2.Read(a + P));
        p.AssertClean();
    }

    [Fact]
    public void MadviseWipeonforkIsOnlyForPrivateAnonymousMemory()
    {
        var (p, fd) = WithMemfd(2);
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)s, P, MADV_WIPEONFORK));
        long f = p.Mmap(0, 2 * P, RW, MAP_PRIVATE, fd);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)f, P, MADV_WIPEONFORK));
        Assert.Equal(0, Madvise(p, (ulong)f, P, MADV_KEEPONFORK));
    }

    [Fact]
    public void MadviseDumpHugepageAndMergeableAdviceOnlyChangeFlags()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        p.Write(a, 1);
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_DONTDUMP));
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_HUGEPAGE));
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_MERGEABLE));
        Assert.Equal("rd wr mr mw me ac dd hg mg", MmFlags.Format(Vma(p, a).VmFlags));
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_NOHUGEPAGE));
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_UNMERGEABLE));
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_DODUMP));
        Assert.Equal("rd wr mr mw me ac nh", MmFlags.Format(Vma(p, a).VmFlags));
        Assert.Equal(1UL, p.Read(a));
        // KSM silently ignores shared mappings.
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
        Assert.Equal(0, Madvise(p, (ulong)s, 2 * P, MADV_MERGEABLE));
        Assert.Equal((VmFlags)0, Vma(p, (ulong)s).VmFlags & VmFlags.VM_MERGEABLE);
        Assert.Equal(0, Madvise(p, (ulong)s, 2 * P, MADV_HUGEPAGE));
    }

    [Fact]
    public void MadviseFreeMakesPagesLazyfreeOnceTheLruBatchDrains()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(8);
        p.Fill(a, 8, 0x80);
        Assert.Equal(0, Madvise(p, a, 4 * P, MADV_FREE));
        // The PTEs are clean and old at once; PG_swapbacked goes when the per-CPU batch drains.
        var s = Smaps(p, a);
        Assert.Equal(0UL, s.LazyFree);
        Assert.Equal(4UL * 4096, s.PrivateClean);
        Assert.Equal(4UL * 4096, s.Referenced);
        Assert.Equal(0x80UL, p.Read(a));
        // MADV_COLD drains this CPU's batches first.
        Assert.Equal(0, Madvise(p, a + (7 * P), P, MADV_COLD));
        Assert.Equal(4UL * 4096, Smaps(p, a).LazyFree);
        // A write re-dirties the PTE: that page is no longer lazily freeable.
        p.Write(a + P, 0x99);
        Assert.Equal(3UL * 4096, Smaps(p, a).LazyFree);
        Assert.Equal(8UL * 4096, Smaps(p, a).Anonymous);
        p.AssertClean();
    }

    [Fact]
    public void MadviseFreeOfManyPagesDrainsAFullBatch()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(40);
        p.Fill(a, 40, 1);
        Assert.Equal(0, Madvise(p, a, 40 * P, MADV_FREE));
        Assert.Equal(31UL * 4096, Smaps(p, a).LazyFree);
        Assert.Equal(0, p.Munmap(a, 40 * P));
        p.AssertClean();
    }

    [Fact]
    public void MadviseFreeIsOnlyForAnonymousVmas()
    {
        var (p, fd) = WithMemfd(2);
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)s, P, MADV_FREE));
        long f = p.Mmap(0, 2 * P, RW, MAP_PRIVATE, fd);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)f, P, MADV_FREE));
    }

    [Fact]
    public void MadvisePageoutDiscardsCleanLazyfreePagesAndKeepsRedirtiedOnes()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x11);
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_FREE));
        p.Write(a + P, 0x55);
        Assert.Equal(0, Madvise(p, a, 4 * P, MADV_PAGEOUT));
        Assert.False(p.Pagemap(a).Present);
        Assert.True(p.Pagemap(a + P).Present);
        // No swap: ordinary anonymous pages stay where they are.
        Assert.True(p.Pagemap(a + (2 * P)).Present);
        Assert.Equal(0UL, p.Read(a));
        Assert.Equal(0x55UL, p.Read(a + P));
        Assert.Equal(0x14UL, p.Read(a + (3 * P)));
        Assert.Equal(3, p.Mm.GetMmCounter(MmCounter.MM_ANONPAGES));
        p.AssertClean();
    }

    [Fact]
    public void MadvisePageoutUnmapsShmemPagesButKeepsTheirContents()
    {
        var (p, fd) = WithMemfd(2);
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED, fd);
        p.Write((ulong)s, 0x77);
        Assert.Equal(0, Madvise(p, (ulong)s, 2 * P, MADV_PAGEOUT));
        Assert.False(p.Pagemap((ulong)s).Present);
        Assert.Equal(0x77UL, p.Read((ulong)s));
        p.AssertClean();
    }

    [Fact]
    public void MadviseColdClearsTheReferencedBitsOfExclusivePages()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 1);
        Assert.Equal(4UL * 4096, Smaps(p, a).Referenced);
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_COLD));
        Assert.Equal(2UL * 4096, Smaps(p, a).Referenced);
        Assert.True(p.Pagemap(a).Present);
        Assert.Equal(1UL, p.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void MadviseRemovePunchesAHoleButKeepsPrivateCopies()
    {
        var (p, fd) = WithMemfd(4);
        long s = p.Mmap(0, 4 * P, RW, MAP_SHARED, fd);
        p.Fill((ulong)s, 4, 0x90);
        long pr = p.Mmap(0, 4 * P, RW, MAP_PRIVATE, fd);
        p.Write((ulong)pr + P, 0xC0);
        Assert.Equal(0x92UL, p.Read((ulong)pr + (2 * P)));
        Assert.Equal(0, Madvise(p, (ulong)s + P, 2 * P, MADV_REMOVE));
        Assert.Equal(0UL, p.Read((ulong)s + P));
        Assert.Equal(0UL, p.Read((ulong)s + (2 * P)));
        Assert.Equal(0x90UL, p.Read((ulong)s));
        Assert.Equal(0x93UL, p.Read((ulong)s + (3 * P)));
        Assert.Equal(0xC0UL, p.Read((ulong)pr + P));
        Assert.Equal(0UL, p.Read((ulong)pr + (2 * P)));
        Assert.Equal(-Errno.EACCES, Madvise(p, (ulong)pr, P, MADV_REMOVE));
        ulong anon = p.MmapAnon(2);
        Assert.Equal(-Errno.EINVAL, Madvise(p, anon, P, MADV_REMOVE));
        long ro = p.Mmap(0, 4 * P, PROT_READ, MAP_SHARED, fd);
        Assert.Equal(0, Madvise(p, (ulong)ro, P, MADV_REMOVE));
        Assert.Equal(0UL, p.Read((ulong)s));
        p.AssertClean();
    }

    [Fact]
    public void MadviseRemoveOfSharedAnonymousMemoryZeroesIt()
    {
        var p = Proc.Boot();
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
        p.Write((ulong)s, 5);
        var c = p.Fork();
        Assert.Equal(0, Madvise(p, (ulong)s, P, MADV_REMOVE));
        Assert.Equal(0UL, c.Read((ulong)s));
        p.AssertClean();
    }

    [Fact]
    public void MadviseWillneedSucceedsWithNothingToReadIn()
    {
        var (p, fd) = WithMemfd(2);
        ulong a = p.MmapAnon(2);
        long f = p.Mmap(0, 2 * P, RW, MAP_SHARED, fd);
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_WILLNEED));
        Assert.Equal(0, Madvise(p, (ulong)f, 2 * P, MADV_WILLNEED));
        Assert.False(p.Pagemap((ulong)f).Present);
    }

    [Fact]
    public void MadvisePopulateWriteFaultsInExclusivePages()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        Assert.Equal(0, Madvise(p, a, 4 * P, MADV_POPULATE_WRITE));
        for (ulong i = 0; i < 4; i++)
        {
            var pm = p.Pagemap(a + (i * P));
            Assert.True(pm.Present && pm.Exclusive);
        }
        Assert.Equal(4UL * 4096, Smaps(p, a).Anonymous);
    }

    [Fact]
    public void MadvisePopulateReadMapsTheZeroPage()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_POPULATE_READ));
        Assert.True(p.Pagemap(a).Present);
        Assert.Equal(0UL, Smaps(p, a).Rss);
    }

    [Fact]
    public void MadvisePopulateMapsFailuresToTheKernelsErrnos()
    {
        var (p, fd) = WithMemfd(2);
        long ro = p.Mmap(0, 2 * P, PROT_READ, PA);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)ro, P, MADV_POPULATE_WRITE));
        Assert.Equal(0, Madvise(p, (ulong)ro, P, MADV_POPULATE_READ));
        long none = p.Mmap(0, 2 * P, PROT_NONE, PA);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)none, P, MADV_POPULATE_READ));
        long big = p.Mmap(0, 4 * P, RW, MAP_SHARED, fd);
        Assert.Equal(-Errno.EFAULT, Madvise(p, (ulong)big, 4 * P, MADV_POPULATE_READ));
        Assert.True(p.Pagemap((ulong)big + P).Present);
        Assert.Equal(-Errno.EFAULT, Madvise(p, (ulong)big, 4 * P, MADV_POPULATE_WRITE));
        Assert.Equal(0, p.Munmap((ulong)big + (2 * P), 2 * P));
        Assert.Equal(-Errno.ENOMEM, Madvise(p, (ulong)big, 4 * P, MADV_POPULATE_READ));
    }

    [Fact]
    public void MadviseGuardInstallMakesAccessesFaultAndRemoveRestoresEmptyPages()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0xA0);
        Assert.Equal(0, Madvise(p, a + P, 2 * P, MADV_GUARD_INSTALL));
        Assert.Equal(SIGSEGV, p.Load(a + P).Signal);
        Assert.Equal(SIGSEGV, p.Store(a + (2 * P), 1).Signal);
        var pm = p.Pagemap(a + P);
        Assert.True(pm.Guard && !pm.Present);
        Assert.Equal("rd wr mr mw me gu ac", MmFlags.Format(Vma(p, a).VmFlags));
        Assert.Single(p.Vmas);
        Assert.Equal(2UL * 4096, Smaps(p, a).Rss);
        // Installing again is idempotent, and zapping leaves markers in place.
        Assert.Equal(0, Madvise(p, a, 4 * P, MADV_GUARD_INSTALL));
        Assert.Equal(0, Madvise(p, a, 4 * P, MADV_DONTNEED));
        Assert.True(p.Pagemap(a + P).Guard);
        Assert.Equal(0, Madvise(p, a, 4 * P, MADV_GUARD_REMOVE));
        Assert.False(p.Pagemap(a + P).Guard);
        Assert.Equal(0UL, p.Read(a + P));
        Assert.Equal(0UL, p.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void MadviseGuardMarkersSurviveForkAndMremap()
    {
        var (p, fd) = WithMemfd(4);
        long s = p.Mmap(0, 4 * P, RW, MAP_SHARED, fd);
        Assert.Equal(0, Madvise(p, (ulong)s + P, P, MADV_GUARD_INSTALL));
        var c = p.Fork();
        Assert.Equal(SIGSEGV, c.Load((ulong)s + P).Signal);
        Assert.True(c.Pagemap((ulong)s + P).Guard);
        ulong a = p.MmapAnon(4);
        Assert.Equal(0, Madvise(p, a + (2 * P), P, MADV_GUARD_INSTALL));
        p.Mmap(a + (4 * P), P, PROT_READ, PA | MAP_FIXED);
        long r = p.K.Run(p.T, () => p.K.SysMremap(a, 4 * P, 8 * P, MREMAP_MAYMOVE, 0));
        Assert.True(r > 0);
        Assert.True(p.Pagemap((ulong)r + (2 * P)).Guard);
        Assert.Equal(SIGSEGV, p.Load((ulong)r + (2 * P)).Signal);
        p.AssertClean();
    }

    [Fact]
    public void MadviseGuardVmaMergesWithANewNeighbourAndKeepsItsFlag()
    {
        var p = Proc.Boot();
        long w = p.Mmap(0, 16 * P, PROT_NONE, PA);
        Assert.Equal(0, p.Munmap((ulong)w, 16 * P));
        ulong a = (ulong)w;
        Assert.Equal((long)a, p.Mmap(a, 4 * P, RW, PA | MAP_FIXED));
        Assert.Equal(0, Madvise(p, a + P, P, MADV_GUARD_INSTALL));
        Assert.Equal((long)(a + (4 * P)), p.Mmap(a + (4 * P), 4 * P, RW, PA | MAP_FIXED));
        var vma = Vma(p, a);
        Assert.Equal(a + (8 * P), vma.VmEnd);
        Assert.NotEqual((VmFlags)0, vma.VmFlags & VmFlags.VM_MAYBE_GUARD);
    }

    [Fact]
    public void MadviseGuardInstallRefusesMlockedVmasButRemoveIsAllowed()
    {
        var p = Proc.Boot();
        long l = p.Mmap(0, 2 * P, RW, PA | MAP_LOCKED);
        Assert.Equal(-Errno.EINVAL, Madvise(p, (ulong)l, P, MADV_GUARD_INSTALL));
        Assert.Equal(0, Madvise(p, (ulong)l, P, MADV_GUARD_REMOVE));
        ulong a = p.MmapAnon(2);
        Vma(p, a).__VmFlags |= VmFlags.VM_PFNMAP;
        Assert.Equal(-Errno.EINVAL, Madvise(p, a, P, MADV_GUARD_REMOVE));
    }

    [Fact]
    public void MadviseCollapseRefusesVmasThatCannotHoldAHugePage()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Write(a, 1);
        Assert.Equal(-Errno.EINVAL, Madvise(p, a, 4 * P, MADV_COLLAPSE));
        long big = p.Mmap(0, 4UL << 20, RW, PA);
        p.Write((ulong)big, 1);
        Assert.Equal(0, Madvise(p, (ulong)big, 4UL << 20, MADV_COLLAPSE));
        Assert.Equal(0, Madvise(p, (ulong)big, 8 * P, MADV_COLLAPSE));
        Assert.Equal(1UL, p.Read((ulong)big));
    }

    [Fact]
    public void MadviseFlagChangesFailWithEagainPastMaxMapCount()
    {
        var p = Proc.Boot(new KernelConfig { MaxMapCount = 3 });
        ulong a = p.MmapAnon(8);
        Assert.Equal(0, Madvise(p, a, 2 * P, MADV_RANDOM));
        Assert.Equal(2, p.Vmas.Count);
        p.Mmap(0, P, PROT_READ, PA);
        Assert.Equal(-Errno.EAGAIN, Madvise(p, a + (4 * P), P, MADV_RANDOM));
    }
}

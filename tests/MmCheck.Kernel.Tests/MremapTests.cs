using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>mremap(2): moves, in-place resizes, MREMAP_FIXED / MREMAP_DONTUNMAP, and the errno rules.</summary>
public class MremapTests
{
    private const ulong P = 4096;
    private const int RW = PROT_READ | PROT_WRITE;
    private const int PA = MAP_PRIVATE | MAP_ANONYMOUS;

    private static long Mremap(Proc p, ulong addr, ulong oldLen, ulong newLen, int flags, ulong newAddr = 0)
    {
        long r = p.K.Run(p.T, () => p.K.SysMremap(addr, oldLen, newLen, flags, newAddr));
        p.AssertClean();
        return r;
    }

    /// <summary>A free, 2 MiB-aligned window of <paramref name="pages"/> pages (reserved, then unmapped).</summary>
    private static ulong FreeWindow(Proc p, ulong pages)
    {
        long w = p.Mmap(0, (pages * P) + (4UL << 20), PROT_NONE, PA);
        Assert.True(w > 0);
        Assert.Equal(0, p.Munmap((ulong)w, (pages * P) + (4UL << 20)));
        return ((ulong)w + (2UL << 20) - 1) & ~((2UL << 20) - 1);
    }

    private static void AssertContents(Proc p, ulong addr, ulong pages, ulong seed)
    {
        for (ulong i = 0; i < pages; i++)
        {
            Assert.Equal(seed + i, p.Read(addr + (i * P)));
        }
    }

    private static VmAreaStruct? VmaAt(Proc p, ulong addr) => p.K.VmaAt(p.Mm, addr);

    [Fact]
    public void MremapMaymoveMovesContentsAndKeepsExclusivity()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x100);
        // Block growth in place: a mapping with other protection right after.
        Assert.Equal((long)(a + (4 * P)), p.Mmap(a + (4 * P), P, PROT_READ, PA | MAP_FIXED));
        long r = Mremap(p, a, 4 * P, 8 * P, MREMAP_MAYMOVE);
        Assert.True(r > 0 && (ulong)r != a, Errno.Format(r));
        ulong n = (ulong)r;
        AssertContents(p, n, 4, 0x100);
        for (ulong i = 0; i < 4; i++)
        {
            var pm = p.Pagemap(n + (i * P));
            Assert.True(pm.Present && pm.Exclusive);
            Assert.False(p.Pagemap(a + (i * P)).Present);
        }
        Assert.Null(VmaAt(p, a));
        var vma = VmaAt(p, n)!;
        Assert.Equal(n, vma.VmStart);
        Assert.Equal(n + (8 * P), vma.VmEnd);
        // The new part reads zero; writes to the moved pages need no copy (still exclusive).
        Assert.Equal(0UL, p.Read(n + (6 * P)));
        ulong pfn = p.Pagemap(n).Pfn;
        p.Write(n, 0x999);
        Assert.Equal(pfn, p.Pagemap(n).Pfn);
        Assert.Equal(4UL * 4096, p.K.Smaps(vma).Anonymous);
        p.AssertClean();
    }

    [Fact]
    public void MremapKeepsTheFolioIndexSoRmapFindsMovedPages()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x10);
        var before = VmaAt(p, a)!.VmPgoff;
        ulong w = FreeWindow(p, 4);
        long r = Mremap(p, a + P, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w);
        Assert.Equal((long)w, r);
        var moved = VmaAt(p, w)!;
        Assert.Equal(before + 1, moved.VmPgoff);
        Assert.Equal(p.K.FolioIndex(new Folio(p.Pagemap(w).Pfn)), moved.VmPgoff);
        AssertContents(p, w, 2, 0x11);
        Assert.Equal(0x10UL, p.Read(a));
        Assert.Equal(0x13UL, p.Read(a + (3 * P)));
        Assert.Equal(3, p.Vmas.Count);
        p.AssertClean();
    }

    [Fact]
    public void MremapGrowsInPlaceWhenTheNextRangeIsFree()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 16);
        Assert.Equal((long)w, p.Mmap(w, 4 * P, RW, PA | MAP_FIXED));
        p.Fill(w, 4, 7);
        long committed = p.K.CommittedPages;
        Assert.Equal((long)w, Mremap(p, w, 4 * P, 8 * P, 0));
        var vma = VmaAt(p, w)!;
        Assert.Equal(w + (8 * P), vma.VmEnd);
        Assert.Equal(committed + 4, p.K.CommittedPages);
        AssertContents(p, w, 4, 7);
        p.Write(w + (7 * P), 1);
        p.AssertClean();
    }

    [Fact]
    public void MremapInPlaceGrowthMergesWithACompatibleNextVma()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 16);
        Assert.Equal((long)w, p.Mmap(w, 2 * P, RW, PA | MAP_FIXED));
        Assert.Equal((long)(w + (4 * P)), p.Mmap(w + (4 * P), 2 * P, RW, PA | MAP_FIXED));
        p.Write(w, 1);
        Assert.Equal((long)w, Mremap(p, w, 2 * P, 4 * P, 0));
        var vma = VmaAt(p, w)!;
        Assert.Equal(w + (6 * P), vma.VmEnd);
        Assert.Equal(1UL, p.Read(w));
        p.AssertClean();
    }

    [Fact]
    public void MremapShrinkUnmapsTheTailAndUncharges()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(8);
        p.Fill(a, 8, 1);
        long committed = p.K.CommittedPages;
        Assert.Equal((long)a, Mremap(p, a, 8 * P, 3 * P, 0));
        Assert.Equal(a + (3 * P), VmaAt(p, a)!.VmEnd);
        Assert.Null(VmaAt(p, a + (3 * P)));
        Assert.Equal(committed - 5, p.K.CommittedPages);
        AssertContents(p, a, 3, 1);
        Assert.False(p.Load(a + (4 * P)).Ok);
        p.AssertClean();
    }

    [Fact]
    public void MremapSameSizeIsANoOpEvenPastTheVma()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        Assert.Equal((long)a, Mremap(p, a, 2 * P, 2 * P, 0));
        Assert.Equal((long)a, Mremap(p, a, 8 * P, 8 * P, 0));
    }

    [Fact]
    public void MremapWithoutMaymoveFailsWithEnomemWhenBlocked()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        p.Mmap(a + (2 * P), P, PROT_READ, PA | MAP_FIXED);
        Assert.Equal(-Errno.ENOMEM, Mremap(p, a, 2 * P, 4 * P, 0));
        // A range that does not end at the VMA's end cannot grow in place either.
        ulong b = p.MmapAnon(8);
        Assert.Equal(-Errno.ENOMEM, Mremap(p, b, 2 * P, 4 * P, 0));
    }

    [Fact]
    public void MremapFixedUnmapsTheTargetFirst()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        p.Fill(a, 2, 0x50);
        ulong t = p.MmapAnon(4);
        p.Fill(t, 4, 0x70);
        long r = Mremap(p, a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, t + P);
        Assert.Equal((long)(t + P), r);
        Assert.Equal(0x70UL, p.Read(t));
        AssertContents(p, t + P, 2, 0x50);
        Assert.Equal(0x73UL, p.Read(t + (3 * P)));
        Assert.Null(VmaAt(p, a));
        p.AssertClean();
    }

    [Fact]
    public void MremapFixedWithShrinkMovesTheRemainder()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 3);
        ulong w = FreeWindow(p, 4);
        Assert.Equal((long)w, Mremap(p, a, 4 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w));
        AssertContents(p, w, 2, 3);
        Assert.Null(VmaAt(p, a));
        Assert.Null(VmaAt(p, a + (3 * P)));
        Assert.Equal(w + (2 * P), VmaAt(p, w)!.VmEnd);
        p.AssertClean();
    }

    [Fact]
    public void MremapFixedMovesSeveralVmasKeepingTheirGaps()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 32);
        ulong a = w;
        Assert.Equal((long)a, p.Mmap(a, 8 * P, RW, PA | MAP_FIXED));
        p.Fill(a, 8, 0x200);
        Assert.Equal(0, p.Mprotect(a + (2 * P), 2 * P, PROT_READ));
        Assert.Equal(0, p.Munmap(a + (5 * P), P));
        ulong t = w + (16 * P);
        long r = Mremap(p, a, 8 * P, 8 * P, MREMAP_MAYMOVE | MREMAP_FIXED, t);
        Assert.Equal((long)t, r);
        Assert.Equal(0x201UL, p.Read(t + P));
        Assert.Equal(0x203UL, p.Read(t + (3 * P)));
        Assert.Equal(0x207UL, p.Read(t + (7 * P)));
        Assert.Null(VmaAt(p, t + (5 * P)));
        Assert.Equal((VmFlags)0, VmaAt(p, t + (2 * P))!.VmFlags & VmFlags.VM_WRITE);
        Assert.Null(VmaAt(p, a));
        Assert.Null(VmaAt(p, a + (7 * P)));
        p.AssertClean();
    }

    [Fact]
    public void MremapFixedMultiMoveWithAGapAtTheStartFaults()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 32);
        Assert.Equal((long)(w + P), p.Mmap(w + P, 4 * P, RW, PA | MAP_FIXED));
        Assert.Equal(-Errno.EFAULT, Mremap(p, w, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (16 * P)));
        // An unmapped tail is fine: only the VMAs inside the range move.
        long r = Mremap(p, w + P, 8 * P, 8 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (16 * P));
        Assert.Equal((long)(w + (16 * P)), r);
        Assert.Equal(w + (20 * P), VmaAt(p, w + (16 * P))!.VmEnd);
    }

    [Fact]
    public void MremapDontunmapLeavesTheOldRangeMappedButEmpty()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x40);
        long committed = p.K.CommittedPages;
        long r = Mremap(p, a, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
        Assert.True(r > 0, Errno.Format(r));
        ulong n = (ulong)r;
        AssertContents(p, n, 4, 0x40);
        Assert.True(p.Pagemap(n).Exclusive);
        var old = VmaAt(p, a)!;
        Assert.Equal(a, old.VmStart);
        Assert.NotEqual((VmFlags)0, old.VmFlags & VmFlags.VM_ACCOUNT);
        Assert.Null(old.AnonVma);
        Assert.False(p.Pagemap(a).Present);
        Assert.Equal(0UL, p.Read(a + P));
        Assert.Equal(committed + 4, p.K.CommittedPages);
        Assert.Equal(0UL, p.K.Smaps(old).Anonymous);
        p.AssertClean();
    }

    [Fact]
    public void MremapDontunmapOfPartOfAVmaKeepsItsAnonVma()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x40);
        long r = Mremap(p, a + P, P, P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
        Assert.True(r > 0);
        Assert.Equal(0x40UL, p.Read(a));
        Assert.Equal(0UL, p.Read(a + P));
        Assert.Equal(0x41UL, p.Read((ulong)r));
        Assert.NotNull(VmaAt(p, a)!.AnonVma);
        p.AssertClean();
    }

    [Theory]
    [InlineData(1UL, 1UL, 1UL, MREMAP_MAYMOVE, 0UL, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, 1UL, 8, 0UL, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, 0UL, 0, 0UL, -Errno.EINVAL)]
    [InlineData(0UL, 2UL, 2UL, MREMAP_FIXED | MREMAP_MAYMOVE, 1UL, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, 1UL, MREMAP_FIXED, 64UL, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, 2UL, MREMAP_DONTUNMAP | MREMAP_MAYMOVE, 0UL, -Errno.EINVAL)]
    [InlineData(0UL, 1UL, 1UL, MREMAP_DONTUNMAP, 0UL, -Errno.EINVAL)]
    [InlineData(0UL, 0UL, 1UL, MREMAP_MAYMOVE, 0UL, -Errno.EINVAL)]
    [InlineData(0UL, 8UL, 16UL, MREMAP_MAYMOVE, 0UL, -Errno.EFAULT)]
    [InlineData(0UL, 1UL, 0x10000000000UL, MREMAP_MAYMOVE, 0UL, -Errno.EINVAL)]
    public void MremapInvalidRequestsFailWithTheKernelsErrno(ulong addrOff, ulong oldPages, ulong newPages, int flags, ulong newAddrPages, long expected)
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        ulong newAddr = newAddrPages == 0 ? 0 : a + (newAddrPages * P);
        if (newAddrPages == 64)
        {
            newAddr = FreeWindow(p, 4);
        }
        Assert.Equal(expected, Mremap(p, a + addrOff, oldPages * P, newPages * P, flags, newAddr));
        Assert.Equal(a + (4 * P), VmaAt(p, a)!.VmEnd);
    }

    [Fact]
    public void MremapOfAnUnmappedAddressFaultsButParameterErrorsComeFirst()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 16);
        Assert.Equal(-Errno.EFAULT, Mremap(p, w, 4 * P, 8 * P, MREMAP_MAYMOVE));
        Assert.Equal(-Errno.EINVAL, Mremap(p, w, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (2 * P)));
        Assert.Equal(-Errno.EINVAL, Mremap(p, w, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (8 * P) + 1));
        Assert.Equal(-Errno.EFAULT, Mremap(p, w, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (8 * P)));
    }

    [Fact]
    public void MremapCannotGrowDontexpandOrPfnmapVmas()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(2);
        VmaAt(p, a)!.__VmFlags |= VmFlags.VM_DONTEXPAND;
        Assert.Equal(-Errno.EFAULT, Mremap(p, a, 2 * P, 4 * P, MREMAP_MAYMOVE));
        Assert.Equal(-Errno.EINVAL, Mremap(p, a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP));
        // A plain move of the same size is allowed.
        long r = Mremap(p, a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, FreeWindow(p, 4));
        Assert.True(r > 0);
    }

    [Fact]
    public void MremapOfASharedMappingWithOldLenZeroDuplicatesIt()
    {
        var p = Proc.Boot();
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
        p.Write((ulong)s, 7);
        long r = Mremap(p, (ulong)s, 0, 2 * P, MREMAP_MAYMOVE);
        Assert.True(r > 0 && r != s);
        Assert.Equal(7UL, p.Read((ulong)r));
        p.Write((ulong)r + P, 9);
        Assert.Equal(9UL, p.Read((ulong)s + P));
        Assert.NotNull(VmaAt(p, (ulong)s));
        // Without MREMAP_MAYMOVE there is nowhere to put it.
        Assert.Equal(-Errno.ENOMEM, Mremap(p, (ulong)s, 0, 2 * P, 0));
        p.AssertClean();
    }

    [Fact]
    public void MremapGrowingASharedAnonymousMappingLeavesThePastEofPartSigbus()
    {
        var p = Proc.Boot();
        long s = p.Mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
        p.Write((ulong)s, 3);
        p.Mmap((ulong)s + (2 * P), P, PROT_READ, PA | MAP_FIXED);
        long r = Mremap(p, (ulong)s, 2 * P, 8 * P, MREMAP_MAYMOVE);
        Assert.True(r > 0);
        Assert.Equal(3UL, p.Read((ulong)r));
        Assert.Equal(SIGBUS, p.Load((ulong)r + (4 * P)).Signal);
        p.AssertClean();
    }

    [Fact]
    public void MremapOfAForkedMappingKeepsCowAndRmapIntact()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        p.Fill(a, 4, 0x300);
        var c = p.Fork();
        p.Mmap(a + (4 * P), P, PROT_READ, PA | MAP_FIXED);
        long r = Mremap(p, a, 4 * P, 8 * P, MREMAP_MAYMOVE);
        Assert.True(r > 0);
        ulong n = (ulong)r;
        Assert.False(p.Pagemap(n).Exclusive);
        p.Write(n, 0xAAA);
        Assert.True(p.Pagemap(n).Exclusive);
        Assert.Equal(0x300UL, c.Read(a));
        AssertContents(c, a, 4, 0x300);
        AssertContents(p, n + P, 3, 0x301);
        p.AssertClean();
    }

    [Fact]
    public void MremapMovesAWholePmdWorthOfPageTables()
    {
        var p = Proc.Boot();
        const ulong pages = 512;
        ulong w = FreeWindow(p, 4 * pages);
        Assert.Equal((long)w, p.Mmap(w, pages * P, RW, PA | MAP_FIXED));
        for (ulong i = 0; i < pages; i += 37)
        {
            p.Write(w + (i * P), i + 1);
        }
        ulong t = w + (2 * pages * P);
        Assert.Equal((long)t, Mremap(p, w, pages * P, pages * P, MREMAP_MAYMOVE | MREMAP_FIXED, t));
        for (ulong i = 0; i < pages; i += 37)
        {
            Assert.Equal(i + 1, p.Read(t + (i * P)));
            Assert.True(p.Pagemap(t + (i * P)).Exclusive);
        }
        Assert.Null(VmaAt(p, w));
        p.AssertClean();
    }

    [Fact]
    public void MremapRealignsAMisalignedMoveToMoveWholeTables()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 2048);
        ulong src = w + (500 * P);
        ulong dst = w + (1024 * P) + (500 * P);
        Assert.Equal((long)src, p.Mmap(src, 600 * P, RW, PA | MAP_FIXED));
        p.Fill(src, 600, 0x1000);
        Assert.Equal((long)dst, Mremap(p, src, 600 * P, 600 * P, MREMAP_MAYMOVE | MREMAP_FIXED, dst));
        AssertContents(p, dst, 600, 0x1000);
        p.AssertClean();
    }

    [Fact]
    public void MremapOfAnMlockedMappingPopulatesTheGrownPart()
    {
        var p = Proc.Boot();
        long a = p.Mmap(0, 2 * P, RW, PA | MAP_LOCKED);
        Assert.True(a > 0);
        p.Mmap((ulong)a + (2 * P), P, PROT_READ, PA | MAP_FIXED);
        long lockedBefore = p.Mm.LockedVm;
        long r = Mremap(p, (ulong)a, 2 * P, 6 * P, MREMAP_MAYMOVE);
        Assert.True(r > 0);
        for (ulong i = 0; i < 6; i++)
        {
            Assert.True(p.Pagemap((ulong)r + (i * P)).Present);
        }
        // locked_vm grows by new_len and the unmapped source gives back old_len.
        Assert.Equal(lockedBefore + 4, p.Mm.LockedVm);
        p.AssertClean();
    }

    [Fact]
    public void MremapOfAShmemMappingKeepsItsPageCacheAndFileOffset()
    {
        var p = Proc.Boot();
        long fd = p.MemfdCreate("m");
        Assert.Equal(0, p.Ftruncate(fd, (long)(4 * P)));
        long s = p.Mmap(0, 4 * P, RW, MAP_SHARED, fd);
        p.Fill((ulong)s, 4, 0x77);
        long other = p.Mmap(0, 4 * P, PROT_READ, MAP_SHARED, fd);
        ulong w = FreeWindow(p, 4);
        Assert.Equal((long)w, Mremap(p, (ulong)s + P, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w));
        Assert.Equal(1UL, VmaAt(p, w)!.VmPgoff);
        AssertContents(p, w, 2, 0x78);
        p.Write(w, 0xBEEF);
        Assert.Equal(0xBEEFUL, p.Read((ulong)other + P));
        p.AssertClean();
    }

    [Fact]
    public void MremapOfAnUnfaultedAnonymousVmaMergesWithItsNewNeighbour()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 32);
        Assert.Equal((long)w, p.Mmap(w, 2 * P, RW, PA | MAP_FIXED));
        ulong b = w + (16 * P);
        Assert.Equal((long)b, p.Mmap(b, 2 * P, RW, PA | MAP_FIXED));
        Assert.Equal((long)(w + (2 * P)), Mremap(p, b, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (2 * P)));
        var vma = VmaAt(p, w)!;
        Assert.Equal(w + (4 * P), vma.VmEnd);
        p.AssertClean();
    }

    [Fact]
    public void MremapIntoAnUnfaultedNeighbourGivesItTheMovedPagesAnonVma()
    {
        var p = Proc.Boot();
        ulong w = FreeWindow(p, 32);
        Assert.Equal((long)w, p.Mmap(w, 4 * P, RW, PA | MAP_FIXED));
        p.Write(w + (2 * P), 0x5);
        p.Write(w + (3 * P), 0x6);
        ulong y = w + (16 * P);
        Assert.Equal((long)y, Mremap(p, w + (2 * P), 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, y));
        // Replace what is left with an unfaulted VMA of the same linear pgoff.
        Assert.Equal(0, p.Munmap(w, 2 * P));
        Assert.Equal((long)w, p.Mmap(w, 2 * P, RW, PA | MAP_FIXED));
        Assert.Null(VmaAt(p, w)!.AnonVma);
        Assert.Equal((long)(w + (2 * P)), Mremap(p, y, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (2 * P)));
        var vma = VmaAt(p, w)!;
        Assert.Equal(w + (4 * P), vma.VmEnd);
        Assert.NotNull(vma.AnonVma);
        Assert.Equal(0x5UL, p.Read(w + (2 * P)));
        Assert.Equal(0x6UL, p.Read(w + (3 * P)));
        p.Write(w, 0x7);
        p.AssertClean();
    }

    [Fact]
    public void MremapChargesAndUnchargesCommittedMemoryLikeTheKernel()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(4);
        long c0 = p.K.CommittedPages;
        p.Mmap(a + (4 * P), P, PROT_READ, PA | MAP_FIXED);
        long afterBlock = p.K.CommittedPages;
        long r = Mremap(p, a, 4 * P, 6 * P, MREMAP_MAYMOVE);
        Assert.True(r > 0);
        Assert.Equal(afterBlock + 2, p.K.CommittedPages);
        Assert.Equal(0, p.Munmap((ulong)r, 6 * P));
        Assert.Equal(afterBlock - 4, p.K.CommittedPages);
        Assert.Equal(c0, afterBlock);
        p.AssertClean();
    }

    [Fact]
    public void MremapMovesNeedFourMapsOfHeadroomButResizesInPlaceDoNot()
    {
        var p = Proc.Boot(new KernelConfig { MaxMapCount = 8 });
        ulong w = FreeWindow(p, 64);
        Assert.Equal((long)w, p.Mmap(w, 2 * P, RW, PA | MAP_FIXED));
        for (ulong i = 1; i < 3; i++)
        {
            Assert.Equal((long)(w + (i * 4 * P)), p.Mmap(w + (i * 4 * P), P, PROT_READ, PA | MAP_FIXED));
        }
        Assert.Equal(3, p.Mm.MapCount);
        // map_count + 2 >= max_map_count - 3: refused before anything is unmapped.
        Assert.Equal(-Errno.ENOMEM, Mremap(p, w, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (32 * P)));
        Assert.Equal(-Errno.ENOMEM, Mremap(p, w, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP));
        Assert.Equal((long)w, Mremap(p, w, 2 * P, 3 * P, 0));
        Assert.Equal((long)w, Mremap(p, w, 3 * P, P, 0));
        Assert.Equal(0, p.Munmap(w + (4 * P), P));
        Assert.Equal((long)(w + (32 * P)), Mremap(p, w, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, w + (32 * P)));
    }

    [Fact]
    public void MremapGrowthBeyondOvercommitFailsWithEnomem()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        long committed = p.K.CommittedPages;
        Assert.Equal(-Errno.ENOMEM, Mremap(p, a, P, 16UL << 30, MREMAP_MAYMOVE));
        Assert.Equal(committed, p.K.CommittedPages);
        Assert.Equal(1UL, p.Read(a));
    }
}

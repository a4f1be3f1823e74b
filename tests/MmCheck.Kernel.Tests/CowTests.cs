using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>tools/testing/selftests/mm/cow.c, the anonymous cases that need no pinning.</summary>
public class CowTests
{
    [Fact]
    public void ParentWriteAfterForkStaysOutOfChild()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        var c = p.Fork();
        p.Write(buf, 0x22);
        Assert.Equal(0x22UL, p.Read(buf));
        Assert.Equal(0x11UL, c.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void ChildWriteAfterForkStaysOutOfParent()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        var c = p.Fork();
        c.Write(buf, 0x33);
        Assert.Equal(0x33UL, c.Read(buf));
        Assert.Equal(0x11UL, p.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void ForkSharesThePageReadOnlyUntilSomeoneWrites()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        var before = p.Pagemap(buf);
        Assert.True(before.Exclusive);
        var c = p.Fork();
        var pp = p.Pagemap(buf);
        var cp = c.Pagemap(buf);
        Assert.True(pp.Present && cp.Present);
        Assert.Equal(pp.Pfn, cp.Pfn);
        Assert.False(pp.Exclusive);
        Assert.False(cp.Exclusive);
        Assert.Equal(2, p.K.KpageCount(pp.Pfn));
        var pte = new Pte(p.K.WalkPte(p.Mm, buf)!.Value.Table.Entries[p.K.Paging.PteIndex(buf)]);
        Assert.False(PgTable.PteWrite(pte));
        Assert.False(p.K.PageAnonExclusive(new Page(pp.Pfn)));
        p.AssertClean();
    }

    [Fact]
    public void ParentPageIsExclusiveAgainAfterTheChildCopiesWithoutAParentWrite()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        var c = p.Fork();
        ulong shared = p.Pagemap(buf).Pfn;
        c.Write(buf, 0x44);
        var pp = p.Pagemap(buf);
        var cp = c.Pagemap(buf);
        Assert.Equal(shared, pp.Pfn);
        Assert.NotEqual(shared, cp.Pfn);
        Assert.True(pp.Exclusive);
        Assert.True(cp.Exclusive);
        Assert.Equal(1, p.K.KpageCount(shared));
        // The parent's next write reuses the page: its refcount is 1 again.
        p.Write(buf, 0x55);
        Assert.Equal(shared, p.Pagemap(buf).Pfn);
        Assert.Equal(0x44UL, c.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void CowAfterMprotectReadOnlyThenWritableDoesNotLeakIntoChild()
    {
        // cow.c "Basic COW after fork() with mprotect() optimization".
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        var c = p.Fork();
        Assert.Equal(0L, p.Mprotect(buf, 4096, PROT_READ));
        Assert.Equal(0L, p.Mprotect(buf, 4096, PROT_READ | PROT_WRITE));
        p.Write(buf, 0x22);
        Assert.Equal(0x11UL, c.Read(buf));
        Assert.Equal(0x22UL, p.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void MprotectWritableMapsExclusivePagesWritableWithoutAFault()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        Assert.Equal(0L, p.Mprotect(buf, 4096, PROT_READ));
        Assert.Equal(0L, p.Mprotect(buf, 4096, PROT_READ | PROT_WRITE));
        var pte = new Pte(p.K.WalkPte(p.Mm, buf)!.Value.Table.Entries[p.K.Paging.PteIndex(buf)]);
        Assert.True(PgTable.PteWrite(pte));
        long faults = p.K.VmEvent("pgfault");
        p.Write(buf, 0x22);
        Assert.Equal(faults, p.K.VmEvent("pgfault"));
        p.AssertClean();
    }

    [Fact]
    public void DontforkLeavesAHoleInTheChild()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(2);
        p.Write(buf, 0x11);
        Assert.Equal(0L, p.Madvise(buf, 4096, MADV_DONTFORK));
        var c = p.Fork();
        Assert.Equal(SIGSEGV, c.Load(buf).Signal);
        Assert.Equal(0UL, c.Read(buf + 4096));
        Assert.Equal(0x11UL, p.Read(buf));
        Assert.Single(c.Vmas);
        p.AssertClean();
    }

    [Fact]
    public void DoforkUndoesDontfork()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        Assert.Equal(0L, p.Madvise(buf, 4096, MADV_DONTFORK));
        Assert.Equal(0L, p.Madvise(buf, 4096, MADV_DOFORK));
        var c = p.Fork();
        Assert.Equal(0x11UL, c.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void WipeonforkGivesTheChildZeroes()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        Assert.Equal(0L, p.Madvise(buf, 4096, MADV_WIPEONFORK));
        var c = p.Fork();
        Assert.Equal(0UL, c.Read(buf));
        Assert.False(c.Pagemap(buf + 0).Present && c.Pagemap(buf).Pfn == p.Pagemap(buf).Pfn);
        Assert.Equal(0x11UL, p.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void WipeonforkIsRefusedOnSharedMappings()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1, flags: MAP_SHARED | MAP_ANONYMOUS);
        Assert.Equal(-Errno.EINVAL, p.Madvise(buf, 4096, MADV_WIPEONFORK));
    }

    [Fact]
    public void SharedAnonymousWritesAreVisibleAcrossFork()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1, flags: MAP_SHARED | MAP_ANONYMOUS);
        p.Write(buf, 0x11);
        var c = p.Fork();
        c.Write(buf, 0x66);
        Assert.Equal(0x66UL, p.Read(buf));
        Assert.Equal(p.Pagemap(buf).Pfn, c.Pagemap(buf).Pfn);
        Assert.True(p.Pagemap(buf).File);
        p.AssertClean();
    }

    [Fact]
    public void ReadFaultMapsTheSharedZeroPage()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(2);
        Assert.Equal(0UL, p.Read(buf));
        Assert.Equal(0UL, p.Read(buf + 4096));
        var a = p.Pagemap(buf);
        var b = p.Pagemap(buf + 4096);
        Assert.True(a.Present);
        Assert.Equal(p.K.ZeroPfn, a.Pfn);
        Assert.Equal(a.Pfn, b.Pfn);
        Assert.False(a.Exclusive);
        Assert.NotEqual(0UL, p.K.KpageFlags(a.Pfn) & (1UL << Linux.Kernel.Kpf.ZERO_PAGE));
        // A write replaces the zero page with a private page.
        p.Write(buf, 7);
        Assert.NotEqual(p.K.ZeroPfn, p.Pagemap(buf).Pfn);
        Assert.True(p.Pagemap(buf).Exclusive);
        Assert.Equal(p.K.ZeroPfn, p.Pagemap(buf + 4096).Pfn);
        Assert.Equal(0UL, p.K.Smaps(p.Vmas[0]).Anonymous - 4096);
        p.AssertClean();
    }

    [Fact]
    public void ZeroPageIsNotCountedInRss()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(4);
        for (ulong i = 0; i < 4; i++)
        {
            p.Read(buf + i * 4096);
        }
        var s = p.K.Smaps(p.Vmas[0]);
        Assert.Equal(0UL, s.Rss);
        Assert.Equal(0UL, s.Anonymous);
        p.Write(buf, 1);
        s = p.K.Smaps(p.Vmas[0]);
        Assert.Equal(4096UL, s.Rss);
        Assert.Equal(4096UL, s.Anonymous);
    }

    [Fact]
    public void ForkedChildOfAForkedChildStillCowsCorrectly()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 1);
        var c = p.Fork();
        var g = c.Fork();
        g.Write(buf, 3);
        c.Write(buf, 2);
        Assert.Equal(1UL, p.Read(buf));
        Assert.Equal(2UL, c.Read(buf));
        Assert.Equal(3UL, g.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void ExitOfTheChildReturnsTheSharedPageToTheParent()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 1);
        ulong pfn = p.Pagemap(buf).Pfn;
        var c = p.Fork();
        c.Exit();
        Assert.Equal(1, p.K.KpageCount(pfn));
        Assert.True(p.Pagemap(buf).Exclusive);
        long faults = p.K.VmEvent("cow_fault");
        p.Write(buf, 2);
        Assert.Equal(pfn, p.Pagemap(buf).Pfn);
        Assert.Equal(faults, p.K.VmEvent("cow_fault"));
        p.AssertClean();
    }

    [Fact]
    public void AfterTheParentCopiesTheChildReusesTheOldPageWithoutCopying()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(1);
        p.Write(buf, 0x11);
        var c = p.Fork();
        ulong old = p.Pagemap(buf).Pfn;
        p.Write(buf, 0x22);
        // pagemap's exclusive bit follows the mapcount: set for the child at once,
        // though PageAnonExclusive is only set again when the child writes.
        Assert.True(c.Pagemap(buf).Exclusive);
        Assert.False(p.K.PageAnonExclusive(new Page(old)));
        c.Write(buf, 0x33);
        Assert.Equal(old, c.Pagemap(buf).Pfn);
        Assert.True(p.K.PageAnonExclusive(new Page(old)));
        Assert.Equal(0x22UL, p.Read(buf));
        p.AssertClean();
    }

    [Fact]
    public void CowKeepsWorkingAcrossVmasSplitByMprotectAndMunmap()
    {
        var p = Proc.Boot();
        ulong buf = p.MmapAnon(4);
        for (ulong i = 0; i < 4; i++)
        {
            p.Write(buf + i * 4096, 0x10 + i);
        }
        var c = p.Fork();
        // Split the parent's VMA in three, and drop the last page.
        Assert.Equal(0L, p.Mprotect(buf + 4096, 4096, PROT_READ));
        Assert.Equal(0L, p.Munmap(buf + 3 * 4096, 4096));
        Assert.Equal(3, p.Vmas.Count);
        // The child's copy of the dropped page is now mapped only by the child.
        Assert.True(c.Pagemap(buf + 3 * 4096).Exclusive);
        Assert.Equal(0x13UL, c.Read(buf + 3 * 4096));
        // Writes on either side still copy, and the read-only middle refuses the parent's write.
        c.Write(buf, 0x20);
        Assert.Equal(0x10UL, p.Read(buf));
        Assert.True(p.Pagemap(buf).Exclusive);
        Assert.Equal(SIGSEGV, p.Store(buf + 4096, 1).Signal);
        c.Write(buf + 4096, 0x21);
        Assert.Equal(0x11UL, p.Read(buf + 4096));
        p.Write(buf + 2 * 4096, 0x32);
        Assert.Equal(0x12UL, c.Read(buf + 2 * 4096));
        // Back to one VMA: the middle's PTE stays read-only until the next write reuses it.
        Assert.Equal(0L, p.Mprotect(buf + 4096, 4096, PROT_READ | PROT_WRITE));
        Assert.Single(p.Vmas);
        ulong mid = p.Pagemap(buf + 4096).Pfn;
        Assert.False(PgTable.PteWrite(p.K.PtepGet(p.K.WalkPte(p.Mm, buf + 4096)!.Value)));
        p.Write(buf + 4096, 0x41);
        Assert.Equal(mid, p.Pagemap(buf + 4096).Pfn);
        Assert.Equal(0x21UL, c.Read(buf + 4096));
        p.AssertClean();
    }
}

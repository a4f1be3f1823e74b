using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// kernel/fork.c:check_mm() at __mmdrop(): every rss counter is back to zero once exit_mmap() has
/// zapped the VMAs; a page still counted is a "Bad rss-counter state" (bad-rss-counter finding).
/// </summary>
public class CheckMmTests
{
    private const int RW = PROT_READ | PROT_WRITE;

    private static List<Finding> BadRss(Proc p) => p.K.Findings.Where(f => f.Invariant == Invariants.BadRssCounter).ToList();

    [Fact]
    public void AnonFileAndShmemPagesAreAllUncountedByTeardown()
    {
        var p = Proc.Boot();
        ulong anon = p.MmapAnon(2);
        p.Write(anon, 1);
        p.Write(anon + 4096, 2);
        long fd = p.Memfd(2);
        ulong shared = p.MmapFile(fd, 2, MAP_SHARED);
        p.Write(shared, 3);
        ulong priv = (ulong)p.Mmap(0, 4096, RW, MAP_PRIVATE, fd);
        Assert.Equal(3UL, p.Read(priv));
        var c = p.Fork();
        c.Write(anon, 4);          // COW in the child
        c.Write(priv, 5);          // a private file page becomes anon in the child
        Assert.Equal(2, p.Mm.GetMmCounter(MmCounter.MM_ANONPAGES));
        Assert.Equal(2, p.Mm.GetMmCounter(MmCounter.MM_SHMEMPAGES));
        Assert.True(c.Mm.GetMmCounter(MmCounter.MM_ANONPAGES) >= 3);
        var childMm = c.Mm;
        c.Exit();
        Assert.All(Enum.GetValues<MmCounter>(), m => Assert.Equal(0, childMm.GetMmCounter(m)));
        var parentMm = p.Mm;
        p.Exit();
        Assert.All(Enum.GetValues<MmCounter>(), m => Assert.Equal(0, parentMm.GetMmCounter(m)));
        Assert.Empty(BadRss(p));
        Assert.Empty(p.K.Findings);
    }

    [Fact]
    public void APteInstalledAfterMunmapStaysCountedAndIsReportedWhenTheMmIsFreed()
    {
        var p = Proc.Boot();
        ulong x = p.MmapAnon(1);
        var vma = p.Vmas.Single(v => v.VmStart == x);
        Assert.Equal(0L, p.Munmap(x, 4096));
        // A fault that goes on with the VMA it looked up before munmap (the mmap lock dropped in
        // between): it maps a page where no VMA is any more.
        var mm = p.Mm;
        var r = p.K.Run(p.T, async () =>
        {
            await p.K.MmapReadLock(mm);
            var ret = await p.K.HandleMmFault(vma, x, FaultFlag.FAULT_FLAG_DEFAULT | FaultFlag.FAULT_FLAG_USER | FaultFlag.FAULT_FLAG_WRITE);
            await p.K.MmapReadUnlock(mm);
            return ret;
        });
        Assert.Equal(0, (int)(r & VmFault.VM_FAULT_ERROR));
        Assert.Null(mm.MmMt.VmaLookup(x));
        Assert.Equal(1, mm.GetMmCounter(MmCounter.MM_ANONPAGES));
        Assert.Empty(BadRss(p));

        p.Exit();
        // exit_mmap() found no VMA to zap there.
        var f = Assert.Single(BadRss(p));
        Assert.Equal($"Bad rss-counter state {mm} type:MM_ANONPAGES val:1", f.Message);
        Assert.Equal("check_mm", f.Function);
        Assert.Equal(p.T.Pid, f.TaskPid);
    }

    [Fact]
    public void OnlyTheLastUserFreesTheMmAndChecksIt()
    {
        var p = Proc.Boot();
        ulong x = p.MmapAnon(1);
        p.Write(x, 1);
        var t = p.K.CreateThread(p.T, "t");
        var mm = p.Mm;
        // A counter off by one (as a missed decrement would leave it) is reported, with its sign.
        mm.RssStat[(int)MmCounter.MM_FILEPAGES] = -1;
        p.Exit();
        Assert.Empty(BadRss(p));
        p.K.Run(t, () => p.K.SysExit());
        var f = Assert.Single(BadRss(p));
        Assert.Equal($"Bad rss-counter state {mm} type:MM_FILEPAGES val:-1", f.Message);
        Assert.Equal(t.Pid, f.TaskPid);
    }
}

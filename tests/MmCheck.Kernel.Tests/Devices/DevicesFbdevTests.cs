using Linux;
using static Linux.Mman;
using static MmCheck.Kernel.Tests.DevicesKit;

namespace MmCheck.Kernel.Tests;

/// <summary>fbdev deferred I/O: dirty tracking through write notification (seed 000, the fbdev part).</summary>
public class DevicesFbdevTests
{
    private static (Proc P, FbInfo Info, ulong Addr) MapFb(FbMmapStyle style, ulong pages = 4)
    {
        var p = Boot();
        PciDev? vram = style == FbMmapStyle.DeferredIo ? null : p.K.PciAddDevice(64 * PG);
        var info = p.K.FbRegister(style, pages * PG, vram);
        long fd = p.Open(info.Path);
        Assert.True(fd >= 0);
        long a = p.MmapShared(fd, pages * PG, 0);
        Assert.True(a > 0, Errno.Format(a));
        return (p, info, (ulong)a);
    }

    private static bool PteWritable(Proc p, ulong a) =>
        p.K.PeekLeaf(p.Mm, a, out ulong e, out int level) && level == 1 && PgTable.PteWrite(new Pte(e));

    [Theory]
    [InlineData(FbMmapStyle.DeferredIo)]
    [InlineData(FbMmapStyle.DeferredIoPfn)]
    public void TheFirstWriteToEachPageCallsMkwriteOnce(FbMmapStyle style)
    {
        var (p, info, a) = MapFb(style);
        var vma = p.Mm.MmMt.VmaLookup(a)!;
        Assert.True(p.K.VmaWantsWritenotify(vma, vma.VmPageProt));
        // A read maps the page read-only.
        Assert.Equal(0UL, p.Read(a));
        Assert.False(PteWritable(p, a));
        Assert.Equal(0, info.MkwriteCalls);
        p.Write(a, 1);
        p.Write(a + 8, 2);
        Assert.Equal(1, info.MkwriteCalls);
        p.Write(a + 2 * PG, 3);
        Assert.Equal(2, info.MkwriteCalls);
        Assert.Equal([0UL, 2 * PG], info.Pagereflist.Keys);
        p.AssertClean();

        // The deferred work write-protects the dirty pages and hands them to the driver.
        var worker = p.K.CreateKernelThread("kworker");
        p.K.Run(worker, () => p.K.FbDeferredIoWork(info));
        Assert.Equal([0UL, 2UL], info.Flushed.Single());
        Assert.False(PteWritable(p, a));
        Assert.False(PteWritable(p, a + 2 * PG));
        Assert.Empty(info.Pagereflist);
        // Written again, each page is reported again.
        p.Write(a, 4);
        Assert.Equal(3, info.MkwriteCalls);
        Assert.Equal(4UL, p.Read(a));
        p.AssertClean();
        if (style == FbMmapStyle.DeferredIoPfn)
        {
            Assert.Equal(3UL, info.Vram!.PeekBar(0, 2 * PG));
        }
    }

    [Fact]
    public void PopulatingInMmapLeavesWritablePtesMkwriteNeverRunsAndWriteNotifyIsViolated()
    {
        var (p, info, a) = MapFb(FbMmapStyle.IoRemapWithMkwrite);
        var vma = p.Mm.MmMt.VmaLookup(a)!;
        // vma_set_page_prot() write-protected vm_page_prot, but only after ->mmap filled the PTEs.
        Assert.True(p.K.VmaWantsWritenotify(vma, vma.VmPageProt));
        Assert.False(PgTable.PteWrite(new Pte(vma.VmPageProt.Val)));
        Assert.True(PteWritable(p, a));
        p.Write(a, 0x77);
        Assert.Equal(0, info.MkwriteCalls);
        Assert.Empty(info.Pagereflist);
        Assert.Equal(0x77UL, info.Vram!.PeekBar(0, 0));
        var v = Violations(p.K, Invariants.WriteNotify);
        Assert.Equal(4, v.Count);
        Assert.All(v, m => Assert.Contains("mkwrite never ran", m));
    }

    [Fact]
    public void TheMmapPrepareRemapActionStillUsesThePreparePageProtection()
    {
        var (p, info, a) = MapFb(FbMmapStyle.IoRemapPrepareWithMkwrite);
        Assert.True(PteWritable(p, a));
        p.Write(a, 1);
        Assert.Equal(0, info.MkwriteCalls);
        Assert.Equal(4, Violations(p.K, Invariants.WriteNotify).Count);
    }
}

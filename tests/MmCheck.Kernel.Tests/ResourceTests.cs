using Linux;

namespace MmCheck.Kernel.Tests;

/// <summary>kernel/resource.c: the iomem tree.</summary>
public class ResourceTests
{
    private const ulong Bar = 0xC000_0000;

    [Fact]
    public void RamIsInTheTreeAroundThePciHole()
    {
        var k = new Linux.Kernel(new KernelConfig { RamBytes = 4UL << 30 });
        string tree = k.ProcIomem();
        Assert.Contains("00100000-bfffffff : System RAM", tree);
        Assert.Contains("100000000-", tree);
        Assert.False(k.PfnValid(Bar >> 12));
        Assert.True(k.PfnValid(0x100));
    }

    [Fact]
    public void RequestingABusyRegionTwiceFails()
    {
        var k = new Linux.Kernel();
        var t = k.CreateKernelThread("probe");
        var r1 = k.Run(t, () => k.RequestMemRegion(Bar, 0x10000, "drv1"));
        Assert.NotNull(r1);
        Assert.True((r1!.Flags & Resource.IORESOURCE_BUSY) != 0);
        var r2 = k.Run(t, () => k.RequestMemRegion(Bar + 0x8000, 0x1000, "drv2"));
        Assert.Null(r2);
        Assert.True(k.Run(t, () => k.ReleaseMemRegion(Bar, 0x10000)));
        Assert.NotNull(k.Run(t, () => k.RequestMemRegion(Bar + 0x8000, 0x1000, "drv2")));
    }

    [Fact]
    public void ReleasingWhatWasNotRequestedIsALogLineNotAWarning()
    {
        // kernel/resource.c:__release_region() only pr_warn()s: no WARN_ON, no backtrace, no taint.
        var k = new Linux.Kernel();
        var t = k.CreateKernelThread("probe");
        Assert.False(k.Run(t, () => k.ReleaseMemRegion(Bar, 0x1000)));
        Assert.Empty(k.Findings);
        Assert.Equal($"Trying to free nonexistent resource <{Bar:x16}-{Bar + 0xfff:x16}>", Assert.Single(k.Dmesg));
        // Released once, the second release finds nothing either.
        Assert.NotNull(k.Run(t, () => k.RequestMemRegion(Bar, 0x1000, "drv")));
        Assert.True(k.Run(t, () => k.ReleaseMemRegion(Bar, 0x1000)));
        Assert.False(k.Run(t, () => k.ReleaseMemRegion(Bar, 0x1000)));
        Assert.Equal(2, k.Dmesg.Count);
        Assert.Empty(k.Findings);
    }

    [Fact]
    public void ExclusiveRegionsAreExclusiveAndPlainBusyOnesAreNotUnlessStrict()
    {
        var k = new Linux.Kernel();
        var t = k.CreateKernelThread("probe");
        k.Run(t, () => k.RequestMemRegion(Bar, 0x1000, "plain"));
        k.Run(t, () => k.RequestMemRegionExclusive(Bar + 0x10000, 0x1000, "excl"));
        Assert.False(k.Run(t, () => k.IomemIsExclusive(Bar)));
        Assert.True(k.Run(t, () => k.IomemIsExclusive(Bar + 0x10000)));
        k.StrictIomemChecks = true;
        Assert.True(k.Run(t, () => k.IomemIsExclusive(Bar)));
        Assert.False(k.Run(t, () => k.IomemIsExclusive(Bar + 0x20000)));
    }

    [Fact]
    public void ClaimingARegionCallsTheRevokeHookOutsideTheResourceLock()
    {
        var k = new Linux.Kernel();
        var t = k.CreateKernelThread("probe");
        Resource? revoked = null;
        k.RevokeIomemHook = r =>
        {
            Assert.False(k.ResourceLock.IsLocked);
            revoked = r;
            return ValueTask.CompletedTask;
        };
        var res = k.Run(t, () => k.RequestMemRegion(Bar, 0x1000, "drv"));
        Assert.Same(res, revoked);
    }
}

using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>Helpers for the device tests: a kernel with devices, and the user-space calls on them.</summary>
internal static class DevicesKit
{
    public const ulong PG = 4096;

    public static Proc Boot(Variants? variants = null, bool ioStrictDevmem = false)
    {
        var k = new Linux.Kernel(new KernelConfig { Variants = variants ?? Variants.Current });
        k.StrictIomemChecks = ioStrictDevmem;
        k.EnsureDevices();
        return new Proc(k, k.CreateProcess("user"));
    }

    public static Variants With(string name, string value)
    {
        var v = Variants.Current.With(name, value, out string? error);
        Assert.True(v is not null, error);
        return v!;
    }

    public static long Open(this Proc p, string path, int flags = O_RDWR) => p.K.Run(p.T, () => p.K.SysOpen(path, flags));

    public static long Ioctl(this Proc p, long fd, uint cmd, ulong arg = 0) => p.K.Run(p.T, () => p.K.SysIoctl(fd, cmd, arg));

    public static long MmapShared(this Proc p, long fd, ulong len, ulong off, ulong hint = 0) =>
        p.Mmap(hint, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);

    /// <summary>Opens /proc/bus/pci for the device, switches it to memory space, maps BAR 0.</summary>
    public static ulong MapBarViaProcfs(this Proc p, PciDev dev, ulong pages)
    {
        long fd = p.Open(Linux.Kernel.ProcBusPciPath(dev));
        Assert.True(fd >= 0);
        Assert.Equal(0, p.Ioctl(fd, Linux.Kernel.PCIIOC_MMAP_IS_MEM));
        long a = p.MmapShared(fd, pages * PG, dev.ResourceStart(0));
        Assert.True(a > 0, $"procfs mmap failed: {Errno.Format(a)}");
        return (ulong)a;
    }

    /// <summary>Opens the vfio device and maps <paramref name="pages"/> of BAR 0.</summary>
    public static (long Fd, ulong Addr) MapVfioBar(this Proc p, VfioPciCoreDevice vdev, ulong pages, ulong hint = 0)
    {
        long fd = p.Open(vdev.Path);
        Assert.True(fd >= 0);
        long a = p.MmapShared(fd, pages * PG, 0, hint);
        Assert.True(a > 0, $"vfio mmap failed: {Errno.Format(a)}");
        return (fd, (ulong)a);
    }

    /// <summary>Leaves of <paramref name="mm"/> that map any page of a BAR.</summary>
    public static List<(ulong Addr, ulong Pfn, int Level)> BarLeaves(Linux.Kernel k, MmStruct mm, PciDev dev, int bar = 0)
    {
        ulong first = dev.BarPfn(bar), last = first + (dev.ResourceLen(bar) >> 12) - 1;
        return [.. k.UserLeaves().Where(l => l.Mm == mm && l.Pfn <= last && l.Pfn + l.Pages - 1 >= first).Select(l => (l.Addr, l.Pfn, l.Level))];
    }

    /// <summary>The invariant violations the model sees now, by name.</summary>
    public static List<string> Violations(Linux.Kernel k, string invariant) =>
        [.. k.CheckInvariants().Where(v => v.Invariant == invariant).Select(v => v.Message)];

    public static bool HasFinding(Linux.Kernel k, string invariant) => k.Findings.Any(f => f.Invariant == invariant);
}

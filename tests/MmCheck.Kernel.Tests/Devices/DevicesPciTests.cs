using Linux;
using static Linux.Mman;
using static MmCheck.Kernel.Tests.DevicesKit;

namespace MmCheck.Kernel.Tests;

/// <summary>A PCI device's BARs mapped through /proc/bus/pci, sysfs resourceN and /dev/mem, and their revocation.</summary>
public class DevicesPciTests
{
    private const ulong BarSize = 64 * 1024;

    [Fact]
    public void TheBarsLiveInTheIomemTreeUnderTheHostBridgeWindow()
    {
        var p = Boot();
        var dev = p.K.PciAddDevice(BarSize, 2 * BarSize);
        var r0 = dev.Resource[0]!;
        Assert.Equal(0xC000_0000UL, r0.Start);
        Assert.Equal("PCI Bus 0000:00", r0.Parent!.Name);
        Assert.Equal(0, (int)(dev.ResourceStart(1) % (2 * BarSize)));
        Assert.False(p.K.PfnValid(dev.BarPfn(0)));
        Assert.Contains("/proc/bus/pci/00/01.0", p.K.DevicePaths);
        Assert.Contains("/sys/bus/pci/devices/0000:00:01.0/resource1", p.K.DevicePaths);
        Assert.Contains("/dev/mem", p.K.DevicePaths);
    }

    [Fact]
    public void ProcfsMmapNeedsMemorySpaceThenInstallsSpecialPtesToTheBar()
    {
        var p = Boot();
        var dev = p.K.PciAddDevice(BarSize);
        long fd = p.Open(Linux.Kernel.ProcBusPciPath(dev));
        // Opening defaults to I/O space, which x86 cannot mmap.
        Assert.Equal(-Errno.EINVAL, p.MmapShared(fd, 4 * PG, dev.ResourceStart(0)));
        ulong a = p.MapBarViaProcfs(dev, 16);
        var vma = p.Mm.MmMt.VmaLookup(a)!;
        var want = VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        Assert.Equal(want, vma.VmFlags & want);
        Assert.Equal(dev.BarPfn(0), vma.VmPgoff);
        for (ulong i = 0; i < 16; i++)
        {
            var pm = p.Pagemap(a + i * PG);
            Assert.True(pm.Present);
            Assert.Equal(dev.BarPfn(0) + i, pm.Pfn);
            Assert.True(p.K.PeekLeaf(p.Mm, a + i * PG, out ulong e, out int level));
            Assert.Equal(1, level);
            Assert.True(PgTable.PteSpecial(new Pte(e)));
        }
        Assert.Equal(p.K.IomemGetMapping(), vma.VmFile!.FMapping);
        p.AssertClean();
    }

    [Fact]
    public void LoadsAndStoresThroughTheMappingReachDeviceMemory()
    {
        var p = Boot();
        var dev = p.K.PciAddDevice(BarSize);
        dev.PokeBar(0, 0x1018, 0x1234_5678_9abc_def0);
        ulong a = p.MapBarViaProcfs(dev, 16);
        Assert.Equal(0x1234_5678_9abc_def0UL, p.Read(a + 0x1018));
        p.Write(a + 0x2020, 0x55aa);
        var probe = p.K.CreateKernelThread("device");
        Assert.Equal(0x55aaUL, p.K.Run(probe, () => dev.MmioRead(0, 0x2020, 8)));
        p.K.Run(probe, () => dev.MmioWrite(0, 0x3000, 4, 0xfeed));
        Assert.Equal(0xfeedUL, p.Read(a + 0x3000, 4));
        p.AssertClean();
    }

    private static (Proc P, PciDev Dev, ulong Proc, ulong Sysfs, ulong DevMem) MapThreeWays(Variants? v)
    {
        var p = Boot(v, ioStrictDevmem: true);
        var dev = p.K.PciAddDevice(BarSize);
        ulong procAddr = p.MapBarViaProcfs(dev, 16);
        long sfd = p.Open(Linux.Kernel.PciSysfsResourcePath(dev, 0));
        long s = p.MmapShared(sfd, 16 * PG, 0);
        Assert.True(s > 0, Errno.Format(s));
        long mfd = p.Open("/dev/mem");
        long m = p.MmapShared(mfd, 16 * PG, dev.ResourceStart(0));
        Assert.True(m > 0, Errno.Format(m));
        Assert.True(p.Pagemap(procAddr).Present && p.Pagemap((ulong)s).Present && p.Pagemap((ulong)m).Present);
        return (p, dev, procAddr, (ulong)s, (ulong)m);
    }

    [Fact]
    public void ClaimingTheBarRevokesDevMemProcfsAndSysfsMappings()
    {
        var (p, dev, procAddr, sysAddr, memAddr) = MapThreeWays(null);
        var probe = p.K.CreateKernelThread("probe");
        Assert.NotNull(p.K.Run(probe, () => p.K.RequestMemRegion(dev.ResourceStart(0), BarSize, "driver")));
        for (ulong i = 0; i < 16; i++)
        {
            Assert.False(p.Pagemap(procAddr + i * PG).Present);
            Assert.False(p.Pagemap(sysAddr + i * PG).Present);
            Assert.False(p.Pagemap(memAddr + i * PG).Present);
        }
        Assert.Empty(BarLeaves(p.K, p.Mm, dev));
        p.AssertClean();
        // The VMAs stay, with nothing to fault in: the next access is SIGBUS.
        Assert.Equal(SIGBUS, p.Load(procAddr).Signal);
        Assert.Equal(SIGBUS, p.Load(memAddr).Signal);
        // New raw mappings of the claimed region are refused.
        long mfd = p.Open("/dev/mem");
        Assert.Equal(-Errno.EPERM, p.MmapShared(mfd, PG, dev.ResourceStart(0)));
    }

    [Fact]
    public void BeforeRevokeMappingsLikeDevmemProcfsAndSysfsMappingsSurviveTheClaim()
    {
        var (p, dev, procAddr, sysAddr, memAddr) = MapThreeWays(With("pci.revoke_mappings", "off"));
        Assert.NotEqual(p.K.IomemGetMapping(), p.Mm.MmMt.VmaLookup(procAddr)!.VmFile!.FMapping);
        var probe = p.K.CreateKernelThread("probe");
        Assert.NotNull(p.K.Run(probe, () => p.K.RequestMemRegion(dev.ResourceStart(0), BarSize, "driver")));
        Assert.False(p.Pagemap(memAddr).Present);
        Assert.True(p.Pagemap(procAddr).Present);
        Assert.True(p.Pagemap(sysAddr).Present);
        Assert.Equal(32, BarLeaves(p.K, p.Mm, dev).Count);
        // One finding per mapping still there, with the pages it maps.
        var v = Violations(p.K, Invariants.RevokedIomemMapped);
        Assert.Equal(2, v.Count);
        Assert.Contains(v, m => m.Contains(Linux.Kernel.ProcBusPciPath(dev)));
        Assert.Contains(v, m => m.Contains(Linux.Kernel.PciSysfsResourcePath(dev, 0)));
        Assert.All(v, m => Assert.Contains("and 15 more page(s)", m));
        // Released, the range may be mapped again: the invariant no longer applies.
        p.K.Run(probe, () => p.K.ReleaseMemRegion(dev.ResourceStart(0), BarSize));
        Assert.Empty(Violations(p.K, Invariants.RevokedIomemMapped));
    }

    [Fact]
    public void WithoutIoStrictDevmemAPlainClaimRevokesNothing()
    {
        var p = Boot();
        var dev = p.K.PciAddDevice(BarSize);
        ulong a = p.MapBarViaProcfs(dev, 4);
        var probe = p.K.CreateKernelThread("probe");
        Assert.NotNull(p.K.Run(probe, () => p.K.RequestMemRegion(dev.ResourceStart(0), BarSize, "driver")));
        Assert.True(p.Pagemap(a).Present);
        p.AssertClean();
    }

    [Fact]
    public void ProcfsRefusesAnExclusivelyClaimedBarSinceV512()
    {
        var p = Boot();
        var dev = p.K.PciAddDevice(BarSize);
        var probe = p.K.CreateKernelThread("probe");
        Assert.Equal(0, p.K.Run(probe, () => p.K.PciRequestRegion(dev, 0, "driver", exclusive: true)));
        long fd = p.Open(Linux.Kernel.ProcBusPciPath(dev));
        Assert.Equal(0, p.Ioctl(fd, Linux.Kernel.PCIIOC_MMAP_IS_MEM));
        Assert.Equal(-Errno.EINVAL, p.MmapShared(fd, 4 * PG, dev.ResourceStart(0)));
        // sysfs always had the check.
        long sfd = p.Open(Linux.Kernel.PciSysfsResourcePath(dev, 0));
        Assert.Equal(-Errno.EINVAL, p.MmapShared(sfd, 4 * PG, 0));
        // /dev/mem: devmem_is_allowed() refuses exclusive regions.
        long mfd = p.Open("/dev/mem");
        Assert.Equal(-Errno.EPERM, p.MmapShared(mfd, 4 * PG, dev.ResourceStart(0)));
        p.AssertClean();
    }

    [Fact]
    public void BeforeObeyIomemRestrictionsProcfsMapsAnExclusivelyClaimedBar()
    {
        var p = Boot(With("proc_bus_pci_mmap.exclusive_check", "off"));
        var dev = p.K.PciAddDevice(BarSize);
        var probe = p.K.CreateKernelThread("probe");
        Assert.Equal(0, p.K.Run(probe, () => p.K.PciRequestRegion(dev, 0, "driver", exclusive: true)));
        ulong a = p.MapBarViaProcfs(dev, 4);
        Assert.True(p.Pagemap(a).Present);
    }

    [Theory]
    [InlineData("mmap_prepare")]
    [InlineData("mmap")]
    public void DevMemMapsBarsButRefusesRam(string style)
    {
        var p = Boot(With("devmem.mmap", style));
        var dev = p.K.PciAddDevice(BarSize);
        long fd = p.Open("/dev/mem");
        Assert.Equal(-Errno.EPERM, p.MmapShared(fd, PG, 0x200_0000));
        long a = p.MmapShared(fd, 4 * PG, dev.ResourceStart(0));
        Assert.True(a > 0, Errno.Format(a));
        var vma = p.Mm.MmMt.VmaLookup((ulong)a)!;
        Assert.True((vma.VmFlags & VmFlags.VM_PFNMAP) != 0);
        Assert.Equal(dev.BarPfn(0) + 3, p.Pagemap((ulong)a + 3 * PG).Pfn);
        dev.PokeBar(0, 8, 77);
        Assert.Equal(77UL, p.Read((ulong)a + 8));
        var (r, value) = p.K.Run(p.T, () => p.K.SysPread(fd, 8, (long)dev.ResourceStart(0) + 8));
        Assert.Equal((8L, 77UL), (r, value));
        p.AssertClean();
    }
}

/// <summary>The device variants: names, values and release presets.</summary>
public class DevicesVariantTests
{
    [Fact]
    public void PresetsPickTheHistoricalDeviceBehaviour()
    {
        var v510 = Variants.Preset("v5.10")!;
        Assert.Equal(Variants.VfioPciFaultStrategy.RemapNoListCheck, v510.VfioPciFault);
        Assert.False(v510.ProcBusPciMmapExclusiveCheck);
        Assert.False(v510.PciRevokeMappings);
        Assert.False(v510.DevmemMmapPrepare);
        Assert.Equal(Variants.VfioPciFaultStrategy.RemapVmaList, Variants.Preset("v6.4")!.VfioPciFault);
        // b7c5e64fecfa, aac6db75a9fc and d71a989cf5d9 all landed in v6.10-rc4: no release ran
        // aac6db75a9fc's single-page handler without the full-VMA pre-fault.
        Assert.Equal(Variants.VfioPciFaultStrategy.InsertFullVma, Variants.Preset("v6.10")!.VfioPciFault);
        Assert.Equal(Variants.VfioPciFaultStrategy.InsertFullVma, Variants.Preset("v6.11")!.VfioPciFault);
        Assert.Equal(Variants.VfioPciFaultStrategy.HugeV612, Variants.Preset("v6.12")!.VfioPciFault);
        // c1d9dac0db16 "vfio/pci: Align huge faults to order" was merged for v6.15-rc6.
        Assert.Equal(Variants.VfioPciFaultStrategy.HugeV612, Variants.Preset("v6.14")!.VfioPciFault);
        Assert.Equal(Variants.VfioPciFaultStrategy.Huge, Variants.Preset("v6.15")!.VfioPciFault);
        Assert.Equal(Variants.VfioPciFaultStrategy.RemapNoListCheck, Variants.Preset("v5.12")!.VfioPciFault);
        Assert.Equal(Variants.VfioPciFaultStrategy.RemapVmaList, Variants.Preset("v5.13")!.VfioPciFault);
        Assert.Equal(Variants.VfioPciFaultStrategy.RemapVmaList, Variants.Preset("v6.9")!.VfioPciFault);
        var v618 = Variants.Preset("v6.18")!;
        Assert.Equal(Variants.VfioPciFaultStrategy.Huge, v618.VfioPciFault);
        Assert.True(v618.PciRevokeMappings && v618.ProcBusPciMmapExclusiveCheck);
        Assert.Contains("vfio_pci.fault=remap_no_list_check", v510.Describe());
        Assert.Contains("pci.revoke_mappings=off", v510.Describe());
        Assert.Empty(Variants.Current.Describe());
    }

    [Fact]
    public void EveryDeviceVariantValueParses()
    {
        foreach (var info in Variants.All.Where(i => i.Name is "vfio_pci.fault" or "proc_bus_pci_mmap.exclusive_check" or "pci.revoke_mappings" or "devmem.mmap"))
        {
            foreach (var value in info.Values)
            {
                var v = Variants.Current.With(info.Name, value, out string? error);
                Assert.True(v is not null, error);
                Assert.Equal(value == info.Values[0], !v!.Describe().Any());
            }
            Assert.Null(Variants.Current.With(info.Name, "nonsense", out string? err));
            Assert.Contains(info.Values[0], err);
        }
    }
}

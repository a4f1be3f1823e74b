using static Linux.PgTable;

namespace Linux;

/// <summary>What a BAR looks like to enumeration: its size (a power of two, at least a page) and type.</summary>
public readonly record struct PciBarSpec(ulong Size, bool Mem64 = false, bool Prefetch = false);

/// <summary>PCI power states (pci_power_t).</summary>
public enum PciPowerState
{
    D0 = 0,
    D1 = 1,
    D2 = 2,
    D3hot = 3,
    D3cold = 4,
}

/// <summary>
/// struct pci_dev: a PCI function with up to six memory BARs in the iomem tree under the host
/// bridge's window, its command register, and its power state. BAR contents live in the model's
/// physical memory (<see cref="Kernel.Mem"/>), so a user store through any mapping of the BAR is
/// what the device reads, and what it writes every mapping sees.
/// </summary>
[KernelSymbol("pci_dev", "include/linux/pci.h")]
public sealed class PciDev
{
    public const int PCI_STD_NUM_BARS = 6;
    public const int PCI_ROM_RESOURCE = 6;
    /// <summary>Config space offset of the command register.</summary>
    public const int PCI_COMMAND = 0x04;
    public const ushort PCI_COMMAND_IO = 0x1;
    public const ushort PCI_COMMAND_MEMORY = 0x2;
    public const ushort PCI_COMMAND_MASTER = 0x4;
    public const ushort PCI_COMMAND_INTX_DISABLE = 0x400;

    // K, Bus, Devfn and the BAR resources are fixed at enumeration.
    public readonly Kernel K;
    public readonly int Bus;
    /// <summary>devfn: slot &lt;&lt; 3 | function.</summary>
    public readonly int Devfn;
    /// <summary>dev->resource[]: BARs 0–5 and the ROM; null where the BAR is not implemented.</summary>
    public readonly Resource?[] Resource = new Resource?[PCI_STD_NUM_BARS + 1];
    /// <summary>The command register as the hardware holds it. vfio writes it with memory_lock
    /// write-held (and at first open); the kernel's config accessors serialise on pci_lock.</summary>
    public ushort Command = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    /// <summary>dev->current_state. Changed by vfio's reset and power paths with memory_lock write-held.</summary>
    public PciPowerState CurrentState = PciPowerState.D0;
    /// <summary>dev->non_mappable_bars (s390-style devices whose BARs user space may not map). Fixed at set-up.</summary>
    public bool NonMappableBars;
    /// <summary>Function resets performed (pci_try_reset_function()); counted with memory_lock write-held.</summary>
    public int Resets;

    internal PciDev(Kernel k, int bus, int devfn)
    {
        K = k;
        Bus = bus;
        Devfn = devfn;
        Name = $"0000:{Bus:x2}:{Slot:x2}.{Func:x}";
    }

    public int Slot => Devfn >> 3;

    public int Func => Devfn & 7;

    /// <summary>pci_name(): "0000:00:01.0".</summary>
    public string Name { get; }

    /// <summary>pci_resource_start().</summary>
    /// <remarks>Context: any; BAR addresses are fixed after enumeration.</remarks>
    [KernelSymbol("pci_resource_start", "include/linux/pci.h")]
    public ulong ResourceStart(int bar) => Resource[bar]?.Start ?? 0;

    /// <summary>pci_resource_len(): 0 for an unimplemented BAR.</summary>
    /// <remarks>Context: any; BAR sizes are fixed after enumeration.</remarks>
    [KernelSymbol("pci_resource_len", "include/linux/pci.h")]
    public ulong ResourceLen(int bar) => Resource[bar] is { } r ? r.Size : 0;

    /// <summary>pci_resource_flags().</summary>
    /// <remarks>Context: any; fixed after enumeration.</remarks>
    [KernelSymbol("pci_resource_flags", "include/linux/pci.h")]
    public ulong ResourceFlags(int bar) => Resource[bar]?.Flags ?? 0;

    /// <summary>The first PFN of a BAR.</summary>
    public ulong BarPfn(int bar) => ResourceStart(bar) >> PAGE_SHIFT;

    /// <summary>
    /// The device itself (or its driver through ioremap) reads a BAR: the value every CPU mapping
    /// of that address sees. A device access is a scheduling point of its own.
    /// </summary>
    public async ValueTask<ulong> MmioRead(int bar, ulong offset, int size)
    {
        ulong pa = ResourceStart(bar) + offset;
        await K.Sched.Point(SchedPointKind.DeviceAccess, ObjId.Word(pa), "mmio_read");
        K.Sched.Access(ObjId.Word(pa), write: false);
        return K.Mem.Load(pa, size);
    }

    /// <summary>The device writes its BAR (a register it updates, memory it fills).</summary>
    public async ValueTask MmioWrite(int bar, ulong offset, int size, ulong value)
    {
        ulong pa = ResourceStart(bar) + offset;
        await K.Sched.Point(SchedPointKind.DeviceAccess, ObjId.Word(pa), "mmio_write");
        K.Sched.Access(ObjId.Word(pa), write: true);
        K.Mem.Store(pa, size, value);
    }

    /// <summary>The BAR contents without a scheduling point (for observers and test setup).</summary>
    public ulong PeekBar(int bar, ulong offset, int size = 8) => K.Mem.Load(ResourceStart(bar) + offset, size);

    /// <summary>Sets BAR contents without a scheduling point (test setup: what the device holds at boot).</summary>
    public void PokeBar(int bar, ulong offset, ulong value, int size = 8) => K.Mem.Store(ResourceStart(bar) + offset, size, value);

    public override string ToString() => Name;
}

// drivers/pci: enumeration as the firmware left it (a host bridge with a 32-bit window in the
// [3 GiB, 4 GiB) hole and a 64-bit window above RAM), BAR requests, and the per-device procfs and
// sysfs nodes. Devices are added at boot, before any task runs.
public sealed partial class Kernel
{
    private Resource? _pciWindow32;
    private Resource? _pciWindow64;
    private ulong _pciNext32;
    private ulong _pciNext64;

    /// <summary>Every PCI function, in the order they were added (the pci_devices list).</summary>
    public readonly List<PciDev> PciDevices = [];

    /// <summary>The host bridge windows: "PCI Bus 0000:00" in iomem.</summary>
    public (Resource Low, Resource? High) PciHostBridgeWindows
    {
        get
        {
            PciHostBridgeInit();
            return (_pciWindow32!, _pciWindow64);
        }
    }

    /// <summary>pci_acpi_scan_root() → the root bus's windows, inserted into iomem_resource.</summary>
    /// <remarks>Context: boot, single-threaded; no locks.</remarks>
    [KernelSymbol("pci_acpi_scan_root", "arch/x86/pci/acpi.c")]
    private void PciHostBridgeInit()
    {
        if (_pciWindow32 is not null)
        {
            return;
        }
        EnsureDevices();
        var low = new Resource("PCI Bus 0000:00", PageAllocator.PciHoleStart, PageAllocator.PciHoleEnd - 1, Resource.IORESOURCE_MEM);
        InsertResourceAtBoot(Iomem, low);
        _pciWindow32 = low;
        _pciNext32 = low.Start;
        const ulong gib64 = 64UL << 30;
        ulong start = Math.Max(gib64, ((Buddy.MaxPfn << PAGE_SHIFT) + gib64 - 1) & ~(gib64 - 1));
        if (start + gib64 - 1 <= Iomem.End)
        {
            var high = new Resource("PCI Bus 0000:00", start, start + gib64 - 1, Resource.IORESOURCE_MEM | Resource.IORESOURCE_PREFETCH);
            InsertResourceAtBoot(Iomem, high);
            _pciWindow64 = high;
            _pciNext64 = high.Start;
        }
    }

    /// <summary>
    /// request_resource() at boot (no task, no contention): inserts <paramref name="n"/> among
    /// <paramref name="root"/>'s children in address order; false on overlap.
    /// </summary>
    /// <remarks>
    /// Context: boot, single-threaded (the kernel holds resource_lock for writing; nothing can race
    /// here).
    /// </remarks>
    [KernelSymbol("request_resource", "kernel/resource.c")]
    private static bool InsertResourceAtBoot(Resource root, Resource n)
    {
        int i = 0;
        for (; i < root.Children.Count; i++)
        {
            var c = root.Children[i];
            if (c.Start > n.End)
            {
                break;
            }
            if (c.End >= n.Start)
            {
                return false;
            }
        }
        root.Children.Insert(i, n);
        n.Parent = root;
        return true;
    }

    /// <summary>
    /// Adds a PCI function on bus 0 (pci_scan_single_device() + pci_assign_unassigned_resources()
    /// + pci_bus_add_device()): each BAR gets a naturally aligned range in the 32-bit window, or
    /// the 64-bit one for 64-bit BARs and BARs too large for the hole; its procfs file and sysfs
    /// resource files appear.
    /// </summary>
    public PciDev PciAddDevice(int slot, int func, params PciBarSpec[] bars)
    {
        PciHostBridgeInit();
        if (bars.Length > PciDev.PCI_STD_NUM_BARS)
        {
            throw new ArgumentException("a PCI function has at most six BARs", nameof(bars));
        }
        var dev = new PciDev(this, 0, (slot << 3) | func);
        for (int i = 0; i < bars.Length; i++)
        {
            var spec = bars[i];
            if (spec.Size == 0)
            {
                continue;
            }
            if (spec.Size < PAGE_SIZE || (spec.Size & (spec.Size - 1)) != 0)
            {
                throw new ArgumentException($"BAR {i}: size {spec.Size:x} is not a power of two of at least a page", nameof(bars));
            }
            ulong flags = Resource.IORESOURCE_MEM | (spec.Prefetch ? Resource.IORESOURCE_PREFETCH : 0);
            bool high = (spec.Mem64 || spec.Size > (256UL << 20)) && _pciWindow64 is not null;
            var window = high ? _pciWindow64! : _pciWindow32!;
            ref ulong next = ref high ? ref _pciNext64 : ref _pciNext32;
            ulong start = (next + spec.Size - 1) & ~(spec.Size - 1);
            if (start + spec.Size - 1 > window.End)
            {
                throw new InvalidOperationException($"BAR {i} of {dev.Name} ({spec.Size:x} bytes) does not fit the host bridge window {window}");
            }
            next = start + spec.Size;
            var res = new Resource(dev.Name, start, start + spec.Size - 1, flags);
            InsertResourceAtBoot(window, res);
            dev.Resource[i] = res;
        }
        PciDevices.Add(dev);
        PciProcAttachDevice(dev);
        PciCreateResourceFiles(dev);
        return dev;
    }

    /// <summary>Adds a PCI function at the next free slot with the given BAR sizes (32-bit, non-prefetchable).</summary>
    public PciDev PciAddDevice(params ulong[] barSizes) =>
        PciAddDevice(PciDevices.Count + 1, 0, [.. barSizes.Select(s => new PciBarSpec(s))]);

    /// <summary>
    /// __pci_request_region() for a memory BAR: __request_mem_region() of the whole BAR (a claim
    /// that revokes raw mappings of it, revoke_iomem()). 0 or -EBUSY.
    /// </summary>
    /// <remarks>
    /// Context: no mm locks held. Takes resource_lock for writing (__request_region()); claiming a
    /// range may revoke /dev/mem mappings of it. May sleep.
    /// </remarks>
    [KernelSymbol("__pci_request_region", "drivers/pci/pci.c")]
    public async ValueTask<int> PciRequestRegion(PciDev pdev, int bar, string name, bool exclusive = false)
    {
        if (pdev.ResourceLen(bar) == 0)
        {
            return 0;
        }
        var r = await __RequestRegion(Iomem, pdev.ResourceStart(bar), pdev.ResourceLen(bar), name,
            exclusive ? Resource.IORESOURCE_EXCLUSIVE : 0);
        return r is null ? -Errno.EBUSY : 0;
    }

    /// <summary>pci_release_region(): releases a BAR's claim.</summary>
    /// <remarks>Context: no mm locks held. Takes resource_lock for writing.</remarks>
    [KernelSymbol("pci_release_region", "drivers/pci/pci.c")]
    public async ValueTask PciReleaseRegion(PciDev pdev, int bar)
    {
        if (pdev.ResourceLen(bar) != 0)
        {
            await ReleaseMemRegion(pdev.ResourceStart(bar), pdev.ResourceLen(bar));
        }
    }

    /// <summary>pci_request_selected_regions(): the BARs in <paramref name="bars"/> (a bit mask), all or none.</summary>
    /// <remarks>Context: no mm locks held; as __pci_request_region() per BAR. May sleep.</remarks>
    [KernelSymbol("pci_request_selected_regions", "drivers/pci/pci.c")]
    public async ValueTask<int> PciRequestSelectedRegions(PciDev pdev, int bars, string name)
    {
        for (int i = 0; i < PciDev.PCI_STD_NUM_BARS; i++)
        {
            if ((bars & (1 << i)) == 0)
            {
                continue;
            }
            if (await PciRequestRegion(pdev, i, name) != 0)
            {
                for (int j = 0; j < i; j++)
                {
                    if ((bars & (1 << j)) != 0)
                    {
                        await PciReleaseRegion(pdev, j);
                    }
                }
                return -Errno.EBUSY;
            }
        }
        return 0;
    }

    /// <summary>pci_release_selected_regions().</summary>
    /// <remarks>Context: no mm locks held. Takes resource_lock for writing per BAR.</remarks>
    [KernelSymbol("pci_release_selected_regions", "drivers/pci/pci.c")]
    public async ValueTask PciReleaseSelectedRegions(PciDev pdev, int bars)
    {
        for (int i = 0; i < PciDev.PCI_STD_NUM_BARS; i++)
        {
            if ((bars & (1 << i)) != 0)
            {
                await PciReleaseRegion(pdev, i);
            }
        }
    }
}

using System.Globalization;
using Linux;

namespace MmCheck.Litmus.Binding;

/// <summary>
/// A kind of device a scenario can declare in its init block (<c>device G = pci(bar0 = 16 pages);</c>):
/// its named arguments, the members a scenario reads (<c>G.bar0</c>), and how to build it on a kernel.
/// </summary>
public sealed record DeviceKind(
    string Name,
    IReadOnlyList<string> Params,
    IReadOnlyList<string> Members,
    string Doc,
    Func<Kernel, string, IReadOnlyDictionary<string, LitValue>, object> Create,
    Func<object, string, LitValue> Member)
{
    /// <summary>Checks the arguments' values before anything is built: (argument, message) for each
    /// problem; an empty argument name means the declaration as a whole (a missing argument).</summary>
    public Func<IReadOnlyDictionary<string, LitValue>, IEnumerable<(string Arg, string Message)>>? Validate { get; init; }

    /// <summary>The kernel symbol the declaration stands for (what its Create calls).</summary>
    public string KernelSymbol { get; init; } = "";
}

/// <summary>The device kinds, one entry each; like <see cref="VerbTable"/>, the only place the
/// scenario layer reaches device models.</summary>
public static class DeviceTable
{
    private const ulong PageSize = 4096;

    /// <summary>Largest BAR a scenario may declare (the model's 64-bit host bridge window is 64 GiB).</summary>
    public const ulong MaxBar = 16UL << 30;

    private static readonly string[] s_bars = ["bar0", "bar1", "bar2", "bar3", "bar4", "bar5"];

    private static readonly string[] s_pciParams = [.. s_bars, "slot", "func", "mem64", "prefetch"];

    private static readonly string[] s_fbStyles = ["defio", "defio_pfn", "io_remap", "io_remap_prepare"];

    private static readonly List<DeviceKind> s_kinds = [.. BuildKinds()];

    public static IReadOnlyList<DeviceKind> All => s_kinds;

    public static DeviceKind? Find(string name) => s_kinds.FirstOrDefault(k => k.Name == name);

    private static IEnumerable<DeviceKind> BuildKinds()
    {
        yield return new DeviceKind("pci",
            s_pciParams,
            s_bars,
            "a PCI function on bus 0 with memory BARs (bar0 = SIZE, …, a power of two of at least a page; " +
            "slot defaults to the next free one from 1, func to 0; mem64 = 1 and prefetch = 1 mark every BAR so). " +
            "Its files: /proc/bus/pci/00/SS.F (mmap offset = the BAR's address, after ioctl PCIIOC_MMAP_IS_MEM) and " +
            "/sys/bus/pci/devices/0000:00:SS.F/resourceN (offset 0). Members: barN = the BAR's physical address",
            (k, _, a) => AddPciDevice(k, a),
            (o, m) => BarMember((PciDev)o, m))
        {
            Validate = ValidatePci,
            KernelSymbol = "pci_scan_single_device + pci_bus_add_device (drivers/pci/probe.c, bus.c)",
        };

        yield return new DeviceKind("vfio_pci",
            s_pciParams,
            [.. s_bars, .. s_bars.Select(b => b + "_offset"), "config_offset", "minor"],
            "a PCI function (arguments as for pci) bound to vfio-pci: /dev/vfio/devices/vfioN, N = minor in " +
            "declaration order from 0. Members: barN = the BAR's physical address, barN_offset = the device fd's " +
            "file offset of BAR N (for mmap and pread/pwrite), config_offset = the config-space region's offset",
            (k, _, a) => k.VfioPciBind(AddPciDevice(k, a)),
            VfioMember)
        {
            Validate = ValidatePci,
            KernelSymbol = "vfio_pci_core_register_device (drivers/vfio/pci/vfio_pci_core.c)",
        };

        yield return new DeviceKind("fb",
            ["len", "mmap"],
            ["smem_start", "node"],
            "a framebuffer of len bytes: /dev/fbN, N = node in declaration order from 0. mmap = \"defio\" " +
            "(vmalloc pages, fbdev deferred I/O through ->page_mkwrite; the default), \"defio_pfn\" (VRAM, deferred " +
            "I/O through ->pfn_mkwrite, fault-time vmf_insert_pfn), \"io_remap\" (VRAM, io_remap_pfn_range() in " +
            "->mmap under a dirty-tracking ->pfn_mkwrite) or \"io_remap_prepare\" (the same through ->mmap_prepare). " +
            "VRAM is BAR 0 of a PCI function of its own. Members: smem_start = the VRAM's physical address (0 for defio)",
            (k, _, a) => AddFramebuffer(k, a),
            FbMember)
        {
            Validate = ValidateFb,
            KernelSymbol = "register_framebuffer + fb_deferred_io_init (drivers/video/fbdev/core)",
        };
    }

    // ---- pci and vfio_pci ----

    private static PciDev AddPciDevice(Kernel k, IReadOnlyDictionary<string, LitValue> a)
    {
        bool mem64 = a.TryGetValue("mem64", out var m) && m.Number != 0;
        bool prefetch = a.TryGetValue("prefetch", out var p) && p.Number != 0;
        int last = -1;
        for (int i = 0; i < s_bars.Length; i++)
        {
            if (a.ContainsKey(s_bars[i]))
            {
                last = i;
            }
        }
        var bars = new PciBarSpec[last + 1];
        for (int i = 0; i <= last; i++)
        {
            bars[i] = a.TryGetValue(s_bars[i], out var size) ? new PciBarSpec(size.Unsigned, mem64, prefetch) : new PciBarSpec(0);
        }
        int func = a.TryGetValue("func", out var f) ? (int)f.Number : 0;
        int slot = a.TryGetValue("slot", out var s) ? (int)s.Number : FreeSlot(k);
        if (k.PciDevices.Any(d => d.Slot == slot && d.Func == func))
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"PCI slot {slot:x2}.{func} is taken by an earlier device"));
        }
        return k.PciAddDevice(slot, func, bars);
    }

    /// <summary>The lowest slot from 1 with no function yet (slot 0 is left to the host bridge).</summary>
    private static int FreeSlot(Kernel k)
    {
        int slot = 1;
        while (k.PciDevices.Any(d => d.Slot == slot))
        {
            slot++;
        }
        return slot;
    }

    private static IEnumerable<(string, string)> ValidatePci(IReadOnlyDictionary<string, LitValue> a)
    {
        foreach (var (name, v) in a)
        {
            if (v.Kind != ValueKind.Number)
            {
                yield return (name, $"'{name}' is a number, not {v}");
                continue;
            }
            switch (name)
            {
                case "slot" when v.Number is < 0 or > 31:
                    yield return (name, $"slot must be 0 to 31, not {v.Number}");
                    break;
                case "func" when v.Number is < 0 or > 7:
                    yield return (name, $"func must be 0 to 7, not {v.Number}");
                    break;
                case "mem64" or "prefetch" when v.Number is not (0 or 1):
                    yield return (name, $"{name} is 0 or 1, not {v.Number}");
                    break;
                default:
                    if (name.StartsWith("bar", StringComparison.Ordinal) &&
                        (v.Unsigned < PageSize || (v.Unsigned & (v.Unsigned - 1)) != 0 || v.Unsigned > MaxBar))
                    {
                        yield return (name, $"a BAR's size is a power of two from 1 page to 16 GiB, not {v}");
                    }
                    break;
            }
        }
    }

    private static LitValue BarMember(PciDev dev, string member) =>
        Array.IndexOf(s_bars, member) is var i and >= 0 ? LitValue.Of(dev.ResourceStart(i)) : LitValue.None;

    private static LitValue VfioMember(object o, string member)
    {
        var vdev = (VfioPciCoreDevice)o;
        if (member == "config_offset")
        {
            return LitValue.Of(VfioPciCoreDevice.IndexToOffset(VfioPciCoreDevice.VFIO_PCI_CONFIG_REGION_INDEX));
        }
        if (member == "minor")
        {
            return LitValue.Of(vdev.Minor);
        }
        if (member.EndsWith("_offset", StringComparison.Ordinal))
        {
            return LitValue.Of(VfioPciCoreDevice.IndexToOffset(Array.IndexOf(s_bars, member[..^"_offset".Length])));
        }
        return BarMember(vdev.Pdev, member);
    }

    // ---- fb ----

    private static FbInfo AddFramebuffer(Kernel k, IReadOnlyDictionary<string, LitValue> a)
    {
        ulong len = a["len"].Unsigned;
        string style = a.TryGetValue("mmap", out var m) ? m.Text! : "defio";
        var s = style switch
        {
            "defio_pfn" => FbMmapStyle.DeferredIoPfn,
            "io_remap" => FbMmapStyle.IoRemapWithMkwrite,
            "io_remap_prepare" => FbMmapStyle.IoRemapPrepareWithMkwrite,
            _ => FbMmapStyle.DeferredIo,
        };
        PciDev? vram = null;
        if (s != FbMmapStyle.DeferredIo)
        {
            // VRAM: a prefetchable BAR of the next power of two that holds the framebuffer.
            ulong bar = PageSize;
            while (bar < len)
            {
                bar <<= 1;
            }
            vram = k.PciAddDevice(FreeSlot(k), 0, new PciBarSpec(bar, Mem64: false, Prefetch: true));
        }
        return k.FbRegister(s, len, vram);
    }

    private static IEnumerable<(string, string)> ValidateFb(IReadOnlyDictionary<string, LitValue> a)
    {
        if (!a.TryGetValue("len", out var len))
        {
            yield return ("", "fb needs its size: fb(len = 16 pages)");
        }
        else if (len.Kind != ValueKind.Number || len.Number <= 0 || len.Unsigned > (256UL << 20))
        {
            yield return ("len", $"len is a size from 1 byte to 256 MiB, not {len}");
        }
        if (a.TryGetValue("mmap", out var m) && (m.Kind != ValueKind.String || !s_fbStyles.Contains(m.Text)))
        {
            yield return ("mmap", "mmap is one of " + string.Join(", ", s_fbStyles.Select(x => "\"" + x + "\"")) + $", not {m}");
        }
    }

    private static LitValue FbMember(object o, string member)
    {
        var info = (FbInfo)o;
        return member switch
        {
            "node" => LitValue.Of(info.Node),
            _ => LitValue.Of(info.Vram is null ? 0UL : info.Pfns[0] << 12),
        };
    }

    /// <summary>
    /// Builds the declared devices, in order, on a scratch kernel of the scenario's configuration, so
    /// that what only the whole set decides (a slot given twice, BARs that overflow the host bridge
    /// windows) is reported at bind time instead of failing a run. Returns the index of each
    /// declaration that cannot be built, with the reason.
    /// </summary>
    public static IReadOnlyList<(int Index, string Message)> CheckBuild(KernelConfig config,
        IReadOnlyList<(DeviceKind Kind, string Name, IReadOnlyDictionary<string, LitValue> Args)> devices)
    {
        var errors = new List<(int, string)>();
        if (devices.Count == 0)
        {
            return errors;
        }
        var k = new Kernel(config);
        for (int i = 0; i < devices.Count; i++)
        {
            var (kind, name, args) = devices[i];
            try
            {
                kind.Create(k, name, args);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                errors.Add((i, e.Message));
            }
        }
        return errors;
    }
}

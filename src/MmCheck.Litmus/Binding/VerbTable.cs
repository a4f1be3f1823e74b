using Linux;
using MmCheck.Litmus.Runtime;
using static Linux.Mman;

namespace MmCheck.Litmus.Binding;

/// <summary>The kind of value a verb's parameter takes.</summary>
public enum ParamKind
{
    Number,
    String,
    /// <summary>A device the init block declared, by its name (<c>G</c>).</summary>
    Device,
}

/// <summary>
/// A scenario verb: a syscall or kernel entry point by its kernel name, with its parameters and
/// the call into the model. Adding a verb is adding one entry to <see cref="VerbTable"/>.
/// </summary>
public sealed record VerbDef(
    string Name,
    string KernelSymbol,
    IReadOnlyList<(string Name, ParamKind Kind)> Params,
    int Required,
    string Doc,
    Func<VerbContext, LitValue[], ValueTask<LitValue>> Invoke)
{
    /// <summary>Whether a thread without a process (a kernel thread) may call it.</summary>
    public bool NeedsProcess { get; init; } = true;

    /// <summary>The device kinds its device parameters accept (null: any).</summary>
    public IReadOnlyList<string>? DeviceKinds { get; init; }

    public string Signature =>
        Name + "(" + string.Join(", ", Params.Select((p, i) => i < Required ? p.Name : "[" + p.Name + "]")) + ")";
}

/// <summary>
/// The one table binding scenario verbs to the kernel model. Each entry names the kernel function
/// it reaches and converts arguments and results; nothing else in the scenario layer calls the kernel.
/// </summary>
public static class VerbTable
{
    private static (string, ParamKind) N(string name) => (name, ParamKind.Number);

    private static (string, ParamKind) S(string name) => (name, ParamKind.String);

    private static (string, ParamKind) D(string name) => (name, ParamKind.Device);

    private static readonly string[] s_pciKinds = ["pci", "vfio_pci"];

    private static readonly string[] s_vfioKinds = ["vfio_pci"];

    private static readonly string[] s_fbKinds = ["fb"];

    private static LitValue Ret(long r) => LitValue.Of(r);

    private static LitValue Access(UserAccessResult r) => r.Ok ? LitValue.Of(r.Value) : LitValue.Signal(r.Signal);

    private static int Size(LitValue[] a, int i, int dflt) => a.Length > i ? (int)a[i].Number : dflt;

    private static readonly VerbDef[] s_verbs =
    [
        new("mmap", "mmap (arch/x86/kernel/sys_x86_64.c)", [N("addr"), N("length"), N("prot"), N("flags"), N("fd"), N("offset")], 6,
            "map memory; returns the address or -errno",
            async (c, a) => Ret(await c.K.SysMmap(a[0].Unsigned, a[1].Unsigned, (int)a[2].Number, (int)a[3].Number, a[4].Number, a[5].Unsigned))),
        new("munmap", "munmap (mm/mmap.c)", [N("addr"), N("length")], 2, "unmap a range",
            async (c, a) => Ret(await c.K.SysMunmap(a[0].Unsigned, a[1].Unsigned))),
        new("mprotect", "mprotect (mm/mprotect.c)", [N("addr"), N("length"), N("prot")], 3, "change access",
            async (c, a) => Ret(await c.K.SysMprotect(a[0].Unsigned, a[1].Unsigned, (int)a[2].Number))),
        new("mremap", "mremap (mm/mremap.c)", [N("old_addr"), N("old_len"), N("new_len"), N("flags"), N("new_addr")], 4,
            "resize or move a mapping; returns the address or -errno",
            async (c, a) => Ret(await c.K.SysMremap(a[0].Unsigned, a[1].Unsigned, a[2].Unsigned, (int)a[3].Number, a.Length > 4 ? a[4].Unsigned : 0))),
        new("madvise", "madvise (mm/madvise.c)", [N("addr"), N("length"), N("advice")], 3, "give advice about a range",
            async (c, a) => Ret(await c.K.SysMadvise(a[0].Unsigned, a[1].Unsigned, (int)a[2].Number))),
        new("memfd_create", "memfd_create (mm/memfd.c)", [S("name"), N("flags")], 2, "create an anonymous tmpfs file; returns the fd",
            async (c, a) => Ret(await c.K.SysMemfdCreate(a[0].Text!, (uint)a[1].Number))),
        new("ftruncate", "ftruncate (fs/open.c)", [N("fd"), N("length")], 2, "set a file's size",
            async (c, a) => Ret(await c.K.SysFtruncate(a[0].Number, a[1].Number))),
        new("close", "close (fs/open.c)", [N("fd")], 1, "close a file descriptor",
            async (c, a) => Ret(await c.K.SysClose(a[0].Number))),
        new("fork", "fork (kernel/fork.c)", [], 0, "create a child process; the target register names it",
            Fork),
        new("exit", "exit (kernel/exit.c)", [], 0, "the task exits; its thread ends here",
            async (c, a) =>
            {
                await c.K.SysExit();
                c.Thread.Exited = true;
                return LitValue.None;
            }),
        new("load", "a user-mode load (arch/x86/mm/fault.c on a fault)", [N("addr"), N("size")], 1,
            "read 1, 2, 4 or 8 bytes (default 8); yields the value or the signal",
            async (c, a) => Access(await c.K.UserLoad(a[0].Unsigned, Size(a, 1, 8)))),
        new("store", "a user-mode store (arch/x86/mm/fault.c on a fault)", [N("addr"), N("value"), N("size")], 2,
            "write 1, 2, 4 or 8 bytes (default 8); yields 0 or the signal",
            async (c, a) => Access(await c.K.UserStore(a[0].Unsigned, Size(a, 2, 8), a[1].Unsigned))),
        new("pin_user_pages_fast", "pin_user_pages_fast (mm/gup.c)", [N("addr"), N("nr_pages"), N("gup_flags")], 3,
            "pin pages (FOLL_PIN); returns how many were pinned",
            PinUserPagesFast),
        new("unpin_user_pages", "unpin_user_page (mm/gup.c)", [N("addr"), N("nr_pages")], 2,
            "unpin pages this thread pinned at addr",
            UnpinUserPages),
        new("request_mem_region", "request_mem_region (kernel/resource.c)", [N("start"), N("n"), S("name")], 3,
            "claim a busy iomem region (revoking user mappings); returns start, or 0 on conflict",
            async (c, a) => (await c.K.RequestMemRegion(a[0].Unsigned, a[1].Unsigned, a[2].Text!)) is { } r ? LitValue.Of(r.Start) : LitValue.Of(0))
        {
            NeedsProcess = false,
        },
        new("request_mem_region_exclusive", "request_mem_region_exclusive (kernel/resource.c)", [N("start"), N("n"), S("name")], 3,
            "claim an exclusive iomem region; returns start, or 0 on conflict",
            async (c, a) => (await c.K.RequestMemRegionExclusive(a[0].Unsigned, a[1].Unsigned, a[2].Text!)) is { } r ? LitValue.Of(r.Start) : LitValue.Of(0))
        {
            NeedsProcess = false,
        },
        new("release_mem_region", "release_mem_region (kernel/resource.c)", [N("start"), N("n")], 2,
            "release a claimed region; returns 1 if it was found",
            async (c, a) => LitValue.Of(await c.K.ReleaseMemRegion(a[0].Unsigned, a[1].Unsigned) ? 1 : 0))
        {
            NeedsProcess = false,
        },

        // ---- device files: open, ioctl, pread, pwrite (fs/open.c, fs/ioctl.c, fs/read_write.c) ----
        new("open", "openat (fs/open.c)", [S("path"), N("flags")], 2,
            "open a device file (/dev/mem, /proc/bus/pci/00/SS.F, /sys/bus/pci/devices/…/resourceN, /dev/vfio/devices/vfioN, /dev/fbN); returns the fd or -errno",
            async (c, a) => Ret(await c.K.SysOpen(a[0].Text!, (int)a[1].Number))),
        new("ioctl", "ioctl (fs/ioctl.c)", [N("fd"), N("cmd"), N("arg")], 2,
            "a device ioctl (PCIIOC_MMAP_IS_MEM, VFIO_DEVICE_RESET, VFIO_DEVICE_FEATURE with the flags word as arg); returns its result or -errno",
            async (c, a) => Ret(await c.K.SysIoctl(a[0].Number, (uint)a[1].Number, a.Length > 2 ? a[2].Unsigned : 0))),
        new("pread", "pread64 (fs/read_write.c)", [N("fd"), N("offset"), N("size")], 2,
            "read 1, 2, 4 or 8 bytes (default 8) at a file offset; yields the value read, or -errno",
            PRead),
        new("pwrite", "pwrite64 (fs/read_write.c)", [N("fd"), N("value"), N("offset"), N("size")], 3,
            "write 1, 2, 4 or 8 bytes (default 8) at a file offset; returns the bytes written or -errno",
            async (c, a) => Ret(await c.K.SysPwrite(a[0].Number, a[1].Unsigned, Size(a, 3, 8), a[2].Number))),

        // ---- vfio-pci from user space (a VMM's calls on the device fd) ----
        new("vfio_memory_disable", "pwrite64 of PCI_COMMAND → vfio_basic_config_write (drivers/vfio/pci/vfio_pci_config.c)", [N("fd")], 1,
            "clear PCI_COMMAND_MEMORY through the device fd: revoke the BAR mappings, later faults get SIGBUS; returns 2 or -errno",
            async (c, a) => Ret(await c.K.VfioMemoryDisable(a[0].Number))),
        new("vfio_memory_enable", "pwrite64 of PCI_COMMAND → vfio_basic_config_write (drivers/vfio/pci/vfio_pci_config.c)", [N("fd")], 1,
            "set PCI_COMMAND_MEMORY through the device fd: faults may map the BARs again; returns 2 or -errno",
            async (c, a) => Ret(await c.K.VfioMemoryEnable(a[0].Number))),
        new("vfio_device_reset", "ioctl VFIO_DEVICE_RESET → vfio_pci_ioctl_reset (drivers/vfio/pci/vfio_pci_core.c)", [N("fd")], 1,
            "reset the function: revoke the BAR mappings under memory_lock, reset, allow faults again; returns 0 or -errno",
            async (c, a) => Ret(await c.K.VfioDeviceReset(a[0].Number))),
        new("vfio_low_power_entry", "ioctl VFIO_DEVICE_FEATURE(LOW_POWER_ENTRY) → vfio_pci_runtime_pm_entry (drivers/vfio/pci/vfio_pci_core.c)", [N("fd")], 1,
            "enter low power: revoke the BAR mappings, faults get SIGBUS until exit; returns 0 or -errno",
            async (c, a) => Ret(await c.K.VfioLowPowerEntry(a[0].Number))),
        new("vfio_low_power_exit", "ioctl VFIO_DEVICE_FEATURE(LOW_POWER_EXIT) → vfio_pci_runtime_pm_exit (drivers/vfio/pci/vfio_pci_core.c)", [N("fd")], 1,
            "leave low power: faults may map the BARs again; returns 0 or -errno",
            async (c, a) => Ret(await c.K.VfioLowPowerExit(a[0].Number))),
        new("vfio_iommu_map_dma", "VFIO_IOMMU_MAP_DMA → vfio_pin_pages_remote → vaddr_get_pfns (drivers/vfio/vfio_iommu_type1.c)",
            [N("vaddr"), N("npages"), N("write")], 2,
            "resolve npages of user memory for DMA as type1 does: pin_user_pages_remote(), and for a VM_PFNMAP range " +
            "(another device's BAR) fixup_user_fault() + follow_pfnmap under the mmap read lock; returns the pages or -errno",
            async (c, a) => Ret((await c.K.VfioIommuMapDma(a[0].Unsigned, a[1].Number, a.Length <= 2 || a[2].Number != 0)).Ret)),

        // ---- driver-side actions (kernel threads), on a declared device ----
        new("pci_request_region", "__pci_request_region (drivers/pci/pci.c)", [D("dev"), N("bar"), S("name")], 3,
            "a driver claims BAR bar of the device (__request_mem_region(), which revokes raw mappings under CONFIG_IO_STRICT_DEVMEM); returns 0 or -EBUSY",
            async (c, a) => Ret(await c.K.PciRequestRegion(PciOf(c, a[0]), (int)a[1].Number, a[2].Text!)))
        {
            NeedsProcess = false,
            DeviceKinds = s_pciKinds,
        },
        new("pci_release_region", "pci_release_region (drivers/pci/pci.c)", [D("dev"), N("bar")], 2,
            "a driver releases BAR bar of the device; returns 0",
            async (c, a) =>
            {
                await c.K.PciReleaseRegion(PciOf(c, a[0]), (int)a[1].Number);
                return LitValue.Of(0);
            })
        {
            NeedsProcess = false,
            DeviceKinds = s_pciKinds,
        },
        new("vfio_basic_config_write", "vfio_basic_config_write (drivers/vfio/pci/vfio_pci_config.c)", [D("dev"), N("command")], 2,
            "write the virtual PCI_COMMAND register of a vfio_pci device (clearing PCI_COMMAND_MEMORY revokes its BAR mappings); returns 0",
            async (c, a) =>
            {
                await c.K.VfioPciWriteCommand(VfioOf(c, a[0]), (ushort)a[1].Number);
                return LitValue.Of(0);
            })
        {
            NeedsProcess = false,
            DeviceKinds = s_vfioKinds,
        },
        new("vfio_pci_ioctl_reset", "vfio_pci_ioctl_reset (drivers/vfio/pci/vfio_pci_core.c)", [D("dev")], 1,
            "reset a vfio_pci device: zap its BAR mappings and take memory_lock for write around the reset; returns 0 or -errno",
            async (c, a) => Ret(await c.K.VfioPciIoctlReset(VfioOf(c, a[0]))))
        {
            NeedsProcess = false,
            DeviceKinds = s_vfioKinds,
        },
        new("vfio_pci_runtime_pm_entry", "vfio_pci_runtime_pm_entry (drivers/vfio/pci/vfio_pci_core.c)", [D("dev")], 1,
            "put a vfio_pci device in low power: revoke its BAR mappings, faults get SIGBUS; returns 0 or -errno",
            async (c, a) => Ret(await c.K.VfioPciRuntimePmEntry(VfioOf(c, a[0]))))
        {
            NeedsProcess = false,
            DeviceKinds = s_vfioKinds,
        },
        new("vfio_pci_runtime_pm_exit", "vfio_pci_runtime_pm_exit (drivers/vfio/pci/vfio_pci_core.c)", [D("dev")], 1,
            "bring a vfio_pci device out of low power; returns 0",
            async (c, a) =>
            {
                await c.K.VfioPciRuntimePmExit(VfioOf(c, a[0]));
                return LitValue.Of(0);
            })
        {
            NeedsProcess = false,
            DeviceKinds = s_vfioKinds,
        },
        new("fb_deferred_io_work", "fb_deferred_io_work (drivers/video/fbdev/core/fb_defio.c)", [D("dev")], 1,
            "the fbdev deferred-I/O work item: write-protect every dirty page's mappings and hand the list to the driver; returns the pages flushed",
            async (c, a) =>
            {
                var info = (FbInfo)c.Runtime.Devices[a[0].Text!];
                await c.K.FbDeferredIoWork(info);
                return LitValue.Of(info.Flushed[^1].Count);
            })
        {
            NeedsProcess = false,
            DeviceKinds = s_fbKinds,
        },
    ];

    private static readonly Dictionary<string, VerbDef> s_byName = s_verbs.ToDictionary(v => v.Name);

    public static IReadOnlyCollection<VerbDef> All => s_verbs;

    public static VerbDef? Find(string name) => s_byName.GetValueOrDefault(name);

    /// <summary>The PCI function of a pci or vfio_pci device argument.</summary>
    private static PciDev PciOf(VerbContext c, LitValue device) => c.Runtime.Devices[device.Text!] switch
    {
        VfioPciCoreDevice v => v.Pdev,
        var o => (PciDev)o,
    };

    private static VfioPciCoreDevice VfioOf(VerbContext c, LitValue device) => (VfioPciCoreDevice)c.Runtime.Devices[device.Text!];

    private static async ValueTask<LitValue> PRead(VerbContext c, LitValue[] a)
    {
        var (ret, value) = await c.K.SysPread(a[0].Number, Size(a, 2, 8), a[1].Number);
        return ret < 0 ? LitValue.Of(ret) : LitValue.Of(value);
    }

    private static async ValueTask<LitValue> Fork(VerbContext c, LitValue[] a)
    {
        var (child, ret) = await c.K.SysFork();
        if (child is null)
        {
            return LitValue.Of(ret);
        }
        string name = c.Target ?? $"{c.Thread.Name}.child{child.Pid}";
        var parentEnv = c.Thread.Env.Snapshot();
        c.Runtime.Processes[name] = new ProcessRuntime(name, child, parentEnv);
        return LitValue.Process(name, child.Pid);
    }

    private static async ValueTask<LitValue> PinUserPagesFast(VerbContext c, LitValue[] a)
    {
        var pages = new List<Page>();
        long r = await c.K.PinUserPagesFast(a[0].Unsigned, a[1].Number, (Foll)(uint)a[2].Number, pages);
        for (int i = 0; i < pages.Count; i++)
        {
            c.Thread.Pinned.Add((a[0].Unsigned + ((ulong)i << 12), pages[i]));
        }
        return LitValue.Of(r);
    }

    private static ValueTask<LitValue> UnpinUserPages(VerbContext c, LitValue[] a)
    {
        int n = 0;
        for (long i = 0; i < a[1].Number; i++)
        {
            ulong addr = a[0].Unsigned + ((ulong)i << 12);
            int at = c.Thread.Pinned.FindIndex(p => p.Addr == addr);
            if (at >= 0)
            {
                c.K.UnpinUserPage(c.Thread.Pinned[at].Page);
                c.Thread.Pinned.RemoveAt(at);
                n++;
            }
        }
        return ValueTask.FromResult(LitValue.Of(n));
    }

    /// <summary>Named constants: the uapi flags, FOLL_*, errno names, signals, PAGE_SIZE.</summary>
    public static IReadOnlyDictionary<string, LitValue> Constants { get; } = BuildConstants();

    private static Dictionary<string, LitValue> BuildConstants()
    {
        var d = new Dictionary<string, LitValue>();
        foreach (var (name, v) in Mman.All)
        {
            d[name] = name is "SIGSEGV" or "SIGBUS" or "SIGKILL" ? LitValue.Signal((int)v) : LitValue.Of(v);
        }
        foreach (var (name, v) in Errno.All)
        {
            d[name] = LitValue.Of(v);
        }
        foreach (Foll f in Enum.GetValues<Foll>())
        {
            if (f != Foll.None)
            {
                d[f.ToString()] = LitValue.Of((long)f);
            }
        }
        d["PAGE_SIZE"] = LitValue.Of(4096L);
        // Device ioctls and registers (include/uapi/linux/pci.h, pci_regs.h, vfio.h).
        d["PCIIOC_CONTROLLER"] = LitValue.Of((long)Kernel.PCIIOC_CONTROLLER);
        d["PCIIOC_MMAP_IS_IO"] = LitValue.Of((long)Kernel.PCIIOC_MMAP_IS_IO);
        d["PCIIOC_MMAP_IS_MEM"] = LitValue.Of((long)Kernel.PCIIOC_MMAP_IS_MEM);
        d["PCIIOC_WRITE_COMBINE"] = LitValue.Of((long)Kernel.PCIIOC_WRITE_COMBINE);
        d["PCI_COMMAND"] = LitValue.Of((long)PciDev.PCI_COMMAND);
        d["PCI_COMMAND_IO"] = LitValue.Of((long)PciDev.PCI_COMMAND_IO);
        d["PCI_COMMAND_MEMORY"] = LitValue.Of((long)PciDev.PCI_COMMAND_MEMORY);
        d["PCI_COMMAND_MASTER"] = LitValue.Of((long)PciDev.PCI_COMMAND_MASTER);
        d["PCI_COMMAND_INTX_DISABLE"] = LitValue.Of((long)PciDev.PCI_COMMAND_INTX_DISABLE);
        d["VFIO_DEVICE_RESET"] = LitValue.Of((long)Kernel.VFIO_DEVICE_RESET);
        d["VFIO_DEVICE_FEATURE"] = LitValue.Of((long)Kernel.VFIO_DEVICE_FEATURE);
        d["VFIO_DEVICE_FEATURE_SET"] = LitValue.Of((long)Kernel.VFIO_DEVICE_FEATURE_SET);
        d["VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY"] = LitValue.Of((long)Kernel.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);
        d["VFIO_DEVICE_FEATURE_LOW_POWER_EXIT"] = LitValue.Of((long)Kernel.VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
        return d;
    }
}

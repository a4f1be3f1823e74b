using static Linux.PgTable;

namespace Linux;

/// <summary>
/// struct vfio_pci_core_device: a PCI function handed to user space. <see cref="MemoryLock"/>
/// guards the memory-enable state against faults that populate BAR mappings; before v6.10
/// <see cref="VmaLock"/> and <see cref="VmaList"/> tracked the VMAs that had been populated so
/// that a revoke could zap them.
/// </summary>
[KernelSymbol("vfio_pci_core_device", "include/linux/vfio_pci_core.h")]
public sealed class VfioPciCoreDevice
{
    public const int VFIO_PCI_OFFSET_SHIFT = 40;
    public const int VFIO_PCI_BAR0_REGION_INDEX = 0;
    public const int VFIO_PCI_ROM_REGION_INDEX = 6;
    public const int VFIO_PCI_CONFIG_REGION_INDEX = 7;
    public const int VFIO_PCI_VGA_REGION_INDEX = 8;
    public const int VFIO_PCI_NUM_REGIONS = 9;

    internal static readonly LockClass MemoryLockClass = LockClass.Define("vfio_pci_core_device.memory_lock", sleeps: true);
    internal static readonly LockClass VmaLockClass = LockClass.Define("vfio_pci_core_device.vma_lock", sleeps: true);

    // K, Pdev, Minor, Inode, StateObj and the two locks are set at bind and never change.
    public readonly Kernel K;
    public readonly PciDev Pdev;
    /// <summary>The minor of /dev/vfio/devices/vfioN.</summary>
    public readonly int Minor;
    /// <summary>vdev->memory_lock: write-held while BAR access is revoked (command write, reset,
    /// low-power entry); faults and region accesses take it for reading.</summary>
    public readonly RwSemaphore MemoryLock;
    /// <summary>vdev->vma_lock (v5.8–v6.9): protects VmaList; ranks after mmap_lock and before memory_lock.</summary>
    public readonly Mutex VmaLock;
    /// <summary>vdev->vma_list (v5.8–v6.9): VMAs populated since the last zap. Protected by vma_lock.</summary>
    public readonly List<VmAreaStruct> VmaList = [];
    /// <summary>vfio_device->inode (b7c5e64fecfa, v6.10): its i_mmap holds every mmap of the device fd.</summary>
    public readonly Inode Inode;
    /// <summary>The virtualised PCI_COMMAND register user space sees (vdev->vconfig). Written with
    /// memory_lock write-held (and at first open, before any mapping exists); read under it by faults.</summary>
    public ushort VconfigCommand;
    /// <summary>vdev->pm_runtime_engaged: low-power entry was requested. Protected by memory_lock.</summary>
    public bool PmRuntimeEngaged;
    /// <summary>vdev->barmap[]: the BAR was requested (and iomapped) by the first mmap or access.
    /// No lock of its own: set from ->mmap (mmap_lock write-held) or a region access, cleared by the last close.</summary>
    public readonly bool[] Barmap = new bool[PciDev.PCI_STD_NUM_BARS];
    /// <summary>vdev->bar_mmap_supported[]: computed at first open, read-only afterwards.</summary>
    public readonly bool[] BarMmapSupported = new bool[PciDev.PCI_STD_NUM_BARS];
    /// <summary>vdev->reset_works: fixed at bind.</summary>
    public bool ResetWorks = true;
    /// <summary>The vfio device's open count (vfio_device->open_count). The kernel guards it with
    /// dev_set->lock; the model updates it without a scheduling point in between.</summary>
    public int OpenCount;
    /// <summary>Model counters: ->fault and ->huge_fault invocations (no kernel state; unlocked).</summary>
    public long FaultCalls;
    public long HugeFaultCalls;
    /// <summary>VMAs whose ->close ran (they are being freed): what KASAN would know. Checker state, unlocked.</summary>
    internal readonly HashSet<VmAreaStruct> ClosedVmas = new(ReferenceEqualityComparer.Instance);
    /// <summary>Footprint identity of the device's software state (vconfig, pm_runtime_engaged, vma_list).</summary>
    public readonly ulong StateObj;

    internal VfioPciCoreDevice(Kernel k, PciDev pdev, int minor, Inode inode)
    {
        K = k;
        Pdev = pdev;
        Minor = minor;
        Inode = inode;
        StateObj = ObjId.Make(ObjId.Kind.Other, k.NextObjectId());
        MemoryLock = new RwSemaphore(k, MemoryLockClass, $"vfio{minor}.memory_lock");
        VmaLock = new Mutex(k, VmaLockClass, $"vfio{minor}.vma_lock");
    }

    /// <summary>The cdev path of the device.</summary>
    public string Path => $"/dev/vfio/devices/vfio{Minor}";

    /// <summary>VFIO_PCI_INDEX_TO_OFFSET(): the file offset of a region.</summary>
    public static long IndexToOffset(int index) => (long)index << VFIO_PCI_OFFSET_SHIFT;

    /// <summary>The user addresses this device's BAR occupies in physical space, for checks.</summary>
    public (ulong Start, ulong End) BarRange(int bar) => (Pdev.ResourceStart(bar), Pdev.ResourceStart(bar) + Pdev.ResourceLen(bar) - 1);

    public override string ToString() => $"vfio{Minor}({Pdev.Name})";
}

// drivers/vfio/pci/vfio_pci_core.c (and the parts of vfio_main.c, vfio_pci_config.c and
// vfio_pci_rdwr.c a BAR mapping depends on): binding, opening the device fd, mmap of a BAR, the
// memory-enable state and its revocation, reset and low-power entry, read/write of regions.
public sealed partial class Kernel
{
    /// <summary>Inode kind of a vfio device inode (and of the anon inode before v6.10).</summary>
    public const string VfioDeviceKind = "vfio-device";

    /// <summary>VFIO_DEVICE_RESET: _IO(VFIO_TYPE, VFIO_BASE + 11).</summary>
    public const uint VFIO_DEVICE_RESET = (';' << 8) | (100 + 11);
    /// <summary>VFIO_DEVICE_FEATURE: _IO(VFIO_TYPE, VFIO_BASE + 17); the model passes the flags word as arg.</summary>
    public const uint VFIO_DEVICE_FEATURE = (';' << 8) | (100 + 17);
    public const ulong VFIO_DEVICE_FEATURE_SET = 1UL << 17;
    public const ulong VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
    public const ulong VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;

    /// <summary>Every vfio-pci device, by minor.</summary>
    public readonly List<VfioPciCoreDevice> VfioDevices = [];

    private Inode? _anonInode;
    private FileOperations? _vfioDeviceFops;

    /// <summary>Whether the configured vfio-pci predates v6.10's per-device inode and unmap_mapping_range().</summary>
    private bool VfioUsesVmaList => Variants.VfioPciFault is Variants.VfioPciFaultStrategy.RemapVmaList or
        Variants.VfioPciFaultStrategy.RemapNoListCheck or Variants.VfioPciFaultStrategy.RemapDropMmapLock;

    /// <summary>vfio_device_fops (the mm-facing part).</summary>
    [KernelSymbol("vfio_device_fops", "drivers/vfio/vfio_main.c")]
    private FileOperations VfioDeviceFops => _vfioDeviceFops ??= new FileOperations
    {
        Name = "vfio_device_fops",
        Mmap = VfioDeviceFopsMmap,
        Release = VfioDeviceFopsRelease,
    };

    /// <summary>
    /// vfio_pci_probe() → vfio_pci_core_register_device(): binds vfio-pci to a PCI function; the
    /// device gets its pseudo-fs inode (vfio_fs_type) and /dev/vfio/devices/vfioN.
    /// </summary>
    /// <remarks>Context: device binding: no mm locks; the device is not yet visible to user space.</remarks>
    [KernelSymbol("vfio_pci_core_register_device", "drivers/vfio/pci/vfio_pci_core.c")]
    public VfioPciCoreDevice VfioPciBind(PciDev pdev)
    {
        EnsureDevices();
        int minor = VfioDevices.Count;
        var inode = new Inode(this, NextIno(), VfioDeviceKind, $"[vfio-device {pdev.Name}]") { ISize = long.MaxValue };
        inode.IMapping.CanWriteback = false;
        var vdev = new VfioPciCoreDevice(this, pdev, minor, inode);
        VfioDevices.Add(vdev);
        RegisterDeviceNode(new DeviceNode
        {
            Path = vdev.Path,
            Inode = inode,
            Fops = VfioDeviceFops,
            Ops = new DeviceFileOperations
            {
                UnlockedIoctl = VfioDeviceFopsUnlIoctl,
                Read = VfioPciCoreRead,
                Write = VfioPciCoreWrite,
            },
            Open = VfioDeviceFopsCdevOpen,
        });
        return vdev;
    }

    /// <summary>The vfio device behind a file, or null.</summary>
    public VfioPciCoreDevice? VfioDeviceOf(File f) => f.PrivateData as VfioPciCoreDevice;

    /// <summary>
    /// vfio_device_fops_cdev_open() + vfio_df_open(): the first open enables the device
    /// (vfio_pci_core_enable(): memory decoding on, vconfig initialised) and probes which BARs can
    /// be mmapped. Since v6.10 f_mapping is the device inode's mapping; before, the device fd was
    /// an anon-inode file sharing one mapping with every other anon file.
    /// </summary>
    /// <remarks>
    /// Context: open(2): no mm locks held. The open count and vconfig are updated without
    /// memory_lock (no mapping exists before the first open).
    /// </remarks>
    [KernelSymbol("vfio_device_fops_cdev_open", "drivers/vfio/device_cdev.c")]
    private ValueTask<(File?, int)> VfioDeviceFopsCdevOpen(DeviceNode node, int flags)
    {
        var vdev = VfioDevices.First(d => d.Inode == node.Inode);
        if (vdev.OpenCount++ == 0)
        {
            // vfio_pci_core_enable(): pci_enable_device() turns memory decoding on.
            vdev.Pdev.Command |= PciDev.PCI_COMMAND_MEMORY;
            vdev.VconfigCommand = vdev.Pdev.Command;
            vdev.PmRuntimeEngaged = false;
            VfioPciProbeMmaps(vdev);
        }
        AddressSpace mapping;
        if (VfioUsesVmaList)
        {
            _anonInode ??= new Inode(this, NextIno(), VfioDeviceKind, "anon_inode:[vfio-device]");
            mapping = _anonInode.IMapping;
        }
        else
        {
            mapping = vdev.Inode.IMapping;
        }
        return ValueTask.FromResult<(File?, int)>((AllocDeviceFile(node, flags, mapping, vdev), 0));
    }

    /// <summary>vfio_pci_probe_mmaps(): BARs of at least a page in memory space can be mmapped.</summary>
    /// <remarks>Context: first open; no locks needed.</remarks>
    [KernelSymbol("vfio_pci_probe_mmaps", "drivers/vfio/pci/vfio_pci_core.c")]
    private static void VfioPciProbeMmaps(VfioPciCoreDevice vdev)
    {
        for (int i = 0; i < PciDev.PCI_STD_NUM_BARS; i++)
        {
            var pdev = vdev.Pdev;
            vdev.BarMmapSupported[i] = !pdev.NonMappableBars && (pdev.ResourceFlags(i) & Resource.IORESOURCE_MEM) != 0 &&
                                       pdev.ResourceLen(i) >= PAGE_SIZE;
        }
    }

    /// <summary>
    /// vfio_device_fops_release() → (last close) vfio_pci_core_close_device() →
    /// vfio_pci_core_disable(): the BAR claims taken for mmaps and accesses are released.
    /// </summary>
    /// <remarks>
    /// Context: the last fput's task work: no mm locks held. Releasing the BAR regions takes the
    /// resource lock; may sleep.
    /// </remarks>
    [KernelSymbol("vfio_device_fops_release", "drivers/vfio/vfio_main.c")]
    private async ValueTask VfioDeviceFopsRelease(File file)
    {
        var vdev = (VfioPciCoreDevice)file.PrivateData!;
        if (--vdev.OpenCount > 0)
        {
            return;
        }
        for (int bar = 0; bar < PciDev.PCI_STD_NUM_BARS; bar++)
        {
            if (vdev.Barmap[bar])
            {
                await PciReleaseSelectedRegions(vdev.Pdev, 1 << bar);
                vdev.Barmap[bar] = false;
            }
        }
    }

    /// <summary>
    /// vfio_pci_core_setup_barmap(): the first user of a BAR requests it (pci_request_selected_regions(),
    /// which revokes raw mappings of it under CONFIG_IO_STRICT_DEVMEM) and iomaps it.
    /// </summary>
    /// <remarks>
    /// Context: from -&gt;mmap (mmap_lock write-held) or a region access. Requesting the BAR may
    /// revoke /dev/mem mappings (i_mmap_rwsem, PTLs); may sleep.
    /// </remarks>
    [KernelSymbol("vfio_pci_core_setup_barmap", "drivers/vfio/pci/vfio_pci_rdwr.c")]
    private async ValueTask<int> VfioPciCoreSetupBarmap(VfioPciCoreDevice vdev, int bar)
    {
        if (vdev.Barmap[bar])
        {
            return 0;
        }
        int ret = await PciRequestSelectedRegions(vdev.Pdev, 1 << bar, "vfio");
        if (ret != 0)
        {
            return ret;
        }
        vdev.Barmap[bar] = true;
        return 0;
    }

    /// <summary>vfio_device_fops_mmap() → vfio_pci_core_mmap().</summary>
    /// <remarks>Context: -&gt;mmap: mmap_lock write-held; the VMA is not yet linked.</remarks>
    [KernelSymbol("vfio_device_fops_mmap", "drivers/vfio/vfio_main.c")]
    private ValueTask<int> VfioDeviceFopsMmap(File file, VmAreaStruct vma) =>
        VfioPciCoreMmap((VfioPciCoreDevice)file.PrivateData!, vma);

    /// <summary>
    /// vfio_pci_core_mmap(): validate the region and range, request the BAR, and set the VMA up
    /// for faulting — uncached, VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP set now with
    /// vm_flags_set() ("they should not be changed in the fault handler"). Before v6.10 vm_pgoff
    /// became the PFN; since then it keeps the region offset and the PFN is computed on fault.
    /// No PTE is installed here: population waits for the fault, after the VMA is linked.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap: mmap_lock write-held (vm_flags_set() asserts it); the VMA is not yet
    /// linked, so no fault can reach it.
    /// </remarks>
    [KernelSymbol("vfio_pci_core_mmap", "drivers/vfio/pci/vfio_pci_core.c")]
    public async ValueTask<int> VfioPciCoreMmap(VfioPciCoreDevice vdev, VmAreaStruct vma)
    {
        var pdev = vdev.Pdev;
        ulong index = vma.VmPgoff >> (VfioPciCoreDevice.VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT);
        if (index >= VfioPciCoreDevice.VFIO_PCI_NUM_REGIONS)
        {
            return -Errno.EINVAL;
        }
        if (vma.VmEnd < vma.VmStart)
        {
            return -Errno.EINVAL;
        }
        if ((vma.VmFlags & VmFlags.VM_SHARED) == 0)
        {
            return -Errno.EINVAL;
        }
        if (index >= VfioPciCoreDevice.VFIO_PCI_ROM_REGION_INDEX)
        {
            return -Errno.EINVAL;
        }
        int bar = (int)index;
        if (!vdev.BarMmapSupported[bar])
        {
            return -Errno.EINVAL;
        }
        ulong physLen = PageAlign(pdev.ResourceLen(bar));
        ulong reqLen = vma.VmEnd - vma.VmStart;
        ulong pgoff = vma.VmPgoff & ((1UL << (VfioPciCoreDevice.VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT)) - 1);
        ulong reqStart = pgoff << PAGE_SHIFT;
        if (reqStart + reqLen > physLen)
        {
            return -Errno.EINVAL;
        }
        int ret = await VfioPciCoreSetupBarmap(vdev, bar);
        if (ret != 0)
        {
            return ret;
        }
        vma.VmPrivateData = vdev;
        vma.VmPageProt = PgprotNoncached(vma.VmPageProt);
        if (VfioUsesVmaList)
        {
            vma.VmPgoff = (pdev.ResourceStart(bar) >> PAGE_SHIFT) + pgoff;
        }
        await VmFlagsSet(vma, VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP);
        vma.VmOps = VfioPciMmapOps(Variants.VfioPciFault);
        return 0;
    }

    /// <summary>
    /// __vfio_pci_memory_enabled() (vfio_pci_config.c): the device is in D0 and user space left
    /// memory decoding on in the virtual command register.
    /// </summary>
    /// <remarks>Context: memory_lock held (read or write) for a stable answer.</remarks>
    [KernelSymbol("__vfio_pci_memory_enabled", "drivers/vfio/pci/vfio_pci_config.c")]
    public static bool __VfioPciMemoryEnabled(VfioPciCoreDevice vdev)
    {
        vdev.K.Sched.Access(vdev.StateObj, write: false);
        return vdev.Pdev.CurrentState < PciPowerState.D3hot && (vdev.VconfigCommand & PciDev.PCI_COMMAND_MEMORY) != 0;
    }

    /// <summary>Whether the device's BARs are revoked right now: memory_lock write-held for a
    /// disable/reset, low power engaged, or memory decoding off.</summary>
    private static bool VfioBarsRevoked(VfioPciCoreDevice vdev) =>
        vdev.MemoryLock.Writer is not null || vdev.PmRuntimeEngaged || !__VfioPciMemoryEnabled(vdev);

    // ---- revocation ----

    /// <summary>vfio_pci_zap_bars() (v6.10+): unmap_mapping_range() of every BAR offset of the device inode.</summary>
    /// <remarks>
    /// Context: memory_lock write-held. unmap_mapping_range() takes i_mmap_rwsem and the PTLs; may
    /// sleep.
    /// </remarks>
    [KernelSymbol("vfio_pci_zap_bars", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask VfioPciZapBars(VfioPciCoreDevice vdev)
    {
        long start = VfioPciCoreDevice.IndexToOffset(VfioPciCoreDevice.VFIO_PCI_BAR0_REGION_INDEX);
        long end = VfioPciCoreDevice.IndexToOffset(VfioPciCoreDevice.VFIO_PCI_ROM_REGION_INDEX);
        await UnmapMappingRange(vdev.Inode.IMapping, start, end - start, evenCows: true);
    }

    /// <summary>mmget_not_zero().</summary>
    /// <remarks>
    /// Context: vma_lock held (the mm is found on vma_list); takes an mm_users reference only if
    /// the mm is still live.
    /// </remarks>
    [KernelSymbol("mmget_not_zero", "include/linux/sched/mm.h")]
    private static bool MmgetNotZero(MmStruct mm)
    {
        if (mm.MmUsers <= 0 || mm.Dead)
        {
            return false;
        }
        mm.MmUsers++;
        return true;
    }

    /// <summary>
    /// vfio_pci_zap_and_vma_lock() (v5.8–v6.9): zap every VMA on vma_list, keeping the lock order
    /// mmap_lock → vma_lock by taking vma_lock to find an mm, dropping it to take that mm's mmap
    /// lock, then taking it again. Returns 1 with vma_lock held and the list empty, or 0 on
    /// contention when <paramref name="tryLock"/>.
    /// </summary>
    /// <remarks>
    /// Context: no mmap_lock, vma_lock or memory_lock held on entry. Alternates vma_lock and each
    /// mm's mmap_lock (read) to keep the order mmap_lock before vma_lock. Returns 1 with vma_lock
    /// held and the list empty, or 0 with nothing held (tryLock contention).
    /// </remarks>
    [KernelSymbol("vfio_pci_zap_and_vma_lock", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<int> VfioPciZapAndVmaLock(VfioPciCoreDevice vdev, bool tryLock)
    {
        while (true)
        {
            MmStruct? mm = null;
            if (tryLock)
            {
                if (!await vdev.VmaLock.TryLock("vfio_pci_zap_and_vma_lock"))
                {
                    return 0;
                }
            }
            else
            {
                await vdev.VmaLock.Lock("vfio_pci_zap_and_vma_lock");
            }
            Sched.Access(vdev.StateObj, write: true);
            while (vdev.VmaList.Count > 0)
            {
                mm = vdev.VmaList[0].VmMm;
                if (MmgetNotZero(mm))
                {
                    break;
                }
                vdev.VmaList.RemoveAt(0);
                mm = null;
            }
            if (mm is null)
            {
                return 1;
            }
            await vdev.VmaLock.Unlock("vfio_pci_zap_and_vma_lock");
            if (tryLock)
            {
                if (!await MmapReadTrylock(mm, "vfio_pci_zap_and_vma_lock"))
                {
                    await Mmput(mm);
                    return 0;
                }
                if (!await vdev.VmaLock.TryLock("vfio_pci_zap_and_vma_lock"))
                {
                    await MmapReadUnlock(mm, "vfio_pci_zap_and_vma_lock");
                    await Mmput(mm);
                    return 0;
                }
            }
            else
            {
                await MmapReadLock(mm, "vfio_pci_zap_and_vma_lock");
                await vdev.VmaLock.Lock("vfio_pci_zap_and_vma_lock");
            }
            Sched.Access(vdev.StateObj, write: true);
            foreach (var vma in vdev.VmaList.ToList())
            {
                if (vma.VmMm != mm)
                {
                    continue;
                }
                vdev.VmaList.Remove(vma);
                await ZapVmaPtes(vma, vma.VmStart, vma.VmEnd - vma.VmStart);
            }
            await vdev.VmaLock.Unlock("vfio_pci_zap_and_vma_lock");
            await MmapReadUnlock(mm, "vfio_pci_zap_and_vma_lock");
            await Mmput(mm);
        }
    }

    /// <summary>
    /// vfio_pci_zap_and_down_write_memory_lock(): revoke every user mapping of the BARs and return
    /// with memory_lock write-held, so no fault can populate again until it is released. Since
    /// v6.10: down_write, then unmap_mapping_range() over the device inode. Before: the vma_list
    /// dance, then down_write under vma_lock (lock order mmap_lock → vma_lock → memory_lock).
    /// </summary>
    /// <remarks>
    /// Context: no device locks held; may sleep. Returns with memory_lock write-held and every BAR
    /// mapping zapped.
    /// </remarks>
    [KernelSymbol("vfio_pci_zap_and_down_write_memory_lock", "drivers/vfio/pci/vfio_pci_core.c")]
    public async ValueTask VfioPciZapAndDownWriteMemoryLock(VfioPciCoreDevice vdev)
    {
        if (VfioUsesVmaList)
        {
            await VfioPciZapAndVmaLock(vdev, tryLock: false);
            await vdev.MemoryLock.DownWrite("vfio_pci_zap_and_down_write_memory_lock");
            await vdev.VmaLock.Unlock("vfio_pci_zap_and_down_write_memory_lock");
        }
        else
        {
            await vdev.MemoryLock.DownWrite("vfio_pci_zap_and_down_write_memory_lock");
            await VfioPciZapBars(vdev);
        }
        for (int bar = 0; bar < PciDev.PCI_STD_NUM_BARS; bar++)
        {
            if (vdev.Pdev.ResourceLen(bar) != 0)
            {
                var (s, e) = vdev.BarRange(bar);
                NoteRevocation(s, e, () => VfioBarsRevoked(vdev), _ => true, $"{vdev} BAR {bar} memory revoke");
            }
        }
    }

    /// <summary>
    /// vfio_basic_config_write() for PCI_COMMAND: clearing the memory bit revokes the BAR mappings
    /// first (faults then get SIGBUS); setting it only takes memory_lock for write.
    /// </summary>
    /// <remarks>
    /// Context: a PCI_COMMAND write: no device locks held. Takes memory_lock for writing (zapping
    /// first if memory is being disabled) and releases it.
    /// </remarks>
    [KernelSymbol("vfio_basic_config_write", "drivers/vfio/pci/vfio_pci_config.c")]
    public async ValueTask VfioPciWriteCommand(VfioPciCoreDevice vdev, ushort newCmd)
    {
        bool newMem = (newCmd & PciDev.PCI_COMMAND_MEMORY) != 0;
        if (!newMem)
        {
            await VfioPciZapAndDownWriteMemoryLock(vdev);
        }
        else
        {
            await vdev.MemoryLock.DownWrite("vfio_basic_config_write");
        }
        Sched.Access(vdev.StateObj, write: true);
        vdev.VconfigCommand = newCmd;
        vdev.Pdev.Command = newCmd;
        await vdev.MemoryLock.UpWrite("vfio_basic_config_write");
    }

    /// <summary>vfio_pci_ioctl_reset(): revoke, reset the function, allow faults again.</summary>
    /// <remarks>
    /// Context: ioctl: no device locks held. Holds memory_lock for writing across the reset; may
    /// sleep.
    /// </remarks>
    [KernelSymbol("vfio_pci_ioctl_reset", "drivers/vfio/pci/vfio_pci_core.c")]
    public async ValueTask<int> VfioPciIoctlReset(VfioPciCoreDevice vdev)
    {
        if (!vdev.ResetWorks)
        {
            return -Errno.EINVAL;
        }
        await VfioPciZapAndDownWriteMemoryLock(vdev);
        // vfio_pci_set_power_state(vdev, PCI_D0), then pci_try_reset_function().
        Sched.Access(vdev.StateObj, write: true);
        vdev.Pdev.CurrentState = PciPowerState.D0;
        vdev.Pdev.Resets++;
        await vdev.MemoryLock.UpWrite("vfio_pci_ioctl_reset");
        return 0;
    }

    /// <summary>vfio_pci_runtime_pm_entry(): revoke and mark low power engaged (faults get SIGBUS).</summary>
    /// <remarks>
    /// Context: ioctl: no device locks held. Holds memory_lock for writing while low power is
    /// engaged; may sleep.
    /// </remarks>
    [KernelSymbol("vfio_pci_runtime_pm_entry", "drivers/vfio/pci/vfio_pci_core.c")]
    public async ValueTask<int> VfioPciRuntimePmEntry(VfioPciCoreDevice vdev)
    {
        await VfioPciZapAndDownWriteMemoryLock(vdev);
        if (vdev.PmRuntimeEngaged)
        {
            await vdev.MemoryLock.UpWrite("vfio_pci_runtime_pm_entry");
            return -Errno.EINVAL;
        }
        Sched.Access(vdev.StateObj, write: true);
        vdev.PmRuntimeEngaged = true;
        await vdev.MemoryLock.UpWrite("vfio_pci_runtime_pm_entry");
        return 0;
    }

    /// <summary>vfio_pci_runtime_pm_exit(): faults may populate again.</summary>
    /// <remarks>Context: ioctl: no device locks held. Takes and releases memory_lock for writing.</remarks>
    [KernelSymbol("vfio_pci_runtime_pm_exit", "drivers/vfio/pci/vfio_pci_core.c")]
    public async ValueTask VfioPciRuntimePmExit(VfioPciCoreDevice vdev)
    {
        await vdev.MemoryLock.DownWrite("vfio_pci_runtime_pm_exit");
        Sched.Access(vdev.StateObj, write: true);
        vdev.PmRuntimeEngaged = false;
        await vdev.MemoryLock.UpWrite("vfio_pci_runtime_pm_exit");
    }

    /// <summary>vfio_device_fops_unl_ioctl() → vfio_pci_core_ioctl() / vfio_pci_core_ioctl_feature().</summary>
    /// <remarks>Context: ioctl(2): no mm or device locks held.</remarks>
    [KernelSymbol("vfio_pci_core_ioctl", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<long> VfioDeviceFopsUnlIoctl(File file, uint cmd, ulong arg)
    {
        var vdev = (VfioPciCoreDevice)file.PrivateData!;
        switch (cmd)
        {
            case VFIO_DEVICE_RESET:
                return await VfioPciIoctlReset(vdev);
            case VFIO_DEVICE_FEATURE:
                if ((arg & VFIO_DEVICE_FEATURE_SET) == 0)
                {
                    return -Errno.EINVAL;
                }
                switch (arg & 0xffff)
                {
                    case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
                        return await VfioPciRuntimePmEntry(vdev);
                    case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
                        await VfioPciRuntimePmExit(vdev);
                        return 0;
                    default:
                        return -ENOTTY;
                }
            default:
                return -ENOTTY;
        }
    }

    /// <summary>vfio_pci_core_read() → vfio_pci_rw(): config space (PCI_COMMAND) or a BAR.</summary>
    /// <remarks>Context: pread(2): no mm locks held; BAR reads take memory_lock for reading.</remarks>
    [KernelSymbol("vfio_pci_core_read", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<(long, ulong)> VfioPciCoreRead(File file, long pos, int size)
    {
        var vdev = (VfioPciCoreDevice)file.PrivateData!;
        int index = (int)(pos >> VfioPciCoreDevice.VFIO_PCI_OFFSET_SHIFT);
        ulong off = (ulong)pos & ((1UL << VfioPciCoreDevice.VFIO_PCI_OFFSET_SHIFT) - 1);
        if (index == VfioPciCoreDevice.VFIO_PCI_CONFIG_REGION_INDEX)
        {
            return (size, off == PciDev.PCI_COMMAND ? vdev.VconfigCommand : 0UL);
        }
        if (index >= VfioPciCoreDevice.VFIO_PCI_ROM_REGION_INDEX)
        {
            return (-Errno.EINVAL, 0);
        }
        return await VfioPciBarRw(vdev, index, off, size, write: false, 0);
    }

    /// <summary>vfio_pci_core_write() → vfio_pci_rw(): a PCI_COMMAND write goes through
    /// vfio_basic_config_write(); BAR writes through vfio_pci_bar_rw().</summary>
    /// <remarks>
    /// Context: pwrite(2): no mm locks held; command writes take memory_lock for writing, BAR
    /// writes for reading.
    /// </remarks>
    [KernelSymbol("vfio_pci_core_write", "drivers/vfio/pci/vfio_pci_core.c")]
    private async ValueTask<long> VfioPciCoreWrite(File file, long pos, int size, ulong value)
    {
        var vdev = (VfioPciCoreDevice)file.PrivateData!;
        int index = (int)(pos >> VfioPciCoreDevice.VFIO_PCI_OFFSET_SHIFT);
        ulong off = (ulong)pos & ((1UL << VfioPciCoreDevice.VFIO_PCI_OFFSET_SHIFT) - 1);
        if (index == VfioPciCoreDevice.VFIO_PCI_CONFIG_REGION_INDEX)
        {
            if (off == PciDev.PCI_COMMAND && size == 2)
            {
                await VfioPciWriteCommand(vdev, (ushort)value);
            }
            return size;
        }
        if (index >= VfioPciCoreDevice.VFIO_PCI_ROM_REGION_INDEX)
        {
            return -Errno.EINVAL;
        }
        var (ret, _) = await VfioPciBarRw(vdev, index, off, size, write: true, value);
        return ret;
    }

    /// <summary>
    /// vfio_pci_bar_rw() → vfio_pci_core_do_io_rw() with test_mem: the access happens under
    /// memory_lock read and fails with -EIO while memory decoding is off.
    /// </summary>
    /// <remarks>
    /// Context: no device locks held. Takes memory_lock for reading around the access (-EIO if
    /// memory is disabled).
    /// </remarks>
    [KernelSymbol("vfio_pci_bar_rw", "drivers/vfio/pci/vfio_pci_rdwr.c")]
    private async ValueTask<(long, ulong)> VfioPciBarRw(VfioPciCoreDevice vdev, int bar, ulong off, int size, bool write, ulong value)
    {
        if (off + (ulong)size > vdev.Pdev.ResourceLen(bar))
        {
            return (-Errno.EINVAL, 0);
        }
        int ret = await VfioPciCoreSetupBarmap(vdev, bar);
        if (ret != 0)
        {
            return (ret, 0);
        }
        await vdev.MemoryLock.DownRead("vfio_pci_core_do_io_rw");
        if (!__VfioPciMemoryEnabled(vdev))
        {
            await vdev.MemoryLock.UpRead("vfio_pci_core_do_io_rw");
            return (-Errno.EIO, 0);
        }
        ulong result = 0;
        if (write)
        {
            await vdev.Pdev.MmioWrite(bar, off, size, value);
        }
        else
        {
            result = await vdev.Pdev.MmioRead(bar, off, size);
        }
        await vdev.MemoryLock.UpRead("vfio_pci_core_do_io_rw");
        return (size, result);
    }

    // ---- conveniences a scenario binds to (each is a user-space call sequence) ----

    /// <summary>User space disables memory decoding: pwrite of PCI_COMMAND without MEMORY to the config region.</summary>
    public ValueTask<long> VfioMemoryDisable(long fd, ushort cmd = PciDev.PCI_COMMAND_MASTER) =>
        SysPwrite(fd, (ulong)(cmd & ~PciDev.PCI_COMMAND_MEMORY), 2,
            VfioPciCoreDevice.IndexToOffset(VfioPciCoreDevice.VFIO_PCI_CONFIG_REGION_INDEX) + PciDev.PCI_COMMAND);

    /// <summary>User space enables memory decoding again.</summary>
    public ValueTask<long> VfioMemoryEnable(long fd, ushort cmd = PciDev.PCI_COMMAND_MASTER) =>
        SysPwrite(fd, (ulong)(cmd | PciDev.PCI_COMMAND_MEMORY), 2,
            VfioPciCoreDevice.IndexToOffset(VfioPciCoreDevice.VFIO_PCI_CONFIG_REGION_INDEX) + PciDev.PCI_COMMAND);

    /// <summary>ioctl(fd, VFIO_DEVICE_RESET).</summary>
    public ValueTask<long> VfioDeviceReset(long fd) => SysIoctl(fd, VFIO_DEVICE_RESET, 0);

    /// <summary>ioctl(fd, VFIO_DEVICE_FEATURE, SET | LOW_POWER_ENTRY).</summary>
    public ValueTask<long> VfioLowPowerEntry(long fd) =>
        SysIoctl(fd, VFIO_DEVICE_FEATURE, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);

    /// <summary>ioctl(fd, VFIO_DEVICE_FEATURE, SET | LOW_POWER_EXIT).</summary>
    public ValueTask<long> VfioLowPowerExit(long fd) =>
        SysIoctl(fd, VFIO_DEVICE_FEATURE, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
}

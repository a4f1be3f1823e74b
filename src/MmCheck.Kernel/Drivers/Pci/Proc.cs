using static Linux.PgTable;

namespace Linux;

/// <summary>struct pci_filp_private: the per-open mmap mode of a /proc/bus/pci file.</summary>
[KernelSymbol("pci_filp_private", "drivers/pci/proc.c")]
public sealed class PciFilpPrivate
{
    /// <summary>Set by PCIIOC_MMAP_IS_* ioctls, read by ->mmap; per open file, no lock (as in the kernel).</summary>
    public PciMmapState MmapState = PciMmapState.pci_mmap_io;
    /// <summary>Set by PCIIOC_WRITE_COMBINE, read by ->mmap; per open file, no lock.</summary>
    public bool WriteCombine;
}

// drivers/pci/proc.c: /proc/bus/pci/BB/DD.F. Opening defaults to I/O space (which x86 cannot map),
// so user space first says PCIIOC_MMAP_IS_MEM; the mmap then looks for the BAR whose bus address
// range holds the offset and maps it with io_remap_pfn_range() inside ->mmap.
public sealed partial class Kernel
{
    /// <summary>Inode kind of /proc/bus/pci files.</summary>
    public const string ProcBusPciKind = "proc-bus-pci";

    private const uint PCIIOC_BASE = ('P' << 24) | ('C' << 16) | ('I' << 8);
    /// <summary>PCIIOC_CONTROLLER: the PCI domain.</summary>
    public const uint PCIIOC_CONTROLLER = PCIIOC_BASE | 0x00;
    /// <summary>PCIIOC_MMAP_IS_IO: later mmaps map I/O space.</summary>
    public const uint PCIIOC_MMAP_IS_IO = PCIIOC_BASE | 0x01;
    /// <summary>PCIIOC_MMAP_IS_MEM: later mmaps map memory space.</summary>
    public const uint PCIIOC_MMAP_IS_MEM = PCIIOC_BASE | 0x02;
    /// <summary>PCIIOC_WRITE_COMBINE: map prefetchable BARs write-combined.</summary>
    public const uint PCIIOC_WRITE_COMBINE = PCIIOC_BASE | 0x03;

    private FileOperations? _procBusPciFops;

    /// <summary>proc_bus_pci_ops (its mm-facing part).</summary>
    [KernelSymbol("proc_bus_pci_ops", "drivers/pci/proc.c")]
    private FileOperations ProcBusPciFops => _procBusPciFops ??=
        Variants.ProcBusPciMmap is Variants.ProcBusPciMmapStyle.MmapPrepare or Variants.ProcBusPciMmapStyle.MmapPrepareRecheck
            ? new FileOperations { Name = "proc_bus_pci_ops", MmapPrepare = ProcBusPciMmapPrepare }
            : new FileOperations { Name = "proc_bus_pci_ops", Mmap = ProcBusPciMmap };

    private VmOperationsStruct? _procBusPciFaultVmOps;

    /// <summary>The vm_ops of the fault-time proposal (variant proc_bus_pci.mmap = fault).</summary>
    private VmOperationsStruct ProcBusPciFaultVmOps => _procBusPciFaultVmOps ??= new VmOperationsStruct
    {
        Name = "proc_bus_pci_fault_vm_ops",
        Fault = ProcBusPciMmapFault,
    };

    /// <summary>The /proc/bus/pci path of a device.</summary>
    public static string ProcBusPciPath(PciDev dev) => $"/proc/bus/pci/{dev.Bus:x2}/{dev.Slot:x2}.{dev.Func:x}";

    /// <summary>pci_proc_attach_device(): creates /proc/bus/pci/BB/DD.F.</summary>
    /// <remarks>Context: device add: set-up, no locks.</remarks>
    [KernelSymbol("pci_proc_attach_device", "drivers/pci/proc.c")]
    private void PciProcAttachDevice(PciDev dev)
    {
        string path = ProcBusPciPath(dev);
        var inode = new Inode(this, NextIno(), ProcBusPciKind, path) { IPrivate = dev, ISize = 256 };
        inode.IMapping.CanWriteback = false;
        RegisterDeviceNode(new DeviceNode
        {
            Path = path,
            Inode = inode,
            Fops = ProcBusPciFops,
            Ops = new DeviceFileOperations { UnlockedIoctl = ProcBusPciIoctl },
            Open = ProcBusPciOpen,
        });
    }

    /// <summary>
    /// proc_bus_pci_open(): I/O mmap mode, no write-combining, and — since 636b21b50152 "PCI:
    /// Revoke mappings like devmem" — f_mapping = iomem_get_mapping().
    /// </summary>
    /// <remarks>Context: open(2): no mm locks held.</remarks>
    [KernelSymbol("proc_bus_pci_open", "drivers/pci/proc.c")]
    private ValueTask<(File?, int)> ProcBusPciOpen(DeviceNode node, int flags)
    {
        var mapping = Variants.PciRevokeMappings ? IomemGetMapping() : null;
        return ValueTask.FromResult<(File?, int)>((AllocDeviceFile(node, flags, mapping, new PciFilpPrivate()), 0));
    }

    /// <summary>proc_bus_pci_ioctl(): the mmap mode switches.</summary>
    /// <remarks>Context: ioctl(2): no mm locks held; sets the file's mmap state.</remarks>
    [KernelSymbol("proc_bus_pci_ioctl", "drivers/pci/proc.c")]
    private ValueTask<long> ProcBusPciIoctl(File file, uint cmd, ulong arg)
    {
        var fpriv = (PciFilpPrivate)file.PrivateData!;
        long ret = 0;
        switch (cmd)
        {
            case PCIIOC_CONTROLLER:
                ret = 0;
                break;
            case PCIIOC_MMAP_IS_IO:
                // arch_can_pci_mmap_io() is false on x86.
                ret = -Errno.EINVAL;
                break;
            case PCIIOC_MMAP_IS_MEM:
                fpriv.MmapState = PciMmapState.pci_mmap_mem;
                break;
            case PCIIOC_WRITE_COMBINE:
                // arch_can_pci_mmap_wc() = pat_enabled(): true.
                fpriv.WriteCombine = arg != 0;
                break;
            default:
                ret = -Errno.EINVAL;
                break;
        }
        return ValueTask.FromResult(ret);
    }

    /// <summary>
    /// proc_bus_pci_mmap(): find the memory BAR the offset falls in; refuse an exclusively claimed
    /// one (v5.12, "PCI: Obey iomem restrictions for procfs mmap"; the check races with a later
    /// claim, and the PTEs are filled before the VMA is visible to the revoker); then map it.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap: mmap_lock write-held; the VMA not yet linked. The exclusivity check
    /// takes resource_lock for reading; the remap takes PTLs.
    /// </remarks>
    [KernelSymbol("proc_bus_pci_mmap", "drivers/pci/proc.c")]
    private async ValueTask<int> ProcBusPciMmap(File file, VmAreaStruct vma)
    {
        var dev = (PciDev)file.FInode.IPrivate!;
        var fpriv = (PciFilpPrivate)file.PrivateData!;
        var (i, writeCombine, err) = await ProcBusPciMmapChecks(dev, fpriv, vma.VmPgoff, vma.Pages);
        if (err != 0)
        {
            return err;
        }
        var (start, _) = PciResourceToUser(dev, i);
        vma.VmPgoff -= start >> PgTable.PAGE_SHIFT;
        if (Variants.ProcBusPciMmap == Variants.ProcBusPciMmapStyle.Fault)
        {
            return await ProcBusPciMmapForFault(dev, i, vma, writeCombine);
        }
        int ret = await PciMmapResourceRange(dev, i, vma, fpriv.MmapState, writeCombine);
        return ret < 0 ? ret : 0;
    }

    /// <summary>
    /// The checks of proc_bus_pci_mmap() before anything is mapped: memory space selected, a
    /// memory BAR that holds the range, write-combining only for prefetchable BARs, and (v5.12+)
    /// no exclusively claimed BAR. Returns the BAR, the write-combine choice, or -errno.
    /// </summary>
    private async ValueTask<(int Bar, bool WriteCombine, int Err)> ProcBusPciMmapChecks(PciDev dev, PciFilpPrivate fpriv, ulong pgoff, ulong pages)
    {
        // capable(CAP_SYS_RAWIO) and no lockdown: every model task is root.
        if (dev.NonMappableBars)
        {
            return (0, false, -Errno.EINVAL);
        }
        if (fpriv.MmapState == PciMmapState.pci_mmap_io)
        {
            return (0, false, -Errno.EINVAL);
        }
        int i;
        for (i = 0; i < PciDev.PCI_STD_NUM_BARS; i++)
        {
            if ((dev.ResourceFlags(i) & Resource.IORESOURCE_MEM) != 0 && PciMmapFits(dev, i, pgoff, pages, PciMmapApi.PCI_MMAP_PROCFS))
            {
                break;
            }
        }
        if (i >= PciDev.PCI_STD_NUM_BARS)
        {
            return (0, false, -Errno.ENODEV);
        }
        bool writeCombine = false;
        if (fpriv.MmapState == PciMmapState.pci_mmap_mem && fpriv.WriteCombine)
        {
            if ((dev.ResourceFlags(i) & Resource.IORESOURCE_PREFETCH) == 0)
            {
                return (0, false, -Errno.EINVAL);
            }
            writeCombine = true;
        }
        if (Variants.ProcBusPciMmapExclusiveCheck &&
            (dev.ResourceFlags(i) & Resource.IORESOURCE_MEM) != 0 && await IomemIsExclusive(dev.ResourceStart(i)))
        {
            return (0, false, -Errno.EINVAL);
        }
        return (i, writeCombine, 0);
    }

    // ---- the seed-000 thread's proposals (variant proc_bus_pci.mmap) ----

    /// <summary>
    /// ->mmap of the fault-time proposal: what pci_mmap_resource_range() sets up (vm_pgoff = PFN,
    /// uncached protection, the remap flags, set here under the mmap write lock), but no PTE.
    /// </summary>
    private async ValueTask<int> ProcBusPciMmapForFault(PciDev dev, int bar, VmAreaStruct vma, bool writeCombine)
    {
        ulong size = ((dev.ResourceLen(bar) - 1) >> PgTable.PAGE_SHIFT) + 1;
        if (vma.VmPgoff + vma.Pages > size)
        {
            return -Errno.EINVAL;
        }
        vma.VmPageProt = writeCombine ? PgprotWritecombine(vma.VmPageProt) : PgprotNoncached(vma.VmPageProt);
        vma.VmPgoff += dev.ResourceStart(bar) >> PgTable.PAGE_SHIFT;
        vma.VmPrivateData = dev;
        vma.VmOps = ProcBusPciFaultVmOps;
        await VmFlagsSet(vma, VmFlags.VM_REMAP_FLAGS);
        return 0;
    }

    /// <summary>
    /// ->fault of the fault-time proposal: refuse a page of a BAR that is now claimed
    /// (iomem_is_exclusive() takes and drops resource_lock), then vmf_insert_pfn() it. Nothing
    /// the claim path takes is held from the check to the insertion.
    /// </summary>
    private async ValueTask<VmFault> ProcBusPciMmapFault(VmFaultInfo vmf)
    {
        ulong pfn = vmf.Pgoff;
        if (await IomemIsExclusive(pfn << PgTable.PAGE_SHIFT))
        {
            return VmFault.VM_FAULT_SIGBUS;
        }
        return await VmfInsertPfn(vmf.Vma, vmf.Address, pfn);
    }

    /// <summary>
    /// ->mmap_prepare of the mmap_prepare proposals: the checks of proc_bus_pci_mmap() on the
    /// descriptor, then a deferred remap that mmap_action_complete() runs after vma_link_file().
    /// With <see cref="Variants.ProcBusPciMmapStyle.MmapPrepareRecheck"/> the VMA stays hidden from
    /// rmap's revokers (hide_from_rmap_until_complete keeps i_mmap_rwsem write-held), and the
    /// action re-checks iomem_is_exclusive() under it before it fills the PTEs.
    /// </summary>
    private async ValueTask<int> ProcBusPciMmapPrepare(VmAreaDesc desc)
    {
        var dev = (PciDev)desc.File.FInode.IPrivate!;
        var fpriv = (PciFilpPrivate)desc.File.PrivateData!;
        ulong pages = (desc.End - desc.Start) >> PgTable.PAGE_SHIFT;
        var (i, writeCombine, err) = await ProcBusPciMmapChecks(dev, fpriv, desc.Pgoff, pages);
        if (err != 0)
        {
            return err;
        }
        var (start, _) = PciResourceToUser(dev, i);
        ulong pgoff = desc.Pgoff - (start >> PgTable.PAGE_SHIFT);
        ulong size = ((dev.ResourceLen(i) - 1) >> PgTable.PAGE_SHIFT) + 1;
        if (pgoff + pages > size)
        {
            return -Errno.EINVAL;
        }
        desc.PageProt = writeCombine ? PgprotWritecombine(desc.PageProt) : PgprotNoncached(desc.PageProt);
        desc.Pgoff = pgoff + (dev.ResourceStart(i) >> PgTable.PAGE_SHIFT);
        desc.VmOps = PciPhysVmOps;
        if (Variants.ProcBusPciMmap != Variants.ProcBusPciMmapStyle.MmapPrepareRecheck)
        {
            RemapPfnRangePrepare(desc, desc.Pgoff);
            return 0;
        }
        // remap_pfn_range_prepare()'s flags; the fill itself waits for the re-check.
        desc.VmFlags |= VmFlags.VM_REMAP_FLAGS;
        desc.Action.HideFromRmapUntilComplete = true;
        ulong pfn = desc.Pgoff, barStart = dev.ResourceStart(i), len = desc.End - desc.Start;
        var prot = desc.PageProt;
        desc.Action.SuccessHook = async vma =>
        {
            // Linked in the tree and in i_mmap, i_mmap_rwsem still write-held: a claim that set
            // IORESOURCE_BUSY before this point is seen here, one after it waits for us in
            // unmap_mapping_range() and then finds the VMA.
            if (await IomemIsExclusive(barStart))
            {
                return -Errno.EINVAL;
            }
            return await RemapPfnRangeComplete(vma, vma.VmStart, pfn, len, prot);
        };
        return 0;
    }
}

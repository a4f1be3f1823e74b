namespace Linux;

// drivers/pci/pci-sysfs.c: /sys/bus/pci/devices/DDDD:BB:DD.F/resourceN, a binary attribute whose
// mmap maps BAR N from offset 0. It refused exclusively claimed BARs long before procfs did; since
// 636b21b50152 its f_mapping (the bin_attribute's f_mapping()) is iomem_get_mapping().
public sealed partial class Kernel
{
    /// <summary>Inode kind of sysfs resource files.</summary>
    public const string PciSysfsResourceKind = "pci-sysfs-resource";

    private FileOperations? _pciSysfsResourceFops;

    /// <summary>The kernfs bin-file operations of a resourceN attribute (kernfs_file_fops → ->mmap).</summary>
    [KernelSymbol("kernfs_file_fops", "fs/kernfs/file.c")]
    private FileOperations PciSysfsResourceFops => _pciSysfsResourceFops ??= new FileOperations
    {
        Name = "pci_resource_attr",
        Mmap = PciMmapResourceUc,
    };

    /// <summary>The sysfs path of BAR <paramref name="bar"/> of a device.</summary>
    public static string PciSysfsResourcePath(PciDev dev, int bar) => $"/sys/bus/pci/devices/{dev.Name}/resource{bar}";

    /// <summary>pci_create_resource_files(): a resourceN file per implemented BAR.</summary>
    /// <remarks>Context: device add: set-up, no locks.</remarks>
    [KernelSymbol("pci_create_resource_files", "drivers/pci/pci-sysfs.c")]
    private void PciCreateResourceFiles(PciDev dev)
    {
        if (dev.NonMappableBars)
        {
            return;
        }
        for (int i = 0; i < PciDev.PCI_STD_NUM_BARS; i++)
        {
            if (dev.ResourceLen(i) == 0)
            {
                continue;
            }
            int bar = i;
            string path = PciSysfsResourcePath(dev, i);
            var inode = new Inode(this, NextIno(), PciSysfsResourceKind, path)
            {
                IPrivate = (dev, bar),
                ISize = (long)dev.ResourceLen(i),
            };
            inode.IMapping.CanWriteback = false;
            RegisterDeviceNode(new DeviceNode
            {
                Path = path,
                Inode = inode,
                Fops = PciSysfsResourceFops,
                Open = KernfsFopOpen,
            });
        }
    }

    /// <summary>
    /// kernfs_fop_open() for a bin attribute: f_mapping comes from the attribute's f_mapping()
    /// (iomem_get_mapping for PCI resources since 636b21b50152), else the sysfs inode's own.
    /// </summary>
    /// <remarks>Context: open(2): no mm locks held.</remarks>
    [KernelSymbol("kernfs_fop_open", "fs/kernfs/file.c")]
    private ValueTask<(File?, int)> KernfsFopOpen(DeviceNode node, int flags)
    {
        var mapping = Variants.PciRevokeMappings ? IomemGetMapping() : null;
        return ValueTask.FromResult<(File?, int)>((AllocDeviceFile(node, flags, mapping), 0));
    }

    /// <summary>pci_mmap_resource_uc(): the uncached resourceN file.</summary>
    /// <remarks>Context: -&gt;mmap: mmap_lock write-held; the VMA not yet linked.</remarks>
    [KernelSymbol("pci_mmap_resource_uc", "drivers/pci/pci-sysfs.c")]
    private ValueTask<int> PciMmapResourceUc(File file, VmAreaStruct vma) => PciMmapResource(file, vma, writeCombine: false);

    /// <summary>
    /// pci_mmap_resource(): refuse an exclusively claimed BAR, check the range, map it through
    /// pci_mmap_resource_range() (io_remap_pfn_range() inside ->mmap).
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap: mmap_lock write-held; the VMA not yet linked. The exclusivity check
    /// takes resource_lock for reading.
    /// </remarks>
    [KernelSymbol("pci_mmap_resource", "drivers/pci/pci-sysfs.c")]
    private async ValueTask<int> PciMmapResource(File file, VmAreaStruct vma, bool writeCombine)
    {
        var (pdev, bar) = ((PciDev, int))file.FInode.IPrivate!;
        var res = pdev.Resource[bar]!;
        // security_locked_down(LOCKDOWN_PCI_ACCESS): no lockdown in the model.
        if ((res.Flags & Resource.IORESOURCE_MEM) != 0 && await IomemIsExclusive(res.Start))
        {
            return -Errno.EINVAL;
        }
        if (!PciMmapFits(pdev, bar, vma, PciMmapApi.PCI_MMAP_SYSFS))
        {
            return -Errno.EINVAL;
        }
        var state = (res.Flags & Resource.IORESOURCE_MEM) != 0 ? PciMmapState.pci_mmap_mem : PciMmapState.pci_mmap_io;
        return await PciMmapResourceRange(pdev, bar, vma, state, writeCombine);
    }
}

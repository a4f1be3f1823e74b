using static Linux.PgTable;

namespace Linux;

/// <summary>enum pci_mmap_state.</summary>
[KernelSymbol("pci_mmap_state", "include/linux/pci.h")]
public enum PciMmapState
{
    pci_mmap_io,
    pci_mmap_mem,
}

/// <summary>enum pci_mmap_api: which interface asks (procfs offsets are bus addresses).</summary>
[KernelSymbol("pci_mmap_api", "drivers/pci/pci.h")]
public enum PciMmapApi
{
    PCI_MMAP_SYSFS,
    PCI_MMAP_PROCFS,
}

// drivers/pci/mmap.c: the generic BAR mmap both procfs and sysfs use — io_remap_pfn_range() of the
// whole VMA from inside ->mmap, with vm_pgoff turned into the PFN.
public sealed partial class Kernel
{
    private VmOperationsStruct? _pciPhysVmOps;

    /// <summary>pci_phys_vm_ops: only .access = generic_access_phys (not used by the model).</summary>
    [KernelSymbol("pci_phys_vm_ops", "drivers/pci/mmap.c")]
    private VmOperationsStruct PciPhysVmOps => _pciPhysVmOps ??= new VmOperationsStruct { Name = "pci_phys_vm_ops" };

    /// <summary>pci_resource_to_user(): bus and CPU addresses coincide on x86.</summary>
    /// <remarks>Context: any; pure on x86.</remarks>
    [KernelSymbol("pci_resource_to_user", "drivers/pci/pci.c")]
    private static (ulong Start, ulong End) PciResourceToUser(PciDev dev, int bar) =>
        dev.Resource[bar] is { } r ? (r.Start, r.End) : (0, 0);

    /// <summary>
    /// pci_mmap_fits(): the VMA's page offset and length lie inside the BAR (procfs offsets are
    /// the BAR's user-visible address, sysfs offsets count from the BAR's start).
    /// </summary>
    /// <remarks>Context: -&gt;mmap or -&gt;mmap_prepare: mmap_lock write-held; pure arithmetic on the BAR.</remarks>
    [KernelSymbol("pci_mmap_fits", "drivers/pci/pci-sysfs.c")]
    private static bool PciMmapFits(PciDev pdev, int resno, VmAreaStruct vma, PciMmapApi api) =>
        PciMmapFits(pdev, resno, vma.VmPgoff, vma.Pages, api);

    /// <summary>pci_mmap_fits() on a page offset and a length in pages (a VMA or an mmap_prepare descriptor).</summary>
    private static bool PciMmapFits(PciDev pdev, int resno, ulong start, ulong nr, PciMmapApi api)
    {
        if (pdev.ResourceLen(resno) == 0)
        {
            return false;
        }
        ulong size = ((pdev.ResourceLen(resno) - 1) >> PAGE_SHIFT) + 1;
        ulong pciStart = 0;
        if (api == PciMmapApi.PCI_MMAP_PROCFS)
        {
            pciStart = PciResourceToUser(pdev, resno).Start >> PAGE_SHIFT;
        }
        return start >= pciStart && start < pciStart + size && start + nr <= pciStart + size;
    }

    /// <summary>
    /// pci_mmap_resource_range(): with vm_pgoff the page offset inside the BAR, maps the BAR
    /// uncached (or write-combined) by io_remap_pfn_range() of the whole VMA, setting vm_pgoff to
    /// the PFN — so the VMA's file offset is the physical address, as iomem_get_mapping() expects.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap: mmap_lock write-held and the VMA not yet linked; io_remap_pfn_range()
    /// takes PTLs and may sleep.
    /// </remarks>
    [KernelSymbol("pci_mmap_resource_range", "drivers/pci/mmap.c")]
    private async ValueTask<int> PciMmapResourceRange(PciDev pdev, int bar, VmAreaStruct vma, PciMmapState state, bool writeCombine)
    {
        ulong size = ((pdev.ResourceLen(bar) - 1) >> PAGE_SHIFT) + 1;
        if (vma.VmPgoff + vma.Pages > size)
        {
            return -Errno.EINVAL;
        }
        vma.VmPageProt = writeCombine ? PgprotWritecombine(vma.VmPageProt) : PgprotNoncached(vma.VmPageProt);
        if (state == PciMmapState.pci_mmap_io)
        {
            // pci_iobar_pfn(): x86 cannot mmap I/O port BARs.
            return -Errno.EINVAL;
        }
        vma.VmPgoff += pdev.ResourceStart(bar) >> PAGE_SHIFT;
        vma.VmOps = PciPhysVmOps;
        return await IoRemapPfnRange(vma, vma.VmStart, vma.VmPgoff, vma.VmEnd - vma.VmStart, vma.VmPageProt);
    }
}

using static Linux.VmFault;

namespace Linux;

// mm/memory.c: vmf_insert_mixed_mkwrite() — a ->pfn_mkwrite handler that must make the PTE
// writable itself, while holding its own lock (fbdev deferred I/O on memory without struct pages).
public sealed partial class Kernel
{
    /// <summary>
    /// vmf_insert_mixed_mkwrite() → __vm_insert_mixed(mkwrite = true): insert the PFN, or make the
    /// PTE already mapping it writable, young and dirty. x86 has pte_special, so this is always
    /// insert_pfn(), never a refcounted page.
    /// </summary>
    /// <remarks>
    /// Context: from -&gt;pfn_mkwrite: mmap_lock read-held or the VMA read-locked; the handler's
    /// own locks may be held. Takes and drops the PTL.
    /// </remarks>
    [KernelSymbol("vmf_insert_mixed_mkwrite", "mm/memory.c")]
    public async ValueTask<VmFault> VmfInsertMixedMkwrite(VmAreaStruct vma, ulong addr, ulong pfn)
    {
        // vm_mixed_ok(): a VM_MIXEDMAP or VM_PFNMAP VMA.
        if ((vma.VmFlags & (VmFlags.VM_MIXEDMAP | VmFlags.VM_PFNMAP)) == 0)
        {
            return VM_FAULT_SIGBUS;
        }
        if (addr < vma.VmStart || addr >= vma.VmEnd)
        {
            return VM_FAULT_SIGBUS;
        }
        return await InsertPfn(vma, addr, pfn, vma.VmPageProt, mkwrite: true);
    }
}

using static Linux.PgTable;
using static Linux.VmFault;
using static Linux.VmFlags;

namespace Linux;

/// <summary>
/// struct vm_special_mapping: a mapping the kernel itself installs in a user address space
/// ([vvar], [vvar_vclock], [vdso], [uprobes], …), described by a name, an optional array of pages
/// to hand out on fault, and optional hooks that replace the generic ones.
/// </summary>
[KernelSymbol("vm_special_mapping", "include/linux/mm_types.h")]
public sealed class VmSpecialMapping
{
    /// <summary>->name: what /proc/pid/maps shows, e.g. "[vdso]".</summary>
    public required string Name { get; init; }

    /// <summary>->pages: the pages the generic fault handler maps, by page offset in the mapping; an
    /// offset past the end (or a null list) faults with SIGBUS.</summary>
    public IReadOnlyList<Page>? Pages { get; init; }

    /// <summary>->fault(sm, vma, vmf): replaces the lookup in <see cref="Pages"/> (vvar_fault, vdso_fault).</summary>
    public Func<VmSpecialMapping, VmAreaStruct, VmFaultInfo, ValueTask<VmFault>>? Fault { get; init; }

    /// <summary>->mremap(sm, new_vma): told that the mapping moved (vdso_mremap updates mm->context.vdso);
    /// returns 0 or -errno.</summary>
    public Func<VmSpecialMapping, VmAreaStruct, int>? Mremap { get; init; }

    /// <summary>->close(sm, vma).</summary>
    public Action<VmSpecialMapping, VmAreaStruct>? Close { get; init; }

    public override string ToString() => Name;
}

// The special-mapping half of mm/mmap.c: _install_special_mapping() and special_mapping_vmops, which
// arch code (arch/x86/entry/vdso/vma.c, lib/vdso/datastore.c) uses to put [vvar], [vvar_vclock]
// and [vdso] into every new address space at exec time; and insert_vm_struct() (mm/vma.c), the
// way such kernel-made VMAs enter the tree.
public sealed partial class Kernel
{
    private VmOperationsStruct? _specialMappingVmops;

    /// <summary>
    /// special_mapping_vmops: fault from the mapping's page array (or its own ->fault), refuse to be
    /// split (the kernel relies on the size of these mappings staying what it installed; with
    /// VM_DONTEXPAND they can neither grow), pass ->mremap on, and name the VMA in /proc/pid/maps.
    /// There is deliberately no ->access: the vDSO code relies on [vvar] not being readable
    /// through ptrace or /proc/pid/mem.
    /// </summary>
    [KernelSymbol("special_mapping_vmops", "mm/mmap.c")]
    public VmOperationsStruct SpecialMappingVmops => _specialMappingVmops ??= new VmOperationsStruct
    {
        Name = "special_mapping_vmops",
        Close = SpecialMappingClose,
        Fault = SpecialMappingFault,
        Mremap = SpecialMappingMremap,
        MapName = SpecialMappingName,
        MaySplit = SpecialMappingSplit,
    };

    /// <summary>special_mapping_close(): the mapping's own ->close, if it has one.</summary>
    /// <remarks>Context: the mmap lock write-held (the VMA is being removed).</remarks>
    [KernelSymbol("special_mapping_close", "mm/mmap.c")]
    private ValueTask SpecialMappingClose(VmAreaStruct vma)
    {
        var sm = (VmSpecialMapping)vma.VmPrivateData!;
        sm.Close?.Invoke(sm, vma);
        return ValueTask.CompletedTask;
    }

    /// <summary>special_mapping_name(): the name kept in the vm_special_mapping.</summary>
    /// <remarks>Context: the VMA stable (mmap_lock or its VMA lock held, as /proc/pid/maps reads it).</remarks>
    [KernelSymbol("special_mapping_name", "mm/mmap.c")]
    private static string? SpecialMappingName(VmAreaStruct vma) => (vma.VmPrivateData as VmSpecialMapping)?.Name;

    /// <summary>
    /// special_mapping_mremap(): mremap() of a special mapping is allowed only by the process that
    /// owns it (WARN otherwise: nothing else can reach these VMAs) and tells the mapping's
    /// ->mremap where it went.
    /// </summary>
    /// <remarks>Context: -&gt;mremap: mmap_lock write-held (move_vma()).</remarks>
    [KernelSymbol("special_mapping_mremap", "mm/mmap.c")]
    private int SpecialMappingMremap(VmAreaStruct newVma)
    {
        var sm = (VmSpecialMapping)newVma.VmPrivateData!;
        if (WarnOnOnce(Current?.Mm != newVma.VmMm, "special_mapping_mremap: moved by a task of another mm"))
        {
            return -Errno.EFAULT;
        }
        return sm.Mremap?.Invoke(sm, newVma) ?? 0;
    }

    /// <summary>special_mapping_split(): special mappings are never split (munmap or mprotect of
    /// part of one fails with -EINVAL).</summary>
    /// <remarks>Context: -&gt;may_split: mmap_lock write-held (__split_vma()); pure.</remarks>
    [KernelSymbol("special_mapping_split", "mm/mmap.c")]
    private static int SpecialMappingSplit(VmAreaStruct vma, ulong addr) => -Errno.EINVAL;

    /// <summary>
    /// special_mapping_fault(): the mapping's own ->fault if it has one; otherwise the page at the
    /// fault's offset in the page array, with a reference for the caller; SIGBUS past its end.
    /// </summary>
    /// <remarks>Context: ->fault: mmap_lock or VMA read lock; no page-table lock held.</remarks>
    [KernelSymbol("special_mapping_fault", "mm/mmap.c")]
    private ValueTask<VmFault> SpecialMappingFault(VmFaultInfo vmf)
    {
        var vma = vmf.Vma;
        var sm = (VmSpecialMapping)vma.VmPrivateData!;
        if (sm.Fault is { } fault)
        {
            return fault(sm, vma, vmf);
        }
        var pages = sm.Pages;
        if (pages is null || vmf.Pgoff >= (ulong)pages.Count)
        {
            return ValueTask.FromResult(VM_FAULT_SIGBUS);
        }
        var page = pages[(int)vmf.Pgoff];
        GetPage(page, "special_mapping_fault");
        vmf.Page = page;
        return ValueTask.FromResult(VmFault.None);
    }

    /// <summary>vma_is_special_mapping(): whether <paramref name="vma"/> was installed for <paramref name="sm"/>.</summary>
    /// <remarks>Context: the VMA stable (mmap_lock or its VMA lock held).</remarks>
    [KernelSymbol("vma_is_special_mapping", "mm/mmap.c")]
    public bool VmaIsSpecialMapping(VmAreaStruct vma, VmSpecialMapping sm) =>
        vma.VmPrivateData == sm && vma.VmOps == SpecialMappingVmops;

    /// <summary>
    /// _install_special_mapping(): a VMA of <paramref name="len"/> bytes at <paramref name="addr"/>
    /// (which the caller chose, normally with get_unmapped_area()) served by special_mapping_vmops
    /// for <paramref name="spec"/>. Returns the VMA, or null and -errno.
    /// </summary>
    /// <remarks>Context: mmap write lock held (arch_setup_additional_pages() takes it).</remarks>
    [KernelSymbol("_install_special_mapping", "mm/mmap.c")]
    public ValueTask<(VmAreaStruct? Vma, int Err)> _InstallSpecialMapping(MmStruct mm, ulong addr, ulong len, VmFlags vmFlags,
        VmSpecialMapping spec)
    {
        ArgumentNullException.ThrowIfNull(mm);
        ArgumentNullException.ThrowIfNull(spec);
        return __InstallSpecialMapping(mm, addr, len, vmFlags, spec, SpecialMappingVmops);
    }

    /// <summary>
    /// __install_special_mapping(): allocate the VMA, give it VM_DONTEXPAND (and VM_SOFTDIRTY where
    /// page tables track soft-dirty) on top of the caller's flags minus any mlock state, the page
    /// protection those flags imply, the ops and the private data; insert it; account it.
    /// </summary>
    /// <remarks>Context: the mmap lock write-held.</remarks>
    [KernelSymbol("__install_special_mapping", "mm/mmap.c")]
    private async ValueTask<(VmAreaStruct? Vma, int Err)> __InstallSpecialMapping(MmStruct mm, ulong addr, ulong len, VmFlags vmFlags,
        object priv, VmOperationsStruct ops)
    {
        MmapAssertWriteLocked(mm);
        if (len == 0 || OffsetInPage(addr) || OffsetInPage(len) || addr + len < addr || addr + len > mm.TaskSize)
        {
            // The kernel's callers never pass these; the model refuses them rather than build a broken VMA.
            return (null, -Errno.EINVAL);
        }
        var vma = VmAreaAlloc(mm);
        VmaSetRange(vma, addr, addr + len, 0);
        vmFlags |= VM_DONTEXPAND;
        if (Config.MemSoftDirty)
        {
            // pgtable_supports_soft_dirty(): CONFIG_MEM_SOFT_DIRTY on x86-64.
            vmFlags |= VM_SOFTDIRTY;
        }
        VmFlagsInit(vma, vmFlags & ~VM_LOCKED_MASK);
        vma.VmPageProt = MmFlags.VmGetPageProt(vma.VmFlags);
        vma.VmOps = ops;
        vma.VmPrivateData = priv;
        int ret = await InsertVmStruct(mm, vma);
        if (ret != 0)
        {
            return (null, ret);
        }
        VmStatAccount(mm, vma.VmFlags, (long)(len >> PAGE_SHIFT));
        return (vma, 0);
    }

    /// <summary>
    /// insert_vm_struct(): links a VMA the kernel built itself (the stack at exec, special
    /// mappings) into the tree and i_mmap: -ENOMEM if it overlaps an existing VMA or cannot be
    /// charged; a purely anonymous VMA's vm_pgoff becomes its start page, as do_mmap() sets it.
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("insert_vm_struct", "mm/vma.c")]
    public async ValueTask<int> InsertVmStruct(MmStruct mm, VmAreaStruct vma)
    {
        ArgumentNullException.ThrowIfNull(mm);
        ArgumentNullException.ThrowIfNull(vma);
        MmapAssertWriteLocked(mm);
        long charged = (long)vma.Pages;
        if (mm.MmMt.FindVmaIntersection(vma.VmStart, vma.VmEnd) is not null)
        {
            return -Errno.ENOMEM;
        }
        if ((vma.VmFlags & VM_ACCOUNT) != 0 && VmEnoughMemory(charged) != 0)
        {
            return -Errno.ENOMEM;
        }
        if (vma.IsAnonymous)
        {
            BugOn(vma.AnonVma is not null, "insert_vm_struct: a new anonymous VMA already has an anon_vma");
            vma.VmPgoff = vma.VmStart >> PAGE_SHIFT;
        }
        await VmaLink(mm, vma);
        return 0;
    }
}

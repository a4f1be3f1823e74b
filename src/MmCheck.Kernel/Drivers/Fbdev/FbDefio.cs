using static Linux.PgTable;
using static Linux.VmFault;

namespace Linux;

/// <summary>How a framebuffer's mmap is built and how its writes are noticed.</summary>
public enum FbMmapStyle
{
    /// <summary>fb_deferred_io_mmap() over a vmalloc() framebuffer: pages with struct page, served
    /// by ->fault, first writes reported through ->page_mkwrite.</summary>
    DeferredIo,
    /// <summary>fb_deferred_io_mmap() for memory without refcounted pages (FBINFO_KMEMFB; here a
    /// VRAM BAR): VM_PFNMAP, vmf_insert_pfn() on fault, ->pfn_mkwrite makes the PTE writable
    /// itself under the defio lock (vmf_insert_mixed_mkwrite()).</summary>
    DeferredIoPfn,
    /// <summary>fb_io_mmap() of a VRAM BAR (vm_iomap_memory() → io_remap_pfn_range() inside ->mmap)
    /// with the dirty-tracking ->pfn_mkwrite the seed-000 thread wanted to add on top: the PTEs
    /// are writable before vma_set_page_prot() write-protects vm_page_prot, so mkwrite never runs.</summary>
    IoRemapWithMkwrite,
    /// <summary>The same through ->mmap_prepare and a deferred remap action: the PTEs are filled
    /// after the VMA is linked, but with the page protection captured at prepare time.</summary>
    IoRemapPrepareWithMkwrite,
}

/// <summary>struct fb_info with its struct fb_deferred_io: the framebuffer and its dirty-page list.</summary>
[KernelSymbol("fb_info", "include/linux/fb.h")]
public sealed class FbInfo
{
    internal static readonly LockClass DefioLockClass = LockClass.Define("fb_deferred_io.lock", sleeps: true);

    // Node, Style, SmemLen, Pfns, Vram, Inode and ListObj are fixed at registration.
    public readonly int Node;
    public readonly FbMmapStyle Style;
    /// <summary>fix.smem_len.</summary>
    public readonly ulong SmemLen;
    /// <summary>The PFN of each framebuffer page (vmalloc pages, or the VRAM BAR).</summary>
    public readonly ulong[] Pfns;
    /// <summary>The VRAM device, for the BAR-backed styles.</summary>
    public readonly PciDev? Vram;
    /// <summary>fbdefio->lock: protects the page list against the deferred work.</summary>
    public readonly Mutex Lock;
    /// <summary>fbdefio->pagereflist: page offset → PFN of pages written since the last flush.
    /// Protected by <see cref="Lock"/>.</summary>
    public readonly SortedDictionary<ulong, ulong> Pagereflist = [];
    /// <summary>fbdefio->mapping: the f_mapping of the open /dev/fbN. Set by open without a lock;
    /// read by the deferred work under <see cref="Lock"/>.</summary>
    public AddressSpace? Mapping;
    /// <summary>What the driver's deferred_io callback was handed, flush by flush (page offsets).
    /// Appended under <see cref="Lock"/>.</summary>
    public readonly List<IReadOnlyList<ulong>> Flushed = [];
    /// <summary>Model counter: mkwrite callbacks (no kernel state; unlocked).</summary>
    public long MkwriteCalls;
    internal readonly Inode Inode;
    /// <summary>Footprint identity of the page list.</summary>
    internal readonly ulong ListObj;

    internal FbInfo(Kernel k, int node, FbMmapStyle style, ulong smemLen, ulong[] pfns, PciDev? vram, Inode inode)
    {
        Node = node;
        Style = style;
        SmemLen = smemLen;
        Pfns = pfns;
        Vram = vram;
        Inode = inode;
        Lock = new Mutex(k, DefioLockClass, $"fb{node}.defio_lock");
        ListObj = ObjId.Make(ObjId.Kind.Other, k.NextObjectId());
    }

    public string Path => $"/dev/fb{Node}";

    public override string ToString() => $"fb{Node}({Style})";
}

// drivers/video/fbdev/core/fb_defio.c (deferred I/O: write-notify dirty tracking of an mmapped
// framebuffer) and fb_io_fops.c (fb_io_mmap(): remap the whole framebuffer in ->mmap). Sources:
// the current file as carried by fbdev maintainers' patches (2024–2025: "fbdev/deferred-io:
// Support contiguous kernel memory framebuffers", v3 2025-05-23, for the PFN path).
public sealed partial class Kernel
{
    /// <summary>Inode kind of /dev/fbN.</summary>
    public const string FbKind = "fb";

    /// <summary>Registered framebuffers (registered_fb[]).</summary>
    public readonly List<FbInfo> Framebuffers = [];

    /// <summary>
    /// register_framebuffer() + fb_deferred_io_init(): a framebuffer of <paramref name="smemLen"/>
    /// bytes — vmalloc pages for <see cref="FbMmapStyle.DeferredIo"/>, else BAR
    /// <paramref name="bar"/> of <paramref name="vram"/> — and its /dev/fbN.
    /// </summary>
    /// <remarks>Context: driver probe: single-threaded set-up, no locks.</remarks>
    [KernelSymbol("register_framebuffer", "drivers/video/fbdev/core/fbmem.c")]
    public FbInfo FbRegister(FbMmapStyle style, ulong smemLen, PciDev? vram = null, int bar = 0)
    {
        EnsureDevices();
        smemLen = PageAlign(smemLen);
        ulong n = smemLen >> PAGE_SHIFT;
        var pfns = new ulong[n];
        if (style == FbMmapStyle.DeferredIo)
        {
            for (ulong i = 0; i < n; i++)
            {
                // vmalloc(): one page at a time, the framebuffer holds its reference.
                pfns[i] = (AllocPage(zero: true) ?? throw new InvalidOperationException("no RAM for the framebuffer")).Pfn;
            }
        }
        else
        {
            if (vram is null || vram.ResourceLen(bar) < smemLen)
            {
                throw new ArgumentException($"{style} needs a VRAM BAR of at least {smemLen:x} bytes", nameof(vram));
            }
            for (ulong i = 0; i < n; i++)
            {
                pfns[i] = vram.BarPfn(bar) + i;
            }
        }
        int node = Framebuffers.Count;
        var inode = new Inode(this, NextIno(), FbKind, $"/dev/fb{node}") { ISize = (long)smemLen };
        inode.IMapping.CanWriteback = false;
        var info = new FbInfo(this, node, style, smemLen, pfns, vram, inode);
        inode.IPrivate = info;
        Framebuffers.Add(info);
        var fops = style switch
        {
            FbMmapStyle.IoRemapPrepareWithMkwrite => new FileOperations { Name = "fb_fops", MmapPrepare = FbIoMmapPrepare },
            FbMmapStyle.IoRemapWithMkwrite => new FileOperations { Name = "fb_fops", Mmap = FbIoMmap },
            _ => new FileOperations { Name = "fb_fops", Mmap = FbDeferredIoMmap },
        };
        RegisterDeviceNode(new DeviceNode { Path = info.Path, Inode = inode, Fops = fops, Open = FbOpen });
        return info;
    }

    /// <summary>fb_open() → fb_deferred_io_open(): the defio state learns the file's mapping.</summary>
    /// <remarks>Context: open(2): no mm locks held; records the file's mapping.</remarks>
    [KernelSymbol("fb_deferred_io_open", "drivers/video/fbdev/core/fb_defio.c")]
    private ValueTask<(File?, int)> FbOpen(DeviceNode node, int flags)
    {
        var info = (FbInfo)node.Inode.IPrivate!;
        var file = AllocDeviceFile(node, flags, null, info);
        info.Mapping = file.FMapping;
        return ValueTask.FromResult<(File?, int)>((file, 0));
    }

    private VmOperationsStruct? _fbDeferredIoVmOps;
    private VmOperationsStruct? _fbDirtyTrackVmOps;

    /// <summary>fb_deferred_io_vm_ops, registered for the write-notify invariant.</summary>
    /// <remarks>Context: read by fb_deferred_io_mmap() with mmap_lock write-held; built on first use, no
    /// lock.</remarks>
    [KernelSymbol("fb_deferred_io_vm_ops", "drivers/video/fbdev/core/fb_defio.c")]
    private VmOperationsStruct FbDeferredIoVmOps => _fbDeferredIoVmOps ??= TrackWriteNotify(new VmOperationsStruct
    {
        Name = "fb_deferred_io_vm_ops",
        Fault = FbDeferredIoFault,
        PageMkwrite = FbDeferredIoMkwrite,
        PfnMkwrite = FbDeferredIoPfnMkwrite,
    });

    /// <summary>The dirty-tracking vm_ops the seed-000 thread proposed to wrap around fb_io_mmap().</summary>
    private VmOperationsStruct FbDirtyTrackVmOps => _fbDirtyTrackVmOps ??= TrackWriteNotify(new VmOperationsStruct
    {
        Name = "fb_dirty_track_vm_ops",
        PfnMkwrite = FbDirtyTrackPfnMkwrite,
    });

    /// <summary>
    /// fb_deferred_io_mmap(): no PTE is installed here; VM_DONTEXPAND|VM_DONTDUMP, plus
    /// VM_PFNMAP|VM_IO for memory without refcounted pages (which must be shared).
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap: mmap_lock write-held (vm_flags_set() asserts it); the VMA is not yet
    /// linked.
    /// </remarks>
    [KernelSymbol("fb_deferred_io_mmap", "drivers/video/fbdev/core/fb_defio.c")]
    private async ValueTask<int> FbDeferredIoMmap(File file, VmAreaStruct vma)
    {
        var info = (FbInfo)file.PrivateData!;
        var flags = VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        if (info.Style == FbMmapStyle.DeferredIoPfn)
        {
            if ((vma.VmFlags & VmFlags.VM_SHARED) == 0)
            {
                return -Errno.EINVAL;
            }
            flags |= VmFlags.VM_PFNMAP | VmFlags.VM_IO;
        }
        vma.VmOps = FbDeferredIoVmOps;
        await VmFlagsSet(vma, flags);
        vma.VmPrivateData = info;
        return 0;
    }

    /// <summary>
    /// fb_deferred_io_fault(): the framebuffer page at vmf->pgoff. A vmalloc page is returned with
    /// a reference for finish_fault() to map (page->mapping and index set so that rmap finds it, as
    /// before v6.15); a PFN is inserted directly (read-only: vm_page_prot is write-protected).
    /// </summary>
    /// <remarks>Context: -&gt;fault: mmap_lock read-held or the VMA read-locked; no PTL held.</remarks>
    [KernelSymbol("fb_deferred_io_fault", "drivers/video/fbdev/core/fb_defio.c")]
    private async ValueTask<VmFault> FbDeferredIoFault(VmFaultInfo vmf)
    {
        var info = (FbInfo)vmf.Vma.VmPrivateData!;
        ulong offset = vmf.Pgoff << PAGE_SHIFT;
        if (offset >= info.SmemLen)
        {
            return VM_FAULT_SIGBUS;
        }
        ulong pfn = info.Pfns[vmf.Pgoff];
        BugOn(info.Mapping is null, "fb_deferred_io_fault: no mapping");
        if (info.Style == FbMmapStyle.DeferredIoPfn)
        {
            return await VmfInsertPfn(vmf.Vma, vmf.Address, pfn);
        }
        var page = new Page(pfn);
        GetPage(page);
        MemMap.Mapping(pfn) = vmf.Vma.VmFile!.FMapping.Handle;
        MemMap.SetIndex(pfn, vmf.Pgoff);
        vmf.Page = page;
        return VmFault.None;
    }

    /// <summary>
    /// fb_deferred_io_track_page(): under the defio lock, put the page on the dirty list and keep
    /// the work from write-protecting it before the PTE is writable: lock the page (mm unlocks it
    /// after making the PTE writable, VM_FAULT_LOCKED), or, without struct page, make the PTE
    /// writable here (vmf_insert_mixed_mkwrite()).
    /// </summary>
    /// <remarks>
    /// Context: from -&gt;page_mkwrite/-&gt;pfn_mkwrite with mmap_lock read-held or the VMA read-
    /// locked. Takes the defio mutex; returns VM_FAULT_LOCKED with the page locked (struct-page
    /// case), or makes the PTE writable under the mutex (PFN case). May sleep.
    /// </remarks>
    [KernelSymbol("fb_deferred_io_track_page", "drivers/video/fbdev/core/fb_defio.c")]
    private async ValueTask<VmFault> FbDeferredIoTrackPage(FbInfo info, VmFaultInfo vmf, ulong pfn)
    {
        info.MkwriteCalls++;
        ulong offset = vmf.Pgoff << PAGE_SHIFT;
        await info.Lock.Lock("fb_deferred_io_track_page");
        // fb_deferred_io_pageref_get(): the page joins the list (kept sorted by offset).
        Sched.Access(info.ListObj, write: true);
        info.Pagereflist[offset] = pfn;
        VmFault ret;
        if (info.Style == FbMmapStyle.DeferredIoPfn)
        {
            ret = await VmfInsertMixedMkwrite(vmf.Vma, vmf.Address, pfn);
        }
        else
        {
            await FolioLock(new Folio(pfn), "fb_deferred_io_track_page");
            ret = VM_FAULT_LOCKED;
        }
        await info.Lock.Unlock("fb_deferred_io_track_page");
        // schedule_delayed_work(&info->deferred_work, fbdefio->delay): run by FbDeferredIoWork().
        return ret;
    }

    /// <summary>fb_deferred_io_mkwrite() → fb_deferred_io_page_mkwrite(): the first write to a vmalloc page.</summary>
    /// <remarks>
    /// Context: -&gt;page_mkwrite: mmap_lock read-held or the VMA read-locked; returns with the
    /// page locked (VM_FAULT_LOCKED).
    /// </remarks>
    [KernelSymbol("fb_deferred_io_mkwrite", "drivers/video/fbdev/core/fb_defio.c")]
    private ValueTask<VmFault> FbDeferredIoMkwrite(VmFaultInfo vmf)
    {
        var info = (FbInfo)vmf.Vma.VmPrivateData!;
        return FbDeferredIoTrackPage(info, vmf, vmf.Page!.Value.Pfn);
    }

    /// <summary>fb_deferred_io_pfn_mkwrite(): the first write to a page of a VM_PFNMAP framebuffer.</summary>
    /// <remarks>
    /// Context: -&gt;pfn_mkwrite: mmap_lock read-held or the VMA read-locked; takes the defio mutex
    /// and the PTL.
    /// </remarks>
    [KernelSymbol("fb_deferred_io_pfn_mkwrite", "drivers/video/fbdev/core/fb_defio.c")]
    private ValueTask<VmFault> FbDeferredIoPfnMkwrite(VmFaultInfo vmf)
    {
        var info = (FbInfo)vmf.Vma.VmPrivateData!;
        return FbDeferredIoTrackPage(info, vmf, info.Pfns[vmf.Pgoff]);
    }

    /// <summary>
    /// The dirty tracker wrapped around fb_io_mmap(): note the page, let mm make the PTE writable
    /// (finish_mkwrite_fault()).
    /// </summary>
    private async ValueTask<VmFault> FbDirtyTrackPfnMkwrite(VmFaultInfo vmf)
    {
        var info = (FbInfo)vmf.Vma.VmPrivateData!;
        info.MkwriteCalls++;
        await info.Lock.Lock("fb_dirty_track_pfn_mkwrite");
        Sched.Access(info.ListObj, write: true);
        info.Pagereflist[vmf.Pgoff << PAGE_SHIFT] = info.Pfns[vmf.Pgoff];
        await info.Lock.Unlock("fb_dirty_track_pfn_mkwrite");
        return VmFault.None;
    }

    /// <summary>
    /// fb_io_mmap() → vm_iomap_memory(): remap the whole framebuffer (a VRAM BAR) with
    /// io_remap_pfn_range() inside ->mmap, under the dirty-tracking vm_ops.
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap: mmap_lock write-held; the VMA is not yet linked. The remap takes PTLs
    /// and may sleep.
    /// </remarks>
    [KernelSymbol("fb_io_mmap", "drivers/video/fbdev/core/fb_io_fops.c")]
    private async ValueTask<int> FbIoMmap(File file, VmAreaStruct vma)
    {
        var info = (FbInfo)file.PrivateData!;
        ulong len = vma.VmEnd - vma.VmStart;
        if ((vma.VmPgoff << PAGE_SHIFT) + len > info.SmemLen)
        {
            return -Errno.EINVAL;
        }
        vma.VmPageProt = PgprotWritecombine(MmFlags.VmGetPageProt(vma.VmFlags));
        vma.VmOps = FbDirtyTrackVmOps;
        vma.VmPrivateData = info;
        return await IoRemapPfnRange(vma, vma.VmStart, info.Pfns[0] + vma.VmPgoff, len, vma.VmPageProt);
    }

    /// <summary>
    /// fb_io_mmap() converted to ->mmap_prepare: flags and pgoff on the descriptor, the remap
    /// deferred to mmap_action_complete() after vma_link_file() and vma_set_page_prot().
    /// </summary>
    private ValueTask<int> FbIoMmapPrepare(VmAreaDesc desc)
    {
        var info = (FbInfo)desc.File.PrivateData!;
        if ((desc.Pgoff << PAGE_SHIFT) + (desc.End - desc.Start) > info.SmemLen)
        {
            return ValueTask.FromResult(-Errno.EINVAL);
        }
        desc.PageProt = PgprotWritecombine(desc.PageProt);
        desc.VmOps = FbDirtyTrackVmOps;
        desc.PrivateData = info;
        RemapPfnRangePrepare(desc, info.Pfns[0] + desc.Pgoff);
        return ValueTask.FromResult(0);
    }

    /// <summary>
    /// fb_deferred_io_work(): under the defio lock, write-protect every mapping of each dirty page
    /// (mapping_wrprotect_range(), with the page locked when it has a struct page), hand the list
    /// to the driver, and empty it. The kernel runs it from a delayed work item; the model runs it
    /// when a task calls it.
    /// </summary>
    /// <remarks>
    /// Context: workqueue context: no mm locks held. Takes the defio mutex, then each dirty page's
    /// lock and, through mapping_wrprotect_range(), i_mmap_rwsem and the PTLs. May sleep.
    /// </remarks>
    [KernelSymbol("fb_deferred_io_work", "drivers/video/fbdev/core/fb_defio.c")]
    public async ValueTask FbDeferredIoWork(FbInfo info)
    {
        await info.Lock.Lock("fb_deferred_io_work");
        Sched.Access(info.ListObj, write: true);
        foreach (var (offset, pfn) in info.Pagereflist)
        {
            ulong pgoff = offset >> PAGE_SHIFT;
            bool hasPage = PfnValid(pfn) && info.Style == FbMmapStyle.DeferredIo;
            if (hasPage)
            {
                await FolioLock(new Folio(pfn), "fb_deferred_io_work");
            }
            if (info.Mapping is { } mapping)
            {
                await MappingWrprotectRange(mapping, pgoff, pfn, 1);
                NoteWriteNotifyCleaned(mapping, pgoff, 1);
            }
            if (hasPage)
            {
                await FolioUnlock(new Folio(pfn), "fb_deferred_io_work");
            }
        }
        // fbdefio->deferred_io(info, &fbdefio->pagereflist): the driver copies the pages out.
        info.Flushed.Add([.. info.Pagereflist.Keys.Select(o => o >> PAGE_SHIFT)]);
        info.Pagereflist.Clear();
        await info.Lock.Unlock("fb_deferred_io_work");
    }
}

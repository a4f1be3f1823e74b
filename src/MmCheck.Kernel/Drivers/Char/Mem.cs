using static Linux.PgTable;

namespace Linux;

// drivers/char/mem.c: /dev/mem — raw access to physical addresses, mapped through the shared
// iomem address space (open_port() sets f_mapping = iomem_get_mapping()), refused by
// CONFIG_STRICT_DEVMEM for RAM and exclusively claimed regions (range_is_allowed()).
public sealed partial class Kernel
{
    /// <summary>Inode kind of /dev/mem.</summary>
    public const string DevMemKind = "devmem";

    /// <summary>O_DSYNC: /dev/mem maps uncached when opened with it.</summary>
    private const int O_DSYNC = 0x1000;

    private FileOperations? _memFops;

    /// <summary>mem_fops: ->mmap_prepare (mmap_mem_prepare) or, historically, ->mmap (mmap_mem).</summary>
    [KernelSymbol("mem_fops", "drivers/char/mem.c")]
    private FileOperations MemFops => _memFops ??= Variants.DevmemMmapPrepare
        ? new FileOperations { Name = "mem_fops", MmapPrepare = MmapMemPrepare }
        : new FileOperations { Name = "mem_fops", Mmap = MmapMem };

    private VmOperationsStruct? _mmapMemOps;

    /// <summary>mmap_mem_ops: only .access = generic_access_phys, which the model does not use.</summary>
    [KernelSymbol("mmap_mem_ops", "drivers/char/mem.c")]
    private VmOperationsStruct MmapMemOps => _mmapMemOps ??= new VmOperationsStruct { Name = "mmap_mem_ops" };

    /// <summary>chr_dev_init(): registers /dev/mem.</summary>
    /// <remarks>Context: boot, single-threaded; no locks.</remarks>
    [KernelSymbol("chr_dev_init", "drivers/char/mem.c")]
    private void DevMemInit()
    {
        var inode = new Inode(this, NextIno(), DevMemKind, "/dev/mem");
        inode.IMapping.CanWriteback = false;
        RegisterDeviceNode(new DeviceNode
        {
            Path = "/dev/mem",
            Inode = inode,
            Fops = MemFops,
            Ops = new DeviceFileOperations { Read = ReadMem, Write = WriteMem },
            Open = OpenMem,
        });
    }

    /// <summary>open_mem() = open_port(): CAP_SYS_RAWIO (every model task has it) and the shared iomem mapping.</summary>
    /// <remarks>Context: open(2): no mm locks held.</remarks>
    [KernelSymbol("open_port", "drivers/char/mem.c")]
    private ValueTask<(File?, int)> OpenMem(DeviceNode node, int flags) =>
        ValueTask.FromResult<(File?, int)>((AllocDeviceFile(node, flags, IomemGetMapping()), 0));

    /// <summary>range_is_allowed() (CONFIG_STRICT_DEVMEM): every page passes devmem_is_allowed().</summary>
    /// <remarks>
    /// Context: may take resource_lock for reading (devmem_is_allowed()); called from -&gt;mmap
    /// with mmap_lock write-held or from read/write with no mm locks.
    /// </remarks>
    [KernelSymbol("range_is_allowed", "drivers/char/mem.c")]
    private async ValueTask<bool> RangeIsAllowed(ulong pfn, ulong size)
    {
        ulong from = pfn << PAGE_SHIFT;
        ulong to = from + size;
        for (ulong cursor = from; cursor < to; cursor += PAGE_SIZE, pfn++)
        {
            if (await DevmemIsAllowed(pfn) == 0)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// phys_mem_access_prot_allowed() (x86 PAT): the same range check, and the cache mode —
    /// write-back, or UC- when the file was opened O_DSYNC. (PAT's memtype reservation, which may
    /// change the mode further, is not modelled.)
    /// </summary>
    /// <remarks>Context: -&gt;mmap: mmap_lock write-held. Pure apart from the range check.</remarks>
    [KernelSymbol("phys_mem_access_prot_allowed", "arch/x86/mm/pat/memtype.c")]
    private static PgProt PhysMemAccessProt(File file, PgProt prot)
    {
        ulong v = prot.Val & ~X86Pte._PAGE_CACHE_MASK;
        if ((file.FFlags & O_DSYNC) != 0)
        {
            v |= X86Pte._PAGE_PCD;
        }
        return new PgProt(v);
    }

    /// <summary>The checks mmap_mem() and mmap_mem_prepare() share; 0 or -errno.</summary>
    private async ValueTask<int> MmapMemCheck(ulong pgoff, ulong size)
    {
        ulong offset = pgoff << PAGE_SHIFT;
        if (offset >> PAGE_SHIFT != pgoff)
        {
            return -Errno.EINVAL;
        }
        if (offset + size - 1 < offset)
        {
            return -Errno.EINVAL;
        }
        // valid_mmap_phys_addr_range() and private_mapping_ok() always pass on x86 with an MMU.
        if (!await RangeIsAllowed(pgoff, size))
        {
            return -Errno.EPERM;
        }
        return 0;
    }

    /// <summary>
    /// mmap_mem(): the legacy ->mmap — checks, then remap_pfn_range() of the whole VMA while the
    /// VMA is neither in the tree nor in i_mmap (the seed-000 window).
    /// </summary>
    /// <remarks>
    /// Context: -&gt;mmap: mmap_lock write-held and the VMA not yet linked; remap_pfn_range() takes
    /// PTLs and may sleep.
    /// </remarks>
    [KernelSymbol("mmap_mem", "drivers/char/mem.c")]
    private async ValueTask<int> MmapMem(File file, VmAreaStruct vma)
    {
        ulong size = vma.VmEnd - vma.VmStart;
        int err = await MmapMemCheck(vma.VmPgoff, size);
        if (err != 0)
        {
            return err;
        }
        vma.VmPageProt = PhysMemAccessProt(file, vma.VmPageProt);
        vma.VmOps = MmapMemOps;
        if (await RemapPfnRange(vma, vma.VmStart, vma.VmPgoff, size, vma.VmPageProt) != 0)
        {
            return -Errno.EAGAIN;
        }
        return 0;
    }

    /// <summary>
    /// mmap_mem_prepare(): the same checks on the descriptor, then a deferred full remap
    /// (mmap_action_remap_full()) that runs once the VMA is linked.
    /// </summary>
    /// <remarks>Context: -&gt;mmap_prepare: mmap_lock write-held; no VMA exists yet, only the descriptor.</remarks>
    [KernelSymbol("mmap_mem_prepare", "drivers/char/mem.c")]
    private async ValueTask<int> MmapMemPrepare(VmAreaDesc desc)
    {
        ulong size = desc.End - desc.Start;
        int err = await MmapMemCheck(desc.Pgoff, size);
        if (err != 0)
        {
            return err;
        }
        desc.PageProt = PhysMemAccessProt(desc.File, desc.PageProt);
        desc.VmOps = MmapMemOps;
        RemapPfnRangePrepare(desc, desc.Pgoff);
        return 0;
    }

    /// <summary>read_mem(): one value at a physical address; zeroes where devmem_is_allowed() says 2.</summary>
    /// <remarks>Context: pread(2): no mm locks held; the permission check may take resource_lock for reading.</remarks>
    [KernelSymbol("read_mem", "drivers/char/mem.c")]
    private async ValueTask<(long, ulong)> ReadMem(File file, long offset, int size)
    {
        ulong p = (ulong)offset;
        int allowed = await DevmemIsAllowed(p >> PAGE_SHIFT);
        if (allowed == 0)
        {
            return (-Errno.EPERM, 0);
        }
        if (allowed == 2)
        {
            return (size, 0);
        }
        await Sched.Point(SchedPointKind.DeviceAccess, ObjId.Word(p), "read_mem");
        Sched.Access(ObjId.Word(p), write: false);
        return (size, Mem.Load(p, size));
    }

    /// <summary>write_mem(): one value at a physical address; skipped where devmem_is_allowed() says 2.</summary>
    /// <remarks>
    /// Context: pwrite(2): no mm locks held; the permission check may take resource_lock for
    /// reading.
    /// </remarks>
    [KernelSymbol("write_mem", "drivers/char/mem.c")]
    private async ValueTask<long> WriteMem(File file, long offset, int size, ulong value)
    {
        ulong p = (ulong)offset;
        int allowed = await DevmemIsAllowed(p >> PAGE_SHIFT);
        if (allowed == 0)
        {
            return -Errno.EPERM;
        }
        if (allowed == 1)
        {
            await Sched.Point(SchedPointKind.DeviceAccess, ObjId.Word(p), "write_mem");
            Sched.Access(ObjId.Word(p), write: true);
            StoreFrame(p >> PAGE_SHIFT, p, size, value);
        }
        return size;
    }
}

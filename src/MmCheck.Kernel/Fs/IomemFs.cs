using static Linux.PgTable;

namespace Linux;

// kernel/resource.c: the "iomem" pseudo-filesystem inode whose address space every raw mapping
// of physical addresses shares (/dev/mem since v5.8; procfs and sysfs PCI resources since
// 636b21b50152), so that a driver claiming a region can revoke them all through i_mmap; and the
// x86 policy of arch/x86/mm/init.c:devmem_is_allowed() that decides whether it must.
public sealed partial class Kernel
{
    private Inode? _iomemInode;

    /// <summary>
    /// iomem_init_inode() (fs_initcall): the pseudo inode whose mapping is indexed by physical
    /// address (file offset = physical address).
    /// </summary>
    /// <remarks>Context: boot: single-threaded set-up.</remarks>
    [KernelSymbol("iomem_init_inode", "kernel/resource.c")]
    private Inode IomemInitInode()
    {
        var inode = new Inode(this, NextIno(), "iomem", "iomem") { ISize = long.MaxValue };
        inode.IMapping.CanWriteback = false;
        inode.ICount++;
        return inode;
    }

    /// <summary>iomem_get_mapping(): the shared address space of raw physical-memory mappings.</summary>
    /// <remarks>Context: any; the iomem inode never changes after boot.</remarks>
    [KernelSymbol("iomem_get_mapping", "kernel/resource.c")]
    public AddressSpace IomemGetMapping()
    {
        EnsureDevices();
        return (_iomemInode ??= IomemInitInode()).IMapping;
    }

    /// <summary>
    /// revoke_iomem(): after __request_region() marked <paramref name="res"/> busy (resource_lock
    /// dropped), zap every user mapping of it made through iomem_get_mapping() — unless
    /// devmem_is_allowed() still allows both ends, which it does for a region that is not
    /// exclusive ("iomem=relaxed"). Compiled only with CONFIG_IO_STRICT_DEVMEM, which the model
    /// ties to <see cref="StrictIomemChecks"/> (under it every busy region is exclusive).
    /// </summary>
    /// <remarks>
    /// Context: no resource_lock and no mm locks held (called after __request_region() released
    /// resource_lock). unmap_mapping_range() takes i_mmap_rwsem and PTLs; may sleep.
    /// </remarks>
    [KernelSymbol("revoke_iomem", "kernel/resource.c")]
    private async ValueTask RevokeIomem(Resource res)
    {
        if (!StrictIomemChecks)
        {
            // !CONFIG_IO_STRICT_DEVMEM: revoke_iomem() is an empty stub.
            return;
        }
        if (_iomemInode is not { } inode)
        {
            // Claims before fs_initcall find no inode and nothing mapped.
            return;
        }
        if (await DevmemIsAllowed(res.Start >> PAGE_SHIFT) != 0 && await DevmemIsAllowed(res.End >> PAGE_SHIFT) != 0)
        {
            return;
        }
        await UnmapMappingRange(inode.IMapping, (long)res.Start, (long)res.Size, evenCows: true);
        NoteRevocation(res.Start, res.End, () => res.Parent is not null, IsRawIomemVma, $"claim of {res}");
    }

    /// <summary>
    /// region_intersects(addr, size, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE) != REGION_DISJOINT:
    /// does the range touch System RAM?
    /// </summary>
    /// <remarks>Context: no resource_lock held; takes it for reading.</remarks>
    [KernelSymbol("region_intersects", "kernel/resource.c")]
    public async ValueTask<bool> RegionIntersectsSystemRam(ulong start, ulong size)
    {
        ulong end = start + size - 1;
        await ResourceLock.DownRead("region_intersects");
        Sched.Access(ObjId.Make(ObjId.Kind.Resource, 0), write: false);
        bool hit = false;
        foreach (var p in Iomem.Children)
        {
            if (p.Start > end || p.End < start)
            {
                continue;
            }
            if ((p.Flags & Resource.IORESOURCE_SYSTEM_RAM) == Resource.IORESOURCE_SYSTEM_RAM)
            {
                hit = true;
                break;
            }
        }
        await ResourceLock.UpRead("region_intersects");
        return hit;
    }

    /// <summary>
    /// devmem_is_allowed() (x86): 0 = refused, 1 = allowed, 2 = read as zeroes. RAM is refused
    /// (zeroes below 1 MiB); an exclusive region is refused except in the low 1 MiB; anything else
    /// (PCI BARs nobody claimed exclusively) is allowed.
    /// </summary>
    /// <remarks>Context: no resource_lock held; may take it for reading.</remarks>
    [KernelSymbol("devmem_is_allowed", "arch/x86/mm/init.c")]
    public async ValueTask<int> DevmemIsAllowed(ulong pagenr)
    {
        if (await RegionIntersectsSystemRam(pagenr << PAGE_SHIFT, PAGE_SIZE))
        {
            return pagenr < 256 ? 2 : 0;
        }
        if (await IomemIsExclusive(pagenr << PAGE_SHIFT))
        {
            return pagenr < 256 ? 1 : 0;
        }
        return 1;
    }
}

namespace Linux;

/// <summary>struct resource: a node of the iomem (or ioport) tree.</summary>
[KernelSymbol("resource", "include/linux/ioport.h")]
public sealed class Resource(string name, ulong start, ulong end, ulong flags)
{
    public const ulong IORESOURCE_IO = 0x00000100;
    public const ulong IORESOURCE_MEM = 0x00000200;
    public const ulong IORESOURCE_REG = 0x00000300;
    public const ulong IORESOURCE_PREFETCH = 0x00002000;
    public const ulong IORESOURCE_SYSRAM = 0x01000000;
    public const ulong IORESOURCE_EXCLUSIVE = 0x08000000;
    public const ulong IORESOURCE_MUXED = 0x00400000;
    public const ulong IORESOURCE_BUSY = 0x80000000;
    public const ulong IORESOURCE_SYSTEM_RAM = IORESOURCE_MEM | IORESOURCE_SYSRAM;
    public const ulong IORESOURCE_TYPE_BITS = 0x00001f00;

    public string Name = name;
    public ulong Start = start;
    public ulong End = end;
    public ulong Flags = flags;
    public Resource? Parent;
    /// <summary>Children in address order (the kernel's child/sibling list).</summary>
    public readonly List<Resource> Children = [];

    public ulong Size => End - Start + 1;

    public override string ToString() => $"{Start:x8}-{End:x8} : {Name}";
}

// kernel/resource.c: the iomem tree, region requests and exclusivity.
public sealed partial class Kernel
{
    /// <summary>iomem_resource: the root of the physical address space.</summary>
    public readonly Resource Iomem;

    private RwSemaphore? _resourceLock;

    /// <summary>resource_lock (an rwlock_t).</summary>
    public RwSemaphore ResourceLock => _resourceLock ??= new RwSemaphore(this, LockClass.ResourceLock, "resource_lock");

    /// <summary>
    /// Called after a region of iomem was claimed, with resource_lock dropped:
    /// kernel/resource.c:revoke_iomem(). The device layer installs the revoke (unmap_mapping_range
    /// over iomem_get_mapping()'s inode); without devices there is nothing mapped to revoke.
    /// </summary>
    public Func<Resource, ValueTask>? RevokeIomemHook;

    /// <summary>__request_resource(): inserts <paramref name="n"/> under <paramref name="root"/>, or returns the conflict.</summary>
    /// <remarks>Context: resource_lock write-held (by __request_region()).</remarks>
    [KernelSymbol("__request_resource", "kernel/resource.c")]
    private static Resource? __RequestResource(Resource root, Resource n)
    {
        if (n.End < n.Start || n.Start < root.Start || n.End > root.End)
        {
            return root;
        }
        int i = 0;
        for (; i < root.Children.Count; i++)
        {
            var tmp = root.Children[i];
            if (tmp.Start > n.End)
            {
                break;
            }
            if (tmp.End < n.Start)
            {
                continue;
            }
            return tmp;
        }
        root.Children.Insert(i, n);
        n.Parent = root;
        return null;
    }

    /// <summary>
    /// __request_region(): claims [start, start+n) as BUSY under the first non-busy resource that
    /// contains it; null on conflict. A claim under iomem_resource then calls revoke_iomem(),
    /// outside resource_lock, which unmaps raw user mappings of the range only with
    /// CONFIG_IO_STRICT_DEVMEM and when devmem_is_allowed() refuses its first or last page
    /// (kernel/resource.c:revoke_iomem(); <see cref="RevokeIomemHook"/>).
    /// </summary>
    /// <remarks>Context: may sleep; takes resource_lock for write and drops it before revoking mappings.</remarks>
    [KernelSymbol("__request_region", "kernel/resource.c")]
    public async ValueTask<Resource?> __RequestRegion(Resource parent, ulong start, ulong n, string name, ulong flags)
    {
        var origParent = parent;
        var res = new Resource(name, start, start + n - 1, 0);
        await ResourceLock.DownWrite();
        Sched.Access(ObjId.Make(ObjId.Kind.Resource, 0), write: true);
        Resource? result = res;
        while (true)
        {
            res.Flags = (parent.Flags & Resource.IORESOURCE_TYPE_BITS) | Resource.IORESOURCE_BUSY | flags;
            var conflict = __RequestResource(parent, res);
            if (conflict is null)
            {
                break;
            }
            if (conflict != parent && (conflict.Flags & Resource.IORESOURCE_BUSY) == 0)
            {
                parent = conflict;
                continue;
            }
            result = null;
            break;
        }
        await ResourceLock.UpWrite();
        if (result is not null && origParent == Iomem && RevokeIomemHook is { } revoke)
        {
            await revoke(result);
        }
        return result;
    }

    /// <summary>request_mem_region(): the new BUSY resource, or null on a conflict (callers then
    /// fail with -EBUSY); then revoke_iomem() as <see cref="__RequestRegion"/> says.</summary>
    /// <remarks>Context: process context, may sleep; no mm lock held (resource_lock is dropped
    /// before the revoke takes i_mmap_rwsem and the page-table locks).</remarks>
    [KernelSymbol("request_mem_region", "include/linux/ioport.h")]
    public ValueTask<Resource?> RequestMemRegion(ulong start, ulong n, string name) =>
        __RequestRegion(Iomem, start, n, name, 0);

    /// <summary>request_mem_region_exclusive(): the claim also forbids /dev/mem access.</summary>
    /// <remarks>Context: as <see cref="RequestMemRegion"/>.</remarks>
    [KernelSymbol("request_mem_region_exclusive", "include/linux/ioport.h")]
    public ValueTask<Resource?> RequestMemRegionExclusive(ulong start, ulong n, string name) =>
        __RequestRegion(Iomem, start, n, name, Resource.IORESOURCE_EXCLUSIVE);

    /// <summary>__release_region(): drops the BUSY region exactly matching [start, start+n); none
    /// matching is only a pr_warn() in the log, as in kernel/resource.c:__release_region().</summary>
    /// <remarks>Context: takes resource_lock for write.</remarks>
    [KernelSymbol("__release_region", "kernel/resource.c")]
    public async ValueTask<bool> __ReleaseRegion(Resource parent, ulong start, ulong n)
    {
        ulong end = start + n - 1;
        await ResourceLock.DownWrite();
        Sched.Access(ObjId.Make(ObjId.Kind.Resource, 0), write: true);
        bool found = ReleaseIn(parent, start, end);
        await ResourceLock.UpWrite();
        if (!found)
        {
            PrWarn($"Trying to free nonexistent resource <{start:x16}-{end:x16}>");
        }
        return found;
    }

    private static bool ReleaseIn(Resource p, ulong start, ulong end)
    {
        for (int i = 0; i < p.Children.Count; i++)
        {
            var res = p.Children[i];
            if (res.Start <= start && res.End >= end)
            {
                if ((res.Flags & Resource.IORESOURCE_BUSY) == 0)
                {
                    return ReleaseIn(res, start, end);
                }
                if (res.Start != start || res.End != end)
                {
                    return false;
                }
                p.Children.RemoveAt(i);
                res.Parent = null;
                return true;
            }
            if (res.Start > end)
            {
                break;
            }
        }
        return false;
    }

    /// <summary>release_mem_region(): false when no BUSY region matches [start, start+n) exactly.</summary>
    /// <remarks>Context: process context; takes resource_lock for write.</remarks>
    [KernelSymbol("release_mem_region", "include/linux/ioport.h")]
    public ValueTask<bool> ReleaseMemRegion(ulong start, ulong n) => __ReleaseRegion(Iomem, start, n);

    /// <summary>strict_iomem_checks: "iomem=strict" (CONFIG_IO_STRICT_DEVMEM off, as on distribution kernels).</summary>
    public bool StrictIomemChecks { get; set; }

    /// <summary>
    /// resource_is_exclusive(): a page is exclusive if it lies in System RAM marked exclusive, or in
    /// a BUSY region that is IORESOURCE_EXCLUSIVE (or any BUSY region under iomem=strict).
    /// </summary>
    /// <remarks>Context: takes resource_lock for read.</remarks>
    [KernelSymbol("iomem_is_exclusive", "kernel/resource.c")]
    public async ValueTask<bool> IomemIsExclusive(ulong addr)
    {
        addr &= PgTable.PAGE_MASK;
        ulong last = addr + PgTable.PAGE_SIZE - 1;
        await ResourceLock.DownRead();
        Sched.Access(ObjId.Make(ObjId.Kind.Resource, 0), write: false);
        bool err = IsExclusiveIn(Iomem, addr, last);
        await ResourceLock.UpRead();
        return err;
    }

    private bool IsExclusiveIn(Resource root, ulong addr, ulong last)
    {
        const ulong exclusiveSystemRam = Resource.IORESOURCE_SYSTEM_RAM | Resource.IORESOURCE_EXCLUSIVE;
        foreach (var p in root.Children)
        {
            if (p.Start > last)
            {
                break;
            }
            if (p.End < addr)
            {
                continue;
            }
            if ((p.Flags & exclusiveSystemRam) == exclusiveSystemRam)
            {
                return true;
            }
            if ((p.Flags & Resource.IORESOURCE_BUSY) != 0 &&
                ((p.Flags & Resource.IORESOURCE_EXCLUSIVE) != 0 || StrictIomemChecks))
            {
                return true;
            }
            if (IsExclusiveIn(p, addr, last))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The resource tree in /proc/iomem form.</summary>
    public string ProcIomem()
    {
        var sb = new System.Text.StringBuilder();
        void Walk(Resource r, int depth)
        {
            foreach (var c in r.Children)
            {
                sb.Append(new string(' ', depth * 2)).Append(c).Append('\n');
                Walk(c, depth + 1);
            }
        }
        Walk(Iomem, 0);
        return sb.ToString();
    }
}

namespace Linux;

/// <summary>struct inode: the parts mm uses.</summary>
[KernelSymbol("inode", "include/linux/fs.h")]
public sealed class Inode
{
    public readonly ulong Ino;
    /// <summary>i_size; read with i_size_read(). Protected by i_rwsem for writers.</summary>
    public long ISize;
    public readonly AddressSpace IMapping;
    private readonly Kernel _k;
    private readonly ulong _iRwsemId;
    private RwSemaphore? _iRwsem;
    /// <summary>What kind of file this is (shmem, device, …), for /proc/pid/maps and the fs hooks.</summary>
    public readonly string Kind;
    /// <summary>The name /proc/pid/maps shows ("/memfd:name (deleted)").</summary>
    public string Path;
    /// <summary>inode->i_private.</summary>
    public object? IPrivate;
    /// <summary>Write seals (memfd F_SEAL_*).</summary>
    public int Seals;
    public int NLink = 1;
    /// <summary>i_count: references from open files.</summary>
    public int ICount;
    /// <summary>shmem_inode_info->flags: VM_NORESERVE when the size was not charged to vm_committed_as.</summary>
    public VmFlags ShmemFlags;

    internal Inode(Kernel k, ulong ino, string kind, string path)
    {
        Ino = ino;
        Kind = kind;
        Path = path;
        _k = k;
        IMapping = new AddressSpace(k, this);
        _iRwsemId = k.NextObjectId();
    }

    /// <summary>inode->i_rwsem, made on first use: most inodes of a scenario (device and sysfs
    /// files) never take it.</summary>
    public RwSemaphore IRwsem => _iRwsem ??= new RwSemaphore(_k, LockClass.IRwsem, new LockLabel("inode#", Ino, ".i_rwsem"), _iRwsemId);

    public override string ToString() => $"inode#{Ino}({Kind})";
}

/// <summary>
/// struct address_space: the page cache of a file (i_pages) and the VMAs that map it (i_mmap).
/// </summary>
/// <remarks>The page cache, i_mmap and their locks are made on first use (most files of a
/// scenario are device nodes never read through or mapped); the locks' footprint ids are reserved
/// with the address_space.</remarks>
[KernelSymbol("address_space", "include/linux/fs.h")]
public sealed class AddressSpace
{
    public readonly Inode Host;
    /// <summary>Handle stored in folio->mapping.</summary>
    public readonly int Handle;
    /// <summary>Footprint identity of i_pages.</summary>
    public readonly ulong PagesObj;
    /// <summary>mapping_can_writeback(): false for shmem and devices (no dirty accounting).</summary>
    public bool CanWriteback;
    private readonly Kernel _k;
    private readonly ulong _iMmapRwsemId;
    private readonly ulong _iPagesLockId;
    private SortedDictionary<long, ulong>? _iPages;
    private List<VmAreaStruct>? _iMmap;
    private RwSemaphore? _iMmapRwsem;
    private SpinLock? _iPagesLock;

    internal AddressSpace(Kernel k, Inode host)
    {
        _k = k;
        Host = host;
        Handle = k.Handles.Register(this);
        _iMmapRwsemId = k.NextObjectId();
        _iPagesLockId = k.NextObjectId();
        PagesObj = ObjId.Make(ObjId.Kind.PageCache, host.Ino);
    }

    /// <summary>i_pages: index → PFN. Protected by the i_pages lock (xa_lock).</summary>
    public SortedDictionary<long, ulong> IPages => _iPages ??= [];
    /// <summary>i_mmap: the VMAs mapping this file. Protected by i_mmap_rwsem.</summary>
    public List<VmAreaStruct> IMmap => _iMmap ??= [];
    public RwSemaphore IMmapRwsem => _iMmapRwsem ??= new RwSemaphore(_k, LockClass.IMmapRwsem, new LockLabel("mapping#", Host.Ino, ".i_mmap_rwsem"), _iMmapRwsemId);
    public SpinLock IPagesLock => _iPagesLock ??= new SpinLock(_k, LockClass.IPagesLock, new LockLabel("mapping#", Host.Ino, ".i_pages"), _iPagesLockId);
    /// <summary>mapping->nrpages.</summary>
    public long NrPages => _iPages?.Count ?? 0;

    public override string ToString() => $"mapping({Host})";
}

/// <summary>struct file_operations: the hooks mm calls on a file.</summary>
[KernelSymbol("file_operations", "include/linux/fs.h")]
public sealed class FileOperations
{
    public required string Name { get; init; }
    /// <summary>->mmap(file, vma): called by mmap_region() before the VMA is linked (legacy).</summary>
    public Func<File, VmAreaStruct, ValueTask<int>>? Mmap { get; init; }
    /// <summary>->mmap_prepare(desc): called before any VMA exists (current).</summary>
    public Func<VmAreaDesc, ValueTask<int>>? MmapPrepare { get; init; }
    /// <summary>->release(inode, file).</summary>
    public Func<File, ValueTask>? Release { get; init; }
    /// <summary>->get_unmapped_area().</summary>
    public Func<File, ulong, ulong, ulong, ulong, ulong>? GetUnmappedArea { get; init; }
    /// <summary>FMODE_* capabilities the open sets (for mmap's checks).</summary>
    public bool NoMmapWrite { get; init; }

    public override string ToString() => Name;
}

/// <summary>
/// struct vm_area_desc: what ->mmap_prepare() sees and may change before the VMA exists,
/// including the action to run once the VMA is linked (mmap_action).
/// </summary>
[KernelSymbol("vm_area_desc", "include/linux/mm_types.h")]
public sealed class VmAreaDesc
{
    public required MmStruct Mm;
    public required File File;
    public ulong Start;
    public ulong End;
    public ulong Pgoff;
    public VmFlags VmFlags;
    public PgProt PageProt;
    public VmOperationsStruct? VmOps;
    public object? PrivateData;
    /// <summary>desc->action: what to do once the VMA is in the tree and in i_mmap.</summary>
    public MmapAction Action = new();
}

/// <summary>struct mmap_action: deferred population requested by ->mmap_prepare().</summary>
[KernelSymbol("mmap_action", "include/linux/mm_types.h")]
public sealed class MmapAction
{
    public enum ActionType { Nothing, RemapPfn }

    public ActionType Type;
    public ulong RemapStart;
    public ulong RemapStartPfn;
    public ulong RemapSize;
    public PgProt RemapPgProt;
    /// <summary>Keep i_mmap_rwsem write-held from vma_link_file() until the action completes.</summary>
    public bool HideFromRmapUntilComplete;
    /// <summary>->success_hook(vma) run after the action; a non-zero return unmaps.</summary>
    public Func<VmAreaStruct, ValueTask<int>>? SuccessHook;
}

/// <summary>struct file: an open file.</summary>
[KernelSymbol("file", "include/linux/fs.h")]
public sealed class File
{
    public readonly Inode FInode;
    public readonly AddressSpace FMapping;
    public readonly FileOperations FOp;
    /// <summary>O_* flags it was opened with.</summary>
    public readonly int FFlags;
    public object? PrivateData;
    /// <summary>f_count.</summary>
    public int FCount = 1;

    internal File(Inode inode, FileOperations fop, int flags, AddressSpace? mapping = null)
    {
        FInode = inode;
        FOp = fop;
        FFlags = flags;
        FMapping = mapping ?? inode.IMapping;
    }

    public bool Readable => (FFlags & Mman.O_ACCMODE) is Mman.O_RDONLY or Mman.O_RDWR;

    public bool Writable => (FFlags & Mman.O_ACCMODE) is Mman.O_WRONLY or Mman.O_RDWR;

    public override string ToString() => $"file({FInode.Path})";
}

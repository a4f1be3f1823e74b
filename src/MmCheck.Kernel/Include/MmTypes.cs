namespace Linux;

/// <summary>
/// struct mm_struct: one address space. There is one per process; threads share it.
/// </summary>
[KernelSymbol("mm_struct", "include/linux/mm_types.h")]
public sealed class MmStruct
{
    public readonly Kernel K;
    public readonly int Id;
    /// <summary>The top-level table. Immutable.</summary>
    public readonly PageTable Pgd;
    /// <summary>mm->mm_mt: the VMAs. Protected by mmap_lock; read locklessly by lock_vma_under_rcu().</summary>
    public readonly VmaTree MmMt;
    /// <summary>mm->mmap_lock.</summary>
    public readonly RwSemaphore MmapLock;
    /// <summary>mm->page_table_lock: upper-level table installs (and PMDs where split locks are off).</summary>
    public readonly SpinLock PageTableLock;
    /// <summary>mm->mm_lock_seq: odd while the mmap lock is write-held; VMAs write-locked in this
    /// section carry the same value in vm_lock_seq. Written only by the mmap_lock writer; read
    /// locklessly by vma_start_read().</summary>
    public long MmLockSeq;
    /// <summary>mm->write_protect_seq: fork's COW window, checked by GUP-fast. Written by dup_mmap()
    /// with the mmap write lock held; read locklessly (seqcount).</summary>
    public long WriteProtectSeq;
    /// <summary>mm->mmap_base: set by arch_pick_mmap_layout() before the mm is visible; then the mmap lock.</summary>
    public ulong MmapBase;
    /// <summary>mm->task_size: set before the mm is visible; immutable after.</summary>
    public ulong TaskSize;
    /// <summary>mm->rss_stat, per <see cref="MmCounter"/>: percpu counters, updated without a lock
    /// (usually under the PTL whose entry changed), read approximately.</summary>
    public readonly long[] RssStat = new long[4];
    /// <summary>mm->total_vm, locked_vm, data_vm, exec_vm, stack_vm: vm_stat_account() under the
    /// mmap write lock.</summary>
    public long TotalVm;
    public long LockedVm;
    /// <summary>mm->pinned_vm: atomic64, no lock.</summary>
    public long PinnedVm;
    public long DataVm;
    public long ExecVm;
    public long StackVm;
    /// <summary>mm->map_count: number of VMAs. Protected by the mmap write lock.</summary>
    public int MapCount;
    /// <summary>mm->flags (MMF_*): atomic bit operations, no lock.</summary>
    public ulong Flags;
    /// <summary>mm->mm_users / mm->mm_count: atomic reference counts.</summary>
    public int MmUsers = 1;
    public int MmCount = 1;
    /// <summary>CPUs that have run this mm (mm_cpumask): the targets of TLB shootdowns. Each CPU sets
    /// its own bit in switch_mm() (atomic cpumask operations).</summary>
    public readonly HashSet<int> CpuMask = [];
    /// <summary>Whether exit_mmap() has torn it down (model-only). Set under the mmap write lock.</summary>
    public bool Dead;

    /// <summary>MMF_HAS_PINNED: some page of this mm was pinned with FOLL_PIN.</summary>
    public const ulong MMF_HAS_PINNED = 1UL << 27;
    /// <summary>MMF_UNSTABLE: the OOM reaper is tearing it down.</summary>
    public const ulong MMF_UNSTABLE = 1UL << 22;

    internal MmStruct(Kernel k, int id, PageTable pgd, ulong taskSize)
    {
        K = k;
        Id = id;
        Pgd = pgd;
        TaskSize = taskSize;
        MmMt = new VmaTree(k, this);
        MmapLock = new RwSemaphore(k, LockClass.MmapLock, new LockLabel("mm#", (ulong)id, ".mmap_lock"));
        PageTableLock = new SpinLock(k, LockClass.PageTableLock, new LockLabel("mm#", (ulong)id, ".page_table_lock"));
    }

    public long GetMmCounter(MmCounter c) => RssStat[(int)c];

    public override string ToString() => $"mm#{Id}";
}

/// <summary>
/// struct vm_area_struct: one region of an address space with uniform properties.
/// </summary>
[KernelSymbol("vm_area_struct", "include/linux/mm_types.h")]
public sealed class VmAreaStruct
{
    public readonly int Id;
    /// <summary>vm_start and vm_end: protected by the mmap write lock and the VMA write lock; readers
    /// hold either the mmap lock or the VMA read lock (lock_vma_under_rcu() rechecks the range).</summary>
    public ulong VmStart;
    public ulong VmEnd;
    /// <summary>vma->vm_mm: immutable.</summary>
    public readonly MmStruct VmMm;
    /// <summary>Access permissions of this VMA as PTE bits. Same protection as vm_start
    /// (vma_set_page_prot() under the mmap write lock and the VMA write lock).</summary>
    public PgProt VmPageProt;
    /// <summary>vm_flags: change only through vm_flags_set()/clear()/mod() once the VMA is visible,
    /// which assert the mmap write lock and take the VMA write lock.</summary>
    internal VmFlags __VmFlags;
    /// <summary>Offset within vm_file in pages (for anon VMAs: vm_start >> PAGE_SHIFT at creation).
    /// Same protection as vm_start.</summary>
    public ulong VmPgoff;
    /// <summary>vm_file, vm_ops, vm_private_data: set by mmap (->mmap) before the VMA is visible;
    /// afterwards changed only with the mmap write lock held.</summary>
    public File? VmFile;
    public VmOperationsStruct? VmOps;
    public object? VmPrivateData;
    /// <summary>vma->anon_vma: set once by anon_vma_prepare(). Protected by mmap_lock and page_table_lock.</summary>
    public AnonVma? AnonVma;
    /// <summary>vma->anon_vma_chain: the anon_vmas this VMA's pages may be in. Protected by the mmap
    /// lock (write, or read plus page_table_lock in anon_vma_prepare()); each link also sits in its
    /// anon_vma's tree under the root's rwsem.</summary>
    public readonly List<AnonVmaChain> AnonVmaChain = [];
    /// <summary>The per-VMA lock (vm_refcnt, vm_lock_seq).</summary>
    public readonly VmaLock VmLock;
    /// <summary>Whether the VMA is in its mm's tree (vma_mark_attached / vma_mark_detached). Changed
    /// under the mmap write lock; read locklessly by vma_start_read().</summary>
    public bool Attached;
    /// <summary>vma->anon_name (MADV_NAME); kept for maps output. Protected by the mmap write lock.</summary>
    public string? AnonName;
    /// <summary>vma->pfnmap_track_ctx (v6.16+): set by a remap_pfn_range() that covered the whole
    /// VMA; shared (kref) by the VMAs vm_area_dup() makes of it.</summary>
    public PfnmapTrackCtx? PfnmapTrackCtx;

    public VmFlags VmFlags => __VmFlags;

    internal VmAreaStruct(Kernel k, MmStruct mm)
    {
        Id = k.NextVmaId();
        VmMm = mm;
        VmLock = new VmaLock(k, this);
    }

    /// <summary>vma_pages().</summary>
    public ulong Pages => (VmEnd - VmStart) >> PgTable.PAGE_SHIFT;

    /// <summary>vma_is_anonymous(): no vm_ops at all.</summary>
    [KernelSymbol("vma_is_anonymous", "include/linux/mm.h")]
    public bool IsAnonymous => VmOps is null;

    /// <summary>vma_is_accessible().</summary>
    /// <remarks>Context: the VMA stable (mmap_lock or its VMA lock held); reads vm_flags only.</remarks>
    [KernelSymbol("vma_is_accessible", "include/linux/mm.h")]
    public bool IsAccessible => (VmFlags & VmFlags.VM_ACCESS_FLAGS) != 0;

    /// <summary>The last page offset it maps (vma_last_pgoff()).</summary>
    public ulong LastPgoff => VmPgoff + Pages - 1;

    public override string ToString() => $"vma#{Id}[{VmStart:x}-{VmEnd:x}]";
}

/// <summary>
/// struct pfnmap_track_ctx (mm/memory.c, v6.16+): the memory-type reservation of a PFN range that
/// remap_pfn_range() mapped over a whole VMA, released when the last VMA holding it goes away.
/// </summary>
[KernelSymbol("pfnmap_track_ctx", "include/linux/mm_types.h")]
public sealed class PfnmapTrackCtx(ulong pfn, ulong size)
{
    public readonly ulong Pfn = pfn;
    public readonly ulong Size = size;
    /// <summary>ctx->kref.</summary>
    public int Kref = 1;
}

/// <summary>
/// The per-VMA lock of mm/mmap_lock.c: readers (page faults) take it with a trylock
/// (vma_start_read), writers (under the mmap write lock) stamp vm_lock_seq and wait for readers to
/// drain (vma_start_write). All write locks of an mm drop together at mmap_write_unlock().
/// </summary>
[KernelSymbol("vm_lock", "mm/mmap_lock.c")]
public sealed class VmaLock : LockBase
{
    private readonly VmAreaStruct _vma;
    private readonly List<TaskStruct> _readers = [];
    private readonly WaitQueueHead _writerWait;
    /// <summary>vma->vm_lock_seq: equal to mm_lock_seq while write-locked.</summary>
    public long VmLockSeq = -1;
    /// <summary>A writer in vma_start_write() waits for the readers to drain: VMA_LOCK_OFFSET is in
    /// vm_refcnt (__vma_enter_locked()), so vma_start_read() fails until it leaves. Before v6.15
    /// the writer queued on the VMA's rw_semaphore, where a waiting writer fails down_read_trylock()
    /// alike.</summary>
    public bool WriterEntered { get; private set; }

    internal VmaLock(Kernel k, VmAreaStruct vma) : base(k, LockClass.VmaLock, $"vma#{vma.Id}.vm_lock")
    {
        _vma = vma;
        _writerWait = new WaitQueueHead(k);
    }

    public int Readers => _readers.Count;

    public override bool IsLocked => _readers.Count > 0 || IsWriteLocked;

    public bool IsWriteLocked => VmLockSeq == _vma.VmMm.MmLockSeq && (_vma.VmMm.MmLockSeq & 1) == 1;

    public override bool IsHeldBy(TaskStruct t) => _readers.Contains(t) ||
                                                   (IsWriteLocked && _vma.VmMm.MmapLock.IsWriteHeldBy(t));

    /// <summary>vma_start_read(): fails if the VMA is write-locked, a writer waits for its readers,
    /// or it is detached; never sleeps.</summary>
    /// <remarks>Context: under RCU (lock_vma_under_rcu()), the mmap lock not held.</remarks>
    [KernelSymbol("vma_start_read", "mm/mmap_lock.c")]
    public ValueTask<bool> StartRead([CallerMemberName] string fn = "")
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockAcquire, this, "vma_start_read", fn);
        return point.IsCompleted ? new ValueTask<bool>(TryStartRead(fn)) : StartReadAfterPoint(point, fn);
    }

    private async ValueTask<bool> StartReadAfterPoint(SchedYield point, string fn)
    {
        await point;
        return TryStartRead(fn);
    }

    private bool TryStartRead(string fn)
    {
        var k = K;
        // vm_lock_seq against mm_lock_seq, which lives with the mmap lock's word; readers commute.
        k.Sched.Access(Obj, write: false);
        k.Sched.Access(_vma.VmMm.MmapLock.Obj, write: false);
        k.Sched.Access(ObjId.Make(ObjId.Kind.Vma, (ulong)_vma.Id), write: false);
        if (IsWriteLocked || WriterEntered || !_vma.Attached)
        {
            return false;
        }
        var t = k.Current!;
        k.LockdepAcquire(t, this, 0, read: true, trylock: true, fn);
        _readers.Add(t);
        return true;
    }

    /// <summary>vma_end_read(): the last reader out wakes a vma_start_write() waiting for it.</summary>
    /// <remarks>Context: the VMA read-locked by the caller.</remarks>
    [KernelSymbol("vma_end_read", "mm/mmap_lock.c")]
    public ValueTask EndRead([CallerMemberName] string fn = "")
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockRelease, this, "vma_end_read", fn);
        if (point.IsCompleted)
        {
            ReleaseRead(fn);
            return default;
        }
        return EndReadAfterPoint(point, fn);
    }

    private async ValueTask EndReadAfterPoint(SchedYield point, string fn)
    {
        await point;
        ReleaseRead(fn);
    }

    private void ReleaseRead(string fn)
    {
        var k = K;
        // Only a writer waiting for the readers to drain cares which reader leaves last.
        k.Sched.Access(Obj, write: _writerWait.HasSleepers);
        var t = k.Current!;
        if (!_readers.Remove(t))
        {
            k.Bug($"vma_end_read of {Name} not held by pid {t.Pid}", fn);
        }
        k.LockdepRelease(t, this, fn);
        if (_readers.Count == 0)
        {
            _writerWait.WakeUpAll();
        }
    }

    /// <summary>vma_start_write(): Context: mmap write lock held. Waits for readers to drain.</summary>
    [KernelSymbol("vma_start_write", "mm/mmap_lock.c")]
    public async ValueTask StartWrite([CallerMemberName] string fn = "")
    {
        var k = K;
        var mm = _vma.VmMm;
        k.MmapAssertWriteLocked(mm, fn);
        if (IsWriteLocked)
        {
            return;
        }
        await k.Sched.LockPoint(SchedPointKind.LockAcquire, this, "vma_start_write", fn);
        k.Sched.Access(Obj, write: true);
        var t = k.Current!;
        // Lockdep sees the exclusion of readers as a momentary write acquisition.
        k.LockdepAcquire(t, this, 0, read: false, trylock: false, fn);
        WriterEntered = true;
        while (_readers.Count > 0)
        {
            await _writerWait.Sleep(fn);
            // Woken in a step of its own: the readers are counted again and vm_lock_seq set.
            k.Sched.Access(Obj, write: true);
        }
        WriterEntered = false;
        k.LockdepRelease(t, this, fn);
        VmLockSeq = mm.MmLockSeq;
    }

    /// <summary>vma_assert_write_locked(): a lockdep finding unless write-locked.</summary>
    /// <remarks>Context: any.</remarks>
    [KernelSymbol("vma_assert_write_locked", "include/linux/mmap_lock.h")]
    public void AssertWriteLocked([CallerMemberName] string fn = "")
    {
        if (!IsWriteLocked)
        {
            K.Violation(Invariants.LockAssert, $"{fn}: {_vma} is not write-locked", fn);
        }
    }
}

/// <summary>
/// struct anon_vma: the root of the reverse map for anonymous pages. Every anon folio points to
/// one (folio->mapping); rmap walks its chain of VMAs to find every PTE of the folio.
/// </summary>
[KernelSymbol("anon_vma", "include/linux/rmap.h")]
public sealed class AnonVma
{
    public readonly int Id;
    /// <summary>Handle stored in folio->mapping.</summary>
    public readonly int Handle;
    /// <summary>anon_vma->root: the one whose rwsem guards the whole family. Set before the
    /// anon_vma is visible; immutable after.</summary>
    public AnonVma Root;
    /// <summary>anon_vma->parent: the anon_vma this one was forked from. Immutable.</summary>
    public AnonVma Parent;
    /// <summary>The root's rwsem (only the root's is ever taken).</summary>
    public readonly RwSemaphore Rwsem;
    /// <summary>anon_vma->refcount: atomic.</summary>
    public int Refcount = 1;
    /// <summary>anon_vma->num_children: anon_vmas whose parent this is. Protected by the root's rwsem.</summary>
    public int NumChildren;
    /// <summary>anon_vma->num_active_vmas: VMAs whose vma->anon_vma is this one. Protected by the root's rwsem.</summary>
    public int NumActiveVmas;
    /// <summary>anon_vma->rb_root: the chains linking VMAs in. Protected by the root's rwsem.</summary>
    public readonly List<AnonVmaChain> RbRoot = [];

    internal AnonVma(Kernel k, int id, int handle)
    {
        Id = id;
        Handle = handle;
        Root = this;
        Parent = this;
        Rwsem = new RwSemaphore(k, LockClass.AnonVmaRwsem, new LockLabel("anon_vma#", (ulong)id, ".rwsem"));
    }

    public override string ToString() => $"anon_vma#{Id}";
}

/// <summary>struct anon_vma_chain: links one VMA into one anon_vma.</summary>
[KernelSymbol("anon_vma_chain", "include/linux/rmap.h")]
public sealed class AnonVmaChain(VmAreaStruct vma, AnonVma anonVma)
{
    public readonly VmAreaStruct Vma = vma;
    public readonly AnonVma AnonVma = anonVma;
}

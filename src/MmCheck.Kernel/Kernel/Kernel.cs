namespace Linux;

/// <summary>What kernel to build: RAM, paging mode, historical variants, tunables.</summary>
public sealed record KernelConfig
{
    /// <summary>Bytes of RAM. Descriptors are allocated lazily per 128 MiB section.</summary>
    public ulong RamBytes { get; init; } = 8UL << 30;
    public PagingMode Paging { get; init; } = PagingMode.X86_64_4Level;
    public Variants Variants { get; init; } = Variants.Current;
    /// <summary>CONFIG_MEM_SOFT_DIRTY (off on the conformance machine).</summary>
    public bool MemSoftDirty { get; init; }
    /// <summary>fault_around_bytes (mm/memory.c).</summary>
    public ulong FaultAroundBytes { get; init; } = 65536;
    /// <summary>vm.mmap_min_addr.</summary>
    public ulong MmapMinAddr { get; init; } = 4096;
    /// <summary>RLIMIT_STACK soft limit, which places mmap_base.</summary>
    public ulong StackRlimit { get; init; } = 8UL << 20;
    /// <summary>vm.max_map_count.</summary>
    public int MaxMapCount { get; init; } = 65530;
    /// <summary>CONFIG_IO_STRICT_DEVMEM: a driver's region claim revokes raw user mappings of it
    /// (revoke_iomem()) and any busy region counts as exclusive (strict_iomem_checks = 1). Off by
    /// default, as on distribution kernels; <see cref="Kernel.StrictIomemChecks"/> starts from it.</summary>
    public bool IoStrictDevmem { get; init; }
    /// <summary>A lockdep graph shared across kernel instances (one exploration); null for a fresh one.</summary>
    public LockGraph? LockGraph { get; init; }
    /// <summary>Every task runs on the same CPU, as processes pinned there with sched_setaffinity()
    /// do (the conformance oracle pins its processes to the lowest CPU): they share one set of
    /// per-CPU data, the LRU batches. Each task keeps its own <see cref="Cpu"/> (its TLB and loaded
    /// mm), as a context switch would leave them. Off, the default: a task per CPU, as scenario
    /// threads run.</summary>
    public bool OneCpu { get; init; }
}

/// <summary>
/// One instance of the modelled kernel: physical memory, init_mm, tasks and devices. Kernel
/// functions are members of this partial class, spread over files named after the kernel's
/// (Mm/Memory.Fault.cs is mm/memory.c's fault path), so that each instance is independent and
/// many can run side by side.
/// </summary>
public sealed partial class Kernel
{
    public readonly KernelConfig Config;
    public readonly PagingMode Paging;
    public readonly Variants Variants;
    /// <summary>The one seam to whoever runs the kernel. Setup runs on the direct scheduler; the
    /// explorer then takes over with <see cref="UseScheduler"/>.</summary>
    public Scheduler Sched { get; private set; }
    /// <summary>Where lockdep records dependencies: <see cref="KernelConfig.LockGraph"/>, or the graph
    /// <see cref="UseLockGraph"/> handed the kernel to.</summary>
    public LockGraph LockGraph { get; private set; }
    public readonly MemMap MemMap;
    public readonly PageAllocator Buddy;
    /// <summary>Contents of physical memory.</summary>
    public readonly PhysMem Mem = new();
    /// <summary>Objects that folio->mapping and friends refer to by handle.</summary>
    public readonly HandleTable Handles = new();
    /// <summary>init_mm: the kernel's own address space.</summary>
    public readonly MmStruct InitMm;
    /// <summary>The shared zero page's PFN (my_zero_pfn()).</summary>
    public readonly ulong ZeroPfn;
    public readonly List<TaskStruct> Tasks = [];
    public readonly List<MmStruct> Mms = [];
    public readonly List<Cpu> Cpus = [];
    /// <summary>vm_event counters (/proc/vmstat), indexed by <see cref="VmEventItem"/>.</summary>
    private readonly long[] _vmEvents = new long[(int)VmEventItem.NR_VM_EVENT_ITEMS];

    private long _nextObjectId;
    private int _nextPid = 1;
    private int _nextMmId;
    private int _nextVmaId;
    private int _nextAnonVmaId;
    private ulong _nextIno = 1;

    public Kernel(KernelConfig? config = null, Scheduler? scheduler = null)
    {
        Config = config ?? new KernelConfig();
        Paging = Config.Paging;
        Variants = Config.Variants;
        Sched = scheduler ?? new DirectScheduler();
        LockGraph = Config.LockGraph ?? new LockGraph();
        Buddy = new PageAllocator(Config.RamBytes);
        MemMap = new MemMap();
        Iomem = new Resource("iomem", 0, (1UL << Paging.MaxPhysmemBits) - 1, Resource.IORESOURCE_MEM);
        foreach (var (start, end) in Buddy.RamRanges)
        {
            Iomem.Children.Add(new Resource("System RAM", start << PgTable.PAGE_SHIFT,
                (end << PgTable.PAGE_SHIFT) - 1, Resource.IORESOURCE_SYSTEM_RAM | Resource.IORESOURCE_BUSY) { Parent = Iomem });
        }
        StrictIomemChecks = Config.IoStrictDevmem;
        ZeroPfn = AllocZeroPage();
        InitMm = MmAllocCore(isInitMm: true);
    }

    /// <summary>
    /// Model-only: this instance is finished; its storage (page-table entries, mem_map chunks, TLB
    /// sets) goes to this thread's <see cref="RecycledArrays{T}"/> for the next instance built on it.
    /// Nothing may use the instance afterwards (its tables are gone, so a stray use throws): the
    /// explorer calls it when it begins the next execution, and for the last one when the run ends.
    /// </summary>
    public void Recycle()
    {
        RecyclePageTables();
        MemMap.Recycle();
        foreach (var cpu in Cpus)
        {
            cpu.Tlb.Recycle();
        }
    }

    /// <summary>Hands the kernel to another scheduler (between runs, never inside one).</summary>
    public void UseScheduler(Scheduler scheduler)
    {
        scheduler.Current = null;
        Sched = scheduler;
    }

    /// <summary>
    /// Model-only: from now on lockdep records into <paramref name="graph"/>, which first gets the
    /// old graph's dependencies, in the order they were first recorded (not
    /// <see cref="LockGraph.Merge"/>'s, which sorts). An instance set up against a graph of its own
    /// (before its execution's graph existed) thus leaves <paramref name="graph"/> as if the setup
    /// had run against it: lockdep only ever adds a dependency it has not seen, and what setup
    /// takes does not depend on the graph. A cycle the carried dependencies close is marked
    /// reported, as when setup closes one; the finding was setup's, on the direct scheduler.
    /// </summary>
    /// <remarks>Context: between runs, never inside one. The old graph holds only what setup
    /// recorded: this instance's, or the same dependencies recorded by identical setups.</remarks>
    public void UseLockGraph(LockGraph graph)
    {
        if (ReferenceEquals(graph, LockGraph))
        {
            return;
        }
        foreach (var (from, to, ctx) in LockGraph.Edges)
        {
            graph.AddEdge(from, to, ctx);
        }
        LockGraph = graph;
    }

    /// <summary>A kernel thread: no mm of its own (it borrows init_mm for kernel addresses).</summary>
    public TaskStruct CreateKernelThread(string comm)
    {
        var t = new TaskStruct(_nextPid++, comm, null, new FilesStruct(), NewCpu());
        Tasks.Add(t);
        t.Cpu.SwitchMm(InitMm);
        return t;
    }

    /// <summary>current.</summary>
    public TaskStruct? Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Sched.Current;
    }

    internal ulong NextObjectId() => (ulong)++_nextObjectId;

    internal int NextVmaId() => ++_nextVmaId;

    internal int NextAnonVmaId() => ++_nextAnonVmaId;

    internal ulong NextIno() => _nextIno++;

    /// <summary>count_vm_event().</summary>
    /// <remarks>Context: any; a per-CPU counter, no lock; does not sleep.</remarks>
    [KernelSymbol("count_vm_event", "include/linux/vmstat.h")]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CountVmEvent(VmEventItem item, long n = 1) => _vmEvents[(int)item] += n;

    public long VmEvent(VmEventItem item) => _vmEvents[(int)item];

    /// <summary>A counter by its /proc/vmstat name ("pgfault", "cow_fault", …).</summary>
    public long VmEvent(string name) =>
        Enum.TryParse<VmEventItem>(name, ignoreCase: true, out var item) ? _vmEvents[(int)item] : 0;

    /// <summary>A new CPU for a new task (each scenario thread runs on its own CPU).</summary>
    private Cpu NewCpu()
    {
        var cpu = new Cpu(this, Cpus.Count);
        Cpus.Add(cpu);
        return cpu;
    }

    /// <summary>Creates a process: a fresh mm, an empty file table, one task on its own CPU.</summary>
    public TaskStruct CreateProcess(string comm)
    {
        var mm = MmInit(MmAllocCore(isInitMm: false));
        var t = new TaskStruct(_nextPid++, comm, mm, new FilesStruct(), NewCpu());
        Tasks.Add(t);
        t.Cpu.SwitchMm(mm);
        return t;
    }

    /// <summary>Creates another thread of <paramref name="leader"/>'s process (CLONE_VM | CLONE_FILES).</summary>
    public TaskStruct CreateThread(TaskStruct leader, string comm)
    {
        var t = new TaskStruct(_nextPid++, comm, leader.Mm, leader.Files, NewCpu()) { Tgid = leader.Tgid };
        if (leader.Mm is { } mm)
        {
            mm.MmUsers++;
            t.Cpu.SwitchMm(mm);
        }
        Tasks.Add(t);
        return t;
    }

    /// <summary>The task created for a forked child (kernel/fork.c:copy_process()).</summary>
    internal TaskStruct NewTaskForFork(TaskStruct parent, MmStruct mm, FilesStruct files)
    {
        var t = new TaskStruct(_nextPid++, parent.Comm, mm, files, NewCpu());
        Tasks.Add(t);
        t.Cpu.SwitchMm(mm);
        return t;
    }

    /// <summary>mm_alloc() core: an mm with a fresh PGD (pgd_alloc() copies the kernel half).</summary>
    private MmStruct MmAllocCore(bool isInitMm) =>
        TryMmAllocCore(isInitMm) ?? throw new InvalidOperationException("model defect: no RAM for a PGD at boot");

    /// <summary>mm_alloc(): null when pgd_alloc() finds no free frame (fork then fails with -ENOMEM).</summary>
    private MmStruct? TryMmAllocCore(bool isInitMm)
    {
        if (TryNewPageTable(null, 5) is not { } pgd)
        {
            return null;
        }
        int id = _nextMmId++;
        var mm = new MmStruct(this, id, pgd, Paging.TaskSize);
        pgd.Mm = mm;
        if (!isInitMm)
        {
            PgdCtor(mm);
        }
        Mms.Add(mm);
        return mm;
    }
}

/// <summary>enum vm_event_item (include/linux/vm_event_item.h), the ones the model counts, plus
/// the per-task fault counters (min_flt, maj_flt) and COW copies (cow_fault).</summary>
[KernelSymbol("vm_event_item", "include/linux/vm_event_item.h")]
public enum VmEventItem
{
    PGFAULT,
    PGMAJFAULT,
    PGREUSE,
    VMA_LOCK_SUCCESS,
    VMA_LOCK_ABORT,
    VMA_LOCK_RETRY,
    VMA_LOCK_MISS,
    MIN_FLT,
    MAJ_FLT,
    COW_FAULT,
    NR_VM_EVENT_ITEMS,
}

/// <summary>
/// Objects that descriptors refer to by a 32-bit handle (folio->mapping: an anon_vma or an
/// address_space; a page-table page's ptdesc), keeping a descriptor at 24 bytes.
/// </summary>
public sealed class HandleTable
{
    private readonly List<object?> _objects = [null];
    private readonly Stack<int> _free = new();

    /// <summary>Takes a handle for an object that is about to be created (it needs its handle).</summary>
    public int Reserve() => Register(this);

    public void Set(int h, object o) => _objects[h] = o;

    public int Register(object o)
    {
        if (_free.Count > 0)
        {
            int h = _free.Pop();
            _objects[h] = o;
            return h;
        }
        _objects.Add(o);
        return _objects.Count - 1;
    }

    public void Unregister(int h)
    {
        _objects[h] = null;
        _free.Push(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public object? Get(int h) => _objects[h];
}

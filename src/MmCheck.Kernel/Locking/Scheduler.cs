namespace Linux;

/// <summary>
/// What a task is about to do when it reaches a scheduling point. Code between two points runs
/// atomically; the scheduler may switch to another task only at a point.
/// </summary>
public enum SchedPointKind : byte
{
    /// <summary>A task's first step.</summary>
    TaskStart,
    /// <summary>About to take a lock of any class (the lock object is the footprint).</summary>
    LockAcquire,
    /// <summary>About to drop a lock.</summary>
    LockRelease,
    /// <summary>A lockless load the kernel really makes: READ_ONCE, ptep_get_lockless().</summary>
    ReadOnce,
    /// <summary>A lockless store or atomic read-modify-write outside any lock.</summary>
    WriteOnce,
    /// <summary>The CPU's page-table walker filling the TLB (and setting A/D bits).</summary>
    HardwareWalk,
    /// <summary>GUP-fast's lockless page-table walk.</summary>
    GupFast,
    /// <summary>A user-space load or store.</summary>
    UserAccess,
    /// <summary>A device access to memory (DMA, device page tables).</summary>
    DeviceAccess,
    /// <summary>Entry into a system call.</summary>
    Syscall,
    /// <summary>cond_resched(), might_sleep(): where the kernel can be preempted.</summary>
    Preempt,
}

/// <summary>
/// The one seam between the kernel model and whoever runs it. Every lock operation, every
/// lockless shared access and every place the kernel may sleep or be preempted awaits
/// <see cref="Point"/>; a task that must wait awaits <see cref="Sleep"/>. The direct scheduler
/// completes every point at once; the explorer turns them into choices.
/// </summary>
/// <remarks>
/// Single-threaded: one OS thread runs one kernel instance and all its tasks. Continuations are
/// resumed inline by the scheduler's loop; nothing is posted to the thread pool.
/// </remarks>
public abstract class Scheduler
{
    /// <summary>The running task ("current"). Set by the scheduler before it resumes a task.</summary>
    public TaskStruct? Current;

    /// <summary>When set, the kernel reports each shared access through <see cref="OnAccess"/>.</summary>
    public bool RecordsFootprint;

    /// <summary>When set, the kernel reports state changes through <see cref="OnEffect"/>.</summary>
    public bool RecordsEffects;

    /// <summary>A scheduling point: the current task is about to do <paramref name="kind"/> on
    /// <paramref name="obj"/> from kernel function <paramref name="function"/>.</summary>
    public abstract SchedYield Point(SchedPointKind kind, ulong obj, string function);

    /// <summary>A scheduling point at a lock operation, <see cref="Point"/> on the lock's word;
    /// <paramref name="call"/> is the primitive the kernel calls ("down_read", "spin_unlock",
    /// "vma_start_write"), passed to <see cref="OnLockPoint"/> while effects are recorded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SchedYield LockPoint(SchedPointKind kind, LockBase lk, string call, string function)
    {
        if (RecordsEffects)
        {
            OnLockPoint(lk, call);
        }
        return Point(kind, lk.Obj, function);
    }

    /// <summary>Which lock and primitive the next <see cref="Point"/> is, for readable traces.</summary>
    protected virtual void OnLockPoint(LockBase lk, string call)
    {
    }

    /// <summary>The current task sleeps on <paramref name="channel"/> and is not runnable until
    /// <see cref="Wake"/>. Awaiting the result returns once it has been woken and chosen to run.</summary>
    public abstract SchedYield Sleep(object channel, string function);

    /// <summary>Makes a sleeping task runnable again.</summary>
    public abstract void Wake(TaskStruct task);

    /// <summary>Starts a new task running <paramref name="body"/> (a scenario thread, possibly
    /// created at run time, such as a forked child's). Its first step is a scheduling choice.</summary>
    public abstract void Spawn(TaskStruct task, Func<ValueTask> body, string name);

    /// <summary>A data choice among <paramref name="count"/> outcomes (trylock, allocator pick, which
    /// waiter wakes). Recorded so that a trace replays exactly. The direct scheduler picks 0.</summary>
    public virtual int Choose(string what, int count) => 0;

    /// <summary>A shared access inside the current step (its footprint).</summary>
    public virtual void OnAccess(ulong obj, bool write)
    {
    }

    /// <summary>A state change, for readable traces.</summary>
    public virtual void OnEffect(Effect effect)
    {
    }

    /// <summary>A finding: BUG, WARN, lockdep, a broken invariant.</summary>
    public abstract void OnFinding(Finding finding);

    /// <summary>Called by <see cref="SchedYield"/> when the current task suspends.</summary>
    protected internal abstract void Suspend(Action continuation);

    /// <summary>Counts a write of the current task to state the registered invariants read
    /// (<see cref="TaskStruct.CheckedWrites"/>); a scheduler that records footprints calls it.</summary>
    protected void CountCheckedWrite()
    {
        if (Current is { } t)
        {
            t.CheckedWrites++;
        }
    }

    /// <summary>Records an access if the footprint is being recorded. Hot: keep it inlined.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Access(ulong obj, bool write)
    {
        if (RecordsFootprint)
        {
            OnAccess(obj, write);
        }
    }

    /// <summary>
    /// make_task_dead(): the current task hit BUG or oopsed and stops where it stands, holding
    /// whatever it holds; its suspended callers never resume. The scheduler goes on as if the task
    /// had finished. False outside a task (the exception then unwinds as usual).
    /// </summary>
    /// <remarks>Context: the current task after BUG() or an oops, in whatever context it was; never returns to its
    /// callers and keeps every lock it holds.</remarks>
    [KernelSymbol("make_task_dead", "kernel/exit.c")]
    protected internal abstract bool MakeTaskDead();

    /// <summary>Runs a task body to its end, turning BUG/oops into a dead task rather than an
    /// escaped exception (when no frame of the task stopped it first: <see cref="MakeTaskDead"/>).
    /// Every scheduler starts tasks through this.</summary>
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    protected static async ValueTask RunTaskBody(TaskStruct task, Func<ValueTask> body)
    {
        try
        {
            await body();
        }
        catch (KernelBugException)
        {
            // The finding was reported when BUG_ON fired; the task dies as in an oops.
            task.Oopsed = true;
        }
        task.SchedState = TaskSchedState.Dead;
    }
}

/// <summary>The awaitable a scheduling point returns: completed when the current task goes on.</summary>
public readonly struct SchedYield(Scheduler? suspendTo) : ICriticalNotifyCompletion
{
    private readonly Scheduler? _suspendTo = suspendTo;

    /// <summary>A point at which the current task simply continues.</summary>
    public static SchedYield Continue => default;

    public SchedYield GetAwaiter() => this;

    public bool IsCompleted
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _suspendTo is null;
    }

    public void GetResult()
    {
    }

    public void OnCompleted(Action continuation) => _suspendTo!.Suspend(continuation);

    public void UnsafeOnCompleted(Action continuation) => _suspendTo!.Suspend(continuation);
}

/// <summary>Where a task stands with its scheduler.</summary>
public enum TaskSchedState : byte
{
    /// <summary>Created, first step not yet run.</summary>
    New,
    Runnable,
    /// <summary>Waiting on a lock, a wait queue or a completion.</summary>
    Sleeping,
    Dead,
}

/// <summary>
/// Footprint object identities: a kind in the top byte, an identity below. Two steps are
/// independent unless they touch a common object and one of them writes it.
/// </summary>
public static class ObjId
{
    public const int KindShift = 56;
    public const ulong IdMask = (1UL << KindShift) - 1;

    public enum Kind : byte
    {
        None = 0,
        Lock = 1,
        /// <summary>A page-table entry: table pfn and index.</summary>
        PtEntry = 2,
        /// <summary>A folio's descriptor: refcount, mapcount, flags.</summary>
        Folio = 3,
        /// <summary>A word of physical memory.</summary>
        Word = 4,
        /// <summary>An mm's VMA tree.</summary>
        VmaTree = 5,
        /// <summary>One VMA's fields.</summary>
        Vma = 6,
        /// <summary>A CPU's TLB.</summary>
        Tlb = 7,
        /// <summary>A page cache (address_space i_pages).</summary>
        PageCache = 8,
        /// <summary>Allocator state.</summary>
        Allocator = 9,
        /// <summary>A resource tree node or device register.</summary>
        Resource = 10,
        /// <summary>Anything else with an identity (a driver field, a task's state).</summary>
        Other = 11,
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Make(Kind kind, ulong id) => ((ulong)kind << KindShift) | (id & IdMask);

    public static Kind KindOf(ulong obj) => (Kind)(obj >> KindShift);

    /// <summary>The kind of <paramref name="obj"/> as a one-member <see cref="ObjKinds"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ObjKinds KindsOf(ulong obj) => (ObjKinds)(1 << (int)(obj >> KindShift));

    public static ulong IdOf(ulong obj) => obj & IdMask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PtEntry(ulong tablePfn, int index) => Make(Kind.PtEntry, (tablePfn << 10) | (uint)index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Folio(ulong pfn) => Make(Kind.Folio, pfn);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Word(ulong paddr) => Make(Kind.Word, paddr >> 3);

    public static string Describe(ulong obj)
    {
        ulong id = IdOf(obj);
        return KindOf(obj) switch
        {
            Kind.Lock => $"lock#{id}",
            Kind.PtEntry => $"pt[{id >> 10:x}:{id & 1023}]",
            Kind.Folio => $"folio(pfn {id:x})",
            Kind.Word => $"mem[{id << 3:x}]",
            Kind.VmaTree => $"mm#{id}.mm_mt",
            Kind.Vma => $"vma#{id}",
            Kind.Tlb => $"tlb(cpu{id})",
            Kind.PageCache => $"i_pages#{id}",
            Kind.Allocator => "page allocator",
            Kind.Resource => $"resource#{id}",
            _ => $"obj#{id}",
        };
    }
}

/// <summary>A set of <see cref="ObjId.Kind"/>s: what an invariant reads (see <see cref="KernelInvariant.Reads"/>).</summary>
[Flags]
public enum ObjKinds : ushort
{
    None = 0,
    Lock = 1 << (int)ObjId.Kind.Lock,
    PtEntry = 1 << (int)ObjId.Kind.PtEntry,
    Folio = 1 << (int)ObjId.Kind.Folio,
    Word = 1 << (int)ObjId.Kind.Word,
    VmaTree = 1 << (int)ObjId.Kind.VmaTree,
    Vma = 1 << (int)ObjId.Kind.Vma,
    Tlb = 1 << (int)ObjId.Kind.Tlb,
    PageCache = 1 << (int)ObjId.Kind.PageCache,
    Allocator = 1 << (int)ObjId.Kind.Allocator,
    Resource = 1 << (int)ObjId.Kind.Resource,
    Other = 1 << (int)ObjId.Kind.Other,
    All = 0xFFFF,
}

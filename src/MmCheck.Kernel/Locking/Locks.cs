namespace Linux;

/// <summary>
/// Common to every lock: its class, its kernel, its footprint identity and its waiters, queued in
/// FIFO order. A spinlock hands itself to its first waiter on release (qspinlock), as do readers of
/// an rw_semaphore; a sleeping lock's exclusive first waiter (a mutex waiter, an rwsem writer) is
/// only woken to try again, and a newcomer may take the lock before it runs, once: the waiter then
/// sets the handoff flag and the next release hands the lock over (<see cref="WaitAsFirst"/>,
/// <see cref="WakeFirstExclusive"/>).
/// </summary>
public abstract class LockBase
{
    public readonly LockClass Class;
    public readonly Kernel K;
    /// <summary>Footprint identity (<see cref="ObjId.Kind.Lock"/>).</summary>
    public readonly ulong Obj;
    private readonly LockLabel _label;
    private string? _name;
    private protected Queue<(TaskStruct Task, bool Read)>? Waiters;

    protected LockBase(Kernel k, LockClass cls, LockLabel label)
        : this(k, cls, label, k.NextObjectId())
    {
    }

    /// <summary>A lock made on first use, with the footprint id reserved when its owner was made:
    /// ids must not depend on which schedule touched the lock first, since DPOR compares
    /// footprints across executions.</summary>
    protected LockBase(Kernel k, LockClass cls, LockLabel label, ulong reservedId)
    {
        K = k;
        Class = cls;
        _label = label;
        Obj = ObjId.Make(ObjId.Kind.Lock, reservedId);
    }

    /// <summary>A label for traces: "mm#2.mmap_lock".</summary>
    public string Name => _name ??= _label.ToString();

    public override string ToString() => Name;

    private protected void Enqueue(TaskStruct t, bool read) => (Waiters ??= new()).Enqueue((t, read));

    private protected bool HasWaiters => Waiters is { Count: > 0 };

    /// <summary>The first waiter, exclusive, woken by a release to try again and not yet run: until
    /// it does, the lock is free with waiters queued, and a newcomer may take it.</summary>
    private protected TaskStruct? WokenWaiter;

    /// <summary>The handoff flag (MUTEX_FLAG_HANDOFF, RWSEM_FLAG_HANDOFF): the woken first waiter found
    /// the lock taken, so the next release hands it the lock and nobody may take it meanwhile.</summary>
    private protected bool Handoff;

    /// <summary>True if <paramref name="t"/> holds this lock in any mode.</summary>
    public abstract bool IsHeldBy(TaskStruct t);

    /// <summary>True if anyone holds it.</summary>
    public abstract bool IsLocked { get; }

    /// <summary>Takes the lock exclusively for <paramref name="t"/> (a writer, a mutex owner).</summary>
    private protected virtual void TakeExclusive(TaskStruct t) =>
        throw new InvalidOperationException($"{GetType().Name} has no exclusive waiters");

    /// <summary>A release left the lock free with an exclusive waiter first in the queue: hands it
    /// the lock when the handoff flag is set or <paramref name="handOver"/> (a spinning class), else
    /// wakes it to try again, unless it was already woken and has not run.</summary>
    private protected void WakeFirstExclusive(bool handOver)
    {
        var w = Waiters!;
        if (Handoff || handOver)
        {
            var (next, _) = w.Dequeue();
            Handoff = false;
            TakeExclusive(next);
            K.Sched.Wake(next);
        }
        else if (WokenWaiter is null)
        {
            WokenWaiter = w.Peek().Task;
            K.Sched.Wake(WokenWaiter);
        }
    }

    /// <summary>For readable traces: the current task takes the lock before the woken first waiter
    /// runs. Called on every uncontended acquire too, so the lock's own field is tested first.</summary>
    private protected void NoteOvertake()
    {
        if (WokenWaiter is { } w && K.Sched.RecordsEffects)
        {
            K.Sched.OnEffect(new NoteEffect($"takes {Name} before the woken pid {w.Pid} runs"));
        }
    }

    /// <summary>An exclusive waiter's sleep (__mutex_lock_common(), rwsem_down_write_slowpath()):
    /// woken holding the lock (handed over), or first and woken to try again: it takes the lock if
    /// nobody holds it, else sets the handoff flag and sleeps on.</summary>
    /// <remarks>Context: <paramref name="t"/> queued by the caller; may sleep.</remarks>
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private protected async ValueTask WaitAsFirst(TaskStruct t, string fn)
    {
        while (true)
        {
            await K.Sched.Sleep(this, fn);
            if (WokenWaiter != t)
            {
                return;
            }
            Debug.Assert(Waiters!.Peek().Task == t);
            WokenWaiter = null;
            if (!IsLocked)
            {
                Waiters!.Dequeue();
                TakeExclusive(t);
                return;
            }
            Handoff = true;
            if (K.Sched.RecordsEffects)
            {
                K.Sched.OnEffect(new NoteEffect($"{Name} taken meanwhile: handoff flag set, sleeps on"));
            }
        }
    }
}

/// <summary>
/// A lock's label, formatted only when something prints it: a kernel is built for every explored
/// execution and most of its locks' labels are never read. <c>"{Prefix}{Id}{Suffix}"</c>, the id in
/// hex when <see cref="Hex"/>; a plain string converts to a label without an id.
/// </summary>
public readonly record struct LockLabel(string Prefix, ulong Id, string? Suffix, bool Hex = false)
{
    public static implicit operator LockLabel(string text) => new(text, 0, null);

    public override string ToString() =>
        Suffix is null ? Prefix :
        Hex ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Prefix}{Id:x}{Suffix}") :
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Prefix}{Id}{Suffix}");
}

/// <summary>spinlock_t. Holding one disables preemption: sleeping under it is a finding.</summary>
[KernelSymbol("spinlock_t", "include/linux/spinlock_types.h")]
public sealed class SpinLock : LockBase
{
    public SpinLock(Kernel k, LockClass cls, LockLabel name)
        : base(k, cls, name)
    {
    }

    internal SpinLock(Kernel k, LockClass cls, LockLabel name, ulong reservedId)
        : base(k, cls, name, reservedId)
    {
    }

    private TaskStruct? _owner;

    public TaskStruct? Owner => _owner;

    public override bool IsLocked => _owner is not null;

    public override bool IsHeldBy(TaskStruct t) => _owner == t;

    /// <summary>spin_lock(): a contended waiter is queued and handed the lock in FIFO order (the
    /// model's queued spinlock); the holder runs with preemption disabled.</summary>
    /// <remarks>Context: any; this lock not held by the caller (recursion is a lockdep finding).</remarks>
    [KernelSymbol("spin_lock", "include/linux/spinlock.h")]
    public ValueTask Lock([CallerMemberName] string fn = "", int subclass = 0)
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockAcquire, this, "spin_lock", fn);
        return point.IsCompleted ? Acquire(fn, subclass) : LockAfterPoint(point, fn, subclass);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask LockAfterPoint(SchedYield point, string fn, int subclass)
    {
        await point;
        await Acquire(fn, subclass);
    }

    /// <summary>The uncontended fast path completes synchronously; a waiter sleeps for the hand-off.</summary>
    private ValueTask Acquire(string fn, int subclass)
    {
        var k = K;
        var t = k.Current!;
        k.LockdepAcquire(t, this, subclass, read: false, trylock: false, fn);
        k.Sched.Access(Obj, write: true);
        if (_owner is null)
        {
            _owner = t;
            t.PreemptCount++;
            return default;
        }
        Enqueue(t, read: false);
        return WaitForHandoff(t, fn);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask WaitForHandoff(TaskStruct t, string fn)
    {
        await K.Sched.Sleep(this, fn);
        Debug.Assert(_owner == t);
        t.PreemptCount++;
    }

    /// <summary>spin_trylock(): false when someone holds it.</summary>
    /// <remarks>Context: any; does not wait.</remarks>
    [KernelSymbol("spin_trylock", "include/linux/spinlock.h")]
    public async ValueTask<bool> TryLock([CallerMemberName] string fn = "")
    {
        var k = K;
        await k.Sched.LockPoint(SchedPointKind.LockAcquire, this, "spin_trylock", fn);
        var t = k.Current!;
        k.Sched.Access(Obj, write: true);
        if (_owner is not null)
        {
            return false;
        }
        k.LockdepAcquire(t, this, 0, read: false, trylock: true, fn);
        _owner = t;
        t.PreemptCount++;
        return true;
    }

    /// <summary>spin_unlock(): hands the lock to the first waiter, if any.</summary>
    /// <remarks>Context: the caller holds it.</remarks>
    [KernelSymbol("spin_unlock", "include/linux/spinlock.h")]
    public ValueTask Unlock([CallerMemberName] string fn = "")
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockRelease, this, "spin_unlock", fn);
        if (point.IsCompleted)
        {
            ReleaseNow(fn);
            return default;
        }
        return UnlockAfterPoint(point, fn);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask UnlockAfterPoint(SchedYield point, string fn)
    {
        await point;
        ReleaseNow(fn);
    }

    /// <summary>The release without its scheduling point: for paths that already yielded.</summary>
    internal void ReleaseNow(string fn)
    {
        var k = K;
        var t = k.Current!;
        k.Sched.Access(Obj, write: true);
        if (_owner != t)
        {
            k.Bug($"spin_unlock of {Name} not held by pid {t.Pid}", fn);
        }
        k.LockdepRelease(t, this, fn);
        t.PreemptCount--;
        if (Waiters is { Count: > 0 } w)
        {
            var (next, _) = w.Dequeue();
            _owner = next;
            k.Sched.Wake(next);
        }
        else
        {
            _owner = null;
        }
    }
}

/// <summary>struct rw_semaphore (mmap_lock, i_mmap_rwsem, anon_vma->rwsem); with a non-sleeping
/// class it is an rwlock_t (resource_lock), which disables preemption while held.</summary>
/// <remarks>
/// A reader gets in while no writer holds it and no writer waits (a queued writer blocks new
/// readers, which is what makes read-recursion deadlock). When a reader is first in the queue, every
/// queued reader is granted at once, those behind a queued writer too (rwsem_mark_wake()). A writer at the head is only woken:
/// until it runs the lock is free, and a newcomer may take it first, a reader
/// (rwsem_down_read_slowpath()'s optimistic lock stealing, as no other reader holds it) or a writer
/// (rwsem_optimistic_spin()'s rwsem_try_write_lock_unqueued(), which only a holder or the handoff
/// bit stops). The woken writer
/// that finds the lock taken sets the handoff bit (RWSEM_FLAG_HANDOFF), and the next release hands
/// the lock to it with nobody stealing meanwhile. The kernel sets that bit only once the writer has
/// waited RWSEM_WAIT_TIMEOUT (about 4 ms), so newcomers may steal several times; the model lets one
/// in per wait, which explores the window without a clock. A non-sleeping class (rwlock_t) is
/// granted at once, as before.
/// <para>Footprint: the lock word is the writer and the wait queue; each reader's hold is its own.
/// A reader that gets in or leaves without a writer holding or waiting only reads the word, so two
/// such reader steps commute (the same reader set either way) and DPOR does not order them; a
/// reader that queues, or leaves while someone waits, and every writer operation, write it. A
/// writer's step thus conflicts with every reader step before it, which is what decides whether it
/// gets in.</para>
/// </remarks>
[KernelSymbol("rw_semaphore", "include/linux/rwsem.h")]
public sealed class RwSemaphore : LockBase
{
    public RwSemaphore(Kernel k, LockClass cls, LockLabel name)
        : base(k, cls, name)
    {
    }

    internal RwSemaphore(Kernel k, LockClass cls, LockLabel name, ulong reservedId)
        : base(k, cls, name, reservedId)
    {
    }

    private TaskStruct? _writer;
    private readonly List<TaskStruct> _readers = [];

    public TaskStruct? Writer => _writer;

    public int ReaderCount => _readers.Count;

    public override bool IsLocked => _writer is not null || _readers.Count > 0;

    public override bool IsHeldBy(TaskStruct t) => _writer == t || _readers.Contains(t);

    public bool IsWriteHeldBy(TaskStruct t) => _writer == t;

    public bool IsReadHeldBy(TaskStruct t) => _readers.Contains(t);

    /// <summary>The primitive's name for traces: an rwlock_t's for a non-sleeping class.</summary>
    private string Call(string rwsem, string rwlock) => Class.Sleeps ? rwsem : rwlock;

    /// <summary>A newcomer may take the lock before the woken head writer runs.</summary>
    private bool CanSteal => WokenWaiter is not null && !Handoff && !IsLocked;

    private protected override void TakeExclusive(TaskStruct t) => _writer = t;

    private bool WriterWaiting()
    {
        if (Waiters is null)
        {
            return false;
        }
        foreach (var (_, read) in Waiters)
        {
            if (!read)
            {
                return true;
            }
        }
        return false;
    }

    /// <remarks>Context: may sleep: not under a spinlock.</remarks>
    [KernelSymbol("down_read", "kernel/locking/rwsem.c")]
    public ValueTask DownRead([CallerMemberName] string fn = "", int subclass = 0)
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockAcquire, this, Call("down_read", "read_lock"), fn);
        return point.IsCompleted ? AcquireRead(fn, subclass) : DownReadAfterPoint(point, fn, subclass);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask DownReadAfterPoint(SchedYield point, string fn, int subclass)
    {
        await point;
        await AcquireRead(fn, subclass);
    }

    private ValueTask AcquireRead(string fn, int subclass)
    {
        var k = K;
        var t = k.Current!;
        if (Class.Sleeps)
        {
            k.MightSleep(fn);
        }
        k.LockdepAcquire(t, this, subclass, read: true, trylock: false, fn);
        if (_writer is null && !WriterWaiting())
        {
            k.Sched.Access(Obj, write: false);
            _readers.Add(t);
            EnterAtomic(t);
            return default;
        }
        k.Sched.Access(Obj, write: true);
        if (CanSteal)
        {
            NoteOvertake();
            _readers.Add(t);
            EnterAtomic(t);
            return default;
        }
        Enqueue(t, read: true);
        return WaitForHandoff(t, fn);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask WaitForHandoff(TaskStruct t, string fn)
    {
        await K.Sched.Sleep(this, fn);
        Debug.Assert(_writer == t || _readers.Contains(t));
        EnterAtomic(t);
    }

    /// <summary>A spinning rwlock_t (a non-sleeping class) disables preemption while held.</summary>
    private void EnterAtomic(TaskStruct t)
    {
        if (!Class.Sleeps)
        {
            t.PreemptCount++;
        }
    }

    private void LeaveAtomic(TaskStruct t)
    {
        if (!Class.Sleeps)
        {
            t.PreemptCount--;
        }
    }

    /// <summary>down_read_trylock(): false while a writer holds it or waits for it.</summary>
    /// <remarks>Context: any; does not sleep.</remarks>
    [KernelSymbol("down_read_trylock", "kernel/locking/rwsem.c")]
    public async ValueTask<bool> DownReadTrylock([CallerMemberName] string fn = "")
    {
        var k = K;
        await k.Sched.LockPoint(SchedPointKind.LockAcquire, this, Call("down_read_trylock", "read_trylock"), fn);
        var t = k.Current!;
        k.Sched.Access(Obj, write: false);
        if (_writer is not null || WriterWaiting())
        {
            return false;
        }
        k.LockdepAcquire(t, this, 0, read: true, trylock: true, fn);
        _readers.Add(t);
        EnterAtomic(t);
        return true;
    }

    /// <remarks>Context: may sleep: not under a spinlock.</remarks>
    [KernelSymbol("down_write", "kernel/locking/rwsem.c")]
    public ValueTask DownWrite([CallerMemberName] string fn = "", int subclass = 0)
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockAcquire, this, Call("down_write", "write_lock"), fn);
        return point.IsCompleted ? AcquireWrite(fn, subclass) : DownWriteAfterPoint(point, fn, subclass);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask DownWriteAfterPoint(SchedYield point, string fn, int subclass)
    {
        await point;
        await AcquireWrite(fn, subclass);
    }

    private ValueTask AcquireWrite(string fn, int subclass)
    {
        var k = K;
        var t = k.Current!;
        if (Class.Sleeps)
        {
            k.MightSleep(fn);
        }
        k.LockdepAcquire(t, this, subclass, read: false, trylock: false, fn);
        k.Sched.Access(Obj, write: true);
        if ((!IsLocked && !HasWaiters) || CanSteal)
        {
            NoteOvertake();
            _writer = t;
            EnterAtomic(t);
            return default;
        }
        Enqueue(t, read: false);
        return WaitForWrite(t, fn);
    }

    /// <summary>A queued writer (rwsem_try_write_lock() on each wake-up).</summary>
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask WaitForWrite(TaskStruct t, string fn)
    {
        await WaitAsFirst(t, fn);
        EnterAtomic(t);
    }

    /// <summary>down_write_trylock(): false unless the count is exactly unlocked
    /// (kernel/locking/rwsem.c:rwsem_write_trylock()): anyone holding it, or a waiter's flag.</summary>
    /// <remarks>Context: any; does not sleep.</remarks>
    [KernelSymbol("down_write_trylock", "kernel/locking/rwsem.c")]
    public async ValueTask<bool> DownWriteTrylock([CallerMemberName] string fn = "")
    {
        var k = K;
        await k.Sched.LockPoint(SchedPointKind.LockAcquire, this, Call("down_write_trylock", "write_trylock"), fn);
        var t = k.Current!;
        k.Sched.Access(Obj, write: true);
        if (IsLocked || HasWaiters)
        {
            return false;
        }
        k.LockdepAcquire(t, this, 0, read: false, trylock: true, fn);
        _writer = t;
        EnterAtomic(t);
        return true;
    }

    /// <remarks>Context: the caller holds it for read.</remarks>
    [KernelSymbol("up_read", "kernel/locking/rwsem.c")]
    public ValueTask UpRead([CallerMemberName] string fn = "")
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockRelease, this, Call("up_read", "read_unlock"), fn);
        if (point.IsCompleted)
        {
            ReleaseRead(fn);
            return default;
        }
        return UpReadAfterPoint(point, fn);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask UpReadAfterPoint(SchedYield point, string fn)
    {
        await point;
        ReleaseRead(fn);
    }

    private void ReleaseRead(string fn)
    {
        var k = K;
        var t = k.Current!;
        k.Sched.Access(Obj, write: HasWaiters);
        if (!_readers.Remove(t))
        {
            k.Bug($"up_read of {Name} not read-held by pid {t.Pid}", fn);
        }
        k.LockdepRelease(t, this, fn);
        LeaveAtomic(t);
        GrantWaiters();
    }

    /// <remarks>Context: the caller holds it for write.</remarks>
    [KernelSymbol("up_write", "kernel/locking/rwsem.c")]
    public ValueTask UpWrite([CallerMemberName] string fn = "")
    {
        var point = K.Sched.LockPoint(SchedPointKind.LockRelease, this, Call("up_write", "write_unlock"), fn);
        if (point.IsCompleted)
        {
            ReleaseWrite(fn);
            return default;
        }
        return UpWriteAfterPoint(point, fn);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask UpWriteAfterPoint(SchedYield point, string fn)
    {
        await point;
        ReleaseWrite(fn);
    }

    private void ReleaseWrite(string fn)
    {
        var k = K;
        var t = k.Current!;
        k.Sched.Access(Obj, write: true);
        if (_writer != t)
        {
            k.Bug($"up_write of {Name} not write-held by pid {t.Pid}", fn);
        }
        k.LockdepRelease(t, this, fn);
        LeaveAtomic(t);
        _writer = null;
        GrantWaiters();
    }

    /// <summary>downgrade_write(): the writer becomes a reader; queued readers come in too.</summary>
    /// <remarks>Context: the caller holds it for write; holds it for read on return.</remarks>
    [KernelSymbol("downgrade_write", "kernel/locking/rwsem.c")]
    public async ValueTask DowngradeWrite([CallerMemberName] string fn = "")
    {
        var k = K;
        await k.Sched.LockPoint(SchedPointKind.LockRelease, this, "downgrade_write", fn);
        var t = k.Current!;
        k.Sched.Access(Obj, write: true);
        if (_writer != t)
        {
            k.Bug($"downgrade_write of {Name} not write-held by pid {t.Pid}", fn);
        }
        _writer = null;
        _readers.Add(t);
        k.LockdepDowngrade(t, this);
        // rwsem_downgrade_wake(): rwsem_mark_wake(RWSEM_WAKE_READ_OWNED), readers only.
        if (Waiters is { Count: > 0 } w && w.Peek().Read)
        {
            WakeQueuedReaders();
        }
    }

    private void GrantWaiters()
    {
        if (_writer is not null || Waiters is not { Count: > 0 } w)
        {
            return;
        }
        if (!w.Peek().Read)
        {
            if (_readers.Count == 0)
            {
                // A spinning rwlock_t hands itself over (queued rwlock).
                WakeFirstExclusive(handOver: !Class.Sleeps);
            }
            return;
        }
        WakeQueuedReaders();
    }

    /// <summary>A reader is first in the queue: kernel/locking/rwsem.c:rwsem_mark_wake() grants
    /// every queued reader at once, those behind queued writers too (phase-fair), and the writers
    /// keep their order. A queued rwlock_t (kernel/locking/qrwlock.c) serves its queue in order:
    /// only the readers before the first writer get in.</summary>
    private void WakeQueuedReaders()
    {
        var w = Waiters!;
        bool passWriters = Class.Sleeps;
        for (int n = w.Count; n > 0; n--)
        {
            var (task, read) = w.Peek();
            if (!read && !passWriters)
            {
                return;
            }
            w.Dequeue();
            if (read)
            {
                _readers.Add(task);
                K.Sched.Wake(task);
            }
            else
            {
                w.Enqueue((task, read));
            }
        }
    }
}

/// <summary>struct mutex: driver locks, vfio's vma_lock.</summary>
/// <remarks>mutex_unlock() with waiters releases the lock and wakes the first of them
/// (__mutex_unlock_slowpath()); until it runs, a newcomer's mutex_lock() or mutex_trylock() may take
/// the lock (__mutex_trylock(), as nothing is handed over). The woken waiter that finds it taken sets
/// MUTEX_FLAG_HANDOFF (__mutex_trylock_or_handoff(), being first), and the next unlock hands the lock
/// to it directly (__mutex_handoff()): one newcomer gets in per wait, as in the kernel.</remarks>
[KernelSymbol("mutex", "include/linux/mutex.h")]
public sealed class Mutex(Kernel k, LockClass cls, LockLabel name) : LockBase(k, cls, name)
{
    private TaskStruct? _owner;

    private protected override void TakeExclusive(TaskStruct t) => _owner = t;

    public TaskStruct? Owner => _owner;

    public override bool IsLocked => _owner is not null;

    public override bool IsHeldBy(TaskStruct t) => _owner == t;

    /// <remarks>Context: may sleep: not under a spinlock.</remarks>
    [KernelSymbol("mutex_lock", "kernel/locking/mutex.c")]
    public async ValueTask Lock([CallerMemberName] string fn = "", int subclass = 0)
    {
        var k = K;
        await k.Sched.LockPoint(SchedPointKind.LockAcquire, this, "mutex_lock", fn);
        var t = k.Current!;
        k.MightSleep(fn);
        k.LockdepAcquire(t, this, subclass, read: false, trylock: false, fn);
        k.Sched.Access(Obj, write: true);
        if (_owner is null)
        {
            // Free: nobody waits, or the woken first waiter has not run yet.
            NoteOvertake();
            _owner = t;
            return;
        }
        Enqueue(t, read: false);
        await WaitAsFirst(t, fn);
    }

    /// <summary>mutex_trylock(): false when someone holds it.</summary>
    /// <remarks>Context: process context; does not sleep.</remarks>
    [KernelSymbol("mutex_trylock", "kernel/locking/mutex.c")]
    public async ValueTask<bool> TryLock([CallerMemberName] string fn = "")
    {
        var k = K;
        await k.Sched.LockPoint(SchedPointKind.LockAcquire, this, "mutex_trylock", fn);
        var t = k.Current!;
        k.Sched.Access(Obj, write: true);
        if (_owner is not null)
        {
            return false;
        }
        k.LockdepAcquire(t, this, 0, read: false, trylock: true, fn);
        NoteOvertake();
        _owner = t;
        return true;
    }

    /// <remarks>Context: the caller holds it.</remarks>
    [KernelSymbol("mutex_unlock", "kernel/locking/mutex.c")]
    public async ValueTask Unlock([CallerMemberName] string fn = "")
    {
        var k = K;
        await k.Sched.LockPoint(SchedPointKind.LockRelease, this, "mutex_unlock", fn);
        var t = k.Current!;
        k.Sched.Access(Obj, write: true);
        if (_owner != t)
        {
            k.Bug($"mutex_unlock of {Name} not held by pid {t.Pid}", fn);
        }
        k.LockdepRelease(t, this, fn);
        _owner = null;
        if (HasWaiters)
        {
            WakeFirstExclusive(handOver: false);
        }
    }
}

/// <summary>struct completion: one side waits until the other calls complete().</summary>
[KernelSymbol("completion", "include/linux/completion.h")]
public sealed class Completion(Kernel k, string name)
{
    private readonly Kernel _k = k;
    private readonly ulong _obj = ObjId.Make(ObjId.Kind.Other, k.NextObjectId());
    private readonly List<TaskStruct> _waiters = [];
    private bool _done;

    public string Name { get; } = name;

    public bool Done => _done;

    /// <remarks>Context: may sleep: not under a spinlock.</remarks>
    [KernelSymbol("wait_for_completion", "kernel/sched/completion.c")]
    public async ValueTask Wait([CallerMemberName] string fn = "")
    {
        var k = _k;
        k.Sched.Access(_obj, write: false);
        if (_done)
        {
            return;
        }
        _waiters.Add(k.Current!);
        await k.Sched.Sleep(this, fn);
    }

    /// <summary>complete_all(): every waiter, present and future, goes on.</summary>
    /// <remarks>Context: any; does not sleep.</remarks>
    [KernelSymbol("complete_all", "kernel/sched/completion.c")]
    public void CompleteAll()
    {
        _k.Sched.Access(_obj, write: true);
        _done = true;
        foreach (var t in _waiters)
        {
            _k.Sched.Wake(t);
        }
        _waiters.Clear();
    }
}

/// <summary>wait_queue_head_t: sleepers on a condition, all woken by wake_up_all().</summary>
[KernelSymbol("wait_queue_head", "include/linux/wait.h")]
public sealed class WaitQueueHead(Kernel k)
{
    private readonly Kernel _k = k;
    private readonly List<TaskStruct> _sleepers = [];

    public bool HasSleepers => _sleepers.Count > 0;

    /// <summary>Puts the current task to sleep until the next wake-up (the caller re-checks its
    /// condition in a loop, as wait_event() does).</summary>
    public SchedYield Sleep(string fn)
    {
        _sleepers.Add(_k.Current!);
        return _k.Sched.Sleep(this, fn);
    }

    /// <remarks>Context: any; does not sleep (the kernel takes the queue's own spinlock).</remarks>
    [KernelSymbol("wake_up_all", "include/linux/wait.h")]
    public void WakeUpAll()
    {
        if (_sleepers.Count == 0)
        {
            return;
        }
        foreach (var t in _sleepers)
        {
            _k.Sched.Wake(t);
        }
        _sleepers.Clear();
    }
}

namespace Linux;

// kernel/locking/lockdep.c: the part of lockdep the model needs — held-lock stacks per task, the
// class-level order graph, recursion and assertion checks — reported as findings.
public sealed partial class Kernel
{
    /// <summary>lock_acquire(): records the lock as held and checks the order against every lock
    /// already held. Trylocks cannot deadlock, so they add no dependency.</summary>
    /// <remarks>Context: called by the lock primitives, as <paramref name="t"/>, before it may wait.</remarks>
    [KernelSymbol("lock_acquire", "kernel/locking/lockdep.c")]
    internal void LockdepAcquire(TaskStruct t, LockBase l, int subclass, bool read, bool trylock, string fn)
    {
        var held = t.HeldLocks;
        if (!trylock)
        {
            var node = new LockGraph.Node(l.Class.Id, subclass);
            for (int i = 0; i < held.Count; i++)
            {
                var h = held[i];
                if (h.Lock == l)
                {
                    Sched.OnFinding(new Finding(Invariants.Deadlock,
                        $"recursive locking: pid {t.Pid} takes {l.Name} in {fn} while holding it (taken in {h.Function})",
                        t.Pid, fn));
                    continue;
                }
                var prev = new LockGraph.Node(h.Lock.Class.Id, h.Subclass);
                if (prev == node)
                {
                    Sched.OnFinding(new Finding(Invariants.LockOrder,
                        $"possible recursive locking: pid {t.Pid} takes {l.Name} ({node}) in {fn} while holding {h.Lock.Name} of the same class (taken in {h.Function})",
                        t.Pid, fn));
                    continue;
                }
                if (LockGraph.Contains(prev, node))
                {
                    continue;
                }
                var cycle = LockGraph.AddEdge(prev, node, new LockGraph.EdgeContext(h.Function, fn, t.Comm));
                if (cycle is not null)
                {
                    Sched.OnFinding(new Finding(Invariants.LockOrder, LockGraph.Describe(cycle), t.Pid, fn));
                }
            }
        }
        held.Add(new HeldLock(l, subclass, read, fn, t.CheckedWrites));
    }

    /// <summary>lock_release(): locks may be dropped in any order.</summary>
    /// <remarks>Context: called by the lock primitives, as <paramref name="t"/>, which holds <paramref name="l"/>.</remarks>
    [KernelSymbol("lock_release", "kernel/locking/lockdep.c")]
    internal void LockdepRelease(TaskStruct t, LockBase l, string fn)
    {
        var held = t.HeldLocks;
        for (int i = held.Count - 1; i >= 0; i--)
        {
            if (held[i].Lock == l)
            {
                if (IsPageTableLock(l) && held[i].CheckedWrites != t.CheckedWrites)
                {
                    // The section's update is complete: the page-table checks may read the state again.
                    Sched.Access(PageTablesQuiescedObj, write: true);
                }
                held.RemoveAt(i);
                return;
            }
        }
        Sched.OnFinding(new Finding(Invariants.LockAssert, $"releasing {l.Name} in {fn}, which pid {t.Pid} does not hold", t.Pid, fn));
    }

    internal void LockdepDowngrade(TaskStruct t, LockBase l)
    {
        var held = t.HeldLocks;
        for (int i = held.Count - 1; i >= 0; i--)
        {
            if (held[i].Lock == l)
            {
                held[i] = held[i] with { Read = true };
                return;
            }
        }
    }

    /// <summary>might_sleep(): sleeping with a spinlock held is "BUG: sleeping function called from
    /// invalid context".</summary>
    /// <remarks>Context: called by functions that may sleep; a finding if the caller is atomic (a spinlock
    /// held).</remarks>
    [KernelSymbol("might_sleep", "include/linux/kernel.h")]
    public void MightSleep([CallerMemberName] string fn = "")
    {
        var t = Current;
        if (t is not null && t.PreemptCount > 0)
        {
            var spin = t.HeldLocks.LastOrDefault(h => !h.Lock.Class.Sleeps);
            Sched.OnFinding(new Finding(Invariants.SleepInAtomic,
                $"sleeping function called from invalid context in {fn}" +
                (spin.Lock is not null ? $" with {spin.Lock.Name} held (taken in {spin.Function})" : ""),
                t.Pid, fn));
        }
    }

    /// <summary>lockdep_assert_held(): a lock-assert finding unless the current task holds it.</summary>
    /// <remarks>Context: any.</remarks>
    [KernelSymbol("lockdep_assert_held", "include/linux/lockdep.h")]
    public void LockdepAssertHeld(LockBase l, [CallerMemberName] string fn = "")
    {
        var t = Current;
        if (t is not null && !l.IsHeldBy(t))
        {
            Sched.OnFinding(new Finding(Invariants.LockAssert, $"{fn}: {l.Name} is not held by pid {t.Pid}", t.Pid, fn));
        }
    }

    /// <summary>lockdep_assert_held_write(): a lock-assert finding unless held for write.</summary>
    /// <remarks>Context: any.</remarks>
    [KernelSymbol("lockdep_assert_held_write", "include/linux/lockdep.h")]
    public void LockdepAssertHeldWrite(RwSemaphore l, [CallerMemberName] string fn = "")
    {
        var t = Current;
        if (t is not null && !l.IsWriteHeldBy(t))
        {
            Sched.OnFinding(new Finding(Invariants.LockAssert,
                $"{fn}: {l.Name} is not write-locked by pid {t.Pid}" + (l.IsReadHeldBy(t) ? " (it holds it for read)" : ""),
                t.Pid, fn));
        }
    }

    /// <summary>Checks that a task returning to user space holds no lock (lockdep's
    /// "lock held when returning to user space").</summary>
    internal void LockdepAssertNoneHeld(TaskStruct t, string fn)
    {
        if (t.HeldLocks.Count > 0)
        {
            var h = t.HeldLocks[^1];
            Sched.OnFinding(new Finding(Invariants.LockAssert,
                $"lock held when returning to user space: pid {t.Pid} holds {h.Lock.Name} (taken in {h.Function})", t.Pid, fn));
        }
    }
}

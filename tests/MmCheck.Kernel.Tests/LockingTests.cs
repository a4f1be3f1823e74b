using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>Lockdep in the model: assertions, order inversions, recursion, sleeping in atomic context.</summary>
public class LockingTests
{
    private static readonly LockClass s_a = LockClass.Define("test_lock_a", sleeps: true);
    private static readonly LockClass s_b = LockClass.Define("test_lock_b", sleeps: true);

    [Fact]
    public void VmFlagsSetUnderTheReadLockIsALockAssertFinding()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        var vma = p.Vmas[0];
        p.K.Run(p.T, async () =>
        {
            await p.K.MmapReadLock(p.Mm);
            await p.K.VmFlagsSet(vma, VmFlags.VM_DONTDUMP);
            await p.K.MmapReadUnlock(p.Mm);
        });
        var f = Assert.Single(p.K.Findings);
        Assert.Equal(Invariants.LockAssert, f.Invariant);
        Assert.Contains("mmap_lock", f.Message);
        Assert.Contains("read", f.Message);
        _ = a;
    }

    [Fact]
    public void VmFlagsSetUnderTheWriteLockIsClean()
    {
        var p = Proc.Boot();
        p.MmapAnon(1);
        var vma = p.Vmas[0];
        p.K.Run(p.T, async () =>
        {
            await p.K.MmapWriteLock(p.Mm);
            await p.K.VmFlagsSet(vma, VmFlags.VM_DONTDUMP);
            await p.K.MmapWriteUnlock(p.Mm);
        });
        Assert.Empty(p.K.Findings);
        Assert.True((vma.VmFlags & VmFlags.VM_DONTDUMP) != 0);
    }

    [Fact]
    public void TakingTwoLocksInBothOrdersIsReportedEvenWithoutDeadlock()
    {
        var k = new Linux.Kernel();
        var t = k.CreateProcess("t");
        var a = new Linux.Mutex(k, s_a, "A");
        var b = new Linux.Mutex(k, s_b, "B");
        k.Run(t, async () =>
        {
            await a.Lock();
            await b.Lock();
            await b.Unlock();
            await a.Unlock();
            await b.Lock();
            await a.Lock();
            await a.Unlock();
            await b.Unlock();
        });
        var f = Assert.Single(k.Findings);
        Assert.Equal(Invariants.LockOrder, f.Invariant);
        Assert.Contains("test_lock_a", f.Message);
        Assert.Contains("test_lock_b", f.Message);
    }

    [Fact]
    public void TakingAMutexTwiceDeadlocks()
    {
        var k = new Linux.Kernel();
        var t = k.CreateProcess("t");
        var a = new Linux.Mutex(k, s_a, "A");
        Assert.Throws<TaskIncompleteException>(() => k.Run(t, async () =>
        {
            await a.Lock();
            await a.Lock();
        }));
        Assert.Contains(k.Findings, f => f.Invariant == Invariants.Deadlock);
    }

    [Fact]
    public void SleepingUnderASpinlockIsReported()
    {
        var k = new Linux.Kernel();
        var t = k.CreateProcess("t");
        var mm = t.Mm!;
        k.Run(t, async () =>
        {
            await mm.PageTableLock.Lock();
            await k.MmapReadLock(mm);
            await k.MmapReadUnlock(mm);
            await mm.PageTableLock.Unlock();
        });
        Assert.Contains(k.Findings, f => f.Invariant == Invariants.SleepInAtomic);
    }

    [Fact]
    public void ReturningToUserSpaceWithALockHeldIsReported()
    {
        var k = new Linux.Kernel();
        var t = k.CreateProcess("t");
        k.Run(t, async () =>
        {
            await k.MmapReadLock(t.Mm!);
            await k.ReturnToUser(t, "test");
            await k.MmapReadUnlock(t.Mm!);
        });
        Assert.Contains(k.Findings, f => f.Invariant == Invariants.LockAssert && f.Message.Contains("returning to user space"));
    }

    [Fact]
    public void ARwsemReaderQueuesBehindAWaitingWriter()
    {
        var k = new Linux.Kernel();
        var r1 = k.CreateProcess("r1");
        var w = k.CreateThread(r1, "w");
        var r2 = k.CreateThread(r1, "r2");
        var trig = k.CreateThread(r1, "trig");
        var mm = r1.Mm!;
        var ds = (DirectScheduler)k.Sched;
        var go = new Completion(k, "go");
        var order = new List<string>();
        bool r2BlockedWhileWriterQueued = false;
        ds.Run(r1, async () =>
        {
            await k.MmapReadLock(mm);
            order.Add("r1 in");
            ds.Spawn(w, async () =>
            {
                await k.MmapWriteLock(mm);
                order.Add("w in");
                await k.MmapWriteUnlock(mm);
            }, "w");
            ds.Spawn(r2, async () =>
            {
                await k.MmapReadLock(mm);
                order.Add("r2 in");
                await k.MmapReadUnlock(mm);
            }, "r2");
            ds.Spawn(trig, () =>
            {
                go.CompleteAll();
                return ValueTask.CompletedTask;
            }, "trig");
            await go.Wait();
            // w queued behind r1, and r2 queued behind w although only readers hold the lock.
            r2BlockedWhileWriterQueued = r2.SchedState == TaskSchedState.Sleeping && w.SchedState == TaskSchedState.Sleeping;
            await k.MmapReadUnlock(mm);
        });
        Assert.True(r2BlockedWhileWriterQueued);
        Assert.Equal(["r1 in", "w in", "r2 in"], order);
        Assert.Empty(k.Findings);
    }
}

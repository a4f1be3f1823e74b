using Linux;
using MmCheck.Tests;
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
            ds.Spawn(w, WriteSection(k, mm, order, "w in"), "w");
            ds.Spawn(r2, ReadSection(k, mm, order, "r2 in"), "r2");
            SpawnCompleting(ds, trig, go);
            await go.Wait();
            // w queued behind r1, and r2 queued behind w although only readers hold the lock.
            r2BlockedWhileWriterQueued = r2.SchedState == TaskSchedState.Sleeping && w.SchedState == TaskSchedState.Sleeping;
            await k.MmapReadUnlock(mm);
        });
        Assert.True(r2BlockedWhileWriterQueued);
        Assert.Equal(["r1 in", "w in", "r2 in"], order);
        Assert.Empty(k.Findings);
    }

    [Fact]
    public void ReleasingToAQueuedReaderLetsInEveryQueuedReaderEvenThoseBehindAWriter()
    {
        // kernel/locking/rwsem.c:rwsem_mark_wake() is phase-fair: with a reader first in the queue
        // it grants every queued reader, r2 behind w2 too; w2 keeps its place.
        var k = new Linux.Kernel();
        var w = k.CreateProcess("w");
        var r1 = k.CreateThread(w, "r1");
        var w2 = k.CreateThread(w, "w2");
        var r2 = k.CreateThread(w, "r2");
        var trig = k.CreateThread(w, "trig");
        var mm = w.Mm!;
        var ds = (DirectScheduler)k.Sched;
        var go = new Completion(k, "go");
        var order = new List<string>();
        ds.Run(w, async () =>
        {
            await k.MmapWriteLock(mm);
            ds.Spawn(r1, ReadSection(k, mm, order, "r1 in"), "r1");
            ds.Spawn(w2, WriteSection(k, mm, order, "w2 in"), "w2");
            ds.Spawn(r2, ReadSection(k, mm, order, "r2 in"), "r2");
            SpawnCompleting(ds, trig, go);
            await go.Wait();
            await k.MmapWriteUnlock(mm);
        });
        Assert.Equal(["r1 in", "r2 in", "w2 in"], order);
        Assert.Empty(k.Findings);
    }

    /// <summary>A task body that read-locks <paramref name="mm"/>'s mmap_lock, notes
    /// <paramref name="entry"/> in <paramref name="order"/> and unlocks.</summary>
    private static Func<ValueTask> ReadSection(Linux.Kernel k, MmStruct mm, List<string> order, string entry) => async () =>
    {
        await k.MmapReadLock(mm);
        order.Add(entry);
        await k.MmapReadUnlock(mm);
    };

    /// <summary>As <see cref="ReadSection"/>, write-locked.</summary>
    private static Func<ValueTask> WriteSection(Linux.Kernel k, MmStruct mm, List<string> order, string entry) => async () =>
    {
        await k.MmapWriteLock(mm);
        order.Add(entry);
        await k.MmapWriteUnlock(mm);
    };

    /// <summary>Spawns <paramref name="t"/> to complete <paramref name="c"/>: it runs once the
    /// tasks queued before it have run or slept.</summary>
    private static void SpawnCompleting(DirectScheduler ds, TaskStruct t, Completion c) =>
        ds.Spawn(t, () =>
        {
            c.CompleteAll();
            return ValueTask.CompletedTask;
        }, t.Comm);

    [Fact]
    public void ANewcomerMayTakeTheRwsemBeforeTheWokenWriterRunsOnceAndThenTheWriterHasItHandedOver()
    {
        // r1 holds mmap_lock for read, w waits for write. r1's up_read() only wakes w, and before w
        // runs the lock is free with its waiter flag set: down_write_trylock() fails, but r1's
        // down_read() gets in (rwsem_down_read_slowpath()'s steal). w, finding it taken, sets the
        // handoff bit, so r1's next up_read() hands the lock to w and r1 coming back a third time
        // queues behind it, as r2 did.
        var k = new Linux.Kernel();
        var r1 = k.CreateProcess("r1");
        var w = k.CreateThread(r1, "w");
        var r2 = k.CreateThread(r1, "r2");
        var trig = k.CreateThread(r1, "trig");
        var late = k.CreateThread(r1, "late");
        var mm = r1.Mm!;
        var ds = (DirectScheduler)k.Sched;
        var go = new Completion(k, "go");
        var again = new Completion(k, "again");
        var order = new List<string>();
        bool trylockFailed = false, stole = false, r2Queued = false;
        ds.Run(r1, async () =>
        {
            await k.MmapReadLock(mm);
            ds.Spawn(w, WriteSection(k, mm, order, "w in"), "w");
            SpawnCompleting(ds, trig, go);
            await go.Wait();
            await k.MmapReadUnlock(mm);
            trylockFailed = !await mm.MmapLock.DownWriteTrylock();
            await k.MmapReadLock(mm);
            stole = mm.MmapLock.IsReadHeldBy(r1) && mm.MmapLock.Writer is null;
            order.Add("r1 in again");
            ds.Spawn(r2, ReadSection(k, mm, order, "r2 in"), "r2");
            ds.Spawn(late, () =>
            {
                // After w's failed retry and r2's arrival.
                r2Queued = r2.SchedState == TaskSchedState.Sleeping;
                again.CompleteAll();
                return ValueTask.CompletedTask;
            }, "late");
            await again.Wait();
            await k.MmapReadUnlock(mm);
            await k.MmapReadLock(mm);
            order.Add("r1 in a third time");
            await k.MmapReadUnlock(mm);
        });
        Assert.True(trylockFailed);
        Assert.True(stole);
        Assert.True(r2Queued);
        Assert.Equal(["r1 in again", "w in", "r2 in", "r1 in a third time"], order);
        Assert.Empty(k.Findings);
    }

    [Fact]
    public void ANewcomerMayTakeAMutexBeforeTheWokenWaiterRunsOnceAndThenTheWaiterHasItHandedOver()
    {
        // a holds the mutex, b waits. a's mutex_unlock() releases it and wakes b; a's mutex_lock()
        // before b runs gets it (__mutex_trylock()). b, first and finding it taken, sets
        // MUTEX_FLAG_HANDOFF: a's next unlock hands the mutex to b, and a queues behind it.
        var recorder = new EffectRecorder { RecordsEffects = true };
        var k = new Linux.Kernel(scheduler: recorder);
        var a = k.CreateProcess("a");
        var b = k.CreateThread(a, "b");
        var trig = k.CreateThread(a, "trig");
        var late = k.CreateThread(a, "late");
        var m = new Linux.Mutex(k, s_a, "A");
        var ds = (DirectScheduler)k.Sched;
        var go = new Completion(k, "go");
        var again = new Completion(k, "again");
        var order = new List<string>();
        bool stole = false;
        ds.Run(a, async () =>
        {
            await m.Lock();
            ds.Spawn(b, async () =>
            {
                await m.Lock();
                order.Add("b in");
                await m.Unlock();
            }, "b");
            SpawnCompleting(ds, trig, go);
            await go.Wait();
            await m.Unlock();
            await m.Lock();
            stole = m.Owner == a;
            order.Add("a in again");
            SpawnCompleting(ds, late, again);
            await again.Wait();
            await m.Unlock();
            await m.Lock();
            order.Add("a in a third time");
            await m.Unlock();
        });
        Assert.True(stole);
        Assert.Equal(["a in again", "b in", "a in a third time"], order);
        Assert.Empty(k.Findings);
        // A readable trace says who overtook whom and why the waiter sleeps on.
        var notes = recorder.Effects.OfType<NoteEffect>().Select(e => e.Text).ToList();
        Assert.Contains($"takes A before the woken pid {b.Pid} runs", notes);
        Assert.Contains("A taken meanwhile: handoff flag set, sleeps on", notes);
    }

    private sealed class EffectRecorder : DirectScheduler
    {
        public readonly List<Effect> Effects = [];

        public override void OnEffect(Effect effect) => Effects.Add(effect);
    }

    // ---- mmap_lock assertions and the vm_flags_*() wrappers ----

    [Theory]
    [InlineData("none", true)]
    [InlineData("read", false)]
    [InlineData("write", false)]
    public void FindVmaAssertsTheMmapLockWhereVmaLookupDoesNot(string held, bool finding)
    {
        // find_vma() asserts mmap_assert_locked(); vma_lookup() is mtree_load(), which
        // lock_vma_under_rcu() also does without the mmap lock.
        var k = new Linux.Kernel();
        var t = k.CreateProcess("t");
        var mm = t.Mm!;
        ulong a = (ulong)k.Run(t, () => k.SysMmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        VmAreaStruct? found = null, looked = null;
        k.Run(t, async () =>
        {
            if (held == "read") { await k.MmapReadLock(mm); }
            if (held == "write") { await k.MmapWriteLock(mm); }
            looked = mm.MmMt.VmaLookup(a);
            Assert.Empty(k.Findings);
            found = mm.MmMt.FindVma(a);
            if (held == "read") { await k.MmapReadUnlock(mm); }
            if (held == "write") { await k.MmapWriteUnlock(mm); }
        });
        Assert.NotNull(looked);
        Assert.Same(looked, found);
        Assert.Equal(finding, k.Findings.Any(f => f.Invariant == Invariants.LockAssert && f.Function == "find_vma"));
        Assert.Equal(finding ? 1 : 0, k.Findings.Count);
    }

    [Theory]
    [InlineData("none", true, true)]
    [InlineData("read", false, true)]
    [InlineData("write", false, false)]
    public void MmapAssertionsReportExactlyTheMissingLock(string held, bool lockedFinding, bool writeLockedFinding)
    {
        var k = new Linux.Kernel();
        var t = k.CreateProcess("t");
        var mm = t.Mm!;
        var found = new List<string>();
        k.Run(t, async () =>
        {
            if (held == "read") { await k.MmapReadLock(mm); }
            if (held == "write") { await k.MmapWriteLock(mm); }
            int n = k.Findings.Count;
            k.MmapAssertLocked(mm, "assert_locked_site");
            k.MmapAssertWriteLocked(mm, "assert_write_locked_site");
            found.AddRange(k.Findings.Skip(n).Select(f => f.Function));
            if (held == "read") { await k.MmapReadUnlock(mm); }
            if (held == "write") { await k.MmapWriteUnlock(mm); }
        });
        Assert.Equal(lockedFinding, found.Contains("assert_locked_site"));
        Assert.Equal(writeLockedFinding, found.Contains("assert_write_locked_site"));
        Assert.All(k.Findings, f => Assert.Equal(Invariants.LockAssert, f.Invariant));
    }

    [Theory]
    [InlineData("set")]
    [InlineData("clear")]
    [InlineData("mod")]
    public void EveryVmFlagsWrapperAssertsTheWriteLockAndWriteLocksTheVma(string op)
    {
        foreach (bool write in new[] { false, true })
        {
            var p = Proc.Boot();
            p.MmapAnon(1);
            var vma = p.Vmas[0];
            bool vmaWriteLocked = false;
            p.K.Run(p.T, async () =>
            {
                if (write) { await p.K.MmapWriteLock(p.Mm); } else { await p.K.MmapReadLock(p.Mm); }
                switch (op)
                {
                    case "set": await p.K.VmFlagsSet(vma, VmFlags.VM_DONTDUMP); break;
                    case "clear": await p.K.VmFlagsClear(vma, VmFlags.VM_DONTDUMP); break;
                    default: await p.K.VmFlagsMod(vma, VmFlags.VM_DONTDUMP, VmFlags.VM_NOHUGEPAGE); break;
                }
                vmaWriteLocked = vma.VmLock.IsWriteLocked;
                if (write) { await p.K.MmapWriteUnlock(p.Mm); } else { await p.K.MmapReadUnlock(p.Mm); }
            });
            Assert.Equal(!write, p.K.Findings.Any(f => f.Invariant == Invariants.LockAssert && f.Message.Contains("mmap_lock")));
            if (write)
            {
                // vma_start_write() stamped the VMA; mmap_write_unlock() released it with the mmap lock.
                Assert.True(vmaWriteLocked);
                Assert.False(vma.VmLock.IsWriteLocked);
            }
        }
    }

    // ---- page-table locks ----

    [Fact]
    public void EachPteTableHasItsOwnSplitLockAndUpperLevelsUsePageTableLock()
    {
        var p = Proc.Boot();
        long a = p.Mmap(0, 4UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        ulong lo = ((ulong)a + (2UL << 20)) & ~((2UL << 20) - 1);
        p.Write(lo - 4096, 1);
        p.Write(lo, 2);
        var k = p.K;
        var t1 = k.WalkPte(p.Mm, lo - 4096)!.Value.Table;
        var t2 = k.WalkPte(p.Mm, lo)!.Value.Table;
        Assert.NotSame(t1, t2);
        Assert.NotSame(k.PteLockptr(p.Mm, t1), k.PteLockptr(p.Mm, t2));
        Assert.NotSame(p.Mm.PageTableLock, k.PteLockptr(p.Mm, t1));
        // The PMD lock is the PMD table's own split lock (USE_SPLIT_PMD_PTLOCKS on x86-64).
        var pmd = k.MmFindPmd(p.Mm, lo)!.Value;
        Assert.Equal(2, pmd.Table.Level);
        Assert.Same(pmd.Table.Ptl, k.PmdLockptr(p.Mm, pmd));
        Assert.NotSame(p.Mm.PageTableLock, k.PmdLockptr(p.Mm, pmd));
        // Upper tables have no split lock: pud_lock() is mm->page_table_lock.
        Assert.Null(p.Mm.Pgd.Ptl);
        var pudLock = k.Run(p.T, async () =>
        {
            var l = await k.PudLock(p.Mm, pmd);
            await l.Unlock();
            return l;
        });
        Assert.Same(p.Mm.PageTableLock, pudLock);
        p.AssertClean();
    }

    [Fact]
    public void WithFoldedPmdsThePmdLockIsPageTableLock()
    {
        var p = Proc.Boot(new KernelConfig { Paging = PagingMode.X86_32_2Level, RamBytes = 64UL << 20 });
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var pmd = p.K.MmFindPmd(p.Mm, a)!.Value;
        Assert.Same(p.Mm.PageTableLock, p.K.PmdLockptr(p.Mm, pmd));
        p.AssertClean();
    }

    [Fact]
    public void PmdInstallRechecksUnderThePmdLockAndTheLoserFreesItsTable()
    {
        var p = Proc.Boot();
        long a = p.Mmap(0, 4UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        ulong addr = ((ulong)a + (2UL << 20)) & ~((2UL << 20) - 1);
        p.Write(addr - 4096, 1);   // the PMD table exists; the PMD entry for addr is still none
        var k = p.K;
        var pmd = k.MmFindPmd(p.Mm, addr)!.Value;
        Assert.True(k.PmdNone(k.PmdpGet(pmd)));
        long used = k.Buddy.UsedPages;
        // Two faults both saw pmd_none() and each preallocated a PTE table.
        var mine = k.PteAllocOne(p.Mm)!;
        var theirs = k.PteAllocOne(p.Mm)!;
        bool first = k.Run(p.T, () => k.PmdInstall(p.Mm, pmd, theirs, addr));
        bool second = k.Run(p.T, () => k.PmdInstall(p.Mm, pmd, mine, addr));
        Assert.True(first);
        Assert.False(second);
        k.FreePageTable(mine);
        Assert.Equal(used + 1, k.Buddy.UsedPages);
        Assert.Same(theirs, k.TableOf(k.PmdpGet(pmd).Val));
        p.Write(addr, 2);
        Assert.Same(theirs, k.WalkPte(p.Mm, addr)!.Value.Table);
        p.AssertClean();
    }

    // ---- the one seam ----

    private static (Linux.Kernel K, SeamScheduler S, TaskStruct T) BootOnSeam(bool preempt)
    {
        var s = new SeamScheduler(preempt);
        var k = new Linux.Kernel(new KernelConfig { RamBytes = 256UL << 20 }, s);
        return (k, s, k.CreateProcess("p"));
    }

    [Fact]
    public void EveryLockAcquisitionOfABroadWorkloadGoesThroughTheSeam()
    {
        var (k, s, t) = BootOnSeam(preempt: false);
        s.Run(t, async () =>
        {
            long a = await k.SysMmap(0, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            long fd = await k.SysMemfdCreate("m", 0);
            await k.SysFtruncate(fd, 4 * 4096);
            long sh = await k.SysMmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            long pr = await k.SysMmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
            for (ulong i = 0; i < 4; i++)
            {
                await k.UserStore((ulong)a + i * 4096, 8, i + 1);
                await k.UserStore((ulong)sh + i * 4096, 8, i + 10);
                await k.UserLoad((ulong)pr + i * 4096, 8);
            }
            await k.UserStore((ulong)pr, 8, 99);
            var (child, _) = await k.SysFork();
            await k.UserStore((ulong)a, 8, 0x22);
            await k.SysMprotect((ulong)a + 4096, 4096, PROT_READ);
            await k.SysMadvise((ulong)a + 2 * 4096, 4096, MADV_DONTNEED);
            await k.SysMremap((ulong)a + 3 * 4096, 4096, 8192, MREMAP_MAYMOVE, 0);
            await k.SysFtruncate(fd, 4096);
            await k.SysMunmap((ulong)a, 8 * 4096);
            _ = child;
            return 0;
        });
        Assert.True(s.SeamViolations.Count == 0, string.Join("\n", s.SeamViolations.Distinct()));
        Assert.True(s.Findings.Count == 0, string.Join("\n", s.Findings));
        var kinds = s.Points.Select(x => x.Kind).ToHashSet();
        Assert.Contains(SchedPointKind.LockAcquire, kinds);
        Assert.Contains(SchedPointKind.LockRelease, kinds);
        Assert.Contains(SchedPointKind.Syscall, kinds);
        Assert.Contains(SchedPointKind.UserAccess, kinds);
        Assert.Contains(SchedPointKind.HardwareWalk, kinds);
        // Every lock class the workload used was announced at the seam.
        var announced = s.Points.Where(x => x.Kind == SchedPointKind.LockAcquire).Select(x => x.Obj).ToHashSet();
        Assert.Contains(t.Mm!.MmapLock.Obj, announced);
        Assert.Contains(t.Mm!.PageTableLock.Obj, announced);
    }

    [Fact]
    public void ASecondFaultInTheSameTableTakesOnlyItsSplitPteLock()
    {
        var (k, s, t) = BootOnSeam(preempt: false);
        var mm = t.Mm!;
        ulong a = (ulong)s.Run(t, () => k.SysMmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        s.Run(t, async () => (await k.UserStore(a, 8, 1)).Ok);
        int from = s.Points.Count;
        s.Run(t, async () => (await k.UserStore(a + 4096, 8, 2)).Ok);
        var locks = s.Points.Skip(from).Where(x => x.Kind == SchedPointKind.LockAcquire).Select(x => x.Obj).ToList();
        var ptl = k.WalkPte(mm, a)!.Value.Table.Ptl!;
        Assert.Contains(ptl.Obj, locks);
        Assert.DoesNotContain(mm.PageTableLock.Obj, locks);
        Assert.DoesNotContain(mm.MmapLock.Obj, locks);   // the per-VMA lock suffices
        Assert.Empty(s.SeamViolations);
    }

    /// <summary>Two threads of <paramref name="t"/>'s process each store to their own word of the
    /// same four fresh pages (faulting tables and pages in) until both are done; the eight words read
    /// back in address order (0x100 + page and 0x200 + page when nothing was lost).</summary>
    private static ulong[] TwoThreadsStoreToTheSamePages(Linux.Kernel k, SeamScheduler s, TaskStruct t, out long usedBefore)
    {
        var t2 = k.CreateThread(t, "t2");
        ulong a = (ulong)s.Run(t, () => k.SysMmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        usedBefore = k.Buddy.UsedPages;
        s.Spawn(t, async () =>
        {
            for (ulong i = 0; i < 4; i++) { await k.UserStore(a + i * 4096, 8, 0x100 + i); }
        }, "t1");
        s.Spawn(t2, async () =>
        {
            for (ulong i = 0; i < 4; i++) { await k.UserStore(a + i * 4096 + 8, 8, 0x200 + i); }
        }, "t2");
        Assert.True(s.RunAll(), string.Join("; ", s.Findings));
        var vals = new List<ulong>();
        for (ulong i = 0; i < 4; i++)
        {
            vals.Add(s.Run(t, async () => (await k.UserLoad(a + i * 4096, 8)).Value));
            vals.Add(s.Run(t, async () => (await k.UserLoad(a + i * 4096 + 8, 8)).Value));
        }
        return [.. vals];
    }

    [Fact]
    public void ThreadsFaultingTheSameTablesInterleavedAtEveryPointAgreeAndLeakNoTable()
    {
        long Run(bool preempt, out SeamScheduler sched, out ulong[] seen)
        {
            var (k, s, t) = BootOnSeam(preempt);
            seen = TwoThreadsStoreToTheSamePages(k, s, t, out long before);
            sched = s;
            Assert.Empty(k.CheckInvariants());
            return k.Buddy.UsedPages - before;
        }
        long sequential = Run(false, out var s0, out var v0);
        long interleaved = Run(true, out var s1, out var v1);
        Assert.True(s1.Preemptions > 50, $"only {s1.Preemptions} preemptions");
        Assert.Equal(v0, v1);
        Assert.Equal([0x100UL, 0x200, 0x101, 0x201, 0x102, 0x202, 0x103, 0x203], v1);
        // Racing table allocations lost in pmd_install() were freed: same pages in use either way.
        Assert.Equal(sequential, interleaved);
        Assert.Empty(s0.Findings);
        Assert.Empty(s1.Findings);
        Assert.Empty(s1.SeamViolations);
    }

    [Fact]
    public void TasksInterleavedAtEveryPointRunInlineUnderACallersSynchronizationContext()
    {
        // The fault path's pooled value tasks post continuations to a captured context: the
        // scheduler must keep the caller's away from the model, or the tasks go on elsewhere.
        var caller = SynchronizationContext.Current;
        var recorder = new RecordingContext();
        SynchronizationContext.SetSynchronizationContext(recorder);
        try
        {
            var (k, s, t) = BootOnSeam(preempt: true);
            var seen = TwoThreadsStoreToTheSamePages(k, s, t, out _);
            Assert.True(s.Preemptions > 50, $"only {s.Preemptions} preemptions");
            Assert.Equal([0x100UL, 0x200, 0x101, 0x201, 0x102, 0x202, 0x103, 0x203], seen);
            Assert.Equal(0, recorder.Posts);
            Assert.Same(recorder, SynchronizationContext.Current);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(caller);
        }
    }

    [Fact]
    public void AnInodesLocksMadeOnFirstUseKeepTheFootprintIdsOfTheirInode()
    {
        // DPOR compares footprints across executions: a lock's id must follow from when its
        // inode was made, not from which schedule happened to touch the lock first.
        var k = new Linux.Kernel();
        var a = new Inode(k, k.NextIno(), "test", "a");
        var b = new Inode(k, k.NextIno(), "test", "b");
        ulong bRwsem = b.IRwsem.Obj, bMmap = b.IMapping.IMmapRwsem.Obj, bPages = b.IMapping.IPagesLock.Obj;
        Assert.True(a.IRwsem.Obj < bRwsem);
        Assert.True(a.IMapping.IMmapRwsem.Obj < bMmap);
        Assert.True(a.IMapping.IPagesLock.Obj < bPages);
        Assert.Same(a.IRwsem, a.IRwsem);
        Assert.Equal(0, a.IMapping.NrPages);
    }

    // ---- the documented lock order ----

    private static string RepoFile(string rel)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(d.FullName, "MmCheck.slnx")))
            {
                return System.IO.File.ReadAllText(Path.Combine(d.FullName, rel));
            }
        }
        throw new FileNotFoundException(rel);
    }

    /// <summary>The tree's lines (indentation kept, comments dropped) from the first line naming
    /// inode->i_rwsem to the line naming the i_pages lock.</summary>
    private static List<(int Depth, string Name)> Tree(IEnumerable<string> lines)
    {
        var tree = new List<(int, string)>();
        bool inTree = false;
        foreach (var line in lines)
        {
            if (!inTree && line.TrimStart().StartsWith("inode->i_rwsem", StringComparison.Ordinal))
            {
                inTree = true;
            }
            if (!inTree)
            {
                continue;
            }
            int depth = line.Length - line.TrimStart().Length;
            string name = line.Trim();
            int paren = name.IndexOf("  ", StringComparison.Ordinal);
            tree.Add((depth, (paren > 0 ? name[..paren] : name).Trim()));
            if (line.Contains("i_pages lock", StringComparison.Ordinal))
            {
                break;
            }
        }
        int d0 = tree[0].Item1;
        return [.. tree.Select(x => ((x.Item1 - d0) / 2, x.Item2))];
    }

    private static List<(int Depth, string Name)> DocTree() =>
        Tree(RepoFile("docs/locking.md").Split('\n'));

    [Fact]
    public void TheLockOrderIsWrittenOnceInRmapAndTheSameInDocsLocking()
    {
        var rmap = Tree(RepoFile("src/MmCheck.Kernel/Mm/Rmap.cs").Split('\n')
            .Select(l => l.TrimStart().StartsWith('*') ? l[(l.IndexOf('*') + 1)..] : l));
        var doc = DocTree();
        Assert.Equal(8, doc.Count);
        Assert.Equal(doc, rmap);
        // A strict nesting: each line one level below the previous.
        Assert.Equal(Enumerable.Range(0, doc.Count), doc.Select(x => x.Depth));
    }

    /// <summary>The documented depth of a lock class, or null for classes outside the mm tree.</summary>
    private static int? Depth(List<(int Depth, string Name)> tree, LockClass c)
    {
        string? line = c.Name switch
        {
            "inode->i_rwsem" => "inode->i_rwsem",
            "mm->mmap_lock" => "mm->mmap_lock",
            "folio->flags PG_locked" => "folio lock (PG_locked)",
            "vma->vm_lock" => "vma->vm_lock",
            "mapping->i_mmap_rwsem" => "mapping->i_mmap_rwsem",
            "anon_vma->rwsem" => "anon_vma->rwsem",
            "mm->page_table_lock" or "ptlock (split PTE/PMD lock)" => "mm->page_table_lock or the split PTE/PMD lock",
            "mapping->i_pages lock" => "mapping->i_pages lock",
            _ => null,
        };
        if (line is null)
        {
            return null;
        }
        var hit = tree.Single(x => x.Name == line);
        return hit.Depth;
    }

    [Fact]
    public void EveryOrderLockdepLearnsFromTheKernelFollowsTheDocumentedTree()
    {
        var tree = DocTree();
        var graph = new LockGraph();
        var p = Proc.Boot(new KernelConfig { LockGraph = graph, RamBytes = 256UL << 20 });
        ulong a = p.MmapAnon(8);
        long fd = p.Memfd(8);
        ulong sh = p.MmapFile(fd, 8, MAP_SHARED);
        ulong pr = (ulong)p.Mmap(0, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
        for (ulong i = 0; i < 8; i++)
        {
            p.Write(a + i * 4096, i + 1);
            p.Write(sh + i * 4096, i + 1);
            p.Read(pr + i * 4096);
        }
        p.Write(pr, 5);
        var c = p.Fork();
        c.Write(a, 9);
        p.Write(sh, 7);
        Assert.Equal(0L, p.Mprotect(a, 4096, PROT_READ));
        Assert.Equal(0L, p.Madvise(a + 4096, 4096, MADV_DONTNEED));
        Assert.True(p.K.Run(p.T, () => p.K.SysMremap(a + 2 * 4096, 2 * 4096, 4 * 4096, MREMAP_MAYMOVE, 0)) > 0);
        Assert.Equal(0, p.Ftruncate(fd, 4096));
        Assert.Equal(0L, p.Munmap(sh, 8 * 4096));
        c.Exit();
        p.Exit();
        Assert.Empty(p.K.Findings);
        Assert.True(graph.EdgeCount >= 5, $"only {graph.EdgeCount} lock-order edges learned");
        var classes = LockClass.All;
        int checkedEdges = 0;
        foreach (var (from, to, ctx) in graph.Edges)
        {
            int? df = Depth(tree, classes[from.ClassId]), dt = Depth(tree, classes[to.ClassId]);
            if (df is null || dt is null)
            {
                continue;
            }
            checkedEdges++;
            // Down the tree, or a documented nesting of one level in itself (subclass annotation:
            // the child's mmap_lock in dup_mmap(), the source PTL in copy_pte_range()), or the PMD
            // lock and a PTE lock, which share the bottom level.
            bool ok = dt > df || (from.ClassId == to.ClassId && to.Subclass > from.Subclass) ||
                      (df == dt && from.ClassId != to.ClassId && classes[to.ClassId] == LockClass.PtLock);
            Assert.True(ok, $"{from} → {to} (took {to} in {ctx.TakenIn} holding {from} from {ctx.HeldIn}) is against docs/locking.md");
        }
        Assert.True(checkedEdges >= 5, $"only {checkedEdges} learned edges are between classes of the documented tree");
    }

    [Fact]
    public void AnExceptionEscapingAKernelPathIsReportedAsADefectNotLost()
    {
        var k = new Linux.Kernel();
        var t = k.CreateProcess("t");
        var e = Assert.Throws<TaskIncompleteException>(() => k.Run(t, async () =>
        {
            await k.MmapReadLock(t.Mm!);
            throw new InvalidOperationException("boom");
        }));
        Assert.Contains("defect", e.Message);
        Assert.IsType<InvalidOperationException>(e.InnerException);
        Assert.Single(((DirectScheduler)k.Sched).Defects);
    }

    [Fact]
    public void AClearedLockGraphForgetsItsEdgesAndReportsACycleAgain()
    {
        var g = new LockGraph();
        var a = new LockGraph.Node(LockClass.MmapLock.Id, 0);
        var b = new LockGraph.Node(LockClass.PtLock.Id, 0);
        var c = new LockGraph.Node(LockClass.AnonVmaRwsem.Id, 0);
        var ctx = new LockGraph.EdgeContext("held", "taken", "T0");
        Assert.Null(g.AddEdge(a, b, ctx));
        Assert.Null(g.AddEdge(c, b, ctx));
        Assert.NotNull(g.AddEdge(b, a, ctx));
        Assert.Equal([(a, b), (c, b), (b, a)], Enumerable.Range(0, g.EdgeCount).Select(i => (g.Edges[i].From, g.Edges[i].To)));
        Assert.Equal([(a, b), (c, b), (b, a)], g.Edges.Select(e => (e.From, e.To)));

        g.Clear();
        Assert.Equal(0, g.EdgeCount);
        Assert.False(g.Contains(a, b));
        Assert.Null(g.AddEdge(b, a, ctx));
        var cycle = g.AddEdge(a, b, ctx);
        Assert.NotNull(cycle);
        Assert.Equal([(a, b), (b, a)], cycle.Select(e => (e.From, e.To)));
    }

    /// <summary>
    /// A kernel set up against a graph of its own and then handed another with UseLockGraph leaves
    /// that graph as a kernel set up against it would have: the same edges, in the same order, with
    /// the same contexts, whatever the graph held before (an edge the setup also takes, one it does
    /// not, the reverse of one it takes, so that the setup closes a cycle). Afterwards lockdep
    /// records into the graph it was handed, and the old one learns nothing more.
    /// </summary>
    [Fact]
    public void AKernelSetUpAgainstItsOwnGraphLeavesTheGraphItIsHandedAsIfSetUpAgainstIt()
    {
        static Proc SetUp(LockGraph g)
        {
            var p = Proc.Boot(new KernelConfig { LockGraph = g, RamBytes = 256UL << 20 });
            long fd = p.Memfd(4);
            ulong sh = p.MmapFile(fd, 4, MAP_SHARED);
            p.Write(sh, 1);
            return p;
        }
        static void More(Proc p)
        {
            var c = p.Fork();
            c.Exit();
        }
        static string Dump(LockGraph g) => string.Join("\n", g.Edges.Select(e => $"{e.From} -> {e.To} ({e.Ctx})"));

        var learned = new LockGraph();
        SetUp(learned);
        var setupEdges = learned.Edges.ToList();
        Assert.True(setupEdges.Count >= 2, $"the setup takes {setupEdges.Count} nested lock pairs");
        var other = new LockGraph.Node(LockClass.AnonVmaRwsem.Id, 3);
        LockGraph Seeded()
        {
            var g = new LockGraph();
            var ctx = new LockGraph.EdgeContext("earlier", "earlier", "T0");
            g.AddEdge(setupEdges[0].To, setupEdges[0].From, ctx);
            g.AddEdge(setupEdges[^1].From, setupEdges[^1].To, ctx);
            g.AddEdge(other, setupEdges[0].From, ctx);
            return g;
        }

        var direct = Seeded();
        var p1 = SetUp(direct);
        var own = new LockGraph();
        var p2 = SetUp(own);
        int ownEdges = own.EdgeCount;
        var handed = Seeded();
        p2.K.UseLockGraph(handed);
        Assert.Same(handed, p2.K.LockGraph);
        Assert.Equal(Dump(direct), Dump(handed));
        Assert.True(direct.EdgeCount > 3, "the setup added no edge to the seeded graph");

        More(p1);
        More(p2);
        Assert.True(direct.EdgeCount > setupEdges.Count + 3, "fork and exit added no edge");
        Assert.Equal(Dump(direct), Dump(handed));
        Assert.Equal(ownEdges, own.EdgeCount);
    }

    [Fact]
    public void LockLabelsPrintAsTheEagerlyFormattedNamesDid()
    {
        var k = new Linux.Kernel();
        Assert.Equal("ptl(pfn 1a2b)", new Linux.SpinLock(k, LockClass.PtLock, new LockLabel("ptl(pfn ", 0x1a2b, ")", Hex: true)).Name);
        Assert.Equal("mm#12.mmap_lock", new RwSemaphore(k, LockClass.MmapLock, new LockLabel("mm#", 12, ".mmap_lock")).Name);
        Assert.Equal("resource_lock", new RwSemaphore(k, LockClass.ResourceLock, "resource_lock").Name);
        var p = Proc.Boot();
        Assert.Equal($"mm#{p.Mm.Id}.mmap_lock", p.Mm.MmapLock.Name);
        Assert.Equal($"mm#{p.Mm.Id}.page_table_lock", p.Mm.PageTableLock.ToString());
    }
}

using System.Runtime.CompilerServices;
using Linux;
using MmCheck.Explorer;
using static Linux.Mman;

namespace MmCheck.Explorer.Tests;

/// <summary>A target from a lambda: the tests' scenarios.</summary>
internal sealed class LambdaTarget(string name, Func<ExplorerScheduler, LockGraph, Execution> prepare) : ExplorationTarget
{
    public override string Name => name;

    public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph) => prepare(scheduler, lockGraph);
}

/// <summary>Small known races and correct protocols on real kernel objects.</summary>
internal static class Scenarios
{
    private static readonly LockClass s_a = LockClass.Define("test_lock_A", sleeps: true);
    private static readonly LockClass s_b = LockClass.Define("test_lock_B", sleeps: true);
    private static readonly LockClass s_c = LockClass.Define("test_lock_C", sleeps: true);
    private static readonly LockClass s_word = LockClass.Define("test_word_lock", sleeps: true);

    private static Linux.Kernel Boot(LockGraph g) => new(new KernelConfig { LockGraph = g });

    /// <summary>Reads a word of <paramref name="mm"/> without scheduling (the final state).</summary>
    public static ulong Peek(Linux.Kernel k, MmStruct mm, ulong addr)
    {
        var pm = k.Pagemap(mm, addr);
        return pm.Present ? k.Mem.Load((pm.Pfn << 12) | (addr & 0xfff), 8) : ulong.MaxValue;
    }

    /// <summary>Two threads increment a shared word with load/store; with <paramref name="locked"/>,
    /// under a kernel mutex.</summary>
    public static ExplorationTarget Increment(bool locked) => new LambdaTarget(locked ? "inc-locked" : "inc-racy", (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        ulong x = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        k.Run(p, () => k.UserStore(x, 8, 0));
        var t0 = k.CreateThread(p, "T0");
        var t1 = k.CreateThread(p, "T1");
        var m = new Linux.Mutex(k, s_word, "word_lock");
        var regs = new ulong[2];
        k.UseScheduler(s);
        Func<ValueTask> Body(int i) => async () =>
        {
            if (locked)
            {
                await m.Lock();
            }
            var r = await k.UserLoad(x, 8);
            regs[i] = r.Value;
            await k.UserStore(x, 8, r.Value + 1);
            if (locked)
            {
                await m.Unlock();
            }
        };
        s.Spawn(t0, Body(0), "T0");
        s.Spawn(t1, Body(1), "T1");
        return new Execution(k, () => Outcome.Of(("T0:r0", $"{regs[0]}"), ("T1:r1", $"{regs[1]}"), ("x", $"{Peek(k, p.Mm!, x)}")));
    });

    public const string FlagBeforeDataInvariant = "flag-before-data";

    /// <summary>T0 stores the data word; T1 sets the flag word and clears it again. A registered
    /// invariant, reading <paramref name="reads"/> by its declaration, says the flag is set only
    /// once the data is written; none when <paramref name="register"/> is false.</summary>
    public static ExplorationTarget FlagBeforeData(bool register = true, ObjKinds reads = ObjKinds.All) => new LambdaTarget("flag-before-data", (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        ulong data = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        ulong flag = data + 64;
        k.Run(p, () => k.UserStore(data, 8, 0));
        var mm = p.Mm!;
        if (register)
        {
            k.RegisterInvariant(new KernelInvariant(FlagBeforeDataInvariant, "the flag is set only once the data is written",
                kk => Peek(kk, mm, flag) == 1 && Peek(kk, mm, data) != 1 ? ["flag set before the data was written"] : [], reads));
        }
        var t0 = k.CreateThread(p, "T0");
        var t1 = k.CreateThread(p, "T1");
        k.UseScheduler(s);
        s.Spawn(t0, async () => await k.UserStore(data, 8, 1), "T0");
        s.Spawn(t1, async () =>
        {
            await k.UserStore(flag, 8, 1);
            await k.UserStore(flag, 8, 0);
        }, "T1");
        return new Execution(k, () => Outcome.Of(("data", $"{Peek(k, mm, data)}"), ("flag", $"{Peek(k, mm, flag)}")));
    });

    public const string FlagWhileQuietInvariant = "flag-and-data-while-quiet";

    /// <summary>
    /// A writer sets the data word inside a page-table lock's section; a flagger sets the flag word
    /// and clears it again. The registered invariant waits, as the page-table checks do, while
    /// <see cref="Linux.Kernel.PageTablesBusy"/>. With <paramref name="writerFirst"/> the writer is
    /// T0 and the invariant forbids the flag before the data: that state shows while the writer
    /// holds the lock without having written under it, or before it takes it (taking the lock is
    /// independent of the flag's stores). Otherwise the flagger is T0 and the invariant forbids
    /// the flag with the data written: that state is quiet only once the writer has released the
    /// lock, so its release must be ordered against the flag's stores.
    /// </summary>
    public static ExplorationTarget FlagAndDataUnderPtl(bool writerFirst) => new LambdaTarget($"flag-and-data-under-ptl-{(writerFirst ? "w" : "f")}", (s, g) =>
    {
        var k = Boot(g);
        var ptl = new Linux.SpinLock(k, LockClass.PtLock, "ptl");
        ulong dataObj = ObjId.Make(ObjId.Kind.Other, 0x7100);
        ulong flagObj = ObjId.Make(ObjId.Kind.Other, 0x7101);
        int data = 0, flag = 0;
        int forbiddenData = writerFirst ? 0 : 1;
        k.RegisterInvariant(new KernelInvariant(FlagWhileQuietInvariant, "the flag is never set with the data in the forbidden state",
            kk => !kk.PageTablesBusy() && flag == 1 && data == forbiddenData ? [$"flag set with data {data}"] : []));
        var writer = k.CreateKernelThread("writer");
        var flagger = k.CreateKernelThread("flagger");
        k.UseScheduler(s);
        if (writerFirst)
        {
            SpawnWriter();
            SpawnFlagger();
        }
        else
        {
            SpawnFlagger();
            SpawnWriter();
        }
        return new Execution(k, () => Outcome.Of(("data", $"{data}"), ("flag", $"{flag}")));

        void SpawnWriter() => s.Spawn(writer, async () =>
        {
            await ptl.Lock();
            await k.Sched.Point(SchedPointKind.WriteOnce, dataObj, "set_data");
            k.Sched.Access(dataObj, write: true);
            data = 1;
            await ptl.Unlock();
        }, "writer");

        void SpawnFlagger() => s.Spawn(flagger, async () =>
        {
            await k.Sched.Point(SchedPointKind.WriteOnce, flagObj, "set_flag");
            k.Sched.Access(flagObj, write: true);
            flag = 1;
            await k.Sched.Point(SchedPointKind.WriteOnce, flagObj, "clear_flag");
            k.Sched.Access(flagObj, write: true);
            flag = 0;
        }, "flagger");
    });

    /// <summary>T0 takes A then B; T1 takes B then A (or A then B when <paramref name="sameOrder"/>).</summary>
    public static ExplorationTarget Abba(bool sameOrder) => new LambdaTarget(sameOrder ? "ab-ab" : "ab-ba", (s, g) =>
    {
        var k = Boot(g);
        var a = new Linux.Mutex(k, s_a, "A");
        var b = new Linux.Mutex(k, s_b, "B");
        var t0 = k.CreateKernelThread("T0");
        var t1 = k.CreateKernelThread("T1");
        k.UseScheduler(s);
        s.Spawn(t0, async () =>
        {
            await a.Lock();
            await b.Lock();
            await b.Unlock();
            await a.Unlock();
        }, "T0");
        s.Spawn(t1, async () =>
        {
            var (first, second) = sameOrder ? (a, b) : (b, a);
            await first.Lock();
            await second.Lock();
            await second.Unlock();
            await first.Unlock();
        }, "T1");
        return new Execution(k, () => Outcome.Empty);
    });

    /// <summary>The two orders are taken under a third lock C, so they never deadlock; lockdep must
    /// still report the inversion.</summary>
    public static ExplorationTarget Serialized(bool sameOrder) => new LambdaTarget(sameOrder ? "c-ab-ab" : "c-ab-ba", (s, g) =>
    {
        var k = Boot(g);
        var a = new Linux.Mutex(k, s_a, "A");
        var b = new Linux.Mutex(k, s_b, "B");
        var c = new Linux.Mutex(k, s_c, "C");
        var t0 = k.CreateKernelThread("T0");
        var t1 = k.CreateKernelThread("T1");
        k.UseScheduler(s);
        Func<ValueTask> Body(Linux.Mutex first, Linux.Mutex second) => async () =>
        {
            await c.Lock();
            await first.Lock();
            await second.Lock();
            await second.Unlock();
            await first.Unlock();
            await c.Unlock();
        };
        s.Spawn(t0, Body(a, b), "T0");
        s.Spawn(t1, sameOrder ? Body(a, b) : Body(b, a), "T1");
        return new Execution(k, () => Outcome.Empty);
    });

    /// <summary>One thread takes A→B or B→A depending on a data choice: no single execution takes
    /// both orders, only the exploration-wide lock graph sees the inversion.</summary>
    public static ExplorationTarget OrderByChoice() => new LambdaTarget("order-by-choice", (s, g) =>
    {
        var k = Boot(g);
        var a = new Linux.Mutex(k, s_a, "A");
        var b = new Linux.Mutex(k, s_b, "B");
        var t0 = k.CreateKernelThread("T0");
        k.UseScheduler(s);
        s.Spawn(t0, async () =>
        {
            int order = k.Sched.Choose("lock order", 2);
            var (first, second) = order == 0 ? (a, b) : (b, a);
            await first.Lock();
            await second.Lock();
            await second.Unlock();
            await first.Unlock();
        }, "T0");
        return new Execution(k, () => Outcome.Empty);
    });

    /// <summary>T0 checks under lock A, with BUG_ON (or WARN_ON), that a flag T1 sets locklessly
    /// is clear; T1 then takes A. A BUG kills T0 with A held, and T1 sleeps on A for ever. With
    /// <paramref name="stopInFrame"/> the check runs in a frame with the kernel's hot-path builder,
    /// which stops the task where the BUG fires; otherwise the BUG unwinds to the task's top frame.</summary>
    public static ExplorationTarget CheckUnderLock(bool bug, bool stopInFrame = false) =>
        new LambdaTarget((bug ? "bug-under-lock" : "warn-under-lock") + (stopInFrame ? "-stopped" : ""), (s, g) =>
    {
        var k = Boot(g);
        var a = new Linux.Mutex(k, s_a, "A");
        var t0 = k.CreateKernelThread("T0");
        var t1 = k.CreateKernelThread("T1");
        ulong flagObj = ObjId.Make(ObjId.Kind.Other, 0x7000);
        int flag = 0;
        string done = "no";
        k.UseScheduler(s);
        s.Spawn(t0, async () =>
        {
            await a.Lock();
            await (stopInFrame ? CheckStopping() : Check());
            await a.Unlock();
        }, "T0");
        s.Spawn(t1, async () =>
        {
            await k.Sched.Point(SchedPointKind.WriteOnce, flagObj, "set");
            k.Sched.Access(flagObj, write: true);
            flag = 1;
            await a.Lock();
            await a.Unlock();
            done = "yes";
        }, "T1");
        return new Execution(k, () => Outcome.Of(("T1:done", done)));

        async ValueTask Check()
        {
            await k.Sched.Point(SchedPointKind.ReadOnce, flagObj, "check");
            Verify();
        }

        [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
        async ValueTask CheckStopping()
        {
            await k.Sched.Point(SchedPointKind.ReadOnce, flagObj, "check");
            Verify();
        }

        void Verify()
        {
            k.Sched.Access(flagObj, write: false);
            if (bug)
            {
                k.BugOn(flag != 0, "flag set under A");
            }
            else
            {
                k.WarnOn(flag != 0, "flag set under A");
            }
        }
    });

    /// <summary>
    /// A fault-like fix-up reads the PTE locklessly, then rewrites it under the PTE lock; another
    /// thread zaps the page (MADV_DONTNEED) in between. Without the pte_same() re-check under the
    /// lock, the fix-up reinstalls a mapping of the freed page.
    /// </summary>
    public static ExplorationTarget FaultVsZap(bool revalidate) => new LambdaTarget(revalidate ? "fixup-vs-zap-fixed" : "fixup-vs-zap-racy", (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        ulong x = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        k.Run(p, () => k.UserStore(x, 8, 0x11));
        var mm = p.Mm!;
        var fixer = k.CreateThread(p, "fixup");
        var zapper = k.CreateThread(p, "zap");
        long zapped = 1;
        k.UseScheduler(s);
        s.Spawn(fixer, async () =>
        {
            await k.MmapReadLock(mm);
            var pmd = k.PmdOffset(k.PudOffset(k.P4dOffset(k.PgdOffset(mm, x), x), x), x);
            if (k.PteOffsetMap(pmd, x) is { } ptep)
            {
                var pte = await k.PtepGetLockless(ptep);
                var ptl = k.PteLockptr(mm, ptep.Table);
                await ptl.Lock();
                if (!revalidate || PgTable.PteSame(k.PtepGet(ptep), pte))
                {
                    k.SetPteAt(mm, x, ptep, PgTable.PteMkyoung(pte));
                }
                await ptl.Unlock();
            }
            await k.MmapReadUnlock(mm);
        }, "fixup");
        // What MADV_DONTNEED does: zap_page_range_single() under the mmap read lock.
        s.Spawn(zapper, async () =>
        {
            await k.MmapReadLock(mm);
            if (mm.MmMt.VmaLookup(x) is { } vma)
            {
                await k.ZapPageRangeSingle(vma, x, 4096, null);
                zapped = 0;
            }
            await k.MmapReadUnlock(mm);
        }, "zap");
        return new Execution(k, () => Outcome.Of(("zap", $"{zapped}"), ("x", Peek(k, mm, x) == ulong.MaxValue ? "none" : "mapped")));
    });

    /// <summary>
    /// A fault handler that drops the mmap lock part-way (as it does to wait for I/O, returning
    /// VM_FAULT_RETRY) races munmap of the area. Without revalidation it goes on with the VMA it
    /// found before, which munmap may have freed meanwhile; with it, it looks the VMA up again once
    /// it holds the lock, as do_user_addr_fault() does after VM_FAULT_RETRY.
    /// </summary>
    /// <remarks>With <paramref name="exit"/>, the threads and the process's leader exit afterwards, so
    /// the last one tears the mm down (exit_mmap(), then check_mm()).</remarks>
    public static ExplorationTarget FaultVsMunmap(bool revalidate, bool exit = false) => new LambdaTarget(
        (revalidate ? "fault-vs-munmap-fixed" : "fault-vs-munmap-racy") + (exit ? "-exit" : ""), (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        ulong x = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        var mm = p.Mm!;
        var faulter = k.CreateThread(p, "fault");
        var unmapper = k.CreateThread(p, "munmap");
        string fault = "SIGSEGV";
        k.UseScheduler(s);
        if (exit)
        {
            s.Spawn(p, async () => await k.SysExit(), "exit");
        }
        s.Spawn(faulter, async () =>
        {
            await k.MmapReadLock(mm);
            var vma = mm.MmMt.VmaLookup(x);
            await k.MmapReadUnlock(mm);
            await k.MmapReadLock(mm);
            if (revalidate)
            {
                vma = mm.MmMt.VmaLookup(x);
            }
            if (vma is not null)
            {
                var r = await k.HandleMmFault(vma, x, FaultFlag.FAULT_FLAG_DEFAULT | FaultFlag.FAULT_FLAG_USER | FaultFlag.FAULT_FLAG_WRITE);
                fault = (r & VmFault.VM_FAULT_ERROR) == 0 ? "ok" : $"{r}";
            }
            await k.MmapReadUnlock(mm);
            if (exit)
            {
                await k.SysExit();
            }
        }, "fault");
        s.Spawn(unmapper, async () =>
        {
            await k.SysMunmap(x, 4096);
            if (exit)
            {
                await k.SysExit();
            }
        }, "munmap");
        // The page tables themselves, not through a VMA: a PTE left where no VMA is any more is
        // what the stale fault leaves behind (the kernel reports it at exit as a bad rss-counter).
        return new Execution(k, () => exit
            ? Outcome.Of(("fault", fault))
            : Outcome.Of(("fault", fault),
                ("x", k.PeekLeaf(mm, x, out ulong e, out _) && e != 0 ? "mapped" : "none"),
                ("vma", mm.MmMt.VmaLookup(x) is null ? "none" : "mapped")));
    });

    /// <summary>One process, one thread: mmap, store, load, munmap. No decision has a second option.</summary>
    public static ExplorationTarget Alone() => new LambdaTarget("alone", (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        var t = k.CreateThread(p, "T0");
        string r = "";
        k.UseScheduler(s);
        s.Spawn(t, async () =>
        {
            long x = await k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            await k.UserStore((ulong)x, 8, 0x11);
            r = $"{(await k.UserLoad((ulong)x, 8)).Value:x}";
            await k.SysMunmap((ulong)x, 4096);
        }, "T0");
        return new Execution(k, () => Outcome.Of(("T0:r", r)));
    });

    /// <summary>
    /// Per-VMA lock readers against a writer: each reader takes the VMA with lock_vma_under_rcu()
    /// and reads a word under it (or records that the lookup aborted to the mmap lock); the writer,
    /// <paramref name="writes"/> times, takes the mmap write lock, vma_start_write(), writes the
    /// word, and unlocks, which ends the VMA write lock by moving mm_lock_seq on.
    /// </summary>
    public static ExplorationTarget PerVmaReadersVsWriter(int readers, int writes) => new LambdaTarget($"per-vma-readers-{readers}-writes-{writes}", (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        ulong x = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        var mm = p.Mm!;
        ulong wordObj = ObjId.Make(ObjId.Kind.Other, 0x6000);
        ulong word = 0;
        var seen = new string[readers];
        k.UseScheduler(s);
        for (int i = 0; i < readers; i++)
        {
            int r = i;
            s.Spawn(k.CreateThread(p, $"R{r}"), async () =>
            {
                var vma = await k.LockVmaUnderRcu(mm, x);
                if (vma is null)
                {
                    seen[r] = "abort";
                    return;
                }
                await k.Sched.Point(SchedPointKind.ReadOnce, wordObj, "reader");
                k.Sched.Access(wordObj, write: false);
                seen[r] = $"{word}";
                await vma.VmLock.EndRead("reader");
            }, $"R{r}");
        }
        s.Spawn(k.CreateThread(p, "W"), async () =>
        {
            for (ulong v = 1; v <= (ulong)writes; v++)
            {
                await k.MmapWriteLock(mm);
                await k.VmaStartWrite(mm.MmMt.VmaLookup(x)!);
                await k.Sched.Point(SchedPointKind.WriteOnce, wordObj, "writer");
                k.Sched.Access(wordObj, write: true);
                word = v;
                await k.MmapWriteUnlock(mm);
            }
        }, "W");
        return new Execution(k, () => Outcome.Of([.. seen.Select((v, i) => ($"R{i}", v))]));
    });

    /// <summary>
    /// A per-VMA reader holds the VMA across a preemption point while a writer takes the mmap
    /// write lock and vma_start_write(); a second reader tries the VMA lock: "ok" or "abort", and
    /// with "ok" whether the writer was already waiting for the readers right then.
    /// </summary>
    public static ExplorationTarget PerVmaReaderWhileWriterWaits() => new LambdaTarget("per-vma-reader-while-writer-waits", (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        ulong x = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        var mm = p.Mm!;
        string second = "";
        k.UseScheduler(s);
        s.Spawn(k.CreateThread(p, "R0"), async () =>
        {
            var vma = await k.LockVmaUnderRcu(mm, x);
            if (vma is not null)
            {
                await k.Sched.Point(SchedPointKind.Preempt, 0, "holding");
                await vma.VmLock.EndRead("R0");
            }
        }, "R0");
        s.Spawn(k.CreateThread(p, "W"), async () =>
        {
            await k.MmapWriteLock(mm);
            await k.VmaStartWrite(mm.MmMt.VmaLookup(x)!);
            await k.MmapWriteUnlock(mm);
        }, "W");
        s.Spawn(k.CreateThread(p, "R1"), async () =>
        {
            var vma = await k.LockVmaUnderRcu(mm, x);
            second = vma is null ? "abort" : vma.VmLock.WriterEntered ? "ok, writer waiting" : "ok";
            if (vma is not null)
            {
                await vma.VmLock.EndRead("R1");
            }
        }, "R1");
        return new Execution(k, () => Outcome.Of(("R1", second)));
    });

    /// <summary>The real kernel: one thread stores to an anonymous page while another unmaps it.</summary>
    public static ExplorationTarget StoreVsMunmap(int pages = 1) => new LambdaTarget($"store-vs-munmap-{pages}", (s, g) =>
    {
        var k = Boot(g);
        var p = k.CreateProcess("p");
        ulong len = (ulong)pages * 4096;
        ulong x = (ulong)k.Run(p, () => k.SysMmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        var t0 = k.CreateThread(p, "T0");
        var t1 = k.CreateThread(p, "T1");
        var results = new string[pages];
        long unmapped = 1;
        k.UseScheduler(s);
        s.Spawn(t0, async () =>
        {
            for (int i = 0; i < pages; i++)
            {
                results[i] = (await k.UserStore(x + (ulong)i * 4096, 8, 0x22)).Ok ? "ok" : "SIGSEGV";
            }
        }, "T0");
        s.Spawn(t1, async () => unmapped = await k.SysMunmap(x, len), "T1");
        return new Execution(k, () =>
        {
            var values = new List<(string, string)>();
            for (int i = 0; i < pages; i++)
            {
                values.Add(($"T0:store{i}", results[i]));
            }
            values.Add(("T1:munmap", $"{unmapped}"));
            return Outcome.Of([.. values]);
        });
    });
}

internal static class SpinScenarios
{
    /// <summary>T0 spins until T1 sets a flag (a READ_ONCE loop): every schedule must end.</summary>
    public static ExplorationTarget SpinWait() => new LambdaTarget("spin-wait", (s, g) =>
    {
        var k = new Linux.Kernel(new Linux.KernelConfig { LockGraph = g });
        var t0 = k.CreateKernelThread("T0");
        var t1 = k.CreateKernelThread("T1");
        ulong flagObj = Linux.ObjId.Make(Linux.ObjId.Kind.Other, 0x6000);
        int flag = 0;
        int spins = 0;
        k.UseScheduler(s);
        s.Spawn(t0, async () =>
        {
            while (true)
            {
                await k.Sched.Point(Linux.SchedPointKind.ReadOnce, flagObj, "spin");
                k.Sched.Access(flagObj, write: false);
                if (flag != 0)
                {
                    break;
                }
                spins++;
            }
        }, "T0");
        s.Spawn(t1, async () =>
        {
            await k.Sched.Point(Linux.SchedPointKind.WriteOnce, flagObj, "set");
            k.Sched.Access(flagObj, write: true);
            flag = 1;
        }, "T1");
        return new Execution(k, () => Outcome.Of(("flag", $"{flag}")));
    });
}

using Linux;
using static Linux.Mman;

namespace MmCheck.Explorer;

/// <summary>The scenarios the explorer's benchmarks run, built on the real kernel model.</summary>
public static class BenchmarkTargets
{
    /// <summary>One thread stores to each of <paramref name="pages"/> pages of an anonymous mapping
    /// (faulting them in) while another munmaps the mapping. Clean: every store either lands or
    /// gets SIGSEGV.</summary>
    public static ExplorationTarget FaultVsMunmap(int pages = 1) => new FaultVsMunmapTarget(pages);

    /// <summary>A PTE fix-up (lockless read, then rewrite under the PTE lock, with the pte_same()
    /// re-check) racing a zap of the page. Small enough for plain DFS to finish.</summary>
    public static ExplorationTarget FixupVsZap() => new FixupVsZapTarget();

    /// <summary><paramref name="threads"/> threads each increment a shared word (user load, then
    /// store) under a kernel mutex. Clean; the final value is always the thread count.</summary>
    public static ExplorationTarget LockedIncrement(int threads = 2) => new LockedIncrementTarget(threads);

    /// <summary>Two kernel threads that only pass scheduling points, each on its own object: the
    /// explorer's own cost per point, without kernel work between points.</summary>
    public static ExplorationTarget Points(int perThread = 50_000) => new PointsTarget(perThread);

    private sealed class PointsTarget(int perThread) : ExplorationTarget
    {
        public override string Name => $"points-{perThread}";

        public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph)
        {
            var k = new Kernel(new KernelConfig { LockGraph = lockGraph });
            var t0 = k.CreateKernelThread("T0");
            var t1 = k.CreateKernelThread("T1");
            k.UseScheduler(scheduler);
            ulong o0 = ObjId.Make(ObjId.Kind.Other, 0xB0);
            ulong o1 = ObjId.Make(ObjId.Kind.Other, 0xB1);
            scheduler.Spawn(t0, async () =>
            {
                for (int i = 0; i < perThread; i++)
                {
                    await k.Sched.Point(SchedPointKind.Preempt, o0, "bench");
                }
            }, "T0");
            scheduler.Spawn(t1, async () =>
            {
                for (int i = 0; i < perThread; i++)
                {
                    await k.Sched.Point(SchedPointKind.Preempt, o1, "bench");
                }
            }, "T1");
            return new Execution(k, () => Outcome.Empty);
        }
    }

    private static readonly LockClass s_counterLock = LockClass.Define("bench_counter_lock", sleeps: true);

    private sealed class LockedIncrementTarget(int threads) : ExplorationTarget
    {
        public override string Name => $"locked-increment-{threads}";

        public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph)
        {
            var k = new Kernel(new KernelConfig { LockGraph = lockGraph });
            var p = k.CreateProcess("p");
            ulong x = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            k.Run(p, () => k.UserStore(x, 8, 0));
            var m = new Linux.Mutex(k, s_counterLock, "counter_lock");
            var tasks = new TaskStruct[threads];
            for (int i = 0; i < threads; i++)
            {
                tasks[i] = k.CreateThread(p, $"T{i}");
            }
            ulong final = 0;
            k.UseScheduler(scheduler);
            for (int i = 0; i < threads; i++)
            {
                scheduler.Spawn(tasks[i], async () =>
                {
                    await m.Lock();
                    var r = await k.UserLoad(x, 8);
                    await k.UserStore(x, 8, r.Value + 1);
                    await m.Unlock();
                    final = Math.Max(final, r.Value + 1);
                }, $"T{i}");
            }
            return new Execution(k, () => Outcome.Of(("x", final.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        }
    }

    private sealed class FaultVsMunmapTarget(int pages) : ExplorationTarget
    {
        public override string Name => $"fault-vs-munmap-{pages}";

        public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph)
        {
            var k = new Kernel(new KernelConfig { LockGraph = lockGraph });
            var p = k.CreateProcess("p");
            ulong len = (ulong)pages * 4096;
            ulong x = (ulong)k.Run(p, () => k.SysMmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            var t0 = k.CreateThread(p, "T0");
            var t1 = k.CreateThread(p, "T1");
            var results = new int[pages];
            long unmapped = 1;
            k.UseScheduler(scheduler);
            scheduler.Spawn(t0, async () =>
            {
                for (int i = 0; i < pages; i++)
                {
                    results[i] = (await k.UserStore(x + (ulong)i * 4096, 8, 0x22)).Signal;
                }
            }, "T0");
            scheduler.Spawn(t1, async () => unmapped = await k.SysMunmap(x, len), "T1");
            return new Execution(k, () =>
            {
                var values = new (string, string)[pages + 1];
                for (int i = 0; i < pages; i++)
                {
                    values[i] = ($"T0:store{i}", results[i] == 0 ? "ok" : results[i] == SIGSEGV ? "SIGSEGV" : $"signal {results[i]}");
                }
                values[pages] = ("T1:munmap", unmapped.ToString(System.Globalization.CultureInfo.InvariantCulture));
                return Outcome.Of(values);
            });
        }
    }

    private sealed class FixupVsZapTarget : ExplorationTarget
    {
        public override string Name => "fixup-vs-zap";

        public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph)
        {
            var k = new Kernel(new KernelConfig { LockGraph = lockGraph });
            var p = k.CreateProcess("p");
            ulong x = (ulong)k.Run(p, () => k.SysMmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            k.Run(p, () => k.UserStore(x, 8, 0x11));
            var mm = p.Mm!;
            var fixer = k.CreateThread(p, "fixup");
            var zapper = k.CreateThread(p, "zap");
            k.UseScheduler(scheduler);
            scheduler.Spawn(fixer, async () =>
            {
                await k.MmapReadLock(mm);
                var pmd = k.PmdOffset(k.PudOffset(k.P4dOffset(k.PgdOffset(mm, x), x), x), x);
                if (k.PteOffsetMap(pmd, x) is { } ptep)
                {
                    var pte = await k.PtepGetLockless(ptep);
                    var ptl = k.PteLockptr(mm, ptep.Table);
                    await ptl.Lock();
                    if (PgTable.PteSame(k.PtepGet(ptep), pte))
                    {
                        k.SetPteAt(mm, x, ptep, PgTable.PteMkyoung(pte));
                    }
                    await ptl.Unlock();
                }
                await k.MmapReadUnlock(mm);
            }, "fixup");
            scheduler.Spawn(zapper, async () =>
            {
                await k.MmapReadLock(mm);
                if (mm.MmMt.VmaLookup(x) is { } vma)
                {
                    await k.ZapPageRangeSingle(vma, x, 4096, null);
                }
                await k.MmapReadUnlock(mm);
            }, "zap");
            return new Execution(k, () => Outcome.Of(("x", k.Pagemap(mm, x).Present ? "mapped" : "none")));
        }
    }
}

using System.Diagnostics;
using Linux;
using MmCheck.Explorer;
using static Linux.Mman;

namespace MmCheck.Bench;

/// <summary>The best (fastest first touch) of the kernel benchmark's repeats; times in seconds. The
/// CPU figures are the benchmark thread's CPU time (CLOCK_THREAD_CPUTIME_ID): the model's work,
/// collections included (a workstation GC collects on the allocating thread), but not the JIT's
/// background compiler, which may still be tiering code up during the first measured runs.</summary>
public sealed record KernelResult(
    long Pages,
    double TouchSeconds,
    double TouchCpuSeconds,
    double ForkSeconds,
    double MunmapSeconds,
    double BytesPerPage,
    double BytesPerWord,
    double ForkCpuSeconds = 0,
    double MunmapCpuSeconds = 0)
{
    /// <summary>First-touch faults per second of the benchmark thread's CPU time: one core's rate,
    /// whatever else runs on the machine.</summary>
    public double FaultsPerCpuSecond => TouchCpuSeconds > 0 ? Pages / TouchCpuSeconds : 0;

    public double FaultsPerSecond => Pages / TouchSeconds;

    /// <summary>The run with the fastest first touch, with the fastest fork and munmap of all runs.</summary>
    public static KernelResult Best(IReadOnlyList<KernelResult> runs) =>
        runs.OrderBy(r => r.TouchSeconds).First() with
        {
            TouchCpuSeconds = runs.Min(r => r.TouchCpuSeconds),
            ForkSeconds = runs.Min(r => r.ForkSeconds),
            MunmapSeconds = runs.Min(r => r.MunmapSeconds),
            ForkCpuSeconds = runs.Min(r => r.ForkCpuSeconds),
            MunmapCpuSeconds = runs.Min(r => r.MunmapCpuSeconds),
        };

    public IReadOnlyList<Figure> Figures() =>
    [
        new("first-touch faults (per CPU second)", FaultsPerCpuSecond / 1e6, "M faults/s", "≥ 2", FaultsPerCpuSecond >= 2e6),
        new("first-touch faults (wall clock)", FaultsPerSecond / 1e6, "M faults/s"),
        new("first-touch fault", TouchSeconds / Pages * 1e9, "ns/fault"),
        new("fork with all pages touched", ForkSeconds * 1e3, "ms"),
        new("fork, per page", ForkSeconds / Pages * 1e9, "ns/page"),
        new("fork, per page (CPU)", ForkCpuSeconds / Pages * 1e9, "ns/page"),
        new("munmap of the whole mapping", MunmapSeconds * 1e3, "ms"),
        new("munmap, per page", MunmapSeconds / Pages * 1e9, "ns/page"),
        new("munmap, per page (CPU)", MunmapCpuSeconds / Pages * 1e9, "ns/page"),
        new("model memory per mapped page", BytesPerPage, "B/page", "≤ 32", BytesPerPage <= 32),
        new("model memory per stored word", BytesPerWord, "B/word"),
        new("pages", Pages, "pages"),
    ];
}

/// <summary>
/// The kernel model's own paths over a large anonymous mapping: first-touch write faults, fork
/// with everything touched, munmap, and the model's memory per mapped page. Everything runs
/// through the kernel's entry points (user stores through the CPU model, fork(2), munmap(2)), with
/// lockdep and the checks the model always makes.
/// </summary>
public static class KernelBenchmarks
{
    /// <summary>Unmeasured runs over a sixteenth of <paramref name="bytes"/>, with pauses between
    /// them: tiered compilation only starts counting calls once no new method has been compiled for
    /// 100 ms, and then compiles in the background (twice, with dynamic PGO). Without the pauses
    /// fork and munmap, each one call per run, were measured largely in unoptimised code.</summary>
    public static void WarmUp(ulong bytes)
    {
        const int rounds = 4;
        for (int i = 0; i < rounds; i++)
        {
            Measure(Math.Max(PgTable.PAGE_SIZE, (bytes / 16) & PgTable.PAGE_MASK));
            Thread.Sleep(TimeSpan.FromMilliseconds(250));
        }
    }

    /// <summary>One measured run: mmap, first touch, fork, munmap of <paramref name="bytes"/>.</summary>
    public static KernelResult Measure(ulong bytes)
    {
        if (bytes < PgTable.PAGE_SIZE || bytes % PgTable.PAGE_SIZE != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), "the benchmark maps a whole number of pages");
        }
        ulong pages = bytes >> PgTable.PAGE_SHIFT;
        var k = new Kernel(new KernelConfig { RamBytes = Math.Max(4UL << 30, bytes * 3) });
        var p = k.CreateProcess("bench");
        long buf = k.Run(p, () => k.SysMmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (buf < 0)
        {
            throw new InvalidOperationException($"mmap failed: {Errno.Format(buf)}");
        }
        long mem0 = Settle();
        double cpu0 = CpuSeconds();
        var sw = Stopwatch.StartNew();
        // A store of 0 faults the page in without storing a word: the pure per-page cost.
        k.Run(p, async () =>
        {
            for (ulong i = 0; i < pages; i++)
            {
                await k.UserStore((ulong)buf + (i << 12), 8, 0);
            }
        });
        double touch = sw.Elapsed.TotalSeconds;
        double touchCpu = CpuSeconds() - cpu0;
        long mem1 = Settle();
        k.Run(p, async () =>
        {
            for (ulong i = 0; i < pages; i++)
            {
                await k.UserStore((ulong)buf + (i << 12), 8, i + 1);
            }
        });
        long mem2 = Settle();
        cpu0 = CpuSeconds();
        sw.Restart();
        var (child, _) = k.Run(p, () => k.SysFork());
        double fork = sw.Elapsed.TotalSeconds;
        double forkCpu = CpuSeconds() - cpu0;
        k.Run(child!, () => k.SysExit());
        cpu0 = CpuSeconds();
        sw.Restart();
        k.Run(p, () => k.SysMunmap((ulong)buf, bytes));
        double munmap = sw.Elapsed.TotalSeconds;
        double munmapCpu = CpuSeconds() - cpu0;
        if (k.Findings.Count > 0)
        {
            throw new InvalidOperationException($"the benchmark run had findings: {string.Join("; ", k.Findings)}");
        }
        GC.KeepAlive(k);
        return new KernelResult((long)pages, touch, touchCpu, fork, munmap,
            (mem1 - mem0) / (double)pages, (mem2 - mem1) / (double)pages, forkCpu, munmapCpu);
    }

    /// <summary>The benchmark thread's CPU time (0 throughout where it cannot be read).</summary>
    private static double CpuSeconds() => ThreadCpuTime.Nanoseconds() / 1e9;

    private static long Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

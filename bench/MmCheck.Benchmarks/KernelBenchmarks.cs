using System.Diagnostics;
using Linux;
using static Linux.Mman;

namespace MmCheck.Benchmarks;

/// <summary>One measured figure, with its unit and the target it is held to (if any).</summary>
public sealed record Figure(string Name, double Value, string Unit, string? Target = null, bool? Met = null);

/// <summary>
/// The kernel model's own paths over a large anonymous mapping: first-touch write faults, fork
/// with everything touched, munmap, and the model's memory per mapped page.
/// </summary>
public static class KernelBenchmarks
{
    /// <summary>Runs the benchmark over <paramref name="bytes"/> (1 GiB by default) after a warm-up
    /// over a sixteenth of it (the JIT's dynamic PGO needs a warm path).</summary>
    public static IReadOnlyList<Figure> Run(ulong bytes = 1UL << 30, int repeats = 3)
    {
        Measure(bytes / 16);
        var runs = Enumerable.Range(0, repeats).Select(_ => Measure(bytes)).ToList();
        var best = runs.OrderBy(r => r.TouchSeconds).First();
        double faultsPerSec = best.Pages / best.TouchSeconds;
        return
        [
            new("first-touch faults", faultsPerSec / 1e6, "M faults/s", "≥ 2", faultsPerSec >= 2e6),
            new("first-touch fault", best.TouchSeconds / best.Pages * 1e9, "ns/fault"),
            new("fork with all pages touched", runs.Min(r => r.ForkSeconds) * 1e3, "ms"),
            new("munmap of the whole mapping", runs.Min(r => r.MunmapSeconds) * 1e3, "ms"),
            new("model memory per mapped page", best.BytesPerPage, "B/page", "≤ 32", best.BytesPerPage <= 32),
            new("model memory per stored word", best.BytesPerWord, "B/word"),
            new("pages", best.Pages, "pages"),
        ];
    }

    private sealed record Sample(double Pages, double TouchSeconds, double ForkSeconds, double MunmapSeconds, double BytesPerPage, double BytesPerWord);

    private static Sample Measure(ulong bytes)
    {
        ulong pages = bytes >> 12;
        var k = new Kernel(new KernelConfig { RamBytes = Math.Max(4UL << 30, bytes * 3) });
        var p = k.CreateProcess("bench");
        long buf = k.Run(p, () => k.SysMmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (buf < 0)
        {
            throw new InvalidOperationException($"mmap failed: {Errno.Format(buf)}");
        }
        long mem0 = Settle();
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
        long mem1 = Settle();
        k.Run(p, async () =>
        {
            for (ulong i = 0; i < pages; i++)
            {
                await k.UserStore((ulong)buf + (i << 12), 8, i + 1);
            }
        });
        long mem2 = Settle();
        sw.Restart();
        var (child, _) = k.Run(p, () => k.SysFork());
        double fork = sw.Elapsed.TotalSeconds;
        k.Run(child!, () => k.SysExit());
        sw.Restart();
        k.Run(p, () => k.SysMunmap((ulong)buf, bytes));
        double munmap = sw.Elapsed.TotalSeconds;
        if (k.Findings.Count > 0)
        {
            throw new InvalidOperationException($"the benchmark run had findings: {string.Join("; ", k.Findings)}");
        }
        GC.KeepAlive(k);
        return new Sample(pages, touch, fork, munmap, (mem1 - mem0) / (double)pages, (mem2 - mem1) / (double)pages);
    }

    private static long Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

using System.Diagnostics;
using System.Globalization;
using Linux;

namespace MmCheck.Explorer;

/// <summary>Settings of <see cref="ExplorerBenchmarks.Run"/>.</summary>
public sealed record ExplorerBenchmarkOptions
{
    /// <summary>Pages of the fault-vs-munmap scenario for throughput (explored up to
    /// <see cref="ThroughputSchedules"/>).</summary>
    public int Pages { get; init; } = 8;

    public int ThroughputSchedules { get; init; } = 1500;

    /// <summary>Pages of the fault-vs-munmap scenario explored completely for the parallel speed-up
    /// (7: 7,147 executions, 499,768 steps, with the invariant checks on or off; smaller runs are
    /// too short to time on a shared machine).</summary>
    public int SpeedupPages { get; init; } = 7;

    /// <summary>Throughput is the best of this many explorations: each is short (a tenth of a second),
    /// and tiered compilation keeps improving the kernel's paths for the first several.</summary>
    public int ThroughputRepetitions { get; init; } = 12;

    /// <summary>Pairs of one-worker and many-worker explorations for the speed-up, run back to back
    /// (each takes a few tenths of a second; this VM's timings drift by ±25 % over seconds).</summary>
    public int SpeedupRepetitions { get; init; } = 15;

    /// <summary>Workers for the speed-up figure, against one.</summary>
    public int Workers { get; init; } = 2;

    /// <summary>How long to explore before measuring, so that the JIT has compiled the kernel's and
    /// the explorer's hot paths at full optimisation (tiered compilation takes a few seconds).</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>After <see cref="Warmup"/>, small speed-up pairs go on until the JIT has compiled
    /// nothing for this long (zero: not at all), at most until <see cref="MaxWarmup"/>.</summary>
    public TimeSpan JitQuietWindow { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxWarmup { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>DPOR against plain DFS on one bounded scenario.</summary>
public sealed record DporComparison(string Scenario, long DporSchedules, long PlainSchedules, bool BothComplete, bool SameVerdict)
{
    public double Reduction => DporSchedules == 0 ? 0 : (double)PlainSchedules / DporSchedules;
}

/// <summary>The explorer's performance figures on this machine, measured in one run.</summary>
public sealed record ExplorerBenchmarkResult
{
    public required string Scenario { get; init; }
    /// <summary>Scheduling points (steps) per second of wall-clock time on one worker, DFS with DPOR,
    /// everything included (building a fresh kernel for every execution, replaying prefixes,
    /// checks). Depends on how busy the machine is.</summary>
    public double PointsPerSecond { get; init; }
    /// <summary>The same per second of CPU time of the exploring thread: the rate of one core given
    /// to it alone, and the figure to compare with the target on a shared machine.</summary>
    public double PointsPerCpuSecond { get; init; }
    /// <summary>Points per CPU second without the time spent building kernels (the target's Prepare).</summary>
    public double PointsPerSecondExcludingSetup { get; init; }
    /// <summary>Average CPU cost of one Prepare (a fresh kernel with the scenario's setup): the run's
    /// CPU time per execution times the share of its wall-clock time spent in Prepare.</summary>
    public double SetupMicroseconds { get; init; }
    /// <summary>Points per CPU second with no kernel work between points (DFS with DPOR): the explorer's own cost.</summary>
    public double SchedulerOnlyPointsPerSecond { get; init; }
    public required string SpeedupScenario { get; init; }
    public long Schedules { get; init; }
    public long Steps { get; init; }
    public required IReadOnlyList<DporComparison> Dpor { get; init; }
    /// <summary>Geometric mean of the DPOR reductions.</summary>
    public double DporReduction { get; init; }
    public TimeSpan OneWorker { get; init; }
    public TimeSpan ManyWorkers { get; init; }
    /// <summary>CPU time the exploring threads of the many-worker run used against the one-worker
    /// run: the parallel overhead (1.0 = none).</summary>
    public double ParallelCpuOverhead { get; init; }
    public int Workers { get; init; }
    /// <summary>Wall-clock speed-up of the many-worker run: the median, over the pairs, of the
    /// one-worker time over the many-worker time of the same pair. A pair runs back to back, so both
    /// see the machine in the same state; on a shared machine it is bounded by the cores the other
    /// processes leave.</summary>
    public double Speedup { get; init; }
    /// <summary>The best one-worker time over the best many-worker time. On a host whose speed
    /// drifts this favours the one-worker run, which needs one quiet core where the other needs two.</summary>
    public double SpeedupBestOf { get; init; }
    /// <summary>What the machine and the runtime allow this workload with nothing coordinated: as
    /// many independent one-worker explorations as workers, at once on their own threads, against
    /// the pair's one-worker run (throughput ratio, median of pairs). On this VM it is below the
    /// worker count: the virtual CPUs slow each other down, the collector stops both.</summary>
    public double IndependentSpeedup { get; init; }
    /// <summary><see cref="Speedup"/> over <see cref="IndependentSpeedup"/>: the share of what the
    /// machine allows that the explorer's parallel DFS gets.</summary>
    public double ParallelEfficiency => IndependentSpeedup > 0 ? Speedup / IndependentSpeedup : double.NaN;
    /// <summary>The speed-up with a core per worker, from CPU times: workers / CPU overhead. It
    /// assumes busy workers, which the fine-grained DFS units give until the last ones.</summary>
    public double CpuSpeedup { get; init; }
    /// <summary>Managed memory allocated per execution by a one-worker exploration of the speed-up
    /// scenario (everything: kernels, explorer, checks), in bytes.</summary>
    public double AllocatedBytesPerExecution { get; init; }
    /// <summary>Generation-0 collections during that exploration (each stops every worker).</summary>
    public int Gen0Collections { get; init; }
    /// <summary>Time the collector paused the process during that exploration.</summary>
    public TimeSpan GcPause { get; init; }
    /// <summary>Bytes that exploration allocated per gen-0 collection (0 with no collection): the
    /// young generation's budget as the runtime sized it. A collection here costs most of a
    /// millisecond however little survives, so a larger budget pauses less; only the environment
    /// (DOTNET_GCgen0size, its floor) raises it.</summary>
    public double BytesPerGen0Collection { get; init; }
    /// <summary>Methods the JIT compiled during the timed explorations of the pairs (0 when warmed up:
    /// tiered compilation's background thread takes a core from a many-worker run, not from a
    /// one-worker run).</summary>
    public long JitCompilationsDuringSpeedup { get; init; }
    /// <summary>The multi-worker result was identical to the one-worker result.</summary>
    public bool ParallelResultIdentical { get; init; }
    public int ProcessorCount { get; init; }
    /// <summary>/proc/loadavg's 1, 5 and 15-minute figures at the start and at the end (the machine
    /// may be shared), when available.</summary>
    public string? LoadAverage { get; init; }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Scenario}: {PointsPerCpuSecond / 1e6:F2} M points per CPU second ({PointsPerSecond / 1e6:F2} M/s wall; {PointsPerSecondExcludingSetup / 1e6:F2} M per CPU second without setup, setup {SetupMicroseconds:F0} µs; " +
        $"explorer alone {SchedulerOnlyPointsPerSecond / 1e6:F2} M); " +
        $"DPOR {DporReduction:F1}x fewer executions ({string.Join(", ", Dpor.Select(d => $"{d.Scenario} {d.PlainSchedules}/{d.DporSchedules}"))}); " +
        $"{SpeedupScenario}: {Workers} workers {Speedup:F2}x wall (median of pairs; best of each {OneWorker.TotalMilliseconds:F0} → {ManyWorkers.TotalMilliseconds:F0} ms, {SpeedupBestOf:F2}x; {JitCompilationsDuringSpeedup} methods compiled meanwhile; independent explorations {IndependentSpeedup:F2}x, efficiency {ParallelEfficiency:P0}), CPU overhead {ParallelCpuOverhead:F2}, {CpuSpeedup:F2}x from CPU times, identical={ParallelResultIdentical}; " +
        $"{AllocatedBytesPerExecution / 1e3:F1} KB allocated per execution, {Gen0Collections} gen-0 collections (one per {BytesPerGen0Collection / 1e6:F1} MB) pausing {GcPause.TotalMilliseconds:F1} ms per one-worker exploration; load {LoadAverage}");
}

/// <summary>
/// The explorer's benchmarks as a library call, for <c>mmcheck bench</c> and the benchmark project:
/// scheduling points per second, DPOR's reduction over plain DFS, and the parallel speed-up.
/// </summary>
public static class ExplorerBenchmarks
{
    /// <summary>The issue's throughput target, per CPU second of one core, on fault-vs-munmap and
    /// on the seed scenarios alike.</summary>
    public const double PointsPerCpuSecondTarget = 2e6;

    public static ExplorerBenchmarkResult Run(ExplorerBenchmarkOptions? options = null)
    {
        options ??= new ExplorerBenchmarkOptions();
        string? load = LoadAverage();
        // Start from a collected heap: what earlier benchmarks in the process left (a 1 GiB model
        // kernel's worth) would otherwise be collected, at great cost, inside these measurements.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();

        var target = BenchmarkTargets.FaultVsMunmap(options.Pages);
        var speedTarget = BenchmarkTargets.FaultVsMunmap(options.SpeedupPages);
        // Warm up the paths measured until tiered compilation has settled.
        var warm = Stopwatch.StartNew();
        do
        {
            Explorer.Explore(target, new ExplorationOptions { Strategy = Strategy.Random, MaxSchedules = 300, Minimize = false });
            Explorer.Explore(target, Dfs(1, 300));
            Explorer.Explore(speedTarget, Dfs(options.Workers, 300));
        }
        while (warm.Elapsed < options.Warmup);
        // What runs once per exploration (a complete exploration's end, its result, the comparison
        // of results) reaches the JIT's call-count threshold only after a few dozen explorations,
        // inside the timed pairs unless warmed here: 200–340 ms of background compilation there,
        // which takes a core from the many-worker runs only. Small complete pairs until the JIT is
        // quiet.
        var small = BenchmarkTargets.FaultVsMunmap(2);
        WarmUntilJitQuiet(r => SpeedupPair(small, options.Workers, manyFirst: r % 2 == 1), TimeSpan.Zero,
            options.JitQuietWindow, options.MaxWarmup - warm.Elapsed);

        // What one exploration asks of the collector, which every worker waits for.
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        int gen0 = GC.CollectionCount(0);
        var pause = GC.GetTotalPauseDuration();
        var measured = Explorer.Explore(speedTarget, Dfs(1));
        double allocatedPerExecution = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)Math.Max(1, measured.Schedules);
        gen0 = GC.CollectionCount(0) - gen0;
        pause = GC.GetTotalPauseDuration() - pause;

        // Parallel speed-up on a complete exploration, in pairs of a one-worker and a many-worker
        // run; which goes first alternates, so that a drift of the machine's speed favours neither.
        var oneWorker = TimeSpan.MaxValue;
        var manyWorkers = TimeSpan.MaxValue;
        var oneCpu = TimeSpan.MaxValue;
        var manyCpu = TimeSpan.MaxValue;
        var pairRatios = new List<double>();
        var independentRatios = new List<double>();
        bool identical = true;
        string? reference = null;
        long compiledDuring = 0;
        for (int r = 0; r < Math.Max(1, options.SpeedupRepetitions); r++)
        {
            var (one, many, independent, result, compiled) = SpeedupPair(speedTarget, options.Workers, manyFirst: r % 2 == 1);
            compiledDuring += compiled;
            pairRatios.Add(one.Elapsed.TotalSeconds / many.Elapsed.TotalSeconds);
            independentRatios.Add(options.Workers * one.Elapsed.TotalSeconds / independent.TotalSeconds);
            oneCpu = Min(oneCpu, one.CpuTime);
            manyCpu = Min(manyCpu, many.CpuTime);
            oneWorker = Min(oneWorker, one.Elapsed);
            manyWorkers = Min(manyWorkers, many.Elapsed);
            reference ??= result;
            identical &= result is not null && result == reference;
        }

        // Throughput: one worker, DFS with DPOR, best of the repetitions. The share of the run spent
        // building kernels is timed inside the same run, so that both see the same load. It comes
        // after the speed-up: the explorer-only target's 100,000-step executions leave the
        // collector's young generation grown for a while.
        ExplorationResult? best = null;
        double perCpu = 0;
        double setupShare = 0;
        double explorerOnly = 0;
        for (int r = 0; r < Math.Max(1, options.ThroughputRepetitions); r++)
        {
            var timed = new TimedTarget(target);
            var one = Explorer.Explore(timed, Dfs(1, options.ThroughputSchedules));
            if (one.PointsPerCpuSecond > perCpu)
            {
                perCpu = one.PointsPerCpuSecond;
                setupShare = Math.Clamp(timed.PrepareTime.TotalSeconds / one.Elapsed.TotalSeconds, 0, 0.99);
            }
            if (best is null || one.Steps / one.Elapsed.TotalSeconds > best.Steps / best.Elapsed.TotalSeconds)
            {
                best = one;
            }
            explorerOnly = Math.Max(explorerOnly, Explorer.Explore(BenchmarkTargets.Points(), Dfs(1, 1, int.MaxValue)).PointsPerCpuSecond);
        }
        double cpuPerSchedule = best!.Steps / perCpu / best.Schedules;

        // Where thread CPU time cannot be read (it is 0), the CPU figures are unknown, not infinite.
        double overhead = oneCpu > TimeSpan.Zero && manyCpu > TimeSpan.Zero ? manyCpu.TotalSeconds / oneCpu.TotalSeconds : double.NaN;

        var comparisons = new List<DporComparison>
        {
            Compare(BenchmarkTargets.FixupVsZap()),
            Compare(BenchmarkTargets.LockedIncrement(2)),
            Compare(BenchmarkTargets.LockedIncrement(3)),
        };
        double geo = Math.Exp(comparisons.Average(c => Math.Log(Math.Max(1e-9, c.Reduction))));

        return new ExplorerBenchmarkResult
        {
            Scenario = target.Name,
            PointsPerSecond = best.Steps / best.Elapsed.TotalSeconds,
            PointsPerCpuSecond = perCpu,
            PointsPerSecondExcludingSetup = perCpu / (1 - setupShare),
            SetupMicroseconds = cpuPerSchedule * setupShare * 1e6,
            SchedulerOnlyPointsPerSecond = explorerOnly,
            Schedules = best.Schedules,
            Steps = best.Steps,
            Dpor = comparisons,
            DporReduction = geo,
            SpeedupScenario = speedTarget.Name,
            OneWorker = oneWorker,
            ManyWorkers = manyWorkers,
            Workers = options.Workers,
            Speedup = Median(pairRatios),
            SpeedupBestOf = oneWorker.TotalSeconds / manyWorkers.TotalSeconds,
            IndependentSpeedup = Median(independentRatios),
            ParallelCpuOverhead = overhead,
            CpuSpeedup = options.Workers / overhead,
            JitCompilationsDuringSpeedup = compiledDuring,
            ParallelResultIdentical = identical,
            AllocatedBytesPerExecution = allocatedPerExecution,
            Gen0Collections = gen0,
            GcPause = pause,
            BytesPerGen0Collection = gen0 > 0 ? allocatedPerExecution * measured.Schedules / gen0 : 0,
            ProcessorCount = Environment.ProcessorCount,
            LoadAverage = load is null ? null : $"{load} → {LoadAverage()}",
        };
    }

    /// <summary>One pair of the speed-up: a complete one-worker and many-worker exploration back to
    /// back, then (or first: the order reverses) as many one-worker explorations at once as workers;
    /// the pair's result (its fingerprint; null when the two runs differ), and how many methods the
    /// JIT compiled meanwhile.</summary>
    private static (ExplorationResult One, ExplorationResult Many, TimeSpan Independent, string? Result, long Compiled) SpeedupPair(
        ExplorationTarget t, int workers, bool manyFirst)
    {
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        TimeSpan Independent()
        {
            var clock = Stopwatch.StartNew();
            WorkerPool.Run(workers, _ => Explorer.Explore(t, Dfs(1)));
            return clock.Elapsed;
        }
        ExplorationResult one, many;
        TimeSpan independent;
        if (manyFirst)
        {
            independent = Independent();
            many = Explorer.Explore(t, Dfs(workers));
            one = Explorer.Explore(t, Dfs(1));
        }
        else
        {
            one = Explorer.Explore(t, Dfs(1));
            many = Explorer.Explore(t, Dfs(workers));
            independent = Independent();
        }
        compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - compiled;
        string result = Fingerprint(one);
        return (one, many, independent, result == Fingerprint(many) ? result : null, compiled);
    }

    /// <summary>Runs <paramref name="pass"/> (its argument counts the passes) for at least
    /// <paramref name="minimum"/> and then until the JIT has compiled nothing for
    /// <paramref name="quietWindow"/>, or until <paramref name="maximum"/>; returns how long it ran.
    /// Tiered compilation promotes what a pass called some time after, so one quiet pass is not
    /// enough when passes are short.</summary>
    public static TimeSpan WarmUntilJitQuiet(Action<int> pass, TimeSpan minimum, TimeSpan quietWindow, TimeSpan maximum)
    {
        var warm = Stopwatch.StartNew();
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        var lastCompiled = TimeSpan.Zero;
        for (int r = 0; warm.Elapsed < maximum; r++)
        {
            pass(r);
            long now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled)
            {
                compiled = now;
                lastCompiled = warm.Elapsed;
            }
            if (warm.Elapsed >= minimum && warm.Elapsed - lastCompiled >= quietWindow)
            {
                break;
            }
        }
        return warm.Elapsed;
    }

    /// <summary>/proc/loadavg's 1, 5 and 15 minute averages, when the machine has them.</summary>
    public static string? LoadAverage()
    {
        try
        {
            return System.IO.File.Exists("/proc/loadavg") ? string.Join(' ', System.IO.File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static ExplorationOptions Dfs(int workers, long? maxSchedules = null, int maxSteps = 100_000) => new()
    {
        Strategy = Strategy.Dfs,
        Workers = workers,
        Minimize = false,
        MaxSchedules = maxSchedules,
        MaxStepsPerSchedule = maxSteps,
    };

    private static DporComparison Compare(ExplorationTarget t)
    {
        var dpor = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Dfs, Dpor = true, Minimize = false });
        var plain = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Dfs, Dpor = false, Minimize = false, MaxSchedules = 2_000_000 });
        bool same = Verdict(dpor) == Verdict(plain);
        return new DporComparison(t.Name, dpor.Schedules, plain.Schedules, dpor.Complete && plain.Complete, same);
    }

    /// <summary>What an exploration concluded: the distinct outcomes and violation classes.</summary>
    private static string Verdict(ExplorationResult r) =>
        string.Join("\n", r.Outcomes.Select(o => o.Outcome.ToString())) + "\n--\n" +
        string.Join("\n", r.Violations.Select(v => ViolationClass.Of(v.Invariant, v.Message)).Order(StringComparer.Ordinal));

    /// <summary>Everything but timings.</summary>
    private static string Fingerprint(ExplorationResult r) =>
        string.Create(CultureInfo.InvariantCulture, $"{r.Complete} {r.Schedules} {r.Redundant} {r.Steps}\n") +
        string.Join("\n", r.Outcomes.Select(o => $"{o.Outcome} x{o.Count}")) + "\n" + Verdict(r);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static double Median(List<double> xs)
    {
        var sorted = xs.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}

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

    /// <summary>Pages of the fault-vs-munmap scenario explored completely for the parallel speed-up.</summary>
    public int SpeedupPages { get; init; } = 4;

    /// <summary>Each timing is the best of this many runs (the machine may be shared).</summary>
    public int Repetitions { get; init; } = 3;

    /// <summary>Workers for the speed-up figure, against one.</summary>
    public int Workers { get; init; } = 2;
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
    /// <summary>Scheduling points (steps) per second on one core, DFS with DPOR, everything included
    /// (building a fresh kernel for every execution, replaying prefixes, checks).</summary>
    public double PointsPerSecond { get; init; }
    /// <summary>The same per second of CPU time of the process (robust when the machine is shared).</summary>
    public double PointsPerCpuSecond { get; init; }
    /// <summary>The same without the time spent building kernels (the target's Prepare).</summary>
    public double PointsPerSecondExcludingSetup { get; init; }
    /// <summary>Average cost of one Prepare (a fresh kernel with the scenario's setup).</summary>
    public double SetupMicroseconds { get; init; }
    /// <summary>Points per second with no kernel work between points (DFS with DPOR): the explorer's own cost.</summary>
    public double SchedulerOnlyPointsPerSecond { get; init; }
    public required string SpeedupScenario { get; init; }
    public long Schedules { get; init; }
    public long Steps { get; init; }
    public required IReadOnlyList<DporComparison> Dpor { get; init; }
    /// <summary>Geometric mean of the DPOR reductions.</summary>
    public double DporReduction { get; init; }
    public TimeSpan OneWorker { get; init; }
    public TimeSpan ManyWorkers { get; init; }
    /// <summary>CPU time the many-worker run used against the one-worker run: the parallel overhead
    /// (1.0 = none); on an idle machine the speed-up approaches workers / this.</summary>
    public double ParallelCpuOverhead { get; init; }
    public int Workers { get; init; }
    public double Speedup { get; init; }
    /// <summary>The multi-worker result was identical to the one-worker result.</summary>
    public bool ParallelResultIdentical { get; init; }
    public int ProcessorCount { get; init; }
    /// <summary>/proc/loadavg at the start (the machine may be shared), when available.</summary>
    public string? LoadAverage { get; init; }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Scenario}: {PointsPerSecond / 1e6:F2} M points/s ({PointsPerCpuSecond / 1e6:F2} M per CPU second; {PointsPerSecondExcludingSetup / 1e6:F2} M/s without setup, setup {SetupMicroseconds:F0} µs; " +
        $"explorer alone {SchedulerOnlyPointsPerSecond / 1e6:F2} M/s); " +
        $"DPOR {DporReduction:F1}x fewer executions ({string.Join(", ", Dpor.Select(d => $"{d.Scenario} {d.PlainSchedules}/{d.DporSchedules}"))}); " +
        $"{SpeedupScenario}: {Workers} workers {Speedup:F2}x ({OneWorker.TotalMilliseconds:F0} → {ManyWorkers.TotalMilliseconds:F0} ms, CPU overhead {ParallelCpuOverhead:F2}, identical={ParallelResultIdentical}); load {LoadAverage}");
}

/// <summary>
/// The explorer's benchmarks as a library call, for <c>mmcheck bench</c> and the benchmark project:
/// scheduling points per second, DPOR's reduction over plain DFS, and the parallel speed-up.
/// </summary>
public static class ExplorerBenchmarks
{
    public static ExplorerBenchmarkResult Run(ExplorerBenchmarkOptions? options = null)
    {
        options ??= new ExplorerBenchmarkOptions();
        int reps = Math.Max(1, options.Repetitions);
        string? load = null;
        try
        {
            load = System.IO.File.Exists("/proc/loadavg") ? System.IO.File.ReadAllText("/proc/loadavg").Trim() : null;
        }
        catch (IOException)
        {
        }

        var target = BenchmarkTargets.FaultVsMunmap(options.Pages);
        var speedTarget = BenchmarkTargets.FaultVsMunmap(options.SpeedupPages);
        // Warm up the JIT on the paths measured.
        Explorer.Explore(target, new ExplorationOptions { Strategy = Strategy.Random, MaxSchedules = 300, Minimize = false });
        Explorer.Explore(target, new ExplorationOptions { Strategy = Strategy.Dfs, MaxSchedules = 300, Minimize = false });

        // Throughput: one worker, DFS with DPOR, best of the repetitions.
        ExplorationResult? best = null;
        double explorerOnly = 0;
        double perCpu = 0;
        for (int r = 0; r < reps; r++)
        {
            var cpu0 = Cpu();
            var one = Explorer.Explore(target, Dfs(1, options.ThroughputSchedules));
            perCpu = Math.Max(perCpu, one.Steps / Math.Max(1e-9, (Cpu() - cpu0).TotalSeconds));
            if (best is null || one.Steps / one.Elapsed.TotalSeconds > best.Steps / best.Elapsed.TotalSeconds)
            {
                best = one;
            }
            var pts = Explorer.Explore(BenchmarkTargets.Points(), Dfs(1, 1, int.MaxValue));
            explorerOnly = Math.Max(explorerOnly, pts.Steps / pts.Elapsed.TotalSeconds);
        }
        double setup = MeasureSetup(target, 500);
        double seconds = best!.Elapsed.TotalSeconds;
        double withoutSetup = Math.Max(1e-9, seconds - best.Schedules * setup / 1e6);

        // Parallel speed-up on a complete exploration; one and many workers alternate.
        var oneWorker = TimeSpan.MaxValue;
        var manyWorkers = TimeSpan.MaxValue;
        var oneCpu = TimeSpan.MaxValue;
        var manyCpu = TimeSpan.MaxValue;
        bool identical = true;
        string? reference = null;
        for (int r = 0; r < reps; r++)
        {
            var c0 = Cpu();
            var one = Explorer.Explore(speedTarget, Dfs(1));
            var c1 = Cpu();
            var many = Explorer.Explore(speedTarget, Dfs(options.Workers));
            oneCpu = Min(oneCpu, c1 - c0);
            manyCpu = Min(manyCpu, Cpu() - c1);
            oneWorker = Min(oneWorker, one.Elapsed);
            manyWorkers = Min(manyWorkers, many.Elapsed);
            reference ??= Fingerprint(one);
            identical &= Fingerprint(one) == reference && Fingerprint(many) == reference;
        }

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
            PointsPerSecond = best.Steps / seconds,
            PointsPerCpuSecond = perCpu,
            PointsPerSecondExcludingSetup = best.Steps / withoutSetup,
            SetupMicroseconds = setup,
            SchedulerOnlyPointsPerSecond = explorerOnly,
            Schedules = best.Schedules,
            Steps = best.Steps,
            Dpor = comparisons,
            DporReduction = geo,
            SpeedupScenario = speedTarget.Name,
            OneWorker = oneWorker,
            ManyWorkers = manyWorkers,
            Workers = options.Workers,
            Speedup = oneWorker.TotalSeconds / manyWorkers.TotalSeconds,
            ParallelCpuOverhead = manyCpu.TotalSeconds / Math.Max(1e-9, oneCpu.TotalSeconds),
            ParallelResultIdentical = identical,
            ProcessorCount = Environment.ProcessorCount,
            LoadAverage = load,
        };
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

    private static double MeasureSetup(ExplorationTarget target, int n) => WorkerPool.Isolated(() =>
    {
        var sched = new ExplorerScheduler();
        var sw = new Stopwatch();
        for (int i = 0; i < n; i++)
        {
            sched.BeginExecution(DefaultController.Instance, false, false, int.MaxValue, InvariantCheckMode.Off);
            sw.Start();
            target.Prepare(sched, new LockGraph());
            sw.Stop();
        }
        return sw.Elapsed.TotalMicroseconds / n;
    });

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static TimeSpan Cpu()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }
}

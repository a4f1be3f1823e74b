using MmCheck.Explorer;
using MmCheck.Litmus.Runner;

namespace MmCheck.Bench;

/// <summary>One scenario file explored completely with DFS on one worker, again and again over a
/// window of CPU time: rates over the whole window, times per exploration.</summary>
public sealed record ScenarioThroughput
{
    public required string Scenario { get; init; }
    public required string File { get; init; }
    public long Schedules { get; init; }
    /// <summary>Scheduling points of one exploration.</summary>
    public long Steps { get; init; }
    public bool Complete { get; init; }
    /// <summary>Scheduling points per CPU second of the exploring thread, everything included (a
    /// fresh kernel and the init block per execution, checks, results), over all the runs.</summary>
    public double PointsPerCpuSecond { get; init; }
    public double SchedulesPerCpuSecond { get; init; }
    /// <summary>The share of the explorations' time spent building each execution's kernel: the
    /// devices, the processes and the init block, run afresh for every execution.</summary>
    public double SetupShare { get; init; }
    /// <summary>CPU time of one exploration's thread (its wall time where there is none), the mean
    /// over the runs.</summary>
    public double CpuMilliseconds { get; init; }
    /// <summary>How many times the file was explored for these figures.</summary>
    public int Runs { get; init; }
    /// <summary>When DFS on one worker met the first violation (none: clean), from the start of the
    /// exploration: the median over the runs.</summary>
    public double? FirstViolationMs { get; init; }
    /// <summary>What the exploration observed, in the expectations' terms ("clean", "violation bug").</summary>
    public required string Observed { get; init; }
    /// <summary>The observation met every expectation the file states.</summary>
    public bool AsExpected { get; init; }
}

/// <summary>The explorer's throughput on a directory of scenarios (the seed scenarios by default).</summary>
public sealed record ScenarioBenchmarkResult
{
    public required string Directory { get; init; }
    public required IReadOnlyList<ScenarioThroughput> Scenarios { get; init; }
    /// <summary>All the scenarios' points over all their CPU time, one exploration of each (each
    /// file's mean): the figure for the target, weighted as a user exploring them all would see it.</summary>
    public double PointsPerCpuSecond { get; init; }
    /// <summary>The same without the setup of each execution (<see cref="ScenarioThroughput.SetupShare"/>):
    /// what exploring the threads' steps costs.</summary>
    public double PointsPerCpuSecondExcludingSetup { get; init; }
    /// <summary>Files that did not load (with their first diagnostic); they are not measured.</summary>
    public IReadOnlyList<string> Errors { get; init; } = [];
    /// <summary>How long the scenarios were explored before the timed runs.</summary>
    public double WarmupSeconds { get; init; }
    /// <summary>Methods the JIT compiled during the timed runs (0: they all ran fully optimised code).</summary>
    public long CompiledWhileMeasured { get; init; }
}

/// <summary>
/// Scheduling points per CPU second on real scenarios, the seed scenarios of scenarios/seeds: the
/// issue's throughput target is stated for them as well as for fault-vs-munmap. Each file is
/// explored completely with DFS on one worker, without minimising counterexamples, after a
/// warm-up, at least as often as asked and until it has used <see cref="MinCpuPerFile"/>: most
/// seed files explore in a millisecond or less, and the best of three such runs told more about
/// the machine's moment than about the explorer.
/// </summary>
public static class ScenarioBenchmarks
{
    /// <summary>The directory measured when none is given, relative to the working directory.</summary>
    public const string DefaultDirectory = "scenarios/seeds";

    /// <summary>Why <paramref name="directory"/> cannot be measured, or null when it can.</summary>
    public static string? Unavailable(string directory) =>
        !System.IO.Directory.Exists(directory) ? $"no directory '{directory}' (run from the repository root, or pass --scenarios DIR)"
        : !System.IO.Directory.EnumerateFiles(directory, "*.litmus").Any() ? $"no .litmus files in '{directory}'"
        : null;

    /// <summary>The CPU time each file is explored for, at least (and at most <see cref="MaxRunsPerFile"/> runs).</summary>
    public static readonly TimeSpan MinCpuPerFile = TimeSpan.FromMilliseconds(100);

    public const int MaxRunsPerFile = 2000;

    /// <summary>The warm-up ends once passes have compiled nothing for this long: a pass over the
    /// seed files takes a tenth of a second, less than tiered compilation's delay before it
    /// promotes what the pass called.</summary>
    public static readonly TimeSpan JitQuietWindow = TimeSpan.FromSeconds(1);

    /// <summary>The longest warm-up: passes stop here even if the JIT is still compiling.</summary>
    public static readonly TimeSpan MaxWarmup = TimeSpan.FromSeconds(60);

    /// <summary>Measures every .litmus file of <paramref name="directory"/>. First all of them are
    /// explored in turn for at least <paramref name="warmup"/> (none when zero) and then until passes
    /// have compiled no method for <see cref="JitQuietWindow"/>, so that tiered compilation has compiled their paths at full
    /// optimisation (a scenario explored once runs mostly unoptimised code, a third of the steady
    /// rate, and one seed scenario alone takes some 7,700 compilations before its rate settles: a
    /// fixed 4 s left some measured at half their rate); then each is explored at least
    /// <paramref name="repetitions"/> times and for <see cref="MinCpuPerFile"/>.</summary>
    public static ScenarioBenchmarkResult Run(string directory, int repetitions, TimeSpan warmup, TextWriter? progress = null)
    {
        var results = new List<ScenarioThroughput>();
        var errors = new List<string>();
        var scenarios = new List<(string File, MmCheck.Litmus.Binding.BoundScenario Scenario)>();
        foreach (var file in System.IO.Directory.EnumerateFiles(directory, "*.litmus").Order(StringComparer.Ordinal))
        {
            var loaded = ScenarioRunner.Load(file);
            if (loaded.Scenario is { } s)
            {
                scenarios.Add((file, s));
            }
            else
            {
                errors.Add($"{file}: {loaded.Diagnostics.FirstOrDefault()?.Message ?? "does not load"}");
            }
        }
        var options = new ExplorationOptions { Strategy = Strategy.Dfs, Workers = 1, Minimize = false };
        double warmupSeconds = warmup > TimeSpan.Zero && scenarios.Count > 0
            ? ExplorerBenchmarks.WarmUntilJitQuiet(_ =>
            {
                foreach (var (_, s) in scenarios)
                {
                    ScenarioRunner.Explore(s, options);
                }
            }, warmup, JitQuietWindow, MaxWarmup).TotalSeconds
            : 0;
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        long steps = 0;
        double cpu = 0, setupCpu = 0;
        foreach (var (file, s) in scenarios)
        {
            progress?.WriteLine($"  {s.Name} …");
            ScenarioResult? last = null;
            double fileCpu = 0, fileWall = 0;
            long fileSteps = 0, fileSchedules = 0;
            var firstViolations = new List<double>();
            var timed = new TimedTarget(new ScenarioTarget(s));
            int runs = 0;
            while (runs < Math.Max(1, repetitions) || (fileCpu < MinCpuPerFile.TotalSeconds && runs < MaxRunsPerFile))
            {
                last = ScenarioRunner.Explore(s, timed, options);
                var x = last.Exploration;
                fileCpu += x.CpuTimeOrElapsed.TotalSeconds;
                fileWall += x.Elapsed.TotalSeconds;
                fileSteps += x.Steps;
                fileSchedules += x.Schedules;
                if (x.FirstViolationAt is { } fv)
                {
                    firstViolations.Add(fv.TotalMilliseconds);
                }
                runs++;
            }
            var e = last!.Exploration;
            // Prepare is timed on the wall clock: its share of the explorations' wall time.
            double setupShare = fileWall > 0 ? Math.Clamp(timed.PrepareTime.TotalSeconds / fileWall, 0, 1) : 0;
            steps += e.Steps;
            cpu += fileCpu / runs;
            setupCpu += fileCpu / runs * setupShare;
            firstViolations.Sort();
            results.Add(new ScenarioThroughput
            {
                Scenario = s.Name,
                File = file,
                Schedules = e.Schedules,
                Steps = e.Steps,
                Complete = e.Complete,
                PointsPerCpuSecond = fileCpu > 0 ? fileSteps / fileCpu : 0,
                SchedulesPerCpuSecond = fileCpu > 0 ? fileSchedules / fileCpu : 0,
                SetupShare = setupShare,
                CpuMilliseconds = fileCpu / runs * 1000,
                Runs = runs,
                FirstViolationMs = firstViolations.Count > 0 ? firstViolations[firstViolations.Count / 2] : null,
                Observed = last.ObservedText,
                AsExpected = last.Ok,
            });
        }
        return new ScenarioBenchmarkResult
        {
            Directory = directory,
            Scenarios = results,
            PointsPerCpuSecond = cpu > 0 ? steps / cpu : 0,
            PointsPerCpuSecondExcludingSetup = cpu > setupCpu ? steps / (cpu - setupCpu) : 0,
            Errors = errors,
            WarmupSeconds = warmupSeconds,
            CompiledWhileMeasured = System.Runtime.JitInfo.GetCompiledMethodCount() - compiled,
        };
    }
}

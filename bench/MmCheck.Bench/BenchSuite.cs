using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MmCheck.Explorer;

namespace MmCheck.Bench;

/// <summary>What <see cref="BenchSuite.Run"/> measures.</summary>
public sealed record BenchOptions
{
    /// <summary>Size of the anonymous mapping the kernel and native benchmarks fault in, fork and unmap.</summary>
    public ulong Bytes { get; init; } = 1UL << 30;

    /// <summary>What <see cref="ParseBytes"/> accepts, for error messages.</summary>
    public const string BytesFormat = "a whole number of 4096-byte pages up to 64G, e.g. 1G, 256M, 4096";

    /// <summary>A mapping size as "1G", "256M", "64K" or "4096": a whole number of pages from one
    /// page to 64 GiB; null if <paramref name="s"/> is not one.</summary>
    public static ulong? ParseBytes(string s)
    {
        string t = s.Trim().ToUpperInvariant();
        (string digits, int shift) = t.EndsWith('G') ? (t[..^1], 30) : t.EndsWith('M') ? (t[..^1], 20) : t.EndsWith('K') ? (t[..^1], 10) : (t, 0);
        if (!ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) ||
            n == 0 || n > (64UL << 30) >> shift || ((n << shift) & 4095) != 0)
        {
            return null;
        }
        return n << shift;
    }

    /// <summary>Each figure is the best of this many runs (the machine may be shared).</summary>
    public int Repeats { get; init; } = 3;

    /// <summary>Run the same sequence natively for the model/native ratios.</summary>
    public bool Native { get; init; } = true;

    /// <summary>Run the explorer's benchmarks; null options = the explorer's defaults.</summary>
    public bool Explorer { get; init; } = true;

    public ExplorerBenchmarkOptions? ExplorerOptions { get; init; }

    /// <summary>Measure the explorer on the scenario files of <see cref="ScenarioDirectory"/> too.</summary>
    public bool Scenarios { get; init; } = true;

    public string ScenarioDirectory { get; init; } = ScenarioBenchmarks.DefaultDirectory;

    /// <summary>How long the scenarios are explored at least before they are timed (then on until
    /// the JIT is quiet; zero: no warm-up).</summary>
    public TimeSpan ScenarioWarmup { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>Where the native benchmark is built (default: the oracle's cache directory).</summary>
    public string? WorkDir { get; init; }

    /// <summary>A quick check in a few seconds: 64 MiB, one repeat, the explorer on small bounds.</summary>
    public static BenchOptions Quick { get; } = new()
    {
        Bytes = 64UL << 20,
        Repeats = 1,
        ExplorerOptions = new ExplorerBenchmarkOptions { Pages = 2, ThroughputSchedules = 100, SpeedupPages = 1, ThroughputRepetitions = 1, SpeedupRepetitions = 1, Warmup = TimeSpan.Zero, JitQuietWindow = TimeSpan.Zero },
        ScenarioWarmup = TimeSpan.Zero,
    };
}

/// <summary>
/// A model/native ratio of one path (target: at most 0.5, the model twice as fast), in wall-clock
/// and in CPU time. The target is judged on CPU time when both sides have it: on a shared machine
/// wall time mostly measures how long each process waited for a core, which differs between a
/// 50 ms model run and a 1 s native one.
/// </summary>
public sealed record Ratio(string Path, double ModelSeconds, double NativeSeconds, double ModelCpuSeconds = 0, double NativeCpuSeconds = 0)
{
    public const double Target = 0.5;

    /// <summary>Model wall time / native wall time.</summary>
    public double Value => NativeSeconds > 0 ? ModelSeconds / NativeSeconds : double.PositiveInfinity;

    /// <summary>Model CPU time / native CPU time, or NaN when either side has none.</summary>
    public double CpuValue => ModelCpuSeconds > 0 && NativeCpuSeconds > 0 ? ModelCpuSeconds / NativeCpuSeconds : double.NaN;

    public bool Met => (double.IsNaN(CpuValue) ? Value : CpuValue) <= Target;
}

/// <summary>Everything one <c>mmcheck bench</c> run measured.</summary>
public sealed record BenchReport
{
    public required ulong Bytes { get; init; }
    public required int Repeats { get; init; }
    public int ProcessorCount { get; init; } = Environment.ProcessorCount;
    /// <summary>/proc/loadavg when the run started: the machine may be shared.</summary>
    public string? LoadAverage { get; init; }
    public required KernelResult Kernel { get; init; }
    public required IReadOnlyList<Figure> KernelFigures { get; init; }
    public NativeResult? Native { get; init; }
    /// <summary>Model time / native time for first touch, fork and munmap.</summary>
    public IReadOnlyList<Ratio> Ratios { get; init; } = [];
    /// <summary>Why the native side did not run, when it did not.</summary>
    public string? NativeSkipped { get; init; }
    public ExplorerBenchmarkResult? Explorer { get; init; }
    public ScenarioBenchmarkResult? Scenarios { get; init; }
    /// <summary>Why the scenarios were not measured, when they were not.</summary>
    public string? ScenariosSkipped { get; init; }
}

/// <summary>
/// The benchmarks behind <c>mmcheck bench</c> and bench/MmCheck.Benchmarks: the kernel core, the same
/// syscall sequence natively (model/native ratios), and the explorer's figures, in one run.
/// </summary>
public static class BenchSuite
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Runs what <paramref name="o"/> selects; progress lines (what is being measured) go to
    /// <paramref name="progress"/>.</summary>
    public static BenchReport Run(BenchOptions o, TextWriter? progress = null)
    {
        string? load = ExplorerBenchmarks.LoadAverage();
        string? skipped = o.Native ? NativeBenchmarks.Unavailable() : "not requested";
        // Model and native runs alternate, so that both sides see the same load on a shared machine.
        progress?.WriteLine($"kernel model{(skipped is null ? " and native kernel" : "")}: {o.Bytes >> 20} MiB, best of {o.Repeats} …");
        KernelBenchmarks.WarmUp(o.Bytes);
        var modelRuns = new List<KernelResult>();
        var nativeRuns = new List<NativeResult>();
        for (int i = 0; i < Math.Max(1, o.Repeats); i++)
        {
            modelRuns.Add(KernelBenchmarks.Measure(o.Bytes));
            if (skipped is null)
            {
                nativeRuns.Add(NativeBenchmarks.Run(o.Bytes, 1, o.WorkDir));
            }
        }
        var kernel = KernelResult.Best(modelRuns);
        var native = nativeRuns.Count > 0 ? NativeResult.Best(nativeRuns) : null;
        ExplorerBenchmarkResult? explorer = null;
        if (o.Explorer)
        {
            progress?.WriteLine("explorer …");
            explorer = ExplorerBenchmarks.Run(o.ExplorerOptions);
        }
        string? scenariosSkipped = o.Scenarios ? ScenarioBenchmarks.Unavailable(o.ScenarioDirectory) : "not requested";
        ScenarioBenchmarkResult? scenarios = null;
        if (scenariosSkipped is null)
        {
            progress?.WriteLine($"explorer on {o.ScenarioDirectory}: at least {o.ScenarioWarmup.TotalSeconds:F0} s of warm-up (until the JIT is quiet), then best of {o.Repeats} …");
            scenarios = ScenarioBenchmarks.Run(o.ScenarioDirectory, o.Repeats, o.ScenarioWarmup, progress);
        }
        return new BenchReport
        {
            Bytes = o.Bytes,
            Repeats = o.Repeats,
            LoadAverage = load,
            Kernel = kernel,
            KernelFigures = kernel.Figures(),
            Native = native,
            Ratios = native is null ? [] :
            [
                new("first-touch faults", kernel.TouchSeconds, native.TouchSeconds, kernel.TouchCpuSeconds, native.TouchCpuSeconds),
                new("fork", kernel.ForkSeconds, native.ForkSeconds, kernel.ForkCpuSeconds, native.ForkCpuSeconds),
                new("munmap", kernel.MunmapSeconds, native.MunmapSeconds, kernel.MunmapCpuSeconds, native.MunmapCpuSeconds),
            ],
            NativeSkipped = skipped,
            Explorer = explorer,
            Scenarios = scenarios,
            ScenariosSkipped = scenariosSkipped,
        };
    }

    public static string ToJson(BenchReport r) => JsonSerializer.Serialize(r, Json);

    /// <summary>The human-readable form: one line per figure, with its target and whether it was met.</summary>
    public static void WriteText(BenchReport r, TextWriter w)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(inv, $"{r.ProcessorCount} CPUs, load average {r.LoadAverage ?? "unknown"}; {r.Bytes >> 20} MiB mapping, best of {r.Repeats}"));
        w.WriteLine();
        w.WriteLine("kernel core (issue 2)");
        foreach (var f in r.KernelFigures)
        {
            string target = f.Target is null ? "" : $"  (target {f.Target}: {(f.Met == true ? "met" : "not met")})";
            w.WriteLine(string.Create(inv, $"  {f.Name,-38} {f.Value,12:F2} {f.Unit}{target}"));
        }
        w.WriteLine();
        w.WriteLine("model against the native kernel (issue 5)");
        if (r.Native is not { } n)
        {
            w.WriteLine($"  skipped: {r.NativeSkipped}");
        }
        else
        {
            foreach (var x in r.Ratios)
            {
                w.WriteLine(string.Create(inv,
                    $"  {x.Path,-20} wall: model {x.ModelSeconds * 1e3,8:F1} ms  native {x.NativeSeconds * 1e3,8:F1} ms  ratio {x.Value,5:F2};" +
                    $"  CPU: model {x.ModelCpuSeconds * 1e3,8:F1} ms  native {x.NativeCpuSeconds * 1e3,8:F1} ms  ratio {x.CpuValue,5:F2}" +
                    $"  (target ≤ {Ratio.Target} on CPU: {(x.Met ? "met" : "not met")})"));
            }
            w.WriteLine(string.Create(inv,
                $"  {"native first touch",-20} {n.TouchSeconds / n.Pages * 1e9:F0} ns/fault, {n.TouchCpuSeconds / n.Pages * 1e9:F0} ns of CPU per fault"));
            w.WriteLine(string.Create(inv, $"  {"model memory",-20} {r.Kernel.BytesPerPage:F2} B per mapped page"));
        }
        w.WriteLine();
        w.WriteLine("explorer (issue 3)");
        if (r.Explorer is { } e)
        {
            WriteExplorer(e, w);
        }
        else
        {
            w.WriteLine("  skipped: not requested");
        }
        w.WriteLine();
        w.WriteLine("explorer on scenario files (issue 3)");
        if (r.Scenarios is { } s)
        {
            WriteScenarios(s, w);
        }
        else
        {
            w.WriteLine($"  skipped: {r.ScenariosSkipped}");
        }
    }

    private static void WriteScenarios(ScenarioBenchmarkResult s, TextWriter w)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(inv, $"  {$"scheduling points, {s.Directory}",-38} {s.PointsPerCpuSecond / 1e6,12:F2} M per CPU second  (all scenarios' points over their CPU time; target ≥ {ExplorerBenchmarks.PointsPerCpuSecondTarget / 1e6}: {(s.PointsPerCpuSecond >= ExplorerBenchmarks.PointsPerCpuSecondTarget ? "met" : "not met")}; {s.PointsPerCpuSecondExcludingSetup / 1e6:F2} M without each execution's setup; after {s.WarmupSeconds:F0} s of warm-up{(s.CompiledWhileMeasured > 0 ? $", the JIT compiled {s.CompiledWhileMeasured} methods meanwhile" : "")})"));
        foreach (var x in s.Scenarios)
        {
            string first = x.FirstViolationMs is { } ms ? string.Create(inv, $"first violation at {ms:F1} ms") : "clean";
            w.WriteLine(string.Create(inv,
                $"    {x.Scenario,-44} {x.PointsPerCpuSecond / 1e6,6:F2} M/CPU s  {x.Schedules,7} schedules {x.Steps,9} points{(x.Complete ? "" : " (incomplete)")} {x.Runs,5} runs  setup {x.SetupShare * 100,3:F0} %  {first}{(x.AsExpected ? "" : $"  NOT AS EXPECTED: {x.Observed}")}"));
        }
        foreach (var err in s.Errors)
        {
            w.WriteLine($"    not measured: {err}");
        }
    }

    private static void WriteExplorer(ExplorerBenchmarkResult e, TextWriter w)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(inv, $"  {"scheduling points",-38} {e.PointsPerSecond / 1e6,12:F2} M/s  ({e.PointsPerCpuSecond / 1e6:F2} M per CPU second; {e.Scenario})  (target ≥ {ExplorerBenchmarks.PointsPerCpuSecondTarget / 1e6}: {(e.PointsPerCpuSecond >= ExplorerBenchmarks.PointsPerCpuSecondTarget ? "met" : "not met")})"));
        w.WriteLine(string.Create(inv, $"  {"DPOR reduction over plain dfs",-38} {e.DporReduction,12:F1} x  (target ≥ 10: {(e.DporReduction >= 10 ? "met" : "not met")}; {string.Join(", ", e.Dpor.Select(d => $"{d.Scenario} {d.PlainSchedules}/{d.DporSchedules}{(d.SameVerdict ? "" : " VERDICTS DIFFER")}"))})"));
        w.WriteLine(string.Create(inv, $"  {$"{e.Workers} workers against 1",-38} {e.Speedup,12:F2} x  (target ≥ 1.8: {(e.Speedup >= 1.8 ? "met" : "not met")}; median of pairs, best of each {e.SpeedupBestOf:F2} x; {e.SpeedupScenario}, identical results: {e.ParallelResultIdentical}{(e.JitCompilationsDuringSpeedup > 0 ? $"; the JIT compiled {e.JitCompilationsDuringSpeedup} methods meanwhile" : "")})"));
        w.WriteLine(string.Create(inv, $"  {$"  {e.Workers} independent explorations",-38} {e.IndependentSpeedup,12:F2} x  (throughput, same pairs, nothing coordinated: what the machine allows; the explorer gets {e.ParallelEfficiency:P0} of it)"));
        w.WriteLine(string.Create(inv, $"  {"allocated per execution",-38} {e.AllocatedBytesPerExecution / 1e3,12:F1} KB  ({e.SpeedupScenario}, one worker: {e.Gen0Collections} gen-0 collections, one per {e.BytesPerGen0Collection / 1e6:F1} MB, {e.GcPause.TotalMilliseconds:F1} ms paused)"));
    }
}

using System.Globalization;
using MmCheck.Conformance.Native;

namespace MmCheck.Bench;

/// <summary>The best of the native repeats (bench/native/mmbench.c); times in seconds, the CPU
/// figures the process's CPU time (user + system) over the same spans.</summary>
public sealed record NativeResult(long Pages, double TouchSeconds, double TouchCpuSeconds, double ForkSeconds, double MunmapSeconds,
    double ForkCpuSeconds, double MunmapCpuSeconds)
{
    /// <summary>The fastest of each figure over <paramref name="runs"/>.</summary>
    public static NativeResult Best(IReadOnlyList<NativeResult> runs) =>
        new(runs[0].Pages, runs.Min(r => r.TouchSeconds), runs.Min(r => r.TouchCpuSeconds),
            runs.Min(r => r.ForkSeconds), runs.Min(r => r.MunmapSeconds),
            runs.Min(r => r.ForkCpuSeconds), runs.Min(r => r.MunmapCpuSeconds));
}

/// <summary>
/// The kernel benchmark's syscall sequence — first-touch write faults, fork with everything touched,
/// munmap — run for real on this machine's kernel by bench/native/mmbench.c, which is built at run
/// time with gcc by the conformance oracle's builder.
/// </summary>
public static class NativeBenchmarks
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    /// <summary>native/mmbench.c next to the assembly (the project copies it there).</summary>
    public static string SourcePath => OracleBuild.NativeSourcePath("mmbench.c");

    /// <summary>Why the native side cannot run here (no gcc, not Linux), or null.</summary>
    public static string? Unavailable() =>
        !OperatingSystem.IsLinux() ? "not Linux"
        : OracleBuild.FindCompiler() is null ? $"{OracleBuild.Compiler} not found on PATH"
        : !File.Exists(SourcePath) ? $"{SourcePath} is missing"
        : null;

    /// <summary>Builds (once, cached by source hash) and runs mmbench; the best of
    /// <paramref name="repeats"/> for each figure.</summary>
    public static NativeResult Run(ulong bytes = 1UL << 30, int repeats = 3, string? workDir = null)
    {
        string binary = OracleBuild.EnsureBuilt(SourcePath, workDir);
        var (exit, stdout, stderr) = OracleBuild.RunToEnd(binary,
            [bytes.ToString(CultureInfo.InvariantCulture), Math.Max(1, repeats).ToString(CultureInfo.InvariantCulture)], Timeout);
        if (exit != 0)
        {
            throw new InvalidOperationException($"{binary} failed with exit code {exit}: {stderr.Trim()}");
        }
        return Parse(stdout);
    }

    /// <summary>Parses mmbench's "run PAGES TOUCH_NS TOUCH_CPU_NS FORK_NS MUNMAP_NS FORK_CPU_NS MUNMAP_CPU_NS" lines.</summary>
    internal static NativeResult Parse(string output)
    {
        var runs = new List<NativeResult>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = line.Split(' ');
            if (f.Length != 8 || f[0] != "run")
            {
                throw new InvalidOperationException($"mmbench: unexpected output line '{line}'");
            }
            double S(int i) => long.Parse(f[i], CultureInfo.InvariantCulture) / 1e9;
            runs.Add(new NativeResult(long.Parse(f[1], CultureInfo.InvariantCulture), S(2), S(3), S(4), S(5), S(6), S(7)));
        }
        if (runs.Count == 0)
        {
            throw new InvalidOperationException("mmbench printed no results");
        }
        return NativeResult.Best(runs);
    }
}

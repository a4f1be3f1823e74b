using System.CommandLine;
using MmCheck.Bench;

namespace MmCheck.Cli;

/// <summary><c>mmcheck bench</c>: the performance figures on this machine (docs/performance.md), from the
/// same library as bench/MmCheck.Benchmarks.</summary>
internal static class BenchCommand
{
    public static Command Create(CliIo io)
    {
        var cmd = new Command("bench", "Measure the model on this machine: fault, fork and munmap against the native kernel, memory per page, and the explorer's figures (built-in targets and the seed scenarios).");
        var json = new Option<bool>("--json") { Description = "machine-readable figures on stdout (one JSON object)" };
        var quick = new Option<bool>("--quick") { Description = "a quick check: 64 MiB, one repeat, the explorer on small bounds" };
        var bytes = new Option<string?>("--bytes") { Description = "size of the mapping faulted in, forked and unmapped, e.g. 1G, 256M, 4096 (default 1G; 64M with --quick)" };
        var repeats = new Option<int?>("--repeats") { Description = "each figure is the best of this many runs (default 3; 1 with --quick)" };
        var noNative = new Option<bool>("--no-native") { Description = "skip the native runs (no model/native ratios)" };
        var noExplorer = new Option<bool>("--no-explorer") { Description = "skip the explorer's figures" };
        var scenarios = new Option<string?>("--scenarios") { Description = $"explore the .litmus files of this directory for throughput (default {ScenarioBenchmarks.DefaultDirectory}, skipped when absent)" };
        var noScenarios = new Option<bool>("--no-scenarios") { Description = "skip the scenario files" };
        cmd.Add(json);
        cmd.Add(quick);
        cmd.Add(bytes);
        cmd.Add(repeats);
        cmd.Add(noNative);
        cmd.Add(noExplorer);
        cmd.Add(scenarios);
        cmd.Add(noScenarios);
        cmd.SetAction(p =>
        {
            var o = p.GetValue(quick) ? BenchOptions.Quick : new BenchOptions();
            if (p.GetValue(bytes) is { } b)
            {
                o = o with { Bytes = ParseBytes(b) };
            }
            if (p.GetValue(repeats) is { } r)
            {
                o = r is >= 1 and <= 100 ? o with { Repeats = r } : throw new UsageException($"--repeats must be from 1 to 100, not {r}");
            }
            o = o with { Native = !p.GetValue(noNative), Explorer = !p.GetValue(noExplorer), Scenarios = !p.GetValue(noScenarios) };
            if (p.GetValue(scenarios) is { } dir)
            {
                o = System.IO.Directory.Exists(dir) ? o with { ScenarioDirectory = dir } : throw new UsageException($"--scenarios: no directory '{dir}'");
            }
            bool asJson = p.GetValue(json);
            var report = BenchSuite.Run(o, asJson ? null : io.Err);
            if (asJson)
            {
                io.Out.WriteLine(BenchSuite.ToJson(report));
            }
            else
            {
                BenchSuite.WriteText(report, io.Out);
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>"1G", "256M", "64K", "4096": a whole number of pages, from 1 page to 64 GiB.</summary>
    internal static ulong ParseBytes(string s) =>
        BenchOptions.ParseBytes(s) ?? throw new UsageException($"bad --bytes '{s}' ({BenchOptions.BytesFormat})");
}

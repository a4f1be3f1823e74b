using System.CommandLine;
using MmCheck.Conformance;
using MmCheck.Litmus.Syntax;

namespace MmCheck.Cli;

/// <summary>
/// <c>mmcheck conform [PATH...] [--random N --seed S --mix broad|sharing] [--json]</c>: run deterministic scenarios (the
/// bundled ones when no PATH is given) and N random cases on the model and natively on this machine's
/// kernel, and compare every observation. Exit 0 when nothing disagreed, 1 on a disagreement, 2 on
/// bad usage or a scenario that does not parse or bind.
/// </summary>
internal static class ConformCommand
{
    public static Command Create(CliIo io)
    {
        var cmd = new Command("conform",
            "Run scenarios and random cases on the model and on this machine's kernel and compare (exit 0: all agree).");
        var paths = new Argument<string[]>("PATH") { Description = "scenario files or folders (default: the bundled scenarios)", Arity = ArgumentArity.ZeroOrMore };
        var random = new Option<int>("--random", "-n")
        {
            Description = "number of random cases to generate and compare after the scenarios",
            DefaultValueFactory = _ => 0,
        };
        var seed = new Option<int>("--seed")
        {
            Description = "seed of the random case generator",
            DefaultValueFactory = _ => 1,
        };
        var mix = new Option<string>("--mix")
        {
            Description = "which operations random cases favour: broad (every operation and error path) or sharing (fork, stores, MADV_FREE and the other advice that decide which frame a write gets)",
            DefaultValueFactory = _ => "broad",
        };
        var json = new Option<bool>("--json")
        {
            Description = "machine-readable result on stdout: cases, agreed, skipped, disagreements",
        };
        var noShrink = new Option<bool>("--no-shrink")
        {
            Description = "report disagreeing cases as they are, without shrinking them",
        };
        cmd.Add(paths);
        cmd.Add(random);
        cmd.Add(seed);
        cmd.Add(mix);
        cmd.Add(json);
        cmd.Add(noShrink);
        cmd.SetAction(p => Execute(io, p.GetValue(paths) ?? [], p.GetValue(random), p.GetValue(seed), p.GetValue(mix)!, p.GetValue(json), !p.GetValue(noShrink)));
        return cmd;
    }

    private static int Execute(CliIo io, string[] paths, int random, int seed, string mixName, bool json, bool shrink)
    {
        if (random < 0)
        {
            throw new UsageException($"--random must be 0 or more, not {random}");
        }
        var mix = mixName switch
        {
            "broad" => GeneratorMix.Broad,
            "sharing" => GeneratorMix.Sharing,
            _ => throw new UsageException($"--mix takes broad or sharing, not '{mixName}'"),
        };
        // Scenarios that cannot be read or do not parse are errors (exit 2), as for explore; the
        // others run. They are not bound: conformance lowers them itself, with its own observation
        // verbs (pagemap, smaps, …), and skips what it cannot lower, with the reason.
        bool scenarioErrors = false;
        var scenarios = new List<(string File, ScenarioAst Scenario)>();
        foreach (var file in ScenarioFiles.Collect(paths))
        {
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                io.Err.WriteLine($"mmcheck: cannot read '{file}': {e.Message}");
                scenarioErrors = true;
                continue;
            }
            var parsed = LitmusParser.Parse(text, file);
            if (parsed.HasErrors || parsed.Scenario is null)
            {
                io.Err.WriteLine(DiagnosticFormatter.Format(parsed.Diagnostics));
                scenarioErrors = true;
            }
            else
            {
                scenarios.Add((file, parsed.Scenario));
            }
        }
        int done = 0;
        int total = scenarios.Count + random;
        var options = new ConformanceOptions
        {
            Shrink = shrink,
            Generator = new GeneratorOptions { Mix = mix },
            Progress = io.Interactive && !json
                ? o => io.Err.Write($"\r{++done}/{total} {o.Verdict.ToString().ToLowerInvariant(),-9}")
                : null,
        };
        var report = Conformance.Conformance.Run(scenarios, random, seed, options);
        if (options.Progress is not null)
        {
            io.Err.Write("\r" + new string(' ', 40) + "\r");
        }
        if (json)
        {
            io.Out.WriteLine(report.ToJson(indented: false));
        }
        else
        {
            io.Out.Write(report.ToText());
        }
        if (report.Unavailable is not null)
        {
            io.Err.WriteLine($"mmcheck: every case skipped: {report.Unavailable}");
        }
        return scenarioErrors ? ExitCodes.Usage
            : report.Disagreements.Count > 0 ? ExitCodes.Mismatch
            : ExitCodes.Ok;
    }
}

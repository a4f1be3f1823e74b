using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MmCheck.Explorer;
using MmCheck.Litmus.Runner;
using Spectre.Console;

namespace MmCheck.Cli;

/// <summary><c>mmcheck explore PATH...</c>: explore each scenario and judge it against its expectations.</summary>
internal static class ExploreCommand
{
    public static Command Create(CliIo io)
    {
        var cmd = new Command("explore", "Explore each scenario's interleavings and check its expectations (exit 0: all as expected).");
        var paths = new Argument<string[]>("PATH") { Description = "scenario files or folders (default: the bundled scenarios)", Arity = ArgumentArity.ZeroOrMore };
        var opts = new ExploreOptions();
        var expected = new Option<string>("--expected")
        {
            Description = "golden files (NAME.litmus.expected): ignore, check (a difference fails), or update (write them)",
            DefaultValueFactory = _ => "ignore",
        };
        cmd.Add(paths);
        opts.AddTo(cmd);
        cmd.Add(expected);
        cmd.SetAction(p => Execute(io, p.GetValue(paths) ?? [], opts.Build(p), p.GetValue(opts.Json), p.GetValue(opts.Out), p.GetValue(expected)!));
        return cmd;
    }

    private static int Execute(CliIo io, string[] paths, ExplorationOptions options, bool json, string? outDir, string expectedMode)
    {
        if (expectedMode is not ("ignore" or "check" or "update"))
        {
            throw new UsageException($"--expected takes ignore, check or update, not '{expectedMode}'");
        }
        var files = ScenarioFiles.Collect(paths);
        int exit = ExitCodes.Ok;
        var rows = new List<string[]>();
        foreach (var file in files)
        {
            var loaded = ScenarioFiles.Load(file, io);
            if (loaded.Scenario is not { } scenario)
            {
                exit = ExitCodes.Usage;
                if (json)
                {
                    io.Out.WriteLine(new JsonObject { ["file"] = file, ["error"] = "does not parse or bind", ["ok"] = false }.ToJsonString());
                }
                else
                {
                    rows.Add([file, "-", "-", "error", "-", "-", "-", "no"]);
                }
                continue;
            }
            var result = Progress(io, json, scenario.Name, pr => ScenarioRunner.Explore(scenario, options, pr));
            bool ok = result.Ok;
            string goldenNote = "";
            if (expectedMode != "ignore")
            {
                string golden = Golden.Render(result);
                string gpath = Golden.PathFor(file);
                if (expectedMode == "update")
                {
                    File.WriteAllText(gpath, golden);
                    goldenNote = "written";
                }
                else if (!File.Exists(gpath))
                {
                    goldenNote = "no golden";
                }
                else if (File.ReadAllText(gpath).ReplaceLineEndings("\n") != golden)
                {
                    goldenNote = "golden differs";
                    ok = false;
                }
                else
                {
                    goldenNote = "golden ok";
                }
            }
            var traces = SaveTraces(result, file, outDir);
            if (!ok && exit == ExitCodes.Ok)
            {
                exit = ExitCodes.Mismatch;
            }
            if (json)
            {
                io.Out.WriteLine(Json(file, result, options, ok, traces, goldenNote).ToJsonString());
            }
            else
            {
                rows.Add(Row(file, result, ok, goldenNote));
                Details(io, result, traces, goldenNote == "golden differs" ? Golden.PathFor(file) : null);
            }
        }
        if (!json && rows.Count > 0)
        {
            Table(io, rows);
        }
        return exit;
    }

    private static ScenarioResult Progress(CliIo io, bool json, string name, Func<IProgress<ExplorationProgress>?, ScenarioResult> run)
    {
        if (!io.Interactive || json)
        {
            return run(null);
        }
        ScenarioResult? result = null;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(io.Err) });
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(name);
                task.IsIndeterminate = true;
                var reporter = new Progress<ExplorationProgress>(p =>
                    task.Description = $"{name}: {p.Phase}, {p.Schedules:N0} schedules, {p.Violations} violations");
                result = run(reporter);
                task.StopTask();
            });
        return result!;
    }

    /// <summary>The traces an exploration saved: one per violation, and the witness of the state
    /// that decided the condition (the one satisfying an exists or ~exists, the one failing a forall).</summary>
    private sealed record SavedTraces(List<(Violation Violation, string Path)> Violations, (Outcome State, string Path)? Witness);

    /// <summary>Writes every violation's trace and the condition's witness, under <paramref name="outDir"/>.</summary>
    private static SavedTraces SaveTraces(ScenarioResult r, string file, string? outDir)
    {
        var saved = new List<(Violation, string)>();
        string dir = outDir ?? "mmcheck-traces";
        // Two findings of one invariant (a lock assertion in two functions) get a file each.
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var v in r.Exploration.Violations)
        {
            int n = seen[v.Invariant] = seen.GetValueOrDefault(v.Invariant) + 1;
            saved.Add((v, ScenarioFiles.SaveTrace(dir, file, v.Trace, n == 1 ? v.Invariant : $"{v.Invariant}.{n}")));
        }
        (Outcome, string)? witness = r.Exploration.ConditionVerdict is { Deciding: { } state, Witness: { } trace }
            ? (state, ScenarioFiles.SaveTrace(dir, file, trace, "condition"))
            : null;
        return new SavedTraces(saved, witness);
    }

    private static void Details(CliIo io, ScenarioResult r, SavedTraces traces, string? goldenDiffers)
    {
        var s = r.Scenario;
        io.Out.WriteLine($"{s.Name}: {r.States.Count} state{(r.States.Count == 1 ? "" : "s")}" +
                         (r.Observed is { } o ? $", condition {(r.ConditionHolds == true ? "Ok" : "No")} ({o})" : ""));
        foreach (var (outcome, count, sat) in r.States)
        {
            io.Out.WriteLine($"  {outcome}{(sat == true ? "  (*)" : "")}   [{count.ToString("N0", CultureInfo.InvariantCulture)}]");
        }
        if (traces.Witness is { } w)
        {
            bool satisfies = r.States.Any(x => x.Outcome.Equals(w.State) && x.Satisfies == true);
            io.Out.WriteLine($"  condition {(r.ConditionHolds == true ? "Ok" : "No")} by {w.State}, which {(satisfies ? "satisfies" : "fails")} the proposition");
            io.Out.WriteLine($"    trace: {w.Path}   (mmcheck replay {w.Path})");
        }
        foreach (var (v, path) in traces.Violations)
        {
            io.Out.WriteLine($"  violation {v.Invariant}: {v.Message} ({v.Steps} steps)");
            io.Out.WriteLine($"    trace: {path}   (mmcheck replay {path})");
        }
        foreach (var e in r.Errors)
        {
            io.Out.WriteLine($"  error: {e}");
        }
        foreach (var c in r.Checks.Where(c => !c.Met))
        {
            io.Out.WriteLine($"  expected {c.Expectation}: {c.Detail}");
        }
        foreach (var u in r.UnexpectedViolations)
        {
            io.Out.WriteLine($"  unexpected violation: {u} (add 'expect violation {u}' if it is what the scenario shows)");
        }
        if (goldenDiffers is not null)
        {
            io.Out.WriteLine($"  the result differs from {goldenDiffers}:");
            foreach (var line in Golden.Render(r).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                io.Out.WriteLine("    " + line);
            }
        }
        foreach (var n in r.Exploration.Notes)
        {
            io.Out.WriteLine($"  note: {n}");
        }
    }

    private static string[] Row(string file, ScenarioResult r, bool ok, string golden) =>
    [
        file,
        r.Scenario.KernelName,
        r.Expected,
        r.ObservedText,
        r.Exploration.Schedules.ToString("N0", CultureInfo.InvariantCulture),
        r.Complete ? "yes" : "no",
        Ms(r.Exploration.Elapsed),
        (ok ? "yes" : "NO") + (golden.Length > 0 ? $" ({golden})" : ""),
    ];

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";

    private static void Table(CliIo io, List<string[]> rows)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(io.Out),
            Ansi = io.Interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = io.Interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!io.Interactive)
        {
            console.Profile.Width = 200;
        }
        var table = new Table().Border(io.Interactive ? TableBorder.Rounded : TableBorder.Ascii);
        foreach (var h in new[] { "scenario", "kernel", "expected", "observed", "schedules", "complete", "time", "ok" })
        {
            table.AddColumn(h);
        }
        foreach (var r in rows)
        {
            table.AddRow(r.Select(Markup.Escape).ToArray());
        }
        console.Write(table);
    }

    private static JsonObject Json(string file, ScenarioResult r, ExplorationOptions o, bool ok, SavedTraces traces, string golden)
    {
        var e = r.Exploration;
        var violations = new JsonArray();
        foreach (var (v, path) in traces.Violations)
        {
            violations.Add(new JsonObject
            {
                ["invariant"] = v.Invariant,
                ["message"] = v.Message,
                ["trace"] = path,
                ["steps"] = v.Steps,
            });
        }
        var states = new JsonArray();
        foreach (var (outcome, count, sat) in r.States)
        {
            var values = new JsonObject();
            foreach (var kv in outcome.Values)
            {
                values[kv.Key] = kv.Value;
            }
            states.Add(new JsonObject { ["values"] = values, ["count"] = count, ["satisfies"] = sat });
        }
        var obj = new JsonObject
        {
            ["scenario"] = r.Scenario.Name,
            ["file"] = file,
            ["kernel"] = r.Scenario.KernelName,
            ["variants"] = new JsonArray(r.Scenario.Config.Variants.Describe().Select(v => (JsonNode)v!).ToArray()),
            ["strategy"] = o.Strategy.ToString().ToLowerInvariant(),
            ["seed"] = o.Seed,
            ["workers"] = o.Workers,
            ["complete"] = r.Complete,
            ["schedules"] = e.Schedules,
            ["elapsed_ms"] = Math.Round(e.Elapsed.TotalMilliseconds, 1),
            ["first_violation_ms"] = e.FirstViolationAt is { } fv ? Math.Round(fv.TotalMilliseconds, 1) : null,
            ["expected"] = r.Expected,
            ["observed"] = r.ObservedText,
            ["condition"] = r.Scenario.Condition?.ToString(),
            ["condition_holds"] = r.ConditionHolds,
            ["witness"] = traces.Witness is { } w
                ? new JsonObject { ["state"] = w.State.ToString(), ["trace"] = w.Path }
                : null,
            ["ok"] = ok,
            ["states"] = states,
            ["violations"] = violations,
            ["errors"] = new JsonArray(r.Errors.Select(x => (JsonNode)x!).ToArray()),
            ["notes"] = new JsonArray(e.Notes.Select(x => (JsonNode)x!).ToArray()),
        };
        if (golden.Length > 0)
        {
            obj["golden"] = golden;
        }
        return obj;
    }

    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}

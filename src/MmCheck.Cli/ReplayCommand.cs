using System.CommandLine;
using MmCheck.Explorer;
using MmCheck.Litmus.Runner;

namespace MmCheck.Cli;

/// <summary><c>mmcheck replay TRACE</c>: re-run a saved schedule step by step.</summary>
internal static class ReplayCommand
{
    public static Command Create(CliIo io)
    {
        var cmd = new Command("replay", "Re-run a trace file step by step (exit 1 if the model no longer follows it).");
        var tracePath = new Argument<string>("TRACE") { Description = "a trace file written by explore or run" };
        var scenarioPath = new Option<string?>("--scenario") { Description = "the scenario file (default: the one recorded in the trace, or the bundled scenario of that name)" };
        var json = new Option<bool>("--json") { Description = "the replay as JSON" };
        cmd.Add(tracePath);
        cmd.Add(scenarioPath);
        cmd.Add(json);
        cmd.SetAction(p => Execute(io, p.GetValue(tracePath)!, p.GetValue(scenarioPath), p.GetValue(json)));
        return cmd;
    }

    private static int Execute(CliIo io, string tracePath, string? scenarioPath, bool json)
    {
        if (!File.Exists(tracePath))
        {
            throw new UsageException($"no such trace file: '{tracePath}'");
        }
        Trace trace;
        try
        {
            trace = Trace.Load(tracePath);
        }
        catch (FormatException e)
        {
            throw new UsageException($"{tracePath}: {e.Message}");
        }
        string? file = scenarioPath
            ?? (trace.Settings.TryGetValue(ScenarioFiles.SourceSetting, out var src) && File.Exists(src) ? src : null)
            ?? ScenarioFiles.FindByName(trace.Scenario);
        if (file is null)
        {
            throw new UsageException($"cannot find scenario '{trace.Scenario}'; give it with --scenario FILE");
        }
        var loaded = ScenarioFiles.Load(file, io);
        if (loaded.Scenario is not { } scenario)
        {
            return ExitCodes.Usage;
        }
        if (scenario.Name != trace.Scenario)
        {
            throw new UsageException($"the trace is of scenario '{trace.Scenario}', but {file} is '{scenario.Name}'");
        }
        var r = Replayer.Replay(new ScenarioTarget(scenario), trace);
        if (json)
        {
            var obj = new System.Text.Json.Nodes.JsonObject
            {
                ["scenario"] = scenario.Name,
                ["trace"] = tracePath,
                ["fits"] = r.Fits,
                ["mismatch"] = r.Mismatch?.ToString(),
                ["completed"] = r.Completed,
                ["findings"] = new System.Text.Json.Nodes.JsonArray(r.Findings.Select(f => (System.Text.Json.Nodes.JsonNode)f.ToString()!).ToArray()),
                ["outcome"] = r.Outcome?.ToString(),
                ["log"] = TracePrinter.Print(r.Run),
            };
            io.Out.WriteLine(obj.ToJsonString());
        }
        else
        {
            io.Out.Write(TracePrinter.Print(r.Run with { Title = r.Run.Title ?? $"{scenario.Name}: replay of {tracePath}" }));
            foreach (var f in r.PreludeFindings)
            {
                io.Out.WriteLine($"prelude: {f}");
            }
            foreach (var f in r.Findings)
            {
                io.Out.WriteLine($"finding: {f}");
            }
            if (r.Mismatch is { } m)
            {
                io.Out.WriteLine($"the model no longer follows this trace: {m}");
            }
            else if (trace.Invariant is { } inv)
            {
                bool again = r.Findings.Any(f => f.Invariant == inv);
                io.Out.WriteLine(again ? $"replayed: {inv} again" : $"replayed, but {inv} did not fire this time");
                return again ? ExitCodes.Ok : ExitCodes.Mismatch;
            }
            else if (trace.Outcome is { } state)
            {
                // A witness: the final state it was saved for.
                bool again = r.Outcome?.ToString() == state;
                io.Out.WriteLine(again ? $"replayed: {state} again" : $"replayed, but it ended in {r.Outcome?.ToString() ?? "no final state"}, not {state}");
                return again ? ExitCodes.Ok : ExitCodes.Mismatch;
            }
        }
        return r.Fits ? ExitCodes.Ok : ExitCodes.Mismatch;
    }
}

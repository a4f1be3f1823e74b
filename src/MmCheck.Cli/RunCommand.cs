using System.CommandLine;
using MmCheck.Explorer;
using MmCheck.Litmus.Runner;

namespace MmCheck.Cli;

/// <summary><c>mmcheck run FILE</c>: one schedule, with its readable step log.</summary>
internal static class RunCommand
{
    public static Command Create(CliIo io)
    {
        var cmd = new Command("run", "Run one schedule of a scenario and print its step log.");
        var file = new Argument<string>("FILE") { Description = "the scenario" };
        var schedule = new Option<long>("--schedule")
        {
            Description = "0: the default schedule (each thread runs until it blocks or ends, lowest first); N > 0: the random schedule with seed N",
            DefaultValueFactory = _ => 0,
        };
        var outDir = new Option<string?>("--out", "-o") { Description = "also save the schedule as a trace file in this directory" };
        cmd.Add(file);
        cmd.Add(schedule);
        cmd.Add(outDir);
        cmd.SetAction(p => Execute(io, p.GetValue(file)!, p.GetValue(schedule), p.GetValue(outDir)));
        return cmd;
    }

    private static int Execute(CliIo io, string file, long schedule, string? outDir)
    {
        if (schedule < 0)
        {
            throw new UsageException("--schedule cannot be negative");
        }
        ScenarioFiles.Collect([file]);
        var loaded = ScenarioFiles.Load(file, io);
        if (loaded.Scenario is not { } scenario)
        {
            return ExitCodes.Usage;
        }
        var options = new ExplorationOptions
        {
            Strategy = schedule == 0 ? Strategy.Dfs : Strategy.Random,
            Seed = schedule,
            MaxSchedules = 1,
            Minimize = false,
        };
        var result = ScenarioRunner.Explore(scenario, options);
        var trace = result.Exploration.Violations.FirstOrDefault()?.Trace ?? result.Exploration.OutcomeWitnesses.Values.FirstOrDefault();
        foreach (var e in result.Errors)
        {
            io.Out.WriteLine($"error: {e}");
        }
        if (trace is null)
        {
            io.Out.WriteLine("the schedule did not complete: " + string.Join("; ", result.Exploration.Notes));
            return ExitCodes.Mismatch;
        }
        var replay = Replayer.Replay(new ScenarioTarget(scenario), trace);
        io.Out.Write(TracePrinter.Print(replay.Run with { Title = $"{scenario.Name}: schedule {(schedule == 0 ? "default" : "seed " + schedule)}" }));
        foreach (var v in result.Exploration.Violations)
        {
            io.Out.WriteLine($"violation {v.Invariant}: {v.Message}");
        }
        if (outDir is not null)
        {
            io.Out.WriteLine("trace: " + ScenarioFiles.SaveTrace(outDir, file, trace, schedule == 0 ? "default" : "seed" + schedule));
        }
        return result.Exploration.Violations.Count == 0 && result.Errors.Count == 0 ? ExitCodes.Ok : ExitCodes.Mismatch;
    }
}

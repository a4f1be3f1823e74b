using System.CommandLine;
using MmCheck.Explorer;

namespace MmCheck.Cli;

internal static class Program
{
    private static int Main(string[] args) => Cli.Run(args, Console.Out, Console.Error, interactive: !Console.IsOutputRedirected);
}

/// <summary>Exit codes, as design.md's CLI contract gives them.</summary>
internal static class ExitCodes
{
    /// <summary>Every observation matched its expectation.</summary>
    public const int Ok = 0;
    /// <summary>Some observation did not (or a replay diverged, or a conformance case disagreed).</summary>
    public const int Mismatch = 1;
    /// <summary>Bad usage or a scenario that does not parse or bind.</summary>
    public const int Usage = 2;
    /// <summary>A defect in MmCheck itself.</summary>
    public const int Internal = 3;
}

/// <summary>The mmcheck command line; <see cref="Run"/> is testable with any writers.</summary>
internal static class Cli
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool interactive = false)
    {
        var io = new CliIo(stdout, stderr, interactive);
        var root = new RootCommand("MmCheck: explore Linux memory-management scenarios on a faithful model of mm/.");
        root.Add(ExploreCommand.Create(io));
        root.Add(RunCommand.Create(io));
        root.Add(ReplayCommand.Create(io));
        root.Add(ConformCommand.Create(io));
        root.Add(ListCommand.Create(io));
        root.Add(BenchCommand.Create(io));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                stderr.WriteLine($"mmcheck: {e.Message}");
            }
            stderr.WriteLine("Try 'mmcheck --help'.");
            return ExitCodes.Usage;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"mmcheck: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            stderr.WriteLine($"mmcheck: internal error (a defect in MmCheck, not in your scenario): {e.GetType().Name}: {e.Message}");
            if (Environment.GetEnvironmentVariable("MMCHECK_DEBUG") is "1")
            {
                stderr.WriteLine(e);
            }
            else
            {
                stderr.WriteLine("Set MMCHECK_DEBUG=1 for the stack trace, and please report it with the scenario.");
            }
            return ExitCodes.Internal;
        }
    }
}

/// <summary>Bad arguments found after parsing (a missing file, a bad duration).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Where output goes, and whether a person is watching (progress bars, colours).</summary>
internal sealed record CliIo(TextWriter Out, TextWriter Err, bool Interactive);

/// <summary>The exploration options every exploring command shares.</summary>
internal sealed class ExploreOptions
{
    public readonly Option<string> Strategy = new("--strategy", "-s")
    {
        Description = "portfolio (random and PCT schedules, then exhaustive dfs), dfs, pct, random",
        DefaultValueFactory = _ => "portfolio",
    };

    public readonly Option<long?> MaxSchedules = new("--max-schedules")
    {
        Description = "most schedules to run (default: unbounded for dfs, 1000 for pct and random)",
    };

    public readonly Option<int?> MaxPreemptions = new("--max-preemptions")
    {
        Description = "preemption bound for dfs (plain bounded dfs, without partial-order reduction)",
    };

    public readonly Option<bool> NoReduction = new("--no-reduction")
    {
        Description = "dfs without partial-order reduction: every interleaving, to check what DPOR proved (far more schedules)",
    };

    public readonly Option<string?> TimeLimit = new("--time-limit")
    {
        Description = "wall-clock budget, e.g. 30s, 5m, 500ms (a result cut by it is marked incomplete)",
    };

    public readonly Option<long> Seed = new("--seed")
    {
        Description = "seed for random and PCT schedules",
        DefaultValueFactory = _ => 1,
    };

    public readonly Option<int> Workers = new("--workers", "-j")
    {
        Description = "parallel workers (the result does not depend on it)",
        DefaultValueFactory = _ => 1,
    };

    public readonly Option<int> PctDepth = new("--pct-depth")
    {
        Description = "PCT bug depth d",
        DefaultValueFactory = _ => 3,
    };

    public readonly Option<bool> Json = new("--json")
    {
        Description = "machine-readable results on stdout (one JSON object per line)",
    };

    public readonly Option<string?> Out = new("--out", "-o")
    {
        Description = "directory for traces and reports (default for traces: ./mmcheck-traces)",
    };

    public void AddTo(Command c)
    {
        c.Add(Strategy);
        c.Add(MaxSchedules);
        c.Add(MaxPreemptions);
        c.Add(NoReduction);
        c.Add(TimeLimit);
        c.Add(Seed);
        c.Add(Workers);
        c.Add(PctDepth);
        c.Add(Json);
        c.Add(Out);
    }

    public ExplorationOptions Build(ParseResult p)
    {
        var strategy = p.GetValue(Strategy) switch
        {
            "portfolio" => Explorer.Strategy.Portfolio,
            "dfs" => Explorer.Strategy.Dfs,
            "pct" => Explorer.Strategy.Pct,
            "random" => Explorer.Strategy.Random,
            var s => throw new UsageException($"unknown strategy '{s}' (portfolio, dfs, pct, random)"),
        };
        int workers = p.GetValue(Workers);
        if (workers < 1 || workers > 256)
        {
            throw new UsageException($"--workers must be from 1 to 256, not {workers}");
        }
        if (p.GetValue(MaxSchedules) is < 1)
        {
            throw new UsageException("--max-schedules must be at least 1");
        }
        if (p.GetValue(MaxPreemptions) is < 0)
        {
            throw new UsageException("--max-preemptions cannot be negative");
        }
        if (p.GetValue(PctDepth) is < 1 or > 64)
        {
            throw new UsageException("--pct-depth must be from 1 to 64");
        }
        bool noReduction = p.GetValue(NoReduction);
        if (noReduction && strategy is not (Explorer.Strategy.Dfs or Explorer.Strategy.Portfolio))
        {
            throw new UsageException("--no-reduction applies to dfs and the portfolio's dfs phase only");
        }
        return new ExplorationOptions
        {
            Strategy = strategy,
            MaxSchedules = p.GetValue(MaxSchedules),
            MaxPreemptions = p.GetValue(MaxPreemptions),
            Dpor = !noReduction,
            TimeLimit = p.GetValue(TimeLimit) is { } t ? Durations.Parse(t) : null,
            Seed = p.GetValue(Seed),
            Workers = workers,
            PctDepth = p.GetValue(PctDepth),
        };
    }
}

internal static class Durations
{
    /// <summary>"90", "90s", "2m", "1h", "500ms".</summary>
    public static TimeSpan Parse(string s)
    {
        string t = s.Trim();
        (string digits, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
            : t.EndsWith('s') ? (t[..^1], 1)
            : t.EndsWith('m') ? (t[..^1], 60)
            : t.EndsWith('h') ? (t[..^1], 3600)
            : (t, 1);
        if (!double.TryParse(digits, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) ||
            v <= 0 || double.IsInfinity(v) || v * scale > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            throw new UsageException($"bad duration '{s}' (examples: 30s, 5m, 500ms)");
        }
        return TimeSpan.FromSeconds(v * scale);
    }
}

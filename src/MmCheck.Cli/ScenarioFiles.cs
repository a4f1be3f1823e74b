using MmCheck.Explorer;
using MmCheck.Litmus.Runner;

namespace MmCheck.Cli;

/// <summary>Finding scenario files, the bundled ones, and where traces go.</summary>
internal static class ScenarioFiles
{
    public const string Extension = ".litmus";

    /// <summary>The bundled scenarios: <c>scenarios/</c> of the MmCheck checkout this program runs
    /// from (or the current directory is in).</summary>
    public static string? BundledDirectory()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "MmCheck.slnx")) && Directory.Exists(Path.Combine(d.FullName, "scenarios")))
                {
                    return Path.Combine(d.FullName, "scenarios");
                }
            }
        }
        return null;
    }

    /// <summary>The scenario files named by <paramref name="paths"/> (files, or folders searched
    /// recursively), in ordinal order; the bundled ones when none is given.</summary>
    public static List<string> Collect(IReadOnlyList<string> paths)
    {
        var list = new List<string>();
        if (paths.Count == 0)
        {
            var bundled = BundledDirectory() ?? throw new UsageException("no scenario given, and no bundled scenarios/ folder found");
            paths = [bundled];
        }
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
            {
                var found = Directory.EnumerateFiles(p, "*" + Extension, SearchOption.AllDirectories).ToList();
                if (found.Count == 0)
                {
                    throw new UsageException($"no *{Extension} files in '{p}'");
                }
                list.AddRange(found);
            }
            else if (File.Exists(p))
            {
                list.Add(p);
            }
            else if (p.StartsWith('-'))
            {
                throw new UsageException($"unknown option '{p}' (see 'mmcheck --help')");
            }
            else
            {
                throw new UsageException($"no such file or directory: '{p}'");
            }
        }
        list = list.Select(Relative).Distinct(StringComparer.Ordinal).ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private static string Relative(string p)
    {
        string rel = Path.GetRelativePath(Directory.GetCurrentDirectory(), p);
        return rel.StartsWith("..", StringComparison.Ordinal) ? Path.GetFullPath(p) : rel;
    }

    /// <summary>A scenario file by its MM name among the bundled scenarios (for replaying a trace).</summary>
    public static string? FindByName(string name)
    {
        if (BundledDirectory() is not { } dir)
        {
            return null;
        }
        foreach (var f in Directory.EnumerateFiles(dir, "*" + Extension, SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var reader = new StreamReader(f);
            if (reader.ReadLine()?.Trim() == "MM " + name)
            {
                return f;
            }
        }
        return null;
    }

    /// <summary>Saves a trace beside the others, with the scenario file recorded so replay finds it.</summary>
    public static string SaveTrace(string dir, string scenarioPath, Trace trace, string what)
    {
        Directory.CreateDirectory(dir);
        string safe = string.Concat((trace.Scenario + "." + what).Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        string path = Path.Combine(dir, safe + ".trace.json");
        WithSource(trace, scenarioPath).Save(path);
        return path;
    }

    public const string SourceSetting = "source";

    private static Trace WithSource(Trace t, string scenarioPath)
    {
        var settings = new Dictionary<string, string>(t.Settings) { [SourceSetting] = Path.GetFullPath(scenarioPath) };
        return new Trace
        {
            Format = t.Format,
            Scenario = t.Scenario,
            Strategy = t.Strategy,
            Seed = t.Seed,
            Settings = settings,
            Invariant = t.Invariant,
            Message = t.Message,
            Outcome = t.Outcome,
            Threads = t.Threads,
            Steps = t.Steps,
            Preemptions = t.Preemptions,
            Prelude = t.Prelude,
        };
    }

    /// <summary>Loads and reports a scenario's diagnostics; null when it has errors.</summary>
    public static LoadedScenario Load(string path, CliIo io)
    {
        var loaded = ScenarioRunner.Load(path);
        if (loaded.Diagnostics.Count > 0)
        {
            io.Err.WriteLine(Litmus.Syntax.DiagnosticFormatter.Format(loaded.Diagnostics));
        }
        return loaded;
    }
}

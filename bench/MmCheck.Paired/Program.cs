using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;

namespace MmCheck.Paired;

/// <summary>
/// <c>MmCheck.Paired --a DIR --b DIR [--warmup S] [--rounds N] [FILE.litmus | fvm:N]...</c>: each
/// build directory (a build's output, e.g. src/MmCheck.Cli/bin/Release/net10.0) is loaded into its
/// own <see cref="AssemblyLoadContext"/>; every round explores each scenario once with A and once
/// with B (which goes first alternates), DFS with DPOR on one worker, and compares the two
/// explorations' CPU time. The builds are driven through the public API by reflection, so any two
/// commits compare.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        string? a = null, b = null;
        double warmup = 10;
        int rounds = 40;
        var files = new List<string>();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--a": a = Value(); break;
                    case "--b": b = Value(); break;
                    case "--warmup": warmup = Number(Value(), "--warmup"); break;
                    case "--rounds": rounds = (int)Number(Value(), "--rounds"); break;
                    case "-h" or "--help":
                        Console.WriteLine("usage: MmCheck.Paired --a DIR --b DIR [--warmup SECONDS] [--rounds N] [FILE.litmus | fvm:N]...");
                        return 0;
                    default:
                        if (args[i].StartsWith('-'))
                        {
                            return Usage($"unknown option {args[i]}");
                        }
                        files.Add(args[i]);
                        break;
                }
            }
            if (a is null || b is null)
            {
                throw new UsageException("both --a and --b are needed");
            }
            if (rounds < 1)
            {
                throw new UsageException("--rounds must be at least 1");
            }
            if (files.Count == 0)
            {
                if (!Directory.Exists("scenarios/seeds"))
                {
                    throw new UsageException("no scenarios given, and no scenarios/seeds here (run from the repository root)");
                }
                files.AddRange(Directory.EnumerateFiles("scenarios/seeds", "*.litmus").Order(StringComparer.Ordinal));
            }
            var builds = new[] { new Build(a, files), new Build(b, files) };
            Run(builds, files, warmup, rounds);
            return 0;
        }
        catch (UsageException e)
        {
            return Usage(e.Message);
        }
    }

    private static void Run(Build[] builds, List<string> files, double warmup, int rounds)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < warmup)
        {
            for (int f = 0; f < files.Count; f++)
            {
                builds[0].Explore(f);
                builds[1].Explore(f);
            }
        }
        var rate = new[] { new List<double>(), new List<double>() };
        var ratio = new List<double>();
        var fileRatio = files.Select(_ => new List<double>()).ToArray();
        var steps = new long[2, files.Count];
        for (int r = 0; r < rounds; r++)
        {
            var cpu = new double[2];
            var pts = new long[2];
            for (int f = 0; f < files.Count; f++)
            {
                var one = new (long Steps, double Cpu)[2];
                int first = (r + f) % 2;
                one[first] = builds[first].Explore(f);
                one[1 - first] = builds[1 - first].Explore(f);
                for (int k = 0; k < 2; k++)
                {
                    cpu[k] += one[k].Cpu;
                    pts[k] += one[k].Steps;
                    steps[k, f] = one[k].Steps;
                }
                fileRatio[f].Add(one[0].Cpu / one[1].Cpu);
            }
            // Points per CPU millisecond / 1,000: millions per CPU second.
            rate[0].Add(pts[0] / cpu[0] / 1e3);
            rate[1].Add(pts[1] / cpu[1] / 1e3);
            ratio.Add(cpu[0] / cpu[1]);
        }
        var inv = CultureInfo.InvariantCulture;
        for (int k = 0; k < 2; k++)
        {
            Console.WriteLine(string.Format(inv, "{0}: {1:F3} M points per CPU second (median of {2} rounds; quartiles {3:F3}-{4:F3})",
                k == 0 ? "A" : "B", Quantile(rate[k], .5), rounds, Quantile(rate[k], .25), Quantile(rate[k], .75)));
        }
        Console.WriteLine(string.Format(inv, "B against A: {0:F3}x as fast (median of the rounds' CPU-time ratios; quartiles {1:F3}-{2:F3})",
            Quantile(ratio, .5), Quantile(ratio, .25), Quantile(ratio, .75)));
        for (int f = 0; f < files.Count; f++)
        {
            string same = steps[0, f] == steps[1, f] ? $"{steps[0, f]} steps" : $"steps differ: A {steps[0, f]}, B {steps[1, f]}";
            Console.WriteLine(string.Format(inv, "  {0,-48} {1:F3}x  ({2})", Path.GetFileNameWithoutExtension(files[f]), Quantile(fileRatio[f], .5), same));
        }
    }

    private static double Quantile(List<double> values, double q)
    {
        var s = values.Order().ToList();
        return s[(int)Math.Round(q * (s.Count - 1))];
    }

    private static double Number(string s, string option) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0
            ? v : throw new UsageException($"{option}: '{s}' is not a number");

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"MmCheck.Paired: {message}");
        Console.Error.WriteLine("usage: MmCheck.Paired --a DIR --b DIR [--warmup SECONDS] [--rounds N] [FILE.litmus | fvm:N]...");
        return 2;
    }
}

internal sealed class UsageException(string message) : Exception(message);

/// <summary>One build, loaded into its own context, with its targets made once.</summary>
internal sealed class Build
{
    private readonly object[] _targets;
    private readonly object[] _options;
    private readonly MethodInfo _explore;
    private readonly PropertyInfo _steps;
    private readonly PropertyInfo _cpu;

    public Build(string dir, IReadOnlyList<string> files)
    {
        if (!File.Exists(Path.Combine(dir, "MmCheck.Explorer.dll")) || !File.Exists(Path.Combine(dir, "MmCheck.Litmus.dll")))
        {
            throw new UsageException($"{dir}: no MmCheck.Explorer.dll and MmCheck.Litmus.dll (a build's output directory is needed)");
        }
        var alc = new DirectoryContext(Path.GetFullPath(dir));
        var explorer = alc.LoadFromAssemblyName(new AssemblyName("MmCheck.Explorer"));
        var litmus = alc.LoadFromAssemblyName(new AssemblyName("MmCheck.Litmus"));
        var optionsType = Type(explorer, "MmCheck.Explorer.ExplorationOptions");
        var resultType = Type(explorer, "MmCheck.Explorer.ExplorationResult");
        _explore = Type(explorer, "MmCheck.Explorer.Explorer").GetMethods()
            .Single(m => m.Name == "Explore" && m.GetParameters().Length == 3);
        _steps = resultType.GetProperty("Steps")!;
        _cpu = resultType.GetProperty("CpuTime")!;
        var runner = Type(litmus, "MmCheck.Litmus.Runner.ScenarioRunner");
        var load = runner.GetMethod("Load", [typeof(string)])!;
        var targetType = Type(litmus, "MmCheck.Litmus.Runner.ScenarioTarget");
        var fvm = Type(explorer, "MmCheck.Explorer.BenchmarkTargets").GetMethod("FaultVsMunmap")!;
        _targets = new object[files.Count];
        _options = new object[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            string f = files[i];
            bool builtIn = f.StartsWith("fvm:", StringComparison.Ordinal);
            if (builtIn)
            {
                if (!int.TryParse(f.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int pages) || pages < 1)
                {
                    throw new UsageException($"{f}: fvm:N needs a number of pages");
                }
                _targets[i] = fvm.Invoke(null, [pages])!;
            }
            else
            {
                if (!File.Exists(f))
                {
                    throw new UsageException($"{f}: no such file");
                }
                var loaded = load.Invoke(null, [f])!;
                var scenario = loaded.GetType().GetProperty("Scenario")!.GetValue(loaded)
                    ?? throw new UsageException($"{f}: does not bind (run `mmcheck check {f}`)");
                _targets[i] = Activator.CreateInstance(targetType, scenario)!;
            }
            var o = Activator.CreateInstance(optionsType)!;
            Set(o, "Strategy", Enum.Parse(optionsType.GetProperty("Strategy")!.PropertyType, "Dfs"));
            Set(o, "Workers", 1);
            Set(o, "Minimize", false);
            if (builtIn)
            {
                // As the explorer bench: the first 1,500 schedules.
                Set(o, "MaxSchedules", 1500L);
            }
            _options[i] = o;
        }
    }

    public (long Steps, double CpuMs) Explore(int i)
    {
        var r = _explore.Invoke(null, [_targets[i], _options[i], null])!;
        return ((long)_steps.GetValue(r)!, ((TimeSpan)_cpu.GetValue(r)!).TotalMilliseconds);
    }

    private static Type Type(Assembly a, string name) =>
        a.GetType(name) ?? throw new UsageException($"{a.Location}: no type {name}");

    private static void Set(object o, string property, object value) => o.GetType().GetProperty(property)!.SetValue(o, value);
}

/// <summary>Resolves a build's own assemblies from its directory, the framework's from the default context.</summary>
internal sealed class DirectoryContext(string dir) : AssemblyLoadContext(isCollectible: false)
{
    protected override Assembly? Load(AssemblyName name)
    {
        string path = System.IO.Path.Combine(dir, name.Name + ".dll");
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }
}

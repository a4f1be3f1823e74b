using MmCheck.Explorer;
using MmCheck.Litmus.Binding;
using MmCheck.Litmus.Runner;
using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Tests;

/// <summary>
/// Every bundled scenario, explored with the default strategy and seed, must match its golden
/// (<c>NAME.litmus.expected</c>) and meet its own expectations. Goldens are written by
/// <c>mmcheck explore --expected update</c> and checked by hand against the kernel's semantics.
/// </summary>
public class GoldenTests
{
    public static string ScenariosDirectory
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "MmCheck.slnx")))
                {
                    return Path.Combine(d.FullName, "scenarios");
                }
            }
            throw new InvalidOperationException("not inside an MmCheck checkout");
        }
    }

    public static TheoryData<string> Scenarios()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(ScenariosDirectory, "*.litmus", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(ScenariosDirectory, f));
        }
        return data;
    }

    /// <summary>A bundled scenario by its path under <see cref="ScenariosDirectory"/>, bound.</summary>
    public static BoundScenario LoadBundled(string relative)
    {
        var loaded = ScenarioRunner.Load(Path.Combine(ScenariosDirectory, relative));
        Assert.True(loaded.Scenario is not null, DiagnosticFormatter.Format(loaded.Diagnostics));
        return loaded.Scenario!;
    }

    /// <summary>Everything an exploration reports, for comparing two.</summary>
    public static string Summary(ExplorationResult r) =>
        $"{r.Complete} {r.Schedules} {r.Steps} {r.Redundant}\n" +
        string.Join("\n", r.Outcomes.Select(o => $"{o.Outcome} x{o.Count}")) + "\n" +
        string.Join("\n", r.Violations.Select(v => $"{v.Invariant}: {v.Message} ({v.Steps}) :: {v.Trace.ToJson()}"));

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Bundled_scenario_matches_its_golden(string relative)
    {
        string path = Path.Combine(ScenariosDirectory, relative);
        var result = ScenarioRunner.Explore(LoadBundled(relative), new ExplorationOptions { Seed = 1 });
        string golden = Golden.PathFor(path);
        Assert.True(File.Exists(golden), $"{relative} has no golden; write it with mmcheck explore --expected update and check it");
        Assert.Equal(File.ReadAllText(golden).ReplaceLineEndings("\n"), Golden.Render(result));
        Assert.True(result.Ok, Golden.Render(result));
    }
}

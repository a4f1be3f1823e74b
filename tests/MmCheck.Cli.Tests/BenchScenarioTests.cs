using System.Text.Json;

namespace MmCheck.Cli.Tests;

/// <summary><c>mmcheck bench</c> on scenario files: the explorer's throughput on real scenarios (the
/// seed scenarios by default), one line per file.</summary>
[Collection(nameof(ProcessWideMeasurements))]
public sealed class BenchScenarioTests() : ScratchDirTests("mmcheck-bench-scenarios-")
{
    private const string Racy = """
        MM bench-racy-stores
        {
          process P;
          P: buf = mmap(NULL, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
          P: store(buf, 0);
        }
        thread T0 in P {
          store(buf, 0x11);
        }
        thread T1 in P {
          store(buf, 0x22);
          r1 = load(buf);
        }
        exists (T1:r1 = 0x11)
        expect sometimes

        """;

    [Fact]
    public void Bench_explores_every_scenario_file_of_the_directory_and_sums_their_points()
    {
        Write("racy.litmus", Racy);
        Write("broken.litmus", "MM broken\nthread T0 {\n  store(\n}\n");
        Write("notes.txt", "not a scenario");
        var (exit, output, err) = Run("bench", "--quick", "--json", "--no-native", "--no-explorer", "--scenarios", Dir);
        Assert.True(exit == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.Equal(JsonValueKind.Null, r.GetProperty("scenarios_skipped").ValueKind);
        var s = r.GetProperty("scenarios");
        Assert.Equal(Dir, s.GetProperty("directory").GetString());

        var x = Assert.Single(s.GetProperty("scenarios").EnumerateArray());
        Assert.Equal("bench-racy-stores", x.GetProperty("scenario").GetString());
        Assert.True(x.GetProperty("complete").GetBoolean());
        Assert.True(x.GetProperty("as_expected").GetBoolean(), x.GetProperty("observed").GetString());
        // Two threads race on a present page: more than one schedule, none violating anything.
        Assert.True(x.GetProperty("schedules").GetInt64() > 1);
        Assert.Equal(JsonValueKind.Null, x.GetProperty("first_violation_ms").ValueKind);
        long steps = x.GetProperty("steps").GetInt64();
        double cpuMs = x.GetProperty("cpu_milliseconds").GetDouble();
        Assert.True(steps > 0 && cpuMs > 0);
        Assert.Equal(steps / (cpuMs / 1e3), x.GetProperty("points_per_cpu_second").GetDouble(), 6);
        // A file that explores in well under a millisecond is run over a window of CPU time.
        int runs = x.GetProperty("runs").GetInt32();
        Assert.True(runs > 1 && (cpuMs * runs >= 100 || runs == 2000), $"{runs} runs of {cpuMs} ms");
        // One scenario: the total is its own figure.
        Assert.Equal(x.GetProperty("points_per_cpu_second").GetDouble(), s.GetProperty("points_per_cpu_second").GetDouble(), 6);
        // Every execution builds its kernel and runs the init block: a share of the time, not all of it.
        double share = x.GetProperty("setup_share").GetDouble();
        Assert.InRange(share, 0.001, 0.999);
        double excluding = s.GetProperty("points_per_cpu_second_excluding_setup").GetDouble();
        Assert.Equal(1.0, excluding * (1 - share) / s.GetProperty("points_per_cpu_second").GetDouble(), 6);

        var error = Assert.Single(s.GetProperty("errors").EnumerateArray());
        Assert.Contains("broken.litmus", error.GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_text_gives_a_line_per_scenario_and_the_first_violation()
    {
        Write("racy.litmus", Racy);
        Write("violates.litmus", Racy.Replace("MM bench-racy-stores", "MM bench-never", StringComparison.Ordinal)
            .Replace("expect sometimes", "expect never", StringComparison.Ordinal));
        var (exit, output, err) = Run("bench", "--quick", "--no-native", "--no-explorer", "--scenarios", Dir);
        Assert.True(exit == 0, output + err);
        Assert.Contains("explorer on scenario files (issue 3)", output, StringComparison.Ordinal);
        var lines = output.Split('\n');
        Assert.Contains(lines, l => l.Contains("bench-racy-stores", StringComparison.Ordinal) && l.Contains("clean", StringComparison.Ordinal));
        // An expectation the exploration does not meet is said on the scenario's line.
        Assert.Contains(lines, l => l.Contains("bench-never", StringComparison.Ordinal) && l.Contains("NOT AS EXPECTED: sometimes", StringComparison.Ordinal));
    }

    [Fact]
    public void Bench_says_why_it_skipped_the_scenarios()
    {
        // The tests run from their output folder, which has no scenarios/seeds.
        var (exit, output, err) = Run("bench", "--quick", "--json", "--no-native", "--no-explorer");
        Assert.True(exit == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("scenarios").ValueKind);
        Assert.Contains("no directory 'scenarios/seeds'", doc.RootElement.GetProperty("scenarios_skipped").GetString(), StringComparison.Ordinal);

        (exit, output, _) = Run("bench", "--quick", "--json", "--no-native", "--no-explorer", "--no-scenarios");
        Assert.Equal(0, exit);
        using var none = JsonDocument.Parse(output);
        Assert.Equal("not requested", none.RootElement.GetProperty("scenarios_skipped").GetString());
    }

    [Fact]
    public void Bench_rejects_a_scenario_directory_that_does_not_exist()
    {
        var (exit, _, err) = Run("bench", "--quick", "--scenarios", Path.Combine(Dir, "nowhere"));
        Assert.Equal(2, exit);
        Assert.Contains("--scenarios: no directory", err, StringComparison.Ordinal);
    }
}

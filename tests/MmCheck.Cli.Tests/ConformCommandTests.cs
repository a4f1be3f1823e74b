using System.Text.Json;
using MmCheck.Conformance.Native;

namespace MmCheck.Cli.Tests;

/// <summary><c>mmcheck conform</c>: scenarios and random cases against this machine's kernel, its
/// exit codes and its JSON (design.md: cases, agreed, skipped, disagreements).</summary>
public sealed class ConformCommandTests() : ScratchDirTests("mmcheck-conform-cli-")
{
    private static bool OracleAvailable => NativeOracle.Availability().IsAvailable;

    private const string Cow = """
        MM conform-cli-cow
        {
          process P;
          P: buf = mmap(NULL, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
          P: store(buf, 0x11);
        }
        thread T0 in P {
          fork: C = fork();
          store(buf, 0x22);
          r0 = load(buf);
        }
        thread T1 in C after T0.fork {
          r1 = load(buf);
          pm = pagemap(buf);
        }
        forall (T0:r0 = 0x22 /\ T1:r1 = 0x11)
        expect always

        """;

    private const string Device = """
        MM conform-cli-device
        {
          device G = pci(bar0 = 16 pages);
          process P;
        }
        thread T0 in P {
          r0 = mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
        }
        forall (T0:r0 <> 0)
        expect always

        """;

    [Fact]
    public void A_scenario_and_random_cases_agree_and_exit_0_with_the_json_of_the_design()
    {
        var (exit, output, err) = Run("conform", Write("cow.litmus", Cow), Write("device.litmus", Device), "--random", "5", "--seed", "7", "--json");
        Assert.True(exit == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal(7, root.GetProperty("cases").GetInt32());
        int agreed = root.GetProperty("agreed").GetInt32();
        var skipped = root.GetProperty("skipped");
        Assert.Equal(0, root.GetProperty("disagreements").GetArrayLength());
        Assert.Equal(7, agreed + skipped.GetArrayLength());
        // The device scenario cannot run natively: skipped with its reason, never passed.
        Assert.Contains(skipped.EnumerateArray(), s =>
            s.GetProperty("case").GetString()!.EndsWith("device.litmus", StringComparison.Ordinal) &&
            s.GetProperty("reason").GetString()!.Contains("devices have no native counterpart", StringComparison.Ordinal));
        if (OracleAvailable)
        {
            Assert.Equal(6, agreed);
        }
        else
        {
            Assert.Equal(0, agreed);
            Assert.Contains("every case skipped", err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_text_report_counts_cases()
    {
        var (exit, output, err) = Run("conform", Write("cow.litmus", Cow));
        Assert.True(exit == 0, output + err);
        Assert.StartsWith(OracleAvailable ? "conformance: 1 case(s), 1 agreed, 0 skipped, 0 disagreed"
            : "conformance: 1 case(s), 0 agreed, 1 skipped, 0 disagreed", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_path_the_bundled_scenarios_run()
    {
        var (exit, output, err) = Run("conform", "--json", "--no-shrink");
        Assert.True(exit == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        int bundled = Directory.EnumerateFiles(ScenarioFiles.BundledDirectory()!, "*.litmus", SearchOption.AllDirectories).Count();
        Assert.Equal(bundled, doc.RootElement.GetProperty("cases").GetInt32());
    }

    [Fact]
    public void Bad_usage_exits_2()
    {
        Assert.Equal(2, Run("conform", Path.Combine(Dir, "missing.litmus")).Exit);
        Assert.Equal(2, Run("conform", Write("cow.litmus", Cow), "--random", "-1").Exit);
        Assert.Equal(2, Run("conform", Write("cow.litmus", Cow), "--random", "many").Exit);
    }

    [Fact]
    public void A_scenario_that_does_not_parse_exits_2_and_the_others_still_run()
    {
        string bad = Write("bad.litmus", "MM bad\n{ process P; }\nthread T in P {\n  r = mmap(NULL, 1 page;\n}\n");
        var (exit, output, err) = Run("conform", bad, Write("cow.litmus", Cow));
        Assert.Equal(2, exit);
        Assert.Contains("bad.litmus:4:24: error:", err, StringComparison.Ordinal);
        Assert.StartsWith("conformance: 1 case(s)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_scenario_that_cannot_be_read_exits_2_and_the_others_still_run()
    {
        string folder = Path.Combine(Dir, "corpus");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "cow.litmus"), Cow);
        // A dangling link: listed with the folder's scenarios, unreadable (root reads any mode).
        File.CreateSymbolicLink(Path.Combine(folder, "gone.litmus"), Path.Combine(Dir, "nowhere.litmus"));
        var (exit, output, err) = Run("conform", folder);
        Assert.Equal(2, exit);
        Assert.Contains("cannot read '", err, StringComparison.Ordinal);
        Assert.Contains("gone.litmus", err, StringComparison.Ordinal);
        Assert.StartsWith("conformance: 1 case(s)", output, StringComparison.Ordinal);
    }
}

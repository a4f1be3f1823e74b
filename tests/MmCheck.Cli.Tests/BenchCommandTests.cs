using System.Text.Json;

namespace MmCheck.Cli.Tests;

/// <summary>
/// The benchmark's memory figure is the managed heap's growth, which is process-wide: tests in other
/// classes allocating at the same time would land in it. This collection runs alone.
/// </summary>
[CollectionDefinition(nameof(ProcessWideMeasurements), DisableParallelization = true)]
public sealed class ProcessWideMeasurements;

/// <summary><c>mmcheck bench</c>: runs at a tiny size and reports every figure docs/performance.md quotes.</summary>
[Collection(nameof(ProcessWideMeasurements))]
public sealed class BenchCommandTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    [Fact]
    public void Bench_json_at_a_tiny_size_reports_kernel_native_and_explorer_figures()
    {
        var (exit, output, err) = Run("bench", "--quick", "--json", "--bytes", "1M");
        Assert.True(exit == 0, output + err);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.Equal(1UL << 20, r.GetProperty("bytes").GetUInt64());

        var kernel = r.GetProperty("kernel");
        Assert.Equal(256, kernel.GetProperty("pages").GetInt64());
        Assert.True(kernel.GetProperty("touch_seconds").GetDouble() > 0);
        Assert.True(kernel.GetProperty("fork_seconds").GetDouble() > 0);
        Assert.True(kernel.GetProperty("munmap_seconds").GetDouble() > 0);
        // A mapped page costs its descriptor (22 bytes) and its share of a PTE table: well over 16
        // bytes, and far less than the 4 KiB a page of contents would.
        double perPage = kernel.GetProperty("bytes_per_page").GetDouble();
        Assert.InRange(perPage, 16, 1024);
        var names = r.GetProperty("kernel_figures").EnumerateArray().Select(f => f.GetProperty("name").GetString()).ToList();
        Assert.Contains("first-touch faults (per CPU second)", names);
        Assert.Contains("model memory per mapped page", names);

        if (r.GetProperty("native_skipped").ValueKind == JsonValueKind.Null)
        {
            Assert.Equal(256, r.GetProperty("native").GetProperty("pages").GetInt64());
            var ratios = r.GetProperty("ratios").EnumerateArray().ToList();
            Assert.Equal(["first-touch faults", "fork", "munmap"], ratios.Select(x => x.GetProperty("path").GetString()));
            foreach (var x in ratios)
            {
                Assert.True(x.GetProperty("native_seconds").GetDouble() > 0);
                double ratio = x.GetProperty("value").GetDouble();
                Assert.Equal(x.GetProperty("model_seconds").GetDouble() / x.GetProperty("native_seconds").GetDouble(), ratio, 9);
            }
        }
        else
        {
            Assert.Empty(r.GetProperty("ratios").EnumerateArray());
        }

        var explorer = r.GetProperty("explorer");
        Assert.True(explorer.GetProperty("steps").GetInt64() > 0);
        Assert.True(explorer.GetProperty("points_per_second").GetDouble() > 0);
        Assert.True(explorer.GetProperty("parallel_result_identical").GetBoolean());
        // The speed-up's reference: independent explorations at once, and the share of it the explorer got.
        double independent = explorer.GetProperty("independent_speedup").GetDouble();
        Assert.True(independent > 0);
        Assert.Equal(explorer.GetProperty("speedup").GetDouble() / independent, explorer.GetProperty("parallel_efficiency").GetDouble(), 9);
        // A count, reported even when it is zero.
        Assert.Equal(JsonValueKind.Number, explorer.GetProperty("jit_compilations_during_speedup").ValueKind);
        // Allocation per collection: zero exactly when nothing was collected.
        Assert.Equal(explorer.GetProperty("gen0_collections").GetInt32() == 0, explorer.GetProperty("bytes_per_gen0_collection").GetDouble() == 0);
        Assert.All(explorer.GetProperty("dpor").EnumerateArray(), d => Assert.True(d.GetProperty("same_verdict").GetBoolean()));
    }

    [Fact]
    public void Bench_text_names_each_section_and_skips_what_was_not_asked_for()
    {
        var (exit, output, err) = Run("bench", "--bytes", "64K", "--repeats", "1", "--no-native", "--no-explorer");
        Assert.True(exit == 0, output + err);
        Assert.Contains("kernel core (issue 2)", output, StringComparison.Ordinal);
        Assert.Contains("model memory per mapped page", output, StringComparison.Ordinal);
        Assert.Contains("skipped: not requested", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("5000")]
    [InlineData("0")]
    [InlineData("1T")]
    [InlineData("lots")]
    public void Bench_rejects_a_size_that_is_not_whole_pages_with_exit_2(string bytes)
    {
        var (exit, _, err) = Run("bench", "--bytes", bytes, "--no-native", "--no-explorer");
        Assert.Equal(2, exit);
        Assert.Contains("--bytes", err, StringComparison.Ordinal);
    }
}

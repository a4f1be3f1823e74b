using Xunit.Abstractions;

namespace MmCheck.Conformance.Tests;

public sealed class ScratchTests(ITestOutputHelper output)
{
    [Fact]
    public void Scratch()
    {
        int count = int.Parse(Environment.GetEnvironmentVariable("SCRATCH_N") ?? "10");
        int seed = int.Parse(Environment.GetEnvironmentVariable("SCRATCH_SEED") ?? "1");
        var report = Conformance.RunRandom(count, seed, new ConformanceOptions
        {
            Shrink = Environment.GetEnvironmentVariable("SCRATCH_NOSHRINK") is null,
            Progress = o => System.IO.File.AppendAllText("/tmp/scratch/progress.txt", $"{o.Case} {o.Verdict} {o.Reason} {o.Disagreement?.First}\n"),
        });
        output.WriteLine(report.ToText());
    }
}

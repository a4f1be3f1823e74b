using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

public class BenchmarkTests
{
    [Fact]
    public void TheBenchmarkApiReportsItsFigures()
    {
        var r = ExplorerBenchmarks.Run(new ExplorerBenchmarkOptions { Pages = 2, ThroughputSchedules = 100, SpeedupPages = 1, ThroughputRepetitions = 1, SpeedupRepetitions = 1, Warmup = TimeSpan.Zero });
        Assert.True(r.PointsPerSecond > 0);
        Assert.True(r.PointsPerCpuSecond > 0 && r.SetupMicroseconds > 0 && r.CpuSpeedup > 0, r.ToString());
        Assert.True(r.Schedules > 0);
        Assert.All(r.Dpor, d => Assert.True(d.SameVerdict && d.BothComplete, d.Scenario));
        Assert.True(r.DporReduction >= 10, r.ToString());
        Assert.True(r.ParallelResultIdentical);
    }
}

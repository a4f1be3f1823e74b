using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

/// <summary>Alone: the pool's threads are shared by every exploration in the process.</summary>
[CollectionDefinition(nameof(WorkerPoolTests), DisableParallelization = true)]
public sealed class WorkerPoolCollection;

/// <summary>Explorations, replays and probes run on threads the pool keeps, so that a thread's
/// pools of recycled kernel storage and its scheduler's logs serve the next run.</summary>
[Collection(nameof(WorkerPoolTests))]
public class WorkerPoolTests
{
    [Fact]
    public void ExplorationsOneAfterAnotherRunOnTheSameKeptThread()
    {
        var seen = new List<(int Id, string? Name)>();
        var inner = Scenarios.FaultVsZap(revalidate: false);
        var t = new LambdaTarget("where", (s, g) =>
        {
            lock (seen)
            {
                seen.Add((Environment.CurrentManagedThreadId, Thread.CurrentThread.Name));
            }
            return inner.Prepare(s, g);
        });
        // Probe, DFS, then the counterexample's minimisation and replay: every run on one thread.
        var first = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Portfolio, Workers = 1, MaxSchedules = 50 });
        var second = Explorer.Explore(t, new ExplorationOptions { Strategy = Strategy.Portfolio, Workers = 1, MaxSchedules = 50 });
        Assert.NotEmpty(first.Violations);
        Assert.Equal(TestKit.Fingerprint(first), TestKit.Fingerprint(second));
        var (id, name) = seen[0];
        Assert.NotEqual(Environment.CurrentManagedThreadId, id);
        Assert.StartsWith("mmcheck-explorer-", name, StringComparison.Ordinal);
        Assert.All(seen, x => Assert.Equal(id, x.Id));
    }

    [Fact]
    public void ARunInsideARunTakesAnotherThreadAndBothFinish()
    {
        int outer = 0, inner = 0;
        WorkerPool.Run(1, _ =>
        {
            outer = Environment.CurrentManagedThreadId;
            inner = WorkerPool.Isolated(() => Environment.CurrentManagedThreadId);
        });
        Assert.NotEqual(0, outer);
        Assert.NotEqual(0, inner);
        Assert.NotEqual(outer, inner);
        // A failure on one worker comes back to the caller, and the pool goes on.
        var e = Assert.Throws<InvalidOperationException>(() => WorkerPool.Run(2, w =>
        {
            if (w == 1)
            {
                throw new InvalidOperationException("worker 1");
            }
        }));
        Assert.Equal("worker 1", e.Message);
        Assert.Equal(3, WorkerPool.Isolated(() => 3));
    }
}

using System.Diagnostics;
using Linux;

namespace MmCheck.Explorer;

/// <summary>A target that times its Prepare calls (building the kernel, its devices and processes,
/// the scenario's setup), so that a benchmark can tell setup from exploring. For one worker: the
/// sum is not synchronised.</summary>
public sealed class TimedTarget(ExplorationTarget inner) : ExplorationTarget
{
    private long _ticks;

    public override string Name => inner.Name;

    /// <summary>Wall time spent in Prepare so far.</summary>
    public TimeSpan PrepareTime => Stopwatch.GetElapsedTime(0, _ticks);

    public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph)
    {
        long t0 = Stopwatch.GetTimestamp();
        var e = inner.Prepare(scheduler, lockGraph);
        _ticks += Stopwatch.GetTimestamp() - t0;
        return e;
    }
}

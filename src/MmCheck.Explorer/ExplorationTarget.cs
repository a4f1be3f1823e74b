using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// One scenario, reusable across executions. The explorer runs every schedule on a fresh kernel
/// that <see cref="Prepare"/> builds, so executions never share state except the lock graph.
/// </summary>
public abstract class ExplorationTarget
{
    public abstract string Name { get; }

    /// <summary>
    /// Builds a fresh kernel for one execution: create it with <c>config.LockGraph = lockGraph</c>,
    /// run the setup on the direct scheduler, then <c>kernel.UseScheduler(scheduler)</c> and spawn the
    /// initial threads with <see cref="ExplorerScheduler.Spawn"/>. Bodies may spawn more threads at
    /// run time (a forked child). Must be deterministic: the same calls in the same order every time.
    /// A kernel set up earlier against a graph of its own serves as well once
    /// <c>kernel.UseLockGraph(lockGraph)</c> has handed it over (a target may build several
    /// executions' setups in one go).
    /// The kernel is the explorer's: once the execution has been observed its storage is recycled
    /// for a later one (<c>Kernel.Recycle</c>), so nothing may keep it.
    /// </summary>
    public abstract Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph);
}

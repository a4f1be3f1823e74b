namespace MmCheck.Explorer;

/// <summary>
/// Makes the decisions of one execution: which enabled task runs the next step, and data choices.
/// Strategies (DFS, random, PCT, replay, the minimiser) implement it; the scheduler records.
/// </summary>
internal interface IScheduleController
{
    /// <summary>Picks one of <paramref name="enabled"/> (slot indices, ascending) or returns -1 to stop
    /// the execution (setting <see cref="ExplorerScheduler.StopReason"/>).</summary>
    int PickTask(ExplorerScheduler s, ReadOnlySpan<int> enabled);

    /// <summary>Picks a value in [0, count) for a data choice inside the current step.</summary>
    int PickValue(ExplorerScheduler s, string what, int count);

    /// <summary>The step <paramref name="step"/> has ended (its footprint is complete).</summary>
    void OnStepEnd(ExplorerScheduler s, int step);

    /// <summary>Steps before this index replay a prefix whose checks and findings were already seen.</summary>
    int FirstFreshStep { get; }
}

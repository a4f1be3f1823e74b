namespace MmCheck.Explorer;

/// <summary>How the explorer picks schedules.</summary>
public enum Strategy
{
    /// <summary>Exhaustive depth-first search with source-DPOR and sleep sets (plain bounded DFS
    /// when <see cref="ExplorationOptions.MaxPreemptions"/> is set).</summary>
    Dfs,
    /// <summary>Probabilistic concurrency testing with depth <see cref="ExplorationOptions.PctDepth"/>.</summary>
    Pct,
    /// <summary>Uniformly random scheduling.</summary>
    Random,
    /// <summary>A few hundred random and PCT schedules for shallow bugs, then exhaustive DFS.</summary>
    Portfolio,
    /// <summary>Follows <see cref="ExplorationOptions.TracePath"/> (or <see cref="ExplorationOptions.ReplayTrace"/>) exactly.</summary>
    Replay,
}

/// <summary>When the kernel's invariant registry (<c>Kernel.CheckInvariants()</c>) runs.</summary>
public enum InvariantCheckMode
{
    /// <summary>After every step that wrote shared state (a step that only read or only took
    /// locks cannot break a state invariant that held before it, except by dropping the last page-table
    /// lock, which counts as a write). The default.</summary>
    AfterWrites,
    /// <summary>After every step, whatever it touched.</summary>
    EveryStep,
    /// <summary>Never (BUG/WARN/lockdep findings still count).</summary>
    Off,
}

/// <summary>Settings of one exploration. A record, so that a caller can derive settings from
/// others with <c>options with { ... }</c>.</summary>
public sealed record ExplorationOptions
{
    public Strategy Strategy { get; init; } = Strategy.Portfolio;

    /// <summary>Most executions to run; null: unbounded for DFS, 1000 for random and PCT.</summary>
    public long? MaxSchedules { get; init; }

    /// <summary>Preemption bound for DFS (plain bounded DFS: DPOR is unsound under a preemption bound).</summary>
    public int? MaxPreemptions { get; init; }

    /// <summary>Wall-clock budget; when it runs out the result is incomplete (and, with several
    /// workers, no longer byte-for-byte reproducible).</summary>
    public TimeSpan? TimeLimit { get; init; }

    public long Seed { get; init; }

    /// <summary>Parallel workers, one kernel instance each. The result does not depend on it.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>PCT's bug depth d (d-1 priority change points).</summary>
    public int PctDepth { get; init; } = 3;

    /// <summary>Trace file for <see cref="Strategy.Replay"/>.</summary>
    public string? TracePath { get; init; }

    /// <summary>A loaded trace for <see cref="Strategy.Replay"/> (takes precedence over <see cref="TracePath"/>).</summary>
    public Trace? ReplayTrace { get; init; }

    /// <summary>Replay every reported violation once more with effects recorded, so that
    /// <see cref="Violation.Run"/> holds its readable step log.</summary>
    public bool RecordEffects { get; init; }

    /// <summary>Stop the whole exploration at the first violation. With several DFS workers, which
    /// violation comes first can depend on timing.</summary>
    public bool StopOnFirstViolation { get; init; }

    /// <summary>Partial-order reduction for DFS; off gives plain DFS (for comparisons).</summary>
    public bool Dpor { get; init; } = true;

    /// <summary>
    /// Branching depth down to which the DFS tree is shared between workers: every choice left to
    /// explore at a shared node is a unit of work. The default shares the whole tree (each backtrack
    /// point is a unit), which balances any number of workers; 0 is one sequential source-DPOR (a
    /// little fewer executions, no parallelism). Results depend on this, never on <see cref="Workers"/>.
    /// </summary>
    public int SplitDepth { get; init; } = int.MaxValue;

    /// <summary>
    /// A DFS execution keeps the record of the steps it has in common with the worker's last one
    /// (footprints, happens-before) instead of recording them again; the kernel still runs them.
    /// Off only in the tests that show it changes no result.
    /// </summary>
    internal bool KeepReplayedSteps { get; init; } = true;

    /// <summary>Random and PCT schedules the portfolio runs at most before going exhaustive (fewer
    /// when the scenario has one schedule or the samples keep repeating; see the explorer's README).</summary>
    public int PortfolioSchedules { get; init; } = 300;

    /// <summary>A schedule longer than this is cut (a livelock guard); the result is then incomplete.</summary>
    public int MaxStepsPerSchedule { get; init; } = 100_000;

    public InvariantCheckMode InvariantChecks { get; init; } = InvariantCheckMode.AfterWrites;

    /// <summary>Minimise counterexamples (fewest preemptions, then fewest steps).</summary>
    public bool Minimize { get; init; } = true;

    /// <summary>Executions the minimiser may spend per counterexample.</summary>
    public int MinimizeBudget { get; init; } = 2000;

    /// <summary>The scenario's final condition, evaluated over the distinct outcomes.</summary>
    public Condition? Condition { get; init; }
}

using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// What an exploration found. Apart from <see cref="Elapsed"/>, <see cref="CpuTime"/> and <see cref="FirstViolationAt"/>,
/// the same scenario, options and seed give the same result, whatever the number of workers (unless
/// a time limit, a schedule budget or stop-on-first-violation cut the exploration short).
/// </summary>
public sealed class ExplorationResult
{
    public required string Name { get; init; }
    public required Strategy Strategy { get; init; }
    public long Seed { get; init; }
    public int Workers { get; init; }

    /// <summary>The whole bounded space was covered (DFS only: every Mazurkiewicz trace within the
    /// bounds, or every schedule within the preemption bound).</summary>
    public bool Complete { get; init; }

    /// <summary>Executions run (including ones cut short by sleep sets).</summary>
    public long Schedules { get; init; }

    /// <summary>Executions that sleep sets proved redundant part-way.</summary>
    public long Redundant { get; init; }

    /// <summary>Scheduling steps executed, prefixes replayed by DFS included.</summary>
    public long Steps { get; init; }

    public TimeSpan Elapsed { get; init; }

    /// <summary>CPU time the exploring threads used, all workers together (minimisation excluded;
    /// measured on Linux, zero elsewhere). On a shared machine, the cost of the work itself.</summary>
    public TimeSpan CpuTime { get; init; }

    /// <summary>What rates are taken over: <see cref="CpuTime"/>, or <see cref="Elapsed"/> where
    /// there is no CPU time.</summary>
    public TimeSpan CpuTimeOrElapsed => CpuTime > TimeSpan.Zero ? CpuTime : Elapsed;

    /// <summary><paramref name="count"/> (steps, schedules) per second of <see cref="CpuTimeOrElapsed"/>;
    /// 0 for an exploration that took no time.</summary>
    public double PerCpuSecond(long count) =>
        CpuTimeOrElapsed > TimeSpan.Zero ? count / CpuTimeOrElapsed.TotalSeconds : 0;

    /// <summary>Scheduling points per CPU second (see <see cref="PerCpuSecond"/>).</summary>
    public double PointsPerCpuSecond => PerCpuSecond(Steps);

    public TimeSpan? FirstViolationAt { get; init; }

    /// <summary>The distinct final states with how many executions ended in each, in ordinal order.</summary>
    public required IReadOnlyList<(Outcome Outcome, long Count)> Outcomes { get; init; }

    /// <summary>A schedule that ends in each outcome (the first found).</summary>
    public required IReadOnlyDictionary<Outcome, Trace> OutcomeWitnesses { get; init; }

    public required IReadOnlyList<Violation> Violations { get; init; }

    /// <summary>The lock-class graph of the whole exploration (every worker's merged).</summary>
    public required LockGraph LockGraph { get; init; }

    /// <summary>The final condition's verdict, when <see cref="ExplorationOptions.Condition"/> was given.</summary>
    public ConditionVerdict? ConditionVerdict { get; init; }

    /// <summary>Why the result is incomplete, or other remarks (step bound hit, replay mismatch).</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>The replay mismatch, for <see cref="Strategy.Replay"/>.</summary>
    public ReplayMismatch? ReplayMismatch { get; init; }

    public bool Clean => Violations.Count == 0;

    /// <summary>Evaluates a final condition over <see cref="Outcomes"/>.</summary>
    public ConditionVerdict Evaluate(Condition condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var v = condition.Evaluate(Outcomes.Select(o => o.Outcome));
        var deciding = condition.Quantifier == Quantifier.Exists
            ? (v.Satisfying.Count > 0 ? v.Satisfying[0] : null)
            : condition.Quantifier == Quantifier.NotExists
                ? (v.Satisfying.Count > 0 ? v.Satisfying[0] : null)
                : (v.Failing.Count > 0 ? v.Failing[0] : null);
        return v with
        {
            Deciding = deciding,
            Witness = deciding is not null && OutcomeWitnesses.TryGetValue(deciding, out var t) ? t : null,
        };
    }
}

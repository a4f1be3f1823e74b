using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

internal static class TestKit
{
    public static ExplorationResult Dfs(ExplorationTarget t, int workers = 1, Condition? condition = null, bool effects = false) =>
        Explorer.Explore(t, new ExplorationOptions
        {
            Strategy = Strategy.Dfs,
            Workers = workers,
            Condition = condition,
            RecordEffects = effects,
            MaxSchedules = 100_000,
        });

    /// <summary>Replays every violation's trace and checks it shows the same violation class.</summary>
    public static void AssertTracesReplay(ExplorationTarget t, ExplorationResult r)
    {
        foreach (var v in r.Violations)
        {
            // Through the file format, as a user would.
            var trace = Trace.FromJson(v.Trace.ToJson());
            var replay = Replayer.Replay(t, trace);
            Assert.Null(replay.Mismatch);
            string cls = ViolationClass.Of(v.Invariant, v.Message);
            Assert.Contains(replay.PreludeFindings.Concat(replay.Findings), f => ViolationClass.Of(f.Invariant, f.Message) == cls);
        }
    }

    public static bool Has(ExplorationResult r, string invariant) => r.Violations.Any(v => v.Invariant == invariant);

    /// <summary>Everything of a result but its timings.</summary>
    public static string Fingerprint(ExplorationResult r) =>
        $"{r.Name} {r.Strategy} {r.Complete} {r.Schedules} {r.Redundant} {r.Steps}\n" +
        string.Join("\n", r.Outcomes.Select(o => $"{o.Outcome} x{o.Count} :: {r.OutcomeWitnesses[o.Outcome].ToJson()}")) + "\n" +
        string.Join("\n", r.Violations.Select(v => $"{v.Invariant}: {v.Message} ({v.Steps}) :: {v.Trace.ToJson()}")) + "\n" +
        string.Join("\n", r.Notes) + "\n" +
        string.Join("\n", r.LockGraph.Edges.Select(e => $"{e.From} -> {e.To}").Order(StringComparer.Ordinal));
}

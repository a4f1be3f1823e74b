using Linux;

namespace MmCheck.Explorer;

/// <summary>Turns the step log of an execution into a <see cref="Trace"/>.</summary>
internal sealed class TraceFactory(string scenario, string strategy, long seed, IReadOnlyDictionary<string, string> settings)
{
    private static readonly TraceChoice[] s_noChoices = [];

    public string Scenario { get; } = scenario;

    public TraceFactory WithStrategy(string name) => new(Scenario, name, seed, settings);

    /// <summary>The schedule up to and including <paramref name="lastStep"/>.</summary>
    public Trace Make(ExplorerScheduler s, int lastStep, string? invariant = null, string? message = null, string? outcome = null)
    {
        var log = s.Log;
        int n = Math.Min(lastStep + 1, log.Count);
        var steps = new TraceStep[n];
        int preemptions = 0;
        for (int i = 0; i < n; i++)
        {
            ref var st = ref log.Steps[i];
            TraceChoice[] choices = s_noChoices;
            if (st.DataLen > 0)
            {
                choices = new TraceChoice[st.DataLen];
                for (int d = 0; d < st.DataLen; d++)
                {
                    var r = log.Data[st.DataStart + d];
                    choices[d] = new TraceChoice(r.What, r.Count, r.Value);
                }
            }
            if (st.Preempted)
            {
                preemptions++;
            }
            steps[i] = new TraceStep(st.Thread, st.Kind, st.Function, st.AfterSleep, choices);
        }
        var threads = new string[s.TaskCount];
        for (int i = 0; i < threads.Length; i++)
        {
            threads[i] = s.Slot(i).Name;
        }
        return new Trace
        {
            Scenario = Scenario,
            Strategy = strategy,
            Seed = seed,
            Settings = settings,
            Invariant = invariant,
            Message = message,
            Outcome = outcome,
            Threads = threads,
            Steps = steps,
            Preemptions = preemptions,
        };
    }

    /// <summary>The same trace with a prelude (lock-order witnesses).</summary>
    public static Trace WithPrelude(Trace t, IReadOnlyList<Trace> prelude) => new()
    {
        Scenario = t.Scenario,
        Strategy = t.Strategy,
        Seed = t.Seed,
        Settings = t.Settings,
        Invariant = t.Invariant,
        Message = t.Message,
        Outcome = t.Outcome,
        Threads = t.Threads,
        Steps = t.Steps,
        Preemptions = t.Preemptions,
        Prelude = prelude,
    };

    /// <summary>The same trace stating what it shows.</summary>
    public static Trace Labelled(Trace t, string? invariant, string? message) => new()
    {
        Scenario = t.Scenario,
        Strategy = t.Strategy,
        Seed = t.Seed,
        Settings = t.Settings,
        Invariant = invariant,
        Message = message,
        Outcome = t.Outcome,
        Threads = t.Threads,
        Steps = t.Steps,
        Preemptions = t.Preemptions,
        Prelude = t.Prelude,
    };
}

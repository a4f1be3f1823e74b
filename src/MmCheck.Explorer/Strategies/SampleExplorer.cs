using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// Random and PCT sampling. Schedule i of a phase draws its decisions from a generator seeded by
/// (seed, phase, i), so it is the same schedule whichever worker runs it; results are merged in
/// index order.
/// </summary>
internal static class SampleExplorer
{
    private const int ChunkBits = 10;

    private struct Record
    {
        public bool Done;
        public int Worker;
        public int Steps;
        public ExecutionEnd End;
        public Outcome? Outcome;
        public bool NewOutcome;
        public int VFrom;
        public int VTo;
        public int EFrom;
        public int ETo;
        /// <summary>The execution showed a violation class new to its worker.</summary>
        public bool Found;
        public ulong Fingerprint;
    }

    /// <summary>
    /// Runs schedules 0..count-1 of a phase. With a <paramref name="history"/> (the portfolio), the
    /// phase ends after <see cref="SampleHistory.RepeatLimit"/> schedules in a row that repeat ones
    /// already drawn. <paramref name="k"/> is PCT's k, 0 to measure it here.
    /// </summary>
    public static void Run(ExplorationTarget target, ExplorationOptions opt, Strategy kind, int depth, long count, int phase,
        ExplorationBudget budget, TraceFactory traces, ResultBuilder into, SampleHistory? history = null, int k = 0)
    {
        count = Math.Min(count, int.MaxValue);
        if (count <= 0)
        {
            return;
        }
        if (kind == Strategy.Pct && k <= 0)
        {
            k = Probe(target, opt).Steps;
        }
        var chunks = new Record[(count >> ChunkBits) + 1][];
        var collectors = new RunCollector[Math.Max(1, opt.Workers)];
        long next = 0;
        long stopAt = long.MaxValue;

        // The frontier walks the finished schedules in index order, so what it decides (the first
        // violation, the end of a run of repeats) does not depend on which worker ran what. A
        // record is handed over under the gate, hence read only once fully written.
        var gate = new object();
        long frontier = 0;
        int repeats = 0;
        long repeatStop = -1;
        // Only the frontier lowers stopAt, under the gate, and never past itself: one write suffices.
        void StopAt(long i) => Interlocked.Exchange(ref stopAt, i);
        void Advance()
        {
            while (frontier < count && frontier <= Interlocked.Read(ref stopAt))
            {
                var chunk = chunks[frontier >> ChunkBits];
                if (chunk is null || !chunk[frontier & ((1 << ChunkBits) - 1)].Done)
                {
                    return;
                }
                ref var r = ref chunk[frontier & ((1 << ChunkBits) - 1)];
                if (r.Found)
                {
                    budget.ViolationFound();
                    if (opt.StopOnFirstViolation)
                    {
                        StopAt(frontier);
                    }
                }
                if (history is not null)
                {
                    repeats = history.Seen.Add(r.Fingerprint) ? 0 : repeats + 1;
                    if (repeats >= SampleHistory.RepeatLimit)
                    {
                        repeatStop = frontier;
                        StopAt(frontier);
                    }
                }
                frontier++;
            }
        }
        into.CpuTime += WorkerPool.Run(opt.Workers, w => ExplorerScheduler.Use(sched =>
        {
            var col = collectors[w] = new RunCollector(traces);
            var rnd = new RandomController();
            var pct = new PctController();
            var graph = new LockGraph();
            while (true)
            {
                if (budget.ShouldStop())
                {
                    break;
                }
                long i = Interlocked.Increment(ref next) - 1;
                if (i >= count || i > Interlocked.Read(ref stopAt))
                {
                    break;
                }
                ulong seed = Prng.ForSchedule(opt.Seed, phase, i);
                IScheduleController ctl;
                if (kind == Strategy.Pct)
                {
                    pct.Reset(seed, depth, k);
                    ctl = pct;
                }
                else
                {
                    rnd.Reset(seed);
                    ctl = rnd;
                }
                graph.Clear();
                sched.BeginExecution(ctl, storeFootprint: false, recordEffects: false, opt.MaxStepsPerSchedule, opt.InvariantChecks);
                var ex = target.Prepare(sched, graph);
                sched.Attach(ex.Kernel, graph);
                var end = sched.Run();
                var outcome = end == ExecutionEnd.Completed ? ex.Observe() : null;
                int v0 = col.Violations.Count;
                int e0 = col.Edges.Count;
                int o0 = col.OutcomeWitnesses.Count;
                bool found = col.Collect(sched, end, outcome);
                var chunk = chunks[i >> ChunkBits];
                if (chunk is null)
                {
                    Interlocked.CompareExchange(ref chunks[i >> ChunkBits], new Record[1 << ChunkBits], null);
                    chunk = chunks[i >> ChunkBits];
                }
                chunk[i & ((1 << ChunkBits) - 1)] = new Record
                {
                    Worker = w,
                    Steps = sched.Log.Count,
                    End = end,
                    Outcome = outcome,
                    NewOutcome = col.OutcomeWitnesses.Count > o0,
                    VFrom = v0,
                    VTo = col.Violations.Count,
                    EFrom = e0,
                    ETo = col.Edges.Count,
                    Found = found,
                    Fingerprint = history is null ? 0 : Fingerprint(sched.Log),
                };
                budget.Count(sched.Log.Count);
                lock (gate)
                {
                    chunk[i & ((1 << ChunkBits) - 1)].Done = true;
                    Advance();
                }
            }
        }));
        if (repeatStop >= 0)
        {
            into.Notes.Add($"{budget.Phase}: ended after schedule {repeatStop + 1} of {count}: " +
                $"{SampleHistory.RepeatLimit} in a row repeated schedules already drawn");
        }

        // Merge in index order, up to the first schedule not run (a time limit) or the first violation.
        for (long i = 0; i < count && i <= stopAt; i++)
        {
            var chunk = chunks[i >> ChunkBits];
            if (chunk is null || !chunk[i & ((1 << ChunkBits) - 1)].Done)
            {
                break;
            }
            var r = chunk[i & ((1 << ChunkBits) - 1)];
            var col = collectors[r.Worker];
            into.Schedules++;
            into.Steps += r.Steps;
            if (r.End == ExecutionEnd.StepLimit)
            {
                into.StepLimits++;
            }
            if (r.Outcome is not null)
            {
                into.AddOutcome(r.Outcome, 1, r.NewOutcome ? col.OutcomeWitnesses[r.Outcome] : null);
            }
            for (int v = r.VFrom; v < r.VTo; v++)
            {
                into.AddViolation(col.Violations[v]);
            }
            for (int e = r.EFrom; e < r.ETo; e++)
            {
                into.AddEdge(col.Edges[e]);
            }
        }
    }

    /// <summary>
    /// Runs the default schedule (checks off, not counted): its length is PCT's k, and when none of
    /// its decisions had a second option, it is the only schedule there is (every schedule makes
    /// the same decisions from the same start).
    /// </summary>
    public static (int Steps, bool OneSchedule) Probe(ExplorationTarget target, ExplorationOptions opt) => WorkerPool.Isolated(() =>
        ExplorerScheduler.Use(sched =>
        {
            var graph = new LockGraph();
            var ctl = new DefaultController();
            sched.BeginExecution(ctl, storeFootprint: false, recordEffects: false, opt.MaxStepsPerSchedule, InvariantCheckMode.Off);
            var ex = target.Prepare(sched, graph);
            sched.Attach(ex.Kernel, graph);
            sched.Run();
            return (Math.Max(1, sched.Log.Count), ctl.Branches == 0 && sched.Log.DataCount == 0);
        }));

    /// <summary>A hash of an execution's decisions: the thread of every step and every data value.</summary>
    private static ulong Fingerprint(StepLog log)
    {
        ulong h = 0xCBF29CE484222325UL ^ (ulong)log.Count;
        for (int s = 0; s < log.Count; s++)
        {
            h = (h ^ (ulong)log.Steps[s].Thread) * 0x100000001B3UL;
        }
        for (int d = 0; d < log.DataCount; d++)
        {
            h = (h ^ (0x8000_0000UL | (uint)log.Data[d].Value)) * 0x100000001B3UL;
        }
        return new Prng(h).NextULong();
    }
}

/// <summary>What the portfolio's sampling phases have drawn (used under the phase's frontier gate).</summary>
internal sealed class SampleHistory
{
    /// <summary>A phase ends after this many schedules in a row that repeat schedules already drawn.</summary>
    public const int RepeatLimit = 16;

    public readonly HashSet<ulong> Seen = [];
}

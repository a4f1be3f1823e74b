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
    }

    public static void Run(ExplorationTarget target, ExplorationOptions opt, Strategy kind, int depth, long count, int phase,
        ExplorationBudget budget, TraceFactory traces, ResultBuilder into)
    {
        count = Math.Min(count, int.MaxValue);
        if (count <= 0)
        {
            return;
        }
        int k = kind == Strategy.Pct ? Calibrate(target, opt) : 0;
        var chunks = new Record[(count >> ChunkBits) + 1][];
        var collectors = new RunCollector[Math.Max(1, opt.Workers)];
        long next = 0;
        long stopAt = long.MaxValue;
        into.CpuTime += WorkerPool.Run(opt.Workers, w =>
        {
            var sched = new ExplorerScheduler();
            var col = collectors[w] = new RunCollector(traces);
            var rnd = new RandomController();
            var pct = new PctController();
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
                var graph = new LockGraph();
                sched.BeginExecution(ctl, storeFootprint: false, recordEffects: false, opt.MaxStepsPerSchedule, opt.InvariantChecks);
                var ex = target.Prepare(sched, graph);
                sched.Attach(ex.Kernel, graph);
                var end = sched.Run();
                var outcome = end == ExecutionEnd.Completed ? ex.Observe() : null;
                int v0 = col.Violations.Count;
                int e0 = col.Edges.Count;
                int o0 = col.OutcomeOrder.Count;
                bool found = col.Collect(sched, end, outcome);
                var chunk = chunks[i >> ChunkBits];
                if (chunk is null)
                {
                    Interlocked.CompareExchange(ref chunks[i >> ChunkBits], new Record[1 << ChunkBits], null);
                    chunk = chunks[i >> ChunkBits];
                }
                chunk[i & ((1 << ChunkBits) - 1)] = new Record
                {
                    Done = true,
                    Worker = w,
                    Steps = sched.Log.Count,
                    End = end,
                    Outcome = outcome,
                    NewOutcome = col.OutcomeOrder.Count > o0,
                    VFrom = v0,
                    VTo = col.Violations.Count,
                    EFrom = e0,
                    ETo = col.Edges.Count,
                };
                budget.Count(sched.Log.Count);
                if (found)
                {
                    budget.ViolationFound();
                    if (opt.StopOnFirstViolation)
                    {
                        long cur;
                        while (i < (cur = Interlocked.Read(ref stopAt)) && Interlocked.CompareExchange(ref stopAt, i, cur) != cur)
                        {
                        }
                    }
                }
            }
        });

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

    /// <summary>PCT's k: the length of the default schedule.</summary>
    private static int Calibrate(ExplorationTarget target, ExplorationOptions opt) => WorkerPool.Isolated(() =>
    {
        var sched = new ExplorerScheduler();
        var graph = new LockGraph();
        sched.BeginExecution(DefaultController.Instance, storeFootprint: false, recordEffects: false, opt.MaxStepsPerSchedule, InvariantCheckMode.Off);
        var ex = target.Prepare(sched, graph);
        sched.Attach(ex.Kernel, graph);
        sched.Run();
        return Math.Max(1, sched.Log.Count);
    });
}

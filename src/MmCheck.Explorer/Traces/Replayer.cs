using Linux;

namespace MmCheck.Explorer;

/// <summary>Follows a trace step by step; the first step that does not fit is a mismatch.</summary>
internal sealed class ReplayController(Trace trace) : IScheduleController
{
    public const string EndOfTrace = "end of trace";
    public const string MismatchReason = "replay mismatch";

    private int _data;

    public ReplayMismatch? Mismatch { get; private set; }

    public int FirstFreshStep => 0;

    public int PickTask(ExplorerScheduler s, ReadOnlySpan<int> enabled)
    {
        int i = s.Log.Count;
        if (i >= trace.Steps.Count)
        {
            s.StopReason = EndOfTrace;
            return -1;
        }
        var exp = trace.Steps[i];
        _data = 0;
        string name = exp.Thread < trace.Threads.Count ? trace.Threads[exp.Thread] : $"thread {exp.Thread}";
        string expected = $"{name} at {exp.Label}";
        if (exp.Thread >= s.TaskCount)
        {
            return Fail(s, i, expected, $"no thread {exp.Thread} (only {s.TaskCount})");
        }
        var slot = s.Slot(exp.Thread);
        if (slot.Name != name)
        {
            return Fail(s, i, expected, $"thread {exp.Thread} is {slot.Name}");
        }
        bool isEnabled = false;
        foreach (int t in enabled)
        {
            isEnabled |= t == exp.Thread;
        }
        if (!isEnabled)
        {
            string state = slot.Finished ? "has ended" : $"sleeps in {KernelSymbols.CName(slot.Function)}";
            return Fail(s, i, expected, $"{slot.Name} {state}");
        }
        if (slot.Kind != exp.Kind || slot.Function != exp.Function || slot.AfterSleep != exp.AfterSleep)
        {
            var actual = new TraceStep(exp.Thread, slot.Kind, slot.Function, slot.AfterSleep, []);
            return Fail(s, i, expected, $"{slot.Name} at {actual.Label}");
        }
        return exp.Thread;
    }

    public int PickValue(ExplorerScheduler s, string what, int count)
    {
        int i = s.Log.Count - 1;
        IReadOnlyList<TraceChoice> choices = i < trace.Steps.Count ? trace.Steps[i].Choices : Array.Empty<TraceChoice>();
        if (_data >= choices.Count)
        {
            Fail(s, i, "no data choice", $"choice '{what}' among {count}");
            return 0;
        }
        var c = choices[_data++];
        if (c.What != what || c.Count != count || c.Value >= count)
        {
            Fail(s, i, $"choice '{c.What}' among {c.Count}", $"choice '{what}' among {count}");
            return 0;
        }
        return c.Value;
    }

    public void OnStepEnd(ExplorerScheduler s, int step)
    {
    }

    /// <summary>Called after the run: a trace longer than the execution does not fit either.</summary>
    public void CheckEnd(ExplorerScheduler s, ExecutionEnd end)
    {
        if (Mismatch is null && end != ExecutionEnd.Stopped && s.Log.Count < trace.Steps.Count)
        {
            var exp = trace.Steps[s.Log.Count];
            string name = exp.Thread < trace.Threads.Count ? trace.Threads[exp.Thread] : $"thread {exp.Thread}";
            Mismatch = new ReplayMismatch(s.Log.Count, $"{name} at {exp.Label}",
                end == ExecutionEnd.Deadlock ? "a deadlock" : "the end of the execution");
        }
    }

    private int Fail(ExplorerScheduler s, int step, string expected, string actual)
    {
        Mismatch ??= new ReplayMismatch(step, expected, actual);
        s.StopReason = MismatchReason;
        return -1;
    }
}

/// <summary>Re-runs traces exactly, optionally recording what each step changed.</summary>
public static class Replayer
{
    /// <summary>
    /// Replays <paramref name="trace"/> (its prelude first, on the same lock graph) and returns the
    /// step log, the findings and, if the model no longer fits the trace, where and how it diverged.
    /// </summary>
    public static ReplayResult Replay(ExplorationTarget target, Trace trace, bool recordEffects = true)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(trace);
        return Isolated(target, trace, recordEffects, InvariantCheckMode.AfterWrites, 1_000_000);
    }

    /// <summary>Replays on a thread of its own, as every execution of the explorer runs: never
    /// under the caller's SynchronizationContext or TaskScheduler (xunit's, a UI's), to which an
    /// await on one of the kernel's pooled state-machine boxes would hand its continuation instead
    /// of running it inline.</summary>
    internal static ReplayResult Isolated(ExplorationTarget target, Trace trace, bool recordEffects, InvariantCheckMode checks, int maxSteps) =>
        WorkerPool.Isolated(() => ExplorerScheduler.Use(s => ReplayCore(target, trace, recordEffects, checks, maxSteps, s)));

    private static ReplayResult ReplayCore(ExplorationTarget target, Trace trace, bool recordEffects, InvariantCheckMode checks, int maxSteps,
        ExplorerScheduler sched)
    {
        var graph = new LockGraph();
        var preludeFindings = new List<Finding>();
        ReplayMismatch? mismatch = null;
        for (int p = 0; p < trace.Prelude.Count && mismatch is null; p++)
        {
            var (_, _, _, mm) = RunOne(target, trace.Prelude[p], graph, sched, recordEffects: false, checks, maxSteps);
            foreach (var (_, f) in sched.Log.Findings)
            {
                preludeFindings.Add(f);
            }
            if (mm is not null)
            {
                mismatch = mm with { Expected = $"{mm.Expected} (prelude schedule {p + 1})" };
            }
        }
        if (mismatch is not null)
        {
            var empty = new TraceRun(trace.Scenario, trace.Threads, []) { Title = Title(trace), Ending = "prelude did not fit" };
            return new ReplayResult(empty, [], mismatch) { PreludeFindings = preludeFindings };
        }
        var (end, outcome, ex, mismatchMain) = RunOne(target, trace, graph, sched, recordEffects, checks, maxSteps);
        var run = BuildRun(sched, trace.Scenario, Title(trace), end, outcome);
        var findings = new List<Finding>();
        foreach (var (_, f) in sched.Log.Findings)
        {
            findings.Add(f);
        }
        if (end == ExecutionEnd.Defect && sched.Defect is { } e)
        {
            findings.Add(new Finding(RunCollector.ModelDefect, $"{e.GetType().Name}: {e.Message}", 0, "replay"));
        }
        _ = ex;
        return new ReplayResult(run, findings, mismatchMain)
        {
            PreludeFindings = preludeFindings,
            Completed = end == ExecutionEnd.Completed,
        };
    }

    private static (ExecutionEnd End, Outcome? Outcome, Execution Ex, ReplayMismatch? Mismatch) RunOne(ExplorationTarget target, Trace trace,
        LockGraph graph, ExplorerScheduler sched, bool recordEffects, InvariantCheckMode checks, int maxSteps)
    {
        var ctl = new ReplayController(trace);
        sched.BeginExecution(ctl, storeFootprint: false, recordEffects, maxSteps, checks);
        var ex = target.Prepare(sched, graph);
        sched.Attach(ex.Kernel, graph);
        var end = sched.Run();
        ctl.CheckEnd(sched, end);
        var outcome = end == ExecutionEnd.Completed ? ex.Observe() : null;
        return (end, outcome, ex, ctl.Mismatch);
    }

    private static string Title(Trace t)
    {
        string title = t.Invariant is null ? t.Scenario : $"{t.Scenario}: {t.Invariant}: {t.Message}";
        return t.Prelude.Count == 0 ? title
            : $"{title}\n(after replaying {t.Prelude.Count} earlier schedule(s) that took the other lock orders)";
    }

    /// <summary>The readable form of the execution the scheduler just ran.</summary>
    internal static TraceRun BuildRun(ExplorerScheduler s, string scenario, string? title, ExecutionEnd end, Outcome? outcome)
    {
        var log = s.Log;
        var findingsAt = new Dictionary<int, List<Finding>>();
        foreach (var (step, f) in log.Findings)
        {
            if (!findingsAt.TryGetValue(step, out var l))
            {
                findingsAt[step] = l = [];
            }
            l.Add(f);
        }
        var steps = new List<StepView>(log.Count);
        for (int i = 0; i < log.Count; i++)
        {
            ref var st = ref log.Steps[i];
            var effects = new List<string>();
            if (log.Effects is { } eff && i < eff.Length && eff[i] is { } list)
            {
                foreach (var e in list)
                {
                    effects.Add(e.Describe());
                }
            }
            var choices = new List<TraceChoice>();
            for (int d = 0; d < st.DataLen; d++)
            {
                var r = log.Data[st.DataStart + d];
                choices.Add(new TraceChoice(r.What, r.Count, r.Value));
            }
            steps.Add(new StepView(i, st.Thread, KernelSymbols.CName(st.Function), st.Kind, st.AfterSleep,
                ObjectName(s, st.Kind, st.Obj), st.LockCall, st.Preempted, effects,
                findingsAt.TryGetValue(i, out var fl) ? fl : [], choices));
        }
        var threads = new string[s.TaskCount];
        for (int i = 0; i < threads.Length; i++)
        {
            threads[i] = s.Slot(i).Name;
        }
        string ending = end switch
        {
            ExecutionEnd.Completed => "every thread finished",
            ExecutionEnd.Deadlock => "deadlock: no thread can run",
            ExecutionEnd.StepLimit => "step bound reached",
            ExecutionEnd.Defect => $"model defect: {s.Defect?.Message}",
            _ => s.StopReason ?? "stopped",
        };
        return new TraceRun(scenario, threads, steps) { Title = title, Ending = ending, Outcome = outcome };
    }

    private static string ObjectName(ExplorerScheduler s, SchedPointKind kind, ulong obj)
    {
        if (obj == 0 || kind is SchedPointKind.TaskStart or SchedPointKind.Syscall or SchedPointKind.UserAccess or SchedPointKind.HardwareWalk)
        {
            return "";
        }
        if (s.LockNames is { } names && names.TryGetValue(obj, out var n))
        {
            return n;
        }
        return ObjId.Describe(obj);
    }
}

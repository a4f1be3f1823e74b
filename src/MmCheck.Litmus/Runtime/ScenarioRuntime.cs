using System.Runtime.CompilerServices;
using Linux;
using MmCheck.Explorer;
using MmCheck.Litmus.Binding;
using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Runtime;

/// <summary>A scenario did something its own rules forbid at run time (a register holding a signal
/// used as an address). Reported with the statement's location, never a crash.</summary>
public sealed class ScenarioError(string message, SourceSpan span) : Exception(message)
{
    public SourceSpan Span { get; } = span;

    public override string ToString() => $"{Span}: {Message}";
}

/// <summary>
/// The registers of one scope, in the order they were first set. A scope holds a handful, so a
/// linear search of two small arrays beats a string-keyed dictionary (some 2 KB of the 26 KB an
/// execution of a seed scenario allocated: every thread and process has a scope).
/// </summary>
public sealed class Registers : IEnumerable<KeyValuePair<string, LitValue>>
{
    private string[] _names = new string[4];
    private LitValue[] _values = new LitValue[4];

    public int Count { get; private set; }

    private int IndexOf(string name)
    {
        for (int i = 0; i < Count; i++)
        {
            if (string.Equals(_names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }
        return -1;
    }

    public bool TryGetValue(string name, out LitValue value)
    {
        int i = IndexOf(name);
        value = i >= 0 ? _values[i] : LitValue.None;
        return i >= 0;
    }

    /// <summary>Sets a register, adding it if it has no value yet.</summary>
    public LitValue this[string name]
    {
        set
        {
            if (IndexOf(name) is var i and >= 0)
            {
                _values[i] = value;
            }
            else
            {
                Add(name, value);
            }
        }
    }

    /// <summary>Adds the register unless it already has a value; whether it was added.</summary>
    public bool TryAdd(string name, LitValue value)
    {
        if (IndexOf(name) >= 0)
        {
            return false;
        }
        Add(name, value);
        return true;
    }

    private void Add(string name, LitValue value)
    {
        if (Count == _names.Length)
        {
            Array.Resize(ref _names, Count * 2);
            Array.Resize(ref _values, Count * 2);
        }
        _names[Count] = name;
        _values[Count++] = value;
    }

    public IEnumerator<KeyValuePair<string, LitValue>> GetEnumerator()
    {
        for (int i = 0; i < Count; i++)
        {
            yield return new(_names[i], _values[i]);
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Register scopes: a thread's own registers, then its process's (init block); a forked
/// child's process scope is a copy of what the forking thread saw at the fork.</summary>
public sealed class Env(Env? parent)
{
    public readonly Registers Vars = new();
    public readonly Env? Parent = parent;

    public bool TryLookup(string name, out LitValue v)
    {
        for (var e = this; e is not null; e = e.Parent)
        {
            if (e.Vars.TryGetValue(name, out v))
            {
                return true;
            }
        }
        v = LitValue.None;
        return false;
    }

    /// <summary>Everything visible from here, flattened (a fork copies the caller's view).</summary>
    public Env Snapshot()
    {
        var chain = new List<Env>();
        for (var e = this; e is not null; e = e.Parent)
        {
            chain.Add(e);
        }
        var copy = new Env(null);
        for (int i = chain.Count - 1; i >= 0; i--)
        {
            foreach (var (k, v) in chain[i].Vars)
            {
                copy.Vars[k] = v;
            }
        }
        return copy;
    }
}

/// <summary>A process of a running scenario: its first task and its register scope.</summary>
public sealed class ProcessRuntime(string name, TaskStruct mainTask, Env env)
{
    public string Name { get; } = name;
    public TaskStruct MainTask { get; } = mainTask;
    /// <summary>The first thread of the process runs on its main task; later ones are new threads.</summary>
    public bool MainTaskClaimed { get; set; }
    public Env Env { get; } = env;
    public List<TaskStruct> Tasks { get; } = [mainTask];

    /// <summary>A task of the process whose mm is still alive (the process has not wholly exited).</summary>
    public TaskStruct? LiveTask => Tasks.FirstOrDefault(t => t.Mm is not null && t.SchedState != TaskSchedState.Dead) ??
                                   Tasks.FirstOrDefault(t => t.Mm is not null);
}

/// <summary>A scenario thread while it runs: its task, its registers, what it pinned.</summary>
public sealed class ThreadRuntime(string name, TaskStruct task, ProcessRuntime? process, Env env)
{
    public string Name { get; } = name;
    public TaskStruct Task { get; } = task;
    public ProcessRuntime? Process { get; } = process;
    public Env Env { get; } = env;
    /// <summary>Pages this thread pinned and has not unpinned yet, by user address.</summary>
    public List<(ulong Addr, Page Page)> Pinned { get; } = [];
    public bool Exited { get; set; }
}

/// <summary>One call of a verb: where, by whom, and the register the result goes to.</summary>
public readonly record struct VerbContext(ScenarioRuntime Runtime, ThreadRuntime Thread, string? Target)
{
    public Kernel K => Runtime.K;
}

/// <summary>
/// One run of a bound scenario on a fresh kernel: the init block on the direct scheduler, then the
/// threads as tasks of whichever scheduler runs them (the explorer's, or the direct one), each
/// statement a call through <see cref="VerbTable"/>; at the end, the locations the scenario
/// observes.
/// </summary>
public sealed class ScenarioRuntime
{
    private readonly Dictionary<(string Thread, int Index), List<BoundThread>> _waiters = [];

    private ScenarioRuntime(Kernel kernel, BoundScenario scenario)
    {
        K = kernel;
        Scenario = scenario;
        foreach (var t in scenario.Threads)
        {
            if (t.AfterThread is { } after)
            {
                var key = (after, t.AfterIndex);
                if (!_waiters.TryGetValue(key, out var list))
                {
                    _waiters[key] = list = [];
                }
                list.Add(t);
            }
        }
    }

    public Kernel K { get; }
    public BoundScenario Scenario { get; }
    public Dictionary<string, ProcessRuntime> Processes { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, ThreadRuntime> Threads { get; } = new(StringComparer.Ordinal);
    /// <summary>Device objects by scenario name.</summary>
    public Dictionary<string, object> Devices { get; } = new(StringComparer.Ordinal);
    /// <summary>Scenario errors met at run time, in order.</summary>
    public List<ScenarioError> Errors { get; } = [];
    /// <summary>What the kernel reported while the init block ran.</summary>
    public IReadOnlyList<Finding> SetupFindings { get; private set; } = [];

    /// <summary>Builds the kernel, the devices and processes, and runs the init block.</summary>
    public static ScenarioRuntime Create(BoundScenario scenario, LockGraph? lockGraph = null)
    {
        var config = lockGraph is null ? scenario.Config : scenario.Config with { LockGraph = lockGraph };
        var rt = new ScenarioRuntime(new Kernel(config), scenario);
        rt.Setup();
        return rt;
    }

    private void Setup()
    {
        foreach (var d in Scenario.Devices)
        {
            Devices[d.Name] = DeviceTable.Find(d.Kind)!.Create(K, d.Name, d.Values);
        }
        foreach (var p in Scenario.Processes.Where(p => !p.Forked))
        {
            var task = K.CreateProcess(p.Name);
            Processes[p.Name] = new ProcessRuntime(p.Name, task, new Env(null));
        }
        var initThreads = new Dictionary<string, ThreadRuntime>(StringComparer.Ordinal);
        foreach (var (process, statement) in Scenario.Init)
        {
            if (!Processes.TryGetValue(process, out var pr))
            {
                // Forked in the init block by a fork that failed.
                continue;
            }
            if (!initThreads.TryGetValue(process, out var it))
            {
                initThreads[process] = it = new ThreadRuntime(process, pr.MainTask, pr, pr.Env);
            }
            try
            {
                var v = K.Run(pr.MainTask, () => Evaluate(statement.Value, it, statement.Target));
                if (statement.Target is { } target)
                {
                    pr.Env.Vars[target] = v;
                }
            }
            catch (ScenarioError e)
            {
                Errors.Add(e);
            }
            catch (TaskIncompleteException)
            {
                // BUG or deadlock in the init block: the finding says which.
            }
        }
        SetupFindings = [.. K.Findings];
    }

    /// <summary>Hands the kernel to <paramref name="scheduler"/> and starts the threads that start
    /// at once; the others start when the statement they wait for has run.</summary>
    public void Start(Scheduler scheduler)
    {
        K.UseScheduler(scheduler);
        foreach (var t in Scenario.Threads)
        {
            if (t.AfterThread is null)
            {
                StartThread(t);
            }
        }
    }

    private void StartThread(BoundThread t)
    {
        TaskStruct task;
        ProcessRuntime? pr = null;
        Env env;
        if (t.Process is { } p)
        {
            if (!Processes.TryGetValue(p, out pr))
            {
                // The fork that was to create the process failed: its threads never run.
                return;
            }
            if (!pr.MainTaskClaimed && pr.MainTask.Mm is not null)
            {
                pr.MainTaskClaimed = true;
                task = pr.MainTask;
            }
            else if (pr.LiveTask is { } leader)
            {
                task = K.CreateThread(leader, t.Name);
                pr.Tasks.Add(task);
            }
            else
            {
                return;
            }
            env = new Env(pr.Env);
        }
        else
        {
            task = K.CreateKernelThread(t.Name);
            env = new Env(null);
        }
        var tr = new ThreadRuntime(t.Name, task, pr, env);
        Threads[t.Name] = tr;
        K.Sched.Spawn(task, () => RunThread(tr, t), t.Name);
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder))]
    private async ValueTask RunThread(ThreadRuntime tr, BoundThread t)
    {
        for (int i = 0; i < t.Body.Count && !tr.Exited; i++)
        {
            var s = t.Body[i];
            LitValue v;
            try
            {
                v = await Evaluate(s.Value, tr, s.Target);
            }
            catch (ScenarioError e)
            {
                Errors.Add(e);
                return;
            }
            if (s.Target is { } target)
            {
                tr.Env.Vars[target] = v;
                if (K.Sched.RecordsEffects)
                {
                    K.Sched.OnEffect(new NoteEffect($"{t.Name}:{target} = {v}"));
                }
            }
            if (_waiters.TryGetValue((t.Name, i), out var waiting))
            {
                foreach (var w in waiting)
                {
                    StartThread(w);
                }
            }
        }
    }

    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<LitValue> Evaluate(BoundExpr e, ThreadRuntime tr, string? target)
    {
        if (e is BoundCall call)
        {
            var args = new LitValue[call.Args.Count];
            for (int i = 0; i < args.Length; i++)
            {
                args[i] = Pure(call.Args[i], tr.Env);
            }
            return await call.Verb.Invoke(new VerbContext(this, tr, target), args);
        }
        return Pure(e, tr.Env);
    }

    /// <summary>Evaluates an expression without calls (the binder allows calls only at the top).</summary>
    private LitValue Pure(BoundExpr e, Env env)
    {
        switch (e)
        {
            case BoundConst c:
                return c.Value;
            case BoundRegister r:
                return env.TryLookup(r.Name, out var v)
                    ? v
                    : throw new ScenarioError($"register '{r.Name}' has no value here", r.Span);
            case BoundUnary u:
                return Evaluator.Unary(u.Operator, Number(Pure(u.Operand, env), u.Operand));
            case BoundBinary b:
                return Evaluator.Binary(b.Operator, Number(Pure(b.Left, env), b.Left), Number(Pure(b.Right, env), b.Right));
            case BoundDeviceMember m:
                return m.Kind.Member(Devices[m.Device], m.Member);
            default:
                throw new ScenarioError("a call cannot be nested in an expression", e.Span);
        }
    }

    private static LitValue Number(LitValue v, BoundExpr where) =>
        v.Kind == ValueKind.Number
            ? v
            : throw new ScenarioError($"'{where.Span.Text}' is {v}, not a number", where.Span);

    /// <summary>
    /// The final state: every location the scenario observes, in order. State views are read first
    /// (they change nothing); memory locations are then read by real loads from a fresh thread of the
    /// process, so a location reads what the process would read, signals included.
    /// Context: every scenario thread has ended.
    /// </summary>
    public Outcome Observe()
    {
        var raw = new LitValue[Scenario.Locations.Count];
        var memory = new List<int>();
        for (int i = 0; i < raw.Length; i++)
        {
            switch (Scenario.Locations[i])
            {
                case BoundRegisterLocation r:
                    raw[i] = Threads.TryGetValue(r.Thread, out var tr) && tr.Env.Vars.TryGetValue(r.Register, out var v) ? v : LitValue.None;
                    break;
                case BoundStateLocation s:
                    raw[i] = ProcessState(s.Subject, s.Address) is var (mm, addr) && mm is not null
                        ? StateViews.Read(K, mm, s.View, addr, s.Field)
                        : LitValue.None;
                    break;
                case BoundMemoryLocation:
                    memory.Add(i);
                    break;
                case BoundValueOperand c:
                    raw[i] = Pure(c.Value, new Env(null));
                    break;
            }
        }
        if (memory.Count > 0)
        {
            var direct = new DirectScheduler();
            K.UseScheduler(direct);
            foreach (int i in memory)
            {
                var m = (BoundMemoryLocation)Scenario.Locations[i];
                raw[i] = LoadAsSeenBy(m.Process, m.Address);
            }
        }
        var frames = new Dictionary<ulong, string>();
        var values = new List<KeyValuePair<string, string>>(raw.Length + 1);
        for (int i = 0; i < raw.Length; i++)
        {
            values.Add(new(Scenario.Locations[i].Display, Show(raw[i], frames)));
        }
        if (Errors.Count > 0)
        {
            values.Add(new("error", Errors[0].ToString()));
        }
        return new Outcome(values);
    }

    /// <summary>A value as outcomes print it: frames renamed in order of first appearance.</summary>
    private string Show(LitValue v, Dictionary<ulong, string> frames)
    {
        if (v.Kind != ValueKind.Frame)
        {
            return v.ToString();
        }
        if (K.IsZeroPfn(v.Unsigned))
        {
            return "zero_page";
        }
        if (!K.PfnValid(v.Unsigned))
        {
            // I/O memory has a fixed address the scenario chose (a BAR): print it as it is.
            return v.ToString();
        }
        if (!frames.TryGetValue(v.Unsigned, out var name))
        {
            frames[v.Unsigned] = name = "frame" + (frames.Count + 1);
        }
        return name;
    }

    /// <summary>The mm of a process at the end and an address evaluated in its final scope.</summary>
    private (MmStruct? Mm, ulong Addr)? ProcessState(string process, BoundExpr address)
    {
        if (!Processes.TryGetValue(process, out var pr) || pr.LiveTask?.Mm is not { } mm)
        {
            return null;
        }
        var env = FinalEnv(pr);
        try
        {
            var a = Pure(address, env);
            return a.Kind == ValueKind.Number ? (mm, a.Unsigned) : null;
        }
        catch (ScenarioError)
        {
            return null;
        }
    }

    /// <summary>A process's registers at the end: its own, then its threads' (declaration order).</summary>
    private Env FinalEnv(ProcessRuntime pr)
    {
        var env = pr.Env.Snapshot();
        foreach (var t in Scenario.Threads)
        {
            if (t.Process == pr.Name && Threads.TryGetValue(t.Name, out var tr))
            {
                foreach (var (k, v) in tr.Env.Vars)
                {
                    env.Vars.TryAdd(k, v);
                }
            }
        }
        return env;
    }

    private LitValue LoadAsSeenBy(string process, BoundExpr address)
    {
        if (ProcessState(process, address) is not var (mm, addr) || mm is null)
        {
            return LitValue.None;
        }
        var pr = Processes[process];
        var observer = K.CreateThread(pr.LiveTask!, "observer");
        pr.Tasks.Add(observer);
        try
        {
            var r = K.Run(observer, () => K.UserLoad(addr, 8));
            return r.Ok ? LitValue.Of(r.Value) : LitValue.Signal(r.Signal);
        }
        catch (TaskIncompleteException)
        {
            return LitValue.None;
        }
    }
}

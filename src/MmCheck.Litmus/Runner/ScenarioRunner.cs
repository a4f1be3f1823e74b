using Linux;
using MmCheck.Explorer;
using MmCheck.Litmus.Binding;
using MmCheck.Litmus.Runtime;
using MmCheck.Litmus.Syntax;
using ExplorerCondition = MmCheck.Explorer.Condition;
using ExplorerQuantifier = MmCheck.Explorer.Quantifier;
using SyntaxQuantifier = MmCheck.Litmus.Syntax.Quantifier;

namespace MmCheck.Litmus.Runner;

/// <summary>
/// A scenario as the explorer sees it: every execution starts from a fresh kernel with the init
/// block already run.
/// </summary>
/// <remarks>
/// The setups are built a few at a time, ahead of the executions that take them (up to
/// <see cref="MaxBuildAhead"/>, doubling from one, so that a scenario explored in one execution
/// builds one): building the same kernel, devices and processes and running the same init block
/// over and over while nothing else runs keeps that code and its data in the core's caches, where
/// between two executions the threads' kernel code and the explorer's tables had pushed it out
/// (docs/performance.md measures it on the seed scenarios, whose setup is a fifth to a third of an
/// execution).
/// They are built against a lock graph of their own, and each is handed to its execution's graph
/// with <see cref="Kernel.UseLockGraph"/>, which leaves that graph as if the init block had run
/// against it. Setups are per thread (each worker builds its own) and per scenario: the ones an
/// exploration leaves serve the next exploration of the same scenario on the thread.
/// </remarks>
public sealed class ScenarioTarget(BoundScenario scenario) : ExplorationTarget
{
    /// <summary>The most setups built in one go.</summary>
    private const int MaxBuildAhead = 8;

    public BoundScenario Scenario { get; } = scenario;

    /// <summary>At most this many setups are built in one go; 1 builds each execution's own, when
    /// it begins, against the execution's lock graph (what the tests compare with).</summary>
    internal int BuildAhead { get; init; } = MaxBuildAhead;

    public override string Name => Scenario.Name;

    public override Execution Prepare(ExplorerScheduler scheduler, LockGraph lockGraph)
    {
        ScenarioRuntime rt;
        if (BuildAhead <= 1)
        {
            rt = ScenarioRuntime.Create(Scenario, lockGraph);
        }
        else
        {
            rt = (t_built ??= new BuiltSetups()).Take(Scenario, BuildAhead);
            rt.K.UseLockGraph(lockGraph);
        }
        rt.Start(scheduler);
        return new Execution(rt.K, rt.Observe);
    }

    [ThreadStatic]
    private static BuiltSetups? t_built;

    /// <summary>One thread's setups of one scenario, built and not yet taken.</summary>
    private sealed class BuiltSetups
    {
        private readonly Queue<ScenarioRuntime> _ready = new();
        private BoundScenario? _scenario;
        /// <summary>What the setups' lockdep records into: the init block takes the same locks in
        /// the same order every time, so this holds each setup's dependencies in the order that
        /// setup would have added them.</summary>
        private readonly LockGraph _graph = new();
        private int _batch;

        public ScenarioRuntime Take(BoundScenario scenario, int most)
        {
            if (!ReferenceEquals(scenario, _scenario))
            {
                _scenario = scenario;
                // Their storage goes back to the thread's pools, as an observed execution's does.
                while (_ready.TryDequeue(out var unused))
                {
                    unused.K.Recycle();
                }
                _graph.Clear();
                _batch = 0;
            }
            if (_ready.Count == 0)
            {
                _batch = Math.Clamp(_batch * 2, 1, most);
                for (int i = 0; i < _batch; i++)
                {
                    _ready.Enqueue(ScenarioRuntime.Create(scenario, _graph));
                }
            }
            return _ready.Dequeue();
        }
    }
}

/// <summary>What the condition's proposition did over the distinct final states (herd7's words).</summary>
public enum Observation
{
    Always,
    Sometimes,
    Never,
}

/// <summary>One expectation and whether the exploration met it.</summary>
public sealed record ExpectationCheck(BoundExpectation Expectation, bool Met, string Detail);

/// <summary>A loaded scenario: the parsed tree, the bound scenario, every diagnostic.</summary>
public sealed record LoadedScenario(string Path, ScenarioAst? Ast, BoundScenario? Scenario, IReadOnlyList<Diagnostic> Diagnostics)
{
    public bool HasErrors => Scenario is null;
}

/// <summary>The result of exploring one scenario, judged against its expectations.</summary>
public sealed class ScenarioResult
{
    public required BoundScenario Scenario { get; init; }
    public required ExplorationResult Exploration { get; init; }
    /// <summary>Errors the init block or a thread hit (scenario errors and setup findings).</summary>
    public required IReadOnlyList<string> Errors { get; init; }
    /// <summary>For each distinct final state: whether it satisfies the condition's proposition.</summary>
    public required IReadOnlyList<(Outcome Outcome, long Count, bool? Satisfies)> States { get; init; }
    public int Positive { get; init; }
    public int Negative { get; init; }
    public Observation? Observed { get; init; }
    /// <summary>The quantified condition held (herd's Ok/No), when there is one.</summary>
    public bool? ConditionHolds { get; init; }
    public required IReadOnlyList<ExpectationCheck> Checks { get; init; }
    /// <summary>Invariants violated that no expectation named.</summary>
    public required IReadOnlyList<string> UnexpectedViolations { get; init; }

    public bool Complete => Exploration.Complete;

    /// <summary>Every expectation met, no unexpected violation, no scenario error.</summary>
    public bool Ok => Errors.Count == 0 && UnexpectedViolations.Count == 0 && Checks.All(c => c.Met);

    /// <summary>What the scenario expects, as its expectation lines say it ("always", "violation X"; "clean" when silent).</summary>
    public string Expected => Scenario.Expectations.Count == 0 ? "clean" : string.Join(", ", Scenario.Expectations);

    /// <summary>What was observed, in the expectations' terms.</summary>
    public string ObservedText
    {
        get
        {
            var parts = new List<string>();
            if (Observed is { } o)
            {
                parts.Add(o.ToString().ToLowerInvariant());
            }
            var inv = Exploration.Violations.Select(v => v.Invariant).Distinct().ToList();
            parts.Add(inv.Count == 0 ? "clean" : string.Join(", ", inv.Select(i => "violation " + i)));
            if (Errors.Count > 0)
            {
                parts.Add("error");
            }
            return string.Join(", ", parts);
        }
    }
}

/// <summary>Loads, explores and judges scenarios: the scenario layer's entry point for the CLI and tests.</summary>
public static class ScenarioRunner
{
    /// <summary>Parses and binds a scenario file; diagnostics carry file:line:col.</summary>
    public static LoadedScenario Load(string path)
    {
        string text;
        try
        {
            text = System.IO.File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var src = SourceText.From("", path);
            return new LoadedScenario(path, null, null,
                [new Diagnostic(DiagnosticSeverity.Error, "LIT0902", $"cannot read '{path}': {e.Message}", new SourceSpan(src, 0, 0))]);
        }
        return LoadText(text, path);
    }

    public static LoadedScenario LoadText(string text, string fileName)
    {
        var parsed = LitmusParser.Parse(text, fileName);
        if (parsed.HasErrors || parsed.Scenario is null)
        {
            return new LoadedScenario(fileName, parsed.Scenario, null, parsed.Diagnostics);
        }
        var bound = Binder.Bind(parsed.Scenario);
        return new LoadedScenario(fileName, parsed.Scenario, bound.Scenario, [.. parsed.Diagnostics, .. bound.Diagnostics]);
    }

    /// <summary>The explorer's form of the scenario's final condition.</summary>
    public static ExplorerCondition? ConditionOf(BoundScenario s) =>
        s.Condition is { } c
            ? new ExplorerCondition(
                c.Quantifier switch
                {
                    SyntaxQuantifier.Exists => ExplorerQuantifier.Exists,
                    SyntaxQuantifier.NotExists => ExplorerQuantifier.NotExists,
                    _ => ExplorerQuantifier.Forall,
                },
                o => Satisfies(c.Prop, o),
                c.ToString())
            : null;

    /// <summary>Evaluates a proposition over an outcome's printed values: equal values print equal,
    /// frames included, since they are renamed consistently within one outcome.</summary>
    public static bool Satisfies(BoundProp p, Outcome o) => p switch
    {
        BoundComparison c => (ValueOf(c.Left, o) == ValueOf(c.Right, o)) == c.Equal,
        BoundNot n => !Satisfies(n.Operand, o),
        BoundLogical { And: true } l => Satisfies(l.Left, o) && Satisfies(l.Right, o),
        BoundLogical l => Satisfies(l.Left, o) || Satisfies(l.Right, o),
        _ => false,
    };

    private static string? ValueOf(BoundLocation l, Outcome o) =>
        l is BoundValueOperand { Value: BoundConst c } ? c.Value.ToString() : o[l.Display];

    /// <summary>Runs the init block once on its own to report what it does wrong before exploring.</summary>
    public static IReadOnlyList<string> CheckSetup(BoundScenario s)
    {
        var rt = ScenarioRuntime.Create(s);
        return [.. rt.Errors.Select(e => e.ToString()), .. rt.SetupFindings.Select(f => "in the init block: " + f)];
    }

    /// <summary>Explores a bound scenario and judges the result against its expectations.</summary>
    public static ScenarioResult Explore(BoundScenario s, ExplorationOptions options, IProgress<ExplorationProgress>? progress = null) =>
        Explore(s, new ScenarioTarget(s), options, progress);

    /// <summary>Explores <paramref name="target"/>, a <see cref="ScenarioTarget"/> of <paramref name="s"/>
    /// or one wrapping it (a benchmark's timed target), and judges the result.</summary>
    public static ScenarioResult Explore(BoundScenario s, ExplorationTarget target, ExplorationOptions options, IProgress<ExplorationProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        var condition = ConditionOf(s);
        var setupErrors = CheckSetup(s);
        var opts = options with { Condition = condition };
        var result = MmCheck.Explorer.Explorer.Explore(target, opts, progress);
        return Judge(s, result, setupErrors);
    }

    /// <summary>Judges an exploration of <paramref name="s"/> against its expectations.</summary>
    public static ScenarioResult Judge(BoundScenario s, ExplorationResult result, IReadOnlyList<string> setupErrors)
    {
        var errors = new List<string>(setupErrors);
        var states = new List<(Outcome, long, bool?)>();
        int pos = 0, neg = 0;
        foreach (var (o, count) in result.Outcomes)
        {
            if (o["error"] is { } err && !errors.Contains(err))
            {
                errors.Add(err);
            }
            bool? sat = s.Condition is { } c ? Satisfies(c.Prop, o) : null;
            if (sat == true)
            {
                pos++;
            }
            else if (sat == false)
            {
                neg++;
            }
            states.Add((o, count, sat));
        }
        Observation? observed = null;
        bool? holds = null;
        if (s.Condition is { } cond && result.Outcomes.Count > 0)
        {
            observed = neg == 0 ? Observation.Always : pos == 0 ? Observation.Never : Observation.Sometimes;
            holds = cond.Quantifier switch
            {
                SyntaxQuantifier.Exists => pos > 0,
                SyntaxQuantifier.NotExists => pos == 0,
                _ => neg == 0,
            };
        }
        var found = result.Violations.Select(v => v.Invariant).Distinct(StringComparer.Ordinal).ToList();
        var checks = new List<ExpectationCheck>();
        foreach (var e in s.Expectations)
        {
            checks.Add(e.Kind switch
            {
                ExpectationKind.Always or ExpectationKind.Sometimes or ExpectationKind.Never => CheckObservation(e, observed),
                ExpectationKind.Clean => new ExpectationCheck(e, found.Count == 0,
                    found.Count == 0 ? (result.Complete ? "no violation, complete" : "no violation in the schedules explored") : "violated: " + string.Join(", ", found)),
                _ => new ExpectationCheck(e, found.Contains(e.Invariant!),
                    found.Contains(e.Invariant!) ? "found" : result.Complete ? "not found, exploration complete" : "not found in the schedules explored"),
            });
        }
        var expectedViolations = s.Expectations.Where(e => e.Kind == ExpectationKind.Violation).Select(e => e.Invariant!).ToHashSet(StringComparer.Ordinal);
        var unexpected = found.Where(f => !expectedViolations.Contains(f)).ToList();
        return new ScenarioResult
        {
            Scenario = s,
            Exploration = result,
            Errors = errors,
            States = states,
            Positive = pos,
            Negative = neg,
            Observed = observed,
            ConditionHolds = holds,
            Checks = checks,
            UnexpectedViolations = unexpected,
        };
    }

    private static ExpectationCheck CheckObservation(BoundExpectation e, Observation? observed)
    {
        var want = e.Kind switch
        {
            ExpectationKind.Always => Observation.Always,
            ExpectationKind.Sometimes => Observation.Sometimes,
            _ => Observation.Never,
        };
        return observed is null
            ? new ExpectationCheck(e, false, "no execution finished")
            : new ExpectationCheck(e, observed == want, observed.Value.ToString().ToLowerInvariant());
    }
}

using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using MmCheck.Conformance.Native;
using MmCheck.Litmus.Syntax;

namespace MmCheck.Conformance;

/// <summary>Knobs of a conformance run.</summary>
public sealed record ConformanceOptions
{
    /// <summary>Shrink each disagreeing case (re-running both sides) before reporting it.</summary>
    public bool Shrink { get; init; } = true;

    /// <summary>Budget of re-runs per shrink.</summary>
    public int MaxShrinkRuns { get; init; } = 300;

    public GeneratorOptions Generator { get; init; } = new();

    /// <summary>Where the oracle binary is cached (default $TMPDIR/mmcheck-oracle).</summary>
    public string? OracleWorkDir { get; init; }

    /// <summary>Called after each case.</summary>
    public Action<CaseOutcome>? Progress { get; init; }
}

/// <summary>What happened to one case.</summary>
public enum CaseVerdict
{
    Agreed,
    Skipped,
    Disagreed,
}

/// <summary>One case's outcome; <see cref="Reason"/> for skips, <see cref="Disagreement"/> for disagreements.</summary>
public sealed record CaseOutcome(string Case, CaseVerdict Verdict, string? Reason = null, DisagreementReport? Disagreement = null);

/// <summary>A skipped case and why.</summary>
public sealed record SkippedCase(string Case, string Reason);

/// <summary>
/// A disagreeing case: the case, the first differing observation, both sides' observations, and the
/// shrunk case (with its own first difference) printed as litmus text with both sides'
/// observations in its description.
/// </summary>
public sealed record DisagreementReport(
    ConformanceCase Case,
    Disagreement First,
    CaseRun Model,
    CaseRun Native,
    ConformanceCase Shrunk,
    Disagreement ShrunkFirst,
    string Litmus);

/// <summary>The result of <see cref="Conformance.Run(IEnumerable{string}, int, int, ConformanceOptions?)"/>.</summary>
public sealed class ConformanceReport
{
    public int Cases { get; init; }

    public int Agreed { get; init; }

    public IReadOnlyList<SkippedCase> Skipped { get; init; } = [];

    public IReadOnlyList<DisagreementReport> Disagreements { get; init; } = [];

    /// <summary>Why no case could run at all (the oracle is unavailable), or null.</summary>
    public string? Unavailable { get; init; }

    /// <summary>
    /// <c>{"cases": n, "agreed": n, "skipped": [{"case", "reason"}], "disagreements": [{"case", "ops",
    /// "op", "model", "native", "reason", "shrunk"}]}</c>: each disagreement with its case (name and
    /// operations) and its first differing observation.
    /// </summary>
    public string ToJson(bool indented = true)
    {
        using var stream = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartObject();
            w.WriteNumber("cases", Cases);
            w.WriteNumber("agreed", Agreed);
            w.WriteStartArray("skipped");
            foreach (var s in Skipped)
            {
                w.WriteStartObject();
                w.WriteString("case", s.Case);
                w.WriteString("reason", s.Reason);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("disagreements");
            foreach (var d in Disagreements)
            {
                w.WriteStartObject();
                w.WriteString("case", d.Case.Name);
                w.WriteStartArray("ops");
                for (int i = 0; i < d.Case.Ops.Length; i++)
                {
                    w.WriteStringValue($"#{i.ToString(CultureInfo.InvariantCulture)} {d.Case.Ops[i]}");
                }
                w.WriteEndArray();
                w.WriteNumber("op", d.First.Op);
                w.WriteString("model", d.First.Model);
                w.WriteString("native", d.First.Native);
                w.WriteString("reason", d.First.Reason);
                w.WriteString("shrunk", d.Litmus);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (Unavailable is not null)
            {
                w.WriteString("unavailable", Unavailable);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>A readable summary: counts, skip reasons grouped, each disagreement with its shrunk litmus.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"conformance: {Cases} case(s), {Agreed} agreed, {Skipped.Count} skipped, {Disagreements.Count} disagreed\n");
        foreach (var g in Skipped.GroupBy(s => s.Reason).OrderByDescending(g => g.Count()))
        {
            sb.Append(CultureInfo.InvariantCulture, $"  skipped {g.Count()}: {g.Key}\n");
        }
        foreach (var d in Disagreements)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\nDISAGREEMENT in {d.Case.Name} at {d.First}\n");
            sb.Append(CultureInfo.InvariantCulture, $"  #{d.First.Op} {d.Case.Ops[d.First.Op]}\n");
            sb.Append(CultureInfo.InvariantCulture, $"shrunk to {d.Shrunk.Ops.Length} op(s), first difference {d.ShrunkFirst}:\n");
            sb.Append(d.Litmus);
        }
        return sb.ToString();
    }
}

/// <summary>
/// Runs scenarios and random cases on the model and natively on this machine's kernel and compares
/// every observation. A disagreement is a model bug until proven otherwise; cases that cannot be
/// compared are skipped with the reason (oracle unavailable, not root or PFNs hidden, a scenario
/// that cannot be lowered, a feature the model does not have yet), never passed silently.
/// </summary>
public static class Conformance
{
    /// <summary>Scenario files or folders (searched for *.litmus), then <paramref name="randomCount"/>
    /// random cases from <paramref name="seed"/>.</summary>
    public static ConformanceReport Run(IEnumerable<string> paths, int randomCount, int seed, ConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var items = new List<(string Name, ConformanceCase? Case, string? Skip)>();
        foreach (var file in ExpandPaths(paths))
        {
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                items.Add((file, null, $"cannot read: {e.Message}"));
                continue;
            }
            var lowered = LitmusLowering.Lower(text, file);
            items.Add((file, lowered.Case, lowered.Error is null ? null : "cannot lower: " + lowered.Error));
        }
        return RunItems(items, randomCount, seed, options);
    }

    /// <summary>Parsed scenarios, then <paramref name="randomCount"/> random cases from <paramref name="seed"/>.</summary>
    public static ConformanceReport Run(IEnumerable<ScenarioAst> scenarios, int randomCount, int seed, ConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scenarios);
        return Run(scenarios.Select(s => (s.Name.Text, s)), randomCount, seed, options);
    }

    /// <summary>Parsed scenarios under the names the report gives them (their files, for the CLI),
    /// then <paramref name="randomCount"/> random cases from <paramref name="seed"/>.</summary>
    public static ConformanceReport Run(IEnumerable<(string Name, ScenarioAst Scenario)> scenarios, int randomCount, int seed, ConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scenarios);
        var items = scenarios.Select(s =>
        {
            var lowered = LitmusLowering.Lower(s.Scenario);
            return (s.Name, lowered.Case, lowered.Error is null ? null : "cannot lower: " + lowered.Error);
        }).ToList();
        return RunItems(items, randomCount, seed, options);
    }

    /// <summary><paramref name="count"/> random cases from <paramref name="seed"/>.</summary>
    public static ConformanceReport RunRandom(int count, int seed, ConformanceOptions? options = null) =>
        RunItems([], count, seed, options);

    /// <summary>Explicit cases.</summary>
    public static ConformanceReport RunCases(IEnumerable<ConformanceCase> cases, ConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(cases);
        return RunItems([.. cases.Select(c => (c.Name, (ConformanceCase?)c, (string?)null))], 0, 0, options);
    }

    private static IEnumerable<string> ExpandPaths(IEnumerable<string> paths)
    {
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
            {
                foreach (var f in Directory.EnumerateFiles(p, "*.litmus", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    yield return f;
                }
            }
            else
            {
                yield return p;
            }
        }
    }

    private static ConformanceReport RunItems(List<(string Name, ConformanceCase? Case, string? Skip)> items, int randomCount, int seed,
        ConformanceOptions? options)
    {
        options ??= new ConformanceOptions();
        var all = items.Concat(new Generator(seed, options.Generator).GenerateCases(randomCount).Select(c => (c.Name, (ConformanceCase?)c, (string?)null)))
            .ToList();
        var skipped = new List<SkippedCase>();
        var disagreements = new List<DisagreementReport>();
        int agreed = 0;

        string? unavailable;
        try
        {
            var availability = NativeOracle.Availability(options.OracleWorkDir);
            unavailable = !availability.CanRun ? "native oracle unavailable: " + availability.Reason
                : !availability.CanReadPfns ? "PFNs hidden (not root?): " + availability.Reason
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unavailable = $"native oracle unavailable: {e.Message}";
        }
        NativeRunner? native = null;
        if (unavailable is null)
        {
            try
            {
                native = new NativeRunner(options.OracleWorkDir);
            }
            catch (Exception e) when (e is NativeOracleException or IOException or UnauthorizedAccessException)
            {
                unavailable = "native oracle unavailable: " + e.Message;
            }
        }
        try
        {
            var model = native is null ? null : new ModelRunner(native.Layout);
            foreach (var (name, c, skip) in all)
            {
                CaseOutcome outcome;
                if (skip is not null || c is null)
                {
                    outcome = new CaseOutcome(name, CaseVerdict.Skipped, skip ?? "no case");
                }
                else if (unavailable is not null)
                {
                    outcome = new CaseOutcome(name, CaseVerdict.Skipped, unavailable);
                }
                else
                {
                    outcome = RunOne(c, model!, native!, options);
                }
                switch (outcome.Verdict)
                {
                    case CaseVerdict.Agreed:
                        agreed++;
                        break;
                    case CaseVerdict.Skipped:
                        skipped.Add(new SkippedCase(outcome.Case, outcome.Reason!));
                        break;
                    default:
                        disagreements.Add(outcome.Disagreement!);
                        break;
                }
                options.Progress?.Invoke(outcome);
            }
        }
        finally
        {
            native?.Dispose();
        }
        return new ConformanceReport
        {
            Cases = all.Count,
            Agreed = agreed,
            Skipped = skipped,
            Disagreements = disagreements,
            Unavailable = unavailable,
        };
    }

    /// <summary>Runs one case on both sides, compares, classifies, and shrinks a disagreement.</summary>
    public static CaseOutcome RunOne(ConformanceCase c, ModelRunner model, NativeRunner native, ConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(native);
        options ??= new ConformanceOptions();
        if (c.Validate() is { } invalid)
        {
            return new CaseOutcome(c.Name, CaseVerdict.Skipped, "malformed case: " + invalid);
        }
        var n = native.Run(c);
        if (n.Skipped)
        {
            return new CaseOutcome(c.Name, CaseVerdict.Skipped, n.SkipReason);
        }
        var m = model.Run(c);
        var d = Comparator.Compare(c, m, n);
        if (d is null)
        {
            return new CaseOutcome(c.Name, CaseVerdict.Agreed);
        }
        if (MissingFeature(c, d) is { } missing)
        {
            return new CaseOutcome(c.Name, CaseVerdict.Skipped, missing);
        }
        var shrunk = new ShrinkResult(c, d, 0);
        // A model that hangs leaves a spinning thread behind; do not multiply them by shrinking.
        bool hung = d.Model.Contains("did not finish", StringComparison.Ordinal);
        if (options.Shrink && !hung)
        {
            var shrinker = new Shrinker(cand =>
            {
                var nn = native.Run(cand);
                return nn.Skipped ? null : Comparator.Compare(cand, model.Run(cand), nn);
            }, options.MaxShrinkRuns);
            shrunk = shrinker.Shrink(c, d);
        }
        var sm = hung ? m : model.Run(shrunk.Case);
        var sn = hung ? n : native.Run(shrunk.Case);
        string litmus = CasePrinter.Print(shrunk.Case with { Name = c.Name + "-shrunk" }, Describe(shrunk.Case, shrunk.Disagreement, sm, sn));
        return new CaseOutcome(c.Name, CaseVerdict.Disagreed, null,
            new DisagreementReport(c, d, m, n, shrunk.Case, shrunk.Disagreement, litmus));
    }

    /// <summary>A model that answers -ENOSYS does not have the feature yet: the case is skipped
    /// (reported with the reason), not counted as a disagreement.</summary>
    private static string? MissingFeature(ConformanceCase c, Disagreement d) =>
        d.Reason == "result" && d.Model.StartsWith("-ENOSYS", StringComparison.Ordinal) && !d.Native.StartsWith("-ENOSYS", StringComparison.Ordinal)
            ? $"feature missing in the model: {Op.VerbName(c.Ops[d.Op].Kind)} returns -ENOSYS"
            : null;

    /// <summary>Both sides' observations, one line per operation, for the litmus description.</summary>
    public static string Describe(ConformanceCase c, Disagreement d, CaseRun model, CaseRun native)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(d);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(native);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"conformance disagreement at #{d.Op} ({d.Reason}); observations model | native:");
        for (int i = 0; i < c.Ops.Length; i++)
        {
            string mo = i < model.Observations.Length ? model.Observations[i].Text : "-";
            string no = i < native.Observations.Length ? native.Observations[i].Text : "-";
            sb.Append(CultureInfo.InvariantCulture, $"\n   #{i} {Op.VerbName(c.Ops[i].Kind)}: ");
            sb.Append(mo == no ? mo : $"{mo} | {no}");
            if (i == d.Op)
            {
                sb.Append("   <== first difference");
            }
        }
        if (native.SkipReason is not null)
        {
            sb.Append("\n   native: ").Append(native.SkipReason);
        }
        return sb.ToString();
    }

    /// <summary>The observation lists of both sides, for tests and tools.</summary>
    public static ImmutableArray<(Observation Model, Observation Native)> Pair(CaseRun model, CaseRun native)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(native);
        return [.. model.Observations.Zip(native.Observations)];
    }
}

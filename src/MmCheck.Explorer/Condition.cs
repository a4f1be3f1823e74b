namespace MmCheck.Explorer;

/// <summary>How a final condition ranges over the explored outcomes (herd7's quantifiers).</summary>
public enum Quantifier
{
    /// <summary>Some outcome satisfies the predicate.</summary>
    Exists,
    /// <summary>No outcome satisfies it (<c>~exists</c>).</summary>
    NotExists,
    /// <summary>Every outcome satisfies it.</summary>
    Forall,
}

/// <summary>A scenario's final condition: a predicate over one outcome and a quantifier over all.</summary>
public sealed class Condition
{
    public Condition(Quantifier quantifier, Func<Outcome, bool> predicate, string text = "")
    {
        ArgumentNullException.ThrowIfNull(predicate);
        Quantifier = quantifier;
        Predicate = predicate;
        Text = text;
    }

    public Quantifier Quantifier { get; }
    public Func<Outcome, bool> Predicate { get; }
    /// <summary>The condition as the scenario wrote it, for reports.</summary>
    public string Text { get; }

    /// <summary>Evaluates the condition over <paramref name="outcomes"/> (the distinct final states).</summary>
    public ConditionVerdict Evaluate(IEnumerable<Outcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        var yes = new List<Outcome>();
        var no = new List<Outcome>();
        foreach (var o in outcomes)
        {
            (Predicate(o) ? yes : no).Add(o);
        }
        bool holds = Quantifier switch
        {
            Quantifier.Exists => yes.Count > 0,
            Quantifier.NotExists => yes.Count == 0,
            _ => no.Count == 0,
        };
        return new ConditionVerdict(holds, yes, no);
    }

    public override string ToString() => Text.Length > 0 ? Text : Quantifier.ToString();
}

/// <summary>
/// Whether a condition held, with the outcomes on each side. <see cref="Witness"/> is the trace of
/// the outcome that decides it: a satisfying one for <c>exists</c>, an offending one for
/// <c>forall</c> and <c>~exists</c> (null when no single outcome decides it).
/// </summary>
public sealed record ConditionVerdict(bool Holds, IReadOnlyList<Outcome> Satisfying, IReadOnlyList<Outcome> Failing)
{
    public Outcome? Deciding { get; init; }
    public Trace? Witness { get; init; }
}

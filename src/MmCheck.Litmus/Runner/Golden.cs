using System.Text;
using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Runner;

/// <summary>
/// The golden form of a result, kept beside a scenario as <c>NAME.litmus.expected</c>. Shaped after
/// herd7's output — the distinct final states, Ok/No, the witnesses, the observation — plus what
/// MmCheck adds: the invariants violated, whether the bounded space was covered, and the verdict.
/// It holds only what does not depend on exploration order or timing (no schedule counts).
/// </summary>
public static class Golden
{
    public const string Extension = ".expected";

    public static string Render(ScenarioResult r)
    {
        var s = r.Scenario;
        var sb = new StringBuilder();
        string kind = s.Condition?.Quantifier == Quantifier.Forall ? "Required" : "Allowed";
        sb.Append("Test ").Append(s.Name).Append(' ').Append(kind).Append('\n');
        sb.Append("Kernel ").Append(s.KernelName);
        foreach (var v in s.Config.Variants.Describe())
        {
            sb.Append(' ').Append(v);
        }
        sb.Append('\n');
        sb.Append("States ").Append(r.States.Count).Append('\n');
        foreach (var (o, _, sat) in r.States)
        {
            foreach (var kv in o.Values)
            {
                sb.Append(kv.Key).Append('=').Append(kv.Value).Append("; ");
            }
            if (sat == true)
            {
                sb.Append("(*)");
            }
            TrimEnd(sb);
            sb.Append('\n');
        }
        if (s.Condition is { } c)
        {
            sb.Append(r.ConditionHolds == true ? "Ok" : "No").Append('\n');
            sb.Append("Witnesses\n");
            sb.Append("Positive: ").Append(r.Positive).Append(" Negative: ").Append(r.Negative).Append('\n');
            sb.Append("Condition ").Append(c).Append('\n');
            sb.Append("Observation ").Append(s.Name).Append(' ').Append(r.Observed?.ToString() ?? "None").Append('\n');
        }
        var violations = r.Exploration.Violations.Select(v => v.Invariant).Distinct().Order(StringComparer.Ordinal).ToList();
        sb.Append("Violations ").Append(violations.Count == 0 ? "none" : string.Join(" ", violations)).Append('\n');
        foreach (var e in r.Errors)
        {
            sb.Append("Error ").Append(e).Append('\n');
        }
        sb.Append("Coverage ").Append(r.Complete ? "complete" : "incomplete").Append('\n');
        sb.Append("Expect ").Append(r.Expected).Append(": ").Append(r.Ok ? "ok" : "FAILED (observed " + r.ObservedText + ")").Append('\n');
        return sb.ToString();
    }

    private static void TrimEnd(StringBuilder sb)
    {
        while (sb.Length > 0 && sb[^1] == ' ')
        {
            sb.Length--;
        }
    }

    /// <summary>The golden file of a scenario file.</summary>
    public static string PathFor(string scenarioPath) => scenarioPath + Extension;
}

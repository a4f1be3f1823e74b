using System.Globalization;
using System.Text;

namespace MmCheck.Litmus.Syntax;

/// <summary>The outcome of parsing one file.</summary>
public sealed class ParseResult
{
    internal ParseResult(ScenarioAst? scenario, IReadOnlyList<Diagnostic> diagnostics, long steps, int forcedAdvances)
    {
        Scenario = scenario;
        Diagnostics = diagnostics;
        HasErrors = diagnostics.Any(d => d.IsError);
        Steps = steps;
        ForcedAdvances = forcedAdvances;
    }

    /// <summary>
    /// The tree, also when there are errors: then it holds what parsed cleanly, and broken
    /// statements and sections are left out, and a missing header name is empty. Null only when
    /// the file was not parsed at all: over <see cref="LitmusParser.MaxInputBytes"/>, or (on a
    /// thread with a tiny stack) nested too deeply.
    /// </summary>
    public ScenarioAst? Scenario { get; }

    /// <summary>In source order.</summary>
    public IReadOnlyList<Diagnostic> Diagnostics { get; }

    public bool HasErrors { get; }

    internal long Steps { get; }

    internal int ForcedAdvances { get; }
}

/// <summary>Parses scenario files. Never throws on any input and always terminates.</summary>
public static class LitmusParser
{
    /// <summary>Scenario files are short; anything past 1 MiB is a mistake, not a scenario.</summary>
    public const int MaxInputBytes = 1 << 20;

    public static ParseResult Parse(string text, string fileName = "<input>") => Parse(SourceText.From(text, fileName));

    public static ParseResult Parse(SourceText source)
    {
        ArgumentNullException.ThrowIfNull(source);

        // UTF-8 is how the file sat on disk; a char count would let a 3 MiB CJK file through.
        int bytes = Encoding.UTF8.GetByteCount(source.Text);
        if (bytes > MaxInputBytes)
        {
            string size = bytes.ToString("N0", CultureInfo.InvariantCulture);
            var tooLarge = new Diagnostic(
                DiagnosticSeverity.Error,
                DiagnosticCodes.InputTooLarge,
                $"expected a scenario file of at most 1 MiB but found {size} bytes; the file was not parsed",
                new SourceSpan(source, 0, 0),
                "a scenario file of at most 1 MiB",
                $"{size} bytes");
            return new ParseResult(null, [tooLarge], 0, 0);
        }

        var parser = new Parser(source);
        ScenarioAst scenario;
        try
        {
            scenario = parser.ParseScenario();
        }
        catch (InsufficientExecutionStackException)
        {
            // Only reachable on a thread with a tiny stack; the nesting limit covers the default one.
            var tooDeep = new Diagnostic(
                DiagnosticSeverity.Error,
                DiagnosticCodes.NestingTooDeep,
                "the scenario is nested too deeply to parse on this thread's stack",
                new SourceSpan(source, 0, 0));
            return new ParseResult(null, [.. parser.SortedDiagnostics(), tooDeep], parser.Steps, parser.ForcedAdvances);
        }

        return new ParseResult(scenario, parser.SortedDiagnostics(), parser.Steps, parser.ForcedAdvances);
    }
}

using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Tests;

internal static class Litmus
{
    /// <summary>A scenario with a header, a minimal thread, and the given text after it.</summary>
    public static string WithThread(string rest) => "MM t\nthread T0 {\n  f();\n}\n" + rest;

    public static ParseResult Parse(string text, string fileName = "test.litmus") => LitmusParser.Parse(text, fileName);

    /// <summary>Parses text that must be valid, and checks that it survives the printer's round trip.</summary>
    public static ScenarioAst ParseClean(string text)
    {
        var result = Parse(text);
        Assert.True(result.Diagnostics.Count == 0, DiagnosticFormatter.Format(result.Diagnostics));
        Assert.NotNull(result.Scenario);
        AssertRoundTrips(result.Scenario);
        return result.Scenario;
    }

    public static void AssertRoundTrips(ScenarioAst scenario)
    {
        string printed = LitmusPrinter.Print(scenario);
        var reparsed = Parse(printed, "printed.litmus");
        Assert.True(reparsed.Diagnostics.Count == 0, printed + "\n" + DiagnosticFormatter.Format(reparsed.Diagnostics));
        Assert.True(SyntaxEquivalence.AreEquivalent(scenario, reparsed.Scenario), "round trip changed the tree:\n" + printed);

        // The printed form is canonical: printing it again changes nothing.
        Assert.Equal(printed, LitmusPrinter.Print(reparsed.Scenario!));
    }

    /// <summary>The statements of the single thread of <see cref="WithThread"/>-less scenarios.</summary>
    public static Statement OnlyStatement(string statement)
    {
        var scenario = ParseClean($"MM t\nthread T0 {{\n  {statement}\n}}\n");
        return Assert.Single(Assert.Single(scenario.Threads).Body);
    }

    public static Expression Expr(string expression) => OnlyStatement($"x = {expression};").Value;

    public static Proposition Prop(string condition) =>
        ParseClean(WithThread($"exists ({condition})\n")).Condition!.Proposition;

    /// <summary>The one diagnostic of a text with exactly one error.</summary>
    public static Diagnostic SingleError(string text)
    {
        var result = Parse(text);
        Assert.True(result.Diagnostics.Count == 1, DiagnosticFormatter.Format(result.Diagnostics));
        Assert.True(result.HasErrors);
        return result.Diagnostics[0];
    }

    public static void AssertAt(Diagnostic diagnostic, int line, int column)
    {
        Assert.True(
            (line, column) == (diagnostic.Span.Line, diagnostic.Span.Column),
            $"expected {line}:{column}, got {DiagnosticFormatter.Format(diagnostic)}");
    }

    public static void AssertExpectedFound(Diagnostic diagnostic, string expected, string found)
    {
        Assert.Equal(expected, diagnostic.Expected);
        Assert.Equal(found, diagnostic.Found);
        Assert.Contains($"expected {expected}", diagnostic.Message, StringComparison.Ordinal);
        Assert.Contains($"but found {found}", diagnostic.Message, StringComparison.Ordinal);
    }

    public static string Name(Expression expression) => Assert.IsType<NameExpression>(expression).Name;

    public static ulong Int(Expression expression) => Assert.IsType<IntegerLiteral>(expression).Value;
}

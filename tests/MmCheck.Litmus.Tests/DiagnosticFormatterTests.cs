using MmCheck.Litmus.Syntax;
using static MmCheck.Litmus.Tests.Litmus;

namespace MmCheck.Litmus.Tests;

public class DiagnosticFormatterTests
{
    [Fact]
    public void Renders_header_source_line_and_caret_like_a_compiler()
    {
        // The example of the design brief, span and all.
        string text = string.Concat(Enumerable.Repeat("x\n", 11)) + "  P: buf = mmap(NULL, 1 page;\n";
        var source = new SourceText("scenarios/cow/x.litmus", text);
        int start = source.GetLineStart(12) + 16;
        var diagnostic = new Diagnostic(
            DiagnosticSeverity.Error, DiagnosticCodes.UnexpectedToken, "expected ')' but found ';'", new SourceSpan(source, start, 14), "')'", "';'");

        Assert.Equal(
            """
            scenarios/cow/x.litmus:12:17: error: expected ')' but found ';'
               12 |   P: buf = mmap(NULL, 1 page;
                  |                 ^~~~~~~~~~~~~~
            """,
            DiagnosticFormatter.Format(diagnostic));
    }

    [Fact]
    public void A_missing_token_gets_a_single_caret_after_the_line()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n  r0 = load(buf)\n  store(buf, 1);\n}\n");
        Assert.Equal(
            """
            test.litmus:3:17: error: expected ';' after the statement but found 'store' on line 4
                3 |   r0 = load(buf)
                  |                 ^
            """,
            DiagnosticFormatter.Format(diagnostic));
    }

    [Fact]
    public void The_caret_underlines_the_whole_offending_token()
    {
        var diagnostic = SingleError(Litmus.WithThread("expect maybe\n"));
        Assert.Equal(
            """
            test.litmus:5:8: error: expected 'always', 'sometimes', 'never', 'clean' or 'violation' after 'expect' but found 'maybe'
                5 | expect maybe
                  |        ^~~~~
            """,
            DiagnosticFormatter.Format(diagnostic));
    }

    [Fact]
    public void Tabs_before_the_caret_are_copied_so_it_stays_aligned()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n\tr0 = f(@);\n}\n");
        AssertAt(diagnostic, 3, 9);
        string[] lines = DiagnosticFormatter.Format(diagnostic).Split('\n');
        Assert.Equal("    3 | \tr0 = f(@);", lines[1]);
        Assert.Equal("      | \t       ^", lines[2]);
    }

    [Fact]
    public void A_span_running_past_its_line_is_cut_at_the_line_end()
    {
        var diagnostic = SingleError("MM t\n{\n  process P;\n  P: fd = open(\"abc, x);\n}\n");
        Assert.Equal(
            """
            test.litmus:4:16: error: unterminated string: expected '"' to close the string but found end of line
                4 |   P: fd = open("abc, x);
                  |                ^~~~~~~~~
            """,
            DiagnosticFormatter.Format(diagnostic));
    }

    [Fact]
    public void Control_characters_in_the_echoed_line_are_neutralised()
    {
        var diagnostic = SingleError("MM t\nthread T0 { f(\u001b); }\n");
        Assert.Equal("U+001B", diagnostic.Found);
        string[] lines = DiagnosticFormatter.Format(diagnostic).Split('\n');
        Assert.Equal("    2 | thread T0 { f(?); }", lines[1]);
        Assert.Equal("      |               ^", lines[2]);
    }

    [Fact]
    public void Long_lines_are_shown_as_a_window_around_the_caret()
    {
        string text = "MM t\nthread T0 { " + string.Concat(Enumerable.Repeat("f(); ", 100)) + "@ }\n";
        var diagnostic = SingleError(text);
        string[] lines = DiagnosticFormatter.Format(diagnostic).Split('\n');
        Assert.StartsWith("    2 | ...", lines[1], StringComparison.Ordinal);
        Assert.True(lines[1].Length < 200);
        int caret = lines[2].IndexOf('^', StringComparison.Ordinal);
        Assert.Equal('@', lines[1][caret]);
    }

    [Fact]
    public void Several_diagnostics_are_separated_by_newlines_and_warnings_say_so()
    {
        var source = SourceText.From("MM t\n", "w.litmus");
        var warning = new Diagnostic(DiagnosticSeverity.Warning, "LIT9000", "something odd", new SourceSpan(source, 3, 1));
        string text = DiagnosticFormatter.Format([warning, warning]);
        Assert.Equal(
            """
            w.litmus:1:4: warning: something odd
                1 | MM t
                  |    ^
            w.litmus:1:4: warning: something odd
                1 | MM t
                  |    ^
            """,
            text);
        Assert.Equal("w.litmus:1:4: warning: something odd", warning.ToString());
    }

    [Fact]
    public void A_diagnostic_without_a_source_prints_only_its_header()
    {
        var diagnostic = new Diagnostic(DiagnosticSeverity.Error, "LIT0100", "lost", default);
        Assert.Equal(":0:0: error: lost", DiagnosticFormatter.Format(diagnostic));
    }
}

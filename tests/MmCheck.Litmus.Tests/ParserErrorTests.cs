using MmCheck.Litmus.Syntax;
using static MmCheck.Litmus.Tests.Litmus;

namespace MmCheck.Litmus.Tests;

/// <summary>Each error names what was expected and what was found, at an exact line and column.</summary>
public class ParserErrorTests
{
    [Fact]
    public void Missing_semicolon_at_the_end_of_a_line_is_reported_where_it_belongs()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n  r0 = load(buf)\n  store(buf, 1);\n}\n");
        AssertAt(diagnostic, 3, 17);
        AssertExpectedFound(diagnostic, "';'", "'store'");
        Assert.EndsWith("but found 'store' on line 4", diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_semicolon_before_more_text_on_the_line_points_at_that_text()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n  r0 = load(buf) store(buf, 1);\n}\n");
        AssertAt(diagnostic, 3, 18);
        AssertExpectedFound(diagnostic, "';'", "'store'");
    }

    [Fact]
    public void Missing_closing_parenthesis()
    {
        var diagnostic = SingleError("MM t\n{\n  process P;\n  P: buf = mmap(NULL, 1 page;\n}\n");
        AssertAt(diagnostic, 4, 29);
        AssertExpectedFound(diagnostic, "',' or ')'", "';'");
    }

    [Fact]
    public void Unterminated_comment_is_reported_at_its_opening()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n  f(); (* forgot to close\n}\n");
        Assert.Equal(DiagnosticCodes.UnterminatedComment, diagnostic.Code);
        AssertAt(diagnostic, 3, 8);
        AssertExpectedFound(diagnostic, "'*)'", "end of file");
    }

    [Fact]
    public void Unterminated_string_is_reported_at_its_opening_quote()
    {
        var diagnostic = SingleError("MM t\n{\n  process P;\n  P: fd = open(\"/proc/bus, O_RDWR);\n}\n");
        Assert.Equal(DiagnosticCodes.UnterminatedString, diagnostic.Code);
        AssertAt(diagnostic, 4, 16);
        AssertExpectedFound(diagnostic, "'\"'", "end of line");
    }

    [Fact]
    public void Unknown_character_is_reported_and_skipped()
    {
        var result = Parse("MM t\nthread T0 {\n  store(buf, #0x22);\n}\n");
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticCodes.InvalidCharacter, diagnostic.Code);
        AssertAt(diagnostic, 3, 14);
        AssertExpectedFound(diagnostic, "a name, a number, a string or an operator", "'#' (U+0023)");
        Assert.Equal(0x22UL, Int(Assert.IsType<CallExpression>(Assert.Single(result.Scenario!.Threads[0].Body).Value).Arguments[1].Value));
    }

    [Fact]
    public void Thread_without_opening_brace_is_reported_at_the_end_of_its_header()
    {
        var result = Parse("MM t\nthread T0 in P\n  r0 = load(buf);\n}\n");
        var diagnostic = Assert.Single(result.Diagnostics);
        AssertAt(diagnostic, 2, 15);
        AssertExpectedFound(diagnostic, "'{'", "'r0'");
        Assert.Contains("body of thread 'T0'", diagnostic.Message, StringComparison.Ordinal);

        // The body on the following lines is still read.
        Assert.Single(Assert.Single(result.Scenario!.Threads).Body);
    }

    [Fact]
    public void Expectation_with_an_unknown_word()
    {
        var diagnostic = SingleError(WithThread("expect maybe\n"));
        Assert.Equal(DiagnosticCodes.UnknownExpectation, diagnostic.Code);
        AssertAt(diagnostic, 5, 8);
        AssertExpectedFound(diagnostic, "'always', 'sometimes', 'never', 'clean' or 'violation'", "'maybe'");
    }

    [Fact]
    public void Integer_overflow()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n  r0 = f(18446744073709551616);\n}\n");
        Assert.Equal(DiagnosticCodes.IntegerOverflow, diagnostic.Code);
        AssertAt(diagnostic, 3, 10);
        AssertExpectedFound(diagnostic, "an integer that fits in 64 bits", "'18446744073709551616'");
        Assert.Contains("(at most 18446744073709551615)", diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Condition_with_a_dangling_conjunction()
    {
        var diagnostic = SingleError(WithThread("exists (T0:r0 = 1 /\\ )\nexpect always\n"));
        AssertAt(diagnostic, 5, 22);
        AssertExpectedFound(diagnostic, "a condition such as T0:r0 = 1", "')'");
        Assert.Contains("after '/\\'", diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Condition_with_a_dangling_conjunction_at_the_end_of_the_line()
    {
        var result = Parse(WithThread("exists T0:r0 = 1 /\\\nexpect always\n"));
        var diagnostic = Assert.Single(result.Diagnostics);
        AssertAt(diagnostic, 5, 20);
        Assert.EndsWith("but found 'expect' on line 6", diagnostic.Message, StringComparison.Ordinal);
        Assert.Single(result.Scenario!.Expectations);
    }

    [Fact]
    public void Empty_file()
    {
        var diagnostic = SingleError("");
        AssertAt(diagnostic, 1, 1);
        AssertExpectedFound(diagnostic, "'MM' and the scenario name", "end of file");
    }

    [Fact]
    public void File_with_only_comments_and_blank_lines()
    {
        var diagnostic = SingleError("\n  (* nothing here *)\n// nor here\n");
        AssertExpectedFound(diagnostic, "'MM' and the scenario name", "end of file");
    }

    [Fact]
    public void File_with_only_a_header()
    {
        var diagnostic = SingleError("MM cow-basic\n");
        Assert.Equal(DiagnosticCodes.EmptyScenario, diagnostic.Code);
        AssertAt(diagnostic, 1, 13);
        AssertExpectedFound(diagnostic, "an init block '{' or a thread", "end of file");
    }

    [Fact]
    public void Header_without_a_name()
    {
        var diagnostic = SingleError("MM\nthread T0 { f(); }\n");
        AssertAt(diagnostic, 1, 3);
        AssertExpectedFound(diagnostic, "a scenario name", "end of line");
    }

    [Fact]
    public void Missing_closing_brace_at_the_end_of_the_file()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n  f();\n");
        AssertAt(diagnostic, 3, 7);
        AssertExpectedFound(diagnostic, "'}'", "end of file");
    }

    [Fact]
    public void Missing_closing_brace_before_the_next_thread_keeps_both_threads()
    {
        var result = Parse("MM t\nthread T0 {\n  f();\nthread T1 {\n  g();\n}\n");
        var diagnostic = Assert.Single(result.Diagnostics);
        AssertAt(diagnostic, 3, 7);
        AssertExpectedFound(diagnostic, "'}'", "'thread'");
        Assert.Equal(["T0", "T1"], result.Scenario!.Threads.Select(t => t.Name.Text));
    }

    [Fact]
    public void A_stray_character_at_the_end_does_not_hide_a_missing_brace()
    {
        var result = Parse("MM t\nthread T0 {\n  f();\n@");
        Assert.Equal(
            [(3, 7, DiagnosticCodes.UnexpectedToken), (4, 1, DiagnosticCodes.InvalidCharacter)],
            result.Diagnostics.Select(d => (d.Span.Line, d.Span.Column, d.Code)));
    }

    [Fact]
    public void Variant_name_must_be_on_the_same_line()
    {
        var diagnostic = SingleError("MM t\nvariant\nthread T0 { f(); }\n");
        AssertAt(diagnostic, 2, 8);
        AssertExpectedFound(diagnostic, "a variant name such as do_wp_page.reuse", "end of line");
    }

    [Fact]
    public void Setting_value_must_be_on_the_same_line()
    {
        var diagnostic = SingleError("MM t\nkernel =\narch = x86_64\nthread T0 { f(); }\n");
        AssertAt(diagnostic, 2, 9);
        AssertExpectedFound(diagnostic, "a value for 'kernel'", "end of line");
    }

    [Fact]
    public void Setting_value_is_one_word()
    {
        var diagnostic = SingleError("MM t\narch = x86_64 junk\nthread T0 { f(); }\n");
        AssertAt(diagnostic, 2, 15);
        AssertExpectedFound(diagnostic, "the end of the line", "'junk'");
    }

    [Fact]
    public void Cpus_must_be_a_number()
    {
        var diagnostic = SingleError("MM t\ncpus = two\nthread T0 { f(); }\n");
        Assert.Equal(DiagnosticCodes.InvalidSettingValue, diagnostic.Code);
        AssertAt(diagnostic, 2, 8);
        AssertExpectedFound(diagnostic, "a number of CPUs", "'two'");
    }

    [Fact]
    public void Variant_needs_a_name()
    {
        var diagnostic = SingleError("MM t\nvariant = \nthread T0 { f(); }\n");
        Assert.Equal(DiagnosticCodes.UnexpectedToken, diagnostic.Code);
        AssertExpectedFound(diagnostic, "a value for 'variant'", "end of line");
        diagnostic = SingleError("MM t\nvariant 3 = on\nthread T0 { f(); }\n");
        AssertAt(diagnostic, 2, 9);
        AssertExpectedFound(diagnostic, "a variant name such as do_wp_page.reuse", "'3'");
    }

    [Fact]
    public void Misspelt_size_unit()
    {
        var diagnostic = SingleError("MM t\nthread T0 {\n  f(4 KB);\n}\n");
        AssertAt(diagnostic, 3, 7);
        AssertExpectedFound(diagnostic, "a size unit: page, pages, KiB, MiB or GiB", "'KB'");
    }

    [Fact]
    public void Herd_thread_numbers_get_a_hint()
    {
        var diagnostic = SingleError(WithThread("exists (0:r0 = 1)\n"));
        AssertAt(diagnostic, 5, 10);
        Assert.Contains("threads are named, as in T0:r0", diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tilde_must_be_followed_by_exists()
    {
        var diagnostic = SingleError(WithThread("~forall (T0:r0 = 1)\n"));
        AssertAt(diagnostic, 5, 2);
        AssertExpectedFound(diagnostic, "'exists'", "'forall'");
    }

    [Fact]
    public void Init_statement_must_name_its_process()
    {
        var diagnostic = SingleError("MM t\n{\n  buf = mmap(NULL, 1 page);\n}\n");
        AssertAt(diagnostic, 3, 3);
        AssertExpectedFound(diagnostic, "a declaration such as 'process P;' or a statement such as 'P: x = f();'", "'buf'");
    }

    [Fact]
    public void Sections_out_of_order_are_reported_and_still_parsed()
    {
        var result = Parse("MM t\nexpect always\nthread T0 { f(); }\n");
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticCodes.MisplacedSection, diagnostic.Code);
        AssertAt(diagnostic, 3, 1);
        Assert.StartsWith("a thread must come before the expectations", diagnostic.Message, StringComparison.Ordinal);
        Assert.Single(result.Scenario!.Threads);
    }

    [Fact]
    public void A_second_condition_is_a_duplicate()
    {
        var diagnostic = SingleError(WithThread("exists (T0:r0 = 1)\nexists (T0:r0 = 2)\n"));
        Assert.Equal(DiagnosticCodes.DuplicateSection, diagnostic.Code);
        AssertAt(diagnostic, 6, 1);
        Assert.Contains("already has a condition (line 5)", diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Stray_tokens_at_the_top_level_cost_one_error_per_line()
    {
        var result = Parse(WithThread("garbage ) ( more\nexpect always\n"));
        var diagnostic = Assert.Single(result.Diagnostics);
        AssertAt(diagnostic, 5, 1);
        AssertExpectedFound(diagnostic, "a setting, an init block '{', a thread, a condition or an expectation", "'garbage'");
        Assert.Single(result.Scenario!.Expectations);
    }

    [Fact]
    public void Several_errors_in_one_file_are_all_reported()
    {
        const string text = """
            MM several
            {
              process P;
              P: x = mmap(NULL, 1 page;
            }
            thread T0 in P {
              r0 = load(x)
              store(x, 1);
              r1 = f(@);
            }
            expect maybe

            """;
        var result = Parse(text);
        Assert.Equal(
            [(4, 27, "LIT0100"), (7, 15, "LIT0100"), (9, 10, "LIT0001"), (11, 8, "LIT0101")],
            result.Diagnostics.Select(d => (d.Span.Line, d.Span.Column, d.Code)));

        // What parsed is kept: the broken init statement goes, everything else stays.
        var scenario = result.Scenario!;
        Assert.Single(scenario.Init!.Items);
        Assert.Equal(["r0", null, "r1"], Assert.Single(scenario.Threads).Body.Select(s => s.Target?.Text));
        Assert.Empty(scenario.Expectations);
    }

    [Fact]
    public void Error_count_is_capped()
    {
        string text = "MM t\n" + string.Concat(Enumerable.Repeat("garbage;\n", 150));
        var result = Parse(text);
        Assert.Equal(Parser.MaxErrors + 1, result.Diagnostics.Count);
        Assert.Equal(DiagnosticCodes.TooManyErrors, result.Diagnostics[^1].Code);
    }

    [Fact]
    public void A_file_over_one_mebibyte_is_rejected_without_parsing()
    {
        var result = Parse(new string('x', LitmusParser.MaxInputBytes + 1));
        Assert.Null(result.Scenario);
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticCodes.InputTooLarge, diagnostic.Code);
        AssertAt(diagnostic, 1, 1);
        Assert.Equal("expected a scenario file of at most 1 MiB but found 1,048,577 bytes; the file was not parsed", diagnostic.Message);
    }

    [Fact]
    public void The_size_limit_counts_utf8_bytes()
    {
        // 600,000 two-byte characters: under the limit in characters, over it in bytes.
        string text = "MM t\n(*" + new string('\u00e9', 600_000) + "*)\n";
        Assert.Equal(DiagnosticCodes.InputTooLarge, Assert.Single(Parse(text).Diagnostics).Code);
        Assert.NotNull(Parse("MM t\n(*" + new string('\u00e9', 500_000) + "*)\nthread T0 { f(); }\n").Scenario);
    }
}

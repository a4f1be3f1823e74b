using System.Text;
using MmCheck.Litmus.Syntax;
using static MmCheck.Litmus.Tests.Litmus;

namespace MmCheck.Litmus.Tests;

/// <summary>Adversarial shapes: nesting and chains far beyond any real scenario.</summary>
public class RobustnessTests
{
    [Theory]
    [InlineData("r0 = f({0}x{1});", "(", ")")]
    [InlineData("r0 = {0}x;", "-", "")]
    [InlineData("r0 = {0}x;", "~", "")]
    public void Deep_nesting_in_expressions_is_an_error_not_a_stack_overflow(string shape, string open, string close)
    {
        const int depth = 100_000;
        string statement = string.Format(System.Globalization.CultureInfo.InvariantCulture, shape, Repeat(open, depth), Repeat(close, depth));
        var result = Parse($"MM t\nthread T0 {{\n  {statement}\n  g();\n}}\n");
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticCodes.NestingTooDeep, diagnostic.Code);
        Assert.Equal(["g"], result.Scenario!.Threads[0].Body.Select(s => ((CallExpression)s.Value).Callee.Text));
        FuzzSupport.Check(SourceText.From($"MM t\nthread T0 {{\n  {statement}\n}}\n"));
    }

    [Theory]
    [InlineData("|")]
    [InlineData("*")]
    [InlineData(".")]
    public void Long_operator_chains_are_capped_so_the_tree_stays_shallow(string op)
    {
        string chain = "a" + string.Concat(Enumerable.Repeat(op + "a", 50_000));
        var result = Parse($"MM t\nthread T0 {{\n  r0 = {chain};\n  g();\n}}\n");
        Assert.Equal(DiagnosticCodes.NestingTooDeep, Assert.Single(result.Diagnostics).Code);
        Assert.Single(result.Scenario!.Threads[0].Body);
    }

    [Fact]
    public void A_chain_within_the_limit_prints_and_compares_without_trouble()
    {
        string chain = "a" + string.Concat(Enumerable.Repeat("|a", Parser.MaxTreeDepth - 1));
        OnlyStatement($"r0 = {chain};");
    }

    [Theory]
    [InlineData("exists ({0}T0:r0 = 1{1})", "(", ")")]
    [InlineData("exists {0}T0:r0 = 1", "~", "")]
    [InlineData("exists T0:r0 = {0}1", "-", "")]
    public void Deep_nesting_in_conditions_is_an_error_not_a_stack_overflow(string shape, string open, string close)
    {
        const int depth = 100_000;
        string condition = string.Format(System.Globalization.CultureInfo.InvariantCulture, shape, Repeat(open, depth), Repeat(close, depth));
        var result = Parse(WithThread(condition + "\nexpect never\n"));
        Assert.Equal(DiagnosticCodes.NestingTooDeep, Assert.Single(result.Diagnostics).Code);
        Assert.Single(result.Scenario!.Expectations);
    }

    [Fact]
    public void A_long_conjunction_is_capped_too()
    {
        string condition = "T0:r0 = 1" + string.Concat(Enumerable.Repeat(" /\\ T0:r0 = 1", 10_000));
        var result = Parse(WithThread($"exists ({condition})\n"));
        Assert.Equal(DiagnosticCodes.NestingTooDeep, Assert.Single(result.Diagnostics).Code);
    }

    [Fact]
    public void A_large_valid_file_parses_in_linear_steps()
    {
        var text = new StringBuilder("MM big\n{\n  process P;\n}\n");
        for (int i = 0; i < 3_000; i++)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"thread T{i} in P after T{Math.Max(0, i - 1)}.l {{\n");
            text.Append("  l: buf = mmap(NULL, 16 pages, PROT_READ|PROT_WRITE, MAP_SHARED, -1, 0);\n");
            text.Append("  r0 = load(buf + 0x10);\n}\n");
        }

        Assert.True(text.Length > 400_000);
        var result = FuzzSupport.Check(SourceText.From(text.ToString()));
        Assert.False(result.HasErrors);
        Assert.Equal(3_000, result.Scenario!.Threads.Length);
    }

    [Fact]
    public void A_file_just_under_the_limit_of_garbage_is_parsed_and_capped()
    {
        var random = new Random(3);
        var bytes = new byte[LitmusParser.MaxInputBytes];
        random.NextBytes(bytes);
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] &= 0x7f; // ASCII, so the byte count is the character count
        }

        var result = FuzzSupport.Check(new SourceText("big.litmus", Encoding.Latin1.GetString(bytes)));
        Assert.Equal(DiagnosticCodes.TooManyErrors, result.Diagnostics[^1].Code);
    }

    private static string Repeat(string text, int count) => string.Concat(Enumerable.Repeat(text, count));
}

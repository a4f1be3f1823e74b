using System.Text;
using MmCheck.Litmus.Syntax;
using MmCheck.Tests;

namespace MmCheck.Litmus.Tests;

/// <summary>
/// Deterministic robustness checks: fixed seeds, so a failure reproduces exactly. Each input must
/// parse without an exception, within the step budget, with every diagnostic inside the text; an
/// input that happens to parse cleanly must also survive the printer's round trip.
/// </summary>
public class RandomBytesFuzzTests
{
    private const int Count = 20_000;

    [Fact]
    public void Random_byte_strings_never_crash_stall_or_point_outside_the_text()
    {
        var random = new Random(20_240_611);
        for (int i = 0; i < Count; i++)
        {
            byte[] bytes = new byte[random.Next(0, 300)];
            random.NextBytes(bytes);
            if (i % 3 == 1)
            {
                // Bias towards bytes the lexer cares about, so inputs get past the first token.
                for (int j = 0; j < bytes.Length; j++)
                {
                    bytes[j] = (byte)FuzzSupport.Alphabet[random.Next(FuzzSupport.Alphabet.Length)];
                }
            }

            // UTF-8 decoding turns most random bytes into U+FFFD; Latin-1 keeps every control character.
            var source = i % 2 == 0
                ? SourceText.FromUtf8(bytes, $"random-{i}.litmus")
                : new SourceText($"random-{i}.litmus", Encoding.Latin1.GetString(bytes));
            FuzzSupport.Check(source);
        }
    }

    [Fact]
    public void Random_token_soup_never_crashes_stalls_or_points_outside_the_text()
    {
        var random = new Random(7);
        for (int i = 0; i < 5_000; i++)
        {
            var text = new StringBuilder(i % 4 == 0 ? "" : "MM soup\n");
            int tokens = random.Next(0, 80);
            for (int j = 0; j < tokens; j++)
            {
                text.Append(FuzzSupport.Vocabulary[random.Next(FuzzSupport.Vocabulary.Length)]);
                text.Append(random.Next(4) switch { 0 => "", 1 => "\n", _ => " " });
            }

            FuzzSupport.Check(new SourceText($"soup-{i}.litmus", text.ToString()));
        }
    }
}

public class MutationFuzzTests
{
    private const int Count = 20_000;

    [Fact]
    public void Mutations_of_the_design_examples_never_crash_stall_or_point_outside_the_text()
    {
        var random = new Random(1_000_003);
        string[] examples = [.. DesignExamples.All];
        var tokenSpans = examples
            .Select(text => Lexer.Tokenize(SourceText.From(text)).Select(t => (t.Span.Start, t.Span.Length)).ToArray())
            .ToArray();
        int clean = 0;
        for (int i = 0; i < Count; i++)
        {
            int which = i % examples.Length;
            string text = examples[which];
            int operations = 1 + random.Next(3);
            for (int op = 0; op < operations; op++)
            {
                text = FuzzSupport.Mutate(random, text, tokenSpans[which]);
            }

            if (!FuzzSupport.Check(new SourceText($"mutant-{i}.litmus", text)).HasErrors)
            {
                clean++;
            }
        }

        // Many mutants stay valid (a changed digit, a duplicated statement): they exercised the
        // round trip, which is checked for every clean parse.
        Assert.True(clean > 1_000, $"only {clean} mutants parsed cleanly");
    }
}

internal static class FuzzSupport
{
    public const string Alphabet = "MMthread{}()[];:=.,+-*|&~<>/\\\"'@#$ \t\n\r\n0x1b9_aZpage(**)//";

    public static readonly string[] Vocabulary =
    [
        "MM", "thread", "in", "after", "expect", "always", "violation", "revoked-iomem-mapped", "exists", "~exists",
        "forall", "locations", "kernel", "=", "v5.10", "variant", "do_wp_page.reuse", "cpus", "{", "}", "(", ")", "[",
        "]", ";", ":", ",", ".", "|", "&", "+", "-", "*", "~", "/\\", "\\/", "<>", "T0", "P", "r0", "buf", "NULL",
        "0x22", "16", "pages", "page", "MiB", "\"s\"", "\"unterminated", "(*", "*)", "(* c *)", "//", "process",
        "device", "pci", "bar0", "mmap", "fork", "PTE", "@", "\u00e9", "99999999999999999999999", "0b", "\\",
    ];

    public static ParseResult Check(SourceText source)
    {
        ParseResult result;
        try
        {
            result = LitmusParser.Parse(source);
        }
        catch (Exception exception)
        {
            Assert.Fail($"{source.FileName} threw {exception.GetType().Name}: {exception.Message}\ninput: {Escape(source.Text)}");
            throw;
        }

        Assert.True(
            result.Steps <= StepBound(source.Length),
            $"{source.FileName}: {result.Steps} steps for {source.Length} characters\ninput: {Escape(source.Text)}");
        Assert.DoesNotContain(result.Diagnostics, d => d.Code == DiagnosticCodes.ParserStalled);

        // The loops' backstop exists for safety; recovery is meant to consume by itself.
        Assert.True(result.ForcedAdvances == 0, $"{source.FileName}: the progress backstop fired\ninput: {Escape(source.Text)}");
        foreach (var diagnostic in result.Diagnostics)
        {
            var span = diagnostic.Span;
            Assert.True(
                ReferenceEquals(span.Source, source) && span.Start >= 0 && span.Length >= 0 && span.End <= source.Length,
                $"{source.FileName}: span {span.Start}+{span.Length} outside 0..{source.Length}: {diagnostic.Message}\ninput: {Escape(source.Text)}");
            Assert.False(string.IsNullOrWhiteSpace(DiagnosticFormatter.Format(diagnostic)));

            // The structured halves always match the sentence.
            Assert.True(diagnostic.Expected is null || diagnostic.Message.Contains("expected " + diagnostic.Expected, StringComparison.Ordinal), diagnostic.Message);
            Assert.True(diagnostic.Found is null || diagnostic.Message.Contains("but found " + diagnostic.Found, StringComparison.Ordinal), diagnostic.Message);
        }

        if (!result.HasErrors)
        {
            Assert.NotNull(result.Scenario);
            string printed = LitmusPrinter.Print(result.Scenario);
            var reparsed = LitmusParser.Parse(printed, "printed.litmus");
            Assert.False(reparsed.HasErrors, $"{source.FileName}: printed text does not parse:\n{printed}\n{DiagnosticFormatter.Format(reparsed.Diagnostics)}\ninput: {Escape(source.Text)}");
            Assert.True(
                SyntaxEquivalence.AreEquivalent(result.Scenario, reparsed.Scenario),
                $"{source.FileName}: round trip changed the tree:\n{printed}\ninput: {Escape(source.Text)}");
        }

        return result;
    }

    /// <summary>Far below the parser's own give-up budget: a linear number of looks per character.</summary>
    public static long StepBound(int length) => 16L * (length + 16);

    public static string Mutate(Random random, string text, (int Start, int Length)[] tokens)
    {
        if (text.Length == 0)
        {
            return text;
        }

        int position = random.Next(text.Length);
        switch (random.Next(6))
        {
            case 0:
                // Flip one UTF-16 unit to a random byte value.
                return string.Concat(text.AsSpan(0, position), ((char)random.Next(256)).ToString(), text.AsSpan(position + 1));
            case 1:
                return text[..position];
            case 2:
                return string.Concat(text.AsSpan(0, position), Alphabet[random.Next(Alphabet.Length)].ToString(), text.AsSpan(position));
            default:
                // Token edits use the original example's token boundaries; on an already mutated
                // text they still cut at plausible places.
                var (start, length) = tokens[random.Next(tokens.Length)];
                if (start + length > text.Length)
                {
                    return text;
                }

                string token = text.Substring(start, length);
                return random.Next(2) == 0
                    ? text.Remove(start, length)
                    : text.Insert(start + length, random.Next(2) == 0 ? token : " " + token);
        }
    }

    private static string Escape(string text) =>
        text.Length > 2_000 ? "(too long to show)" : text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}

using MmCheck.Explorer;
using MmCheck.Litmus.Runner;
using MmCheck.Litmus.Syntax;
using MmCheck.Tests;

namespace MmCheck.Litmus.Tests;

/// <summary>
/// The whole pipeline under mutated input: parse, bind, and (when the mutant binds) explore. Whatever
/// the text, the user gets diagnostics with positions or a result — never an exception, never a hang.
/// Mutants that still bind are the interesting ones: they reach the kernel model with odd sizes,
/// flags, addresses and orderings, where the model must answer with errno, signals or findings.
/// </summary>
public class PipelineFuzzTests
{
    [Fact]
    public void Mutated_bundled_scenarios_give_diagnostics_or_results_never_exceptions()
    {
        var random = new Random(4_242);
        string[] texts = [.. Directory.EnumerateFiles(Path.Combine(GoldenTests.ScenariosDirectory, "cow"), "*.litmus")
            .Order(StringComparer.Ordinal).Select(File.ReadAllText), DesignExamples.CowBasicAfterFork];
        var tokens = texts
            .Select(t => Lexer.Tokenize(SourceText.From(t)).ToArray())
            .ToArray();
        var options = new ExplorationOptions { Seed = 1, MaxSchedules = 8, TimeLimit = TimeSpan.FromSeconds(5) };
        int bound = 0;
        for (int i = 0; i < 600; i++)
        {
            int which = i % texts.Length;
            string text = texts[which];
            text = random.Next(3) == 0
                ? FuzzSupport.Mutate(random, text, [.. tokens[which].Select(x => (x.Span.Start, x.Span.Length))])
                : SwapToken(random, text, tokens[which]);

            string name = $"mutant-{i}.litmus";
            LoadedScenario loaded;
            try
            {
                loaded = ScenarioRunner.LoadText(text, name);
            }
            catch (Exception e)
            {
                Assert.Fail($"{name}: binding threw {e.GetType().Name}: {e.Message}\n{text}");
                throw;
            }

            if (loaded.HasErrors)
            {
                Assert.NotEmpty(loaded.Diagnostics);
                Assert.All(loaded.Diagnostics, d => Assert.True(d.Span.End <= text.Length, DiagnosticFormatter.Format(d)));
                continue;
            }

            bound++;
            ScenarioResult result;
            try
            {
                result = ScenarioRunner.Explore(loaded.Scenario!, options);
            }
            catch (Exception e)
            {
                Assert.Fail($"{name}: exploring threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}\n{text}");
                throw;
            }
            Assert.False(string.IsNullOrEmpty(Golden.Render(result)), name);
        }

        // Most same-kind swaps still bind: the model saw plenty of odd but valid scenarios.
        Assert.True(bound > 100, $"only {bound} of 600 mutants bound");
    }

    /// <summary>Replaces one token by another token of the same kind from the same scenario: the text
    /// stays well formed and often binds, with a size, flag, address, register or thread in an unusual place.</summary>
    private static string SwapToken(Random random, string text, Token[] tokens)
    {
        var target = tokens[random.Next(tokens.Length)];
        var sameKind = tokens.Where(t => t.Kind == target.Kind).ToArray();
        var other = sameKind[random.Next(sameKind.Length)];
        return string.Concat(text.AsSpan(0, target.Span.Start), other.Text, text.AsSpan(target.Span.End));
    }
}

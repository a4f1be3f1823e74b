using System.Collections.Immutable;
using MmCheck.Litmus.Syntax;
using static MmCheck.Litmus.Tests.Litmus;

namespace MmCheck.Litmus.Tests;

public class PrinterTests
{
    [Fact]
    public void Printed_random_trees_parse_back_to_the_same_tree()
    {
        var generator = new TreeGenerator(new Random(4_242));
        for (int i = 0; i < 2_000; i++)
        {
            var scenario = generator.Scenario();
            string printed = LitmusPrinter.Print(scenario);
            var result = Parse(printed, $"generated-{i}.litmus");
            Assert.True(!result.HasErrors, printed + "\n" + DiagnosticFormatter.Format(result.Diagnostics));
            Assert.True(SyntaxEquivalence.AreEquivalent(scenario, result.Scenario), "round trip changed the tree:\n" + printed);
        }
    }

    [Fact]
    public void Strings_escape_quotes_backslashes_and_control_characters()
    {
        var text = new StringLiteral(SourceSpan.None, "q\"b\\n\n\t\r\u0001\u007fé😀");
        Assert.Equal("\"q\\\"b\\\\n\\n\\t\\r\\x01\\x7fé😀\"", LitmusPrinter.Print(text));
    }

    [Fact]
    public void A_description_cannot_close_its_own_comment()
    {
        var scenario = ParseClean("MM t\n(* x *)\nthread T0 { f(); }\n") with
        {
            Description = new Comment(SourceSpan.None, "ends *) early"),
        };
        Assert.StartsWith("MM t\n(* ends * ) early *)\n", LitmusPrinter.Print(scenario), StringComparison.Ordinal);
    }

    [Fact]
    public void Pages_agree_with_their_count()
    {
        Assert.Equal("f(1 page, 2 pages, 0x1 page)", LitmusPrinter.Print(Expr("f(1 pages, 2 page, 0x1 pages)")));
    }

    [Fact]
    public void Equivalence_ignores_spans_and_radix_but_not_content()
    {
        var a = Expr("f(0x10, b)");
        var b = Expr("f(16,   b)");
        var c = Expr("f(16, c)");
        Assert.True(SyntaxEquivalence.AreEquivalent(a, b));
        Assert.False(SyntaxEquivalence.AreEquivalent(a, c));
        Assert.False(SyntaxEquivalence.AreEquivalent(a, null));
    }

    /// <summary>Random trees of the shapes the parser produces, with names that collide with keywords.</summary>
    private sealed class TreeGenerator(Random random)
    {
        private static readonly string[] Names =
        [
            "P", "T0", "r0", "buf", "thread", "in", "after", "expect", "exists", "forall", "locations", "variant",
            "kernel", "MM", "page", "pages", "KiB", "always", "violation", "process", "_x1",
        ];

        private static readonly string[] Texts = ["", "a", "q\"\\", "tab\there", "line\nbreak", "\u0000\u001f\u007f", "é😀", "(*x*)"];

        private static readonly SourceSpan None = SourceSpan.None;

        public ScenarioAst Scenario() => new(
            None,
            Id("MP+once-x.1"),
            Maybe(() => new Comment(None, Pick(["Result: Never", "(*pte) is read twice", "two\n   lines"]))),
            Many(4, Setting),
            Maybe(() => new InitBlock(None, Many(4, InitItem))),
            Many(2, Thread).Add(Thread()), // a scenario needs something to run
            Maybe(() => new LocationsClause(None, Many(3, () => Location(2)).Add(Location(1)))),
            Maybe(() => new Condition(None, Pick([Quantifier.Exists, Quantifier.NotExists, Quantifier.Forall]), Proposition(3))),
            Many(3, Expectation));

        private Setting Setting() => random.Next(5) switch
        {
            0 => new Setting(None, SettingKind.Kernel, Id("kernel"), Value(Pick(["v5.10", "current", "v6.1-rc3"]))),
            1 => new Setting(None, SettingKind.Cpus, Id("cpus"), Value("4")),
            2 => new Setting(None, SettingKind.Variant, Id(Pick(["do_wp_page.reuse", "a.b.c", "x"])), Value(Pick(["off", "1"]))),
            // The kind follows from the name, so an Other setting never takes a known name.
            _ => new Setting(None, SettingKind.Other, Id(Pick(["thread", "expect", "variant", "MM", "strict"])), Value(Pick(["x86_64", "0x10", "a-b+c.d"]))),
        };

        private InitItem InitItem() => random.Next(3) switch
        {
            0 => new InitDeclaration(None, Id(Name()), Id(Name()), Maybe(() => Expression(3))),
            _ => new InitStatement(None, Id(Name()), new Statement(None, null, Maybe(() => Id(Name())), Expression(3))),
        };

        private ThreadDeclaration Thread() => new(
            None,
            Id(Name()),
            Maybe(() => Id(Name())),
            Maybe(() => new AfterClause(None, Id(Name()), Id(Name()))),
            Many(4, () => new Statement(None, Maybe(() => Id(Name())), Maybe(() => Id(Name())), Expression(3))));

        private Expectation Expectation()
        {
            var kind = Pick([ExpectationKind.Always, ExpectationKind.Sometimes, ExpectationKind.Never, ExpectationKind.Clean, ExpectationKind.Violation]);
            return new Expectation(None, kind, kind == ExpectationKind.Violation ? Id(Pick(["bug", "use-after-free", "revoked-iomem-mapped"])) : null);
        }

        private Expression Expression(int depth)
        {
            int choice = random.Next(depth <= 0 ? 5 : 10);
            return choice switch
            {
                0 => Integer(),
                1 => new SizeLiteral(None, Integer(), Pick([SizeUnit.Page, SizeUnit.KiB, SizeUnit.MiB, SizeUnit.GiB])),
                2 => new StringLiteral(None, Pick(Texts)),
                3 => new NullLiteral(None),
                4 => new NameExpression(None, Name()),
                5 => new CallExpression(None, Id(Name()), Arguments(depth - 1)),
                6 => new MemberAccessExpression(None, Expression(depth - 1), Id(Name())),
                7 => new UnaryExpression(None, Pick([UnaryOperator.Negate, UnaryOperator.Complement]), Expression(depth - 1)),
                _ => new BinaryExpression(
                    None,
                    Pick([BinaryOperator.BitwiseOr, BinaryOperator.BitwiseAnd, BinaryOperator.Add, BinaryOperator.Subtract, BinaryOperator.Multiply]),
                    Expression(depth - 1),
                    Expression(depth - 1)),
            };
        }

        private ImmutableArray<Argument> Arguments(int depth) =>
            Many(3, () => new Argument(None, Maybe(() => Id(Name())), Expression(depth)));

        private Location Location(int depth) => random.Next(3) switch
        {
            0 => new RegisterLocation(None, Id(Name()), Id(Name())),
            1 => new MemoryLocation(None, Id(Name()), Expression(depth)),
            _ => new StateLocation(None, Id(Name()), Id(Pick(["PTE", "PFN", "pagemap"])), Arguments(depth), Maybe(() => Id(Name()))),
        };

        private Expression Operand(int depth) => random.Next(depth <= 0 ? 4 : 5) switch
        {
            0 => Location(1),
            1 => Integer(),
            2 => new NameExpression(None, Name()),
            3 => new NullLiteral(None),
            _ => new UnaryExpression(None, UnaryOperator.Negate, Operand(depth - 1)),
        };

        private Proposition Proposition(int depth) => random.Next(depth <= 0 ? 1 : 4) switch
        {
            0 => new Comparison(None, Pick([ComparisonOperator.Equal, ComparisonOperator.NotEqual]), Operand(2), Operand(2)),
            1 => new NotProposition(None, Proposition(depth - 1)),
            _ => new LogicalProposition(None, Pick([LogicalOperator.And, LogicalOperator.Or]), Proposition(depth - 1), Proposition(depth - 1)),
        };

        private IntegerLiteral Integer() => new(
            None,
            random.Next(4) == 0 ? ulong.MaxValue - (ulong)random.Next(3) : (ulong)random.Next(300),
            Pick([IntegerRadix.Decimal, IntegerRadix.Hexadecimal, IntegerRadix.Binary, IntegerRadix.Octal]));

        private SettingValue Value(string text) => new(None, text);

        private static Identifier Id(string text) => new(None, text);

        private string Name() => Pick(Names);

        private T Pick<T>(T[] items) => items[random.Next(items.Length)];

        private T? Maybe<T>(Func<T> make)
            where T : class => random.Next(2) == 0 ? null : make();

        private ImmutableArray<T> Many<T>(int max, Func<T> make) => [.. Enumerable.Range(0, random.Next(max + 1)).Select(_ => make())];
    }
}

using MmCheck.Litmus.Syntax;
using static MmCheck.Litmus.Tests.Litmus;

namespace MmCheck.Litmus.Tests;

/// <summary>One construct per test; every parse here also goes through the printer's round trip.</summary>
public class ParserConstructTests
{
    [Theory]
    [InlineData("cow-basic-after-fork")]
    [InlineData("MP+once")]
    [InlineData("SB+po.rw+0x1")]
    [InlineData("2+2W")]
    [InlineData("seed_004")]
    public void Header_names_take_herd_style_punctuation(string name)
    {
        Assert.Equal(name, ParseClean($"MM {name}\nthread T0 {{ f(); }}\n").Name.Text);
    }

    [Fact]
    public void The_first_comment_after_the_header_is_the_description()
    {
        var scenario = ParseClean("MM t (* first *)\n(* second *)\nthread T0 { f(); }\n");
        Assert.Equal("first", scenario.Description!.Text);
    }

    [Fact]
    public void Comments_elsewhere_are_trivia()
    {
        var scenario = ParseClean("// licence\nMM t\nkernel = current // why\n(* late *)\nthread T0 { (* here *) f(); // there\n}\n");
        Assert.Null(scenario.Description);
        Assert.Single(scenario.Threads[0].Body);
    }

    [Fact]
    public void Settings_cover_kernel_arch_cpus_variant_and_any_other_name()
    {
        var scenario = ParseClean("""
            MM t
            kernel = v6.1-rc3
            arch = x86_64
            cpus = 4
            variant do_wp_page.reuse = off
            variant apply_to_page_range.track_mask=1
            strictness = relaxed
            thread T0 { f(); }

            """);
        Assert.Equal(
            [
                (SettingKind.Kernel, "kernel", "v6.1-rc3"),
                (SettingKind.Arch, "arch", "x86_64"),
                (SettingKind.Cpus, "cpus", "4"),
                (SettingKind.Variant, "do_wp_page.reuse", "off"),
                (SettingKind.Variant, "apply_to_page_range.track_mask", "1"),
                (SettingKind.Other, "strictness", "relaxed"),
            ],
            scenario.Settings.Select(s => (s.Kind, s.Name.Text, s.Value.Text)));
        Assert.Equal(4UL, scenario.Settings[2].Value.Number);
        Assert.Null(scenario.Settings[0].Value.Number);
    }

    [Fact]
    public void Keywords_used_as_setting_names_stay_settings()
    {
        var scenario = ParseClean("MM t\nthread = 2\nvariant = x\nthread T0 { f(); }\n");
        Assert.Equal([("thread", SettingKind.Other), ("variant", SettingKind.Other)], scenario.Settings.Select(s => (s.Name.Text, s.Kind)));
    }

    [Fact]
    public void Init_block_holds_declarations_and_process_statements()
    {
        var scenario = ParseClean("""
            MM t
            {
              process P;
              device G = pci(bar0 = 16 pages, bar2 = 2 MiB);
              P: buf = mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
              P: munmap(buf, 1 page);
            }

            """);
        var items = scenario.Init!.Items;
        Assert.Equal(("process", "P", true), (((InitDeclaration)items[0]).Kind.Text, ((InitDeclaration)items[0]).Name.Text, ((InitDeclaration)items[0]).Initializer is null));
        var device = Assert.IsType<CallExpression>(((InitDeclaration)items[1]).Initializer);
        Assert.Equal(["bar0", "bar2"], device.Arguments.Select(a => a.Name!.Text));
        var map = Assert.IsType<InitStatement>(items[2]);
        Assert.Equal(("P", "buf"), (map.Process.Text, map.Statement.Target!.Text));
        var unmap = Assert.IsType<InitStatement>(items[3]);
        Assert.Null(unmap.Statement.Target);
        Assert.Null(unmap.Statement.Label);
        Assert.Empty(scenario.Threads);
    }

    [Fact]
    public void An_empty_init_block_is_kept_apart_from_no_init_block()
    {
        Assert.Empty(ParseClean("MM t\n{\n}\n").Init!.Items);
        Assert.Null(ParseClean("MM t\nthread T0 { f(); }\n").Init);
    }

    [Fact]
    public void Threads_take_optional_process_and_after_clauses()
    {
        var scenario = ParseClean("""
            MM t
            thread A {
            }
            thread B in P {
              f();
            }
            thread C after A.start {
              f();
            }
            thread D in Q after B.fork {
              f();
            }

            """);
        Assert.Equal(
            [("A", null, null), ("B", "P", null), ("C", null, "A.start"), ("D", "Q", "B.fork")],
            scenario.Threads.Select(t => (t.Name.Text, t.Process?.Text, t.After is null ? null : $"{t.After.Thread.Text}.{t.After.Label.Text}")));
        Assert.Empty(scenario.Threads[0].Body);
    }

    [Fact]
    public void Statements_take_an_optional_label_and_target()
    {
        var scenario = ParseClean("MM t\nthread T0 {\n  fork: C = fork();\n  label: f();\n  r0 = g();\n  h();\n}\n");
        Assert.Equal(
            [("fork", "C"), ("label", null), (null, "r0"), (null, null)],
            scenario.Threads[0].Body.Select(s => (s.Label?.Text, s.Target?.Text)));
    }

    [Fact]
    public void Keywords_are_contextual()
    {
        var scenario = ParseClean("""
            MM t
            {
              process thread;
              thread X;
              expect E = f();
              thread: in = mmap(NULL, 1 page);
            }
            thread expect in thread {
              fork: exists = load(in);
              locations: forall(after);
              expect = NULL;
            }

            """);
        Assert.Equal(4, scenario.Init!.Items.Length);
        var thread = Assert.Single(scenario.Threads);
        Assert.Equal(("expect", "thread"), (thread.Name.Text, thread.Process!.Text));
        Assert.Equal(["exists", null, "expect"], thread.Body.Select(s => s.Target?.Text));
        Assert.Equal("locations", thread.Body[1].Label!.Text);
    }

    [Fact]
    public void Newlines_are_insignificant_inside_blocks_and_expressions()
    {
        var scenario = ParseClean("MM t\nthread T0 { r0 = mmap(NULL,\n    1 page,\n    PROT_READ\n    | PROT_WRITE); f(); }\n");
        Assert.Equal(2, scenario.Threads[0].Body.Length);
    }

    [Fact]
    public void Operators_bind_or_and_additive_multiplicative_from_loosest_to_tightest()
    {
        // a | b & c + d * e  ==  a | (b & (c + (d * e)))
        var or = Assert.IsType<BinaryExpression>(Expr("a | b & c + d * e"));
        Assert.Equal(BinaryOperator.BitwiseOr, or.Operator);
        var and = Assert.IsType<BinaryExpression>(or.Right);
        Assert.Equal(BinaryOperator.BitwiseAnd, and.Operator);
        var add = Assert.IsType<BinaryExpression>(and.Right);
        Assert.Equal(BinaryOperator.Add, add.Operator);
        Assert.Equal(BinaryOperator.Multiply, Assert.IsType<BinaryExpression>(add.Right).Operator);
    }

    [Fact]
    public void Binary_operators_associate_to_the_left()
    {
        var outer = Assert.IsType<BinaryExpression>(Expr("a - b - c"));
        Assert.Equal("c", Name(outer.Right));
        Assert.Equal(BinaryOperator.Subtract, Assert.IsType<BinaryExpression>(outer.Left).Operator);
    }

    [Fact]
    public void Parentheses_override_precedence_and_print_back_only_where_needed()
    {
        var and = Assert.IsType<BinaryExpression>(Expr("(a | b) & c"));
        Assert.Equal(BinaryOperator.BitwiseOr, Assert.IsType<BinaryExpression>(and.Left).Operator);
        Assert.Equal("(a|b)&c", LitmusPrinter.Print(and));
        Assert.Equal("a - (b - c)", LitmusPrinter.Print(Expr("a - (b - c)")));
        Assert.Equal("a|b|c", LitmusPrinter.Print(Expr("((a | b) | c)")));
    }

    [Fact]
    public void Unary_minus_and_complement_bind_tighter_than_binary_operators()
    {
        var sum = Assert.IsType<BinaryExpression>(Expr("-a + ~b"));
        Assert.Equal(UnaryOperator.Negate, Assert.IsType<UnaryExpression>(sum.Left).Operator);
        Assert.Equal(UnaryOperator.Complement, Assert.IsType<UnaryExpression>(sum.Right).Operator);
        Assert.Equal("- -1", LitmusPrinter.Print(Expr("-(-1)")));
        Assert.Equal("-~1", LitmusPrinter.Print(Expr("-(~1)")));
        Assert.Equal("-(a + b)", LitmusPrinter.Print(Expr("-(a + b)")));
    }

    [Fact]
    public void Member_access_applies_to_names_and_calls()
    {
        var member = Assert.IsType<MemberAccessExpression>(Expr("pci(bar0 = 1 page).bar0.start"));
        Assert.Equal("start", member.Member.Text);
        var inner = Assert.IsType<MemberAccessExpression>(member.Target);
        Assert.IsType<CallExpression>(inner.Target);
    }

    [Fact]
    public void Calls_take_no_positional_or_named_arguments()
    {
        Assert.Empty(Assert.IsType<CallExpression>(Expr("fork()")).Arguments);
        var call = Assert.IsType<CallExpression>(Expr("f(a, size = 2 pages, g(b))"));
        Assert.Equal([null, "size", null], call.Arguments.Select(a => a.Name?.Text));
        Assert.IsType<CallExpression>(call.Arguments[2].Value);
    }

    [Theory]
    [InlineData("1 page", 1UL, SizeUnit.Page)]
    [InlineData("16 pages", 16UL, SizeUnit.Page)]
    [InlineData("4 KiB", 4UL, SizeUnit.KiB)]
    [InlineData("2 MiB", 2UL, SizeUnit.MiB)]
    [InlineData("0x1 GiB", 1UL, SizeUnit.GiB)]
    public void Sizes_are_an_integer_and_a_unit(string text, ulong count, SizeUnit unit)
    {
        var size = Assert.IsType<SizeLiteral>(Expr(text));
        Assert.Equal((count, unit), (size.Count.Value, size.Unit));
    }

    [Fact]
    public void Sizes_convert_to_bytes_with_the_page_size_and_report_overflow()
    {
        Assert.True(Assert.IsType<SizeLiteral>(Expr("16 pages")).TryGetBytes(4096, out ulong bytes));
        Assert.Equal(65536UL, bytes);
        Assert.False(Assert.IsType<SizeLiteral>(Expr("0xffffffffff GiB")).TryGetBytes(4096, out _));
    }

    [Fact]
    public void Literals_cover_null_strings_and_every_integer_radix()
    {
        Assert.IsType<NullLiteral>(Expr("NULL"));
        Assert.Equal("a\"b\\c\n\u0001", Assert.IsType<StringLiteral>(Expr("\"a\\\"b\\\\c\\n\\x01\"")).Value);
        Assert.Equal([0x10UL, 2UL, 8UL, 7UL], new[] { "0x10", "0b10", "010", "7" }.Select(text => Int(Expr(text))));
        Assert.Equal("0x10|0b10|010|7", LitmusPrinter.Print(Expr("0x10 | 0b10 | 010 | 7")));
    }

    [Fact]
    public void Locations_list_takes_every_location_form()
    {
        var scenario = ParseClean(WithThread("locations [T0:r0; P:[buf + 8]; P:PTE(buf).dirty; P:PFN(buf); D:PFN(addr);]\n"));
        Assert.Collection(
            scenario.Locations!.Locations,
            l => Assert.Equal(("T0", "r0"), (((RegisterLocation)l).Thread.Text, ((RegisterLocation)l).Register.Text)),
            l => Assert.IsType<BinaryExpression>(Assert.IsType<MemoryLocation>(l).Address),
            l => Assert.Equal(("PTE", "dirty"), (((StateLocation)l).View.Text, ((StateLocation)l).Field!.Text)),
            l => Assert.Null(Assert.IsType<StateLocation>(l).Field),
            l => Assert.Equal("D", Assert.IsType<StateLocation>(l).Subject.Text));
    }

    [Theory]
    [InlineData("exists (T0:r0 = 1)", Quantifier.Exists)]
    [InlineData("~exists (T0:r0 = 1)", Quantifier.NotExists)]
    [InlineData("~ exists (T0:r0 = 1)", Quantifier.NotExists)]
    [InlineData("forall (T0:r0 = 1)", Quantifier.Forall)]
    [InlineData("exists T0:r0 = 1", Quantifier.Exists)]
    public void Conditions_take_each_quantifier_with_or_without_parentheses(string text, Quantifier quantifier)
    {
        var condition = ParseClean(WithThread(text + "\nexpect never\n")).Condition!;
        Assert.Equal(quantifier, condition.Quantifier);
        Assert.IsType<Comparison>(condition.Proposition);
    }

    [Fact]
    public void Conjunction_binds_tighter_than_disjunction()
    {
        var or = Assert.IsType<LogicalProposition>(Prop("T0:r0 = 1 \\/ T0:r0 = 2 /\\ T1:r1 = 3"));
        Assert.Equal(LogicalOperator.Or, or.Operator);
        Assert.Equal(LogicalOperator.And, Assert.IsType<LogicalProposition>(or.Right).Operator);
        Assert.Equal("(T0:r0 = 1 \\/ T0:r0 = 2) /\\ T1:r1 = 3", LitmusPrinter.Print(Prop("(T0:r0 = 1 \\/ T0:r0 = 2) /\\ T1:r1 = 3")));
    }

    [Fact]
    public void Negation_applies_to_the_nearest_proposition()
    {
        var and = Assert.IsType<LogicalProposition>(Prop("~T0:r0 = 1 /\\ ~(T1:r1 = 2 \\/ T1:r1 = 3)"));
        Assert.IsType<Comparison>(Assert.IsType<NotProposition>(and.Left).Operand);
        Assert.IsType<LogicalProposition>(Assert.IsType<NotProposition>(and.Right).Operand);
        Assert.Equal("~(T0:r0 = 1) /\\ ~(T1:r1 = 2 \\/ T1:r1 = 3)", LitmusPrinter.Print(and));
    }

    [Fact]
    public void Comparisons_take_state_views_constants_and_negative_errnos()
    {
        var and = Assert.IsType<LogicalProposition>(Prop("P:pagemap(buf).exclusive <> 0 /\\ T0:r0 = -EINVAL /\\ T1:r1 = SIGSEGV /\\ P:[buf] = NULL"));
        var last = Assert.IsType<Comparison>(and.Right);
        Assert.IsType<MemoryLocation>(last.Left);
        Assert.IsType<NullLiteral>(last.Right);
        var first = Assert.IsType<Comparison>(((LogicalProposition)((LogicalProposition)and.Left).Left).Left);
        Assert.Equal(ComparisonOperator.NotEqual, first.Operator);
        Assert.Equal("exclusive", Assert.IsType<StateLocation>(first.Left).Field!.Text);
        var errno = Assert.IsType<Comparison>(((LogicalProposition)((LogicalProposition)and.Left).Left).Right);
        Assert.Equal("EINVAL", Name(Assert.IsType<UnaryExpression>(errno.Right).Operand));
    }

    [Theory]
    [InlineData("always", ExpectationKind.Always)]
    [InlineData("sometimes", ExpectationKind.Sometimes)]
    [InlineData("never", ExpectationKind.Never)]
    [InlineData("clean", ExpectationKind.Clean)]
    public void Expectations_take_each_outcome_word(string word, ExpectationKind kind)
    {
        var expectation = Assert.Single(ParseClean(WithThread($"expect {word}\n")).Expectations);
        Assert.Equal(kind, expectation.Kind);
        Assert.Null(expectation.Invariant);
    }

    [Fact]
    public void Several_expectations_including_violations_with_dashed_names()
    {
        var scenario = ParseClean(WithThread("expect clean\nexpect violation use-after-free\nexpect violation bug\n"));
        Assert.Equal(
            [(ExpectationKind.Clean, null), (ExpectationKind.Violation, "use-after-free"), (ExpectationKind.Violation, "bug")],
            scenario.Expectations.Select(e => (e.Kind, e.Invariant?.Text)));
    }

    [Fact]
    public void A_scenario_using_every_construct_round_trips()
    {
        ParseClean("""
            MM kitchen-sink+all
            (* Every construct at once. *)
            kernel = v5.10
            arch = x86_64
            cpus = 3
            variant do_wp_page.reuse = off
            {
              process P;
              device G = pci(bar0 = 16 pages);
              P: buf = mmap(NULL, 2 MiB, PROT_READ|PROT_WRITE, MAP_SHARED, -1, 0b0);
              P: store(buf + 8 * 2, ~0x0ff & 0644, "a\tb");
            }
            thread T0 in P {
              fork: C = fork();
              r0 = load((buf - 1) * 2);
            }
            thread T1 in C after T0.fork {
              r1 = request_mem_region(G.bar0, 16 pages, "driver");
            }
            locations [T0:r0; P:[buf]; P:PTE(buf).dirty]
            ~exists (T0:r0 = 0x22 /\ ~(T1:r1 <> -EBUSY) \/ P:PFN(buf) = C:PFN(buf) /\ G:PFN(buf) = 1)
            expect never
            expect violation revoked-iomem-mapped

            """);
    }
}

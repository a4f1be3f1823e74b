using MmCheck.Litmus.Syntax;
using MmCheck.Tests;
using static MmCheck.Litmus.Tests.Litmus;

namespace MmCheck.Litmus.Tests;

public class DesignExampleTests
{
    [Fact]
    public void Cow_example_parses_without_diagnostics()
    {
        var scenario = ParseClean(DesignExamples.CowBasicAfterFork);

        Assert.Equal("cow-basic-after-fork", scenario.Name.Text);
        Assert.Equal("cow.c \"Basic COW after fork()\": a parent write after fork() stays out of the child.", scenario.Description!.Text);
        Assert.Collection(
            scenario.Settings,
            s => Assert.Equal((SettingKind.Kernel, "kernel", "current"), (s.Kind, s.Name.Text, s.Value.Text)),
            s => Assert.Equal((SettingKind.Arch, "arch", "x86_64"), (s.Kind, s.Name.Text, s.Value.Text)));

        var init = scenario.Init!.Items;
        Assert.Equal(3, init.Length);
        var process = Assert.IsType<InitDeclaration>(init[0]);
        Assert.Equal(("process", "P"), (process.Kind.Text, process.Name.Text));
        Assert.Null(process.Initializer);

        var map = Assert.IsType<InitStatement>(init[1]);
        Assert.Equal("P", map.Process.Text);
        Assert.Equal("buf", map.Statement.Target!.Text);
        var mmap = Assert.IsType<CallExpression>(map.Statement.Value);
        Assert.Equal("mmap", mmap.Callee.Text);
        Assert.Equal(6, mmap.Arguments.Length);
        Assert.IsType<NullLiteral>(mmap.Arguments[0].Value);
        var size = Assert.IsType<SizeLiteral>(mmap.Arguments[1].Value);
        Assert.Equal((1UL, SizeUnit.Page), (size.Count.Value, size.Unit));
        var prot = Assert.IsType<BinaryExpression>(mmap.Arguments[2].Value);
        Assert.Equal((BinaryOperator.BitwiseOr, "PROT_READ", "PROT_WRITE"), (prot.Operator, Name(prot.Left), Name(prot.Right)));
        var fd = Assert.IsType<UnaryExpression>(mmap.Arguments[4].Value);
        Assert.Equal((UnaryOperator.Negate, 1UL), (fd.Operator, Int(fd.Operand)));

        var store = Assert.IsType<CallExpression>(Assert.IsType<InitStatement>(init[2]).Statement.Value);
        Assert.Equal(0x11UL, Int(store.Arguments[1].Value));

        Assert.Equal(2, scenario.Threads.Length);
        var t0 = scenario.Threads[0];
        Assert.Equal(("T0", "P"), (t0.Name.Text, t0.Process!.Text));
        Assert.Null(t0.After);
        Assert.Equal(3, t0.Body.Length);
        Assert.Equal(("fork", "C"), (t0.Body[0].Label!.Text, t0.Body[0].Target!.Text));
        Assert.Equal("fork", Assert.IsType<CallExpression>(t0.Body[0].Value).Callee.Text);
        Assert.Null(t0.Body[1].Target);
        Assert.Equal("r0", t0.Body[2].Target!.Text);

        var t1 = scenario.Threads[1];
        Assert.Equal(("T1", "C"), (t1.Name.Text, t1.Process!.Text));
        Assert.Equal(("T0", "fork"), (t1.After!.Thread.Text, t1.After.Label.Text));
        Assert.Single(t1.Body);

        var condition = scenario.Condition!;
        Assert.Equal(Quantifier.Forall, condition.Quantifier);
        var and = Assert.IsType<LogicalProposition>(condition.Proposition);
        Assert.Equal(LogicalOperator.And, and.Operator);
        AssertRegisterEquals(and.Left, "T0", "r0", 0x22);
        AssertRegisterEquals(and.Right, "T1", "r1", 0x11);

        Assert.Null(scenario.Locations);
        var expectation = Assert.Single(scenario.Expectations);
        Assert.Equal(ExpectationKind.Always, expectation.Kind);
        Assert.Null(expectation.Invariant);
    }

    [Fact]
    public void Pci_example_parses_without_diagnostics()
    {
        var scenario = ParseClean(DesignExamples.PciProcfsMmapVsRevoke);

        Assert.Equal("pci-procfs-mmap-vs-revoke", scenario.Name.Text);
        Assert.StartsWith("Seed 000: ->mmap populates the PTEs before vma_link();", scenario.Description!.Text, StringComparison.Ordinal);
        Assert.EndsWith("and the user keeps the BAR mapped.", scenario.Description.Text, StringComparison.Ordinal);
        var kernel = scenario.Settings[0];
        Assert.Equal((SettingKind.Kernel, "v5.10"), (kernel.Kind, kernel.Value.Text));

        var device = Assert.IsType<InitDeclaration>(scenario.Init!.Items[0]);
        Assert.Equal(("device", "G"), (device.Kind.Text, device.Name.Text));
        var pci = Assert.IsType<CallExpression>(device.Initializer);
        Assert.Equal("pci", pci.Callee.Text);
        var bar0 = Assert.Single(pci.Arguments);
        Assert.Equal("bar0", bar0.Name!.Text);
        var pages = Assert.IsType<SizeLiteral>(bar0.Value);
        Assert.Equal((16UL, SizeUnit.Page), (pages.Count.Value, pages.Unit));

        var open = Assert.IsType<CallExpression>(Assert.IsType<InitStatement>(scenario.Init.Items[2]).Statement.Value);
        Assert.Equal("/proc/bus/pci/00/00.0", Assert.IsType<StringLiteral>(open.Arguments[0].Value).Value);

        Assert.Equal(("User", "P"), (scenario.Threads[0].Name.Text, scenario.Threads[0].Process!.Text));
        var probe = scenario.Threads[1];
        Assert.Equal("Probe", probe.Name.Text);
        Assert.Null(probe.Process);
        var claim = Assert.IsType<CallExpression>(Assert.Single(probe.Body).Value);
        var region = Assert.IsType<MemberAccessExpression>(claim.Arguments[0].Value);
        Assert.Equal(("G", "bar0"), (Name(region.Target), region.Member.Text));
        Assert.Equal("driver", Assert.IsType<StringLiteral>(claim.Arguments[2].Value).Value);

        Assert.Null(scenario.Condition);
        var expectation = Assert.Single(scenario.Expectations);
        Assert.Equal((ExpectationKind.Violation, "revoked-iomem-mapped"), (expectation.Kind, expectation.Invariant!.Text));
    }

    [Fact]
    public void Design_examples_are_already_in_canonical_form()
    {
        foreach (string text in DesignExamples.All)
        {
            Assert.Equal(text, LitmusPrinter.Print(ParseClean(text)));
        }
    }

    [Fact]
    public void Node_spans_point_back_into_the_source()
    {
        var scenario = ParseClean(DesignExamples.CowBasicAfterFork);
        var t1 = scenario.Threads[1];
        Assert.Equal((15, 1), (t1.Span.Line, t1.Span.Column));
        Assert.Equal("after T0.fork", t1.After!.Span.Text);
        Assert.Equal("fork: C = fork();", scenario.Threads[0].Body[0].Span.Text);
        Assert.Equal("1 page", ((CallExpression)((InitStatement)scenario.Init!.Items[1]).Statement.Value).Arguments[1].Span.Text);
        Assert.Equal("forall (T0:r0 = 0x22 /\\ T1:r1 = 0x11)", scenario.Condition!.Span.Text);
    }

    private static void AssertRegisterEquals(Proposition proposition, string thread, string register, ulong value)
    {
        var comparison = Assert.IsType<Comparison>(proposition);
        Assert.Equal(ComparisonOperator.Equal, comparison.Operator);
        var location = Assert.IsType<RegisterLocation>(comparison.Left);
        Assert.Equal((thread, register), (location.Thread.Text, location.Register.Text));
        var literal = Assert.IsType<IntegerLiteral>(comparison.Right);
        Assert.Equal((value, IntegerRadix.Hexadecimal), (literal.Value, literal.Radix));
    }
}

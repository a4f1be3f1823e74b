using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Binding;

/// <summary>A bound expression: names resolved, verbs looked up, sizes in bytes.</summary>
public abstract record BoundExpr(SourceSpan Span);

public sealed record BoundConst(SourceSpan Span, LitValue Value) : BoundExpr(Span);

/// <summary>A register read, resolved at run time through the thread's scope chain.</summary>
public sealed record BoundRegister(SourceSpan Span, string Name) : BoundExpr(Span);

public sealed record BoundUnary(SourceSpan Span, UnaryOperator Operator, BoundExpr Operand) : BoundExpr(Span);

public sealed record BoundBinary(SourceSpan Span, BinaryOperator Operator, BoundExpr Left, BoundExpr Right) : BoundExpr(Span);

/// <summary>A kernel entry point called by its verb.</summary>
public sealed record BoundCall(SourceSpan Span, VerbDef Verb, IReadOnlyList<BoundExpr> Args) : BoundExpr(Span);

/// <summary>A device attribute, such as <c>G.bar0</c> (the BAR's physical address).</summary>
public sealed record BoundDeviceMember(SourceSpan Span, string Device, DeviceKind Kind, string Member) : BoundExpr(Span);

/// <summary>One statement: an optional label, an optional register to assign, an expression.</summary>
public sealed record BoundStatement(SourceSpan Span, string? Label, string? Target, BoundExpr Value);

/// <summary>A process of the scenario: declared in the init block, or the child a fork creates.</summary>
public sealed record ProcessDecl(string Name, SourceSpan Span, string? ForkedByThread = null, string? ForkLabel = null)
{
    /// <summary>For a child forked by a thread: the index of the fork statement in that thread.</summary>
    public int ForkStatementIndex { get; init; } = -1;

    /// <summary>For a child forked in the init block: the process that forked it.</summary>
    public string? ForkedInInitBy { get; init; }

    public bool Forked => ForkedByThread is not null || ForkedInInitBy is not null;
}

/// <summary>A device declared in the init block (device G = pci(bar0 = 16 pages)).</summary>
public sealed record DeviceDecl(string Name, string Kind, IReadOnlyDictionary<string, BoundExpr> Args, SourceSpan Span)
{
    /// <summary>The arguments' values (the binder admits constants only), made once for every run.</summary>
    public IReadOnlyDictionary<string, LitValue> Values { get; } =
        Args.ToDictionary(a => a.Key, a => ((BoundConst)a.Value).Value, StringComparer.Ordinal);
}

/// <summary>A scenario thread: a task in a process (or a kernel thread), possibly starting after
/// another thread's labelled statement.</summary>
public sealed record BoundThread(string Name, string? Process, string? AfterThread, string? AfterLabel,
    IReadOnlyList<BoundStatement> Body, SourceSpan Span)
{
    /// <summary>The statement of <see cref="AfterThread"/> after which this thread starts (-1: at the start).</summary>
    public int AfterIndex { get; init; } = -1;
}

/// <summary>A condition atom's side: a value, a register of a thread, memory or a state view.</summary>
public abstract record BoundLocation(SourceSpan Span, string Display);

public sealed record BoundRegisterLocation(SourceSpan Span, string Display, string Thread, string Register) : BoundLocation(Span, Display);

/// <summary>P:[addr]: what a load of 8 bytes by P would return at the end.</summary>
public sealed record BoundMemoryLocation(SourceSpan Span, string Display, string Process, BoundExpr Address) : BoundLocation(Span, Display);

/// <summary>P:PTE(addr).field, P:PFN(addr), P:pagemap(addr).field, device views.</summary>
public sealed record BoundStateLocation(SourceSpan Span, string Display, string Subject, string View, BoundExpr Address, string? Field)
    : BoundLocation(Span, Display);

public sealed record BoundValueOperand(SourceSpan Span, string Display, BoundExpr Value) : BoundLocation(Span, Display);

public abstract record BoundProp(SourceSpan Span);

public sealed record BoundComparison(SourceSpan Span, bool Equal, BoundLocation Left, BoundLocation Right) : BoundProp(Span);

public sealed record BoundNot(SourceSpan Span, BoundProp Operand) : BoundProp(Span);

public sealed record BoundLogical(SourceSpan Span, bool And, BoundProp Left, BoundProp Right) : BoundProp(Span);

public sealed record BoundCondition(Quantifier Quantifier, BoundProp Prop, string Text)
{
    public override string ToString() => Quantifier switch
    {
        Quantifier.Exists => "exists ",
        Quantifier.NotExists => "~exists ",
        _ => "forall ",
    } + "(" + Text + ")";
}

public sealed record BoundExpectation(ExpectationKind Kind, string? Invariant, SourceSpan Span)
{
    public override string ToString() => Kind switch
    {
        ExpectationKind.Violation => "violation " + Invariant,
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>A scenario after binding: everything resolved, ready to run on a kernel.</summary>
public sealed class BoundScenario
{
    public required string Name { get; init; }
    public required SourceText Source { get; init; }
    public string? Description { get; init; }
    /// <summary>The kernel setting as written ("current", "v5.10").</summary>
    public required string KernelName { get; init; }
    public required Linux.KernelConfig Config { get; init; }
    public int? Cpus { get; init; }
    public required IReadOnlyList<ProcessDecl> Processes { get; init; }
    public required IReadOnlyList<DeviceDecl> Devices { get; init; }
    public required IReadOnlyList<(string Process, BoundStatement Statement)> Init { get; init; }
    public required IReadOnlyList<BoundThread> Threads { get; init; }
    public required IReadOnlyList<BoundLocation> Locations { get; init; }
    public BoundCondition? Condition { get; init; }
    public required IReadOnlyList<BoundExpectation> Expectations { get; init; }
}

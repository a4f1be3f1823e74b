using System.Collections.Immutable;

namespace MmCheck.Litmus.Syntax;

// The syntax tree of a scenario. Every node is an immutable record carrying the span it was parsed
// from; nodes a tool builds can use SourceSpan.None. Record equality includes spans and compares
// lists by reference, so compare trees with SyntaxEquivalence.AreEquivalent instead.

public abstract record SyntaxNode(SourceSpan Span);

/// <summary>A name as written: a process, thread, register, label, function, setting or invariant.</summary>
public sealed record Identifier(SourceSpan Span, string Text) : SyntaxNode(Span)
{
    public override string ToString() => Text;
}

/// <summary>The <c>(* ... *)</c> right after the header; <see cref="Text"/> is its inside, trimmed.</summary>
public sealed record Comment(SourceSpan Span, string Text) : SyntaxNode(Span);

/// <summary>
/// One scenario file. <see cref="Name"/> is empty only in a tree recovered from a file whose header
/// was missing; such a parse always carries errors.
/// </summary>
public sealed record ScenarioAst(
    SourceSpan Span,
    Identifier Name,
    Comment? Description,
    ImmutableArray<Setting> Settings,
    InitBlock? Init,
    ImmutableArray<ThreadDeclaration> Threads,
    LocationsClause? Locations,
    Condition? Condition,
    ImmutableArray<Expectation> Expectations) : SyntaxNode(Span);

public enum SettingKind
{
    /// <summary><c>kernel = v5.10</c>: a preset of variants.</summary>
    Kernel,

    /// <summary><c>arch = x86_64</c></summary>
    Arch,

    /// <summary><c>cpus = 4</c>; the parser checks that the value is an integer.</summary>
    Cpus,

    /// <summary><c>variant do_wp_page.reuse = off</c>; <see cref="Setting.Name"/> is the dotted variant name.</summary>
    Variant,

    /// <summary>Any other <c>name = value</c>; the binder decides whether it knows the name.</summary>
    Other,
}

/// <summary>
/// A line <c>name = value</c> or <c>variant dotted.name = value</c>. <see cref="Kind"/> follows from
/// the name (and the <c>variant</c> keyword), so the binder can switch on it.
/// </summary>
public sealed record Setting(SourceSpan Span, SettingKind Kind, Identifier Name, SettingValue Value) : SyntaxNode(Span);

/// <summary>A setting's value, one word such as <c>v5.10</c>, <c>x86_64</c>, <c>current</c>, <c>4</c>.</summary>
public sealed record SettingValue(SourceSpan Span, string Text) : SyntaxNode(Span)
{
    /// <summary>The value as an integer literal, or null when it is not one.</summary>
    public ulong? Number => IntegerSyntax.TryParse(Text, out ulong value) ? value : null;

    public override string ToString() => Text;
}

/// <summary>The <c>{ ... }</c> block run before the threads start.</summary>
public sealed record InitBlock(SourceSpan Span, ImmutableArray<InitItem> Items) : SyntaxNode(Span);

public abstract record InitItem(SourceSpan Span) : SyntaxNode(Span);

/// <summary><c>process P;</c> or <c>device G = pci(bar0 = 16 pages);</c></summary>
public sealed record InitDeclaration(SourceSpan Span, Identifier Kind, Identifier Name, Expression? Initializer) : InitItem(Span);

/// <summary><c>P: buf = mmap(...);</c>, a statement that process P runs during set-up.</summary>
public sealed record InitStatement(SourceSpan Span, Identifier Process, Statement Statement) : InitItem(Span);

/// <summary><c>thread NAME [in PROCESS] [after THREAD.LABEL] { ... }</c></summary>
public sealed record ThreadDeclaration(
    SourceSpan Span,
    Identifier Name,
    Identifier? Process,
    AfterClause? After,
    ImmutableArray<Statement> Body) : SyntaxNode(Span);

/// <summary><c>after T0.fork</c>: the thread starts once thread T0 has run the statement labelled fork.</summary>
public sealed record AfterClause(SourceSpan Span, Identifier Thread, Identifier Label) : SyntaxNode(Span);

/// <summary><c>[label:] [target =] value;</c></summary>
public sealed record Statement(SourceSpan Span, Identifier? Label, Identifier? Target, Expression Value) : SyntaxNode(Span);

/// <summary><c>locations [T0:r0; P:[buf]]</c>: extra state to report with each outcome.</summary>
public sealed record LocationsClause(SourceSpan Span, ImmutableArray<Location> Locations) : SyntaxNode(Span);

public enum Quantifier
{
    Exists,
    NotExists,
    Forall,
}

/// <summary>The final condition: <c>exists</c>, <c>~exists</c> or <c>forall</c> over a proposition.</summary>
public sealed record Condition(SourceSpan Span, Quantifier Quantifier, Proposition Proposition) : SyntaxNode(Span);

public enum ExpectationKind
{
    Always,
    Sometimes,
    Never,
    Clean,
    Violation,
}

/// <summary><c>expect always</c> ... or <c>expect violation NAME</c>; only Violation has an <see cref="Invariant"/>.</summary>
public sealed record Expectation(SourceSpan Span, ExpectationKind Kind, Identifier? Invariant) : SyntaxNode(Span);

using System.Collections.Immutable;

namespace MmCheck.Litmus.Syntax;

public abstract record Expression(SourceSpan Span) : SyntaxNode(Span);

/// <summary>An integer; <see cref="Radix"/> only remembers how it was written, for printing.</summary>
public sealed record IntegerLiteral(SourceSpan Span, ulong Value, IntegerRadix Radix = IntegerRadix.Decimal) : Expression(Span);

public enum SizeUnit
{
    /// <summary><c>page</c> or <c>pages</c>: the architecture's base page size, known only when binding.</summary>
    Page,
    KiB,
    MiB,
    GiB,
}

/// <summary><c>16 pages</c>, <c>1 page</c>, <c>2 MiB</c>.</summary>
public sealed record SizeLiteral(SourceSpan Span, IntegerLiteral Count, SizeUnit Unit) : Expression(Span)
{
    /// <summary>The size in bytes given the page size, or false when it does not fit in 64 bits.</summary>
    public bool TryGetBytes(ulong pageSize, out ulong bytes)
    {
        ulong unit = Unit switch
        {
            SizeUnit.Page => pageSize,
            SizeUnit.KiB => 1UL << 10,
            SizeUnit.MiB => 1UL << 20,
            _ => 1UL << 30,
        };
        bytes = 0;
        if (unit != 0 && Count.Value > ulong.MaxValue / unit)
        {
            return false;
        }

        bytes = Count.Value * unit;
        return true;
    }
}

/// <summary>A string with its escapes decoded.</summary>
public sealed record StringLiteral(SourceSpan Span, string Value) : Expression(Span);

/// <summary><c>NULL</c></summary>
public sealed record NullLiteral(SourceSpan Span) : Expression(Span);

/// <summary>A variable, register, process or constant such as <c>buf</c> or <c>PROT_READ</c>.</summary>
public sealed record NameExpression(SourceSpan Span, string Name) : Expression(Span);

/// <summary><c>mmap(NULL, 1 page, ...)</c> or <c>pci(bar0 = 16 pages)</c>.</summary>
public sealed record CallExpression(SourceSpan Span, Identifier Callee, ImmutableArray<Argument> Arguments) : Expression(Span);

/// <summary>One argument; <see cref="Name"/> is set for the named form <c>bar0 = 16 pages</c>.</summary>
public sealed record Argument(SourceSpan Span, Identifier? Name, Expression Value) : SyntaxNode(Span);

/// <summary><c>G.bar0</c></summary>
public sealed record MemberAccessExpression(SourceSpan Span, Expression Target, Identifier Member) : Expression(Span);

public enum UnaryOperator
{
    /// <summary><c>-</c></summary>
    Negate,

    /// <summary><c>~</c></summary>
    Complement,
}

public sealed record UnaryExpression(SourceSpan Span, UnaryOperator Operator, Expression Operand) : Expression(Span);

public enum BinaryOperator
{
    /// <summary><c>|</c>, lowest precedence.</summary>
    BitwiseOr,

    /// <summary><c>&amp;</c></summary>
    BitwiseAnd,

    /// <summary><c>+</c></summary>
    Add,

    /// <summary><c>-</c></summary>
    Subtract,

    /// <summary><c>*</c>, highest precedence.</summary>
    Multiply,
}

/// <summary>All binary operators associate to the left.</summary>
public sealed record BinaryExpression(SourceSpan Span, BinaryOperator Operator, Expression Left, Expression Right) : Expression(Span);

/// <summary>State a condition or a <c>locations</c> list can name. Locations appear only there.</summary>
public abstract record Location(SourceSpan Span) : Expression(Span);

/// <summary><c>T0:r0</c>, a register of a thread.</summary>
public sealed record RegisterLocation(SourceSpan Span, Identifier Thread, Identifier Register) : Location(Span);

/// <summary><c>P:[buf]</c>, <c>P:[buf + 8]</c>: memory as process P sees it.</summary>
public sealed record MemoryLocation(SourceSpan Span, Identifier Process, Expression Address) : Location(Span);

/// <summary>
/// <c>P:PTE(buf).dirty</c>, <c>P:PFN(buf)</c>, <c>P:pagemap(buf).exclusive</c>, <c>D:PFN(addr)</c>:
/// a view of kernel or device state from the point of view of <see cref="Subject"/>.
/// </summary>
public sealed record StateLocation(
    SourceSpan Span,
    Identifier Subject,
    Identifier View,
    ImmutableArray<Argument> Arguments,
    Identifier? Field) : Location(Span);

namespace MmCheck.Litmus.Syntax;

/// <summary>A proposition of the final condition.</summary>
public abstract record Proposition(SourceSpan Span) : SyntaxNode(Span);

public enum ComparisonOperator
{
    /// <summary><c>=</c></summary>
    Equal,

    /// <summary><c>&lt;&gt;</c></summary>
    NotEqual,
}

/// <summary>
/// <c>T0:r0 = 0x22</c>. Each side is a <see cref="Location"/>, an <see cref="IntegerLiteral"/>, a
/// constant (<see cref="NameExpression"/>, <see cref="NullLiteral"/>) or a negation of one of them.
/// </summary>
public sealed record Comparison(SourceSpan Span, ComparisonOperator Operator, Expression Left, Expression Right) : Proposition(Span);

/// <summary><c>~prop</c></summary>
public sealed record NotProposition(SourceSpan Span, Proposition Operand) : Proposition(Span);

public enum LogicalOperator
{
    /// <summary><c>\/</c>, lower precedence.</summary>
    Or,

    /// <summary><c>/\</c></summary>
    And,
}

/// <summary>Both operators associate to the left; <c>/\</c> binds tighter than <c>\/</c>.</summary>
public sealed record LogicalProposition(SourceSpan Span, LogicalOperator Operator, Proposition Left, Proposition Right) : Proposition(Span);

using System.Collections.Immutable;

namespace MmCheck.Litmus.Syntax;

public enum TokenKind
{
    EndOfFile,

    /// <summary>Characters that start no token; the lexer reports them and moves on.</summary>
    Error,

    Identifier,

    /// <summary>A word lexed in one of the contextual modes (see <see cref="LexMode"/>).</summary>
    Name,

    Integer,
    String,

    OpenParen,
    CloseParen,
    OpenBrace,
    CloseBrace,
    OpenBracket,
    CloseBracket,
    Comma,
    Semicolon,
    Colon,

    /// <summary><c>=</c></summary>
    Equal,
    Dot,
    Plus,
    Minus,
    Star,
    Pipe,
    Ampersand,
    Tilde,
    Less,
    Greater,

    /// <summary><c>/\</c></summary>
    And,

    /// <summary><c>\/</c></summary>
    Or,

    /// <summary><c>&lt;&gt;</c></summary>
    NotEqual,
}

/// <summary>
/// How the lexer reads the next word. Names that may contain '-', '+' or '.' exist only in a few
/// places (the header, setting values, variant and invariant names); elsewhere those characters
/// are operators, so the parser asks for these modes exactly where the grammar allows such names.
/// </summary>
public enum LexMode
{
    Normal,

    /// <summary>The scenario name after <c>MM</c>: letters, digits and <c>_ + - .</c>, on the same line.</summary>
    HeaderName,

    /// <summary>A setting's value: letters, digits and <c>_ + - .</c>, on the same line.</summary>
    SettingValue,

    /// <summary>A variant name: identifiers joined by dots, like <c>do_wp_page.reuse</c>.</summary>
    DottedName,

    /// <summary>An invariant name: an identifier that may contain '-', like <c>revoked-iomem-mapped</c>.</summary>
    DashedName,
}

public enum IntegerRadix
{
    Decimal,
    Hexadecimal,
    Binary,

    /// <summary>C's leading-zero octal, as in file modes like 0644.</summary>
    Octal,
}

/// <summary>One token with what the lexer learnt about the trivia in front of it.</summary>
public sealed record Token(TokenKind Kind, SourceSpan Span, string Text)
{
    public ulong IntegerValue { get; init; }

    public IntegerRadix Radix { get; init; }

    /// <summary>The decoded value of a string literal.</summary>
    public string? StringValue { get; init; }

    /// <summary>True when only whitespace and comments precede the token on its line.</summary>
    public bool IsFirstOnLine { get; init; }

    /// <summary>The first terminated <c>(* ... *)</c> comment in the trivia before the token.</summary>
    public SourceSpan? LeadingBlockComment { get; init; }

    /// <summary>Lexical errors in the token and in the trivia before it.</summary>
    public ImmutableArray<Diagnostic> Diagnostics { get; init; } = [];

    public override string ToString() => Kind == TokenKind.EndOfFile ? "<end of file>" : Text;
}

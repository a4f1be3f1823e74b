using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace MmCheck.Litmus.Syntax;

/// <summary>
/// Turns scenario text into tokens. <see cref="Lex"/> is a pure function of the position and the
/// mode, which lets the parser re-read a stretch of text in a different mode without any state to
/// undo. It never throws: characters that start no token become <see cref="TokenKind.Error"/>
/// tokens carrying a diagnostic.
/// </summary>
public sealed class Lexer
{
    private const string UnitHint = "; write a space before the unit, as in '16 pages'";

    private readonly SourceText _source;
    private readonly string _text;

    public Lexer(SourceText source)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _text = source.Text;
    }

    /// <summary>Every token of the text in <see cref="LexMode.Normal"/>, ending with the end-of-file token.</summary>
    public static ImmutableArray<Token> Tokenize(SourceText source)
    {
        var lexer = new Lexer(source);
        var tokens = ImmutableArray.CreateBuilder<Token>();
        int position = 0;
        while (true)
        {
            var token = lexer.Lex(position);
            tokens.Add(token);
            if (token.Kind == TokenKind.EndOfFile)
            {
                return tokens.ToImmutable();
            }

            position = token.Span.End;
        }
    }

    /// <summary>
    /// The token after the trivia at <paramref name="position"/>. When the mode asks for a word
    /// that is not there, the result is the ordinary token that stands there instead, so the
    /// caller can say what it found.
    /// </summary>
    public Token Lex(int position, LexMode mode = LexMode.Normal)
    {
        position = Math.Clamp(position, 0, _text.Length);
        if (mode is LexMode.HeaderName or LexMode.SettingValue)
        {
            // These words end at the end of the line, so only blanks may come before them.
            int start = position;
            while (start < _text.Length && _text[start] is ' ' or '\t')
            {
                start++;
            }

            if (start < _text.Length && IsNameChar(_text[start]))
            {
                int end = start;
                while (end < _text.Length && IsNameChar(_text[end]))
                {
                    end++;
                }

                return new Token(TokenKind.Name, Span(start, end), _text[start..end]) { IsFirstOnLine = position == 0 };
            }
        }

        var trivia = new Trivia { FirstOnLine = position == 0 };
        int tokenStart = SkipTrivia(position, ref trivia);
        return ScanToken(tokenStart, mode, trivia);
    }

    private static bool IsIdentifierStart(char c) => char.IsAsciiLetter(c) || c == '_';

    private static bool IsIdentifierChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private static bool IsNameChar(char c) => IsIdentifierChar(c) || c is '-' or '+' or '.';

    private static bool IsBlank(char c) => c is ' ' or '\t' or '\f' or '\v' or '\uFEFF';

    private static bool IsLineBreak(char c) => c is '\n' or '\r';

    private SourceSpan Span(int start, int end) => SourceSpan.FromBounds(_source, start, end);

    private int SkipTrivia(int position, ref Trivia trivia)
    {
        int length = _text.Length;
        while (position < length)
        {
            char c = _text[position];
            char next = position + 1 < length ? _text[position + 1] : '\0';
            if (IsLineBreak(c))
            {
                trivia.FirstOnLine = true;
                position++;
            }
            else if (IsBlank(c))
            {
                position++;
            }
            else if (c == '(' && next == '*')
            {
                // herd comments; they do not nest, because descriptions quote C like (*pte).
                int close = _text.IndexOf("*)", position + 2, StringComparison.Ordinal);
                int end = close < 0 ? length : close + 2;
                if (_text.AsSpan(position, end - position).IndexOfAny('\n', '\r') >= 0)
                {
                    trivia.FirstOnLine = true;
                }

                if (close < 0)
                {
                    trivia.Add(new Diagnostic(
                        DiagnosticSeverity.Error,
                        DiagnosticCodes.UnterminatedComment,
                        "unterminated comment: expected '*)' to close the comment opened here but found end of file",
                        Span(position, position + 2),
                        "'*)'",
                        "end of file"));
                }
                else
                {
                    trivia.FirstComment ??= Span(position, end);
                }

                position = end;
            }
            else if (c == '/' && next == '/')
            {
                while (position < length && !IsLineBreak(_text[position]))
                {
                    position++;
                }
            }
            else
            {
                break;
            }
        }

        return position;
    }

    private Token ScanToken(int start, LexMode mode, Trivia trivia)
    {
        if (start >= _text.Length)
        {
            return Finish(new Token(TokenKind.EndOfFile, Span(_text.Length, _text.Length), ""), trivia);
        }

        char c = _text[start];
        char next = start + 1 < _text.Length ? _text[start + 1] : '\0';
        if (IsIdentifierStart(c))
        {
            return mode switch
            {
                LexMode.DottedName => ScanDottedName(start, trivia),
                LexMode.DashedName => ScanWord(start, TokenKind.Name, static ch => IsIdentifierChar(ch) || ch == '-', trivia),
                _ => ScanWord(start, TokenKind.Identifier, IsIdentifierChar, trivia),
            };
        }

        if (char.IsAsciiDigit(c))
        {
            return ScanNumber(start, trivia);
        }

        if (c == '"')
        {
            return ScanString(start, trivia);
        }

        (TokenKind kind, int width) = (c, next) switch
        {
            ('(', _) => (TokenKind.OpenParen, 1),
            (')', _) => (TokenKind.CloseParen, 1),
            ('{', _) => (TokenKind.OpenBrace, 1),
            ('}', _) => (TokenKind.CloseBrace, 1),
            ('[', _) => (TokenKind.OpenBracket, 1),
            (']', _) => (TokenKind.CloseBracket, 1),
            (',', _) => (TokenKind.Comma, 1),
            (';', _) => (TokenKind.Semicolon, 1),
            (':', _) => (TokenKind.Colon, 1),
            ('=', _) => (TokenKind.Equal, 1),
            ('.', _) => (TokenKind.Dot, 1),
            ('+', _) => (TokenKind.Plus, 1),
            ('-', _) => (TokenKind.Minus, 1),
            ('*', _) => (TokenKind.Star, 1),
            ('|', _) => (TokenKind.Pipe, 1),
            ('&', _) => (TokenKind.Ampersand, 1),
            ('~', _) => (TokenKind.Tilde, 1),
            ('<', '>') => (TokenKind.NotEqual, 2),
            ('<', _) => (TokenKind.Less, 1),
            ('>', _) => (TokenKind.Greater, 1),
            ('/', '\\') => (TokenKind.And, 2),
            ('\\', '/') => (TokenKind.Or, 2),
            _ => (TokenKind.Error, 0),
        };

        if (kind == TokenKind.Error)
        {
            return ScanInvalid(start, trivia);
        }

        return Finish(new Token(kind, Span(start, start + width), _text.Substring(start, width)), trivia);
    }

    private Token ScanWord(int start, TokenKind kind, Func<char, bool> isPart, Trivia trivia)
    {
        int end = start + 1;
        while (end < _text.Length && isPart(_text[end]))
        {
            end++;
        }

        return Finish(new Token(kind, Span(start, end), _text[start..end]), trivia);
    }

    private Token ScanDottedName(int start, Trivia trivia)
    {
        int end = start;
        while (true)
        {
            end++;
            while (end < _text.Length && IsIdentifierChar(_text[end]))
            {
                end++;
            }

            // A dot belongs to the name only when another identifier follows it.
            if (end + 1 < _text.Length && _text[end] == '.' && IsIdentifierStart(_text[end + 1]))
            {
                end++;
                continue;
            }

            return Finish(new Token(TokenKind.Name, Span(start, end), _text[start..end]), trivia);
        }
    }

    private Token ScanNumber(int start, Trivia trivia)
    {
        // Like C's preprocessing numbers, a literal runs over every letter and digit, so "0x1g"
        // and "16pages" are one malformed token, not a number followed by a stray name.
        int end = start;
        while (end < _text.Length && IsIdentifierChar(_text[end]))
        {
            end++;
        }

        string text = _text[start..end];
        var error = IntegerSyntax.Parse(text, out ulong value, out var radix, out int errorIndex);
        switch (error)
        {
            case IntegerError.InvalidDigit:
                string digitKind = (radix == IntegerRadix.Octal ? "an " : "a ") + IntegerSyntax.NameOf(radix);
                string tail = text[errorIndex..];
                string hint = radix == IntegerRadix.Decimal && IsUnitName(tail) ? UnitHint : "";
                trivia.Add(new Diagnostic(
                    DiagnosticSeverity.Error,
                    DiagnosticCodes.InvalidNumber,
                    $"expected {digitKind} digit but found '{text[errorIndex]}' in the number '{text}'{hint}",
                    Span(start + errorIndex, start + errorIndex + 1),
                    $"{digitKind} digit",
                    $"'{text[errorIndex]}'"));
                break;
            case IntegerError.MissingDigits:
                string digits = IntegerSyntax.NameOf(radix);
                trivia.Add(new Diagnostic(
                    DiagnosticSeverity.Error,
                    DiagnosticCodes.InvalidNumber,
                    $"expected {digits} digits after '{text[..Math.Min(2, text.Length)]}' but found none",
                    Span(start, end),
                    $"{digits} digits",
                    "none"));
                break;
            case IntegerError.Overflow:
                trivia.Add(new Diagnostic(
                    DiagnosticSeverity.Error,
                    DiagnosticCodes.IntegerOverflow,
                    $"expected an integer that fits in 64 bits (at most {ulong.MaxValue.ToString(CultureInfo.InvariantCulture)}) but found {Quote(text)}",
                    Span(start, end),
                    "an integer that fits in 64 bits",
                    Quote(text)));
                break;
            case IntegerError.None:
            default:
                break;
        }

        return Finish(new Token(TokenKind.Integer, Span(start, end), text) { IntegerValue = value, Radix = radix }, trivia);
    }

    private static int HexValue(char c) => char.IsAsciiDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10;

    private static bool IsUnitName(string text) => text is "page" or "pages" or "KiB" or "MiB" or "GiB";

    private Token ScanString(int start, Trivia trivia)
    {
        var value = new StringBuilder();
        int position = start + 1;
        bool terminated = false;
        while (position < _text.Length)
        {
            char c = _text[position];
            if (c == '"')
            {
                position++;
                terminated = true;
                break;
            }

            if (IsLineBreak(c))
            {
                break;
            }

            if (c != '\\')
            {
                value.Append(c);
                position++;
                continue;
            }

            if (position + 1 >= _text.Length || IsLineBreak(_text[position + 1]))
            {
                // A backslash at the end of the line escapes nothing; the string is unterminated.
                position++;
                break;
            }

            position = ScanEscape(position, value, ref trivia);
        }

        if (!terminated)
        {
            string found = position >= _text.Length ? "end of file" : "end of line";
            trivia.Add(new Diagnostic(
                DiagnosticSeverity.Error,
                DiagnosticCodes.UnterminatedString,
                $"unterminated string: expected '\"' to close the string but found {found}",
                Span(start, Math.Max(position, start + 1)),
                "'\"'",
                found));
        }

        return Finish(
            new Token(TokenKind.String, Span(start, position), _text[start..position]) { StringValue = value.ToString() },
            trivia);
    }

    /// <summary>Reads the escape at the backslash at <paramref name="position"/>; returns the position after it.</summary>
    private int ScanEscape(int position, StringBuilder value, ref Trivia trivia)
    {
        char e = _text[position + 1];
        char? simple = e switch
        {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\a',
            'b' => '\b',
            'f' => '\f',
            'v' => '\v',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            '?' => '?',
            _ => null,
        };
        if (simple is char s)
        {
            value.Append(s);
            return position + 2;
        }

        if (e is >= '0' and <= '7')
        {
            int end = position + 1;
            int code = 0;
            while (end < _text.Length && end < position + 4 && _text[end] is >= '0' and <= '7')
            {
                code = (code * 8) + (_text[end] - '0');
                end++;
            }

            value.Append((char)code);
            return end;
        }

        if (e == 'x')
        {
            // At most two hex digits, unlike C, so "\x01" followed by "a" stays two characters
            // and the printer can always escape one character as \xHH.
            int end = position + 2;
            int code = 0;
            while (end < _text.Length && end < position + 4 && char.IsAsciiHexDigit(_text[end]))
            {
                code = (code * 16) + HexValue(_text[end]);
                end++;
            }

            if (end > position + 2)
            {
                value.Append((char)code);
                return end;
            }
        }

        int width = char.IsSurrogatePair(_text, position + 1) ? 2 : 1;
        string escape = _text.Substring(position, 1 + width);
        trivia.Add(new Diagnostic(
            DiagnosticSeverity.Error,
            DiagnosticCodes.InvalidEscape,
            $"expected an escape sequence such as \\n, \\t, \\\\, \\\" or \\xHH but found {Quote(escape)}",
            Span(position, position + 1 + width),
            "an escape sequence",
            Quote(escape)));
        value.Append(escape, 1, width);
        return position + 1 + width;
    }

    private Token ScanInvalid(int start, Trivia trivia)
    {
        int end = start;
        int count = 0;
        do
        {
            end += char.IsSurrogatePair(_text, end) ? 2 : 1;
            count++;
        }
        while (end < _text.Length && StartsNothing(end));

        string first = DescribeCharacter(_text, start);
        string found = count == 1 ? first : $"{count} such characters, the first {first}";
        trivia.Add(new Diagnostic(
            DiagnosticSeverity.Error,
            DiagnosticCodes.InvalidCharacter,
            $"expected a name, a number, a string or an operator but found {found}",
            Span(start, end),
            "a name, a number, a string or an operator",
            found));
        return Finish(new Token(TokenKind.Error, Span(start, end), _text[start..end]), trivia);
    }

    /// <summary>True when the character at <paramref name="position"/> can neither start a token nor be trivia.</summary>
    private bool StartsNothing(int position)
    {
        char c = _text[position];
        char next = position + 1 < _text.Length ? _text[position + 1] : '\0';
        if (IsIdentifierChar(c) || c == '"' || IsBlank(c) || IsLineBreak(c) || "(){}[],;:=.+-*|&~<>".Contains(c, StringComparison.Ordinal))
        {
            return false;
        }

        return c switch
        {
            '/' => next is not ('\\' or '/'),
            '\\' => next != '/',
            _ => true,
        };
    }

    /// <summary>A character as a message shows it: quoted when printable, always with its code point.</summary>
    internal static string DescribeCharacter(string text, int position)
    {
        int codePoint = char.IsSurrogatePair(text, position) ? char.ConvertToUtf32(text, position) : text[position];
        string code = string.Create(CultureInfo.InvariantCulture, $"U+{codePoint:X4}");
        bool printable = !char.IsControl(text[position]) && !char.IsWhiteSpace(text[position]) &&
            (!char.IsSurrogate(text[position]) || char.IsSurrogatePair(text, position));
        if (!printable)
        {
            return code;
        }

        string shown = char.IsSurrogatePair(text, position) ? text.Substring(position, 2) : text[position].ToString();
        return $"'{shown}' ({code})";
    }

    /// <summary>Source text as a message quotes it: control characters escaped, long text cut.</summary>
    internal static string Quote(string text)
    {
        const int MaxQuoted = 32;
        var builder = new StringBuilder("'");
        foreach (char c in text.Length > MaxQuoted ? text[..MaxQuoted] : text)
        {
            if (char.IsControl(c) || char.IsSurrogate(c))
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            }
            else
            {
                builder.Append(c);
            }
        }

        if (text.Length > MaxQuoted)
        {
            builder.Append("...");
        }

        return builder.Append('\'').ToString();
    }

    private static Token Finish(Token token, Trivia trivia) => token with
    {
        IsFirstOnLine = trivia.FirstOnLine,
        LeadingBlockComment = trivia.FirstComment,
        Diagnostics = trivia.Diagnostics?.ToImmutableArray() ?? [],
    };

    /// <summary>What the lexer learnt while reading up to and through one token.</summary>
    private struct Trivia
    {
        public bool FirstOnLine;
        public SourceSpan? FirstComment;
        public List<Diagnostic>? Diagnostics;

        public void Add(Diagnostic diagnostic) => (Diagnostics ??= []).Add(diagnostic);
    }
}

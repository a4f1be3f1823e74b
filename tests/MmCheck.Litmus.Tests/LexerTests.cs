using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Tests;

public class LexerTests
{
    private static Token[] Lex(string text) => [.. Lexer.Tokenize(SourceText.From(text))];

    private static TokenKind[] Kinds(string text) => [.. Lex(text).Select(t => t.Kind)];

    private static Token Single(string text, LexMode mode = LexMode.Normal) =>
        new Lexer(SourceText.From(text)).Lex(0, mode);

    [Fact]
    public void Every_punctuation_token_is_recognised()
    {
        Assert.Equal(
            [
                TokenKind.OpenParen, TokenKind.CloseParen, TokenKind.OpenBrace, TokenKind.CloseBrace,
                TokenKind.OpenBracket, TokenKind.CloseBracket, TokenKind.Comma, TokenKind.Semicolon, TokenKind.Colon,
                TokenKind.Equal, TokenKind.Dot, TokenKind.Plus, TokenKind.Minus, TokenKind.Star, TokenKind.Pipe,
                TokenKind.Ampersand, TokenKind.Tilde, TokenKind.Less, TokenKind.Greater, TokenKind.And, TokenKind.Or,
                TokenKind.NotEqual, TokenKind.EndOfFile,
            ],
            Kinds("( ) { } [ ] , ; : = . + - * | & ~ < > /\\ \\/ <>"));
    }

    [Fact]
    public void Identifiers_hold_letters_digits_and_underscores_but_not_dots_or_dashes()
    {
        Assert.Equal(["__x86_64", ".", "do_wp_page", "-", "r0"], Lex("__x86_64.do_wp_page-r0").SkipLast(1).Select(t => t.Text));
    }

    [Theory]
    [InlineData("42", 42UL, IntegerRadix.Decimal)]
    [InlineData("1_000_000", 1_000_000UL, IntegerRadix.Decimal)]
    [InlineData("0x22", 0x22UL, IntegerRadix.Hexadecimal)]
    [InlineData("0XdeAD_beef", 0xdeadbeefUL, IntegerRadix.Hexadecimal)]
    [InlineData("0b1010", 10UL, IntegerRadix.Binary)]
    [InlineData("0644", 420UL, IntegerRadix.Octal)]
    [InlineData("0", 0UL, IntegerRadix.Decimal)]
    [InlineData("18446744073709551615", ulong.MaxValue, IntegerRadix.Decimal)]
    [InlineData("0xffff_ffff_ffff_ffff", ulong.MaxValue, IntegerRadix.Hexadecimal)]
    public void Integer_literals_take_every_radix_and_separators(string text, ulong value, IntegerRadix radix)
    {
        var token = Single(text);
        Assert.Equal((TokenKind.Integer, value, radix), (token.Kind, token.IntegerValue, token.Radix));
        Assert.Empty(token.Diagnostics);
    }

    [Theory]
    [InlineData("18446744073709551616")]
    [InlineData("0x1_0000_0000_0000_0000")]
    [InlineData("0b11111111111111111111111111111111111111111111111111111111111111111")]
    public void Integer_overflow_is_an_error_over_the_whole_literal(string text)
    {
        var diagnostic = Assert.Single(Single(text).Diagnostics);
        Assert.Equal(DiagnosticCodes.IntegerOverflow, diagnostic.Code);
        Assert.Equal((0, text.Length), (diagnostic.Span.Start, diagnostic.Span.Length));
    }

    [Theory]
    [InlineData("0x", "hexadecimal digits", "none", 0)]
    [InlineData("0b2", "a binary digit", "'2'", 2)]
    [InlineData("12ab", "a decimal digit", "'a'", 2)]
    [InlineData("089", "an octal digit", "'8'", 1)]
    public void Malformed_numbers_name_the_offending_digit(string text, string expected, string found, int offset)
    {
        var diagnostic = Assert.Single(Single(text).Diagnostics);
        Assert.Equal(DiagnosticCodes.InvalidNumber, diagnostic.Code);
        Assert.Equal((expected, found, offset), (diagnostic.Expected, diagnostic.Found, diagnostic.Span.Start));
    }

    [Fact]
    public void A_unit_glued_to_a_number_gets_a_hint()
    {
        var diagnostic = Assert.Single(Single("16pages").Diagnostics);
        Assert.Contains("as in '16 pages'", diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void String_literals_decode_c_escapes()
    {
        var token = Single("\"a\\n\\t\\\\\\\"\\x41\\101\\0z\"");
        Assert.Equal(TokenKind.String, token.Kind);
        Assert.Equal("a\n\t\\\"AA\0z", token.StringValue);
        Assert.Empty(token.Diagnostics);
    }

    [Fact]
    public void Hex_escapes_stop_after_two_digits()
    {
        Assert.Equal("\u0001a", Single("\"\\x01a\"").StringValue);
    }

    [Fact]
    public void An_unknown_escape_is_reported_and_kept()
    {
        var token = Single("\"a\\qb\"");
        Assert.Equal("aqb", token.StringValue);
        var diagnostic = Assert.Single(token.Diagnostics);
        Assert.Equal((DiagnosticCodes.InvalidEscape, 2, 2, "'\\q'"), (diagnostic.Code, diagnostic.Span.Start, diagnostic.Span.Length, diagnostic.Found));
    }

    [Fact]
    public void An_unterminated_string_stops_at_the_end_of_the_line()
    {
        var tokens = Lex("\"abc\nnext");
        Assert.Equal((TokenKind.String, "abc"), (tokens[0].Kind, tokens[0].StringValue));
        var diagnostic = Assert.Single(tokens[0].Diagnostics);
        Assert.Equal((DiagnosticCodes.UnterminatedString, 0, "end of line"), (diagnostic.Code, diagnostic.Span.Start, diagnostic.Found));
        Assert.Equal(("next", true), (tokens[1].Text, tokens[1].IsFirstOnLine));
    }

    [Fact]
    public void Herd_comments_span_lines_and_line_comments_end_at_the_line()
    {
        var tokens = Lex("a (* one\n two *) b // three\nc");
        Assert.Equal(["a", "b", "c", ""], tokens.Select(t => t.Text));
        Assert.True(tokens[1].IsFirstOnLine, "a comment with a line break puts the next token on a new line");
        Assert.Equal("(* one\n two *)", tokens[1].LeadingBlockComment!.Value.Text);
        Assert.All(tokens, t => Assert.Empty(t.Diagnostics));
    }

    [Fact]
    public void Comments_do_not_nest_so_descriptions_may_quote_c()
    {
        var tokens = Lex("(* reads (*pte) twice *) x");
        Assert.Equal(["x", ""], tokens.Select(t => t.Text));
    }

    [Fact]
    public void An_unterminated_comment_is_reported_where_it_opens()
    {
        var tokens = Lex("a\n  (* never closed\nb");
        Assert.Equal(TokenKind.EndOfFile, tokens[1].Kind);
        var diagnostic = Assert.Single(tokens[1].Diagnostics);
        Assert.Equal((DiagnosticCodes.UnterminatedComment, 2, 3, 2), (diagnostic.Code, diagnostic.Span.Line, diagnostic.Span.Column, diagnostic.Span.Length));
    }

    [Theory]
    [InlineData("@", "'@' (U+0040)")]
    [InlineData("\0", "U+0000")]
    [InlineData("\u00e9", "'\u00e9' (U+00E9)")]
    [InlineData("\ud83d\ude00", "'\ud83d\ude00' (U+1F600)")]
    [InlineData("/", "'/' (U+002F)")]
    [InlineData("#$%", "3 such characters, the first '#' (U+0023)")]
    public void Characters_that_start_no_token_become_one_error_token(string text, string found)
    {
        var tokens = Lex(text + " x");
        Assert.Equal((TokenKind.Error, text), (tokens[0].Kind, tokens[0].Text));
        var diagnostic = Assert.Single(tokens[0].Diagnostics);
        Assert.Equal((DiagnosticCodes.InvalidCharacter, found), (diagnostic.Code, diagnostic.Found));
        Assert.Equal("x", tokens[1].Text);
    }

    [Fact]
    public void A_lone_surrogate_is_shown_by_its_code_point()
    {
        // Not an InlineData: test data serialisation would replace the lone surrogate.
        var diagnostic = Assert.Single(Lex("\ud800 x")[0].Diagnostics);
        Assert.Equal("U+D800", diagnostic.Found);
    }

    [Theory]
    [InlineData("cow-basic-after-fork rest", LexMode.HeaderName, "cow-basic-after-fork")]
    [InlineData("MP+once", LexMode.HeaderName, "MP+once")]
    [InlineData("v5.10\n", LexMode.SettingValue, "v5.10")]
    [InlineData("  x86_64", LexMode.SettingValue, "x86_64")]
    [InlineData("do_wp_page.reuse = off", LexMode.DottedName, "do_wp_page.reuse")]
    [InlineData("a.b. c", LexMode.DottedName, "a.b")]
    [InlineData("revoked-iomem-mapped\n", LexMode.DashedName, "revoked-iomem-mapped")]
    public void Contextual_modes_read_names_with_dots_dashes_and_pluses(string text, LexMode mode, string name)
    {
        var token = Single(text, mode);
        Assert.Equal((TokenKind.Name, name), (token.Kind, token.Text));
    }

    [Fact]
    public void A_line_bound_mode_falls_back_to_the_ordinary_token_on_the_next_line()
    {
        var token = Single("\nkernel", LexMode.SettingValue);
        Assert.Equal((TokenKind.Identifier, true), (token.Kind, token.IsFirstOnLine));
    }

    [Fact]
    public void Crlf_line_breaks_are_one_line_break()
    {
        var tokens = Lex("a\r\nb\rc");
        Assert.Equal([(1, 1), (2, 1), (3, 1)], tokens.SkipLast(1).Select(t => (t.Span.Line, t.Span.Column)));
    }

    [Fact]
    public void The_lexer_never_throws_and_always_advances()
    {
        var random = new Random(11);
        for (int i = 0; i < 2_000; i++)
        {
            char[] chars = new char[random.Next(64)];
            for (int j = 0; j < chars.Length; j++)
            {
                chars[j] = (char)random.Next(i % 2 == 0 ? 128 : 0x10000);
            }

            var source = SourceText.From(new string(chars));
            var tokens = Lexer.Tokenize(source);
            Assert.Equal(TokenKind.EndOfFile, tokens[^1].Kind);
            Assert.All(tokens.SkipLast(1), t => Assert.True(t.Span.Length > 0));
            foreach (var mode in Enum.GetValues<LexMode>())
            {
                var lexer = new Lexer(source);
                for (int position = 0; position <= source.Length; position++)
                {
                    var token = lexer.Lex(position, mode);
                    Assert.True(token.Span.Start >= position && token.Span.End <= source.Length);
                }
            }
        }
    }
}

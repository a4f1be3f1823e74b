using System.Collections.Immutable;

namespace MmCheck.Litmus.Syntax;

// The sections of a scenario, top to bottom: header, settings, init block, threads, locations,
// condition, expectations. Each section parser reports and skips on its own; none returns failure.
internal sealed partial class Parser
{
    // ---- header, description, sections ------------------------------------------------------

    private Identifier ParseHeader(out bool hasHeader)
    {
        var token = Current;
        if (!IsWord(token, "MM"))
        {
            hasHeader = false;
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'MM' and the scenario name", "at the start of the file");
            return new Identifier(new SourceSpan(_source, token.Span.Start, 0), "");
        }

        hasHeader = true;
        Advance();
        var name = PeekName(LexMode.HeaderName);
        if (name.Kind == TokenKind.Name)
        {
            Advance();
            return Ident(name);
        }

        ReportExpected(DiagnosticCodes.UnexpectedToken, "a scenario name", "after 'MM'", sameLine: true);
        return new Identifier(new SourceSpan(_source, _offset, 0), "");
    }

    private Comment? ReadDescription()
    {
        if (Current.LeadingBlockComment is not SourceSpan span)
        {
            return null;
        }

        return new Comment(span, _source.Text.Substring(span.Start + 2, span.Length - 4).Trim());
    }

    private void ParseTopLevelItem()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.OpenBrace:
                ParseInitBlock();
                return;
            case TokenKind.Tilde:
                ParseCondition();
                return;
            case TokenKind.Identifier when Peek(1).Kind == TokenKind.Equal:
                // Any word followed by '=' is a setting, so 'thread = 2' stays a valid setting name.
                ParseSetting();
                return;
            case TokenKind.Identifier:
                switch (token.Text)
                {
                    case "thread":
                        ParseThread();
                        return;
                    case "locations":
                        ParseLocations();
                        return;
                    case "exists" or "forall":
                        ParseCondition();
                        return;
                    case "expect":
                        ParseExpectation();
                        return;
                    case "variant":
                        ParseVariantSetting();
                        return;
                    default:
                        break;
                }

                break;
            default:
                break;
        }

        ReportExpected(DiagnosticCodes.UnexpectedToken, "a setting, an init block '{', a thread, a condition or an expectation");
        SkipTopLevel();
    }

    private void EnterSection(Section section, Token at)
    {
        if (section >= _section)
        {
            _section = section;
            return;
        }

        Add(new Diagnostic(
            DiagnosticSeverity.Error,
            DiagnosticCodes.MisplacedSection,
            $"{SectionNoun(section)} must come before {SectionNoun(_section, plural: true)}; a scenario reads: " +
            "header, settings, init block, threads, locations, condition, expectations",
            at.Span));
    }

    private static string SectionNoun(Section section, bool plural = false) => section switch
    {
        Section.Settings => plural ? "the settings" : "a setting",
        Section.Init => "the init block",
        Section.Threads => plural ? "the threads" : "a thread",
        Section.Locations => "the locations list",
        Section.Condition => "the condition",
        _ => plural ? "the expectations" : "an expectation",
    };

    private void ReportDuplicate(string what, SyntaxNode first, Token at, string advice) =>
        Add(new Diagnostic(
            DiagnosticSeverity.Error,
            DiagnosticCodes.DuplicateSection,
            $"the scenario already has {what} (line {first.Span.Line}); {advice}",
            at.Span));

    // ---- settings ---------------------------------------------------------------------------

    private void ParseSetting()
    {
        var key = Current;
        EnterSection(Section.Settings, key);
        Advance();
        Advance(); // '='
        var kind = key.Text switch
        {
            "kernel" => SettingKind.Kernel,
            "arch" => SettingKind.Arch,
            "cpus" => SettingKind.Cpus,
            _ => SettingKind.Other,
        };
        FinishSetting(key.Span.Start, kind, Ident(key));
    }

    private void ParseVariantSetting()
    {
        var keyword = Current;
        EnterSection(Section.Settings, keyword);
        Advance();
        var name = PeekName(LexMode.DottedName);
        if (name.Kind != TokenKind.Name)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "a variant name such as do_wp_page.reuse", "after 'variant'", sameLine: true);
            SkipTopLevel();
            return;
        }

        Advance();
        if (Current.Kind != TokenKind.Equal)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'='", $"after the variant name '{name.Text}'", sameLine: true);
            SkipTopLevel();
            return;
        }

        Advance();
        FinishSetting(keyword.Span.Start, SettingKind.Variant, Ident(name));
    }

    private void FinishSetting(int start, SettingKind kind, Identifier name)
    {
        // The value is the rest of the line, one word that may hold '.', '-' and '+' (v5.10, x86_64).
        var value = PeekName(LexMode.SettingValue);
        if (value.Kind != TokenKind.Name)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, $"a value for '{name.Text}'", null, sameLine: true);
            SkipTopLevel();
            return;
        }

        Advance();
        var settingValue = new SettingValue(value.Span, value.Text);
        if (kind == SettingKind.Cpus && settingValue.Number is null)
        {
            ReportSyntax(
                DiagnosticCodes.InvalidSettingValue,
                $"expected a number of CPUs but found {Lexer.Quote(value.Text)}",
                value.Span,
                "a number of CPUs",
                Lexer.Quote(value.Text));
        }

        if (Current.Kind != TokenKind.EndOfFile && !Current.IsFirstOnLine)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "the end of the line", $"after the value of '{name.Text}'");
            SkipTopLevel();
        }

        _settings.Add(new Setting(SourceSpan.FromBounds(_source, start, value.Span.End), kind, name, settingValue));
    }

    // ---- init block and threads ---------------------------------------------------------------

    private void ParseInitBlock()
    {
        var open = Current;
        EnterSection(Section.Init, open);
        if (_init is not null)
        {
            ReportDuplicate("an init block", _init, open, "put all set-up in one block");
        }

        Advance();
        var items = ImmutableArray.CreateBuilder<InitItem>();
        while (!AtBlockEnd())
        {
            int before = _offset;
            BeginItem();
            if (ParseInitItem() is { } item)
            {
                items.Add(item);
            }

            EnsureProgress(before);
        }

        if (Current.Kind == TokenKind.CloseBrace)
        {
            Advance();
        }
        else
        {
            _recovering = false;
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'}'", "to close the init block");
        }

        _init ??= new InitBlock(SpanFrom(open.Span.Start), items.ToImmutable());
    }

    private InitItem? ParseInitItem()
    {
        var first = Current;
        if (first.Kind == TokenKind.Identifier)
        {
            var second = Peek(1);
            if (second.Kind == TokenKind.Colon)
            {
                Advance();
                Advance();
                var statement = ParseStatementBody(Current.Span.Start, label: null);
                return statement is null ? null : new InitStatement(SpanFrom(first.Span.Start), Ident(first), statement);
            }

            if (second.Kind == TokenKind.Identifier)
            {
                Advance();
                Advance();
                Expression? initializer = null;
                if (Current.Kind == TokenKind.Equal)
                {
                    Advance();
                    initializer = ParseExpression();
                    if (initializer is null)
                    {
                        SkipStatement();
                        return null;
                    }
                }

                ExpectStatementEnd();
                return new InitDeclaration(SpanFrom(first.Span.Start), Ident(first), Ident(second), initializer);
            }
        }

        ReportExpected(DiagnosticCodes.UnexpectedToken, "a declaration such as 'process P;' or a statement such as 'P: x = f();'");
        SkipStatement();
        return null;
    }

    private void ParseThread()
    {
        var keyword = Current;
        EnterSection(Section.Threads, keyword);
        Advance();

        Identifier? name = null;
        if (Current.Kind == TokenKind.Identifier)
        {
            name = Ident(Advance());
        }
        else
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "a thread name", "after 'thread'");
        }

        Identifier? process = null;
        if (IsWord(Current, "in"))
        {
            Advance();
            if (Current.Kind == TokenKind.Identifier)
            {
                process = Ident(Advance());
            }
            else
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "a process name", "after 'in'");
            }
        }

        AfterClause? after = IsWord(Current, "after") ? ParseAfterClause() : null;
        string which = name is null ? "the thread" : $"thread '{name.Text}'";

        bool braced = false;
        if (Current.Kind == TokenKind.OpenBrace)
        {
            Advance();
            braced = true;
        }
        else
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'{'", $"to start the body of {which}");

            // Stray words on the header line go; a '{' later on that line still opens the body,
            // and a body on the following lines is parsed as if the '{' were there.
            while (Current.Kind is not (TokenKind.OpenBrace or TokenKind.EndOfFile) && !Current.IsFirstOnLine)
            {
                Advance();
            }

            if (Current.Kind == TokenKind.OpenBrace)
            {
                Advance();
                braced = true;
            }
        }

        var body = ImmutableArray.CreateBuilder<Statement>();
        while (!AtBlockEnd())
        {
            int before = _offset;
            BeginItem();
            if (ParseStatement() is { } statement)
            {
                body.Add(statement);
            }

            EnsureProgress(before);
        }

        if (Current.Kind == TokenKind.CloseBrace)
        {
            Advance();
        }
        else if (braced)
        {
            _recovering = false;
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'}'", $"to close {which}");
        }

        if (name is not null)
        {
            _threads.Add(new ThreadDeclaration(SpanFrom(keyword.Span.Start), name, process, after, body.ToImmutable()));
        }
    }

    private AfterClause? ParseAfterClause()
    {
        int start = Current.Span.Start;
        Advance();
        if (Current.Kind != TokenKind.Identifier)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "a thread name", "after 'after'");
            return null;
        }

        var thread = Ident(Advance());
        if (Current.Kind != TokenKind.Dot)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'.'", $"and a statement label after '{thread.Text}', as in {thread.Text}.fork");
            return null;
        }

        Advance();
        if (Current.Kind != TokenKind.Identifier)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "a statement label", $"after '{thread.Text}.'");
            return null;
        }

        var label = Ident(Advance());
        return new AfterClause(SpanFrom(start), thread, label);
    }

    /// <summary>The end of a block: its '}', the end of the file, or (when the '}' is missing) the next section.</summary>
    private bool AtBlockEnd() =>
        Current.Kind is TokenKind.CloseBrace or TokenKind.EndOfFile || LooksLikeTopLevelItem();

    /// <summary>
    /// True at a token that can only begin a top-level item. Keywords are contextual, so this
    /// looks for shapes no statement has: 'thread T', 'expect W', 'locations [', and a condition
    /// keyword at column 1 (where the examples put them and no indented statement is).
    /// </summary>
    private bool LooksLikeTopLevelItem()
    {
        var token = Current;
        if (token.Kind == TokenKind.Tilde)
        {
            return token.IsFirstOnLine && token.Span.Column == 1 && IsWord(Peek(1), "exists");
        }

        if (token.Kind != TokenKind.Identifier)
        {
            return false;
        }

        return token.Text switch
        {
            // 'thread T;' or 'expect E = ...' would be declarations in an init block.
            "thread" or "expect" => Peek(1).Kind == TokenKind.Identifier && Peek(2).Kind is not (TokenKind.Semicolon or TokenKind.Equal),
            "locations" => Peek(1).Kind == TokenKind.OpenBracket,
            "exists" or "forall" => token.IsFirstOnLine && token.Span.Column == 1 &&
                Peek(1).Kind is not (TokenKind.Equal or TokenKind.Colon),
            _ => false,
        };
    }

    private Statement? ParseStatement()
    {
        int start = Current.Span.Start;
        Identifier? label = null;
        if (Current.Kind == TokenKind.Identifier && Peek(1).Kind == TokenKind.Colon)
        {
            label = Ident(Advance());
            Advance();
        }

        return ParseStatementBody(start, label);
    }

    /// <summary><c>[target =] expression ;</c>; on failure it has already skipped past the statement.</summary>
    private Statement? ParseStatementBody(int start, Identifier? label)
    {
        Identifier? target = null;
        if (Current.Kind == TokenKind.Identifier && Peek(1).Kind == TokenKind.Equal)
        {
            target = Ident(Advance());
            Advance();
        }

        var value = ParseExpression();
        if (value is null)
        {
            SkipStatement();
            return null;
        }

        ExpectStatementEnd();
        return new Statement(SpanFrom(start), label, target, value);
    }

    private void ExpectStatementEnd()
    {
        if (Current.Kind == TokenKind.Semicolon)
        {
            Advance();
            return;
        }

        ReportExpected(DiagnosticCodes.UnexpectedToken, "';'", "after the statement");

        // A statement that simply lacks its ';' before the next line or the '}' is complete.
        if (Current.Kind is not (TokenKind.CloseBrace or TokenKind.EndOfFile) && !Current.IsFirstOnLine)
        {
            SkipStatement();
        }
    }

    // ---- locations, condition, expectations ---------------------------------------------------

    private void ParseLocations()
    {
        var keyword = Current;
        EnterSection(Section.Locations, keyword);
        if (_locations is not null)
        {
            ReportDuplicate("a locations list", _locations, keyword, "list every location in one");
        }

        Advance();
        if (Current.Kind != TokenKind.OpenBracket)
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'['", "after 'locations'");
            SkipTopLevel();
            return;
        }

        Advance();
        var locations = ImmutableArray.CreateBuilder<Location>();
        while (Current.Kind != TokenKind.CloseBracket)
        {
            if (!AtLocation())
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "a location such as T0:r0 or P:[buf]");
                SkipTopLevel();
                return;
            }

            if (ParseLocation(out _) is not { } location)
            {
                SkipTopLevel();
                return;
            }

            locations.Add(location);
            if (Current.Kind == TokenKind.Semicolon)
            {
                Advance();
            }
            else if (Current.Kind != TokenKind.CloseBracket)
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "';' or ']'", "after the location");
                SkipTopLevel();
                return;
            }
        }

        Advance();
        _locations ??= new LocationsClause(SpanFrom(keyword.Span.Start), locations.ToImmutable());
    }

    private void ParseCondition()
    {
        var first = Current;
        EnterSection(Section.Condition, first);
        if (_condition is not null)
        {
            ReportDuplicate("a condition", _condition, first, "join the two with /\\ or \\/");
        }

        Advance();
        Quantifier quantifier;
        string keyword;
        if (first.Kind == TokenKind.Tilde)
        {
            if (!IsWord(Current, "exists"))
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "'exists'", "after '~'");
                SkipTopLevel();
                return;
            }

            Advance();
            (quantifier, keyword) = (Quantifier.NotExists, "~exists");
        }
        else
        {
            (quantifier, keyword) = first.Text == "exists" ? (Quantifier.Exists, "exists") : (Quantifier.Forall, "forall");
        }

        if (!CanStartProposition(Current))
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "a condition such as (T0:r0 = 1)", $"after '{keyword}'");
            SkipTopLevel();
            return;
        }

        // The parentheses of 'exists (...)' are the proposition's own, so they may be left out.
        if (ParseDisjunction(out _) is not { } proposition)
        {
            SkipTopLevel();
            return;
        }

        _condition ??= new Condition(SpanFrom(first.Span.Start), quantifier, proposition);
    }

    private void ParseExpectation()
    {
        var keyword = Current;
        EnterSection(Section.Expectations, keyword);
        Advance();
        var word = Current;
        ExpectationKind? kind = word.Kind != TokenKind.Identifier ? null : word.Text switch
        {
            "always" => ExpectationKind.Always,
            "sometimes" => ExpectationKind.Sometimes,
            "never" => ExpectationKind.Never,
            "clean" => ExpectationKind.Clean,
            "violation" => ExpectationKind.Violation,
            _ => null,
        };
        if (kind is not { } expectationKind)
        {
            ReportExpected(
                DiagnosticCodes.UnknownExpectation,
                "'always', 'sometimes', 'never', 'clean' or 'violation'",
                "after 'expect'");
            SkipTopLevel();
            return;
        }

        Advance();
        Identifier? invariant = null;
        if (expectationKind == ExpectationKind.Violation)
        {
            var name = PeekName(LexMode.DashedName);
            if (name.Kind != TokenKind.Name)
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "an invariant name such as revoked-iomem-mapped", "after 'violation'", sameLine: true);
                SkipTopLevel();
                return;
            }

            invariant = Ident(Advance());
        }

        _expectations.Add(new Expectation(SpanFrom(keyword.Span.Start), expectationKind, invariant));
    }
}

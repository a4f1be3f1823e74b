using System.Collections.Immutable;
using System.Runtime.CompilerServices;

namespace MmCheck.Litmus.Syntax;

/// <summary>
/// Recursive-descent parser for one scenario file. Errors are recovered from, not thrown: a
/// construct that fails to parse is reported once, left out of the tree, and the parser skips to
/// the next statement or line. Three guards keep it total on any input: a bound on nesting (the
/// stack), a bound on errors (the output), and a bound on steps (the time, should a loop ever
/// fail to advance).
/// </summary>
internal sealed partial class Parser
{
    internal const int MaxNesting = 64;
    internal const int MaxTreeDepth = 256;
    internal const int MaxErrors = 100;

    private readonly SourceText _source;
    private readonly Lexer _lexer;
    private readonly long _maxSteps;
    private readonly Token _stoppedEndOfFile;
    private readonly List<Diagnostic> _diagnostics = [];

    // Tokens lexed in Normal mode, starting at _offset; cleared when a contextual mode re-reads the text.
    private readonly List<Token> _lookahead = [];

    private readonly ImmutableArray<Setting>.Builder _settings = ImmutableArray.CreateBuilder<Setting>();
    private readonly ImmutableArray<ThreadDeclaration>.Builder _threads = ImmutableArray.CreateBuilder<ThreadDeclaration>();
    private readonly ImmutableArray<Expectation>.Builder _expectations = ImmutableArray.CreateBuilder<Expectation>();
    private InitBlock? _init;
    private LocationsClause? _locations;
    private Condition? _condition;

    private int _offset;
    private Token? _previous;
    private int _errors;
    private int _lastErrorOffset = -1;
    private bool _recovering;
    private bool _stopped;
    private int _nesting;
    private int _bracketDepth;
    private int _itemOffset;
    private Section _section;

    public Parser(SourceText source)
    {
        _source = source;
        _lexer = new Lexer(source);
        _maxSteps = StepBudget(source.Length);
        _stoppedEndOfFile = new Token(TokenKind.EndOfFile, new SourceSpan(source, source.Length, 0), "") { IsFirstOnLine = true };
    }

    // Declared in file order: a section seen after a later one is misplaced.
    private enum Section
    {
        Settings,
        Init,
        Threads,
        Locations,
        Condition,
        Expectations,
    }

    /// <summary>Peeks taken so far; each token is looked at a bounded number of times.</summary>
    public long Steps { get; private set; }

    /// <summary>Times a loop failed to consume and the parser had to skip a token itself.</summary>
    public int ForcedAdvances { get; private set; }

    /// <summary>The step bound after which the parser gives up, far above what any input needs.</summary>
    internal static long StepBudget(int length) => 200L * (length + 100);

    private Token Current => Peek(0);

    public ScenarioAst ParseScenario()
    {
        var name = ParseHeader(out bool hasHeader);
        Comment? description = hasHeader ? ReadDescription() : null;

        while (Current.Kind != TokenKind.EndOfFile)
        {
            int before = _offset;
            BeginItem();
            ParseTopLevelItem();
            EnsureProgress(before);
        }

        if (!_stopped)
        {
            // Unterminated comments and strings at the very end sit in the end-of-file token.
            foreach (var diagnostic in Current.Diagnostics)
            {
                AddLexical(diagnostic);
            }
        }

        if (hasHeader && _init is null && _threads.Count == 0 && _errors == 0)
        {
            BeginItem();
            ReportExpected(DiagnosticCodes.EmptyScenario, "an init block '{' or a thread", "after the header");
        }

        return new ScenarioAst(
            new SourceSpan(_source, 0, _source.Length),
            name,
            description,
            _settings.ToImmutable(),
            _init,
            _threads.ToImmutable(),
            _locations,
            _condition,
            _expectations.ToImmutable());
    }

    /// <summary>All diagnostics in source order (a stable sort); the "gave up" notes stay last.</summary>
    public ImmutableArray<Diagnostic> SortedDiagnostics() =>
        [.. _diagnostics
            .OrderBy(diagnostic => diagnostic.Code is DiagnosticCodes.TooManyErrors or DiagnosticCodes.ParserStalled ? 1 : 0)
            .ThenBy(diagnostic => diagnostic.Span.Start)];

    // ---- tokens -------------------------------------------------------------------------------

    private Token Peek(int index = 0)
    {
        if (++Steps > _maxSteps && !_stopped)
        {
            Stall();
        }

        if (_stopped)
        {
            return _stoppedEndOfFile;
        }

        while (_lookahead.Count <= index)
        {
            if (_lookahead.Count > 0 && _lookahead[^1].Kind == TokenKind.EndOfFile)
            {
                return _lookahead[^1];
            }

            int position = _lookahead.Count == 0 ? _offset : _lookahead[^1].Span.End;
            _lookahead.Add(LexAt(position, LexMode.Normal));
        }

        return _lookahead[index];
    }

    /// <summary>
    /// Re-reads the text after the last consumed token in a contextual mode. Contextual names sit
    /// on the same line as what precedes them; when there is none, the result is the ordinary
    /// token that stands there instead, so the caller can say what it found.
    /// </summary>
    private Token PeekName(LexMode mode)
    {
        if (_stopped)
        {
            return _stoppedEndOfFile;
        }

        Steps++;
        _lookahead.Clear();
        var token = LexAt(_offset, mode);
        if (token.Kind == TokenKind.Name && !token.IsFirstOnLine)
        {
            _lookahead.Add(token);
            return token;
        }

        return Current;
    }

    /// <summary>The token at <paramref name="position"/>, with invalid characters before it folded into its diagnostics.</summary>
    private Token LexAt(int position, LexMode mode)
    {
        var token = _lexer.Lex(position, mode);
        if (token.Kind != TokenKind.Error)
        {
            return token;
        }

        // Stray characters were reported by the lexer; the grammar never sees them, so one '@'
        // costs one diagnostic instead of a cascade of "expected ..." errors.
        var diagnostics = ImmutableArray.CreateBuilder<Diagnostic>();
        bool firstOnLine = token.IsFirstOnLine;
        var comment = token.LeadingBlockComment;
        while (token.Kind == TokenKind.Error)
        {
            diagnostics.AddRange(token.Diagnostics);
            token = _lexer.Lex(token.Span.End, mode);
            comment ??= token.LeadingBlockComment;
        }

        diagnostics.AddRange(token.Diagnostics);
        return token with
        {
            Diagnostics = diagnostics.ToImmutable(),
            IsFirstOnLine = firstOnLine || token.IsFirstOnLine,
            LeadingBlockComment = comment,
        };
    }

    private Token Advance()
    {
        var token = Current;
        if (token.Kind == TokenKind.EndOfFile)
        {
            return token;
        }

        _lookahead.RemoveAt(0);
        _offset = token.Span.End;
        _previous = token;
        _bracketDepth += token.Kind switch
        {
            TokenKind.OpenParen or TokenKind.OpenBracket => 1,
            TokenKind.CloseParen or TokenKind.CloseBracket => -1,
            _ => 0,
        };
        foreach (var diagnostic in token.Diagnostics)
        {
            AddLexical(diagnostic);
        }

        return token;
    }

    private static bool IsWord(Token token, string word) => token.Kind == TokenKind.Identifier && token.Text == word;

    private static Identifier Ident(Token token) => new(token.Span, token.Text);

    private SourceSpan SpanFrom(int start) => SourceSpan.FromBounds(_source, start, Math.Max(start, _offset));

    // ---- recovery -----------------------------------------------------------------------------

    /// <summary>A statement or section begins: the parser is back in step with the text.</summary>
    private void BeginItem()
    {
        _itemOffset = _offset;
        _recovering = false;
        _bracketDepth = 0;
    }

    /// <summary>
    /// Skips the rest of a broken statement: through its ';', or up to a '}', or up to the next
    /// line unless a bracket opened in the statement is still open (a call spread over lines).
    /// </summary>
    private void SkipStatement()
    {
        if (_offset == _itemOffset && Current.Kind is not (TokenKind.EndOfFile or TokenKind.CloseBrace))
        {
            // The culprit itself; without this each token on the line would start a new error.
            if (Advance().Kind == TokenKind.Semicolon)
            {
                return;
            }
        }

        while (true)
        {
            var token = Current;
            if (token.Kind is TokenKind.EndOfFile or TokenKind.CloseBrace ||
                (token.IsFirstOnLine && (_bracketDepth <= 0 || LooksLikeTopLevelItem())))
            {
                return;
            }

            Advance();
            if (token.Kind == TokenKind.Semicolon)
            {
                return;
            }
        }
    }

    /// <summary>Skips a broken top-level item up to the next line that is outside any brace or bracket.</summary>
    private void SkipTopLevel()
    {
        int braces = 0;

        // When nothing of the item was consumed, the culprit is the current token: skip it too.
        bool first = _offset == _itemOffset;
        while (true)
        {
            var token = Current;
            if (token.Kind == TokenKind.EndOfFile)
            {
                return;
            }

            bool lineStart = token.IsFirstOnLine && braces == 0 && (_bracketDepth <= 0 || LooksLikeTopLevelItem());
            if (lineStart && !first)
            {
                return;
            }

            first = false;
            braces = Math.Max(0, braces + token.Kind switch
            {
                TokenKind.OpenBrace => 1,
                TokenKind.CloseBrace => -1,
                _ => 0,
            });
            Advance();
        }
    }

    /// <summary>Backstop for loops: every branch is meant to consume, but a loop must never spin.</summary>
    private void EnsureProgress(int offsetBefore)
    {
        if (_offset != offsetBefore || Current.Kind == TokenKind.EndOfFile)
        {
            return;
        }

        ForcedAdvances++;
        var token = Current;
        ReportSyntax(DiagnosticCodes.UnexpectedToken, $"unexpected {Describe(token)}", token.Span, null, Describe(token));
        Advance();
    }

    // ---- diagnostics --------------------------------------------------------------------------

    /// <summary>
    /// Reports "expected X [context] but found Y". When Y is on a later line than the construct
    /// being parsed, the caret goes right after the previous token, where the missing piece
    /// belongs, and the message says where Y is.
    /// </summary>
    private void ReportExpected(string code, string expected, string? context = null, bool sameLine = false)
    {
        var found = Current;
        if (found.Kind == TokenKind.EndOfFile && found.Diagnostics.Any(d => d.Code == DiagnosticCodes.UnterminatedComment))
        {
            // An unterminated comment ate the rest of the file; that error says it all.
            return;
        }

        // Only a construct already begun can be missing its end; at the start of an item the
        // culprit is the found token itself.
        bool elsewhere = _previous is not null &&
            (found.Kind == TokenKind.EndOfFile || (found.IsFirstOnLine && _offset != _itemOffset));
        string foundText = Describe(found);
        string where = "";
        if (elsewhere && found.Kind != TokenKind.EndOfFile)
        {
            if (sameLine)
            {
                foundText = "end of line";
            }
            else
            {
                where = $" on line {found.Span.Line}";
            }
        }

        var span = elsewhere ? new SourceSpan(_source, _previous!.Span.End, 0) : found.Span;
        string message = context is null
            ? $"expected {expected} but found {foundText}{where}"
            : $"expected {expected} {context} but found {foundText}{where}";
        ReportSyntax(code, message, span, expected, foundText);
    }

    private void ReportSyntax(string code, string message, SourceSpan span, string? expected, string? found)
    {
        // After one error, the rest of the broken item would only produce echoes of it.
        if (_recovering || span.Start == _lastErrorOffset)
        {
            return;
        }

        _recovering = true;
        _lastErrorOffset = span.Start;
        Add(new Diagnostic(DiagnosticSeverity.Error, code, message, span, expected, found));
    }

    private void AddLexical(Diagnostic diagnostic)
    {
        Add(diagnostic);
        if (diagnostic.Code == DiagnosticCodes.UnterminatedString)
        {
            // The string swallowed the closing ')' and ';' of its line; errors about them are echoes.
            _recovering = true;
        }
    }

    private void Add(Diagnostic diagnostic)
    {
        if (_stopped)
        {
            return;
        }

        if (diagnostic.IsError && ++_errors > MaxErrors)
        {
            _diagnostics.Add(new Diagnostic(
                DiagnosticSeverity.Error,
                DiagnosticCodes.TooManyErrors,
                $"too many errors; stopped after the first {MaxErrors}",
                diagnostic.Span));
            _stopped = true;
            return;
        }

        _diagnostics.Add(diagnostic);
    }

    private void Stall()
    {
        var span = new SourceSpan(_source, Math.Min(_offset, _source.Length), 0);
        _diagnostics.Add(new Diagnostic(
            DiagnosticSeverity.Error,
            DiagnosticCodes.ParserStalled,
            $"internal error: the parser stopped making progress at line {span.Line}, column {span.Column}; please report this file",
            span));
        _stopped = true;
    }

    private static string Describe(Token token) =>
        token.Kind == TokenKind.EndOfFile ? "end of file" : Lexer.Quote(token.Text);

    private void EnterNesting()
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        _nesting++;
    }
}

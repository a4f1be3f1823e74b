using System.Collections.Immutable;

namespace MmCheck.Litmus.Syntax;

// Expressions, locations and propositions. Each method returns null after reporting an error and
// leaves skipping to its caller. The out depth is the height of the tree built so far: chains like
// a|b|c are parsed by loops, not recursion, so only a height check keeps the printer's and the
// binder's recursion over the tree shallow.
internal sealed partial class Parser
{
    private Expression? ParseExpression() => ParseExpression(out _);

    private Expression? ParseExpression(out int depth) => ParseBinary(1, out depth);

    private static int BinaryPrecedence(TokenKind kind) => kind switch
    {
        TokenKind.Pipe => 1,
        TokenKind.Ampersand => 2,
        TokenKind.Plus or TokenKind.Minus => 3,
        TokenKind.Star => 4,
        _ => 0,
    };

    private static BinaryOperator BinaryOperatorOf(TokenKind kind) => kind switch
    {
        TokenKind.Pipe => BinaryOperator.BitwiseOr,
        TokenKind.Ampersand => BinaryOperator.BitwiseAnd,
        TokenKind.Plus => BinaryOperator.Add,
        TokenKind.Minus => BinaryOperator.Subtract,
        _ => BinaryOperator.Multiply,
    };

    private static bool CanStartExpression(Token token) => token.Kind is
        TokenKind.Integer or TokenKind.String or TokenKind.Identifier or TokenKind.OpenParen or
        TokenKind.Minus or TokenKind.Tilde;

    /// <summary>Precedence climbing; every operator is left-associative.</summary>
    private Expression? ParseBinary(int minPrecedence, out int depth)
    {
        var left = ParseUnary(out depth);
        if (left is null)
        {
            return null;
        }

        while (true)
        {
            var op = Current;
            int precedence = BinaryPrecedence(op.Kind);
            if (precedence == 0 || precedence < minPrecedence)
            {
                return left;
            }

            Advance();
            if (!CanStartExpression(Current))
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "an expression", $"after '{op.Text}'");
                return null;
            }

            var right = ParseBinary(precedence + 1, out int rightDepth);
            if (right is null)
            {
                return null;
            }

            depth = Math.Max(depth, rightDepth) + 1;
            var span = SourceSpan.FromBounds(_source, left.Span.Start, right.Span.End);
            if (!CheckDepth(depth, span))
            {
                return null;
            }

            left = new BinaryExpression(span, BinaryOperatorOf(op.Kind), left, right);
        }
    }

    private Expression? ParseUnary(out int depth)
    {
        depth = 0;
        if (!CheckNesting())
        {
            return null;
        }

        EnterNesting();
        try
        {
            var op = Current;
            if (op.Kind is not (TokenKind.Minus or TokenKind.Tilde))
            {
                return ParsePostfix(out depth);
            }

            Advance();
            if (!CanStartExpression(Current))
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "an expression", $"after '{op.Text}'");
                return null;
            }

            var operand = ParseUnary(out depth);
            if (operand is null)
            {
                return null;
            }

            depth++;
            var span = SourceSpan.FromBounds(_source, op.Span.Start, operand.Span.End);
            var unary = op.Kind == TokenKind.Minus ? UnaryOperator.Negate : UnaryOperator.Complement;
            return CheckDepth(depth, span) ? new UnaryExpression(span, unary, operand) : null;
        }
        finally
        {
            _nesting--;
        }
    }

    private Expression? ParsePostfix(out int depth)
    {
        var expression = ParsePrimary(out depth);
        while (expression is not null && Current.Kind == TokenKind.Dot)
        {
            Advance();
            if (Current.Kind != TokenKind.Identifier)
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "a field name", "after '.'");
                return null;
            }

            var member = Ident(Advance());
            depth++;
            var span = SourceSpan.FromBounds(_source, expression.Span.Start, member.Span.End);
            expression = CheckDepth(depth, span) ? new MemberAccessExpression(span, expression, member) : null;
        }

        return expression;
    }

    private Expression? ParsePrimary(out int depth)
    {
        depth = 1;
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Integer:
                Advance();
                return ParseSizeSuffix(new IntegerLiteral(token.Span, token.IntegerValue, token.Radix), ref depth);
            case TokenKind.String:
                Advance();
                return new StringLiteral(token.Span, token.StringValue ?? "");
            case TokenKind.Identifier when token.Text == "NULL":
                Advance();
                return new NullLiteral(token.Span);
            case TokenKind.Identifier when Peek(1).Kind == TokenKind.OpenParen:
                Advance();
                Advance();
                if (ParseArguments(out int argumentDepth) is not { } arguments)
                {
                    return null;
                }

                depth = argumentDepth + 1;
                var span = SpanFrom(token.Span.Start);
                return CheckDepth(depth, span) ? new CallExpression(span, Ident(token), arguments) : null;
            case TokenKind.Identifier:
                Advance();
                return new NameExpression(token.Span, token.Text);
            case TokenKind.OpenParen:
                Advance();
                var inner = ParseExpression(out depth);
                if (inner is null)
                {
                    return null;
                }

                if (Current.Kind != TokenKind.CloseParen)
                {
                    ReportExpected(DiagnosticCodes.UnexpectedToken, "')'", "to close the parenthesis");
                    return null;
                }

                Advance();
                return inner;
            default:
                ReportExpected(DiagnosticCodes.UnexpectedToken, "an expression");
                return null;
        }
    }

    /// <summary>A unit after an integer makes a size: <c>16 pages</c>, <c>2 MiB</c>.</summary>
    private Expression? ParseSizeSuffix(IntegerLiteral count, ref int depth)
    {
        var next = Current;
        if (next.Kind != TokenKind.Identifier)
        {
            return count;
        }

        SizeUnit? unit = next.Text switch
        {
            "page" or "pages" => SizeUnit.Page,
            "KiB" => SizeUnit.KiB,
            "MiB" => SizeUnit.MiB,
            "GiB" => SizeUnit.GiB,
            _ => null,
        };
        if (unit is { } sizeUnit)
        {
            Advance();
            depth = 2;
            return new SizeLiteral(SourceSpan.FromBounds(_source, count.Span.Start, next.Span.End), count, sizeUnit);
        }

        // A near miss ("4 KB", "2 Pages") would otherwise surface as a puzzling "expected ','".
        if (next.Text.ToUpperInvariant() is "PAGE" or "PAGES" or "KIB" or "MIB" or "GIB" or "KB" or "MB" or "GB" or "K" or "M" or "G")
        {
            ReportExpected(DiagnosticCodes.UnexpectedToken, "a size unit: page, pages, KiB, MiB or GiB");
            return null;
        }

        return count;
    }

    /// <summary>The arguments after an opening '(' through the closing ')'.</summary>
    private ImmutableArray<Argument>? ParseArguments(out int depth)
    {
        depth = 0;
        var arguments = ImmutableArray.CreateBuilder<Argument>();
        if (Current.Kind == TokenKind.CloseParen)
        {
            Advance();
            return arguments.ToImmutable();
        }

        while (true)
        {
            var first = Current;
            Identifier? name = null;
            if (first.Kind == TokenKind.Identifier && Peek(1).Kind == TokenKind.Equal)
            {
                name = Ident(Advance());
                Advance();
            }

            var value = ParseExpression(out int valueDepth);
            if (value is null)
            {
                return null;
            }

            depth = Math.Max(depth, valueDepth + 1);
            arguments.Add(new Argument(SpanFrom(first.Span.Start), name, value));
            if (Current.Kind == TokenKind.Comma)
            {
                Advance();
                continue;
            }

            if (Current.Kind == TokenKind.CloseParen)
            {
                Advance();
                return arguments.ToImmutable();
            }

            ReportExpected(DiagnosticCodes.UnexpectedToken, "',' or ')'", "after the argument");
            return null;
        }
    }

    // ---- locations ----------------------------------------------------------------------------

    private bool AtLocation() => Current.Kind == TokenKind.Identifier && Peek(1).Kind == TokenKind.Colon;

    /// <summary><c>T0:r0</c>, <c>P:[expr]</c> or <c>P:VIEW(args)[.field]</c>; the caller has checked <see cref="AtLocation"/>.</summary>
    private Location? ParseLocation(out int depth)
    {
        depth = 1;
        var subject = Ident(Advance());
        Advance(); // ':'
        if (Current.Kind == TokenKind.OpenBracket)
        {
            Advance();
            var address = ParseExpression(out depth);
            if (address is null)
            {
                return null;
            }

            if (Current.Kind != TokenKind.CloseBracket)
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "']'", "to close the address");
                return null;
            }

            Advance();
            depth++;
            return new MemoryLocation(SpanFrom(subject.Span.Start), subject, address);
        }

        if (Current.Kind != TokenKind.Identifier)
        {
            ReportExpected(
                DiagnosticCodes.UnexpectedToken,
                "a register, '[' or a state view such as PTE(addr)",
                $"after '{subject.Text}:'");
            return null;
        }

        var name = Ident(Advance());
        if (Current.Kind != TokenKind.OpenParen)
        {
            return new RegisterLocation(SpanFrom(subject.Span.Start), subject, name);
        }

        Advance();
        if (ParseArguments(out depth) is not { } arguments)
        {
            return null;
        }

        Identifier? field = null;
        if (Current.Kind == TokenKind.Dot)
        {
            Advance();
            if (Current.Kind != TokenKind.Identifier)
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "a field name", $"after '{name.Text}(...).'");
                return null;
            }

            field = Ident(Advance());
        }

        depth++;
        return new StateLocation(SpanFrom(subject.Span.Start), subject, name, arguments, field);
    }

    // ---- propositions -------------------------------------------------------------------------

    // A condition left dangling at the end of a line must not swallow the next section's keyword.
    private bool CanStartProposition(Token token) =>
        token.Kind is TokenKind.Tilde or TokenKind.OpenParen or TokenKind.Minus or TokenKind.Integer ||
        (token.Kind == TokenKind.Identifier && !LooksLikeTopLevelItem());

    /// <summary><c>a \/ b</c>; '\/' binds looser than '/\'.</summary>
    private Proposition? ParseDisjunction(out int depth) =>
        ParseLogical(LogicalOperator.Or, TokenKind.Or, "\\/", ParseConjunction, out depth);

    private Proposition? ParseConjunction(out int depth) =>
        ParseLogical(LogicalOperator.And, TokenKind.And, "/\\", ParseNegation, out depth);

    private delegate Proposition? OperandParser(out int depth);

    private Proposition? ParseLogical(LogicalOperator logical, TokenKind kind, string spelling, OperandParser operand, out int depth)
    {
        var left = operand(out depth);
        while (left is not null && Current.Kind == kind)
        {
            Advance();
            if (!CanStartProposition(Current))
            {
                ReportExpected(DiagnosticCodes.UnexpectedToken, "a condition such as T0:r0 = 1", $"after '{spelling}'");
                return null;
            }

            var right = operand(out int rightDepth);
            if (right is null)
            {
                return null;
            }

            depth = Math.Max(depth, rightDepth) + 1;
            var span = SourceSpan.FromBounds(_source, left.Span.Start, right.Span.End);
            left = CheckDepth(depth, span) ? new LogicalProposition(span, logical, left, right) : null;
        }

        return left;
    }

    /// <summary><c>~p</c>, <c>(p)</c> or a comparison.</summary>
    private Proposition? ParseNegation(out int depth)
    {
        depth = 0;
        if (!CheckNesting())
        {
            return null;
        }

        EnterNesting();
        try
        {
            var token = Current;
            if (token.Kind == TokenKind.Tilde)
            {
                Advance();
                if (!CanStartProposition(Current))
                {
                    ReportExpected(DiagnosticCodes.UnexpectedToken, "a condition", "after '~'");
                    return null;
                }

                var operand = ParseNegation(out depth);
                if (operand is null)
                {
                    return null;
                }

                depth++;
                var span = SourceSpan.FromBounds(_source, token.Span.Start, operand.Span.End);
                return CheckDepth(depth, span) ? new NotProposition(span, operand) : null;
            }

            if (token.Kind == TokenKind.OpenParen)
            {
                // Operands never start with '(', so a parenthesis here always groups propositions.
                Advance();
                var inner = ParseDisjunction(out depth);
                if (inner is null)
                {
                    return null;
                }

                if (Current.Kind != TokenKind.CloseParen)
                {
                    ReportExpected(DiagnosticCodes.UnexpectedToken, "')'", "to close the parenthesis");
                    return null;
                }

                Advance();
                return inner;
            }

            return ParseComparison(out depth);
        }
        finally
        {
            _nesting--;
        }
    }

    private Comparison? ParseComparison(out int depth)
    {
        var left = ParseOperand(out depth);
        if (left is null)
        {
            return null;
        }

        ComparisonOperator comparison;
        if (Current.Kind == TokenKind.Equal)
        {
            comparison = ComparisonOperator.Equal;
        }
        else if (Current.Kind == TokenKind.NotEqual)
        {
            comparison = ComparisonOperator.NotEqual;
        }
        else
        {
            // herd numbers its threads (0:r0); scenarios name them (T0:r0).
            string context = left is IntegerLiteral && Current.Kind == TokenKind.Colon
                ? "after the left-hand side of a comparison (threads are named, as in T0:r0, not numbered)"
                : "after the left-hand side of a comparison";
            ReportExpected(DiagnosticCodes.UnexpectedToken, "'=' or '<>'", context);
            return null;
        }

        Advance();
        var right = ParseOperand(out int rightDepth);
        if (right is null)
        {
            return null;
        }

        depth = Math.Max(depth, rightDepth) + 1;
        return new Comparison(SourceSpan.FromBounds(_source, left.Span.Start, right.Span.End), comparison, left, right);
    }

    /// <summary>A location, an integer, a constant, or '-' before any of them.</summary>
    private Expression? ParseOperand(out int depth)
    {
        depth = 1;
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Minus:
                if (!CheckNesting())
                {
                    return null;
                }

                EnterNesting();
                try
                {
                    Advance();
                    var operand = ParseOperand(out depth);
                    if (operand is null)
                    {
                        return null;
                    }

                    depth++;
                    var span = SourceSpan.FromBounds(_source, token.Span.Start, operand.Span.End);
                    return CheckDepth(depth, span) ? new UnaryExpression(span, UnaryOperator.Negate, operand) : null;
                }
                finally
                {
                    _nesting--;
                }

            case TokenKind.Integer:
                Advance();
                return new IntegerLiteral(token.Span, token.IntegerValue, token.Radix);
            case TokenKind.Identifier when Peek(1).Kind == TokenKind.Colon:
                return ParseLocation(out depth);
            case TokenKind.Identifier when token.Text == "NULL":
                Advance();
                return new NullLiteral(token.Span);
            case TokenKind.Identifier:
                Advance();
                return new NameExpression(token.Span, token.Text);
            default:
                ReportExpected(DiagnosticCodes.UnexpectedToken, "a location such as T0:r0 or P:[buf], a number or a constant");
                return null;
        }
    }

    // ---- limits -------------------------------------------------------------------------------

    private bool CheckNesting()
    {
        if (_nesting < MaxNesting)
        {
            return true;
        }

        var token = Current;
        ReportSyntax(
            DiagnosticCodes.NestingTooDeep,
            $"expected at most {MaxNesting} levels of nested parentheses and operators but found more",
            token.Span,
            $"at most {MaxNesting} levels of nested parentheses and operators",
            "more");
        return false;
    }

    private bool CheckDepth(int depth, SourceSpan span)
    {
        if (depth <= MaxTreeDepth)
        {
            return true;
        }

        ReportSyntax(
            DiagnosticCodes.NestingTooDeep,
            $"expected an expression at most {MaxTreeDepth} operators deep but found a deeper one; split it up",
            span,
            $"an expression at most {MaxTreeDepth} operators deep",
            "a deeper one");
        return false;
    }
}

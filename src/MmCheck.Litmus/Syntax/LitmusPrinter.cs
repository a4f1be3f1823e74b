using System.Globalization;
using System.Text;

namespace MmCheck.Litmus.Syntax;

/// <summary>
/// Prints a tree as canonical litmus text in the layout of the design examples: sections in file
/// order, two-space indent, one statement per line, parentheses only where precedence needs them.
/// For any tree the parser produced, <c>Parse(Print(tree))</c> is equivalent to the tree
/// (<see cref="SyntaxEquivalence"/>). Comments other than the description and the original
/// spelling of numbers (separators, 'page' versus 'pages') are not kept.
/// </summary>
public static class LitmusPrinter
{
    private const string Indent = "  ";

    // Binding strength, loosest first; primaries (literals, names, calls, locations) bind tightest.
    private const int UnaryPrecedence = 5;
    private const int PostfixPrecedence = 6;
    private const int PrimaryPrecedence = 7;

    public static string Print(ScenarioAst scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var output = new StringBuilder();
        output.Append("MM ").Append(scenario.Name.Text).Append('\n');
        if (scenario.Description is { } description)
        {
            // The comment cannot hold its own terminator; a tool-made description could.
            string text = description.Text.Replace("*)", "* )", StringComparison.Ordinal);
            output.Append("(* ").Append(text).Append(text.Length > 0 ? " *)" : "*)").Append('\n');
        }

        foreach (var setting in scenario.Settings)
        {
            if (setting.Kind == SettingKind.Variant)
            {
                output.Append("variant ");
            }

            output.Append(setting.Name.Text).Append(" = ").Append(setting.Value.Text).Append('\n');
        }

        if (scenario.Init is { } init)
        {
            output.Append("{\n");
            foreach (var item in init.Items)
            {
                output.Append(Indent);
                AppendInitItem(output, item);
                output.Append('\n');
            }

            output.Append("}\n");
        }

        foreach (var thread in scenario.Threads)
        {
            AppendThread(output, thread);
        }

        if (scenario.Locations is { } locations)
        {
            output.Append("locations [");
            for (int i = 0; i < locations.Locations.Length; i++)
            {
                output.Append(i == 0 ? "" : "; ");
                AppendExpression(output, locations.Locations[i], 0);
            }

            output.Append("]\n");
        }

        if (scenario.Condition is { } condition)
        {
            output.Append(condition.Quantifier switch
            {
                Quantifier.Exists => "exists",
                Quantifier.NotExists => "~exists",
                _ => "forall",
            });
            output.Append(" (");
            AppendProposition(output, condition.Proposition, 0);
            output.Append(")\n");
        }

        foreach (var expectation in scenario.Expectations)
        {
            output.Append("expect ").Append(expectation.Kind switch
            {
                ExpectationKind.Always => "always",
                ExpectationKind.Sometimes => "sometimes",
                ExpectationKind.Never => "never",
                ExpectationKind.Clean => "clean",
                _ => "violation",
            });
            if (expectation.Invariant is { } invariant)
            {
                output.Append(' ').Append(invariant.Text);
            }

            output.Append('\n');
        }

        return output.ToString();
    }

    public static string Print(Expression expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        var output = new StringBuilder();
        AppendExpression(output, expression, 0);
        return output.ToString();
    }

    public static string Print(Proposition proposition)
    {
        ArgumentNullException.ThrowIfNull(proposition);
        var output = new StringBuilder();
        AppendProposition(output, proposition, 0);
        return output.ToString();
    }

    public static string Print(Statement statement)
    {
        ArgumentNullException.ThrowIfNull(statement);
        var output = new StringBuilder();
        AppendStatement(output, statement);
        return output.ToString();
    }

    private static void AppendInitItem(StringBuilder output, InitItem item)
    {
        switch (item)
        {
            case InitDeclaration declaration:
                output.Append(declaration.Kind.Text).Append(' ').Append(declaration.Name.Text);
                if (declaration.Initializer is { } initializer)
                {
                    output.Append(" = ");
                    AppendExpression(output, initializer, 0);
                }

                output.Append(';');
                break;
            case InitStatement statement:
                output.Append(statement.Process.Text).Append(": ");
                AppendStatement(output, statement.Statement);
                break;
            default:
                throw new ArgumentException($"unknown init item {item.GetType().Name}", nameof(item));
        }
    }

    private static void AppendThread(StringBuilder output, ThreadDeclaration thread)
    {
        output.Append("thread ").Append(thread.Name.Text);
        if (thread.Process is { } process)
        {
            output.Append(" in ").Append(process.Text);
        }

        if (thread.After is { } after)
        {
            output.Append(" after ").Append(after.Thread.Text).Append('.').Append(after.Label.Text);
        }

        output.Append(" {\n");
        foreach (var statement in thread.Body)
        {
            output.Append(Indent);
            AppendStatement(output, statement);
            output.Append('\n');
        }

        output.Append("}\n");
    }

    private static void AppendStatement(StringBuilder output, Statement statement)
    {
        if (statement.Label is { } label)
        {
            output.Append(label.Text).Append(": ");
        }

        if (statement.Target is { } target)
        {
            output.Append(target.Text).Append(" = ");
        }

        AppendExpression(output, statement.Value, 0);
        output.Append(';');
    }

    private static int PrecedenceOf(Expression expression) => expression switch
    {
        BinaryExpression binary => binary.Operator switch
        {
            BinaryOperator.BitwiseOr => 1,
            BinaryOperator.BitwiseAnd => 2,
            BinaryOperator.Add or BinaryOperator.Subtract => 3,
            _ => 4,
        },
        UnaryExpression => UnaryPrecedence,
        MemberAccessExpression => PostfixPrecedence,
        _ => PrimaryPrecedence,
    };

    private static void AppendExpression(StringBuilder output, Expression expression, int minPrecedence)
    {
        int precedence = PrecedenceOf(expression);
        bool parenthesize = precedence < minPrecedence;
        if (parenthesize)
        {
            output.Append('(');
        }

        switch (expression)
        {
            case IntegerLiteral integer:
                output.Append(IntegerSyntax.Format(integer.Value, integer.Radix));
                break;
            case SizeLiteral size:
                output.Append(IntegerSyntax.Format(size.Count.Value, size.Count.Radix)).Append(' ').Append(size.Unit switch
                {
                    SizeUnit.Page => size.Count.Value == 1 ? "page" : "pages",
                    SizeUnit.KiB => "KiB",
                    SizeUnit.MiB => "MiB",
                    _ => "GiB",
                });
                break;
            case StringLiteral text:
                AppendString(output, text.Value);
                break;
            case NullLiteral:
                output.Append("NULL");
                break;
            case NameExpression name:
                output.Append(name.Name);
                break;
            case CallExpression call:
                output.Append(call.Callee.Text);
                AppendArguments(output, call.Arguments);
                break;
            case MemberAccessExpression member:
                AppendExpression(output, member.Target, PostfixPrecedence);
                output.Append('.').Append(member.Member.Text);
                break;
            case UnaryExpression unary:
                output.Append(unary.Operator == UnaryOperator.Negate ? '-' : '~');

                // "- -x", not "--x" (C's decrement) nor "-(-x)" (a condition operand cannot start with '(').
                if (unary.Operator == UnaryOperator.Negate && unary.Operand is UnaryExpression { Operator: UnaryOperator.Negate })
                {
                    output.Append(' ');
                }

                AppendExpression(output, unary.Operand, UnaryPrecedence);
                break;
            case BinaryExpression binary:
                AppendExpression(output, binary.Left, precedence);
                output.Append(binary.Operator switch
                {
                    // Flags read as one word in the kernel's style: PROT_READ|PROT_WRITE.
                    BinaryOperator.BitwiseOr => "|",
                    BinaryOperator.BitwiseAnd => "&",
                    BinaryOperator.Add => " + ",
                    BinaryOperator.Subtract => " - ",
                    _ => " * ",
                });
                AppendExpression(output, binary.Right, precedence + 1);
                break;
            case RegisterLocation register:
                output.Append(register.Thread.Text).Append(':').Append(register.Register.Text);
                break;
            case MemoryLocation memory:
                output.Append(memory.Process.Text).Append(":[");
                AppendExpression(output, memory.Address, 0);
                output.Append(']');
                break;
            case StateLocation state:
                output.Append(state.Subject.Text).Append(':').Append(state.View.Text);
                AppendArguments(output, state.Arguments);
                if (state.Field is { } field)
                {
                    output.Append('.').Append(field.Text);
                }

                break;
            default:
                throw new ArgumentException($"unknown expression {expression.GetType().Name}", nameof(expression));
        }

        if (parenthesize)
        {
            output.Append(')');
        }
    }

    private static void AppendArguments(StringBuilder output, IReadOnlyList<Argument> arguments)
    {
        output.Append('(');
        for (int i = 0; i < arguments.Count; i++)
        {
            output.Append(i == 0 ? "" : ", ");
            if (arguments[i].Name is { } name)
            {
                output.Append(name.Text).Append(" = ");
            }

            AppendExpression(output, arguments[i].Value, 0);
        }

        output.Append(')');
    }

    private static void AppendString(StringBuilder output, string value)
    {
        output.Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"':
                    output.Append("\\\"");
                    break;
                case '\\':
                    output.Append("\\\\");
                    break;
                case '\n':
                    output.Append("\\n");
                    break;
                case '\t':
                    output.Append("\\t");
                    break;
                case '\r':
                    output.Append("\\r");
                    break;
                case < ' ' or '\x7f':
                    output.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
                    break;
                default:
                    output.Append(c);
                    break;
            }
        }

        output.Append('"');
    }

    private static int PrecedenceOf(Proposition proposition) => proposition switch
    {
        LogicalProposition { Operator: LogicalOperator.Or } => 1,
        LogicalProposition => 2,
        NotProposition => 3,
        _ => 4,
    };

    private static void AppendProposition(StringBuilder output, Proposition proposition, int minPrecedence)
    {
        int precedence = PrecedenceOf(proposition);
        bool parenthesize = precedence < minPrecedence;
        if (parenthesize)
        {
            output.Append('(');
        }

        switch (proposition)
        {
            case LogicalProposition logical:
                AppendProposition(output, logical.Left, precedence);
                output.Append(logical.Operator == LogicalOperator.Or ? " \\/ " : " /\\ ");
                AppendProposition(output, logical.Right, precedence + 1);
                break;
            case NotProposition not:
                output.Append('~');

                // ~(T0:r0 = 1): without the parentheses the '~' reads as if it negated T0:r0.
                AppendProposition(output, not.Operand, not.Operand is NotProposition ? 0 : int.MaxValue);
                break;
            case Comparison comparison:
                AppendExpression(output, comparison.Left, 0);
                output.Append(comparison.Operator == ComparisonOperator.Equal ? " = " : " <> ");
                AppendExpression(output, comparison.Right, 0);
                break;
            default:
                throw new ArgumentException($"unknown proposition {proposition.GetType().Name}", nameof(proposition));
        }

        if (parenthesize)
        {
            output.Append(')');
        }
    }
}

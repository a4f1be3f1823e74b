using System.Collections.Immutable;

namespace MmCheck.Litmus.Syntax;

/// <summary>
/// Structural equality of syntax trees, ignoring spans and presentation (an integer's radix).
/// This is the equality of the printer's round trip and what a shrinker compares candidates by.
/// </summary>
public static class SyntaxEquivalence
{
    public static bool AreEquivalent(SyntaxNode? left, SyntaxNode? right) => (left, right) switch
    {
        (null, null) => true,
        (null, _) or (_, null) => false,
        (ScenarioAst a, ScenarioAst b) =>
            Same(a.Name, b.Name) && AreEquivalent(a.Description, b.Description) && Same(a.Settings, b.Settings) &&
            AreEquivalent(a.Init, b.Init) && Same(a.Threads, b.Threads) && AreEquivalent(a.Locations, b.Locations) &&
            AreEquivalent(a.Condition, b.Condition) && Same(a.Expectations, b.Expectations),
        (Identifier a, Identifier b) => a.Text == b.Text,
        (Comment a, Comment b) => a.Text == b.Text,
        (Setting a, Setting b) => a.Kind == b.Kind && Same(a.Name, b.Name) && AreEquivalent(a.Value, b.Value),
        (SettingValue a, SettingValue b) => a.Text == b.Text,
        (InitBlock a, InitBlock b) => Same(a.Items, b.Items),
        (InitDeclaration a, InitDeclaration b) =>
            Same(a.Kind, b.Kind) && Same(a.Name, b.Name) && AreEquivalent(a.Initializer, b.Initializer),
        (InitStatement a, InitStatement b) => Same(a.Process, b.Process) && AreEquivalent(a.Statement, b.Statement),
        (ThreadDeclaration a, ThreadDeclaration b) =>
            Same(a.Name, b.Name) && AreEquivalent(a.Process, b.Process) && AreEquivalent(a.After, b.After) && Same(a.Body, b.Body),
        (AfterClause a, AfterClause b) => Same(a.Thread, b.Thread) && Same(a.Label, b.Label),
        (Statement a, Statement b) =>
            AreEquivalent(a.Label, b.Label) && AreEquivalent(a.Target, b.Target) && AreEquivalent(a.Value, b.Value),
        (LocationsClause a, LocationsClause b) => Same(a.Locations, b.Locations),
        (Condition a, Condition b) => a.Quantifier == b.Quantifier && AreEquivalent(a.Proposition, b.Proposition),
        (Expectation a, Expectation b) => a.Kind == b.Kind && AreEquivalent(a.Invariant, b.Invariant),
        (IntegerLiteral a, IntegerLiteral b) => a.Value == b.Value,
        (SizeLiteral a, SizeLiteral b) => a.Unit == b.Unit && AreEquivalent(a.Count, b.Count),
        (StringLiteral a, StringLiteral b) => a.Value == b.Value,
        (NullLiteral, NullLiteral) => true,
        (NameExpression a, NameExpression b) => a.Name == b.Name,
        (CallExpression a, CallExpression b) => Same(a.Callee, b.Callee) && Same(a.Arguments, b.Arguments),
        (Argument a, Argument b) => AreEquivalent(a.Name, b.Name) && AreEquivalent(a.Value, b.Value),
        (MemberAccessExpression a, MemberAccessExpression b) => Same(a.Member, b.Member) && AreEquivalent(a.Target, b.Target),
        (UnaryExpression a, UnaryExpression b) => a.Operator == b.Operator && AreEquivalent(a.Operand, b.Operand),
        (BinaryExpression a, BinaryExpression b) =>
            a.Operator == b.Operator && AreEquivalent(a.Left, b.Left) && AreEquivalent(a.Right, b.Right),
        (RegisterLocation a, RegisterLocation b) => Same(a.Thread, b.Thread) && Same(a.Register, b.Register),
        (MemoryLocation a, MemoryLocation b) => Same(a.Process, b.Process) && AreEquivalent(a.Address, b.Address),
        (StateLocation a, StateLocation b) =>
            Same(a.Subject, b.Subject) && Same(a.View, b.View) && Same(a.Arguments, b.Arguments) && AreEquivalent(a.Field, b.Field),
        (Comparison a, Comparison b) =>
            a.Operator == b.Operator && AreEquivalent(a.Left, b.Left) && AreEquivalent(a.Right, b.Right),
        (NotProposition a, NotProposition b) => AreEquivalent(a.Operand, b.Operand),
        (LogicalProposition a, LogicalProposition b) =>
            a.Operator == b.Operator && AreEquivalent(a.Left, b.Left) && AreEquivalent(a.Right, b.Right),
        _ => false,
    };

    private static bool Same(Identifier a, Identifier b) => a.Text == b.Text;

    private static bool Same<T>(ImmutableArray<T> a, ImmutableArray<T> b)
        where T : SyntaxNode
    {
        if (a.IsDefaultOrEmpty || b.IsDefaultOrEmpty)
        {
            return a.IsDefaultOrEmpty == b.IsDefaultOrEmpty;
        }

        if (a.Length != b.Length)
        {
            return false;
        }

        for (int i = 0; i < a.Length; i++)
        {
            if (!AreEquivalent(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }
}

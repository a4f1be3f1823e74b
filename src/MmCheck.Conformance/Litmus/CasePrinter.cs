using System.Collections.Immutable;
using System.Globalization;
using MmCheck.Litmus.Syntax;
using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance;

/// <summary>
/// Turns a case into a scenario tree and litmus text, in the shape <see cref="LitmusLowering"/>
/// reads back: the init block declares <c>process P0;</c>; the operations go into threads in
/// program order. A thread holds a run of operations of one process; when the next operation
/// belongs to another process, either a thread of that process already on the "stack" of started
/// threads continues (the threads above it have finished), or a new thread starts
/// <c>in P after T.L</c>, where L labels the operation just before it. A fork's child thus
/// runs right where the fork happened, and a case where the child's operations all follow the
/// fork before the parent goes on prints as one thread per process.
/// </summary>
public static class CasePrinter
{
    private static readonly SourceSpan None = SourceSpan.None;

    /// <summary>The case as litmus text, with <paramref name="comment"/> (e.g. both sides'
    /// observations) as the description.</summary>
    public static string Print(ConformanceCase c, string? comment = null) => LitmusPrinter.Print(ToAst(c, comment));

    public static ScenarioAst ToAst(ConformanceCase c, string? comment = null)
    {
        ArgumentNullException.ThrowIfNull(c);
        var referenced = new HashSet<int>();
        foreach (var op in c.Ops)
        {
            foreach (var a in op.Args.Where(a => a.Base == ArgBase.Result))
            {
                referenced.Add(a.Op);
            }
        }

        // Thread layout: a stack of started threads; each thread is (process, list of op indices).
        var threads = new List<(int Proc, List<int> Ops, int? AfterThread, int? AfterOp)>();
        var stack = new List<int>();
        var needsLabel = new HashSet<int>();
        for (int i = 0; i < c.Ops.Length; i++)
        {
            int proc = c.Ops[i].Proc;
            if (stack.Count == 0)
            {
                threads.Add((proc, [i], null, null));
                stack.Add(threads.Count - 1);
                continue;
            }
            int top = stack[^1];
            if (threads[top].Proc == proc)
            {
                threads[top].Ops.Add(i);
                continue;
            }
            int below = stack.FindLastIndex(t => threads[t].Proc == proc);
            if (below >= 0)
            {
                stack.RemoveRange(below + 1, stack.Count - below - 1);
                threads[stack[^1]].Ops.Add(i);
                continue;
            }
            needsLabel.Add(i - 1);
            threads.Add((proc, [i], top, i - 1));
            stack.Add(threads.Count - 1);
        }

        var threadDecls = ImmutableArray.CreateBuilder<ThreadDeclaration>();
        for (int t = 0; t < threads.Count; t++)
        {
            var (proc, ops, afterThread, afterOp) = threads[t];
            var body = ops.Select(i => Statement(c, i, referenced.Contains(i), needsLabel.Contains(i))).ToImmutableArray();
            AfterClause? after = afterThread is { } at
                ? new AfterClause(None, Id(ThreadName(at)), Id(Label(afterOp!.Value)))
                : null;
            threadDecls.Add(new ThreadDeclaration(None, Id(ThreadName(t)), Id(ProcName(proc)), after, body));
        }

        return new ScenarioAst(
            None,
            Id(c.Name.Length == 0 ? "conformance-case" : c.Name),
            comment is null ? null : new Comment(None, comment),
            [
                new Setting(None, SettingKind.Kernel, Id("kernel"), new SettingValue(None, "current")),
                new Setting(None, SettingKind.Arch, Id("arch"), new SettingValue(None, "x86_64")),
            ],
            new InitBlock(None, [new InitDeclaration(None, Id("process"), Id(ProcName(0)), null)]),
            threadDecls.ToImmutable(),
            null,
            null,
            []);
    }

    internal static string ProcName(int p) => "P" + p.ToString(CultureInfo.InvariantCulture);

    internal static string ThreadName(int t) => "T" + t.ToString(CultureInfo.InvariantCulture);

    internal static string Register(int op) => "r" + op.ToString(CultureInfo.InvariantCulture);

    internal static string Label(int op) => "L" + op.ToString(CultureInfo.InvariantCulture);

    private static Identifier Id(string s) => new(None, s);

    private static Statement Statement(ConformanceCase c, int i, bool referenced, bool labelled)
    {
        var op = c.Ops[i];
        string? target = op.Kind switch
        {
            OpKind.Fork => ProcName(op.NewProc),
            OpKind.Load => Register(i),
            _ when referenced => Register(i),
            _ => null,
        };
        var args = new List<Expression>();
        var a = op.Args;
        switch (op.Kind)
        {
            case OpKind.Mmap:
                args.Add(Address(a[0]));
                args.Add(Size(a[1]));
                args.Add(Flags(a[2], ProtNames, "PROT_NONE"));
                args.Add(MmapFlags(a[3]));
                args.Add(Number(a[4]));
                args.Add(Size(a[5]));
                break;
            case OpKind.Munmap:
                args.Add(Address(a[0]));
                args.Add(Size(a[1]));
                break;
            case OpKind.Mprotect:
                args.Add(Address(a[0]));
                args.Add(Size(a[1]));
                args.Add(Flags(a[2], ProtNames, "PROT_NONE"));
                break;
            case OpKind.Mremap:
                args.Add(Address(a[0]));
                args.Add(Size(a[1]));
                args.Add(Size(a[2]));
                args.Add(Flags(a[3], MremapNames, "0"));
                args.Add(Address(a[4]));
                break;
            case OpKind.Madvise:
                args.Add(Address(a[0]));
                args.Add(Size(a[1]));
                args.Add(a[2].IsAbsolute && AdviceNames.TryGetValue(a[2].Value, out var adv) ? Name(adv) : Number(a[2]));
                break;
            case OpKind.MemfdCreate:
                args.Add(new StringLiteral(None, op.Name ?? ""));
                args.Add(Flags(a[0], MfdNames, "0"));
                break;
            case OpKind.Ftruncate:
                args.Add(Number(a[0]));
                args.Add(Size(a[1]));
                break;
            case OpKind.Close:
                args.Add(Number(a[0]));
                break;
            case OpKind.Load:
                args.Add(Address(a[0]));
                if (a[1] != Arg.Abs(8))
                {
                    args.Add(Number(a[1]));
                }
                break;
            case OpKind.Store:
                args.Add(Address(a[0]));
                args.Add(Number(a[1], hex: true));
                if (a[2] != Arg.Abs(8))
                {
                    args.Add(Number(a[2]));
                }
                break;
            case OpKind.Pagemap or OpKind.KpageCount or OpKind.KpageFlags or OpKind.Smaps:
                args.Add(Address(a[0]));
                break;
        }
        var call = new CallExpression(None, Id(Op.VerbName(op.Kind)), [.. args.Select(e => new Argument(None, null, e))]);
        return new Statement(None, labelled ? Id(Label(i)) : null, target is null ? null : Id(target), call);
    }

    private static Expression Name(string n) => new NameExpression(None, n);

    private static Expression Int(ulong v, bool hex) =>
        new IntegerLiteral(None, v, hex && v >= 10 ? IntegerRadix.Hexadecimal : IntegerRadix.Decimal);

    private static Expression Constant(long v, bool hex) =>
        v < 0 ? new UnaryExpression(None, UnaryOperator.Negate, Int((ulong)-v, hex)) : Int((ulong)v, hex);

    /// <summary>A plain number (fds, sizes of accesses, values), or a symbolic one.</summary>
    private static Expression Number(Arg a, bool hex = false) => a.IsAbsolute ? Constant(a.Value, hex) : Symbolic(a);

    /// <summary>A length or offset: "N pages" when a positive multiple of the page size.</summary>
    private static Expression Size(Arg a) => a.IsAbsolute ? SizeConstant(a.Value) : Symbolic(a);

    private static Expression SizeConstant(long v) =>
        v > 0 && v % (long)PAGE_SIZE == 0
            ? new SizeLiteral(None, new IntegerLiteral(None, (ulong)(v / (long)PAGE_SIZE)), SizeUnit.Page)
            : Constant(v, hex: v >= 4096 || v < -4096);

    private static Expression Address(Arg a) => a.IsAbsolute
        ? a.Value == 0 ? new NullLiteral(None) : Constant(a.Value, hex: true)
        : Symbolic(a);

    /// <summary>"r3", "r3 + 2 pages", "MMAP_TOP - 0x1234".</summary>
    private static Expression Symbolic(Arg a)
    {
        Expression b = a.Base == ArgBase.Top ? Name(LitmusLowering.MmapTopName) : Name(Register(a.Op));
        if (a.Offset == 0)
        {
            return b;
        }
        bool neg = a.Offset < 0;
        ulong mag = neg ? (ulong)-a.Offset : (ulong)a.Offset;
        Expression off = mag % PAGE_SIZE == 0
            ? new SizeLiteral(None, new IntegerLiteral(None, mag / PAGE_SIZE), SizeUnit.Page)
            : Int(mag, hex: true);
        return new BinaryExpression(None, neg ? BinaryOperator.Subtract : BinaryOperator.Add, b, off);
    }

    private static readonly (long Bit, string Name)[] ProtNames =
        [(PROT_READ, "PROT_READ"), (PROT_WRITE, "PROT_WRITE"), (PROT_EXEC, "PROT_EXEC")];

    private static readonly (long Bit, string Name)[] MremapNames =
        [(MREMAP_MAYMOVE, "MREMAP_MAYMOVE"), (MREMAP_FIXED, "MREMAP_FIXED"), (MREMAP_DONTUNMAP, "MREMAP_DONTUNMAP")];

    private static readonly (long Bit, string Name)[] MfdNames =
        [(MFD_CLOEXEC, "MFD_CLOEXEC"), (MFD_ALLOW_SEALING, "MFD_ALLOW_SEALING")];

    private static readonly (long Bit, string Name)[] MapNames =
    [
        (MAP_FIXED, "MAP_FIXED"), (MAP_ANONYMOUS, "MAP_ANONYMOUS"), (MAP_NORESERVE, "MAP_NORESERVE"),
        (MAP_POPULATE, "MAP_POPULATE"), (MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
    ];

    private static readonly Dictionary<long, string> AdviceNames = new()
    {
        [MADV_NORMAL] = "MADV_NORMAL", [MADV_RANDOM] = "MADV_RANDOM", [MADV_SEQUENTIAL] = "MADV_SEQUENTIAL",
        [MADV_WILLNEED] = "MADV_WILLNEED", [MADV_DONTNEED] = "MADV_DONTNEED", [MADV_FREE] = "MADV_FREE",
        [MADV_REMOVE] = "MADV_REMOVE", [MADV_DONTFORK] = "MADV_DONTFORK", [MADV_DOFORK] = "MADV_DOFORK",
        [MADV_HUGEPAGE] = "MADV_HUGEPAGE", [MADV_NOHUGEPAGE] = "MADV_NOHUGEPAGE", [MADV_WIPEONFORK] = "MADV_WIPEONFORK",
        [MADV_KEEPONFORK] = "MADV_KEEPONFORK", [MADV_COLD] = "MADV_COLD", [MADV_PAGEOUT] = "MADV_PAGEOUT",
        [22] = "MADV_POPULATE_READ", [23] = "MADV_POPULATE_WRITE",
    };

    /// <summary>Known bits by name joined with '|', unknown bits as a hex literal; zero as <paramref name="zero"/>.</summary>
    private static Expression Flags(Arg a, (long Bit, string Name)[] names, string zero, string? first = null)
    {
        if (!a.IsAbsolute)
        {
            return Symbolic(a);
        }
        long v = a.Value;
        if (v < 0)
        {
            return Constant(v, hex: true);
        }
        var parts = new List<Expression>();
        if (first is not null)
        {
            parts.Add(Name(first));
        }
        foreach (var (bit, n) in names)
        {
            if ((v & bit) == bit)
            {
                parts.Add(Name(n));
                v &= ~bit;
            }
        }
        if (v != 0)
        {
            parts.Add(Int((ulong)v, hex: true));
        }
        if (parts.Count == 0)
        {
            return zero == "0" ? Int(0, hex: false) : Name(zero);
        }
        return parts.Skip(1).Aggregate(parts[0], (l, r) => new BinaryExpression(None, BinaryOperator.BitwiseOr, l, r));
    }

    private static Expression MmapFlags(Arg a)
    {
        if (!a.IsAbsolute || a.Value < 0)
        {
            return Flags(a, MapNames, "0");
        }
        long v = a.Value;
        var typeName = (v & 0xf) switch
        {
            MAP_SHARED => "MAP_SHARED",
            MAP_PRIVATE => "MAP_PRIVATE",
            3 => "MAP_SHARED_VALIDATE",
            _ => null,
        };
        return Flags(Arg.Abs(typeName is null ? v : v & ~0xfL), MapNames, "0", typeName);
    }
}

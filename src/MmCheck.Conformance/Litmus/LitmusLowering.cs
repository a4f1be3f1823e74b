using System.Collections.Immutable;
using System.Globalization;
using Linux;
using MmCheck.Litmus.Syntax;

namespace MmCheck.Conformance;

/// <summary>The outcome of lowering a scenario: a case, or why the scenario cannot be one.</summary>
public sealed record LoweringResult(ConformanceCase? Case, string? Error)
{
    public bool Ok => Case is not null;
}

/// <summary>
/// Lowers a deterministic litmus scenario to a <see cref="ConformanceCase"/>.
/// </summary>
/// <remarks>
/// <para><b>Program order.</b> A scenario runs for conformance in this one order:</para>
/// <list type="number">
/// <item>The init block, item by item. The first <c>process P;</c> is process 0, the initial
/// process. A further <c>process Q;</c> is allowed only before the first init statement and becomes
/// a fork of the (still pristine) process 0: natively every process descends from one, and a
/// fork of a process with nothing mapped is, in the mmap area, a fresh process. <c>P: stmt;</c> runs
/// stmt in P.</item>
/// <item>Then every thread that has no <c>after</c> clause, in declaration order. A thread runs its
/// statements in order, in its process.</item>
/// <item>When a thread T executes the statement labelled L, every thread declared <c>after T.L</c>
/// runs at once, to its end, in declaration order (recursively: their own labels start their own
/// followers), before T goes on with its next statement. So <c>thread C in Q after T0.fork</c>
/// runs right where T0's <c>fork: Q = fork();</c> created Q.</item>
/// </list>
/// <para>Registers: one namespace for the whole scenario, assigned in program order (the latest
/// assignment wins); a register holds the result of the operation that assigned it (or, for
/// <c>r = expr</c>, that value: nothing is observed for it), so later
/// arguments are symbolic (<c>buf + 2 pages</c> is "the result of that mmap plus 8192" on each
/// side). <c>Q = fork()</c> names the child process Q. Names: the kernel's PROT_*/MAP_*/MADV_*/
/// MREMAP_*/MFD_* constants, <c>PAGE_SIZE</c>, <c>NULL</c>, and <c>MMAP_TOP</c>, the lowest start of
/// the special mappings (where top-down allocation starts).</para>
/// <para>Verbs: mmap, munmap, mprotect, mremap, madvise, memfd_create, ftruncate, close, fork,
/// exit, load(addr[, size]), store(addr, value[, size]), and the observations pagemap(addr),
/// kpagecount(addr), kpageflags(addr), smaps(addr), maps().</para>
/// <para>Refused: devices and kernel or device entry points (no native counterpart), kernel
/// threads (no process to run in), historical variants and other kernels (the oracle is this
/// machine's kernel), <c>expect sometimes</c> (an outcome that depends on the interleaving is not
/// one program order's), unknown verbs and names.</para>
/// </remarks>
public static class LitmusLowering
{
    /// <summary>The name of the MMAP_TOP constant in scenarios.</summary>
    public const string MmapTopName = "MMAP_TOP";

    private static readonly HashSet<string> DeviceVerbs = new(StringComparer.Ordinal)
    {
        "pin_user_pages_fast", "unpin_user_pages", "pin_user_pages", "get_user_pages", "request_mem_region",
        "request_mem_region_exclusive", "release_mem_region", "open", "ioctl", "revoke", "dma_buf_move_notify",
        "make_device_exclusive", "remap_pfn_range", "vmf_insert_pfn", "zap_vma_ptes", "unmap_mapping_range",
    };

    /// <summary>Parses and lowers scenario text.</summary>
    public static LoweringResult Lower(string text, string fileName = "<input>")
    {
        var parsed = LitmusParser.Parse(text, fileName);
        if (parsed.HasErrors || parsed.Scenario is null)
        {
            var first = parsed.Diagnostics.FirstOrDefault(d => d.IsError);
            return new LoweringResult(null, "parse error: " + (first?.ToString() ?? "unparseable"));
        }
        return Lower(parsed.Scenario);
    }

    public static LoweringResult Lower(ScenarioAst scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        try
        {
            return new LoweringResult(new Lowerer(scenario).Run(), null);
        }
        catch (LoweringException e)
        {
            return new LoweringResult(null, e.Message);
        }
    }

    private sealed class LoweringException(string message) : Exception(message);

    private readonly record struct Value(Arg Arg, string? Text = null);

    private sealed class Lowerer(ScenarioAst s)
    {
        private readonly CaseBuilder _b = new(s.Name.Text.Length == 0 ? "scenario" : s.Name.Text);
        private readonly Dictionary<string, int> _procs = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Arg> _regs = new(StringComparer.Ordinal);
        /// <summary>Registers assigned a value no argument can express (the difference of two
        /// addresses): an error only if a later operation uses them.</summary>
        private readonly Dictionary<string, string> _unusable = new(StringComparer.Ordinal);
        private readonly Dictionary<(string Thread, string Label), List<ThreadDeclaration>> _followers = [];
        private readonly HashSet<ThreadDeclaration> _ran = [];

        private static LoweringException Fail(SyntaxNode where, string why) =>
            new(where.Span.Source is null || where.Span.FileName.Length == 0 || where.Span.Line == 0 ? why : $"{where.Span}: {why}");

        public ConformanceCase Run()
        {
            foreach (var setting in s.Settings)
            {
                switch (setting.Kind)
                {
                    case SettingKind.Kernel when setting.Value.Text != "current":
                        throw Fail(setting, $"kernel = {setting.Value.Text}: only 'current' can be compared with this machine's kernel");
                    case SettingKind.Arch when setting.Value.Text != "x86_64":
                        throw Fail(setting, $"arch = {setting.Value.Text}: the oracle runs on x86_64");
                    case SettingKind.Variant:
                        throw Fail(setting, $"variant {setting.Name.Text}: historical variants cannot be compared with this machine's kernel");
                }
            }
            foreach (var e in s.Expectations.Where(e => e.Kind == ExpectationKind.Sometimes))
            {
                throw Fail(e, "non-deterministic: 'expect sometimes' is about outcomes that vary with the interleaving, not one program order");
            }
            bool statementsSeen = false;
            foreach (var item in s.Init?.Items ?? [])
            {
                switch (item)
                {
                    case InitDeclaration d when d.Kind.Text == "process":
                        if (_procs.ContainsKey(d.Name.Text))
                        {
                            throw Fail(d, $"process {d.Name.Text} declared twice");
                        }
                        if (_procs.Count == 0)
                        {
                            _procs[d.Name.Text] = 0;
                        }
                        else if (statementsSeen)
                        {
                            throw Fail(d, $"process {d.Name.Text} is declared after init statements: natively it can only be a fork of the pristine first process");
                        }
                        else
                        {
                            _procs[d.Name.Text] = _b.Fork(0);
                        }
                        break;
                    case InitDeclaration d:
                        throw Fail(d, $"'{d.Kind.Text} {d.Name.Text}': devices have no native counterpart");
                    case InitStatement st:
                        statementsSeen = true;
                        LowerStatement(st.Statement, Proc(st.Process));
                        break;
                }
            }
            foreach (var t in s.Threads)
            {
                if (t.Process is null)
                {
                    throw Fail(t, $"thread {t.Name.Text} has no process: kernel threads cannot run natively");
                }
                if (t.After is { } a)
                {
                    if (!_followers.TryGetValue((a.Thread.Text, a.Label.Text), out var list))
                    {
                        _followers[(a.Thread.Text, a.Label.Text)] = list = [];
                    }
                    list.Add(t);
                }
            }
            foreach (var t in s.Threads.Where(t => t.After is null))
            {
                RunThread(t);
            }
            foreach (var t in s.Threads.Where(t => !_ran.Contains(t)))
            {
                throw Fail(t, $"thread {t.Name.Text} waits for {t.After!.Thread.Text}.{t.After.Label.Text}, which never runs");
            }
            var c = _b.Build();
            return c.Validate() is { } why ? throw Fail(s, why) : c;
        }

        private int Proc(Identifier name) =>
            _procs.TryGetValue(name.Text, out int p) ? p : throw Fail(name, $"process {name.Text} does not exist at this point");

        private void RunThread(ThreadDeclaration t)
        {
            _ran.Add(t);
            int proc = Proc(t.Process!);
            foreach (var st in t.Body)
            {
                LowerStatement(st, proc);
                if (st.Label is { } l && _followers.TryGetValue((t.Name.Text, l.Text), out var followers))
                {
                    foreach (var f in followers)
                    {
                        RunThread(f);
                    }
                }
            }
        }

        private void LowerStatement(Statement st, int proc)
        {
            if (st.Value is not CallExpression call)
            {
                if (st.Target is not { } reg)
                {
                    throw Fail(st, "a statement must call a verb or assign a register");
                }
                // r = expr: the register names a value (a constant, or a result plus an offset); it is
                // not an operation, so nothing is observed.
                try
                {
                    _regs[reg.Text] = Eval(st.Value);
                    _unusable.Remove(reg.Text);
                }
                catch (LoweringException e)
                {
                    _regs.Remove(reg.Text);
                    _unusable[reg.Text] = e.Message;
                }
                return;
            }
            string verb = call.Callee.Text;
            var args = call.Arguments;
            if (args.Any(a => a.Name is not null))
            {
                throw Fail(call, $"{verb}: named arguments are not supported");
            }
            void Arity(int min, int max)
            {
                if (args.Length < min || args.Length > max)
                {
                    throw Fail(call, $"{verb} takes {(min == max ? min.ToString(CultureInfo.InvariantCulture) : $"{min} to {max}")} argument(s), not {args.Length}");
                }
            }
            Arg A(int i) => Eval(args[i].Value);
            Arg Const(int i)
            {
                var a = A(i);
                return a.IsAbsolute ? a : throw Fail(args[i], $"{verb}: argument {i + 1} must be a constant");
            }
            int op;
            switch (verb)
            {
                case "mmap":
                    Arity(6, 6);
                    op = _b.Add(OpKind.Mmap, proc, A(0), A(1), A(2), A(3), A(4), A(5));
                    break;
                case "munmap":
                    Arity(2, 2);
                    op = _b.Add(OpKind.Munmap, proc, A(0), A(1));
                    break;
                case "mprotect":
                    Arity(3, 3);
                    op = _b.Add(OpKind.Mprotect, proc, A(0), A(1), A(2));
                    break;
                case "mremap":
                    Arity(4, 5);
                    op = _b.Add(OpKind.Mremap, proc, A(0), A(1), A(2), A(3), args.Length > 4 ? A(4) : Arg.Abs(0));
                    break;
                case "madvise":
                    Arity(3, 3);
                    op = _b.Add(OpKind.Madvise, proc, A(0), A(1), A(2));
                    break;
                case "memfd_create":
                    Arity(1, 2);
                    if (args[0].Value is not StringLiteral name)
                    {
                        throw Fail(args[0], "memfd_create: the name must be a string");
                    }
                    op = _b.Add(new Op(OpKind.MemfdCreate, proc, [args.Length > 1 ? A(1) : Arg.Abs(0)], name.Value));
                    break;
                case "ftruncate":
                    Arity(2, 2);
                    op = _b.Add(OpKind.Ftruncate, proc, A(0), A(1));
                    break;
                case "close":
                    Arity(1, 1);
                    op = _b.Add(OpKind.Close, proc, A(0));
                    break;
                case "fork":
                    Arity(0, 0);
                {
                    int child = _b.Fork(proc);
                    op = _b.Count - 1;
                    string childName = st.Target?.Text ?? CasePrinter.ProcName(child);
                    if (_procs.ContainsKey(childName))
                    {
                        throw Fail(st, $"fork: process {childName} already exists");
                    }
                    _procs[childName] = child;
                    return;
                }
                case "exit":
                    Arity(0, 0);
                    op = _b.Exit(proc);
                    break;
                case "load":
                    Arity(1, 2);
                    op = _b.Add(OpKind.Load, proc, A(0), args.Length > 1 ? Const(1) : Arg.Abs(8));
                    break;
                case "store":
                    Arity(2, 3);
                    op = _b.Add(OpKind.Store, proc, A(0), A(1), args.Length > 2 ? Const(2) : Arg.Abs(8));
                    break;
                case "pagemap" or "kpagecount" or "kpageflags" or "smaps":
                    Arity(1, 1);
                    op = _b.Add(verb switch
                    {
                        "pagemap" => OpKind.Pagemap,
                        "kpagecount" => OpKind.KpageCount,
                        "kpageflags" => OpKind.KpageFlags,
                        _ => OpKind.Smaps,
                    }, proc, A(0));
                    break;
                case "maps":
                    Arity(0, 0);
                    op = _b.Maps(proc);
                    break;
                default:
                    throw Fail(call, DeviceVerbs.Contains(verb)
                        ? $"'{verb}' is a kernel or device entry point with no native counterpart"
                        : $"unsupported verb '{verb}'");
            }
            if (st.Target is { } target)
            {
                _regs[target.Text] = Arg.Result(op);
                _unusable.Remove(target.Text);
            }
        }

        private Arg Eval(Expression e)
        {
            switch (e)
            {
                case IntegerLiteral i:
                    return Arg.Abs(i.Value);
                case SizeLiteral sz:
                    return sz.TryGetBytes(4096, out ulong bytes) ? Arg.Abs(bytes) : throw Fail(sz, "size does not fit in 64 bits");
                case NullLiteral:
                    return Arg.Abs(0);
                case NameExpression n:
                    if (_regs.TryGetValue(n.Name, out var reg))
                    {
                        return reg;
                    }
                    if (_unusable.TryGetValue(n.Name, out string? why))
                    {
                        throw Fail(n, $"register {n.Name} cannot be an argument: {why}");
                    }
                    if (n.Name == MmapTopName)
                    {
                        return Arg.Top(0);
                    }
                    if (n.Name == "PAGE_SIZE")
                    {
                        return Arg.Abs(4096);
                    }
                    if (Mman.All.TryGetValue(n.Name, out long v))
                    {
                        return Arg.Abs(v);
                    }
                    throw Fail(n, _procs.ContainsKey(n.Name) ? $"'{n.Name}' is a process, not a value" : $"unknown name '{n.Name}'");
                case UnaryExpression u:
                {
                    var x = Eval(u.Operand);
                    if (!x.IsAbsolute)
                    {
                        throw Fail(u, "only constants can be negated or complemented");
                    }
                    return Arg.Abs(u.Operator == UnaryOperator.Negate ? unchecked(-x.Value) : ~x.Value);
                }
                case BinaryExpression b:
                {
                    var l = Eval(b.Left);
                    var r = Eval(b.Right);
                    switch (b.Operator)
                    {
                        case BinaryOperator.Add when l.IsAbsolute && !r.IsAbsolute:
                            return r.WithOffset(unchecked(r.Offset + l.Value));
                        case BinaryOperator.Add when r.IsAbsolute:
                            return l.WithOffset(unchecked(l.Offset + r.Value));
                        case BinaryOperator.Subtract when r.IsAbsolute:
                            return l.WithOffset(unchecked(l.Offset - r.Value));
                    }
                    if (!l.IsAbsolute || !r.IsAbsolute)
                    {
                        throw Fail(b, "a register or MMAP_TOP can only be offset by adding or subtracting a constant");
                    }
                    return Arg.Abs(b.Operator switch
                    {
                        BinaryOperator.BitwiseOr => l.Value | r.Value,
                        BinaryOperator.BitwiseAnd => l.Value & r.Value,
                        BinaryOperator.Add => unchecked(l.Value + r.Value),
                        BinaryOperator.Subtract => unchecked(l.Value - r.Value),
                        _ => unchecked(l.Value * r.Value),
                    });
                }
                case StringLiteral str:
                    throw Fail(str, "a string is only allowed as memfd_create's name");
                default:
                    throw Fail(e, $"'{LitmusPrinter.Print(e)}' cannot be evaluated here");
            }
        }
    }
}

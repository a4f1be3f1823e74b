using System.Globalization;
using System.Reflection;
using Linux;
using MmCheck.Litmus.Runtime;
using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Binding;

/// <summary>The outcome of binding: the scenario when there were no errors, and every diagnostic.</summary>
public sealed record BindResult(BoundScenario? Scenario, IReadOnlyList<Diagnostic> Diagnostics)
{
    public bool HasErrors => Diagnostics.Any(d => d.IsError);
}

/// <summary>
/// Resolves a parsed scenario against the model: settings to a kernel configuration, verbs to
/// kernel entry points through <see cref="VerbTable"/>, names to registers, constants, processes,
/// threads and devices. Reports every error it finds, each with its span, and never throws.
/// </summary>
public sealed class Binder
{
    private readonly ScenarioAst _ast;
    private readonly List<Diagnostic> _diags = [];
    private readonly Dictionary<string, SourceSpan> _processes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ProcessDecl> _processDecls = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeviceDecl> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ThreadDeclaration> _threads = new(StringComparer.Ordinal);
    /// <summary>Registers assigned by each process's init statements.</summary>
    private readonly Dictionary<string, HashSet<string>> _initRegisters = new(StringComparer.Ordinal);
    /// <summary>For a process created by fork: the names visible at the fork.</summary>
    private readonly Dictionary<string, HashSet<string>> _forkScope = new(StringComparer.Ordinal);
    /// <summary>Registers each thread assigns anywhere in its body.</summary>
    private readonly Dictionary<string, HashSet<string>> _threadRegisters = new(StringComparer.Ordinal);

    private Binder(ScenarioAst ast) => _ast = ast;

    public static IReadOnlyCollection<string> KnownInvariants { get; } =
        typeof(Invariants).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral)
            .Select(f => (string)f.GetRawConstantValue()!)
            .Order(StringComparer.Ordinal)
            .ToArray();

    /// <summary>
    /// The kernel configuration options a scenario may set (<c>CONFIG_NAME = y|n</c>), with what each
    /// selects in <see cref="KernelConfig"/>. CONFIG_IO_STRICT_DEVMEM: a region claim revokes raw
    /// user mappings of it (kernel/resource.c:revoke_iomem()) and busy regions count as exclusive.
    /// </summary>
    public static IReadOnlyDictionary<string, string> KernelOptions { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["CONFIG_IO_STRICT_DEVMEM"] = "a driver's region claim revokes /dev/mem, procfs and sysfs mappings of it (revoke_iomem()); default n",
    };

    /// <summary>The state views a condition can read, with their fields (null: a plain value).</summary>
    public static IReadOnlyDictionary<string, string[]?> Views { get; } = new Dictionary<string, string[]?>(StringComparer.Ordinal)
    {
        ["PTE"] = StateViews.PteFields,
        ["PFN"] = null,
        ["pagemap"] = StateViews.PagemapFields,
        ["kpagecount"] = null,
        ["smaps"] = StateViews.SmapsFields,
    };

    public static BindResult Bind(ScenarioAst ast)
    {
        ArgumentNullException.ThrowIfNull(ast);
        var b = new Binder(ast);
        var scenario = b.Run();
        return new BindResult(b._diags.Any(d => d.IsError) ? null : scenario, b._diags);
    }

    /// <summary>Reports an error; <paramref name="hint"/> (what would be right) follows the message.</summary>
    private void Error(SourceSpan span, string code, string message, string? hint = null, string? found = null) =>
        _diags.Add(new Diagnostic(DiagnosticSeverity.Error, code, hint is null ? message : $"{message}; {hint}", span, hint, found));

    private BoundScenario? Run()
    {
        var (config, kernelName, cpus) = BindSettings();
        DeclareInit();
        if (config is not null)
        {
            CheckDevicesBuild(config);
        }
        DeclareThreads();
        var init = BindInitStatements();
        var threads = BindThreads();
        CheckCpus(cpus);
        var locations = new List<BoundLocation>();
        var locationKeys = new HashSet<string>(StringComparer.Ordinal);
        if (_ast.Locations is { } locs)
        {
            foreach (var l in locs.Locations)
            {
                if (BindLocation(l) is { } bl && locationKeys.Add(bl.Display))
                {
                    locations.Add(bl);
                }
            }
        }
        BoundCondition? condition = null;
        if (_ast.Condition is { } c)
        {
            var prop = BindProp(c.Proposition, locations, locationKeys);
            if (prop is not null)
            {
                condition = new BoundCondition(c.Quantifier, prop, LitmusPrinter.Print(c.Proposition));
            }
        }
        if (_ast.Locations is null && _ast.Condition is null)
        {
            // Nothing chosen: show every register the threads assign, as herd shows its state.
            foreach (var t in threads)
            {
                foreach (var s in t.Body)
                {
                    if (s.Target is { } r && !_processDecls.ContainsKey(r))
                    {
                        string key = $"{t.Name}:{r}";
                        if (locationKeys.Add(key))
                        {
                            locations.Add(new BoundRegisterLocation(s.Span, key, t.Name, r));
                        }
                    }
                }
            }
        }
        var expectations = BindExpectations(condition);
        if (config is null || _diags.Any(d => d.IsError))
        {
            return null;
        }
        return new BoundScenario
        {
            Name = _ast.Name.Text,
            Source = _ast.Span.Source,
            Description = _ast.Description?.Text,
            KernelName = kernelName,
            Config = config,
            Cpus = cpus,
            Processes = [.. _processDecls.Values],
            Devices = [.. _devices.Values],
            Init = init,
            Threads = threads,
            Locations = locations,
            Condition = condition,
            Expectations = expectations,
        };
    }

    // ---- settings --------------------------------------------------------------------------

    private (KernelConfig? Config, string KernelName, int? Cpus) BindSettings()
    {
        string kernelName = "current";
        Variants variants = Variants.Current;
        PagingMode paging = PagingMode.X86_64_4Level;
        bool ioStrictDevmem = false;
        int? cpus = null;
        bool ok = true;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // The kernel preset first, so that variant lines refine it wherever they stand.
        foreach (var s in _ast.Settings.Where(s => s.Kind == SettingKind.Kernel))
        {
            if (!seen.Add("kernel"))
            {
                Error(s.Span, DiagnosticCodes.DuplicateSetting, "'kernel' is set twice");
                continue;
            }
            kernelName = s.Value.Text;
            if (Variants.Preset(kernelName) is { } preset)
            {
                variants = preset;
            }
            else
            {
                Error(s.Value.Span, DiagnosticCodes.UnknownKernel, $"unknown kernel '{kernelName}'",
                    "expected 'current' or a release such as v5.10 or v6.18", kernelName);
                ok = false;
            }
        }
        foreach (var s in _ast.Settings)
        {
            switch (s.Kind)
            {
                case SettingKind.Kernel:
                    break;
                case SettingKind.Arch:
                    if (!seen.Add("arch"))
                    {
                        Error(s.Span, DiagnosticCodes.DuplicateSetting, "'arch' is set twice");
                    }
                    else if (PagingMode.ByName(s.Value.Text) is { } p)
                    {
                        paging = p;
                    }
                    else
                    {
                        Error(s.Value.Span, DiagnosticCodes.UnknownArch, $"unknown arch '{s.Value.Text}'",
                            "expected x86_64, x86_64-la57, i386 or i386-pae", s.Value.Text);
                        ok = false;
                    }
                    break;
                case SettingKind.Cpus:
                    if (s.Value.Number is { } n && n >= 1 && n <= 4096)
                    {
                        cpus = (int)n;
                    }
                    else
                    {
                        Error(s.Value.Span, DiagnosticCodes.InvalidSettingValue, $"cpus must be a number from 1 to 4096, not '{s.Value.Text}'");
                        ok = false;
                    }
                    break;
                case SettingKind.Variant:
                    if (!seen.Add("variant " + s.Name.Text))
                    {
                        Error(s.Span, DiagnosticCodes.DuplicateSetting, $"variant '{s.Name.Text}' is set twice");
                        break;
                    }
                    if (variants.With(s.Name.Text, s.Value.Text, out string? error) is { } v)
                    {
                        variants = v;
                    }
                    else
                    {
                        Error(s.Span, DiagnosticCodes.UnknownVariant, error ?? $"unknown variant '{s.Name.Text}'");
                        ok = false;
                    }
                    break;
                case SettingKind.Other when s.Name.Text.StartsWith("CONFIG_", StringComparison.Ordinal):
                    if (!seen.Add(s.Name.Text))
                    {
                        Error(s.Span, DiagnosticCodes.DuplicateSetting, $"'{s.Name.Text}' is set twice");
                        break;
                    }
                    if (!KernelOptions.ContainsKey(s.Name.Text))
                    {
                        Error(s.Name.Span, DiagnosticCodes.UnknownSetting, $"unknown kernel option '{s.Name.Text}'",
                            Suggest(s.Name.Text, KernelOptions.Keys) ?? "known: " + string.Join(", ", KernelOptions.Keys), s.Name.Text);
                        ok = false;
                    }
                    else if (s.Value.Text is not ("y" or "n"))
                    {
                        Error(s.Value.Span, DiagnosticCodes.InvalidSettingValue, $"{s.Name.Text} is y or n, not '{s.Value.Text}'");
                        ok = false;
                    }
                    else
                    {
                        ioStrictDevmem = s.Value.Text == "y";
                    }
                    break;
                default:
                    Error(s.Name.Span, DiagnosticCodes.UnknownSetting, $"unknown setting '{s.Name.Text}'",
                        "expected kernel, arch, cpus, 'variant NAME = VALUE' or a kernel option such as CONFIG_IO_STRICT_DEVMEM = y", s.Name.Text);
                    ok = false;
                    break;
            }
        }
        return (ok ? new KernelConfig { Paging = paging, Variants = variants, IoStrictDevmem = ioStrictDevmem } : null, kernelName, cpus);
    }

    private void CheckCpus(int? cpus)
    {
        if (cpus is { } n && _threads.Count > n)
        {
            var s = _ast.Settings.First(s => s.Kind == SettingKind.Cpus);
            Error(s.Value.Span, DiagnosticCodes.InvalidSettingValue,
                $"{_threads.Count} threads need {_threads.Count} CPUs (each thread runs on its own), but cpus = {n}");
        }
    }

    // ---- declarations ----------------------------------------------------------------------

    private void DeclareInit()
    {
        if (_ast.Init is not { } init)
        {
            return;
        }
        foreach (var item in init.Items)
        {
            if (item is not InitDeclaration d)
            {
                continue;
            }
            if (!CheckNewName(d.Name))
            {
                continue;
            }
            switch (d.Kind.Text)
            {
                case "process":
                    if (d.Initializer is not null)
                    {
                        Error(d.Initializer.Span, DiagnosticCodes.BadDeclaration, "a process declaration takes no initializer", "expected ';'");
                    }
                    _processes[d.Name.Text] = d.Name.Span;
                    _processDecls[d.Name.Text] = new ProcessDecl(d.Name.Text, d.Name.Span);
                    _initRegisters[d.Name.Text] = new HashSet<string>(StringComparer.Ordinal);
                    break;
                case "device":
                    if (BindDevice(d) is { } dev)
                    {
                        _devices[d.Name.Text] = dev;
                    }
                    break;
                default:
                    Error(d.Kind.Span, DiagnosticCodes.BadDeclaration, $"unknown declaration '{d.Kind.Text}'",
                        "'process NAME;' or 'device NAME = KIND(...);'", d.Kind.Text);
                    break;
            }
        }
    }

    private DeviceDecl? BindDevice(InitDeclaration d)
    {
        if (d.Initializer is not CallExpression call)
        {
            Error(d.Initializer?.Span ?? d.Name.Span, DiagnosticCodes.BadDeclaration,
                $"device '{d.Name.Text}' needs a kind", "write 'device NAME = KIND(...)'", d.Initializer is null ? "';'" : null);
            return null;
        }
        var kind = DeviceTable.Find(call.Callee.Text);
        if (kind is null)
        {
            Error(call.Callee.Span, DiagnosticCodes.UnknownDevice, $"unknown device kind '{call.Callee.Text}'",
                DeviceTable.All.Count == 0 ? "no device kinds exist" : "known kinds: " + string.Join(", ", DeviceTable.All.Select(k => k.Name)), call.Callee.Text);
            return null;
        }
        var args = new Dictionary<string, BoundExpr>(StringComparer.Ordinal);
        var spans = new Dictionary<string, SourceSpan>(StringComparer.Ordinal);
        int errorsBefore = _diags.Count(x => x.IsError);
        foreach (var a in call.Arguments)
        {
            if (a.Name is null)
            {
                Error(a.Span, DiagnosticCodes.ArgumentKind, $"device arguments are named ({string.Join(", ", kind.Params)})", "write NAME = VALUE");
                continue;
            }
            if (!kind.Params.Contains(a.Name.Text))
            {
                Error(a.Name.Span, DiagnosticCodes.ArgumentKind, $"{kind.Name} has no argument '{a.Name.Text}'",
                    "its arguments: " + string.Join(", ", kind.Params), a.Name.Text);
                continue;
            }
            if (BindExpr(a.Value, Scope.ConstantsOnly) is not { } value)
            {
                continue;
            }
            if (value is not BoundConst)
            {
                Error(a.Value.Span, DiagnosticCodes.ArgumentKind, "device arguments are constants", "expected a number or a size such as 16 pages");
                continue;
            }
            if (!args.TryAdd(a.Name.Text, value))
            {
                Error(a.Name.Span, DiagnosticCodes.DuplicateName, $"argument '{a.Name.Text}' is given twice");
                continue;
            }
            spans[a.Name.Text] = a.Span;
        }
        // Declared even when its arguments are wrong, so that uses of it do not add errors of their own.
        var decl = new DeviceDecl(d.Name.Text, kind.Name, args, d.Span);
        if (_diags.Count(x => x.IsError) == errorsBefore && kind.Validate is { } validate)
        {
            foreach (var (arg, message) in validate(decl.Values))
            {
                Error(arg.Length > 0 && spans.TryGetValue(arg, out var at) ? at : call.Span, DiagnosticCodes.ArgumentKind, message);
            }
        }
        return decl;
    }

    /// <summary>Builds the devices on a scratch kernel (<see cref="DeviceTable.CheckBuild"/>) and
    /// reports a declaration the set cannot hold (a PCI slot taken twice, BARs beyond the windows).</summary>
    private void CheckDevicesBuild(KernelConfig config)
    {
        var list = _devices.Values.ToList();
        if (list.Count == 0 || _diags.Any(d => d.IsError))
        {
            return;
        }
        var errors = DeviceTable.CheckBuild(config, [.. list.Select(d => (DeviceTable.Find(d.Kind)!, d.Name, d.Values))]);
        foreach (var (i, message) in errors)
        {
            Error(list[i].Span, DiagnosticCodes.BadDeclaration, $"device '{list[i].Name}' cannot be built: {message}");
        }
    }

    private bool CheckNewName(Identifier name)
    {
        if (_processes.ContainsKey(name.Text) || _devices.ContainsKey(name.Text) || _threads.ContainsKey(name.Text))
        {
            Error(name.Span, DiagnosticCodes.DuplicateName, $"'{name.Text}' is already declared");
            return false;
        }
        if (VerbTable.Constants.ContainsKey(name.Text))
        {
            Error(name.Span, DiagnosticCodes.DuplicateName, $"'{name.Text}' is a constant and cannot name something else");
            return false;
        }
        return true;
    }

    private void DeclareThreads()
    {
        foreach (var t in _ast.Threads)
        {
            if (CheckNewName(t.Name))
            {
                _threads[t.Name.Text] = t;
                _threadRegisters[t.Name.Text] = new HashSet<string>(
                    t.Body.Where(s => s.Target is not null).Select(s => s.Target!.Text), StringComparer.Ordinal);
            }
        }
        // A fork's target register names the child process, so it can host threads and be observed.
        if (_ast.Init is { } init)
        {
            foreach (var item in init.Items)
            {
                if (item is InitStatement { Statement: { Target: { } target, Value: CallExpression { Callee.Text: "fork" } } } s)
                {
                    DeclareForked(target, null, null, s.Process.Text);
                }
            }
        }
        foreach (var t in _threads.Values)
        {
            foreach (var s in t.Body)
            {
                if (s is { Target: { } target, Value: CallExpression { Callee.Text: "fork" } })
                {
                    DeclareForked(target, t.Name.Text, s, null);
                }
            }
        }
    }

    private void DeclareForked(Identifier target, string? thread, Statement? statement, string? initProcess)
    {
        if (_processes.ContainsKey(target.Text) || _devices.ContainsKey(target.Text) || _threads.ContainsKey(target.Text))
        {
            Error(target.Span, DiagnosticCodes.DuplicateName,
                $"'{target.Text}' is already declared; a fork's target names the new process");
            return;
        }
        _processes[target.Text] = target.Span;
        _processDecls[target.Text] = new ProcessDecl(target.Text, target.Span, thread, statement?.Label?.Text)
        {
            ForkStatementIndex = thread is null ? -1 : _threads[thread].Body.IndexOf(statement!),
            ForkedInInitBy = initProcess,
        };
        _initRegisters[target.Text] = new HashSet<string>(StringComparer.Ordinal);
    }

    // ---- statements ------------------------------------------------------------------------

    /// <summary>What names an expression may use.</summary>
    private sealed class Scope
    {
        public static readonly Scope ConstantsOnly = new(null, null);

        public Scope(string? process, string? thread)
        {
            Process = process;
            Thread = thread;
        }

        public string? Process { get; }
        public string? Thread { get; }
        public HashSet<string> Registers { get; } = new(StringComparer.Ordinal);
    }

    private Scope ProcessScope(string process)
    {
        var scope = new Scope(process, null);
        AddProcessNames(scope.Registers, process, new HashSet<string>(StringComparer.Ordinal));
        return scope;
    }

    /// <summary>A process's init registers, and for a forked process what its parent saw at the fork.</summary>
    private void AddProcessNames(HashSet<string> into, string process, HashSet<string> visiting)
    {
        if (!visiting.Add(process))
        {
            return;
        }
        if (_initRegisters.TryGetValue(process, out var regs))
        {
            into.UnionWith(regs);
        }
        if (_forkScope.TryGetValue(process, out var forkScope))
        {
            into.UnionWith(forkScope);
        }
    }

    private IReadOnlyList<(string Process, BoundStatement Statement)> BindInitStatements()
    {
        var result = new List<(string, BoundStatement)>();
        if (_ast.Init is not { } init)
        {
            return result;
        }
        foreach (var item in init.Items)
        {
            if (item is not InitStatement s)
            {
                continue;
            }
            string p = s.Process.Text;
            if (!_processes.ContainsKey(p))
            {
                Error(s.Process.Span, DiagnosticCodes.UnknownProcess, $"no process '{p}'",
                    Known("processes", _processes.Keys), p);
                continue;
            }
            var scope = ProcessScope(p);
            if (BindStatement(s.Statement, scope, inThread: false) is { } bs)
            {
                result.Add((p, bs));
                if (bs.Target is { } target)
                {
                    _initRegisters[p].Add(target);
                    if (bs.Value is BoundCall { Verb.Name: "fork" })
                    {
                        // The child sees what its parent's init had assigned so far.
                        var visible = new HashSet<string>(scope.Registers, StringComparer.Ordinal);
                        _forkScope[target] = visible;
                    }
                }
            }
        }
        return result;
    }

    private IReadOnlyList<BoundThread> BindThreads()
    {
        var result = new List<BoundThread>();
        // Processes created by a fork in a thread get their scope from the forking thread, so bind
        // forking threads first (in declaration order; a cycle is reported below).
        var order = OrderThreadsForScopes();
        var bound = new Dictionary<string, BoundThread>(StringComparer.Ordinal);
        foreach (var t in order)
        {
            if (BindThread(t) is { } bt)
            {
                bound[bt.Name] = bt;
            }
        }
        foreach (var t in _ast.Threads)
        {
            if (bound.TryGetValue(t.Name.Text, out var bt) && _threads.GetValueOrDefault(t.Name.Text) == t)
            {
                result.Add(bt);
            }
        }
        CheckAfterCycles();
        return result;
    }

    private List<ThreadDeclaration> OrderThreadsForScopes()
    {
        var order = new List<ThreadDeclaration>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        var visiting = new HashSet<string>(StringComparer.Ordinal);
        void Visit(ThreadDeclaration t)
        {
            if (done.Contains(t.Name.Text) || !visiting.Add(t.Name.Text))
            {
                return;
            }
            if (t.Process is { } p && _processDecls.TryGetValue(p.Text, out var pd) && pd.ForkedByThread is { } f &&
                _threads.TryGetValue(f, out var forker))
            {
                Visit(forker);
            }
            visiting.Remove(t.Name.Text);
            done.Add(t.Name.Text);
            order.Add(t);
        }
        foreach (var t in _threads.Values)
        {
            Visit(t);
        }
        return order;
    }

    private BoundThread? BindThread(ThreadDeclaration t)
    {
        string? process = null;
        if (t.Process is { } p)
        {
            if (_processes.ContainsKey(p.Text))
            {
                process = p.Text;
            }
            else
            {
                Error(p.Span, DiagnosticCodes.UnknownProcess, $"no process '{p.Text}'",
                    "expected a process declared in the init block ('process NAME;') or named by a fork ('NAME = fork();')", p.Text);
            }
        }
        string? afterThread = null, afterLabel = null;
        if (t.After is { } after)
        {
            if (!_threads.TryGetValue(after.Thread.Text, out var other))
            {
                Error(after.Thread.Span, DiagnosticCodes.UnknownThread, $"no thread '{after.Thread.Text}'",
                    Known("threads", _threads.Keys), after.Thread.Text);
            }
            else if (other == t)
            {
                Error(after.Thread.Span, DiagnosticCodes.CyclicAfter, $"thread '{t.Name.Text}' cannot start after itself");
            }
            else if (!other.Body.Any(s => s.Label?.Text == after.Label.Text))
            {
                Error(after.Label.Span, DiagnosticCodes.UnknownLabel, $"thread '{other.Name.Text}' has no label '{after.Label.Text}'",
                    Known("labels", other.Body.Where(s => s.Label is not null).Select(s => s.Label!.Text)), after.Label.Text);
            }
            else
            {
                afterThread = other.Name.Text;
                afterLabel = after.Label.Text;
            }
        }
        if (process is not null && _processDecls[process] is { ForkedByThread: { } forker } pd && afterThread is null && t.After is null)
        {
            // A thread of a forked child cannot run before the fork: it starts right after it.
            afterThread = forker;
            afterLabel = pd.ForkLabel;
        }

        var scope = new Scope(process, t.Name.Text);
        if (process is not null)
        {
            AddProcessNames(scope.Registers, process, new HashSet<string>(StringComparer.Ordinal));
        }
        var labels = new HashSet<string>(StringComparer.Ordinal);
        var body = new List<BoundStatement>();
        foreach (var s in t.Body)
        {
            if (s.Label is { } l && !labels.Add(l.Text))
            {
                Error(l.Span, DiagnosticCodes.DuplicateName, $"label '{l.Text}' is used twice in thread '{t.Name.Text}'");
            }
            if (BindStatement(s, scope, inThread: true) is { } bs)
            {
                body.Add(bs);
                if (bs.Value is BoundCall { Verb.Name: "fork" } && bs.Target is { } child)
                {
                    _forkScope[child] = new HashSet<string>(scope.Registers, StringComparer.Ordinal);
                }
                if (bs.Target is { } target)
                {
                    scope.Registers.Add(target);
                }
            }
        }
        int afterIndex = -1;
        if (afterThread is not null)
        {
            var other = _threads[afterThread];
            afterIndex = afterLabel is not null
                ? other.Body.IndexOf(other.Body.First(s => s.Label?.Text == afterLabel))
                : _processDecls[process!].ForkStatementIndex;
        }
        return new BoundThread(t.Name.Text, process, afterThread, afterLabel, body, t.Span) { AfterIndex = afterIndex };
    }

    private void CheckAfterCycles()
    {
        foreach (var t in _threads.Values)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal) { t.Name.Text };
            var cur = t;
            while (cur.After is { } a && _threads.TryGetValue(a.Thread.Text, out var next))
            {
                if (!seen.Add(next.Name.Text))
                {
                    if (next == t)
                    {
                        Error(t.After!.Span, DiagnosticCodes.CyclicAfter,
                            $"thread '{t.Name.Text}' waits, through 'after', for a thread that waits for it: {string.Join(" -> ", seen)} -> {t.Name.Text}");
                    }
                    break;
                }
                cur = next;
            }
        }
    }

    private BoundStatement? BindStatement(Statement s, Scope scope, bool inThread)
    {
        if (s.Target is { } target)
        {
            if (VerbTable.Constants.ContainsKey(target.Text))
            {
                Error(target.Span, DiagnosticCodes.DuplicateName, $"'{target.Text}' is a constant, not a register");
                return null;
            }
            if (_devices.ContainsKey(target.Text) || _threads.ContainsKey(target.Text) ||
                (_processes.ContainsKey(target.Text) && !IsForkOf(s, target.Text)))
            {
                Error(target.Span, DiagnosticCodes.DuplicateName, $"'{target.Text}' names a {KindOf(target.Text)}, not a register");
                return null;
            }
        }
        if (s.Label is not null && !inThread)
        {
            Error(s.Label.Span, DiagnosticCodes.BadDeclaration, "labels belong to thread statements ('after' refers to them)");
        }
        var value = BindTopLevel(s.Value, scope);
        return value is null ? null : new BoundStatement(s.Span, s.Label?.Text, s.Target?.Text, value);
    }

    private static bool IsForkOf(Statement s, string name) =>
        s.Target?.Text == name && s.Value is CallExpression { Callee.Text: "fork" };

    private string KindOf(string name) =>
        _devices.ContainsKey(name) ? "device" : _threads.ContainsKey(name) ? "thread" : _processes.ContainsKey(name) ? "process" : "name";

    private BoundExpr? BindTopLevel(Expression e, Scope scope)
    {
        if (e is CallExpression call)
        {
            return BindCall(call, scope);
        }
        var v = BindExpr(e, scope);
        return v;
    }

    private BoundExpr? BindCall(CallExpression call, Scope scope)
    {
        var verb = VerbTable.Find(call.Callee.Text);
        if (verb is null)
        {
            Error(call.Callee.Span, DiagnosticCodes.UnknownVerb, $"unknown call '{call.Callee.Text}'",
                Suggest(call.Callee.Text, VerbTable.All.Select(v => v.Name)) ?? "expected a syscall or kernel entry point ('mmcheck list --verbs' lists them)",
                call.Callee.Text);
            return null;
        }
        if (verb.NeedsProcess && scope.Thread is not null && scope.Process is null)
        {
            Error(call.Callee.Span, DiagnosticCodes.VerbNeedsProcess,
                $"'{verb.Name}' runs in a process, but thread '{scope.Thread}' is a kernel thread (add 'in PROCESS')");
        }
        int n = call.Arguments.Length;
        if (n < verb.Required || n > verb.Params.Count)
        {
            string count = verb.Required == verb.Params.Count ? $"{verb.Required}" : $"{verb.Required} to {verb.Params.Count}";
            Error(call.Span, DiagnosticCodes.ArgumentCount,
                $"'{verb.Name}' takes {count} argument{(verb.Params.Count == 1 ? "" : "s")}, not {n}", "usage: " + verb.Signature);
            return null;
        }
        var args = new List<BoundExpr>(n);
        bool ok = true;
        for (int i = 0; i < n; i++)
        {
            var a = call.Arguments[i];
            if (a.Name is not null)
            {
                Error(a.Name.Span, DiagnosticCodes.ArgumentKind, $"'{verb.Name}' takes its arguments by position", "usage: " + verb.Signature);
                ok = false;
                continue;
            }
            if (verb.Params[i].Kind == ParamKind.Device)
            {
                if (BindDeviceArgument(verb, i, a.Value) is { } dev)
                {
                    args.Add(dev);
                }
                else
                {
                    ok = false;
                }
                continue;
            }
            var bound = BindExpr(a.Value, scope);
            if (bound is null)
            {
                ok = false;
                continue;
            }
            var (pname, kind) = verb.Params[i];
            bool isString = bound is BoundConst { Value.Kind: ValueKind.String };
            if (kind == ParamKind.String && !isString)
            {
                Error(a.Span, DiagnosticCodes.ArgumentKind, $"'{pname}' of '{verb.Name}' is a string", "expected a \"string\"");
                ok = false;
            }
            else if (kind == ParamKind.Number && isString)
            {
                Error(a.Span, DiagnosticCodes.ArgumentKind, $"'{pname}' of '{verb.Name}' is a number, not a string");
                ok = false;
            }
            args.Add(bound);
        }
        return ok ? new BoundCall(call.Span, verb, args) : null;
    }

    /// <summary>A device argument: the name of a device the init block declared, of a kind the verb
    /// takes; it reaches the verb as the device's name.</summary>
    private BoundExpr? BindDeviceArgument(VerbDef verb, int index, Expression e)
    {
        string pname = verb.Params[index].Name;
        string kinds = verb.DeviceKinds is { } ks ? string.Join(" or ", ks) : "any kind";
        if (e is not NameExpression n || !_devices.TryGetValue(n.Name, out var dev))
        {
            Error(e.Span, DiagnosticCodes.UnknownDevice, $"'{pname}' of '{verb.Name}' is a device ({kinds})",
                Known("devices", _devices.Keys), LitmusPrinter.Print(e));
            return null;
        }
        if (verb.DeviceKinds is { } allowed && !allowed.Contains(dev.Kind))
        {
            Error(e.Span, DiagnosticCodes.UnknownDevice, $"'{verb.Name}' takes a {kinds} device, and '{dev.Name}' is {dev.Kind}",
                null, dev.Kind);
            return null;
        }
        return new BoundConst(e.Span, LitValue.Str(dev.Name));
    }

    private BoundExpr? BindExpr(Expression e, Scope scope)
    {
        switch (e)
        {
            case IntegerLiteral i:
                return new BoundConst(e.Span, LitValue.Of(i.Value));
            case SizeLiteral size:
                if (size.TryGetBytes(4096, out ulong bytes) && bytes <= long.MaxValue)
                {
                    return new BoundConst(e.Span, LitValue.Of(bytes));
                }
                Error(e.Span, DiagnosticCodes.InvalidSize, "this size does not fit in 63 bits");
                return null;
            case StringLiteral s:
                return new BoundConst(e.Span, LitValue.Str(s.Value));
            case NullLiteral:
                return new BoundConst(e.Span, LitValue.Of(0L));
            case NameExpression n:
                return BindName(n, scope);
            case UnaryExpression u:
                return BindExpr(u.Operand, scope) is { } operand ? Fold(new BoundUnary(e.Span, u.Operator, operand)) : null;
            case BinaryExpression b:
            {
                var l = BindExpr(b.Left, scope);
                var r = BindExpr(b.Right, scope);
                if (l is BoundConst { Value.Kind: ValueKind.String } || r is BoundConst { Value.Kind: ValueKind.String })
                {
                    Error(e.Span, DiagnosticCodes.ArgumentKind, "strings take no arithmetic");
                    return null;
                }
                return l is null || r is null ? null : Fold(new BoundBinary(e.Span, b.Operator, l, r));
            }
            case MemberAccessExpression m:
                return BindMember(m);
            case CallExpression c:
                Error(c.Span, DiagnosticCodes.NestedCall, $"a call to '{c.Callee.Text}' must be a statement of its own",
                    "assign it to a register first: 'r = " + c.Callee.Text + "(...);'");
                return null;
            case Location l:
                Error(l.Span, DiagnosticCodes.MisplacedLocation, "state locations (T:r, P:[addr], P:PTE(addr)) belong in the final condition");
                return null;
            default:
                Error(e.Span, DiagnosticCodes.UnexpectedToken, "unexpected expression");
                return null;
        }
    }

    /// <summary>Constant expressions are folded so the interpreter evaluates them once.</summary>
    private static BoundExpr Fold(BoundExpr e)
    {
        switch (e)
        {
            case BoundUnary { Operand: BoundConst { Value.Kind: ValueKind.Number } c } u:
                return new BoundConst(u.Span, Evaluator.Unary(u.Operator, c.Value));
            case BoundBinary { Left: BoundConst { Value.Kind: ValueKind.Number } l, Right: BoundConst { Value.Kind: ValueKind.Number } r } b:
                return new BoundConst(b.Span, Evaluator.Binary(b.Operator, l.Value, r.Value));
            default:
                return e;
        }
    }

    private BoundExpr? BindName(NameExpression n, Scope scope)
    {
        if (scope.Registers.Contains(n.Name))
        {
            return new BoundRegister(n.Span, n.Name);
        }
        if (VerbTable.Constants.TryGetValue(n.Name, out var c))
        {
            return new BoundConst(n.Span, c);
        }
        string where = scope.Thread is { } t ? $"thread '{t}'" : scope.Process is { } p ? $"process '{p}'" : "this context";
        string? hint = null;
        if (scope.Thread is { } th && _threadRegisters.TryGetValue(th, out var later) && later.Contains(n.Name))
        {
            hint = $"'{n.Name}' is assigned later in {where}; a register is usable after the statement that assigns it";
        }
        else if (_threadRegisters.Where(kv => kv.Key != scope.Thread && kv.Value.Contains(n.Name)).Select(kv => kv.Key).FirstOrDefault() is { } owner)
        {
            hint = $"'{n.Name}' is a register of thread '{owner}'; registers are private to their thread";
        }
        else if (_processes.ContainsKey(n.Name) || _threads.ContainsKey(n.Name) || _devices.ContainsKey(n.Name))
        {
            hint = $"'{n.Name}' names a {KindOf(n.Name)}, which has no value here";
        }
        Error(n.Span, DiagnosticCodes.UnknownName, $"unknown name '{n.Name}' in {where}",
            hint ?? Suggest(n.Name, scope.Registers.Concat(VerbTable.Constants.Keys)) ?? "expected a register assigned earlier or a constant such as PROT_READ",
            n.Name);
        return null;
    }

    private BoundExpr? BindMember(MemberAccessExpression m)
    {
        if (m.Target is not NameExpression target || !_devices.TryGetValue(target.Name, out var dev))
        {
            Error(m.Target.Span, DiagnosticCodes.UnknownDevice, $"'{LitmusPrinter.Print(m.Target)}' is not a device",
                Known("devices", _devices.Keys));
            return null;
        }
        var kind = DeviceTable.Find(dev.Kind)!;
        if (!kind.Members.Contains(m.Member.Text))
        {
            Error(m.Member.Span, DiagnosticCodes.UnknownDevice, $"device '{dev.Name}' ({dev.Kind}) has no '{m.Member.Text}'",
                "its members: " + string.Join(", ", kind.Members), m.Member.Text);
            return null;
        }
        return new BoundDeviceMember(m.Span, dev.Name, kind, m.Member.Text);
    }

    // ---- the final condition ---------------------------------------------------------------

    private BoundProp? BindProp(Proposition p, List<BoundLocation> locations, HashSet<string> keys)
    {
        switch (p)
        {
            case Comparison c:
            {
                var l = BindOperand(c.Left, locations, keys);
                var r = BindOperand(c.Right, locations, keys);
                if (l is null || r is null)
                {
                    return null;
                }
                if (IsFrame(l) != IsFrame(r))
                {
                    Error(c.Span, DiagnosticCodes.TypeMismatch,
                        "a PFN compares only with another PFN: frames are renamed (frame1, frame2, …) in outcomes",
                        "compare frames with frames, as in P:PFN(a) = Q:PFN(b)");
                    return null;
                }
                return new BoundComparison(c.Span, c.Operator == ComparisonOperator.Equal, l, r);
            }
            case NotProposition n:
                return BindProp(n.Operand, locations, keys) is { } o ? new BoundNot(n.Span, o) : null;
            case LogicalProposition lp:
            {
                var l = BindProp(lp.Left, locations, keys);
                var r = BindProp(lp.Right, locations, keys);
                return l is null || r is null ? null : new BoundLogical(lp.Span, lp.Operator == LogicalOperator.And, l, r);
            }
            default:
                return null;
        }
    }

    private static bool IsFrame(BoundLocation l) =>
        l is BoundStateLocation { View: "PFN" } or BoundStateLocation { View: "pagemap", Field: "pfn" } or BoundStateLocation { View: "PTE", Field: "pfn" };

    private BoundLocation? BindOperand(Expression e, List<BoundLocation> locations, HashSet<string> keys)
    {
        if (e is Location l)
        {
            var bl = BindLocation(l);
            if (bl is not null && keys.Add(bl.Display))
            {
                locations.Add(bl);
            }
            return bl;
        }
        var v = BindExpr(e, Scope.ConstantsOnly);
        if (v is null)
        {
            return null;
        }
        if (v is not BoundConst)
        {
            Error(e.Span, DiagnosticCodes.UnknownName, "a condition compares locations with constants", "expected T:reg, P:[addr], P:PTE(addr).field or a constant");
            return null;
        }
        return new BoundValueOperand(e.Span, LitmusPrinter.Print(e), v);
    }

    private BoundLocation? BindLocation(Location l)
    {
        switch (l)
        {
            case RegisterLocation r:
            {
                if (!_threads.ContainsKey(r.Thread.Text))
                {
                    Error(r.Thread.Span, DiagnosticCodes.UnknownThread, $"no thread '{r.Thread.Text}'",
                        Known("threads", _threads.Keys), r.Thread.Text);
                    return null;
                }
                if (!_threadRegisters[r.Thread.Text].Contains(r.Register.Text))
                {
                    Error(r.Register.Span, DiagnosticCodes.UnknownName, $"thread '{r.Thread.Text}' never assigns '{r.Register.Text}'",
                        Known("registers", _threadRegisters[r.Thread.Text]), r.Register.Text);
                    return null;
                }
                return new BoundRegisterLocation(r.Span, $"{r.Thread.Text}:{r.Register.Text}", r.Thread.Text, r.Register.Text);
            }
            case MemoryLocation m:
            {
                if (!CheckProcess(m.Process))
                {
                    return null;
                }
                var addr = BindExpr(m.Address, FinalScope(m.Process.Text));
                return addr is null ? null : new BoundMemoryLocation(m.Span, $"{m.Process.Text}:[{LitmusPrinter.Print(m.Address)}]", m.Process.Text, addr);
            }
            case StateLocation s:
                return BindState(s);
            default:
                return null;
        }
    }

    private bool CheckProcess(Identifier p)
    {
        if (_processes.ContainsKey(p.Text))
        {
            return true;
        }
        Error(p.Span, DiagnosticCodes.UnknownProcess, $"no process '{p.Text}'", Known("processes", _processes.Keys), p.Text);
        return false;
    }

    /// <summary>Names an address in a final-state location may use: the process's own, and the
    /// registers of its threads as they ended.</summary>
    private Scope FinalScope(string process)
    {
        var scope = ProcessScope(process);
        foreach (var t in _threads.Values.Where(t => t.Process?.Text == process))
        {
            scope.Registers.UnionWith(_threadRegisters[t.Name.Text]);
        }
        return scope;
    }

    private BoundLocation? BindState(StateLocation s)
    {
        if (!CheckProcess(s.Subject))
        {
            return null;
        }
        if (!Views.TryGetValue(s.View.Text, out var fields))
        {
            Error(s.View.Span, DiagnosticCodes.UnknownView, $"unknown view '{s.View.Text}'", "views: " + string.Join(", ", Views.Keys), s.View.Text);
            return null;
        }
        if (s.Arguments.Length != 1 || s.Arguments[0].Name is not null)
        {
            Error(s.Span, DiagnosticCodes.ArgumentCount, $"{s.View.Text} takes one address", $"usage: {s.View.Text}(addr)");
            return null;
        }
        string? field = s.Field?.Text;
        if (fields is null && field is not null)
        {
            Error(s.Field!.Span, DiagnosticCodes.UnknownView, $"{s.View.Text} has no fields");
            return null;
        }
        if (fields is not null && (field is null || !fields.Contains(field)))
        {
            Error(s.Field?.Span ?? s.Span, DiagnosticCodes.UnknownView,
                field is null ? $"{s.View.Text}(…) needs a field" : $"{s.View.Text} has no field '{field}'",
                "fields: " + string.Join(", ", fields), field);
            return null;
        }
        var addr = BindExpr(s.Arguments[0].Value, FinalScope(s.Subject.Text));
        if (addr is null)
        {
            return null;
        }
        string display = $"{s.Subject.Text}:{s.View.Text}({LitmusPrinter.Print(s.Arguments[0].Value)})" + (field is null ? "" : "." + field);
        return new BoundStateLocation(s.Span, display, s.Subject.Text, s.View.Text, addr, field);
    }

    // ---- expectations ----------------------------------------------------------------------

    private IReadOnlyList<BoundExpectation> BindExpectations(BoundCondition? condition)
    {
        var result = new List<BoundExpectation>();
        int outcomeExpectations = 0;
        foreach (var e in _ast.Expectations)
        {
            switch (e.Kind)
            {
                case ExpectationKind.Always or ExpectationKind.Sometimes or ExpectationKind.Never:
                    outcomeExpectations++;
                    if (_ast.Condition is null)
                    {
                        Error(e.Span, DiagnosticCodes.ExpectationConflict,
                            $"'expect {e.Kind.ToString().ToLowerInvariant()}' speaks of the final condition, and there is none",
                            "add a condition such as 'exists (T0:r0 = 0x1)' before the expectations");
                    }
                    else if (outcomeExpectations > 1)
                    {
                        Error(e.Span, DiagnosticCodes.ExpectationConflict, "the condition can have one expectation (always, sometimes or never)");
                    }
                    break;
                case ExpectationKind.Violation:
                    if (e.Invariant is not { } inv)
                    {
                        Error(e.Span, DiagnosticCodes.UnknownInvariant, "'expect violation' needs an invariant name", "known: " + string.Join(", ", KnownInvariants));
                        continue;
                    }
                    if (!KnownInvariants.Contains(inv.Text))
                    {
                        Error(inv.Span, DiagnosticCodes.UnknownInvariant, $"unknown invariant '{inv.Text}'",
                            Suggest(inv.Text, KnownInvariants) ?? "known: " + string.Join(", ", KnownInvariants), inv.Text);
                        continue;
                    }
                    if (_ast.Expectations.Any(x => x.Kind == ExpectationKind.Clean))
                    {
                        Error(e.Span, DiagnosticCodes.ExpectationConflict, "a scenario cannot expect both 'clean' and a violation");
                    }
                    break;
            }
            result.Add(new BoundExpectation(e.Kind, e.Invariant?.Text, e.Span));
        }
        return result;
    }

    // ---- helpers ---------------------------------------------------------------------------

    private static string Known(string what, IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count == 0 ? $"no {what} are declared" : $"one of: {string.Join(", ", list)}";
    }

    /// <summary>"did you mean X?" for a near miss (edit distance at most 2, or a different case).</summary>
    internal static string? Suggest(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            int d = string.Equals(c, name, StringComparison.OrdinalIgnoreCase) ? 0 : Distance(name, c);
            if (d < bestDistance || (d == bestDistance && string.CompareOrdinal(c, best) < 0))
            {
                best = c;
                bestDistance = d;
            }
        }
        int limit = name.Length <= 3 ? 1 : 2;
        return best is not null && bestDistance <= limit ? $"did you mean '{best}'?" : null;
    }

    private static int Distance(string a, string b)
    {
        if (Math.Abs(a.Length - b.Length) > 2)
        {
            return 3;
        }
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}

/// <summary>Folding and run-time arithmetic share one definition.</summary>
public static class Evaluator
{
    public static LitValue Unary(UnaryOperator op, LitValue v) => op switch
    {
        UnaryOperator.Negate => LitValue.Of(unchecked(-v.Number)),
        _ => LitValue.Of(~v.Number),
    };

    public static LitValue Binary(BinaryOperator op, LitValue l, LitValue r) => op switch
    {
        BinaryOperator.BitwiseOr => LitValue.Of(l.Number | r.Number),
        BinaryOperator.BitwiseAnd => LitValue.Of(l.Number & r.Number),
        BinaryOperator.Add => LitValue.Of(unchecked(l.Number + r.Number)),
        BinaryOperator.Subtract => LitValue.Of(unchecked(l.Number - r.Number)),
        _ => LitValue.Of(unchecked(l.Number * r.Number)),
    };

    internal static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);
}

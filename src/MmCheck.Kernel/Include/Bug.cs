using System.Runtime.CompilerServices;

namespace Linux;

/// <summary>
/// A violation of a kernel rule observed in the model: BUG_ON, WARN_ON, a lockdep report,
/// an oops, or a broken invariant. <see cref="Invariant"/> is one of the stable names in
/// <see cref="Invariants"/>; scenarios refer to them.
/// </summary>
public sealed record Finding(string Invariant, string Message, int TaskPid, string Function)
{
    public override string ToString() =>
        TaskPid > 0 ? $"{Invariant}: {Message} (pid {TaskPid}, {Function})" : $"{Invariant}: {Message} ({Function})";
}

/// <summary>The stable names of the built-in invariants (design.md, "Built-in invariants").</summary>
public static class Invariants
{
    public const string LockAssert = "lock-assert";
    public const string LockOrder = "lock-order";
    public const string Deadlock = "deadlock";
    public const string Bug = "bug";
    public const string Warn = "warn";
    public const string KernelOops = "kernel-oops";
    public const string RefCount = "refcount";
    public const string UseAfterFree = "use-after-free";
    public const string RmapComplete = "rmap-complete";
    public const string AnonExclusive = "anon-exclusive";
    public const string TlbCoherent = "tlb-coherent";
    public const string SleepInAtomic = "sleep-in-atomic";
    public const string RevokedIomemMapped = "revoked-iomem-mapped";
    public const string PfnLifetime = "pfn-lifetime";
    public const string DeviceExclusiveCoherent = "device-exclusive-coherent";
    public const string KernelMappingSync = "kernel-mapping-sync";
    public const string WriteNotify = "write-notify";
    /// <summary>check_mm() at __mmdrop(): an rss counter is not zero when the mm is freed.</summary>
    public const string BadRssCounter = "bad-rss-counter";
}

/// <summary>
/// Thrown by BUG_ON and by an oops: the task that hit it stops where it stands, as the kernel's
/// make_task_dead() ends a task that oopses without unwinding anything it holds. The innermost
/// <see cref="InlineAsyncBuilder{TResult}"/> frame it reaches tells <see cref="Sched"/> the task is
/// dead and never completes, so no caller resumes (or pays for a rethrow); frames with the standard
/// builder pass it up, and the task's top frame catches it. It never escapes to the tool's user.
/// </summary>
public sealed class KernelBugException(Finding finding) : Exception(finding.ToString())
{
    public Finding Finding { get; } = finding;

    /// <summary>The scheduler of the task that died.</summary>
    internal Scheduler? Sched { get; init; }
}

/// <summary>
/// The message of a BUG_ON/WARN_ON: formatted only when the condition holds, so a check on the
/// hot path costs a branch, not a string.
/// </summary>
[InterpolatedStringHandler]
public ref struct BugMessage
{
    private DefaultInterpolatedStringHandler _inner;

    public BugMessage(int literalLength, int formattedCount, bool condition, out bool shouldAppend)
    {
        _inner = condition ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
        shouldAppend = condition;
    }

    public void AppendLiteral(string s) => _inner.AppendLiteral(s);

    public void AppendFormatted<T>(T value) => _inner.AppendFormatted(value);

    public void AppendFormatted<T>(T value, string? format) => _inner.AppendFormatted(value, format);

    public override string ToString() => _inner.ToStringAndClear();
}

public sealed partial class Kernel
{
    /// <summary>BUG_ON(): reports the finding and stops the current task.</summary>
    /// <remarks>Context: any. On a hit the task dies where it stands, keeping its locks (make_task_dead()).</remarks>
    [KernelSymbol("BUG_ON", "include/asm-generic/bug.h")]
    public void BugOn([DoesNotReturnIf(true)] bool condition, string what, [CallerMemberName] string fn = "")
    {
        if (condition)
        {
            Bug(what, fn);
        }
    }

    /// <summary>BUG_ON() with a message formatted only if it fires.</summary>
    public void BugOn([DoesNotReturnIf(true)] bool condition,
        [InterpolatedStringHandlerArgument(nameof(condition))] ref BugMessage what, [CallerMemberName] string fn = "")
    {
        if (condition)
        {
            Bug(what.ToString(), fn);
        }
    }

    /// <summary>VM_BUG_ON() with a lazily formatted message.</summary>
    public void VmBugOn([DoesNotReturnIf(true)] bool condition,
        [InterpolatedStringHandlerArgument(nameof(condition))] ref BugMessage what, [CallerMemberName] string fn = "")
    {
        if (condition)
        {
            Bug(what.ToString(), fn);
        }
    }

    /// <summary>WARN_ON() with a lazily formatted message.</summary>
    public bool WarnOn(bool condition, [InterpolatedStringHandlerArgument(nameof(condition))] ref BugMessage what,
        [CallerMemberName] string fn = "")
    {
        if (condition)
        {
            Sched.OnFinding(new Finding(Invariants.Warn, what.ToString(), Current?.Pid ?? 0, fn));
        }
        return condition;
    }

    /// <summary>WARN_ON_ONCE() with a lazily formatted message.</summary>
    public bool WarnOnOnce(bool condition, [InterpolatedStringHandlerArgument(nameof(condition))] ref BugMessage what,
        [CallerMemberName] string fn = "") => WarnOn(condition, ref what, fn);

    /// <summary>VM_WARN_ON_ONCE() with a lazily formatted message.</summary>
    public bool VmWarnOnOnce(bool condition, [InterpolatedStringHandlerArgument(nameof(condition))] ref BugMessage what,
        [CallerMemberName] string fn = "") => WarnOn(condition, ref what, fn);

    [DoesNotReturn]
    public void Bug(string what, [CallerMemberName] string fn = "") => OopsEnd(Invariants.Bug, what, fn);

    /// <summary>VM_BUG_ON(): as BUG_ON (the model runs with CONFIG_DEBUG_VM).</summary>
    /// <remarks>Context: as BUG_ON().</remarks>
    [KernelSymbol("VM_BUG_ON", "include/linux/mmdebug.h")]
    public void VmBugOn([DoesNotReturnIf(true)] bool condition, string what, [CallerMemberName] string fn = "") =>
        BugOn(condition, what, fn);

    /// <summary>WARN_ON(): reports the finding; the kernel carries on.</summary>
    /// <remarks>Context: any; the caller carries on.</remarks>
    [KernelSymbol("WARN_ON", "include/asm-generic/bug.h")]
    public bool WarnOn(bool condition, string what, [CallerMemberName] string fn = "")
    {
        if (condition)
        {
            Sched.OnFinding(new Finding(Invariants.Warn, what, Current?.Pid ?? 0, fn));
        }
        return condition;
    }

    /// <summary>WARN_ON_ONCE(): as WARN_ON; the explorer reports each finding once anyway.</summary>
    /// <remarks>Context: as WARN_ON().</remarks>
    [KernelSymbol("WARN_ON_ONCE", "include/asm-generic/bug.h")]
    public bool WarnOnOnce(bool condition, string what, [CallerMemberName] string fn = "") =>
        WarnOn(condition, what, fn);

    /// <summary>VM_WARN_ON_ONCE() (CONFIG_DEBUG_VM is on in the model).</summary>
    public bool VmWarnOnOnce(bool condition, string what, [CallerMemberName] string fn = "") =>
        WarnOn(condition, what, fn);

    /// <summary>The kernel log's KERN_WARNING lines (<see cref="PrWarn"/>), oldest first.</summary>
    public IReadOnlyList<string> Dmesg => _dmesg ?? (IReadOnlyList<string>)[];

    private List<string>? _dmesg;

    /// <summary>pr_warn(): a line in the kernel log, not a finding (WARN_ON's backtrace and taint are
    /// what make a warning a finding). Kept in <see cref="Dmesg"/> and shown in traces.</summary>
    /// <remarks>Context: any; does not sleep.</remarks>
    [KernelSymbol("pr_warn", "include/linux/printk.h")]
    public void PrWarn(string message)
    {
        (_dmesg ??= []).Add(message);
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new NoteEffect("pr_warn: " + message));
        }
    }

    /// <summary>Reports a violated invariant that is not a BUG or a WARN (refcount, rmap, …).</summary>
    public void Violation(string invariant, string what, [CallerMemberName] string fn = "") =>
        Sched.OnFinding(new Finding(invariant, what, Current?.Pid ?? 0, fn));

    /// <summary>An oops: a kernel-mode access that faulted. Stops the task like BUG.</summary>
    [DoesNotReturn]
    public void Oops(string what, [CallerMemberName] string fn = "") => OopsEnd(Invariants.KernelOops, what, fn);

    /// <summary>oops_end(), where BUG and a kernel-mode fault both end: the report is the finding,
    /// then make_task_dead() (<see cref="KernelBugException"/>).</summary>
    /// <remarks>Context: any; does not return.</remarks>
    [KernelSymbol("oops_end", "arch/x86/kernel/dumpstack.c")]
    [DoesNotReturn]
    private void OopsEnd(string invariant, string what, string fn)
    {
        var f = new Finding(invariant, what, Current?.Pid ?? 0, fn);
        Sched.OnFinding(f);
        throw new KernelBugException(f) { Sched = Sched };
    }
}

using System.Collections.Immutable;
using System.Globalization;
using Linux;
using MmCheck.Conformance.Native;

namespace MmCheck.Conformance;

/// <summary>
/// Runs a case on one <see cref="Side"/>: resolves symbolic arguments against that side's own
/// results, skips what cannot run the same way on both sides (a process that exited or was never
/// created, an argument whose base operation failed), and formats every result canonically.
/// </summary>
internal static class CaseInterpreter
{
    private enum ProcState
    {
        Missing,
        Alive,
        Exited,
    }

    public static CaseRun Run(ConformanceCase c, Side side, Action<Observation>? onObservation = null)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(side);
        if (c.Validate() is { } invalid)
        {
            throw new ArgumentException($"malformed case {c.Name}: {invalid}", nameof(c));
        }
        var observations = ImmutableArray.CreateBuilder<Observation>(c.Ops.Length);
        try
        {
            try
            {
                side.Begin(c);
            }
            catch (ModelDefectException e)
            {
                return new CaseRun(side.Name, [.. c.Ops.Select((_, i) => new Observation(i, "model defect in set-up: " + e.Message))]);
            }
            var results = new long?[c.Ops.Length];
            var procs = new Dictionary<int, ProcState> { [0] = ProcState.Alive };
            string? aborted = null;
            for (int i = 0; i < c.Ops.Length; i++)
            {
                var op = c.Ops[i];
                if (aborted is not null)
                {
                    observations.Add(new Observation(i, aborted));
                    continue;
                }
                Observation obs;
                try
                {
                    obs = Execute(c, i, op, side, results, procs);
                }
                catch (ModelDefectException e)
                {
                    aborted = "model stopped after a defect at #" + i.ToString(CultureInfo.InvariantCulture);
                    observations.Add(new Observation(i, "model defect: " + e.Message));
                    continue;
                }
                if (side.TakeFindings() is { } findings)
                {
                    obs = obs with { Text = obs.Text + " !! " + findings };
                }
                observations.Add(obs);
                onObservation?.Invoke(obs);
            }
            side.End();
            return new CaseRun(side.Name, observations.ToImmutable());
        }
        catch (Exception e) when (e is NativeOracleException or SideUnavailableException)
        {
            return new CaseRun(side.Name, observations.ToImmutable(), $"{side.Name} side failed: {FirstLine(e.Message)}");
        }
    }

    private static string FirstLine(string s)
    {
        int nl = s.IndexOf('\n', StringComparison.Ordinal);
        return nl < 0 ? s : s[..nl];
    }

    private static Observation Execute(ConformanceCase c, int i, Op op, Side side, long?[] results, Dictionary<int, ProcState> procs)
    {
        var state = procs.GetValueOrDefault(op.Proc);
        if (state != ProcState.Alive)
        {
            return new Observation(i, state == ProcState.Exited ? $"skipped: P{op.Proc} exited" : $"skipped: no P{op.Proc}");
        }
        var a = new ulong[op.Args.Length];
        for (int k = 0; k < a.Length; k++)
        {
            var arg = op.Args[k];
            switch (arg.Base)
            {
                case ArgBase.Absolute:
                    a[k] = unchecked((ulong)arg.Offset);
                    break;
                case ArgBase.Top:
                    a[k] = unchecked(side.Layout.MmapTop + (ulong)arg.Offset);
                    break;
                default:
                    if (results[arg.Op] is not { } r)
                    {
                        return new Observation(i, $"skipped: #{arg.Op} has no result");
                    }
                    a[k] = unchecked((ulong)r + (ulong)arg.Offset);
                    break;
            }
        }
        var layout = side.Layout;
        if (op.Kind is OpKind.Load or OpKind.Store && UncomparableContents(layout, a[0], op.Kind == OpKind.Load ? a[1] : a[2]) is { } what)
        {
            return new Observation(i, $"skipped: the contents of {what} are not compared");
        }
        string text;
        ulong? frame = null;
        switch (op.Kind)
        {
            case OpKind.Mmap:
            {
                long r = side.Mmap(op.Proc, a[0], a[1], (int)a[2], (int)a[3], (long)a[4], (long)a[5]);
                text = FormatAddressResult(layout, r);
                results[i] = Errno.IsErrValue(r) ? null : r;
                break;
            }
            case OpKind.Mremap:
            {
                long r = side.Mremap(op.Proc, a[0], a[1], a[2], (int)a[3], a[4]);
                text = FormatAddressResult(layout, r);
                results[i] = Errno.IsErrValue(r) ? null : r;
                break;
            }
            case OpKind.Munmap:
                text = FormatStatus(side.Munmap(op.Proc, a[0], a[1]));
                break;
            case OpKind.Mprotect:
                text = FormatStatus(side.Mprotect(op.Proc, a[0], a[1], (int)a[2]));
                break;
            case OpKind.Madvise:
                text = FormatStatus(side.Madvise(op.Proc, a[0], a[1], (int)a[2]));
                break;
            case OpKind.MemfdCreate:
            {
                long r = side.MemfdCreate(op.Proc, op.Name!, (int)a[0]);
                text = FormatStatus(r);
                results[i] = r < 0 ? null : r;
                break;
            }
            case OpKind.Ftruncate:
                text = FormatStatus(side.Ftruncate(op.Proc, (long)a[0], (long)a[1]));
                break;
            case OpKind.Close:
                text = FormatStatus(side.Close(op.Proc, (long)a[0]));
                break;
            case OpKind.Fork:
            {
                long r = side.Fork(op.Proc, op.NewProc);
                if (r == 0)
                {
                    procs[op.NewProc] = ProcState.Alive;
                    text = $"ok: P{op.NewProc}";
                }
                else
                {
                    text = FormatStatus(r);
                }
                break;
            }
            case OpKind.Exit:
                side.Exit(op.Proc);
                procs[op.Proc] = ProcState.Exited;
                text = "ok";
                break;
            case OpKind.Load:
            {
                var r = side.Load(op.Proc, a[0], (int)a[1]);
                text = FormatAccess(r, load: true);
                results[i] = r.Signal == 0 ? (long)r.Value : null;
                break;
            }
            case OpKind.Store:
            {
                int size = (int)a[2];
                ulong value = size == 8 ? a[1] : a[1] & ((1UL << (8 * size)) - 1);
                text = FormatAccess(side.Store(op.Proc, a[0], size, value), load: false);
                break;
            }
            case OpKind.Pagemap or OpKind.KpageCount or OpKind.KpageFlags:
                (text, frame) = ObservePage(op, side, a[0]);
                break;
            case OpKind.Smaps:
                text = a[0] >= layout.TaskSize ? "skipped: address out of range" : FormatSmaps(layout, side.Smaps(op.Proc, a[0]));
                break;
            case OpKind.Maps:
                text = FormatMaps(layout, side.Maps(op.Proc));
                break;
            default:
                throw new InvalidOperationException($"unknown op kind {op.Kind}");
        }
        var freed = op.IsObservation ? [] : side.AfterOp(op);
        return new Observation(i, text, frame, freed);
    }

    /// <summary>
    /// Accesses to the special mappings (timekeeping data and vDSO code the model does not have) and to
    /// the oracle's own stack are not compared: their contents are not mm semantics. Decided from the
    /// initial layout, identically on both sides.
    /// </summary>
    private static string? UncomparableContents(ProcessLayout layout, ulong addr, ulong size)
    {
        ulong end = addr + size;
        if (end < addr)
        {
            return null;
        }
        foreach (var sp in layout.Specials)
        {
            if (addr < sp.End && sp.Start < end)
            {
                return sp.Name;
            }
        }
        return addr < layout.StackEnd && layout.StackStart < end ? "[stack]" : null;
    }

    private static (string Text, ulong? Frame) ObservePage(Op op, Side side, ulong addr)
    {
        if (addr >= side.Layout.TaskSize)
        {
            return ("skipped: address out of range", null);
        }
        if (UncomparableContents(side.Layout, addr & ~4095UL, 4096) is { } what)
        {
            // The kernel's [vdso] pages are mapped by every process that touched them: their mapcount
            // (and so the exclusive bit) is the system's, not this case's.
            return ($"skipped: the pages of {what} are not compared", null);
        }
        var pm = side.Pagemap(op.Proc, addr);
        if (!pm.Present)
        {
            string none = pm.Swapped ? "swapped" : "none";
            return (op.Kind == OpKind.Pagemap ? none : "page " + none, null);
        }
        bool zero = side.IsZeroPfn(pm.Pfn);
        ulong? frame = zero ? null : pm.Pfn;
        string id = zero ? "zero" : "frame";
        switch (op.Kind)
        {
            case OpKind.Pagemap:
                return ($"present excl={B(pm.Exclusive)} file={B(pm.File)} {id}", frame);
            case OpKind.KpageCount:
                return ($"{id} count={side.KpageCount(pm.Pfn).ToString(CultureInfo.InvariantCulture)}", frame);
            default:
                ulong flags = side.KpageFlags(pm.Pfn);
                return ($"{id} anon={B(LinuxAbi.HasKpf(flags, LinuxAbi.KPF_ANON))} zero={B(LinuxAbi.HasKpf(flags, LinuxAbi.KPF_ZERO_PAGE))} " +
                        $"mmap={B(LinuxAbi.HasKpf(flags, LinuxAbi.KPF_MMAP))}", frame);
        }
    }

    private static string B(bool b) => b ? "1" : "0";

    /// <summary>An address (relative to MMAP_TOP when near it) or -ERRNO.</summary>
    internal static string FormatAddressResult(ProcessLayout layout, long r) =>
        Errno.IsErrValue(r) ? Errno.Format(r) : layout.FormatAddress((ulong)r);

    /// <summary>"0", "3", "-EINVAL".</summary>
    internal static string FormatStatus(long r) => Errno.Format(r);

    private static string FormatAccess(AccessOutcome r, bool load) => r.Signal switch
    {
        0 => load ? "0x" + r.Value.ToString("x", CultureInfo.InvariantCulture) : "ok",
        LinuxAbi.SIGSEGV => "SIGSEGV",
        LinuxAbi.SIGBUS => "SIGBUS",
        _ => "signal " + r.Signal.ToString(CultureInfo.InvariantCulture),
    };

    private static string FormatSmaps(ProcessLayout layout, SmapsView? s)
    {
        if (s is null)
        {
            return "none";
        }
        var flags = s.VmFlags.Order(StringComparer.Ordinal);
        if (s.End - s.Start > ModelSide.MaxWalkedBytes)
        {
            // The model's smaps walks every page; for a VMA this large only its bounds and flags are compared.
            return $"[{layout.FormatAddress(s.Start)}, {layout.FormatAddress(s.End)}) rss=? anon=? flags={string.Join(',', flags)}";
        }
        return $"[{layout.FormatAddress(s.Start)}, {layout.FormatAddress(s.End)}) rss={s.RssKb.ToString(CultureInfo.InvariantCulture)}kB " +
               $"anon={s.AnonKb.ToString(CultureInfo.InvariantCulture)}kB flags={string.Join(',', flags)}";
    }

    private static string FormatMaps(ProcessLayout layout, IReadOnlyList<MapsLine> maps)
    {
        var lines = maps.Where(m => layout.InMapsWindow(m.Start)).Select(m =>
            $"{layout.FormatAddress(m.Start)}..{layout.FormatAddress(m.End)} {m.Perms} {m.Offset.ToString("x", CultureInfo.InvariantCulture)}" +
            (m.Name.Length > 0 ? " " + m.Name : "")).ToList();
        return lines.Count == 0 ? "(empty)" : string.Join(" | ", lines);
    }
}

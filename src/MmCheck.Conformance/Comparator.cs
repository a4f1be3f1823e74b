using System.Globalization;

namespace MmCheck.Conformance;

/// <summary>The first observation on which the model and the real kernel differ.</summary>
/// <param name="Op">Index of the operation.</param>
/// <param name="Model">The model's observation, as text.</param>
/// <param name="Native">The real kernel's observation, as text.</param>
/// <param name="Reason">What differs: "result" for the texts, or the frame-identity rule that broke.</param>
public sealed record Disagreement(int Op, string Model, string Native, string Reason)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"#{Op}: model '{Model}' vs native '{Native}' ({Reason})");
}

/// <summary>
/// Compares two runs observation by observation. Texts must be equal. Frames (PFNs) are compared
/// up to renaming, by a bijection between model and native frames built as observations arrive,
/// with frame lifetimes taken into account:
/// <list type="bullet">
/// <item>A model frame that is still alive (the model has not freed it since it was paired) must
/// show the same native frame every time: pages that share a frame on one side share one on the
/// other, across processes and over time (a page the model keeps in place the kernel must not have
/// copied).</item>
/// <item>A native frame paired with a model frame that is still alive cannot show up for another
/// model frame (the kernel shares what the model keeps apart).</item>
/// <item>A fresh model frame (never seen, or reallocated after the model freed it) must not map to
/// a native frame already seen, unless the kernel evidently freed that frame too: /proc/kpageflags
/// showed it free, or past any use (<c>NativeSide.LooksFreed</c>), after its model partner was
/// freed, or the partner died in an mmap, which both frees and allocates (MAP_FIXED over populated
/// pages), where a free-and-reuse inside one call cannot be seen from outside. Otherwise the model
/// allocated a new frame where the kernel kept (reused) the old one.</item>
/// <item>The zero page corresponds to the zero page (that is part of the text: "zero").</item>
/// </list>
/// </summary>
public sealed class Comparator
{
    private readonly Dictionary<ulong, ulong> _m2n = [];
    private readonly Dictionary<ulong, ulong> _n2m = [];
    private readonly Dictionary<ulong, ulong> _m2nNativeFreed = [];
    /// <summary>Native frames whose model partner was freed: the op it died in, and whether the native
    /// frame has been seen free since.</summary>
    private readonly Dictionary<ulong, (int DiedAt, bool SeenFree)> _orphans = [];

    /// <summary>The first disagreement between the runs of <paramref name="c"/>, or null if they agree.</summary>
    public static Disagreement? Compare(ConformanceCase c, CaseRun model, CaseRun native)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(native);
        var cmp = new Comparator();
        int n = Math.Min(model.Observations.Length, native.Observations.Length);
        for (int i = 0; i < n; i++)
        {
            if (cmp.Step(c, model.Observations[i], native.Observations[i]) is { } d)
            {
                return d;
            }
        }
        if (model.Observations.Length != native.Observations.Length)
        {
            return new Disagreement(n, model.Observations.Length > n ? model.Observations[n].Text : "(no observation)",
                native.Observations.Length > n ? native.Observations[n].Text : "(no observation)", "one side stopped early");
        }
        return null;
    }

    /// <summary>Compares one pair of observations of the same operation and updates the frame bijection.</summary>
    public Disagreement? Step(ConformanceCase c, Observation model, Observation native)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(native);
        int op = model.Op;
        if (!string.Equals(model.Text, native.Text, StringComparison.Ordinal))
        {
            return new Disagreement(op, model.Text, native.Text, "result");
        }
        if (model.Frame.HasValue != native.Frame.HasValue)
        {
            return new Disagreement(op, model.ToString(), native.ToString(), "a frame on one side only");
        }
        if (model.Frame is { } m && native.Frame is { } nf && CheckFrames(c, op, m, nf) is { } why)
        {
            return new Disagreement(op, model.ToString(), native.ToString(), why);
        }
        // The operation's frees end pairings (model) or give evidence of reuse (native).
        foreach (var dead in model.FreedFrames)
        {
            if (_m2n.Remove(dead, out var partner))
            {
                _n2m.Remove(partner);
                _orphans[partner] = (op, false);
            }
            _m2nNativeFreed.Remove(dead);
        }
        foreach (var freed in native.FreedFrames)
        {
            if (_orphans.TryGetValue(freed, out var o))
            {
                _orphans[freed] = o with { SeenFree = true };
            }
            else if (_n2m.Remove(freed, out var partner))
            {
                // The kernel freed a frame whose model partner lives on: if the model's page shows up
                // again, the kernel must show the same frame, which it no longer can.
                _m2n.Remove(partner);
                _m2nNativeFreed[partner] = freed;
            }
        }
        return null;
    }

    private string? CheckFrames(ConformanceCase c, int op, ulong m, ulong n)
    {
        if (_m2nNativeFreed.TryGetValue(m, out var gone))
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"the model still has this page in frame 0x{m:x}, but the kernel freed its frame 0x{gone:x} earlier");
        }
        if (_m2n.TryGetValue(m, out var paired))
        {
            return paired == n ? null : string.Create(CultureInfo.InvariantCulture,
                $"the model keeps the page in frame 0x{m:x} seen before, the kernel moved it from frame 0x{paired:x} to another");
        }
        if (_n2m.TryGetValue(n, out var other))
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"the kernel's frame 0x{n:x} already holds the page the model keeps in frame 0x{other:x}; the model uses a different frame");
        }
        if (_orphans.TryGetValue(n, out var orphan))
        {
            bool diedInMmap = orphan.DiedAt >= 0 && orphan.DiedAt < c.Ops.Length && c.Ops[orphan.DiedAt].Kind == OpKind.Mmap;
            if (!orphan.SeenFree && !diedInMmap)
            {
                return string.Create(CultureInfo.InvariantCulture,
                    $"the model allocated a new frame where the kernel kept frame 0x{n:x} (the model freed its old frame at #{orphan.DiedAt}; the kernel never freed it)");
            }
            _orphans.Remove(n);
        }
        _m2n[m] = n;
        _n2m[n] = m;
        return null;
    }
}

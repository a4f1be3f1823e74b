using System.Collections.Immutable;
using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance;

/// <summary>A shrunk case and the disagreement it still shows.</summary>
public sealed record ShrinkResult(ConformanceCase Case, Disagreement Disagreement, int Runs);

/// <summary>
/// Delta debugging of a disagreeing case: cut everything after the first difference, then remove
/// operations in shrinking chunks (with whatever depends on them: operations using their results,
/// and a removed fork's whole child process), then simplify arguments (drop MAP_POPULATE and
/// MAP_NORESERVE, NULL instead of a hint, one page instead of many, page-aligned offsets, small
/// values), re-running both sides each time and keeping a change only if the case still
/// disagrees on an operation of the same kind for the same kind of reason.
/// </summary>
public sealed class Shrinker
{
    private const long P = (long)PAGE_SIZE;
    private readonly Func<ConformanceCase, Disagreement?> _check;
    private readonly int _maxRuns;
    private int _runs;

    /// <param name="check">Runs both sides on a case and compares them.</param>
    /// <param name="maxRuns">Budget of checks.</param>
    public Shrinker(Func<ConformanceCase, Disagreement?> check, int maxRuns = 300)
    {
        ArgumentNullException.ThrowIfNull(check);
        _check = check;
        _maxRuns = maxRuns;
    }

    public ShrinkResult Shrink(ConformanceCase c, Disagreement original)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(original);
        _runs = 0;
        var kind = c.Ops[original.Op].Kind;
        bool frameReason = original.Reason != "result";
        var best = c;
        var bestD = original;

        bool Try(ConformanceCase cand)
        {
            if (_runs >= _maxRuns || cand.Validate() is not null)
            {
                return false;
            }
            _runs++;
            Disagreement? d;
            try
            {
                d = _check(cand);
            }
            catch (Exception e) when (e is ModelDefectException or SideUnavailableException or Native.NativeOracleException)
            {
                return false;
            }
            if (d is null || d.Op >= cand.Ops.Length || cand.Ops[d.Op].Kind != kind || (d.Reason != "result") != frameReason)
            {
                return false;
            }
            best = cand;
            bestD = d;
            return true;
        }

        // Nothing after the first difference matters.
        if (original.Op + 1 < c.Ops.Length)
        {
            // Unless the difference does not reproduce, in which case there is nothing to shrink.
            Try(Truncate(c, original.Op + 1));
        }

        bool progress = true;
        while (progress && _runs < _maxRuns)
        {
            progress = RemoveChunks(ref best, Try) | SimplifyArgs(ref best, Try);
        }
        return new ShrinkResult(best, bestD, _runs);
    }

    private static ConformanceCase Truncate(ConformanceCase c, int count) => c with { Ops = c.Ops[..count] };

    private static bool RemoveChunks(ref ConformanceCase best, Func<ConformanceCase, bool> tryCase)
    {
        bool any = false;
        int n = 2;
        while (best.Ops.Length > 1)
        {
            int len = best.Ops.Length;
            int chunk = Math.Max(1, len / n);
            bool removed = false;
            for (int start = 0; start < len; start += chunk)
            {
                var cand = Remove(best, Enumerable.Range(start, Math.Min(chunk, len - start)));
                if (cand.Ops.Length > 0 && cand.Ops.Length < len && tryCase(cand))
                {
                    best = cand;
                    removed = any = true;
                    break;
                }
            }
            if (removed)
            {
                n = Math.Max(n - 1, 2);
            }
            else if (chunk == 1)
            {
                break;
            }
            else
            {
                n = Math.Min(n * 2, len);
            }
        }
        return any;
    }

    /// <summary>Removes ops and, transitively, every op that uses one of their results or runs in a
    /// process a removed fork created; renumbers the remaining references.</summary>
    public static ConformanceCase Remove(ConformanceCase c, IEnumerable<int> indices)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(indices);
        var gone = new HashSet<int>(indices);
        var goneProcs = new HashSet<int>();
        for (int i = 0; i < c.Ops.Length; i++)
        {
            var op = c.Ops[i];
            if (!gone.Contains(i) && (goneProcs.Contains(op.Proc) || op.Args.Any(a => a.Base == ArgBase.Result && gone.Contains(a.Op))))
            {
                gone.Add(i);
            }
            if (gone.Contains(i) && op.Kind == OpKind.Fork)
            {
                goneProcs.Add(op.NewProc);
            }
        }
        var map = new Dictionary<int, int>();
        var ops = ImmutableArray.CreateBuilder<Op>();
        for (int i = 0; i < c.Ops.Length; i++)
        {
            if (gone.Contains(i))
            {
                continue;
            }
            map[i] = ops.Count;
            var op = c.Ops[i];
            ops.Add(op with { Args = [.. op.Args.Select(a => a.Base == ArgBase.Result ? a with { Op = map[a.Op] } : a)] });
        }
        return c with { Ops = ops.ToImmutable() };
    }

    private static bool SimplifyArgs(ref ConformanceCase best, Func<ConformanceCase, bool> tryCase)
    {
        bool any = false;
        for (int i = 0; i < best.Ops.Length; i++)
        {
            foreach (var simpler in Simplifications(best.Ops[i]))
            {
                var cand = best with { Ops = best.Ops.SetItem(i, simpler) };
                if (tryCase(cand))
                {
                    best = cand;
                    any = true;
                    break;
                }
            }
        }
        return any;
    }

    private static IEnumerable<Op> Simplifications(Op op)
    {
        var a = op.Args;
        Op With(int i, Arg v) => op with { Args = a.SetItem(i, v) };
        switch (op.Kind)
        {
            case OpKind.Mmap:
                if (a[3].IsAbsolute && (a[3].Value & (MAP_POPULATE | MAP_NORESERVE)) != 0)
                {
                    yield return With(3, Arg.Abs(a[3].Value & ~(long)(MAP_POPULATE | MAP_NORESERVE)));
                }
                if (a[3].IsAbsolute && (a[3].Value & (MAP_FIXED | MAP_FIXED_NOREPLACE)) == 0 && a[0] != Arg.Abs(0))
                {
                    yield return With(0, Arg.Abs(0));
                }
                foreach (var s in SmallerLength(a[1]))
                {
                    yield return With(1, s);
                }
                if (a[2].IsAbsolute && a[2].Value != (PROT_READ | PROT_WRITE))
                {
                    yield return With(2, Arg.Abs(PROT_READ | PROT_WRITE));
                }
                break;
            case OpKind.Munmap or OpKind.Mprotect or OpKind.Madvise:
                foreach (var s in SmallerLength(a[1]))
                {
                    yield return With(1, s);
                }
                break;
            case OpKind.Store:
                if (a[1].IsAbsolute && a[1].Value is not (0 or 1))
                {
                    yield return With(1, Arg.Abs(1));
                }
                break;
        }
        for (int k = 0; k < a.Length; k++)
        {
            if (a[k].Base != ArgBase.Absolute && a[k].Offset % P != 0)
            {
                yield return With(k, a[k].WithOffset(a[k].Offset - a[k].Offset % P));
            }
            if (a[k].Base == ArgBase.Result && a[k].Offset != 0 && a[k].Offset % P == 0)
            {
                yield return With(k, a[k].WithOffset(a[k].Offset > 0 ? a[k].Offset - P : a[k].Offset + P));
            }
        }
    }

    private static IEnumerable<Arg> SmallerLength(Arg len)
    {
        if (!len.IsAbsolute || len.Value <= P)
        {
            yield break;
        }
        yield return Arg.Abs(P);
        if (len.Value % P == 0 && len.Value > 2 * P)
        {
            yield return Arg.Abs(len.Value / 2 / P * P);
        }
        if (len.Value % P != 0)
        {
            yield return Arg.Abs(len.Value - len.Value % P);
        }
    }
}

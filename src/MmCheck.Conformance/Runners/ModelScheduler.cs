using System.Globalization;
using Linux;

namespace MmCheck.Conformance;

/// <summary>
/// The model's scheduler for conformance runs: the direct scheduler (every point continues at
/// once, sleepers yield in FIFO order) plus a record of every frame the model frees, taken from the
/// kernel's effect reports (a folio's refcount reaching zero, a frame returned to the allocator).
/// The comparator needs those to tell a frame freed and reused from one kept.
/// </summary>
internal sealed class ModelScheduler : DirectScheduler
{
    private readonly HashSet<ulong> _freed = [];

    public ModelScheduler()
    {
        RecordsEffects = true;
    }

    public override void OnEffect(Effect effect)
    {
        switch (effect)
        {
            case FolioCountEffect { Counter: "refcount", New: <= 0 } f:
                _freed.Add(f.Pfn);
                break;
            case NoteEffect n when n.Text.StartsWith("pfn ", StringComparison.Ordinal) && n.Text.EndsWith(" freed", StringComparison.Ordinal):
                if (ulong.TryParse(n.Text.AsSpan(4, n.Text.Length - 4 - 6), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong pfn))
                {
                    _freed.Add(pfn);
                }
                break;
        }
    }

    /// <summary>The frames freed since the last call.</summary>
    public ulong[] TakeFreed()
    {
        var r = _freed.Order().ToArray();
        _freed.Clear();
        return r;
    }

    /// <summary>Runs <paramref name="f"/> as task <paramref name="t"/> to completion and returns its
    /// result; a task that does not finish, or an exception out of the model, is a model defect.</summary>
    public T Run<T>(TaskStruct t, Func<ValueTask<T>> f)
    {
        T? result = default;
        bool done = false;
        int defects = Defects.Count;
        Run(t, async () =>
        {
            result = await f();
            done = true;
        });
        if (Defects.Count > defects)
        {
            var failure = Defects[defects];
            throw new ModelDefectException($"{t}: {failure.GetType().Name}: {failure.Message}", failure);
        }
        if (!done)
        {
            var why = Findings.Count > 0 ? Findings[^1].ToString() : "it never finished";
            throw new ModelDefectException($"{t} did not complete: {why}");
        }
        return result!;
    }
}

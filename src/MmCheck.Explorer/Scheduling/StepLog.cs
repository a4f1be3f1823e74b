using Linux;

namespace MmCheck.Explorer;

/// <summary>One step of an execution: a task resumed at a scheduling point and ran to the next.</summary>
internal struct StepRecord
{
    public int Thread;
    public SchedPointKind Kind;
    /// <summary>The task resumed after sleeping (woken, a lock handed over).</summary>
    public bool AfterSleep;
    /// <summary>Switching to this task preempted another that could have gone on.</summary>
    public bool Preempted;
    /// <summary>The step wrote an object of a kind the registered invariants read, lock words aside
    /// (the state they check may have changed).</summary>
    public bool Wrote;
    public ulong Obj;
    public string Function;
    /// <summary>The lock primitive the step began with ("down_read"), when traces are drawn.</summary>
    public string? LockCall;
    public int FootStart;
    public int FootLen;
    public int DataStart;
    public int DataLen;
    /// <summary>1-based index of the step within its thread (the vector-clock component).</summary>
    public int Seq;
    /// <summary>The previous step of the same thread, -1 for its first.</summary>
    public int Prev;
    /// <summary>The step that spawned this thread (for its first step) or woke it, else -1.</summary>
    public int SpawnSrc;
    public int WakeSrc;
    /// <summary>The controller's branching node before this step, -1 when the step was forced.</summary>
    public int Node;
}

/// <summary>A data choice made inside a step.</summary>
internal readonly record struct DataRecord(string What, int Count, int Value);

/// <summary>
/// The record of one execution: steps, their footprints (object ids, bit 63 set for a write) and
/// data choices, in flat arrays reused from one execution to the next so that the hot path does
/// not allocate.
/// </summary>
internal sealed class StepLog
{
    public const ulong WriteBit = 1UL << 63;

    /// <summary>
    /// The state the invariant checks read, as one object that every step after which they run
    /// writes (a step that wrote an object of a kind some registered invariant reads). The checks
    /// may read anything such a step changed, so two such steps are dependent whatever their own
    /// footprints: DPOR then explores both orders of any two of them that nothing else orders, and
    /// those steps happen in one total order in every trace. A state the checks see in some
    /// interleaving is the state after a prefix of that order, which every interleaving of the
    /// trace passes through and checks (the page-table checks wait while a page-table lock's holder
    /// is mid-update, which the checked steps alone decide: see Kernel.PageTablesBusy). Without it
    /// a violation seen only in an intermediate state of an unexplored linearisation is missed (the
    /// revoked BAR still mapped before its VMA is linked, in seed000-jason-populate-before-link).
    /// </summary>
    public const ulong CheckedState = ((ulong)ObjId.Kind.None << ObjId.KindShift) | ObjId.IdMask;

    public StepRecord[] Steps = new StepRecord[256];
    public int Count;
    /// <summary>Leading steps kept from the previous execution, which this one replays: they are
    /// not recorded again (see <see cref="Rewind"/>).</summary>
    public int Kept;
    public ulong[] Foot = new ulong[1024];
    public int FootCount;
    public DataRecord[] Data = new DataRecord[16];
    public int DataCount;
    public readonly List<(int Step, Finding Finding)> Findings = [];
    /// <summary>Effects per step, only when effects are recorded.</summary>
    public List<Effect>?[]? Effects;

    /// <summary>
    /// Starts a new execution that keeps the first <paramref name="keep"/> steps of the last one
    /// (their records, footprints and data choices): it replays the same choices to that point, and
    /// the model is deterministic. Findings are dropped (those of replayed steps are not reported).
    /// </summary>
    public void Rewind(int keep)
    {
        if (keep > Count)
        {
            throw new InvalidOperationException($"keeping {keep} steps of {Count}");
        }
        Count = 0;
        Kept = keep;
        if (keep > 0)
        {
            ref var last = ref Steps[keep - 1];
            FootCount = last.FootStart + last.FootLen;
            DataCount = last.DataStart + last.DataLen;
        }
        else
        {
            FootCount = 0;
            DataCount = 0;
        }
        Findings.Clear();
        if (Effects is not null)
        {
            // Kept steps are never recorded with effects (the explorer keeps none while it records them).
            Array.Clear(Effects);
        }
    }

    /// <summary>Begins step <see cref="Count"/>, one kept from the last execution.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref StepRecord Replay() => ref Steps[Count++];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref StepRecord Add()
    {
        if (Count == Steps.Length)
        {
            Array.Resize(ref Steps, Steps.Length * 2);
        }
        return ref Steps[Count++];
    }

    public void AddFoot(ulong entry)
    {
        if (FootCount == Foot.Length)
        {
            Array.Resize(ref Foot, Foot.Length * 2);
        }
        Foot[FootCount++] = entry;
    }

    public void AddData(DataRecord d)
    {
        if (DataCount == Data.Length)
        {
            Array.Resize(ref Data, Data.Length * 2);
        }
        Data[DataCount++] = d;
    }

    public ReadOnlySpan<ulong> FootOf(int step) => Foot.AsSpan(Steps[step].FootStart, Steps[step].FootLen);

    public void AddEffect(int step, Effect e)
    {
        if (Effects is null || Effects.Length <= step)
        {
            var n = new List<Effect>?[Math.Max(step + 1, Math.Max(256, (Effects?.Length ?? 0) * 2))];
            Effects?.CopyTo(n, 0);
            Effects = n;
        }
        (Effects[step] ??= []).Add(e);
    }

    /// <summary>Whether two footprints conflict: a common object that one of them writes.</summary>
    public static bool Conflict(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b)
    {
        foreach (ulong x in a)
        {
            ulong ox = x & ~WriteBit;
            foreach (ulong y in b)
            {
                if ((y & ~WriteBit) == ox && ((x | y) & WriteBit) != 0)
                {
                    return true;
                }
            }
        }
        return false;
    }
}

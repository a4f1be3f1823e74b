using Linux;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// A scheduler for tests of the seam itself. It runs tasks as the direct scheduler does, but
/// records every scheduling point, can preempt the running task at every point (round robin), and
/// checks that the seam is complete: a lock may only become held right after a LockAcquire point
/// on that very lock, so no acquisition bypasses the scheduler.
/// </summary>
internal sealed class SeamScheduler(bool preemptAtEveryPoint) : DirectScheduler
{
    private readonly Dictionary<TaskStruct, (SchedPointKind Kind, ulong Obj, HashSet<LockBase> Held)> _last = [];

    public List<(TaskStruct Task, SchedPointKind Kind, ulong Obj, string Function)> Points { get; } = [];
    /// <summary>Locks that became held without a LockAcquire point on them just before.</summary>
    public List<string> SeamViolations { get; } = [];
    public int Preemptions { get; private set; }

    public override SchedYield Point(SchedPointKind kind, ulong obj, string function)
    {
        var t = Current!;
        CheckSeam(t);
        Points.Add((t, kind, obj, function));
        _last[t] = (kind, obj, [.. t.HeldLocks.Select(h => h.Lock)]);
        if (preemptAtEveryPoint && OthersRunnable)
        {
            Preemptions++;
            return new SchedYield(this);
        }
        return SchedYield.Continue;
    }

    private void CheckSeam(TaskStruct t)
    {
        var held = t.HeldLocks.Select(h => h.Lock).ToList();
        var before = _last.TryGetValue(t, out var l) ? l.Held : [];
        foreach (var lk in held.Where(h => !before.Contains(h)))
        {
            // __folio_set_locked() of a folio nobody can see yet (shmem_alloc_and_add_folio()) is no
            // acquisition anyone can contend; lockdep is told of it once the folio is in the cache.
            if (lk.Class == LockClass.FolioLock && l.Kind == SchedPointKind.LockRelease &&
                Points.LastOrDefault(x => x.Task == t).Function == "shmem_add_to_page_cache")
            {
                continue;
            }
            if (l.Kind != SchedPointKind.LockAcquire || l.Obj != lk.Obj)
            {
                var recent = string.Join(", ", Points.Where(x => x.Task == t).TakeLast(4).Select(x => $"{x.Kind}@{x.Function}"));
                SeamViolations.Add($"{t} came to hold {lk.Name} without a LockAcquire point on it (last points: {recent})");
            }
        }
    }

    public override SchedYield Sleep(object channel, string function)
    {
        var t = Current!;
        CheckSeam(t);
        _last[t] = (SchedPointKind.Preempt, 0, [.. t.HeldLocks.Select(h => h.Lock)]);
        return base.Sleep(channel, function);
    }

    public override void Spawn(TaskStruct task, Func<ValueTask> body, string name) =>
        base.Spawn(task, async () =>
        {
            await body();
            CheckSeam(task);
        }, name);

    /// <summary>Runs every spawned task to its end; false if one is left sleeping.</summary>
    public bool RunAll() => RunUntilIdle();

    /// <summary>Runs one body to completion as <paramref name="t"/> (with whatever else is queued).</summary>
    public T Run<T>(TaskStruct t, Func<ValueTask<T>> f)
    {
        T? result = default;
        bool done = false;
        Run(t, async () =>
        {
            result = await f();
            done = true;
        });
        Assert.True(done, $"{t} did not complete: {string.Join("; ", Findings)}");
        return result!;
    }
}

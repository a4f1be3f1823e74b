namespace Linux;

/// <summary>A task body that did not run to its end (a deadlock, or BUG in the model).</summary>
public sealed class TaskIncompleteException(string message, Exception? inner = null) : Exception(message, inner);

// Running kernel code without the explorer: unit tests, benchmarks and conformance use these.
public sealed partial class Kernel
{
    /// <summary>Runs <paramref name="f"/> as task <paramref name="t"/> on the direct scheduler and returns its result.</summary>
    public T Run<T>(TaskStruct t, Func<ValueTask<T>> f)
    {
        if (Sched is not DirectScheduler ds)
        {
            throw new InvalidOperationException("Kernel.Run needs the direct scheduler; the explorer runs tasks itself");
        }
        T? result = default;
        bool done = false;
        int defects = ds.Defects.Count;
        ds.Run(t, async () =>
        {
            result = await f();
            done = true;
        });
        if (ds.Defects.Count > defects)
        {
            var e = ds.Defects[defects];
            throw new TaskIncompleteException($"{t} did not complete: a defect of the model: {e.Message}", e);
        }
        if (!done)
        {
            throw new TaskIncompleteException($"{t} did not complete: {string.Join("; ", ds.Findings)}");
        }
        return result!;
    }

    /// <summary>As <see cref="Run{T}"/> for a body without a result.</summary>
    public void Run(TaskStruct t, Func<ValueTask> f) => Run(t, async () =>
    {
        await f();
        return true;
    });

    /// <summary>Findings the direct scheduler collected.</summary>
    public IReadOnlyList<Finding> Findings => (Sched as DirectScheduler)?.Findings ?? (IReadOnlyList<Finding>)[];
}

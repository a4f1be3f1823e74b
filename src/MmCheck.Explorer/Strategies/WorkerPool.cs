namespace MmCheck.Explorer;

/// <summary>
/// Runs workers on dedicated threads: no synchronization context and the default task scheduler,
/// so that the kernel's async continuations run inline on the worker that resumed them; and no
/// execution context flows (the model uses no AsyncLocal), so that resuming a suspended kernel
/// frame is a plain call rather than a switch into the captured context at every level.
/// </summary>
internal static class WorkerPool
{
    /// <summary>Runs <paramref name="body"/>(worker index) on <paramref name="workers"/> threads;
    /// rethrows the first failure after calling <paramref name="onFailure"/>. Returns the CPU time
    /// the workers used (zero where the platform does not tell).</summary>
    public static TimeSpan Run(int workers, Action<int> body, Action? onFailure = null)
    {
        workers = Math.Max(1, workers);
        var errors = new Exception?[workers];
        var cpu = new long[workers];
        var threads = new Thread[workers];
        for (int w = 0; w < workers; w++)
        {
            int id = w;
            threads[w] = new Thread(() =>
            {
                using var noFlow = ExecutionContext.SuppressFlow();
                long start = ThreadCpuTime.Nanoseconds();
                try
                {
                    body(id);
                    cpu[id] = ThreadCpuTime.Nanoseconds() - start;
                }
#pragma warning disable CA1031 // rethrown on the calling thread below
                catch (Exception e)
#pragma warning restore CA1031
                {
                    errors[id] = e;
                    onFailure?.Invoke();
                }
            }, 16 << 20)
            {
                IsBackground = true,
                Name = $"mmcheck-explorer-{id}",
            };
            threads[w].UnsafeStart();
        }
        foreach (var t in threads)
        {
            t.Join();
        }
        foreach (var e in errors)
        {
            if (e is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();
            }
        }
        return TimeSpan.FromTicks(cpu.Sum() / 100);
    }

    /// <summary>Runs <paramref name="f"/> on a dedicated thread (see the class remarks) and returns its result.</summary>
    public static T Isolated<T>(Func<T> f)
    {
        T result = default!;
        Run(1, _ => result = f());
        return result;
    }
}

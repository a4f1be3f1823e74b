namespace MmCheck.Explorer;

/// <summary>
/// Runs workers on dedicated threads: no synchronization context and the default task scheduler,
/// so that the kernel's async continuations run inline on the worker that resumed them; and no
/// execution context flows (the model uses no AsyncLocal), so that resuming a suspended kernel
/// frame is a plain call rather than a switch into the captured context at every level.
/// </summary>
/// <remarks>
/// A run on one thread (an exploration on one worker, the probe, a minimisation, each replay that
/// checks a counterexample) takes a thread the pool keeps for the life of the process: a new
/// thread starts with empty per-thread pools (<c>RecycledArrays</c>: page tables, mem_map chunks,
/// TLB sets; the idle <see cref="ExplorerScheduler"/>), so its first kernel allocated all of them
/// afresh, most of a megabyte for a scenario explored in one schedule. The pools hand out zeroed
/// arrays, so what a thread ran before changes no result. A run on several workers starts fresh
/// threads (<see cref="StartFresh"/>).
/// </remarks>
internal static class WorkerPool
{
    /// <summary>Idle threads, most recently used first (its pools are the warmest). Guarded by itself.</summary>
    private static readonly Stack<Worker> s_idle = new();
    private static int s_created;

    /// <summary>Runs <paramref name="body"/>(worker index) on <paramref name="workers"/> threads;
    /// rethrows the first failure after calling <paramref name="onFailure"/>. Returns the CPU time
    /// the workers used (zero where the platform does not tell).</summary>
    public static TimeSpan Run(int workers, Action<int> body, Action? onFailure = null)
    {
        workers = Math.Max(1, workers);
        var errors = new Exception?[workers];
        var cpu = new long[workers];
        var done = new Countdown(workers);
        for (int w = 0; w < workers; w++)
        {
            int id = w;
            Action job = () =>
            {
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
            };
            if (workers == 1)
            {
                Take().Start(job, done);
            }
            else
            {
                StartFresh(job, done, id);
            }
        }
        done.Wait();
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

    /// <summary>A thread for one worker of a parallel run: kept threads, woken from a semaphore,
    /// were placed by the OS next to the thread that woke them rather than on the idle CPU, and
    /// two workers got a median 1.62x where fresh threads get 1.78x (docs/performance.md).</summary>
    private static void StartFresh(Action job, Countdown done, int id) => StartThread(() =>
    {
        using var noFlow = ExecutionContext.SuppressFlow();
        job();
        done.Signal();
    }, $"mmcheck-explorer-parallel-{id}");

    /// <summary>A background thread with room for the kernel's deep async paths, started without
    /// the caller's execution context.</summary>
    private static void StartThread(ThreadStart body, string name) =>
        new Thread(body, 16 << 20) { IsBackground = true, Name = name }.UnsafeStart();

    /// <summary>An idle thread, or a new one when none is idle (a worker's own nested run, such as
    /// a replay started from inside an exploration, takes another thread).</summary>
    private static Worker Take()
    {
        lock (s_idle)
        {
            if (s_idle.Count > 0)
            {
                return s_idle.Pop();
            }
        }
        return new Worker(Interlocked.Increment(ref s_created));
    }

    /// <summary>The jobs of one run still going (a monitor, not a CountdownEvent: nothing to
    /// dispose while the last worker may still be inside its signal).</summary>
    private sealed class Countdown(int count)
    {
        private int _left = count;

        public void Signal()
        {
            lock (this)
            {
                if (--_left == 0)
                {
                    Monitor.PulseAll(this);
                }
            }
        }

        public void Wait()
        {
            lock (this)
            {
                while (_left > 0)
                {
                    Monitor.Wait(this);
                }
            }
        }
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _go = new(0);
        private Action? _job;
        private Countdown? _done;

        public Worker(int id) => StartThread(Loop, $"mmcheck-explorer-{id}");

        public void Start(Action job, Countdown done)
        {
            _job = job;
            _done = done;
            _go.Release();
        }

        private void Loop()
        {
            using var noFlow = ExecutionContext.SuppressFlow();
            while (true)
            {
                _go.Wait();
                var job = _job!;
                var done = _done!;
                _job = null;
                _done = null;
                job();
                // Idle again before the caller hears of it, so that its next run finds this thread.
                lock (s_idle)
                {
                    s_idle.Push(this);
                }
                done.Signal();
            }
        }
    }
}

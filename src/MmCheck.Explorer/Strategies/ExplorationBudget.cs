namespace MmCheck.Explorer;

/// <summary>
/// Limits shared by every worker and phase of one exploration: schedules, wall clock, stopping at
/// the first violation; and the throttled progress reports.
/// </summary>
internal sealed class ExplorationBudget
{
    private readonly long _maxSchedules;
    private readonly TimeSpan? _timeLimit;
    private readonly bool _stopOnFirst;
    private readonly IProgress<ExplorationProgress>? _progress;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private readonly object _lock = new();
    private long _schedules;
    private long _steps;
    private int _violations;
    private long _lastReportTicks;
    private volatile string? _stopReason;
    private TimeSpan? _firstViolation;

    public ExplorationBudget(long maxSchedules, TimeSpan? timeLimit, bool stopOnFirst, IProgress<ExplorationProgress>? progress)
    {
        _maxSchedules = maxSchedules;
        _timeLimit = timeLimit;
        _stopOnFirst = stopOnFirst;
        _progress = progress;
    }

    public string Phase { get; set; } = "";

    public TimeSpan Elapsed => _clock.Elapsed;

    public long Schedules => Interlocked.Read(ref _schedules);

    public string? StopReason => _stopReason;

    public bool Stopped => _stopReason is not null;

    public TimeSpan? FirstViolation
    {
        get
        {
            lock (_lock)
            {
                return _firstViolation;
            }
        }
    }

    public bool ShouldStop()
    {
        if (_stopReason is not null)
        {
            return true;
        }
        if (_timeLimit is { } limit && _clock.Elapsed >= limit)
        {
            Stop("time limit");
            return true;
        }
        return false;
    }

    public void Stop(string reason) => _stopReason ??= reason;

    /// <summary>One execution ran.</summary>
    public void Count(int steps)
    {
        long n = Interlocked.Increment(ref _schedules);
        Interlocked.Add(ref _steps, steps);
        if (n >= _maxSchedules)
        {
            Stop("schedule budget");
        }
        if (_progress is not null && (n & 63) == 0)
        {
            Report(false);
        }
    }

    /// <summary>An execution showed a new violation.</summary>
    public void ViolationFound()
    {
        lock (_lock)
        {
            _firstViolation ??= _clock.Elapsed;
            _violations++;
        }
        if (_stopOnFirst)
        {
            Stop("first violation");
        }
    }

    public void Report(bool force)
    {
        if (_progress is null)
        {
            return;
        }
        long now = _clock.ElapsedTicks;
        lock (_lock)
        {
            if (!force && now - _lastReportTicks < System.Diagnostics.Stopwatch.Frequency / 5)
            {
                return;
            }
            _lastReportTicks = now;
        }
        _progress.Report(new ExplorationProgress(Phase, Schedules, Interlocked.Read(ref _steps), _violations, _clock.Elapsed));
    }
}

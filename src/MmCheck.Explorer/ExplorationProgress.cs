namespace MmCheck.Explorer;

/// <summary>A progress report (at most a few per second) for progress bars.</summary>
public sealed record ExplorationProgress(string Phase, long Schedules, long Steps, int Violations, TimeSpan Elapsed);

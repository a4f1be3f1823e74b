using System.Runtime.InteropServices;

namespace MmCheck.Explorer;

/// <summary>
/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID): what "per core" means on a machine
/// shared with other processes, where wall time also counts the time others had the core. Used by
/// the explorer's workers and by the benchmarks.
/// </summary>
public static class ThreadCpuTime
{
    private const int ClockThreadCputimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGettime(int clock, out Timespec ts);

    /// <summary>Nanoseconds of CPU the calling thread has used; 0 where the clock is unavailable.</summary>
    public static long Nanoseconds() =>
        OperatingSystem.IsLinux() && ClockGettime(ClockThreadCputimeId, out var ts) == 0 ? (ts.Sec * 1_000_000_000) + ts.Nsec : 0;
}

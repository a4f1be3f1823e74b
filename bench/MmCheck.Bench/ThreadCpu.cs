using System.Runtime.InteropServices;

namespace MmCheck.Bench;

/// <summary>CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID): what "per core" means on a
/// shared machine, where wall time also counts the time other processes had the core.</summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCputimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGettime(int clock, out Timespec ts);

    /// <summary>Seconds of CPU this thread has used, or NaN where the clock is unavailable.</summary>
    public static double Seconds()
    {
        if (!OperatingSystem.IsLinux() || ClockGettime(ClockThreadCputimeId, out var ts) != 0)
        {
            return double.NaN;
        }
        return ts.Sec + ts.Nsec / 1e9;
    }
}

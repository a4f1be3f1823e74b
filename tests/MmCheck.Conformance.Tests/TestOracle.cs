using MmCheck.Conformance.Native;
using Xunit.Abstractions;
using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance.Tests;

/// <summary>Starting the oracle, or skipping with a logged reason where this machine cannot run it.</summary>
internal static class TestOracle
{
    public const ulong P = PAGE_SIZE;
    public const int RW = PROT_READ | PROT_WRITE;
    public const int PrivAnon = MAP_PRIVATE | MAP_ANONYMOUS;

    /// <summary>Starts an oracle, or returns null after logging why the test is skipped.</summary>
    public static NativeOracle? Start(ITestOutputHelper output, bool needPfns = false)
    {
        var availability = NativeOracle.Availability();
        if (!availability.CanRun || (needPfns && !availability.CanReadPfns))
        {
            output.WriteLine($"SKIPPED: native oracle unavailable: {availability.Reason}");
            return null;
        }
        return NativeOracle.Start();
    }

    /// <summary>mmap(NULL, pages, prot, MAP_PRIVATE|MAP_ANONYMOUS) that must succeed.</summary>
    public static ulong MapAnon(this NativeOracle o, int p, ulong pages, int prot = RW)
    {
        var ret = o.Mmap(p, 0, pages * P, prot, PrivAnon);
        Assert.True(ret > 0, $"mmap failed: errno {-ret}");
        return (ulong)ret;
    }

    public static void MustStore(this NativeOracle o, int p, ulong addr, ulong value, int size = 8) =>
        Assert.Equal(AccessResult.Ok(0), o.Store(p, addr, size, value));

    public static ulong MustLoad(this NativeOracle o, int p, ulong addr, int size = 8)
    {
        var r = o.Load(p, addr, size);
        Assert.Equal(0, r.Signal);
        return r.Value;
    }
}

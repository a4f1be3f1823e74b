using MmCheck.Conformance.Native;
using Xunit.Abstractions;

namespace MmCheck.Conformance.Tests;

/// <summary>Shared set-up of the conformance-engine tests: one native runner per test class that needs it.</summary>
internal static class ConformanceKit
{
    /// <summary>A native runner, or null (after logging why) when this machine cannot run the oracle
    /// with PFNs visible.</summary>
    public static NativeRunner? Native(ITestOutputHelper output)
    {
        var availability = NativeOracle.Availability();
        if (!availability.IsAvailable)
        {
            output.WriteLine($"SKIPPED: native oracle unavailable: {availability.Reason}");
            return null;
        }
        return new NativeRunner();
    }

    public static void Log(ITestOutputHelper output, ConformanceCase c, CaseRun model, CaseRun native)
    {
        output.WriteLine(c.ToText());
        foreach (var (m, n) in Conformance.Pair(model, native))
        {
            output.WriteLine(m.Text == n.Text ? $"  {m}" : $"  {m}   <>   {n}");
        }
        if (native.SkipReason is not null)
        {
            output.WriteLine("native skipped: " + native.SkipReason);
        }
    }
}

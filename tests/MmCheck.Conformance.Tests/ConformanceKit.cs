using MmCheck.Conformance.Native;
using Xunit.Abstractions;

namespace MmCheck.Conformance.Tests;

/// <summary>Shared set-up of the conformance-engine tests: one native runner per test class that needs it.</summary>
internal static class ConformanceKit
{
    /// <summary>The cow-basic-after-fork example of design.md.</summary>
    public const string CowExample = """
        MM cow-basic-after-fork
        (* cow.c "Basic COW after fork()": a parent write after fork() stays out of the child. *)
        kernel = current
        arch = x86_64
        {
          process P;
          P: buf = mmap(NULL, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
          P: store(buf, 0x11);
        }
        thread T0 in P {
          fork: C = fork();
          store(buf, 0x22);
          r0 = load(buf);
        }
        thread T1 in C after T0.fork {
          r1 = load(buf);
        }
        forall (T0:r0 = 0x22 /\ T1:r1 = 0x11)
        expect always
        """;

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

using MmCheck.Conformance.Native;
using Xunit.Abstractions;
using static MmCheck.Conformance.Native.LinuxAbi;
using static MmCheck.Conformance.Tests.TestOracle;

namespace MmCheck.Conformance.Tests;

public sealed class AccessTests(ITestOutputHelper output)
{
    [Fact]
    public void Store_then_load_returns_the_value_for_every_size_and_unaligned()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var a = o.MapAnon(0, 2);
        o.MustStore(0, a, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, o.MustLoad(0, a));
        Assert.Equal(0x55667788UL, o.MustLoad(0, a, 4));
        Assert.Equal(0x7788UL, o.MustLoad(0, a, 2));
        Assert.Equal(0x88UL, o.MustLoad(0, a, 1));
        Assert.Equal(0x44556677UL, o.MustLoad(0, a + 1, 4));

        var straddle = a + P - 3;                   // an 8-byte access across the page boundary
        o.MustStore(0, straddle, 0xa1b2c3d4e5f60718);
        Assert.Equal(0xa1b2c3d4e5f60718UL, o.MustLoad(0, straddle));
        o.MustStore(0, a + 5, 0xbeef, 2);
        Assert.Equal(0xbeefUL, o.MustLoad(0, a + 5, 2));
    }

    [Fact]
    public void Load_from_an_unmapped_address_gives_SIGSEGV_and_the_subject_keeps_working()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var a = o.MapAnon(0, 1);
        var hole = a - 16 * P;
        var r = o.Load(0, hole + 8, 8);
        Assert.Equal(SIGSEGV, r.Signal);
        Assert.Equal(SEGV_MAPERR, r.SignalCode);
        Assert.Equal(hole + 8, r.FaultAddress);
        Assert.Equal(SIGSEGV, o.Load(0, 0, 1).Signal);   // NULL
        o.MustStore(0, a, 42);
        Assert.Equal(42UL, o.MustLoad(0, a));
    }

    [Fact]
    public void Store_to_PROT_READ_memory_gives_SIGSEGV_but_loads_succeed()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var a = o.MapAnon(0, 1, PROT_READ);
        var r = o.Store(0, a, 4, 1);
        Assert.Equal(SIGSEGV, r.Signal);
        Assert.Equal(SEGV_ACCERR, r.SignalCode);
        Assert.Equal(0UL, o.MustLoad(0, a));
        Assert.Equal(0, o.Mprotect(0, a, P, RW));
        o.MustStore(0, a, 7);
        Assert.Equal(0, o.Mprotect(0, a, P, PROT_NONE));
        Assert.Equal(SIGSEGV, o.Load(0, a, 8).Signal);
        Assert.Equal(0, o.Mprotect(0, a, P, PROT_READ));
        Assert.Equal(7UL, o.MustLoad(0, a));
    }
}

using MmCheck.Litmus.Binding;
using MmCheck.Litmus.Runtime;

namespace MmCheck.Litmus.Tests;

/// <summary>A scope's registers: what the runtime reads, writes, copies at a fork and lists in the
/// final state.</summary>
public class RegistersTests
{
    [Fact]
    public void RegistersKeepTheOrderTheyWereFirstSetInAndALaterSetReplacesTheValue()
    {
        var r = new Registers();
        for (int i = 0; i < 9; i++)
        {
            r["r" + i] = LitValue.Of((ulong)i);
        }
        r["r3"] = LitValue.Of(33);
        Assert.Equal(9, r.Count);
        Assert.Equal(Enumerable.Range(0, 9).Select(i => "r" + i), r.Select(kv => kv.Key));
        Assert.True(r.TryGetValue("r3", out var v));
        Assert.Equal(33UL, v.Unsigned);
        Assert.True(r.TryGetValue("r8", out v));
        Assert.Equal(8UL, v.Unsigned);
        Assert.False(r.TryGetValue("R3", out v));
        Assert.Equal(LitValue.None, v);
    }

    [Fact]
    public void TryAddKeepsAValueAlreadySet()
    {
        var r = new Registers();
        Assert.True(r.TryAdd("a", LitValue.Of(1)));
        Assert.False(r.TryAdd("a", LitValue.Of(2)));
        Assert.True(r.TryGetValue("a", out var v));
        Assert.Equal(1UL, v.Unsigned);
    }

    [Fact]
    public void AThreadScopeSeesItsProcessRegistersAndAForkCopiesTheViewFlattened()
    {
        var process = new Env(null);
        process.Vars["p"] = LitValue.Of(1);
        process.Vars["x"] = LitValue.Of(2);
        var thread = new Env(process);
        thread.Vars["x"] = LitValue.Of(3);
        Assert.True(thread.TryLookup("p", out var v));
        Assert.Equal(1UL, v.Unsigned);
        Assert.True(thread.TryLookup("x", out v));
        Assert.Equal(3UL, v.Unsigned);
        var copy = thread.Snapshot();
        Assert.Null(copy.Parent);
        Assert.Equal([("p", 1UL), ("x", 3UL)], copy.Vars.Select(kv => (kv.Key, kv.Value.Unsigned)));
    }
}

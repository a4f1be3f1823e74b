using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

public class UnitTests
{
    [Fact]
    public void MessagesDifferingOnlyInNumbersAreOneClass()
    {
        Assert.Equal(
            ViolationClass.Of(Invariants.RefCount, "mm#1 maps freed pfn 106 at 7ffff7ffe000"),
            ViolationClass.Of(Invariants.RefCount, "mm#2 maps freed pfn 1a3 at 7ffff7ffd000"));
        Assert.NotEqual(
            ViolationClass.Of(Invariants.RefCount, "mm#1 maps freed pfn 106 at 7ffff7ffe000"),
            ViolationClass.Of(Invariants.RmapComplete, "mm#1 maps freed pfn 106 at 7ffff7ffe000"));
        // Thread names are words, not numbers.
        Assert.NotEqual(ViolationClass.Of("x", "T0 sleeps"), ViolationClass.Of("x", "T1 sleeps"));
    }

    [Fact]
    public void ALockOrderCycleIsOneClassWhicheverEdgeClosedIt()
    {
        string a = "possible circular locking dependency: A → B → C → A; T0 took B in f while holding A (taken in g)";
        string b = "possible circular locking dependency: C → A → B → C; T1 took A in h while holding C (taken in k)";
        Assert.Equal(ViolationClass.Of(Invariants.LockOrder, a), ViolationClass.Of(Invariants.LockOrder, b));
        Assert.Equal(["A", "B", "C"], ViolationClass.CycleNodes(a)!);
    }

    [Fact]
    public void OutcomesCompareByValue()
    {
        var a = Outcome.Of(("T0:r0", "1"), ("x", "2"));
        var b = Outcome.Of(("T0:r0", "1"), ("x", "2"));
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, Outcome.Of(("x", "2"), ("T0:r0", "1")));
        Assert.Equal("T0:r0=1 x=2", a.ToString());
        Assert.Equal("2", a["x"]);
        Assert.Null(a["y"]);
    }

    [Fact]
    public void AnOutcomeCopiedWithOtherValuesHashesItsOwnValues()
    {
        var a = Outcome.Of(("x", "1"));
        int hashOfA = a.GetHashCode();
        var b = a with { Values = [new("x", "2")] };
        Assert.NotEqual(a, b);
        Assert.Equal(Outcome.Of(("x", "2")), b);
        Assert.Equal(Outcome.Of(("x", "2")).GetHashCode(), b.GetHashCode());
        Assert.Equal(hashOfA, a.GetHashCode());
    }

    [Fact]
    public void ConditionsQuantifyOverOutcomes()
    {
        var outcomes = new[] { Outcome.Of(("x", "1")), Outcome.Of(("x", "2")) };
        Assert.True(new Condition(Quantifier.Exists, o => o["x"] == "1").Evaluate(outcomes).Holds);
        Assert.False(new Condition(Quantifier.NotExists, o => o["x"] == "1").Evaluate(outcomes).Holds);
        Assert.False(new Condition(Quantifier.Forall, o => o["x"] == "1").Evaluate(outcomes).Holds);
        Assert.True(new Condition(Quantifier.Forall, o => o["x"] != "3").Evaluate(outcomes).Holds);
    }

    [Fact]
    public void SeedsForSchedulesAreFixed()
    {
        // The same schedule index draws the same decisions on every run and platform.
        Assert.Equal(Prng.ForSchedule(42, 1, 7), Prng.ForSchedule(42, 1, 7));
        Assert.NotEqual(Prng.ForSchedule(42, 1, 7), Prng.ForSchedule(42, 1, 8));
        Assert.NotEqual(Prng.ForSchedule(42, 1, 7), Prng.ForSchedule(42, 2, 7));
        var p = new Prng(1);
        for (int i = 0; i < 1000; i++)
        {
            Assert.InRange(p.Next(3), 0, 2);
        }
    }
}

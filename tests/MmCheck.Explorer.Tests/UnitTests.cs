using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

public class UnitTests
{
    /// <summary>Steps of threads 0..2, each touching some of four objects (write bit set or not).</summary>
    private static StepLog LogOf(List<(int Thread, ulong[] Foot)> steps)
    {
        var log = new StepLog();
        var seq = new int[3];
        var last = new[] { -1, -1, -1 };
        for (int i = 0; i < steps.Count; i++)
        {
            ref var st = ref log.Add();
            st.Thread = steps[i].Thread;
            st.Seq = ++seq[st.Thread];
            st.Prev = last[st.Thread];
            last[st.Thread] = i;
            st.SpawnSrc = -1;
            st.WakeSrc = -1;
            st.Node = i;
            st.FootStart = log.FootCount;
            foreach (ulong f in steps[i].Foot)
            {
                log.AddFoot(f);
            }
            st.FootLen = log.FootCount - st.FootStart;
        }
        return log;
    }

    [Fact]
    public void ARewoundRaceDetectorFindsWhatAFreshOneFinds()
    {
        var rng = new Random(5);
        (int, ulong[]) RandomStep()
        {
            var foot = new List<ulong>();
            for (ulong o = 1; o <= 4; o++)
            {
                if (rng.Next(3) == 0)
                {
                    foot.Add(rng.Next(2) == 0 ? o : o | StepLog.WriteBit);
                }
            }
            return (rng.Next(3), foot.ToArray());
        }
        int checkedRaces = 0;
        for (int round = 0; round < 300; round++)
        {
            var first = Enumerable.Range(0, rng.Next(1, 14)).Select(_ => RandomStep()).ToList();
            int keep = rng.Next(0, first.Count + 1);
            var second = first.Take(keep).Concat(Enumerable.Range(0, rng.Next(0, 10)).Select(_ => RandomStep())).ToList();
            var log1 = LogOf(first);
            var log2 = LogOf(second);

            // The explorer's way: the detector saw the last execution, is rewound to the steps in
            // common and sees the rest of this one.
            var rewound = new RaceDetector();
            for (int i = 0; i < first.Count; i++)
            {
                rewound.AddStep(log1, i, 3, analyze: true, (_, _) => { });
            }
            rewound.Rewind(keep);
            var got = new List<(int, int, ulong)>();
            for (int i = keep; i < second.Count; i++)
            {
                int step = i;
                rewound.AddStep(log2, i, 3, analyze: true, (c, initials) => got.Add((step, c, initials)));
            }

            var fresh = new RaceDetector();
            var want = new List<(int, int, ulong)>();
            for (int i = 0; i < second.Count; i++)
            {
                int step = i;
                fresh.AddStep(log2, i, 3, analyze: i >= keep, (c, initials) => want.Add((step, c, initials)));
            }
            Assert.Equal(want, got);
            checkedRaces += want.Count;
            for (int a = 0; a < second.Count; a++)
            {
                for (int b = a + 1; b < second.Count; b++)
                {
                    Assert.Equal(fresh.HappensBefore(log2, a, b), rewound.HappensBefore(log2, a, b));
                }
            }
        }
        // The rounds met races after the steps kept, or the comparison would prove nothing.
        Assert.True(checkedRaces > 100, $"{checkedRaces} races");
    }

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

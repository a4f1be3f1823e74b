using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

/// <summary>DPOR must see exactly what plain DFS sees: the same final states and the same violations.</summary>
public class DporSoundnessTests
{
    private static (HashSet<string> Outcomes, HashSet<string> Violations, ExplorationResult R) Run(ExplorationTarget t, bool dpor, int split = int.MaxValue, int workers = 1)
    {
        var r = Explorer.Explore(t, new ExplorationOptions
        {
            Strategy = Strategy.Dfs,
            Dpor = dpor,
            SplitDepth = split,
            Workers = workers,
            Minimize = false,
            MaxSchedules = dpor ? 100_000 : 6_000,
        });
        return ([.. r.Outcomes.Select(o => o.Outcome.ToString())],
            [.. r.Violations.Select(v => ViolationClass.Of(v.Invariant, v.Message))], r);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void DporFindsTheSameStatesAsPlainDfs(int seed)
    {
        var t = RandomPrograms.Make(seed);
        var dpor = Run(t, dpor: true);
        Assert.True(dpor.R.Complete);
        var plain = Run(t, dpor: false);
        if (plain.R.Complete)
        {
            Assert.Equal(plain.Outcomes.Order(), dpor.Outcomes.Order());
            Assert.Equal(plain.Violations.Order(), dpor.Violations.Order());
            Assert.True(dpor.R.Schedules <= plain.R.Schedules, $"dpor {dpor.R.Schedules} > plain {plain.R.Schedules}");
        }
        else
        {
            Assert.Superset(plain.Outcomes, dpor.Outcomes);
            Assert.Superset(plain.Violations, dpor.Violations);
        }

        // Without a shared top (one sequential unit), or on two workers: the same.
        var local = Run(t, dpor: true, split: 0);
        Assert.Equal(dpor.Outcomes.Order(), local.Outcomes.Order());
        Assert.Equal(dpor.Violations.Order(), local.Violations.Order());
        var two = Run(t, dpor: true, workers: 2);
        Assert.Equal(TestKit.Fingerprint(dpor.R), TestKit.Fingerprint(two.R));
    }

    public static TheoryData<int> Seeds()
    {
        var d = new TheoryData<int>();
        for (int i = 1; i <= 30; i++)
        {
            d.Add(i);
        }
        return d;
    }
}

using MmCheck.Explorer;
using MmCheck.Litmus.Runner;

namespace MmCheck.Litmus.Tests;

/// <summary>
/// DPOR against plain DFS on the bundled scenarios whose full interleaving space is small enough
/// to enumerate: the kernel's own paths (fork, COW, mremap, madvise, the resource tree, /dev/mem's
/// mmap and a region claim's revoke) must report every shared access they make, or DPOR would
/// prune a schedule that ends elsewhere. Same final states, same invariants broken.
/// </summary>
public class DporOnBundledScenariosTests
{
    [Theory]
    [InlineData("cow/basic-cow-parent-writes.litmus")]
    [InlineData("cow/cow-after-mprotect.litmus")]
    [InlineData("cow/mremap-move.litmus")]
    [InlineData("cow/shared-anon.litmus")]
    [InlineData("cow/wipeonfork.litmus")]
    [InlineData("seeds/seed000-unfixed-v5.10.litmus")]
    [InlineData("seeds/seed000-fixed-v5.12-check-and-revoke.litmus")]
    public void Dpor_reaches_the_final_states_and_violations_of_every_interleaving(string relative)
    {
        var s = GoldenTests.LoadBundled(relative);
        var options = new ExplorationOptions { Strategy = Strategy.Dfs, Workers = 1, Minimize = false, MaxSchedules = 100_000 };
        var dpor = ScenarioRunner.Explore(s, options).Exploration;
        var plain = ScenarioRunner.Explore(s, options with { Dpor = false }).Exploration;
        Assert.True(dpor.Complete && plain.Complete);
        // The point of the comparison: the reduction left out schedules.
        Assert.True(plain.Schedules > dpor.Schedules, $"{plain.Schedules} plain against {dpor.Schedules}");
        Assert.Equal(plain.Outcomes.Select(o => o.Outcome.ToString()), dpor.Outcomes.Select(o => o.Outcome.ToString()));
        // Each violation by its class (the explorer's own grouping: the message with the numbers
        // blanked out): which page or address a class's first report names depends on the order
        // the schedules ran in.
        Assert.Equal(Classes(plain), Classes(dpor));
    }

    private static IEnumerable<string> Classes(ExplorationResult r) =>
        r.Violations.Select(v => ViolationClass.Of(v.Invariant, v.Message)).Distinct().Order(StringComparer.Ordinal);
}

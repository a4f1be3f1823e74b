using System.Globalization;
using System.Text.Json;
using MmCheck.Tests;
using Xunit.Abstractions;
using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance.Tests;

/// <summary>The runners against this machine's kernel, and the goal: random cases agree.</summary>
public sealed class ConformanceTests(ITestOutputHelper output)
{
    [Fact]
    public void The_model_mirrors_the_real_process_layout()
    {
        using var native = ConformanceKit.Native(output);
        if (native is null)
        {
            return;
        }
        var b = new CaseBuilder("layout");
        b.Maps(0);
        b.Smaps(0, Arg.Top(0));
        b.Smaps(0, Arg.Top(0x6000));
        int fd = b.MemfdCreate(0, "first");
        b.Mmap(0, Arg.Abs(0), PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
        b.Mmap(0, Arg.Abs(0x1000), 1024 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);   // hint: the binary is in the way
        b.Mmap(0, Arg.Abs(0x1000), PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);          // hint: rounded to 64 KiB
        b.Maps(0);
        var c = b.Build();
        var n = native.Run(c);
        var m = new ModelRunner(native.Layout).Run(c);
        ConformanceKit.Log(output, c, m, n);
        Assert.Null(Comparator.Compare(c, m, n));
        Assert.Equal("3", n.Observations[fd].Text);
        Assert.Contains("[vvar]", n.Observations[0].Text, StringComparison.Ordinal);
        Assert.Contains("[vdso]", n.Observations[0].Text, StringComparison.Ordinal);
        Assert.Equal("top-0x1000", n.Observations[4].Text);
    }

    [Fact]
    public void The_design_cow_example_agrees_with_the_kernel()
    {
        using var native = ConformanceKit.Native(output);
        if (native is null)
        {
            return;
        }
        var lowered = LitmusLowering.Lower(DesignExamples.CowBasicAfterFork);
        Assert.True(lowered.Ok, lowered.Error);
        var outcome = Conformance.RunOne(lowered.Case!, new ModelRunner(native.Layout), native);
        Assert.Equal(CaseVerdict.Agreed, outcome.Verdict);
        var run = native.Run(lowered.Case!);
        Assert.Equal(["top-0x1000", "ok", "ok: P1", "0x11", "ok", "0x22"], run.Observations.Select(o => o.Text));
    }

    [Fact]
    public void Sharing_after_fork_and_copy_on_write_compare_frame_by_frame()
    {
        using var native = ConformanceKit.Native(output);
        if (native is null)
        {
            return;
        }
        var b = new CaseBuilder("cow-frames");
        int buf = b.Mmap(0, Arg.Abs(0), 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        b.Store(0, Arg.Result(buf), 0x11);
        b.Load(0, Arg.Result(buf, (long)PAGE_SIZE));
        int child = b.Fork(0);
        foreach (int p in new[] { 0, child })
        {
            b.Pagemap(p, Arg.Result(buf));
            b.KpageCount(p, Arg.Result(buf));
            b.KpageFlags(p, Arg.Result(buf));
            b.Pagemap(p, Arg.Result(buf, (long)PAGE_SIZE));
        }
        b.Store(child, Arg.Result(buf), 0x22);
        b.Pagemap(0, Arg.Result(buf));
        b.Pagemap(child, Arg.Result(buf));
        b.Exit(child);
        b.Load(child, Arg.Result(buf));          // skipped on both sides: P1 exited
        b.Store(0, Arg.Result(buf), 0x33);       // reuses the page: no other mapper
        b.Pagemap(0, Arg.Result(buf));
        b.Smaps(0, Arg.Result(buf));
        var c = b.Build();
        var n = native.Run(c);
        var m = new ModelRunner(native.Layout).Run(c);
        ConformanceKit.Log(output, c, m, n);
        Assert.Null(Comparator.Compare(c, m, n));
        var texts = n.Observations.Select(o => o.Text).ToList();
        Assert.Equal("present excl=0 file=0 frame", texts[4]);
        Assert.Equal("frame count=2", texts[5]);
        Assert.Equal("frame anon=1 zero=0 mmap=1", texts[6]);
        Assert.Equal("present excl=0 file=0 zero", texts[7]);
        Assert.Equal("skipped: P1 exited", texts[16]);
        Assert.Equal(n.Observations[4].Frame, n.Observations[8].Frame);       // shared after fork
        Assert.NotEqual(n.Observations[13].Frame, n.Observations[14].Frame);  // the child copied
    }

    /// <summary>
    /// The disagreements the random runs found, as minimal cases (their explorable forms are in
    /// scenarios/conformance/): MADV_DOFORK on [vdso] (VM_DONTEXPAND) succeeds on 6.18, which refuses
    /// VM_IO ([vvar]) only; a shared anonymous mapping larger than RAM is refused by
    /// shmem_acct_size() unless MAP_NORESERVE.
    /// </summary>
    [Fact]
    public void The_disagreements_found_by_the_random_runs_agree_now()
    {
        using var native = ConformanceKit.Native(output);
        if (native is null)
        {
            return;
        }
        var layout = native.Layout;
        long Offset(string name) => (long)(layout.Specials.Single(s => s.Name == name).Start - layout.MmapTop);
        var b = new CaseBuilder("found-by-random-runs");
        int dofork = b.Madvise(0, Arg.Top(Offset("[vdso]")), PAGE_SIZE, MADV_DOFORK);
        int vvar = b.Madvise(0, Arg.Top(Offset("[vvar]")), PAGE_SIZE, MADV_DOFORK);
        ulong huge = 2 * layout.MemTotalBytes;
        int shared = b.Mmap(0, Arg.Abs(0), huge, PROT_READ, MAP_SHARED | MAP_ANONYMOUS);
        int noreserve = b.Mmap(0, Arg.Abs(0), huge, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE);
        b.Munmap(0, Arg.Result(noreserve), huge);
        var c = b.Build();
        var n = native.Run(c);
        var m = new ModelRunner(layout).Run(c);
        ConformanceKit.Log(output, c, m, n);
        Assert.Null(Comparator.Compare(c, m, n));
        Assert.Equal("0", n.Observations[dofork].Text);
        Assert.Equal("-EINVAL", n.Observations[vvar].Text);
        Assert.Equal("-ENOMEM", n.Observations[shared].Text);
        Assert.StartsWith("top-", n.Observations[noreserve].Text, StringComparison.Ordinal);
    }

    /// <summary>
    /// random-s38-1508: after fork and the child's copy, MADV_FREE leaves the parent's page in this
    /// CPU's lazyfree batch, whose reference makes the parent's write fault copy it; unless a
    /// MAP_POPULATE in between drained the batch (populate_vma_page_range() ends with
    /// lru_add_drain()), and the page is reused in place; so does truncating a mapped memfd page
    /// (folio_batch_release()). munmap() of another populated mapping drains nothing, and neither
    /// does MAP_POPULATE of a PROT_NONE mapping, refused before the drain (random-s5-1351). The model
    /// copied after the populate and the truncate, and reused after the munmap and the PROT_NONE
    /// populate.
    /// </summary>
    [Theory]
    [InlineData("none", false)]
    [InlineData("MAP_POPULATE", true)]
    [InlineData("PROT_NONE MAP_POPULATE", false)]
    [InlineData("munmap", false)]
    [InlineData("ftruncate", true)]
    public void A_write_after_madvise_free_reuses_the_page_only_after_a_call_that_drains_the_batch(string between, bool reused)
    {
        using var native = ConformanceKit.Native(output);
        if (native is null)
        {
            return;
        }
        var b = new CaseBuilder("madvise-free-then-" + between);
        const int Rw = PROT_READ | PROT_WRITE, Anon = MAP_PRIVATE | MAP_ANONYMOUS;
        int buf = b.Mmap(0, Arg.Abs(0), PAGE_SIZE, Rw, Anon);
        int other = b.Mmap(0, Arg.Abs(0), PAGE_SIZE, Rw, Anon);
        b.Store(0, Arg.Result(buf), 1);
        b.Store(0, Arg.Result(other), 1);
        int child = b.Fork(0);
        b.Store(child, Arg.Result(buf), 2);
        b.Madvise(0, Arg.Result(buf), PAGE_SIZE, MADV_FREE);
        int before = b.Pagemap(0, Arg.Result(buf));
        switch (between)
        {
            case "MAP_POPULATE":
                b.Mmap(0, Arg.Abs(0), PAGE_SIZE, Rw, Anon | MAP_POPULATE);
                break;
            case "PROT_NONE MAP_POPULATE":
                b.Mmap(0, Arg.Abs(0), PAGE_SIZE, PROT_NONE, Anon | MAP_POPULATE);
                break;
            case "munmap":
                b.Munmap(0, Arg.Result(other), PAGE_SIZE);
                break;
            case "ftruncate":
                int fd = b.MemfdCreate(0, "m");
                b.Ftruncate(0, Arg.Result(fd), (long)PAGE_SIZE);
                b.Store(0, Arg.Result(b.Mmap(0, Arg.Abs(0), PAGE_SIZE, Rw, MAP_SHARED, Arg.Result(fd))), 1);
                b.Ftruncate(0, Arg.Result(fd), 0);
                break;
        }
        b.Store(0, Arg.Result(buf), 3);
        int after = b.Pagemap(0, Arg.Result(buf));
        var c = b.Build();
        var n = native.Run(c);
        var m = new ModelRunner(native.Layout).Run(c);
        ConformanceKit.Log(output, c, m, n);
        Assert.Null(Comparator.Compare(c, m, n));
        Assert.Equal(reused, n.Observations[before].Frame == n.Observations[after].Frame);
    }

    /// <summary>
    /// random-s1-1483: pages shared since fork and then MADV_FREEd are held by the lazyfree batch,
    /// so the write fault of their last mapper copies. After every fork the oracle's own subjects
    /// write their stack and .bss pages, shared since that fork; a write fault on one still waiting in
    /// the lru_add batch drains every batch (mm/memory.c:wp_can_reuse_anon_folio()), and whether one
    /// was waiting depended on the oracle, not on the case: the kernel reused the page in 5 of 8
    /// runs. The oracle now moves the lru_add batch to the LRU before each fork (the model's state
    /// at all times), and the kernel copies in every run, as the model does. Also: a MADV_FREE in
    /// one process and the drain another's MADV_FREE starts share the oracle's one CPU
    /// (<see cref="Linux.KernelConfig.OneCpu"/>, random-s2-413).
    /// </summary>
    [Fact]
    public void Forks_of_the_oracle_drain_none_of_the_cases_batches()
    {
        using var native = ConformanceKit.Native(output);
        if (native is null)
        {
            return;
        }
        for (int run = 0; run < 3; run++)
        {
            var b = new CaseBuilder("fork-keeps-lazyfree-batch");
            int buf = b.Mmap(0, Arg.Abs(0), 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
            var second = Arg.Result(buf, (long)PAGE_SIZE);
            int p1 = b.Fork(0);
            b.Madvise(0, Arg.Result(buf), 2 * PAGE_SIZE, MADV_FREE);
            b.Store(0, second, 1, 4);
            int before = b.Pagemap(p1, second);
            int p2 = b.Fork(0);
            b.Load(p2, Arg.Result(buf), 1);
            int p3 = b.Fork(p1);
            b.Exit(p1);
            b.Store(p3, second, 1, 2);
            int after = b.Pagemap(p3, second);
            var c = b.Build();
            var n = native.Run(c);
            var m = new ModelRunner(native.Layout).Run(c);
            ConformanceKit.Log(output, c, m, n);
            Assert.Null(Comparator.Compare(c, m, n));
            Assert.NotEqual(n.Observations[before].Frame, n.Observations[after].Frame);
        }
    }

    /// <summary>
    /// THE GOAL: 300 random cases with seed 1, model and kernel agree on every observation. The
    /// comparison is not weakened to get there: a disagreement found here is a model bug to fix
    /// (they are listed in the test output with their shrunk litmus).
    /// </summary>
    [Fact]
    public void Random_cases_seed_1_agree_with_the_kernel()
    {
        var report = RunAndLog(300, 1);
        if (report is null)
        {
            return;
        }
        Assert.True(report.Disagreements.Count == 0, report.ToText());
        Assert.All(report.Skipped, s => Assert.StartsWith("feature missing in the model", s.Reason, StringComparison.Ordinal));
    }

    /// <summary>
    /// The bundled corpus (scenarios/): every scenario that can run on this machine agrees; the others
    /// (devices, historical kernels and variants, interleaving-dependent expectations) are skipped
    /// because they cannot be lowered, with the reason.
    /// </summary>
    [Fact]
    public void The_bundled_scenarios_agree_with_the_kernel()
    {
        string? dir = null;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null && dir is null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "MmCheck.slnx")))
            {
                dir = Path.Combine(d.FullName, "scenarios");
            }
        }
        Assert.NotNull(dir);
        var report = Conformance.Run([dir], 0, 0);
        output.WriteLine(report.ToText());
        Assert.True(report.Disagreements.Count == 0, report.ToText());
        var lowerable = Directory.EnumerateFiles(dir, "*.litmus", SearchOption.AllDirectories)
            .Count(f => LitmusLowering.Lower(File.ReadAllText(f), f).Ok);
        Assert.True(lowerable >= 10, $"only {lowerable} bundled scenarios lower");
        if (report.Unavailable is not null)
        {
            Assert.All(report.Skipped, s => Assert.True(s.Reason == report.Unavailable || s.Reason.StartsWith("cannot lower: ", StringComparison.Ordinal)));
            return;
        }
        Assert.Equal(lowerable, report.Agreed);
        Assert.All(report.Skipped, s => Assert.StartsWith("cannot lower: ", s.Reason, StringComparison.Ordinal));
    }

    /// <summary>
    /// The long run: MMCHECK_CONFORM_CASES cases (default 2000) for each seed in MMCHECK_CONFORM_SEEDS
    /// (default "1,2,3,4,5"). Run it with
    /// <c>dotnet test tests/MmCheck.Conformance.Tests --filter Category=LongRun</c>.
    /// </summary>
    [Fact]
    [Trait("Category", "LongRun")]
    public void Long_run_of_random_cases()
    {
        if (Environment.GetEnvironmentVariable("MMCHECK_CONFORM_CASES") is null &&
            Environment.GetEnvironmentVariable("MMCHECK_CONFORM_SEEDS") is null)
        {
            output.WriteLine("SKIPPED: set MMCHECK_CONFORM_CASES and/or MMCHECK_CONFORM_SEEDS to run the long conformance run");
            return;
        }
        int count = int.Parse(Environment.GetEnvironmentVariable("MMCHECK_CONFORM_CASES") ?? "2000", CultureInfo.InvariantCulture);
        var seeds = (Environment.GetEnvironmentVariable("MMCHECK_CONFORM_SEEDS") ?? "1,2,3,4,5")
            .Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture));
        int disagreements = 0;
        foreach (int seed in seeds)
        {
            disagreements += RunAndLog(count, seed)?.Disagreements.Count ?? 0;
        }
        Assert.Equal(0, disagreements);
    }

    private ConformanceReport? RunAndLog(int count, int seed)
    {
        var report = Conformance.RunRandom(count, seed);
        output.WriteLine($"seed {seed}: " + report.ToText());
        if (report.Unavailable is not null)
        {
            output.WriteLine("SKIPPED: " + report.Unavailable);
            Assert.Equal(count, report.Skipped.Count);
            return null;
        }
        Assert.Equal(count, report.Cases);
        Assert.Equal(count, report.Agreed + report.Skipped.Count + report.Disagreements.Count);
        return report;
    }

    [Fact]
    public void The_report_has_the_json_shape_of_the_design()
    {
        var report = Conformance.RunCases([LitmusLowering.Lower(DesignExamples.CowBasicAfterFork).Case!], new ConformanceOptions { Shrink = false });
        using var doc = JsonDocument.Parse(report.ToJson());
        var root = doc.RootElement;
        Assert.Equal(1, root.GetProperty("cases").GetInt32());
        Assert.Equal(JsonValueKind.Number, root.GetProperty("agreed").ValueKind);
        Assert.Equal(JsonValueKind.Array, root.GetProperty("skipped").ValueKind);
        Assert.Equal(JsonValueKind.Array, root.GetProperty("disagreements").ValueKind);
        Assert.Equal(1, root.GetProperty("agreed").GetInt32() + root.GetProperty("skipped").GetArrayLength() +
                        root.GetProperty("disagreements").GetArrayLength());
    }

    [Fact]
    public void Scenario_files_that_cannot_be_lowered_are_skipped_with_the_reason()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mmcheck-conform-test-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "cow.litmus"), DesignExamples.CowBasicAfterFork);
            File.WriteAllText(Path.Combine(dir, "dev.litmus"), "MM dev\n{\n  device G = pci(bar0 = 16 pages);\n  process P;\n}\n");
            var report = Conformance.Run([dir], 0, 0, new ConformanceOptions { Shrink = false });
            Assert.Equal(2, report.Cases);
            Assert.Contains(report.Skipped, s => s.Case.EndsWith("dev.litmus", StringComparison.Ordinal) && s.Reason.StartsWith("cannot lower", StringComparison.Ordinal));
            output.WriteLine(report.ToText());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Without_the_oracle_every_case_is_skipped_with_the_reason()
    {
        // A cache directory that cannot be created: the oracle cannot be built there.
        var report = Conformance.RunRandom(3, 1, new ConformanceOptions { OracleWorkDir = "/proc/self/no-such-dir/oracle" });
        Assert.NotNull(report.Unavailable);
        Assert.Equal(3, report.Skipped.Count);
        Assert.All(report.Skipped, s => Assert.Equal(report.Unavailable, s.Reason));
        Assert.Equal(0, report.Agreed);
    }
}

using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance.Tests;

public sealed class GeneratorTests
{
    [Fact]
    public void The_same_seed_gives_the_same_cases()
    {
        var a = new Generator(1);
        var b = new Generator(1);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(a.Generate(i).ToText(), b.Generate(i).ToText());
        }
        Assert.Equal(string.Join("", a.GenerateCases(5).Select(c => c.ToText())),
            string.Join("", Enumerable.Range(0, 5).Select(i => new Generator(1).Generate(i).ToText())));
    }

    [Fact]
    public void Different_seeds_and_indices_give_different_cases()
    {
        var texts = Enumerable.Range(0, 20).Select(i => new Generator(1).Generate(i).ToText()).ToHashSet();
        Assert.Equal(20, texts.Count);
        Assert.NotEqual(new Generator(1).Generate(0).ToText(), new Generator(2).Generate(0).ToText());
    }

    [Fact]
    public void Generated_cases_are_well_formed_and_within_bounds()
    {
        var kinds = new HashSet<OpKind>();
        var advices = new HashSet<long>();
        foreach (var c in new Generator(7).GenerateCases(400))
        {
            Assert.Null(c.Validate());
            Assert.InRange(c.Processes.Count(), 1, 4);
            int beforeSweep = c.Ops.ToList().FindLastIndex(o => !o.IsObservation) + 1;
            Assert.True(beforeSweep <= 40 + 2, $"{c.Name}: {beforeSweep} operations before the sweep");
            foreach (var op in c.Ops)
            {
                kinds.Add(op.Kind);
                if (op.Kind == OpKind.Madvise && op[2].IsAbsolute)
                {
                    advices.Add(op[2].Value);
                }
                // Safety on the real machine: nothing populates or reserves a huge range, and nothing
                // but munmap (refused past TASK_SIZE) spans much more than 2 MiB (a region, plus the
                // pages an mremap may have grown it by), far from the stack 128 MiB above MMAP_TOP.
                if (op.Kind == OpKind.Mmap && op[1].Value > 512 * (long)PAGE_SIZE)
                {
                    Assert.Equal(0, op[3].Value & (MAP_POPULATE | MAP_NORESERVE));
                }
                if (op.Kind is OpKind.Mprotect or OpKind.Madvise)
                {
                    Assert.True(op[1].Value <= 528 * (long)PAGE_SIZE, $"{c.Name}: {op}");
                }
                if (op.Kind == OpKind.Mmap)
                {
                    Assert.Equal(0, op[3].Value & 0x100);   // never MAP_GROWSDOWN
                }
            }
        }
        foreach (var k in Enum.GetValues<OpKind>())
        {
            Assert.Contains(k, kinds);
        }
        foreach (var a in new[] { MADV_DONTNEED, MADV_FREE, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK, 22, 23, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL })
        {
            Assert.Contains((long)a, advices);
        }
    }

    /// <summary>The sharing mix (mmcheck conform --mix sharing): cases named apart, valid and as safe as
    /// the broad mix's, only its advice, and several times the broad mix's forks and MADV_FREEs.</summary>
    [Fact]
    public void The_sharing_mix_favours_forks_stores_and_madv_free()
    {
        var broad = new Generator(5).GenerateCases(300).ToList();
        var sharing = new Generator(5, new GeneratorOptions { Mix = GeneratorMix.Sharing }).GenerateCases(300).ToList();
        Assert.Equal(sharing.Select(c => c.ToText()), new Generator(5, new GeneratorOptions { Mix = GeneratorMix.Sharing }).GenerateCases(300).Select(c => c.ToText()));
        static double PerCase(List<ConformanceCase> cs, Func<Op, bool> f) => cs.Sum(c => c.Ops.Count(f)) / (double)cs.Count;
        static bool Free(Op o) => o.Kind == OpKind.Madvise && o[2].IsAbsolute && o[2].Value == MADV_FREE;
        foreach (var c in sharing)
        {
            Assert.StartsWith("random-sharing-s5-", c.Name, StringComparison.Ordinal);
            Assert.Null(c.Validate());
            foreach (var op in c.Ops.Where(o => o.Kind == OpKind.Madvise))
            {
                Assert.Contains((int)op[2].Value, Generator.SharingAdvices);
            }
            foreach (var op in c.Ops.Where(o => o.Kind == OpKind.Mmap && o[1].Value > 512 * (long)PAGE_SIZE))
            {
                Assert.Equal(0, op[3].Value & (MAP_POPULATE | MAP_NORESERVE));
            }
        }
        Assert.True(PerCase(sharing, o => o.Kind == OpKind.Fork) > 1.5 * PerCase(broad, o => o.Kind == OpKind.Fork));
        Assert.True(PerCase(sharing, Free) > 3 * PerCase(broad, Free));
        Assert.True(PerCase(sharing, o => o.Kind == OpKind.Store) > PerCase(broad, o => o.Kind == OpKind.Store));
    }

    [Fact]
    public void Options_leave_out_mremap_and_madvise()
    {
        var g = new Generator(3, new GeneratorOptions { UseMremap = false, UseMadvise = false, FinalSweep = false, MaxOps = 12 });
        foreach (var c in g.GenerateCases(100))
        {
            Assert.DoesNotContain(c.Ops, o => o.Kind is OpKind.Mremap or OpKind.Madvise);
            Assert.True(c.Ops.Length <= 12 + 4, c.ToText());
        }
    }
}

public sealed class ShrinkerTests
{
    /// <summary>A synthetic disagreement: at the first store of 0x22 that follows a fork.</summary>
    private static Disagreement? Synthetic(ConformanceCase c)
    {
        bool forked = false;
        for (int i = 0; i < c.Ops.Length; i++)
        {
            var op = c.Ops[i];
            forked |= op.Kind == OpKind.Fork;
            if (forked && op.Kind == OpKind.Store && op[1] == Arg.Abs(0x22))
            {
                return new Disagreement(i, "0x22", "0x11", "result");
            }
        }
        return null;
    }

    private static ConformanceCase Planted()
    {
        var b = new CaseBuilder("planted");
        var baseCase = new Generator(11, new GeneratorOptions { MaxOps = 30, UseMremap = false }).Generate(4);
        int procs = 1;
        // Noise: the generated case's prefix up to its first fork (all in P0, references intact).
        foreach (var op in baseCase.Ops.Take(12).TakeWhile(o => o.Kind != OpKind.Fork))
        {
            b.Add(op);
        }
        int buf = b.Mmap(0, Arg.Abs(0), 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        b.Store(0, Arg.Result(buf, 0x123), 0x11, 8);
        b.Load(0, Arg.Result(buf));
        int child = b.Fork(0);
        procs++;
        b.Load(child, Arg.Result(buf, 3 * (long)PAGE_SIZE + 8), 4);
        b.Pagemap(0, Arg.Result(buf));
        b.Store(0, Arg.Result(buf, 2 * (long)PAGE_SIZE + 5), 0x22, 2);
        b.Maps(child);
        b.Maps(0);
        Assert.Equal(2, procs);
        return b.Build();
    }

    [Fact]
    public void Shrinks_a_synthetic_disagreement_to_its_essence()
    {
        var c = Planted();
        Assert.Null(c.Validate());
        var d = Synthetic(c)!;
        var result = new Shrinker(Synthetic).Shrink(c, d);
        // What remains: the mmap the store's address comes from, the fork, the store.
        Assert.Equal([OpKind.Mmap, OpKind.Fork, OpKind.Store], result.Case.Ops.Select(o => o.Kind));
        Assert.Null(result.Case.Validate());
        var store = result.Case.Ops[2];
        Assert.Equal(Arg.Result(0), store[0]);   // the offset shrank to nothing
        Assert.Equal(OpKind.Store, result.Case.Ops[result.Disagreement.Op].Kind);
        var mmap = result.Case.Ops[0];
        Assert.Equal(Arg.Abs(PAGE_SIZE), mmap[1]);    // 4 pages became 1
        Assert.True(result.Runs > 0);
    }

    [Fact]
    public void The_shrunk_case_prints_as_litmus_that_lowers_back_to_it()
    {
        var c = Planted();
        var result = new Shrinker(Synthetic).Shrink(c, Synthetic(c)!);
        string text = CasePrinter.Print(result.Case, "model 0x22 | native 0x11");
        Assert.Contains("(* model 0x22 | native 0x11 *)", text, StringComparison.Ordinal);
        Assert.Contains("P1 = fork();", text, StringComparison.Ordinal);
        var back = LitmusLowering.Lower(text);
        Assert.Null(back.Error);
        Assert.True(back.Case!.SameOps(result.Case), text + "\n" + back.Case.ToText());
    }

    [Fact]
    public void Removing_an_op_removes_what_depends_on_it_and_renumbers()
    {
        var b = new CaseBuilder("deps");
        int fd = b.MemfdCreate(0, "m");
        b.Ftruncate(0, Arg.Result(fd), 8192);
        int map = b.Mmap(0, Arg.Abs(0), 8192, PROT_READ, MAP_SHARED, Arg.Result(fd));
        int anon = b.Mmap(0, Arg.Abs(0), 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
        int child = b.Fork(0);
        b.Load(child, Arg.Result(anon));
        b.Load(0, Arg.Result(map, 4096));
        b.Load(0, Arg.Result(anon, 8));
        var c = b.Build();

        var noFd = Shrinker.Remove(c, [fd]);
        Assert.Equal([OpKind.Mmap, OpKind.Fork, OpKind.Load, OpKind.Load], noFd.Ops.Select(o => o.Kind));
        Assert.Equal(Arg.Result(0), noFd.Ops[2][0]);
        Assert.Equal(Arg.Result(0, 8), noFd.Ops[3][0]);
        Assert.Null(noFd.Validate());

        var noFork = Shrinker.Remove(c, [4]);
        Assert.DoesNotContain(noFork.Ops, o => o.Proc == child);
        Assert.Null(noFork.Validate());
    }

    [Fact]
    public void A_case_that_no_longer_disagrees_is_returned_unchanged()
    {
        var c = Planted();
        var d = Synthetic(c)!;
        var result = new Shrinker(_ => null).Shrink(c, d);
        Assert.Same(c, result.Case);
        Assert.Same(d, result.Disagreement);
    }
}

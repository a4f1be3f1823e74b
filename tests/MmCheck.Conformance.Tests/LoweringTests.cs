using MmCheck.Litmus.Syntax;
using MmCheck.Tests;
using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance.Tests;

public sealed class LoweringTests
{
    private static ConformanceCase MustLower(string text)
    {
        var r = LitmusLowering.Lower(text);
        Assert.True(r.Ok, r.Error);
        return r.Case!;
    }

    private static string MustFail(string text)
    {
        var r = LitmusLowering.Lower(text);
        Assert.False(r.Ok, r.Case?.ToText());
        return r.Error!;
    }

    [Fact]
    public void The_design_cow_example_lowers_in_program_order()
    {
        var c = MustLower(DesignExamples.CowBasicAfterFork);
        Assert.Equal("cow-basic-after-fork", c.Name);
        var expected = new CaseBuilder("cow-basic-after-fork");
        int buf = expected.Mmap(0, Arg.Abs(0), PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        expected.Store(0, Arg.Result(buf), 0x11);
        int child = expected.Fork(0);
        expected.Load(child, Arg.Result(buf));        // T1 runs right after T0's fork
        expected.Store(0, Arg.Result(buf), 0x22);
        expected.Load(0, Arg.Result(buf));
        Assert.True(c.SameOps(expected.Build()), c.ToText());
    }

    [Fact]
    public void Followers_run_in_declaration_order_and_nest()
    {
        var c = MustLower("""
            MM order
            {
              process P;
              P: a = mmap(NULL, 2 pages, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
            }
            thread A in P {
              f: Q = fork();
              g: store(a, 1);
              load(a);
            }
            thread B in Q after A.f {
              h: load(a + 1 page, 4);
              store(a, 2);
            }
            thread C in Q after A.f {
              load(a);
            }
            thread D in P after B.h {
              pagemap(a);
            }
            thread E in P after A.g {
              maps();
            }
            thread F in P {
              smaps(a);
            }
            """);
        string order = string.Join(" ", c.Ops.Select(o => $"{Op.VerbName(o.Kind)}:P{o.Proc}"));
        Assert.Equal("mmap:P0 fork:P0 load:P1 pagemap:P0 store:P1 load:P1 store:P0 maps:P0 load:P0 smaps:P0", order);
        Assert.Equal(Arg.Result(0, (long)PAGE_SIZE), c.Ops[2][0]);
        Assert.Equal(Arg.Abs(4), c.Ops[2][1]);
    }

    [Fact]
    public void Constants_sizes_registers_and_mmap_top_evaluate_symbolically()
    {
        var c = MustLower("""
            MM exprs
            {
              process P;
              P: fd = memfd_create("m", MFD_CLOEXEC|MFD_ALLOW_SEALING);
              P: ftruncate(fd, 2 pages + 100);
              P: x = mmap(MMAP_TOP - 16 pages, 2 * PAGE_SIZE, PROT_READ, MAP_SHARED|MAP_FIXED, fd, 0);
              P: mremap(x, 2 pages, 4 pages, MREMAP_MAYMOVE);
              P: madvise(x + 1 page - 0x10, 1 KiB, MADV_DONTNEED);
              P: store(x, 0xff, 1);
              P: close(-1);
              P: kpagecount(x);
              P: kpageflags(x);
            }
            """);
        Assert.Equal("m", c.Ops[0].Name);
        Assert.Equal(Arg.Abs(MFD_CLOEXEC | MFD_ALLOW_SEALING), c.Ops[0][0]);
        Assert.Equal(Arg.Abs(2 * 4096 + 100), c.Ops[1][1]);
        Assert.Equal(Arg.Top(-16 * 4096), c.Ops[2][0]);
        Assert.Equal(Arg.Abs(8192), c.Ops[2][1]);
        Assert.Equal(Arg.Result(0), c.Ops[2][4]);
        Assert.Equal(Arg.Abs(0), c.Ops[3][4]);        // mremap's optional new_addr
        Assert.Equal(Arg.Result(2, 4096 - 0x10), c.Ops[4][0]);
        Assert.Equal(Arg.Abs(1024), c.Ops[4][1]);
        Assert.Equal(Arg.Abs(-1), c.Ops[6][0]);
        Assert.Equal([OpKind.KpageCount, OpKind.KpageFlags], c.Ops[7..].Select(o => o.Kind));
    }

    [Fact]
    public void More_processes_declared_up_front_are_forks_of_the_first()
    {
        var c = MustLower("""
            MM two
            {
              process P;
              process Q;
              Q: mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
            }
            """);
        Assert.Equal(OpKind.Fork, c.Ops[0].Kind);
        Assert.Equal(1, c.Ops[1].Proc);
        Assert.Contains("declared after init statements", MustFail("""
            MM late
            {
              process P;
              P: mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
              process Q;
            }
            """), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("device G = pci(bar0 = 16 pages);", "devices have no native counterpart")]
    [InlineData("P: request_mem_region(0, 1 page, \"x\");", "no native counterpart")]
    [InlineData("P: frobnicate(1);", "unsupported verb 'frobnicate'")]
    [InlineData("P: mmap(NULL, 1 page);", "mmap takes 6 argument(s)")]
    [InlineData("P: load(nowhere);", "unknown name 'nowhere'")]
    [InlineData("P: load(P);", "is a process, not a value")]
    [InlineData("P: r = load(NULL); P: load(r | 1);", "can only be offset")]
    [InlineData("Q: load(NULL);", "process Q does not exist")]
    public void Scenarios_that_cannot_run_natively_are_refused_with_the_reason(string init, string reason)
    {
        var error = MustFail($$"""
            MM refused
            {
              process P;
              {{init}}
            }
            """);
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Variants_other_kernels_sometimes_and_kernel_threads_are_refused()
    {
        Assert.Contains("historical variants", MustFail("MM v\nvariant do_wp_page.reuse = off\n{ process P; }"), StringComparison.Ordinal);
        Assert.Contains("only 'current'", MustFail("MM k\nkernel = v5.10\n{ process P; }"), StringComparison.Ordinal);
        Assert.Contains("non-deterministic", MustFail("MM s\n{ process P; }\nexists (P:[0] = 0)\nexpect sometimes"), StringComparison.Ordinal);
        Assert.Contains("kernel threads", MustFail("MM t\n{ process P; }\nthread K {\n  load(NULL);\n}"), StringComparison.Ordinal);
        Assert.Contains("never runs", MustFail("MM w\n{ process P; }\nthread A in P after B.x {\n  load(NULL);\n}"), StringComparison.Ordinal);
        Assert.StartsWith("parse error", MustFail("MM broken\n{ process P;"), StringComparison.Ordinal);
    }

    [Fact]
    public void Register_assignments_name_values_and_are_not_operations()
    {
        const string Head = """
            MM assign
            {
              process P;
              P: buf = mmap(NULL, 3 pages, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
              P: dst = mmap(NULL, 1 page, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
              P: mid = buf + 1 page;
              P: n = 2 * PAGE_SIZE;
            }
            thread T0 in P {
              store(mid, 0x22);
              munmap(mid + 1 page, n - 1 page);
              diff = dst - buf;

            """;
        var c = MustLower(Head + "}\n");
        var expected = new CaseBuilder("assign");
        int buf = expected.Mmap(0, Arg.Abs(0), 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        expected.Mmap(0, Arg.Abs(0), PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
        expected.Store(0, Arg.Result(buf, (long)PAGE_SIZE), 0x22);
        expected.Munmap(0, Arg.Result(buf, 2 * (long)PAGE_SIZE), PAGE_SIZE);
        Assert.True(c.SameOps(expected.Build()), c.ToText());
        // A difference of two addresses is no argument: an error only where it is used.
        Assert.Contains("register diff cannot be an argument", MustFail(Head + "  load(diff);\n}\n"), StringComparison.Ordinal);
        // A later assignment replaces it.
        Assert.Equal(5, MustLower(Head + "  diff = buf;\n  load(diff);\n}\n").Ops.Length);
        Assert.Contains("must call a verb or assign a register", MustFail("MM e\n{ process P; }\nthread T in P {\n  1 + 2;\n}\n"), StringComparison.Ordinal);
    }

    [Fact]
    public void Generated_cases_print_and_lower_back_to_the_same_case()
    {
        foreach (var c in new Generator(5).GenerateCases(150))
        {
            string text = CasePrinter.Print(c);
            var parsed = LitmusParser.Parse(text);
            Assert.False(parsed.HasErrors, text + string.Join("\n", parsed.Diagnostics));
            var back = LitmusLowering.Lower(parsed.Scenario!);
            Assert.True(back.Ok, back.Error + "\n" + text);
            Assert.True(back.Case!.SameOps(c), $"{c.ToText()}\n{text}\n{back.Case.ToText()}");
        }
    }

    [Fact]
    public void The_printer_nests_a_child_thread_at_its_fork_and_splits_interleavings()
    {
        var b = new CaseBuilder("shape");
        int buf = b.Mmap(0, Arg.Abs(0), PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        int child = b.Fork(0);
        b.Store(child, Arg.Result(buf), 1);
        b.Load(0, Arg.Result(buf));
        b.Load(child, Arg.Result(buf));
        string text = CasePrinter.Print(b.Build());
        Assert.Equal("""
            MM shape
            kernel = current
            arch = x86_64
            {
              process P0;
            }
            thread T0 in P0 {
              r0 = mmap(NULL, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
              L1: P1 = fork();
              L3: r3 = load(r0);
            }
            thread T1 in P1 after T0.L1 {
              store(r0, 1);
            }
            thread T2 in P1 after T0.L3 {
              r4 = load(r0);
            }

            """.Replace("\r\n", "\n", StringComparison.Ordinal), text);
    }
}

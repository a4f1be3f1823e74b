using Linux;
using MmCheck.Litmus.Binding;
using MmCheck.Litmus.Runner;
using MmCheck.Litmus.Syntax;
using MmCheck.Tests;

namespace MmCheck.Litmus.Tests;

public class BinderTests
{
    private static LoadedScenario Load(string text) => ScenarioRunner.LoadText(text, "bind.litmus");

    private static BoundScenario Bound(string text)
    {
        var l = Load(text);
        Assert.True(l.Scenario is not null, DiagnosticFormatter.Format(l.Diagnostics));
        return l.Scenario!;
    }

    /// <summary>Binding must fail with <paramref name="code"/> at line:col, and the message must say <paramref name="says"/>.</summary>
    private static Diagnostic Fails(string text, string code, int line, int col, string says)
    {
        var l = Load(text);
        Assert.Null(l.Scenario);
        var d = l.Diagnostics.FirstOrDefault(d => d.Code == code);
        Assert.True(d is not null, $"no {code} among:\n{DiagnosticFormatter.Format(l.Diagnostics)}");
        Assert.Equal((line, col), (d!.Span.Line, d.Span.Column));
        Assert.Contains(says, DiagnosticFormatter.Format(d), StringComparison.Ordinal);
        Assert.StartsWith($"bind.litmus:{line}:{col}: error:", DiagnosticFormatter.FormatHeader(d), StringComparison.Ordinal);
        return d;
    }

    private const string Header = "MM t\n";

    [Fact]
    public void Both_design_examples_bind_once_devices_exist_and_the_cow_one_binds_now()
    {
        var s = Bound(DesignExamples.CowBasicAfterFork);
        Assert.Equal("cow-basic-after-fork", s.Name);
        Assert.Equal(["P", "C"], s.Processes.Select(p => p.Name));
        var child = s.Processes.Single(p => p.Name == "C");
        Assert.Equal("T0", child.ForkedByThread);
        var t1 = s.Threads.Single(t => t.Name == "T1");
        Assert.Equal(("T0", 0), (t1.AfterThread, t1.AfterIndex));
        Assert.Equal(["T0:r0", "T1:r1"], s.Locations.Select(l => l.Display));
    }

    [Fact]
    public void Kernel_presets_select_their_variants_and_variant_lines_refine_them()
    {
        Assert.Equal(Variants.WpReuseRule.Refcount, Bound(Header + "kernel = v5.10\nthread T { r = release_mem_region(0, 1); }\n").Config.Variants.DoWpPageReuse);
        Assert.Equal(Variants.WpReuseRule.AnonExclusive, Bound(Header + "kernel = v6.1\nthread T { r = release_mem_region(0, 1); }\n").Config.Variants.DoWpPageReuse);
        var s = Bound(Header + "variant do_wp_page.reuse = refcount\nkernel = current\nthread T { r = release_mem_region(0, 1); }\n");
        Assert.Equal(Variants.WpReuseRule.Refcount, s.Config.Variants.DoWpPageReuse);
    }

    [Fact]
    public void An_unknown_kernel_arch_variant_or_setting_is_an_error_at_its_value()
    {
        Fails(Header + "kernel = linus\nthread T { r = fork(); }\n", DiagnosticCodes.UnknownKernel, 2, 10, "unknown kernel 'linus'");
        Fails(Header + "arch = arm64\nthread T { r = fork(); }\n", DiagnosticCodes.UnknownArch, 2, 8, "x86_64");
        Fails(Header + "variant do_wp_page.reuse = sometimes\nthread T { r = fork(); }\n", DiagnosticCodes.UnknownVariant, 2, 1, "values: anon_exclusive, refcount");
    }

    [Fact]
    public void Arch_selects_the_paging_geometry()
    {
        Assert.Equal(PagingMode.X86_32_Pae.Name, Bound(Header + "arch = i386-pae\nthread T { r = release_mem_region(0, 1); }\n").Config.Paging.Name);
    }

    [Fact]
    public void An_unknown_call_suggests_the_nearest_verb()
    {
        Fails(Header + "{ process P; }\nthread T in P {\n  r = mmapp(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);\n}\n",
            DiagnosticCodes.UnknownVerb, 4, 7, "did you mean 'mmap'?");
    }

    [Fact]
    public void A_call_with_the_wrong_number_of_arguments_shows_the_signature()
    {
        Fails(Header + "{ process P; }\nthread T in P {\n  r = munmap(0x1000);\n}\n",
            DiagnosticCodes.ArgumentCount, 4, 7, "munmap(addr, length)");
    }

    [Fact]
    public void A_register_used_before_it_is_assigned_is_an_error_that_says_so()
    {
        Fails(Header + "{ process P; }\nthread T in P {\n  store(buf, 1);\n  buf = mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);\n}\n",
            DiagnosticCodes.UnknownName, 4, 9, "assigned later");
    }

    [Fact]
    public void Registers_are_private_to_their_thread()
    {
        Fails(Header + "{ process P; }\nthread A in P {\n  x = mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);\n}\nthread B in P {\n  r = load(x);\n}\n",
            DiagnosticCodes.UnknownName, 7, 12, "register of thread 'A'");
    }

    [Fact]
    public void Init_registers_of_a_process_are_visible_to_its_threads_and_to_a_forked_child()
    {
        var s = Bound(Header + "{\n  process P;\n  P: buf = mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);\n}\n" +
                      "thread T in P {\n  x = buf + 1;\n  f: C = fork();\n}\nthread U in C {\n  r = load(x);\n}\n");
        var u = s.Threads.Single(t => t.Name == "U");
        // Without 'after', a thread of a forked child starts right after the fork.
        Assert.Equal(("T", 1), (u.AfterThread, u.AfterIndex));
    }

    [Fact]
    public void A_kernel_thread_cannot_make_process_calls()
    {
        Fails(Header + "thread K {\n  r = mmap(NULL, 1 page, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);\n}\n",
            DiagnosticCodes.VerbNeedsProcess, 3, 7, "kernel thread");
    }

    [Fact]
    public void Unknown_processes_threads_and_labels_are_named()
    {
        Fails(Header + "thread T in Q {\n  r = fork();\n}\n", DiagnosticCodes.UnknownProcess, 2, 13, "no process 'Q'");
        Fails(Header + "{ process P; }\nthread T in P {\n  r = fork();\n}\nthread U in P after V.x {\n  r = fork();\n}\n",
            DiagnosticCodes.UnknownThread, 6, 21, "no thread 'V'");
        Fails(Header + "{ process P; }\nthread T in P {\n  a: r = fork();\n}\nthread U in P after T.b {\n  r = fork();\n}\n",
            DiagnosticCodes.UnknownLabel, 6, 23, "has no label 'b'");
    }

    [Fact]
    public void Threads_that_wait_for_each_other_are_rejected()
    {
        Fails(Header + "{ process P; }\nthread A in P after B.b {\n  a: r = fork();\n}\nthread B in P after A.a {\n  b: r = fork();\n}\n",
            DiagnosticCodes.CyclicAfter, 3, 15, "waits, through 'after'");
    }

    [Fact]
    public void Calls_nest_only_as_whole_statements()
    {
        Fails(Header + "{ process P; }\nthread T in P {\n  r = load(load(0x1000));\n}\n", DiagnosticCodes.NestedCall, 4, 12, "statement of its own");
    }

    [Fact]
    public void A_string_where_a_number_goes_is_an_error()
    {
        Fails(Header + "{ process P; }\nthread T in P {\n  r = munmap(\"x\", 1 page);\n}\n", DiagnosticCodes.ArgumentKind, 4, 14, "is a number");
    }

    [Fact]
    public void Expectations_name_known_invariants()
    {
        Fails(Header + "thread T { r = fork(); }\nexpect violation rmap-complet\n", DiagnosticCodes.UnknownInvariant, 3, 18, "did you mean 'rmap-complete'?");
    }

    [Fact]
    public void Always_needs_a_condition()
    {
        Fails(Header + "{ process P; }\nthread T in P { r = fork(); }\nexpect always\n", DiagnosticCodes.ExpectationConflict, 4, 1, "there is none");
    }

    [Fact]
    public void Condition_locations_must_exist()
    {
        Fails(Header + "{ process P; }\nthread T in P { r = fork(); }\nexists (T:q = 1)\n", DiagnosticCodes.UnknownName, 4, 11, "never assigns 'q'");
        Fails(Header + "{ process P; }\nthread T in P { r = fork(); }\nexists (P:TLB(0x1000) = 1)\n", DiagnosticCodes.UnknownView, 4, 11, "unknown view 'TLB'");
        Fails(Header + "{ process P; }\nthread T in P { r = fork(); }\nexists (P:PTE(0x1000).writable = 1)\n", DiagnosticCodes.UnknownView, 4, 23, "no field 'writable'");
    }

    [Fact]
    public void A_pfn_compares_only_with_a_pfn()
    {
        Fails(Header + "{ process P; }\nthread T in P { r = fork(); }\nexists (P:PFN(0x1000) = 0x1234)\n", DiagnosticCodes.TypeMismatch, 4, 9, "renamed");
    }

    [Fact]
    public void Every_error_is_reported_not_just_the_first()
    {
        var l = Load(Header + "kernel = v1\n{ process P; }\nthread T in P {\n  r = nosuch();\n  s = load(q);\n}\nexpect violation nope\n");
        Assert.Null(l.Scenario);
        Assert.Equal(
            [DiagnosticCodes.UnknownKernel, DiagnosticCodes.UnknownVerb, DiagnosticCodes.UnknownName, DiagnosticCodes.UnknownInvariant],
            l.Diagnostics.Select(d => d.Code));
    }

    [Fact]
    public void More_threads_than_cpus_is_an_error()
    {
        Fails(Header + "cpus = 1\n{ process P; }\nthread A in P { r = fork(); }\nthread B in P { r = fork(); }\n", DiagnosticCodes.InvalidSettingValue, 2, 8, "cpus = 1");
    }

    [Fact]
    public void A_name_declared_twice_is_an_error()
    {
        Fails(Header + "{ process P; process P; }\nthread T in P { r = fork(); }\n", DiagnosticCodes.DuplicateName, 2, 22, "already declared");
    }

    [Fact]
    public void Constant_expressions_are_folded_and_sizes_are_bytes()
    {
        var s = Bound(Header + "{ process P; }\nthread T in P {\n  r = munmap(0x10000 + 2 pages, 1 MiB);\n}\n");
        var call = Assert.IsType<BoundCall>(s.Threads[0].Body[0].Value);
        Assert.Equal(0x12000L, Assert.IsType<BoundConst>(call.Args[0]).Value.Number);
        Assert.Equal(1L << 20, Assert.IsType<BoundConst>(call.Args[1]).Value.Number);
    }

    [Fact]
    public void Without_locations_or_condition_every_assigned_register_is_observed()
    {
        var s = Bound(Header + "{ process P; }\nthread T in P {\n  a = munmap(0x1000, 1 page);\n  store(0x1000, 1);\n  b = load(0x1000);\n}\n");
        Assert.Equal(["T:a", "T:b"], s.Locations.Select(l => l.Display));
    }
}

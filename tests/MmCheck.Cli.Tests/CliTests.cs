using System.Text.Json;

namespace MmCheck.Cli.Tests;

/// <summary>The command line's contract (design.md): exit codes, errors without stack traces, JSON fields.</summary>
public sealed class CliTests() : ScratchDirTests("mmcheck-cli-")
{
    private const string Cow = """
        MM cli-cow
        {
          process P;
          P: buf = mmap(NULL, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
          P: store(buf, 0x11);
        }
        thread T0 in P {
          fork: C = fork();
          store(buf, 0x22);
        }
        thread T1 in C after T0.fork {
          r1 = load(buf);
        }
        forall (T1:r1 = 0x11)
        expect always

        """;

    [Fact]
    public void Explore_exits_0_when_every_expectation_holds()
    {
        var (exit, output, err) = Run("explore", Write("cow.litmus", Cow), "--strategy", "dfs");
        Assert.True(exit == 0, output + err);
        Assert.Contains("cli-cow", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Explore_exits_1_when_an_expectation_fails_and_says_which()
    {
        var (exit, output, _) = Run("explore", Write("never.litmus", Cow.Replace("expect always", "expect never", StringComparison.Ordinal)));
        Assert.Equal(1, exit);
        Assert.Contains("expected never: always", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_scenario_that_does_not_parse_exits_2_with_file_line_col_and_no_stack_trace()
    {
        string path = Write("bad.litmus", "MM bad\n{ process P; }\nthread T in P {\n  r = mmap(NULL, 1 page;\n}\n");
        var (exit, _, err) = Run("explore", path);
        Assert.Equal(2, exit);
        Assert.Contains("bad.litmus:4:24: error:", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_binding_error_exits_2_and_the_other_scenarios_still_run()
    {
        Write("a-good.litmus", Cow);
        Write("b-bad.litmus", "MM b\n{ process P; }\nthread T in P {\n  r = mmapp(0);\n}\n");
        var (exit, output, err) = Run("explore", Dir, "--strategy", "dfs");
        Assert.Equal(2, exit);
        Assert.Contains("b-bad.litmus:4:7: error: unknown call 'mmapp'; did you mean 'mmap'?", err, StringComparison.Ordinal);
        Assert.Contains("cli-cow", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("explore", "--workers", "0")]
    [InlineData("explore", "--strategy", "bfs")]
    [InlineData("explore", "--time-limit", "soon")]
    [InlineData("explore", "--max-schedules", "many")]
    [InlineData("explore", "/no/such/file.litmus")]
    [InlineData("explore", "--strategy", "random", "--no-reduction")]
    [InlineData("frobnicate")]
    [InlineData("replay", "/no/such/trace.json")]
    public void Bad_usage_exits_2_with_a_message(params string[] args)
    {
        var (exit, _, err) = Run(args);
        Assert.Equal(2, exit);
        Assert.StartsWith("mmcheck: ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_has_the_fields_design_md_names_one_object_per_scenario()
    {
        var (exit, output, _) = Run("explore", Write("cow.litmus", Cow), "--json", "--strategy", "dfs");
        Assert.Equal(0, exit);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        foreach (var field in new[] { "scenario", "kernel", "strategy", "complete", "schedules", "elapsed_ms", "first_violation_ms", "expected", "observed", "ok", "violations" })
        {
            Assert.True(root.TryGetProperty(field, out _), $"missing {field}");
        }
        Assert.Equal("cli-cow", root.GetProperty("scenario").GetString());
        Assert.True(root.GetProperty("complete").GetBoolean());
        Assert.True(root.GetProperty("ok").GetBoolean());
        Assert.Equal("always", root.GetProperty("expected").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("first_violation_ms").ValueKind);
    }

    [Fact]
    public void No_reduction_runs_every_interleaving_and_finds_the_same_states()
    {
        var path = Write("cow.litmus", Cow);
        var (e1, reduced, _) = Run("explore", path, "--json", "--strategy", "dfs");
        var (e2, plain, _) = Run("explore", path, "--json", "--strategy", "dfs", "--no-reduction");
        Assert.Equal(0, e1);
        Assert.Equal(0, e2);
        using var a = JsonDocument.Parse(reduced);
        using var b = JsonDocument.Parse(plain);
        Assert.True(b.RootElement.GetProperty("complete").GetBoolean());
        static string[] Values(JsonDocument d) =>
            [.. d.RootElement.GetProperty("states").EnumerateArray().Select(x => x.GetProperty("values").GetRawText())];
        Assert.Equal(Values(a), Values(b));
        Assert.True(b.RootElement.GetProperty("schedules").GetInt64() > a.RootElement.GetProperty("schedules").GetInt64());
    }

    [Fact]
    public void The_same_seed_gives_byte_identical_json_apart_from_timings()
    {
        string path = Write("cow.litmus", Cow);
        static string Strip(string json)
        {
            using var doc = JsonDocument.Parse(json);
            var copy = new Dictionary<string, JsonElement>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name is not ("elapsed_ms" or "first_violation_ms"))
                {
                    copy[p.Name] = p.Value.Clone();
                }
            }
            return JsonSerializer.Serialize(copy);
        }
        var a = Run("explore", path, "--json", "--strategy", "random", "--seed", "7", "--max-schedules", "50");
        var b = Run("explore", path, "--json", "--strategy", "random", "--seed", "7", "--max-schedules", "50");
        Assert.Equal(Strip(a.Out), Strip(b.Out));
    }

    [Fact]
    public void Run_prints_the_step_log_and_the_saved_trace_replays()
    {
        string path = Write("cow.litmus", Cow);
        string traces = Path.Combine(Dir, "traces");
        var (exit, output, err) = Run("run", path, "--out", traces);
        Assert.True(exit == 0, output + err);
        Assert.Contains("dup_mmap", output, StringComparison.Ordinal);
        Assert.Contains("wp_page_copy", output, StringComparison.Ordinal);
        string trace = Assert.Single(Directory.GetFiles(traces, "*.trace.json"));
        var replay = Run("replay", trace);
        Assert.True(replay.Exit == 0, replay.Out + replay.Err);
        Assert.Contains("outcome: T1:r1=0x11", replay.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_violation_keeps_its_own_trace_when_an_invariant_breaks_twice()
    {
        // v6.9's fork-time open path asserts the mmap write lock in two functions: two lock-assert findings.
        string path = Path.Combine(ScenarioFiles.BundledDirectory()!, "seeds", "seed001-fork-open-order-v6.9.litmus");
        string traces = Path.Combine(Dir, "traces");
        var (exit, output, err) = Run("explore", path, "--strategy", "dfs", "--out", traces);
        Assert.True(exit == 0, output + err);
        var lines = output.Split('\n');
        var found = lines.Select((l, i) => (l, i)).Where(x => x.l.StartsWith("  violation lock-assert: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, found.Count);
        var files = found.Select(x => lines[x.i + 1].Trim().Split("   ")[0]["trace: ".Length..]).ToList();
        Assert.Equal(2, files.Distinct(StringComparer.Ordinal).Count());
        foreach (var ((line, _), file) in found.Zip(files))
        {
            string function = line["  violation lock-assert: ".Length..].Split(':')[0];
            var replay = Run("replay", file);
            Assert.True(replay.Exit == 0, replay.Out + replay.Err);
            Assert.Contains($"lock-assert: {function}:", replay.Out.Split('\n')[0], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_failed_forall_saves_a_witness_of_the_state_that_breaks_it_and_replay_reaches_that_state()
    {
        // T1 reads before or after T0's store: 0x11 and 0x22 are both final states.
        string path = Write("forall.litmus", """
            MM cli-forall
            {
              process P;
              P: buf = mmap(NULL, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
              P: store(buf, 0x11);
            }
            thread T0 in P {
              store(buf, 0x22);
            }
            thread T1 in P {
              r1 = load(buf);
            }
            forall (T1:r1 = 0x22)
            expect always

            """);
        string traces = Path.Combine(Dir, "traces");
        var (exit, output, err) = Run("explore", path, "--out", traces);
        Assert.Equal(1, exit);
        Assert.Contains("expected always: sometimes", output, StringComparison.Ordinal);
        Assert.Contains("condition No by T1:r1=0x11, which fails the proposition", output, StringComparison.Ordinal);
        string witness = Path.Combine(traces, "cli-forall.condition.trace.json");
        Assert.Contains($"trace: {witness}", output, StringComparison.Ordinal);
        var replay = Run("replay", witness);
        Assert.True(replay.Exit == 0, replay.Out + replay.Err);
        Assert.Contains("outcome: T1:r1=0x11", replay.Out, StringComparison.Ordinal);
        Assert.Contains("replayed: T1:r1=0x11 again", replay.Out, StringComparison.Ordinal);
        // The step that assigns a register says so, under the load that produced the value.
        Assert.Matches(@"loaded 0x11 from [0-9a-f]+ \(pfn [0-9a-f]+\)\n\s+T1:r1 = 0x11\n", replay.Out);

        var json = Run("explore", path, "--out", traces, "--json");
        using var doc = JsonDocument.Parse(json.Out);
        var w = doc.RootElement.GetProperty("witness");
        Assert.Equal("T1:r1=0x11", w.GetProperty("state").GetString());
        Assert.Equal(witness, w.GetProperty("trace").GetString());

        // The trace of another state is a mismatch.
        string other = File.ReadAllText(witness).Replace("T1:r1=0x11", "T1:r1=0x22", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(traces, "other.trace.json"), other);
        var wrong = Run("replay", Path.Combine(traces, "other.trace.json"));
        Assert.Equal(1, wrong.Exit);
        Assert.Contains("replayed, but it ended in T1:r1=0x11, not T1:r1=0x22", wrong.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void The_READMEs_counterexample_is_what_replay_prints()
    {
        string root = Path.GetDirectoryName(ScenarioFiles.BundledDirectory()!)!;
        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        const string Scenario = "scenarios/seeds/seed001-drop-read-take-write-vs-munmap.litmus";
        int at = readme.IndexOf($"`mmcheck explore {Scenario}` saves", StringComparison.Ordinal);
        Assert.True(at >= 0, "the README no longer shows the counterexample of " + Scenario);
        int open = readme.IndexOf("```\n", at, StringComparison.Ordinal) + 4;
        string shown = readme[open..readme.IndexOf("```\n", open, StringComparison.Ordinal)];

        string traces = Path.Combine(Dir, "traces");
        var explored = Run("explore", Path.Combine(root, Scenario), "--out", traces);
        Assert.True(explored.Exit == 0, explored.Out + explored.Err);
        var replay = Run("replay", Assert.Single(Directory.GetFiles(traces, "*.use-after-free.trace.json")));
        Assert.True(replay.Exit == 0, replay.Out + replay.Err);
        // The columns, from the header to the finding: the README shows them as replay prints them.
        Assert.Contains(shown, replay.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Replay_reports_a_trace_the_model_no_longer_follows()
    {
        string path = Write("cow.litmus", Cow);
        string traces = Path.Combine(Dir, "traces");
        Assert.Equal(0, Run("run", path, "--out", traces).Exit);
        string trace = Assert.Single(Directory.GetFiles(traces, "*.trace.json"));
        // The child now does something else first: the recorded schedule no longer fits.
        File.WriteAllText(path, Cow.Replace("  r1 = load(buf);", "  m = munmap(buf, 1 page);\n  r1 = load(buf);", StringComparison.Ordinal));
        var (exit, output, _) = Run("replay", trace);
        Assert.Equal(1, exit);
        Assert.Contains("no longer follows", output, StringComparison.Ordinal);
    }

    [Fact]
    public void List_shows_verbs_invariants_and_views()
    {
        var (exit, output, _) = Run("list", "--verbs", "--invariants", "--views");
        Assert.Equal(0, exit);
        Assert.Contains("mmap(addr, length, prot, flags, fd, offset)", output, StringComparison.Ordinal);
        Assert.Contains("rmap-complete", output, StringComparison.Ordinal);
        Assert.Contains("P:pagemap(addr)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void List_shows_the_bundled_scenarios()
    {
        var (exit, output, _) = Run("list");
        Assert.Equal(0, exit);
        Assert.Contains("cow-basic-after-fork", output, StringComparison.Ordinal);
    }
}

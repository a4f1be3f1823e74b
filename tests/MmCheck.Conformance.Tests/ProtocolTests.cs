using System.Diagnostics;
using MmCheck.Conformance.Native;
using Xunit.Abstractions;
using static MmCheck.Conformance.Tests.TestOracle;

namespace MmCheck.Conformance.Tests;

public sealed class ProtocolTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("bogus 0")]
    [InlineData("mmap 0 1 2")]
    [InlineData("mmap 0 0 4096 3 34 -1 0 extra")]
    [InlineData("load 0 zz 8")]
    [InlineData("load 0 0x 8")]
    [InlineData("load 0 -5 8")]
    [InlineData("load 0 0x1000 3")]
    [InlineData("store 0 0x1000 1 256")]
    [InlineData("load 9 0 8")]
    [InlineData("load 3 0 8")]
    [InlineData("load x 0 8")]
    [InlineData("fork 0 0")]
    [InlineData("fork 0 8")]
    [InlineData("kpagecount")]
    [InlineData("quit now")]
    [InlineData("mmap 0 0 4096 99999999999 34 -1 0")]
    [InlineData("load 0 99999999999999999999999 8")]
    public void Malformed_command_lines_get_a_bad_reply_and_the_oracle_keeps_working(string line)
    {
        using var o = Start(output);
        if (o is null)
            return;
        var reply = o.Execute(line);
        output.WriteLine($"'{line}' -> {reply[0]}");
        Assert.Single(reply);
        Assert.StartsWith("bad ", reply[0], StringComparison.Ordinal);
        Assert.True(reply[0].Length > 6);
        Assert.Equal(0UL, o.MustLoad(0, o.MapAnon(0, 1)));
    }

    [Fact]
    public void An_overlong_line_gets_a_bad_reply()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var reply = o.Execute("load 0 " + new string('1', 20000) + " 8");
        Assert.Equal("bad line too long", Assert.Single(reply));
        Assert.Equal(o.Pid(0), o.Pid(0));
    }

    [Fact]
    public void Typed_calls_to_a_missing_subject_throw_a_clear_exception()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var e = Assert.Throws<NativeOracleException>(() => o.Load(5, 0x1000, 8));
        Assert.Contains("no subject 5", e.Message, StringComparison.Ordinal);
        Assert.Contains("load 5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_killed_subject_reports_dead_instead_of_hanging_and_the_others_go_on()
    {
        using var o = Start(output);
        if (o is null)
            return;
        o.Timeout = TimeSpan.FromSeconds(5);
        var a = o.MapAnon(0, 1);
        o.MustStore(0, a, 5);
        Assert.Equal(1, o.Fork(0, 1));
        using (var victim = Process.GetProcessById(o.Pid(1)))
        {
            victim.Kill();
            victim.WaitForExit(5000);
        }

        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<NativeOracleException>(() => o.Load(1, a, 8));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3));
        Assert.Equal(1, e.DeadSubject);
        Assert.Contains("subject 1 is dead", e.Message, StringComparison.Ordinal);
        Assert.Equal("dead 1", Assert.Single(o.Execute("pid 1")));

        Assert.Equal(5UL, o.MustLoad(0, a));
        Assert.Equal(1, o.Fork(0, 1));                  // the id can be reused
        Assert.Equal(5UL, o.MustLoad(1, a));
    }

    [Fact]
    public void A_killed_controller_gives_a_clear_error_and_the_oracle_stays_unusable()
    {
        using var o = Start(output);
        if (o is null)
            return;
        Assert.Equal(1, o.Fork(0, 1));
        var subjects = new[] { o.Pid(0), o.Pid(1) };
        using (var controller = Process.GetProcessById(o.ControllerPid))
            controller.Kill();

        var e = Assert.Throws<NativeOracleException>(() => o.Pid(0));
        Assert.Contains("controller", e.Message, StringComparison.Ordinal);
        var again = Assert.Throws<NativeOracleException>(() => o.Pid(0));
        Assert.Contains("unusable", again.Message, StringComparison.Ordinal);
        // The subjects see EOF on their channels and exit.
        foreach (var pid in subjects)
            Assert.True(WaitGone(pid, TimeSpan.FromSeconds(5)), $"subject pid {pid} still running");
    }

    [Fact]
    public void A_hung_subject_times_out_with_a_clear_error()
    {
        using var o = Start(output);
        if (o is null)
            return;
        o.Timeout = TimeSpan.FromSeconds(1);
        var pid = o.Pid(0);
        using (var stop = Process.Start("kill", ["-STOP", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            stop.WaitForExit();

        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<NativeOracleException>(() => o.Pid(0));
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(5));
        Assert.Contains("no result within", e.Message, StringComparison.Ordinal);
        Assert.Equal("pid 0", e.Command);
        Assert.True(WaitGone(pid, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void Dispose_quits_and_no_subject_outlives_the_oracle()
    {
        int[] pids;
        using (var o = Start(output))
        {
            if (o is null)
                return;
            Assert.Equal(1, o.Fork(0, 1));
            Assert.Equal(2, o.Fork(1, 2));
            pids = [o.ControllerPid, o.Pid(0), o.Pid(1), o.Pid(2)];
        }
        foreach (var pid in pids)
            Assert.True(WaitGone(pid, TimeSpan.FromSeconds(5)), $"pid {pid} still running");
    }

    /// <summary>True once the process is gone or a zombie.</summary>
    private static bool WaitGone(int pid, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            string? state = null;
            try
            {
                state = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal));
            }
            catch (IOException)
            {
            }
            if (state is null || state.Contains("zombie", StringComparison.Ordinal))
                return true;
            Thread.Sleep(20);
        }
        return false;
    }
}

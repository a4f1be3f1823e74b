using System.Buffers.Binary;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace MmCheck.Conformance.Native;

/// <summary>
/// Drives native/oracle.c: builds it with gcc (cached by source hash), starts its controller and executes mm
/// operations for real in its subject processes. One command at a time; thread-safe. See the protocol
/// comment at the top of oracle.c.
/// </summary>
/// <remarks>
/// Syscall-like results are returned as <see cref="long"/>: the result on success, the negative errno on
/// failure. Protocol-level failures (timeout, dead controller, dead subject, a command the oracle rejects)
/// throw <see cref="NativeOracleException"/>.
/// </remarks>
public sealed class NativeOracle : IDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Number of subject channels: subject ids are 0 .. MaxSubjects-1.</summary>
    public const int MaxSubjects = 8;

    private const int StderrTailLines = 40;
    private const ulong PfnMask = (1UL << 55) - 1;

    private static readonly Lazy<NativeOracleAvailability> DefaultAvailability = new(() => ProbeAvailability(null));

    private readonly Process _process;
    private readonly StreamWriter _stdin;
    private readonly StreamReader _stdout;
    private readonly Queue<string> _stderr = new();
    private readonly Lock _gate = new();
    private Task<string?>? _pendingRead;
    private string? _brokenReason;
    private bool _disposed;

    private NativeOracle(string binaryPath)
    {
        BinaryPath = binaryPath;
        var psi = new ProcessStartInfo(binaryPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            WorkingDirectory = Path.GetDirectoryName(binaryPath) ?? "/",
        };
        _process = new Process { StartInfo = psi };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            lock (_stderr)
            {
                _stderr.Enqueue(e.Data);
                while (_stderr.Count > StderrTailLines)
                    _stderr.Dequeue();
            }
        };
        try
        {
            _process.Start();
        }
        catch (Win32Exception e)
        {
            _process.Dispose();
            throw new NativeOracleException($"could not start {binaryPath}: {e.Message}", e);
        }
        _process.BeginErrorReadLine();
        _stdin = _process.StandardInput;
        _stdin.AutoFlush = false;
        _stdout = _process.StandardOutput;
        ControllerPid = _process.Id;
    }

    /// <summary>The oracle binary in use.</summary>
    public string BinaryPath { get; }

    /// <summary>Process id of the controller.</summary>
    public int ControllerPid { get; }

    /// <summary>How long one command may take before the oracle is declared hung (and killed).</summary>
    public TimeSpan Timeout { get; set; } = DefaultTimeout;

    /// <summary>Builds oracle.c (if the cached binary is stale or missing) and starts it, with subject 0 ready.</summary>
    /// <param name="workDir">Cache directory for the binary; default $TMPDIR/mmcheck-oracle.</param>
    public static NativeOracle Start(string? workDir = null)
    {
        var oracle = new NativeOracle(OracleBuild.EnsureBuilt(workDir));
        try
        {
            oracle.Pid(0);   // the controller is up and subject 0 answers
            return oracle;
        }
        catch
        {
            oracle.Dispose();
            throw;
        }
    }

    /// <summary>Whether this machine can run the oracle, and whether PFN observations are possible. The
    /// result for the default cache directory is computed once.</summary>
    public static NativeOracleAvailability Availability(string? workDir = null) =>
        workDir is null ? DefaultAvailability.Value : ProbeAvailability(workDir);

    // ------------------------------------------------------------------ typed API

    public MmapLayout Layout(int p)
    {
        var (line, t) = Call(F($"layout {p}"), 2);
        return new MmapLayout(ParseU(t[1], line), ParseU(t[2], line));
    }

    /// <summary>The subject's /proc/self/maps lines.</summary>
    public IReadOnlyList<string> Maps(int p)
    {
        var command = F($"maps {p}");
        var lines = Execute(command);
        Expect(command, lines[0], 1);
        return lines.Skip(1).ToArray();
    }

    public long Mmap(int p, ulong addr, ulong len, int prot, int flags, int fd = -1, long offset = 0) =>
        Syscall(F($"mmap {p} 0x{addr:x} 0x{len:x} {prot} 0x{flags:x} {fd} {offset}"));

    public long Munmap(int p, ulong addr, ulong len) => Syscall(F($"munmap {p} 0x{addr:x} 0x{len:x}"));

    public long Mprotect(int p, ulong addr, ulong len, int prot) =>
        Syscall(F($"mprotect {p} 0x{addr:x} 0x{len:x} {prot}"));

    public long Madvise(int p, ulong addr, ulong len, int advice) =>
        Syscall(F($"madvise {p} 0x{addr:x} 0x{len:x} {advice}"));

    public long Mremap(int p, ulong oldAddr, ulong oldLen, ulong newLen, int flags, ulong newAddr = 0) =>
        Syscall(F($"mremap {p} 0x{oldAddr:x} 0x{oldLen:x} 0x{newLen:x} {flags} 0x{newAddr:x}"));

    /// <summary>memfd_create in subject <paramref name="p"/>; the name must be a non-empty token without blanks.</summary>
    public long MemfdCreate(int p, string name, int flags = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new ArgumentException("memfd name must not contain blanks or control characters", nameof(name));
        return Syscall(F($"memfd_create {p} {name} {flags}"));
    }

    public long Ftruncate(int p, int fd, long length) => Syscall(F($"ftruncate {p} {fd} {length}"));

    public long Close(int p, int fd) => Syscall(F($"close {p} {fd}"));

    /// <summary>Subject <paramref name="p"/> calls fork(); the child becomes subject <paramref name="newId"/>.
    /// Returns newId once the child takes commands, or the negative errno of fork().</summary>
    public long Fork(int p, int newId) => Syscall(F($"fork {p} {newId}"));

    /// <summary>Subject <paramref name="p"/> exits; returns once it is gone (its mm torn down).</summary>
    public void Exit(int p) => Call(F($"exit {p}"), 1);

    /// <summary>The Linux pid of subject <paramref name="p"/>.</summary>
    public int Pid(int p)
    {
        var (line, t) = Call(F($"pid {p}"), 1);
        return checked((int)ParseU(t[1], line));
    }

    /// <summary>One volatile load of exactly <paramref name="size"/> (1, 2, 4, 8) bytes; unaligned allowed.</summary>
    public AccessResult Load(int p, ulong addr, int size) => Access(F($"load {p} 0x{addr:x} {size}"));

    /// <summary>One volatile store of exactly <paramref name="size"/> (1, 2, 4, 8) bytes; unaligned allowed.</summary>
    public AccessResult Store(int p, ulong addr, int size, ulong value) =>
        Access(F($"store {p} 0x{addr:x} {size} 0x{value:x}"));

    public PagemapEntry Pagemap(int p, ulong addr)
    {
        var (line, t) = Call(F($"pagemap {p} 0x{addr:x}"), 5);
        return new PagemapEntry(t[1] == "1", t[2] == "1", ParseU(t[3], line), t[4] == "1", t[5] == "1");
    }

    /// <summary>/proc/kpagecount of <paramref name="pfn"/> (read by the controller; the file is global).</summary>
    public ulong KpageCount(ulong pfn)
    {
        var (line, t) = Call(F($"kpagecount 0x{pfn:x}"), 1);
        return ParseU(t[1], line);
    }

    /// <summary>/proc/kpageflags of <paramref name="pfn"/>; test bits with <see cref="LinuxAbi.HasKpf"/>.</summary>
    public ulong KpageFlags(ulong pfn)
    {
        var (line, t) = Call(F($"kpageflags 0x{pfn:x}"), 1);
        return ParseU(t[1], line);
    }

    /// <summary>The smaps block of the VMA containing <paramref name="addr"/>, or null if none does.</summary>
    public SmapsEntry? Smaps(int p, ulong addr)
    {
        var command = F($"smaps {p} 0x{addr:x}");
        var (line, t) = Call(command, 1);
        if (t.Length == 2 && t[1] == "none")
            return null;
        Expect(command, line, 5);
        return new SmapsEntry(ParseU(t[1], line), ParseU(t[2], line), (long)ParseU(t[3], line),
            (long)ParseU(t[4], line), t[5]);
    }

    // ------------------------------------------------------------------ raw protocol

    /// <summary>Sends one raw command line and returns the result lines as the oracle wrote them (one line,
    /// or for <c>maps</c> the "ok n" line and n more). "bad"/"dead"/"err"/"sig" results are returned, not
    /// thrown; timeouts and a dead controller throw.</summary>
    public IReadOnlyList<string> Execute(string commandLine)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        if (commandLine.Contains('\n', StringComparison.Ordinal) || commandLine.Contains('\r', StringComparison.Ordinal))
            throw new ArgumentException("a command is a single line", nameof(commandLine));

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_brokenReason is not null)
                throw new NativeOracleException($"oracle is unusable: {_brokenReason}", commandLine, StderrTail());

            var clock = Stopwatch.StartNew();
            try
            {
                _stdin.Write(commandLine);
                _stdin.Write('\n');
                _stdin.Flush();
            }
            catch (IOException e)
            {
                throw Broken($"cannot write to the controller ({e.Message})", commandLine);
            }

            var first = ReadLine(commandLine, clock);
            var result = new List<string> { first };
            var words = commandLine.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (words.Length > 0 && words[0] == "maps" && first.StartsWith("ok ", StringComparison.Ordinal))
            {
                if (!int.TryParse(first.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                    throw Broken($"malformed maps header '{first}'", commandLine);
                for (var i = 0; i < n; i++)
                    result.Add(ReadLine(commandLine, clock));
            }
            return result;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            try
            {
                if (_brokenReason is null && !_process.HasExited)
                {
                    _stdin.Write("quit\n");
                    _stdin.Flush();
                    _stdin.Close();
                    _process.WaitForExit(TimeSpan.FromSeconds(2));
                }
            }
            catch (IOException)
            {
            }
            catch (InvalidOperationException)
            {
            }
            KillTree();
            _process.Dispose();
        }
    }

    // ------------------------------------------------------------------ helpers

    private static string F(FormattableString s) => FormattableString.Invariant(s);

    private string ReadLine(string command, Stopwatch clock)
    {
        _pendingRead ??= _stdout.ReadLineAsync();
        var remaining = Timeout - clock.Elapsed;
        bool completed;
        try
        {
            completed = _pendingRead.Wait(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
        }
        catch (AggregateException e)
        {
            throw Broken($"reading the controller's output failed ({e.InnerException?.Message})", command);
        }
        if (!completed)
            throw Broken($"no result within {Timeout.TotalSeconds:0.#} s (subject or controller hung)", command);
        var line = _pendingRead.Result;
        _pendingRead = null;
        if (line is null)
        {
            _process.WaitForExit(TimeSpan.FromSeconds(2));
            var status = _process.HasExited ? $"exit code {_process.ExitCode}" : "still running";
            throw Broken($"the controller closed its output ({status})", command);
        }
        return line;
    }

    /// <summary>Marks the oracle unusable, kills it, and returns the exception to throw.</summary>
    private NativeOracleException Broken(string reason, string command)
    {
        _brokenReason = reason;
        KillTree();
        try
        {
            _process.WaitForExit(TimeSpan.FromSeconds(2));
        }
        catch (InvalidOperationException)
        {
        }
        return new NativeOracleException($"native oracle: {reason}", command, StderrTail());
    }

    private void KillTree()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        catch (Win32Exception)
        {
        }
    }

    private string StderrTail()
    {
        lock (_stderr)
            return string.Join(Environment.NewLine, _stderr);
    }

    /// <summary>Executes a command whose result is "ok ..." and splits it; err/bad/dead/unexpected throw.</summary>
    private (string Line, string[] Tokens) Call(string command, int okValues)
    {
        var line = Execute(command)[0];
        return Expect(command, line, okValues);
    }

    private (string Line, string[] Tokens) Expect(string command, string line, int okValues)
    {
        var t = Tokens(line);
        switch (t.Length > 0 ? t[0] : "")
        {
            case "ok" when t.Length >= okValues + 1:
                return (line, t);
            case "bad":
                throw new NativeOracleException($"native oracle rejected the command: {line[3..].Trim()}", command);
            case "dead":
                throw new NativeOracleException($"subject {(t.Length > 1 ? t[1] : "?")} is dead (killed or crashed)", command)
                {
                    DeadSubject = t.Length > 1 && int.TryParse(t[1], CultureInfo.InvariantCulture, out var d) ? d : null,
                };
            case "err":
                throw new NativeOracleException($"native oracle: {command.Split(' ')[0]} failed with errno {(t.Length > 1 ? t[1] : "?")}", command);
            default:
                throw new NativeOracleException($"native oracle: unexpected result '{line}'", command);
        }
    }

    private long Syscall(string command)
    {
        var line = Execute(command)[0];
        var t = Tokens(line);
        if (t.Length == 2 && t[0] == "err")
            return -(long)ParseU(t[1], line);
        (line, t) = Expect(command, line, 1);
        return unchecked((long)ParseU(t[1], line));
    }

    private AccessResult Access(string command)
    {
        var line = Execute(command)[0];
        var t = Tokens(line);
        if (t.Length >= 2 && t[0] == "sig")
        {
            var signal = t[1] switch
            {
                "SIGSEGV" => LinuxAbi.SIGSEGV,
                "SIGBUS" => LinuxAbi.SIGBUS,
                _ => throw new NativeOracleException($"native oracle: unexpected signal in '{line}'", command),
            };
            var code = t.Length > 2 ? (int)(long)ParseU(t[2], line) : 0;
            var addr = t.Length > 3 ? ParseU(t[3], line) : 0;
            return new AccessResult(0, signal, code, addr);
        }
        (line, t) = Expect(command, line, 1);
        return AccessResult.Ok(ParseU(t[1], line));
    }

    private static string[] Tokens(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Decimal, 0x-hex, or negative decimal (two's complement).</summary>
    internal static ulong ParseU(string s, string line)
    {
        bool ok;
        ulong v;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            ok = ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v);
        }
        else if (s.StartsWith('-'))
        {
            ok = long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var sv);
            v = unchecked((ulong)sv);
        }
        else
        {
            ok = ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        }
        return ok ? v : throw new NativeOracleException($"native oracle: bad number '{s}' in '{line}'");
    }

    // ------------------------------------------------------------------ availability

    private static NativeOracleAvailability ProbeAvailability(string? workDir)
    {
        if (!OperatingSystem.IsLinux())
            return new(false, false, $"not Linux ({RuntimeInformation.OSDescription})");
        if (!File.Exists("/proc/self/pagemap"))
            return new(false, false, "/proc/self/pagemap is missing (CONFIG_PROC_PAGE_MONITOR off?)");
        if (OracleBuild.FindCompiler() is null)
            return new(false, false, $"{OracleBuild.Compiler} not found on PATH");
        try
        {
            using var oracle = Start(workDir);
            oracle.Layout(0);
        }
        catch (NativeOracleException e)
        {
            return new(false, false, $"the native oracle does not build or run: {e.Message}");
        }

        var problems = new List<string>();
        if (!Environment.IsPrivilegedProcess)
            problems.Add("not running as root: /proc/self/pagemap reports PFN 0 and /proc/kpage* are unreadable");
        foreach (var file in new[] { "/proc/kpagecount", "/proc/kpageflags" })
        {
            if (!File.Exists(file))
                problems.Add($"{file} is missing");
            else if (!CanRead8(file, 0, out _, out var why))
                problems.Add($"{file} is not readable ({why})");
        }
        if (problems.Count == 0 && !PagemapShowsPfns(out var pagemapWhy))
            problems.Add(pagemapWhy);
        return problems.Count == 0
            ? new(true, true, "available: gcc, static glibc, root, PFNs visible, /proc/kpagecount and /proc/kpageflags readable")
            : new(true, false, string.Join("; ", problems));
    }

    private static bool CanRead8(string path, long offset, out ulong value, out string why)
    {
        value = 0;
        why = "";
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            Span<byte> buffer = stackalloc byte[8];
            if (RandomAccess.Read(handle, buffer, offset) != 8)
            {
                why = "short read";
                return false;
            }
            value = BinaryPrimitives.ReadUInt64LittleEndian(buffer);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            why = e.Message;
            return false;
        }
    }

    /// <summary>Touches a page of our own and checks that /proc/self/pagemap reports a nonzero PFN for it.</summary>
    private static bool PagemapShowsPfns(out string why)
    {
        var memory = Marshal.AllocHGlobal(2 * (int)LinuxAbi.PAGE_SIZE);
        try
        {
            Marshal.WriteInt64(memory, 0x5a5a5a5a);
            var addr = (ulong)memory;
            if (!CanRead8("/proc/self/pagemap", (long)(addr / LinuxAbi.PAGE_SIZE * 8), out var entry, out why))
                return false;
            if ((entry >> 63 & 1) == 0)
            {
                why = "/proc/self/pagemap: a just-written page is not present";
                return false;
            }
            if ((entry & PfnMask) == 0)
            {
                why = "/proc/self/pagemap hides PFNs (needs CAP_SYS_ADMIN)";
                return false;
            }
            return true;
        }
        finally
        {
            Marshal.FreeHGlobal(memory);
        }
    }
}

using System.Globalization;

namespace MmCheck.Litmus.Binding;

/// <summary>What a scenario value is: a number, a signal an access ended with, a process, a string.</summary>
public enum ValueKind
{
    Number,
    Signal,
    Process,
    String,
    /// <summary>A physical frame (a PFN read from a page table or pagemap); printed renamed per
    /// outcome (frame1, frame2, …), so outcomes do not depend on which frames the allocator chose.</summary>
    Frame,
    /// <summary>Nothing was assigned (a register never written, an exited process's memory).</summary>
    None,
}

/// <summary>
/// A value in a scenario: syscall results and loaded words are 64-bit numbers (negative errno
/// included); an access the kernel answered with a signal yields the signal; fork yields a process.
/// </summary>
public readonly record struct LitValue(ValueKind Kind, long Number, string? Text = null)
{
    public static LitValue Of(long n) => new(ValueKind.Number, n);

    public static LitValue Of(ulong n) => new(ValueKind.Number, unchecked((long)n));

    public static LitValue Signal(int sig) => new(ValueKind.Signal, sig);

    public static LitValue Process(string name, int pid) => new(ValueKind.Process, pid, name);

    public static LitValue Str(string s) => new(ValueKind.String, 0, s);

    public static LitValue Frame(ulong pfn) => new(ValueKind.Frame, unchecked((long)pfn));

    public static readonly LitValue None = new(ValueKind.None, 0);

    public ulong Unsigned => unchecked((ulong)Number);

    /// <summary>The canonical printed form used in outcomes and goldens.</summary>
    public override string ToString() => Kind switch
    {
        ValueKind.Number when Number < 0 && Linux.Errno.IsErrValue(Number) && Linux.Errno.Name((int)-Number) is { } e => "-" + e,
        ValueKind.Number when Number < 0 => Number.ToString(CultureInfo.InvariantCulture),
        ValueKind.Number => "0x" + Unsigned.ToString("x", CultureInfo.InvariantCulture),
        ValueKind.Signal => Number switch { 11 => "SIGSEGV", 7 => "SIGBUS", 9 => "SIGKILL", _ => $"signal {Number}" },
        ValueKind.Process => Text ?? $"pid {Number}",
        ValueKind.String => "\"" + Text + "\"",
        ValueKind.Frame => "pfn 0x" + Unsigned.ToString("x", CultureInfo.InvariantCulture),
        _ => "none",
    };
}

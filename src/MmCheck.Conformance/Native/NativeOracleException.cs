namespace MmCheck.Conformance.Native;

/// <summary>The oracle could not produce a result: build failure, timeout, dead controller or subject,
/// or a command it rejected.</summary>
public sealed class NativeOracleException : Exception
{
    public NativeOracleException()
    {
    }

    public NativeOracleException(string message)
        : base(message)
    {
    }

    public NativeOracleException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public NativeOracleException(string message, string? command, string? stderrTail = null)
        : base(Compose(message, command, stderrTail))
    {
        Command = command;
        StderrTail = stderrTail;
    }

    /// <summary>The command line being executed, if any.</summary>
    public string? Command { get; }

    /// <summary>The last lines the oracle wrote to stderr, if any.</summary>
    public string? StderrTail { get; }

    /// <summary>The subject that was found dead, if that is what happened.</summary>
    public int? DeadSubject { get; init; }

    private static string Compose(string message, string? command, string? stderrTail)
    {
        var text = command is null ? message : $"{message} (command: '{command}')";
        return string.IsNullOrWhiteSpace(stderrTail) ? text : $"{text}{Environment.NewLine}oracle stderr:{Environment.NewLine}{stderrTail}";
    }
}

namespace MmCheck.Cli.Tests;

/// <summary>Runs the mmcheck command in-process, as a terminal-less caller would, and keeps its output.</summary>
internal static class CliHarness
{
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int exit = Cli.Run(args, o, e);
        return (exit, o.ToString(), e.ToString());
    }
}

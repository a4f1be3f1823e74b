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

/// <summary>A test class with a scratch folder of its own for the scenario files it writes.</summary>
public abstract class ScratchDirTests : IDisposable
{
    protected ScratchDirTests(string prefix)
    {
        Dir = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
    }

    protected string Dir { get; }

    public void Dispose()
    {
        Directory.Delete(Dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    protected static (int Exit, string Out, string Err) Run(params string[] args) => CliHarness.Run(args);

    /// <summary>Writes <paramref name="text"/> to <paramref name="name"/> in the folder; returns its path.</summary>
    protected string Write(string name, string text)
    {
        string path = Path.Combine(Dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}

using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace MmCheck.Conformance.Native;

/// <summary>Compiles native/oracle.c (and bench/native/mmbench.c, for the benchmarks) with the machine's gcc
/// into a cache directory keyed by a hash of the source and the compiler flags.</summary>
internal static class OracleBuild
{
    internal const string Compiler = "gcc";
    internal static readonly string[] Flags = ["-O2", "-static", "-Wall", "-Werror"];
    private static readonly TimeSpan CompileTimeout = TimeSpan.FromMinutes(2);
    private static readonly Lock BuildLock = new();

    /// <summary>native/oracle.c next to the assembly (the project copies it to the output directory).</summary>
    internal static string SourcePath => NativeSourcePath("oracle.c");

    /// <summary>A C source in native/ next to the assembly.</summary>
    internal static string NativeSourcePath(string file) => Path.Combine(AppContext.BaseDirectory, "native", file);

    internal static string DefaultCacheDirectory => Path.Combine(Path.GetTempPath(), "mmcheck-oracle");

    /// <summary>Full path of gcc on PATH, or null.</summary>
    internal static string? FindCompiler()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, Compiler);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    /// <summary>Returns the path of an up-to-date oracle binary, building it if needed.</summary>
    internal static string EnsureBuilt(string? workDir) => EnsureBuilt(SourcePath, workDir);

    /// <summary>The same for any single-file C program: the binary is named after the source
    /// (<c>NAME-HASH</c>).</summary>
    internal static string EnsureBuilt(string sourcePath, string? workDir)
    {
        if (!File.Exists(sourcePath))
            throw new NativeOracleException($"native source not found at {sourcePath}");
        var source = File.ReadAllBytes(sourcePath);
        var key = Convert.ToHexStringLower(SHA256.HashData(
            [.. source, .. Encoding.UTF8.GetBytes(string.Join(' ', Flags))]))[..16];
        var dir = Path.GetFullPath(workDir ?? DefaultCacheDirectory);
        var name = Path.GetFileNameWithoutExtension(sourcePath);
        var binary = Path.Combine(dir, $"{name}-{key}");
        if (File.Exists(binary))
            return binary;

        lock (BuildLock)
        {
            if (File.Exists(binary))
                return binary;
            var gcc = FindCompiler() ?? throw new NativeOracleException($"{Compiler} not found on PATH");
            Directory.CreateDirectory(dir);
            // Unique temporary names, then atomic renames: concurrent builders (other test processes) are fine.
            var unique = $"{Environment.ProcessId}-{Guid.NewGuid():N}";
            var keyedSource = Path.Combine(dir, $"{name}-{key}.c");
            var tmpSource = $"{keyedSource}.{unique}.c";
            var tmpBinary = $"{binary}.{unique}.tmp";
            try
            {
                File.WriteAllBytes(tmpSource, source);
                Compile(gcc, tmpSource, tmpBinary);
                File.Move(tmpSource, keyedSource, overwrite: true);
                File.Move(tmpBinary, binary, overwrite: true);
            }
            finally
            {
                TryDelete(tmpSource);
                TryDelete(tmpBinary);
            }
            return binary;
        }
    }

    private static void Compile(string gcc, string source, string output)
    {
        string[] args = [.. Flags, "-o", output, source];
        var (exit, stdout, stderr) = RunToEnd(gcc, args, CompileTimeout);
        if (exit != 0)
        {
            throw new NativeOracleException(
                $"{gcc} {string.Join(' ', args)} failed with exit code {exit}:{Environment.NewLine}{(stdout + stderr).Trim()}");
        }
    }

    /// <summary>Runs <paramref name="program"/> with <paramref name="args"/> to its end and returns its
    /// exit code and output; a run longer than <paramref name="timeout"/> is killed, with its children,
    /// and is an error.</summary>
    internal static (int ExitCode, string Stdout, string Stderr) RunToEnd(string program, IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        using var process = Process.Start(psi)
            ?? throw new NativeOracleException($"could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new NativeOracleException($"{program} did not finish within {timeout}");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

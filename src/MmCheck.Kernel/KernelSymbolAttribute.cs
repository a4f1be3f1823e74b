using System.Runtime.CompilerServices;

namespace Linux;

/// <summary>
/// Names the kernel symbol a member mirrors, with the file that defines it, so that
/// <c>docs/kernel-map.md</c> and the trace printer can go from C# back to the kernel.
/// The compiler records where the attribute stands, so the map also leads from C to C#.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class | AttributeTargets.Struct |
                AttributeTargets.Field | AttributeTargets.Property | AttributeTargets.Enum,
                AllowMultiple = false, Inherited = false)]
public sealed class KernelSymbolAttribute(
    string name,
    string file = "",
    [CallerFilePath] string sourceFile = "",
    [CallerLineNumber] int sourceLine = 0) : Attribute
{
    /// <summary>The C identifier, e.g. <c>do_wp_page</c>.</summary>
    public string Name { get; } = name;

    /// <summary>The file that defines it, e.g. <c>mm/memory.c</c>.</summary>
    public string File { get; } = file;

    /// <summary>The C# file that mirrors it, as the compiler saw it.</summary>
    public string SourceFile { get; } = sourceFile;

    public int SourceLine { get; } = sourceLine;
}

using System.Reflection;
using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// Maps the C# names the kernel model reports at scheduling points (its methods' names) to the C
/// names of the functions they mirror, from the <see cref="KernelSymbolAttribute"/> on each method.
/// Built by reflection once.
/// </summary>
public static class KernelSymbols
{
    private static readonly Lazy<Dictionary<string, (string Name, string File)>> s_map = new(Build);

    /// <summary>The kernel's name for <paramref name="function"/>, or the name itself when it has none
    /// (the model already passes C names for syscalls and user accesses).</summary>
    public static string CName(string function) =>
        function is not null && s_map.Value.TryGetValue(function, out var s) ? s.Name : function ?? "";

    /// <summary>The kernel source file that defines <paramref name="function"/>, or null.</summary>
    public static string? File(string function) =>
        s_map.Value.TryGetValue(function, out var s) && s.File.Length > 0 ? s.File : null;

    private static Dictionary<string, (string, string)> Build()
    {
        var map = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                                 BindingFlags.Static | BindingFlags.DeclaredOnly;
        Type[] types;
        try
        {
            types = typeof(Kernel).Assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            types = [.. e.Types.Where(t => t is not null)!];
        }
        // Metadata order is fixed for a given assembly, so "first wins" is deterministic.
        foreach (var type in types)
        {
            foreach (var m in type.GetMethods(all))
            {
                if (m.GetCustomAttribute<KernelSymbolAttribute>() is { } a)
                {
                    map.TryAdd(m.Name, (a.Name, a.File));
                }
            }
        }
        return map;
    }
}

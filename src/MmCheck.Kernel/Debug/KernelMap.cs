using System.Reflection;
using System.Text;

namespace Linux;

/// <summary>
/// docs/kernel-map.md: every kernel symbol the model mirrors, by kernel file, with the C# member
/// and the file and line that hold it — built from the <see cref="KernelSymbolAttribute"/>s.
/// </summary>
public static class KernelMap
{
    public sealed record Entry(string Symbol, string KernelFile, string Member, string SourceFile, int SourceLine);

    public static IReadOnlyList<Entry> Entries(params Assembly[] assemblies)
    {
        var list = new List<Entry>();
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var asm in assemblies.Length == 0 ? [typeof(Kernel).Assembly] : assemblies)
        {
            foreach (var type in asm.GetTypes())
            {
                Add(list, type, TypeName(type));
                foreach (var m in type.GetMembers(all))
                {
                    if (m is not Type)
                    {
                        Add(list, m, $"{TypeName(type)}.{m.Name}");
                    }
                }
            }
        }
        return list
            .OrderBy(e => e.KernelFile, StringComparer.Ordinal)
            .ThenBy(e => e.Symbol, StringComparer.Ordinal)
            .ThenBy(e => e.Member, StringComparer.Ordinal)
            .ToList();
    }

    private static void Add(List<Entry> list, MemberInfo m, string member)
    {
        if (m.GetCustomAttribute<KernelSymbolAttribute>() is { } a)
        {
            list.Add(new Entry(a.Name, a.File.Length == 0 ? "(various)" : a.File, member, Relative(a.SourceFile), a.SourceLine));
        }
    }

    private static string TypeName(Type t) => t.DeclaringType is { } outer ? TypeName(outer) + "." + t.Name : t.Name;

    // Lines are left out of the document so that it changes only when symbols move between files.

    /// <summary>The path from the repository's src/ on, whatever machine compiled it.</summary>
    private static string Relative(string path)
    {
        string p = path.Replace('\\', '/');
        int i = p.LastIndexOf("/src/", StringComparison.Ordinal);
        return i >= 0 ? p[(i + 1)..] : p;
    }

    public static string Markdown(params Assembly[] assemblies)
    {
        var entries = Entries(assemblies);
        var sb = new StringBuilder();
        sb.Append("# Kernel map\n\n");
        sb.Append("Every kernel function, type and constant the model mirrors, by the kernel file that defines it,\n");
        sb.Append("with the C# member and the place that holds it. Generated from the `[KernelSymbol]` attributes by\n");
        sb.Append("`mmcheck list --kernel-map`; a test keeps this file in step with the code.\n\n");
        sb.Append($"{entries.Count} symbols.\n");
        foreach (var group in entries.GroupBy(e => e.KernelFile))
        {
            sb.Append("\n## ").Append(group.Key).Append("\n\n| symbol | C# | where |\n|---|---|---|\n");
            foreach (var e in group)
            {
                sb.Append("| `").Append(e.Symbol).Append("` | `").Append(e.Member).Append("` | ")
                  .Append(e.SourceFile).Append(" |\n");
            }
        }
        return sb.ToString();
    }
}

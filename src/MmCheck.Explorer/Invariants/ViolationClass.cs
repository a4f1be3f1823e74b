using System.Text.RegularExpressions;
using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// Groups findings into classes reported once each: a message with its numbers (addresses, pfns,
/// pids, object ids) blanked out; a lock-order cycle by its set of lock classes, whichever edge
/// happened to close it.
/// </summary>
internal static partial class ViolationClass
{
    private const string CyclePrefix = "possible circular locking dependency: ";

    public static string Of(string invariant, string message)
    {
        if (invariant == Invariants.LockOrder && CycleNodes(message) is { } nodes)
        {
            return invariant + "|cycle:" + string.Join(" → ", Canonical(nodes));
        }
        return invariant + "|" + Numbers().Replace(message, "#");
    }

    /// <summary>The lock classes of a lockdep cycle message, in cycle order, without the repeat.</summary>
    public static List<string>? CycleNodes(string message)
    {
        if (!message.StartsWith(CyclePrefix, StringComparison.Ordinal))
        {
            return null;
        }
        int end = message.IndexOf(';', CyclePrefix.Length);
        string chain = end < 0 ? message[CyclePrefix.Length..] : message[CyclePrefix.Length..end];
        var parts = chain.Split(" → ");
        if (parts.Length < 2)
        {
            return null;
        }
        return [.. parts.Take(parts.Length - 1)];
    }

    /// <summary>The cycle rotated to start at its ordinally smallest class.</summary>
    private static List<string> Canonical(List<string> nodes)
    {
        int best = 0;
        for (int i = 1; i < nodes.Count; i++)
        {
            if (string.CompareOrdinal(nodes[i], nodes[best]) < 0)
            {
                best = i;
            }
        }
        var r = new List<string>(nodes.Count);
        for (int i = 0; i < nodes.Count; i++)
        {
            r.Add(nodes[(best + i) % nodes.Count]);
        }
        return r;
    }

    [GeneratedRegex(@"\b(?:0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*\b")]
    private static partial Regex Numbers();
}

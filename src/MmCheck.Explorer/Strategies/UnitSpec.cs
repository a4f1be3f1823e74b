namespace MmCheck.Explorer;

/// <summary>
/// A unit of DFS work: the subtree below one choice at one node of the shared tree. The key is
/// the path of choices from the root; the unit's own choice is the last. The root unit has an
/// empty key. A unit is a deterministic function of its spec, whoever runs it.
/// </summary>
internal sealed class UnitSpec
{
    public static readonly UnitSpec Root = new([], [], null, []);

    public UnitSpec(int[] key, ulong[] dataBits, SharedNode? node, List<SleepEntry> sleepCandidates)
    {
        Key = key;
        DataBits = dataBits;
        Node = node;
        SleepCandidates = sleepCandidates;
    }

    public int[] Key { get; }
    /// <summary>Bit j: the node of choice j is a data choice (else a thread choice).</summary>
    public ulong[] DataBits { get; }
    /// <summary>The shared node where the unit's own choice is made (null for the root unit); the
    /// nodes above it along the key are its ancestors, found from it only when needed (they were
    /// most likely built on another worker's core).</summary>
    public SharedNode? Node { get; }
    /// <summary>The sleep set in force at the unit's own choice.</summary>
    public List<SleepEntry> SleepCandidates { get; }

    public bool IsData(int j) => (DataBits[j >> 6] & (1UL << (j & 63))) != 0;

    public override string ToString() => Key.Length == 0 ? "root" : string.Join(".", Key);
}

/// <summary>Orders unit keys as DFS would visit them: lexicographically, a prefix first.</summary>
internal sealed class UnitKeyComparer : IComparer<int[]>
{
    public static readonly UnitKeyComparer Instance = new();

    public int Compare(int[]? x, int[]? y)
    {
        x ??= [];
        y ??= [];
        int n = Math.Min(x.Length, y.Length);
        for (int i = 0; i < n; i++)
        {
            if (x[i] != y[i])
            {
                return x[i] < y[i] ? -1 : 1;
            }
        }
        return x.Length.CompareTo(y.Length);
    }
}

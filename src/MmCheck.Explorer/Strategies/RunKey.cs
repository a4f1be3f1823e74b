namespace MmCheck.Explorer;

/// <summary>Where an execution sits in DFS order: its unit's key, then its index in the unit.</summary>
internal readonly record struct RunKey(int[] Unit, int Exec) : IComparable<RunKey>
{
    public int CompareTo(RunKey other)
    {
        int c = UnitKeyComparer.Instance.Compare(Unit, other.Unit);
        return c != 0 ? c : Exec.CompareTo(other.Exec);
    }
}

namespace MmCheck.Explorer;

/// <summary>A branching node of the shared top of the DFS tree.</summary>
/// <remarks>
/// Nodes refer to their parent only: a node stays alive while a queued or running unit below it
/// (or the unit that created it) can still send it requests, and is collected after.
/// </remarks>
internal sealed class SharedNode
{
    public SharedNode? Parent;
    public int Depth;
    public bool IsData;
    /// <summary>The branch the creating unit took (explored by that unit).</summary>
    public int First;
    public ulong[]? FirstFoot;
    public bool FirstHasData;
    public ulong SleepMask;
    /// <summary>The sleep set at the node (a thread node), or before the step (a data node).</summary>
    public List<SleepEntry> Sleep = [];
    /// <summary>Branches started (thread nodes), as a mask.</summary>
    public ulong Added;
}

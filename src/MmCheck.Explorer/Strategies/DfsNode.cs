namespace MmCheck.Explorer;

/// <summary>
/// A thread in a sleep set with the footprint of the step it would take: it stays asleep (is not
/// scheduled) until a step that conflicts with that footprint runs.
/// </summary>
internal readonly record struct SleepEntry(int Thread, ulong[] Foot);

/// <summary>
/// A branching point of the DFS: a state where two or more tasks are enabled (a thread node), or a
/// data choice with two or more values (a data node). Forced steps are not nodes.
/// </summary>
internal sealed class DfsNode
{
    public bool IsData;
    /// <summary>Thread node: the step it precedes. Data node: the step it is inside.</summary>
    public int Step;
    public ulong Enabled;
    /// <summary>Threads to explore from here (source-DPOR's backtrack set, or all for plain DFS).</summary>
    public ulong Backtrack;
    public ulong Done;
    public ulong SleepMask;
    public readonly List<SleepEntry> Sleep = [];
    /// <summary>Explored children with their first step's footprint: asleep in later siblings.</summary>
    public readonly List<SleepEntry> DoneEntries = [];
    public int Chosen;
    public int Count;
    /// <summary>Data node: what is chosen (for messages).</summary>
    public string What = "";
    public int LastThread;
    public bool LastEnabled;
    public int PreemptionsBefore;
    /// <summary>The node in the shared tree, once published (above the split depth).</summary>
    public SharedNode? Shared;
    /// <summary>Above the split depth: shared, published when a request first needs it.</summary>
    public bool InSharedTop;
    /// <summary>The chosen child's step in the execution log once it ran, else -1. Its footprint is copied
    /// out (<see cref="ChosenFoot"/>) only when a sleep set or the shared tree needs it, which most
    /// nodes never do; replays are deterministic, so the step is the same in every execution that
    /// passes the node.</summary>
    public int ChosenStep;
    public ulong[]? ChosenFoot;
    public bool ChosenHasData;

    public void Reset()
    {
        IsData = false;
        Step = 0;
        Enabled = 0;
        Backtrack = 0;
        Done = 0;
        SleepMask = 0;
        Sleep.Clear();
        DoneEntries.Clear();
        Chosen = 0;
        Count = 0;
        What = "";
        LastThread = -1;
        LastEnabled = false;
        PreemptionsBefore = 0;
        Shared = null;
        InSharedTop = false;
        ChosenStep = -1;
        ChosenFoot = null;
        ChosenHasData = false;
    }
}

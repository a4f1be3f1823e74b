using System.Collections.Immutable;

namespace MmCheck.Conformance;

/// <summary>A page's pagemap entry as both sides report it.</summary>
internal readonly record struct PageState(bool Present, bool Exclusive, bool Swapped, bool File, ulong Pfn);

/// <summary>An smaps block, counters in kB.</summary>
internal sealed record SmapsView(ulong Start, ulong End, long RssKb, long AnonKb, IReadOnlyList<string> VmFlags);

/// <summary>A user access's outcome: the value, or the signal.</summary>
internal readonly record struct AccessOutcome(ulong Value, int Signal);

/// <summary>
/// One side of the comparison, as primitive operations on numbered processes. The shared
/// <see cref="CaseInterpreter"/> resolves arguments, decides what is skipped and formats every
/// observation, so both sides produce texts in exactly the same format.
/// </summary>
internal abstract class Side : IDisposable
{
    protected Side(ProcessLayout layout) => Layout = layout;

    public ProcessLayout Layout { get; }

    public abstract string Name { get; }

    /// <summary>Creates process 0 with the mirrored layout.</summary>
    public abstract void Begin(ConformanceCase c);

    /// <summary>Ends every process still alive.</summary>
    public abstract void End();

    public abstract long Mmap(int p, ulong addr, ulong len, int prot, int flags, long fd, long off);

    public abstract long Munmap(int p, ulong addr, ulong len);

    public abstract long Mprotect(int p, ulong addr, ulong len, int prot);

    public abstract long Mremap(int p, ulong oldAddr, ulong oldLen, ulong newLen, int flags, ulong newAddr);

    public abstract long Madvise(int p, ulong addr, ulong len, int advice);

    public abstract long MemfdCreate(int p, string name, int flags);

    public abstract long Ftruncate(int p, long fd, long len);

    public abstract long Close(int p, long fd);

    /// <summary>0 when process <paramref name="newProc"/> exists afterwards, or -errno.</summary>
    public abstract long Fork(int p, int newProc);

    public abstract void Exit(int p);

    public abstract AccessOutcome Load(int p, ulong addr, int size);

    public abstract AccessOutcome Store(int p, ulong addr, int size, ulong value);

    public abstract PageState Pagemap(int p, ulong addr);

    public abstract bool IsZeroPfn(ulong pfn);

    public abstract long KpageCount(ulong pfn);

    /// <summary>The /proc/kpageflags word (KPF_* bit numbers).</summary>
    public abstract ulong KpageFlags(ulong pfn);

    public abstract SmapsView? Smaps(int p, ulong addr);

    public abstract IReadOnlyList<MapsLine> Maps(int p);

    /// <summary>Frames freed by the operation just run (see <see cref="Observation.Freed"/>).</summary>
    public virtual ImmutableArray<ulong> AfterOp(Op op) => [];

    /// <summary>Model findings (BUG, WARN, broken invariants) since the last call, or null.</summary>
    public virtual string? TakeFindings() => null;

    public virtual void Dispose()
    {
    }
}

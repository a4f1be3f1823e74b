using System.Globalization;

namespace Linux;

/// <summary>A state change inside a step, kept for readable traces ("PTE old → new").</summary>
public abstract record Effect
{
    public abstract string Describe();

    public sealed override string ToString() => Describe();
}

/// <summary>A page-table entry changed. <see cref="Level"/> is 1 for a PTE, 2 PMD, 3 PUD, 4 P4D, 5 PGD.</summary>
public sealed record PtEntryEffect(int MmId, ulong Address, int Level, ulong Old, ulong New) : Effect
{
    public override string Describe() =>
        $"{PgTable.LevelName(Level)}({Address:x}) {X86Pte.Format(Old, Level)} → {X86Pte.Format(New, Level)}";
}

/// <summary>A VMA was inserted, removed, split or changed.</summary>
public sealed record VmaEffect(int MmId, string What, ulong Start, ulong End, VmFlags Flags) : Effect
{
    public override string Describe() =>
        $"vma {What} [{Start:x}-{End:x}) {MmFlags.Format(Flags)}";
}

/// <summary>A folio counter changed.</summary>
public sealed record FolioCountEffect(ulong Pfn, string Counter, int Old, int New) : Effect
{
    public override string Describe() =>
        string.Create(CultureInfo.InvariantCulture, $"folio(pfn {Pfn:x}).{Counter} {Old} → {New}");
}

/// <summary>Anything else worth a line in a trace.</summary>
public sealed record NoteEffect(string Text) : Effect
{
    public override string Describe() => Text;
}

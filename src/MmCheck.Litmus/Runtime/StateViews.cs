using Linux;
using MmCheck.Litmus.Binding;
using static Linux.X86Pte;

namespace MmCheck.Litmus.Runtime;

/// <summary>
/// The state a final condition can read of a process, without changing it: its page-table entry
/// for an address (<c>P:PTE(a).write</c>), the frame mapped there (<c>P:PFN(a)</c>), its
/// /proc/pid/pagemap entry, the kpagecount of that frame, and the smaps counters of the VMA.
/// </summary>
public static class StateViews
{
    public static readonly string[] PteFields =
        ["present", "none", "write", "user", "young", "dirty", "special", "nx", "global", "huge", "protnone", "uffd_wp", "soft_dirty", "swap", "pfn"];

    public static readonly string[] PagemapFields = ["present", "exclusive", "file", "swapped", "soft_dirty", "uffd_wp", "pfn"];

    public static readonly string[] SmapsFields = ["rss", "anonymous", "lazyfree"];

    private static LitValue Bool(bool b) => LitValue.Of(b ? 1L : 0L);

    /// <summary>Reads one view. Context: no task runs; reads page tables directly as /proc does.</summary>
    public static LitValue Read(Kernel k, MmStruct mm, string view, ulong addr, string? field)
    {
        switch (view)
        {
            case "PTE":
                return ReadPte(k, mm, addr, field!);
            case "PFN":
            {
                if (!k.PeekLeaf(mm, addr, out ulong e, out int level) || (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0)
                {
                    return LitValue.None;
                }
                return LitValue.Frame(LeafPfn(e, level, addr));
            }
            case "pagemap":
            {
                var pm = k.Pagemap(mm, addr);
                return field switch
                {
                    "present" => Bool(pm.Present),
                    "exclusive" => Bool(pm.Exclusive),
                    "file" => Bool(pm.File),
                    "swapped" => Bool(pm.Swapped),
                    "soft_dirty" => Bool(pm.SoftDirty),
                    "uffd_wp" => Bool(pm.UffdWp),
                    _ => pm.Present ? LitValue.Frame(pm.Pfn) : LitValue.None,
                };
            }
            case "kpagecount":
            {
                var pm = k.Pagemap(mm, addr);
                return pm.Present ? LitValue.Of(k.KpageCount(pm.Pfn)) : LitValue.None;
            }
            case "smaps":
            {
                if (k.VmaAt(mm, addr) is not { } vma)
                {
                    return LitValue.None;
                }
                var s = k.Smaps(vma);
                // In kB, as /proc/pid/smaps prints them.
                return LitValue.Of((long)((field switch { "rss" => s.Rss, "anonymous" => s.Anonymous, _ => s.LazyFree }) >> 10));
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(view), view, "unknown view");
        }
    }

    private static ulong LeafPfn(ulong e, int level, ulong addr)
    {
        ulong pfn = PgTable.PtePfn(new Pte(e & ~(level > 1 ? _PAGE_PAT_LARGE : 0)));
        // A huge leaf maps many frames: the one under addr.
        return level switch
        {
            2 => (pfn & ~511UL) + ((addr >> 12) & 511),
            3 => (pfn & ~((1UL << 18) - 1)) + ((addr >> 12) & ((1UL << 18) - 1)),
            _ => pfn,
        };
    }

    private static LitValue ReadPte(Kernel k, MmStruct mm, ulong addr, string field)
    {
        bool leaf = k.PeekLeaf(mm, addr, out ulong e, out int level);
        if (!leaf)
        {
            // No table down to a leaf: the entry is none.
            return field is "none" ? Bool(true) : field is "pfn" ? LitValue.None : Bool(false);
        }
        bool present = (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0;
        return field switch
        {
            "present" => Bool(present),
            "none" => Bool((e & ~(_PAGE_DIRTY | _PAGE_ACCESSED)) == 0),
            "write" => Bool(present && (e & _PAGE_RW) != 0),
            "user" => Bool(present && (e & _PAGE_USER) != 0),
            "young" => Bool(present && (e & _PAGE_ACCESSED) != 0),
            "dirty" => Bool(present && (e & _PAGE_DIRTY) != 0),
            "special" => Bool(present && (e & _PAGE_SPECIAL) != 0),
            "nx" => Bool(present && (e & _PAGE_NX) != 0),
            "global" => Bool(present && (e & _PAGE_GLOBAL) != 0),
            "huge" => Bool(present && level > 1),
            "protnone" => Bool((e & (_PAGE_PRESENT | _PAGE_PROTNONE)) == _PAGE_PROTNONE),
            "uffd_wp" => Bool((e & _PAGE_UFFD_WP) != 0),
            "soft_dirty" => Bool((e & _PAGE_SOFT_DIRTY_BIT) != 0),
            "swap" => Bool(!present && e != 0),
            _ => present ? LitValue.Frame(LeafPfn(e, level, addr)) : LitValue.None,
        };
    }
}

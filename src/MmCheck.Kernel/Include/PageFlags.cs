using System.Runtime.InteropServices;

namespace Linux;

/// <summary>
/// include/linux/page-flags.h: the page flags the model keeps, plus the page type
/// (page->page_type) and the anon marker the kernel keeps in the low bit of folio->mapping.
/// </summary>
[Flags]
[KernelSymbol("pageflags", "include/linux/page-flags.h")]
public enum PageFlags : uint
{
    None = 0,
    PG_locked = 1u << 0,
    PG_writeback = 1u << 1,
    PG_referenced = 1u << 2,
    PG_uptodate = 1u << 3,
    PG_dirty = 1u << 4,
    PG_lru = 1u << 5,
    PG_head = 1u << 6,
    PG_waiters = 1u << 7,
    PG_active = 1u << 8,
    PG_workingset = 1u << 9,
    /// <summary>PG_owner_priv_1 as PG_swapcache.</summary>
    PG_swapcache = 1u << 10,
    PG_reserved = 1u << 11,
    PG_private = 1u << 12,
    PG_reclaim = 1u << 13,
    PG_swapbacked = 1u << 14,
    PG_unevictable = 1u << 15,
    PG_mlocked = 1u << 16,
    /// <summary>PG_mappedtodisk reused as PG_anon_exclusive on anon pages.</summary>
    PG_anon_exclusive = 1u << 17,
    PG_hwpoison = 1u << 18,

    /// <summary>page_type PGTY_buddy: free in the page allocator.</summary>
    PGTY_buddy = 1u << 24,
    /// <summary>page_type PGTY_table: a page-table page.</summary>
    PGTY_table = 1u << 25,
    /// <summary>page_type PGTY_zero-ish: the shared zero page (reserved, never freed).</summary>
    PGTY_zero = 1u << 26,

    /// <summary>PAGE_MAPPING_ANON: folio->mapping points to an anon_vma.</summary>
    PAGE_MAPPING_ANON = 1u << 28,

    /// <summary>Model-only: the content store holds words of this frame (so freeing must clear them).</summary>
    ModelHasContent = 1u << 30,
}

/// <summary>A page: its PFN. Descriptors live in <see cref="MemMap"/>.</summary>
[KernelSymbol("page", "include/linux/mm_types.h")]
public readonly record struct Page(ulong Pfn)
{
    public override string ToString() => $"page(pfn {Pfn:x})";
}

/// <summary>A folio: in this model every folio is a single page (order 0), so a folio is its head PFN.</summary>
[KernelSymbol("folio", "include/linux/mm_types.h")]
public readonly record struct Folio(ulong Pfn)
{
    public Page Page => new(Pfn);

    public override string ToString() => $"folio(pfn {Pfn:x})";
}

/// <summary>
/// mem_map: one descriptor per RAM frame. A descriptor is 22 bytes — flags, _refcount,
/// _mapcount (kept as the count, not count−1), a mapping handle, and a 48-bit index — allocated
/// lazily in chunks of 512 KiB of RAM (finer than SPARSEMEM's 128 MiB sections, so a partly used
/// section costs little: a small scenario, which builds a kernel per explored execution, touches
/// one chunk of 2.75 KiB). A chunk is one array of packed descriptors; the chunk directory grows
/// to the highest chunk touched.
/// </summary>
[KernelSymbol("mem_map", "mm/sparse.c")]
public sealed class MemMap
{
    public const int ChunkShift = 7;
    public const int PagesPerChunk = 1 << ChunkShift;
    private const ulong ChunkMask = PagesPerChunk - 1;
    /// <summary>folio->index fits 48 bits: LA57 virtual page numbers and files up to 2^60 bytes.</summary>
    public const int IndexBits = 48;

    /// <summary>One frame's descriptor (struct page, the fields the model keeps), packed to 22 bytes.</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 2)]
    private struct Desc
    {
        public uint Flags;
        public int RefCount;
        public int MapCount;
        public int Mapping;
        public uint IndexLo;
        public ushort IndexHi;
    }

    /// <summary>Indexed by pfn >> <see cref="ChunkShift"/>; grown by <see cref="Materialize"/>.</summary>
    private Desc[]?[] _chunks = [];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Desc Get(ulong pfn)
    {
        ulong c = pfn >> ChunkShift;
        var chunks = _chunks;
        var chunk = c < (ulong)chunks.Length ? chunks[c] : null;
        return ref (chunk ?? Materialize(c))[pfn & ChunkMask];
    }

    /// <summary>The first access to a chunk: allocates it (and grows the directory if needed).
    /// Kept out of line so that the inlined accessors stay small.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Desc[] Materialize(ulong c)
    {
        if (c >= (ulong)_chunks.Length)
        {
            Array.Resize(ref _chunks, Math.Max((int)c + 1, 2 * _chunks.Length));
        }
        return _chunks[c] ??= RecycledArrays<Desc>.Rent(PagesPerChunk);
    }

    /// <summary>Gives the chunks back (<see cref="Kernel.Recycle"/>).</summary>
    internal void Recycle()
    {
        foreach (var chunk in _chunks)
        {
            if (chunk is not null)
            {
                RecycledArrays<Desc>.Return(chunk);
            }
        }
        _chunks = [];
    }

    /// <summary>Bytes of descriptors allocated so far (for the memory-per-page benchmark).</summary>
    public long AllocatedBytes => _chunks.Count(s => s is not null) * (long)PagesPerChunk * Unsafe.SizeOf<Desc>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref uint Flags(ulong pfn) => ref Get(pfn).Flags;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref int RefCount(ulong pfn) => ref Get(pfn).RefCount;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref int MapCount(ulong pfn) => ref Get(pfn).MapCount;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref int Mapping(ulong pfn) => ref Get(pfn).Mapping;

    /// <summary>folio->index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong GetIndex(ulong pfn)
    {
        ref var d = ref Get(pfn);
        return d.IndexLo | ((ulong)d.IndexHi << 32);
    }

    /// <summary>Sets folio->index; an index beyond 48 bits is a limit of the model, not of Linux.</summary>
    public void SetIndex(ulong pfn, ulong index)
    {
        if (index >> IndexBits != 0)
        {
            throw new InvalidOperationException($"model limit: folio index {index:x} needs more than {IndexBits} bits");
        }
        ref var d = ref Get(pfn);
        d.IndexLo = (uint)index;
        d.IndexHi = (ushort)(index >> 32);
    }

    /// <summary>Reads a descriptor's flags without materialising its chunk.</summary>
    public uint PeekFlags(ulong pfn)
    {
        ulong c = pfn >> ChunkShift;
        return c < (ulong)_chunks.Length && _chunks[c] is { } ch ? ch[pfn & ChunkMask].Flags : 0;
    }
}

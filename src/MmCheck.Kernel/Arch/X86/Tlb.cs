using static Linux.PgTable;

namespace Linux;

/// <summary>One cached translation: a 4 KiB page of an mm (huge leaves are cached per 4 KiB piece).</summary>
public readonly record struct TlbEntry(ulong Pfn, bool Writable, bool User, bool Dirty);

/// <summary>
/// A CPU's second-level TLB: set-associative like the hardware (128 sets of 16 ways, indexed by
/// the low bits of the virtual page number, round-robin replacement within a set), entries tagged
/// with the mm as PCIDs do. Small scenarios never evict, so a missing flush stays visible.
/// </summary>
public sealed class Tlb(int cpu)
{
    public const int Sets = 128;
    public const int Ways = 16;
    public const int Capacity = Sets * Ways;
    private const int VpnBits = 46;

    /// <summary>
    /// Storage is model-only and allocated a set at a time, on the set's first fill (<see cref="AllocateSet"/>):
    /// a kernel is built for every explored execution and a scenario touches a handful of sets, so a
    /// fresh TLB costs a few hundred bytes, not 48 KiB. The slots of set s are
    /// [_block[s] * Ways, (_block[s] + 1) * Ways) of <see cref="_tags"/> and <see cref="_data"/>; block 0, where every set
    /// starts, is never written and reads as empty (no tag is 0). Until the first fill the arrays are
    /// these shared empty ones; the first fill makes room for block 0 and eight sets.
    /// </summary>
    private static readonly ulong[] s_emptyTags = new ulong[Ways];
    private static readonly TlbEntry[] s_emptyData = new TlbEntry[Ways];
    private const int InitialBlocks = 9;

    /// <summary>Each set's block number (at most <see cref="Sets"/>); 0 = none yet.</summary>
    private byte[] _block = RecycledArrays<byte>.Rent(Sets);
    /// <summary>Blocks handed out so far, block 0 included.</summary>
    private int _blocks = 1;
    /// <summary>Tag per slot: (mm + 1) above the VPN; 0 marks an empty slot.</summary>
    private ulong[] _tags = s_emptyTags;
    private TlbEntry[] _data = s_emptyData;
    private byte[] _victim = RecycledArrays<byte>.Rent(Sets);
    private int _count;
    /// <summary>How many slots map each frame, so freeing a frame checks the TLB in O(1).</summary>
    private readonly PfnCounts _byPfn = new(Capacity);
    public readonly ulong Obj = ObjId.Make(ObjId.Kind.Tlb, (ulong)cpu);

    public int Count => _count;

    /// <summary>Gives <paramref name="set"/> its own block of slots (growing the arrays by doubling);
    /// returns the block's first slot.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int AllocateSet(int set)
    {
        int block = _blocks++;
        int b = block * Ways;
        if (b + Ways > _tags.Length)
        {
            int n = Math.Min(Math.Max(2 * _tags.Length, InitialBlocks * Ways), (Sets + 1) * Ways);
            _tags = Grow(_tags, s_emptyTags, n);
            _data = Grow(_data, s_emptyData, n);
        }
        _block[set] = (byte)block;
        return b;
    }

    /// <summary>A bigger array with <paramref name="old"/>'s contents; <paramref name="old"/> goes
    /// back to the pool unless it is the shared empty one (<paramref name="shared"/>).</summary>
    private static T[] Grow<T>(T[] old, T[] shared, int n)
    {
        var a = RecycledArrays<T>.Rent(n);
        old.CopyTo(a, 0);
        if (old != shared)
        {
            RecycledArrays<T>.Return(old);
        }
        return a;
    }

    /// <summary>Gives the storage back (<see cref="Kernel.Recycle"/>); the TLB is then empty and unusable.</summary>
    internal void Recycle()
    {
        if (_tags != s_emptyTags)
        {
            RecycledArrays<ulong>.Return(_tags);
            RecycledArrays<TlbEntry>.Return(_data);
        }
        RecycledArrays<byte>.Return(_block);
        RecycledArrays<byte>.Return(_victim);
        (_tags, _data, _block, _victim) = (s_emptyTags, s_emptyData, [], []);
        _byPfn.Recycle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Tag(int mm, ulong vpn) => ((ulong)(mm + 1) << VpnBits) | vpn;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(ulong tag, ulong vpn)
    {
        int b = _block[(int)(vpn & (Sets - 1))] * Ways;
        for (int i = b; i < b + Ways; i++)
        {
            if (_tags[i] == tag)
            {
                return i;
            }
        }
        return -1;
    }

    public bool TryGet(int mm, ulong vpn, out TlbEntry e)
    {
        int i = Find(Tag(mm, vpn), vpn);
        e = i >= 0 ? _data[i] : default;
        return i >= 0;
    }

    public void Fill(int mm, ulong vpn, TlbEntry e)
    {
        ulong tag = Tag(mm, vpn);
        int set = (int)(vpn & (Sets - 1));
        int b = _block[set] * Ways;
        if (b == 0)
        {
            b = AllocateSet(set);
        }
        // One pass over the set: the entry's own slot if cached, else the first empty one.
        int i = -1, empty = -1;
        for (int j = b; j < b + Ways; j++)
        {
            ulong t = _tags[j];
            if (t == tag)
            {
                i = j;
                break;
            }
            if (t == 0 && empty < 0)
            {
                empty = j;
            }
        }
        if (i >= 0)
        {
            Unref(_data[i].Pfn);
        }
        else
        {
            i = empty;
            if (i < 0)
            {
                i = b + _victim[set];
                _victim[set] = (byte)((_victim[set] + 1) % Ways);
                Unref(_data[i].Pfn);
            }
            else
            {
                _count++;
            }
            _tags[i] = tag;
        }
        _data[i] = e;
        _byPfn.Add(e.Pfn, 1);
    }

    private void Unref(ulong pfn) => _byPfn.Add(pfn, -1);

    private void Clear(int i)
    {
        Unref(_data[i].Pfn);
        _tags[i] = 0;
        _data[i] = default;
        _count--;
    }

    public bool Invalidate(int mm, ulong vpn)
    {
        int i = Find(Tag(mm, vpn), vpn);
        if (i < 0)
        {
            return false;
        }
        Clear(i);
        return true;
    }

    public int InvalidateRange(int mm, ulong startVpn, ulong endVpn)
    {
        if (_count == 0)
        {
            return 0;
        }
        int n = 0;
        if (endVpn - startVpn <= Sets)
        {
            for (ulong v = startVpn; v < endVpn; v++)
            {
                if (Invalidate(mm, v))
                {
                    n++;
                }
            }
            return n;
        }
        var (lo, hi) = TagBounds(mm, startVpn, endVpn);
        for (int i = Ways; i < _blocks * Ways; i++)
        {
            if (_tags[i] >= lo && _tags[i] < hi)
            {
                Clear(i);
                n++;
            }
        }
        return n;
    }

    public int InvalidateMm(int mm) => InvalidateRange(mm, 0, 1UL << VpnBits);

    /// <summary>The tags of [<paramref name="startVpn"/>, <paramref name="endVpn"/>) of <paramref name="mm"/>
    /// form one interval, [Lo, Hi): tags order by mm, then page; a range to the top ends at the next mm.</summary>
    private static (ulong Lo, ulong Hi) TagBounds(int mm, ulong startVpn, ulong endVpn) =>
        (Tag(mm, startVpn), endVpn >= 1UL << VpnBits ? Tag(mm + 1, 0) : Tag(mm, endVpn));

    /// <summary>Whether any page of [<paramref name="startVpn"/>, <paramref name="endVpn"/>) of
    /// <paramref name="mm"/> is cached: a probe per page for short ranges, else one pass over the slots.</summary>
    public bool AnyInRange(int mm, ulong startVpn, ulong endVpn)
    {
        if (_count == 0)
        {
            return false;
        }
        if (endVpn - startVpn <= Sets)
        {
            for (ulong v = startVpn; v < endVpn; v++)
            {
                if (Find(Tag(mm, v), v) >= 0)
                {
                    return true;
                }
            }
            return false;
        }
        var (lo, hi) = TagBounds(mm, startVpn, endVpn);
        for (int i = Ways; i < _blocks * Ways; i++)
        {
            if (_tags[i] >= lo && _tags[i] < hi)
            {
                return true;
            }
        }
        return false;
    }

    public IEnumerable<(int Mm, ulong Va, TlbEntry Entry)> Entries()
    {
        // Set by set, way by way: the order of the hardware's slots, whatever order the blocks came in.
        for (int set = 0; set < Sets; set++)
        {
            int b = _block[set] * Ways;
            if (b == 0)
            {
                continue;
            }
            for (int i = b; i < b + Ways; i++)
            {
                if (_tags[i] != 0)
                {
                    yield return ((int)(_tags[i] >> VpnBits) - 1, (_tags[i] & ((1UL << VpnBits) - 1)) << PAGE_SHIFT, _data[i]);
                }
            }
        }
    }

    public bool MapsPfn(ulong pfn, out ulong va, out int mm)
    {
        va = 0;
        mm = -1;
        if (_byPfn.Get(pfn) == 0)
        {
            return false;
        }
        foreach (var (m, v, e) in Entries())
        {
            if (e.Pfn == pfn)
            {
                (va, mm) = (v, m);
                return true;
            }
        }
        return false;
    }
}

/// <summary>
/// A small open-addressing map from PFN to a count (linear probing, backward-shift deletion):
/// the TLB's reverse index. It starts small and doubles while at most half full, up to room for
/// <paramref name="maxEntries"/> keys, so a fresh TLB costs little and a full one never rehashes.
/// </summary>
internal sealed class PfnCounts(int maxEntries)
{
    private const int InitialSlots = 16;
    private ulong[] _keys = RecycledArrays<ulong>.Rent(InitialSlots);   // pfn + 1; 0 = empty
    private int[] _counts = RecycledArrays<int>.Rent(InitialSlots);
    private int _mask = InitialSlots - 1;
    private int _used;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> 40) & _mask;

    public int Get(ulong pfn)
    {
        ulong key = pfn + 1;
        for (int i = Home(key); _keys[i] != 0; i = (i + 1) & _mask)
        {
            if (_keys[i] == key)
            {
                return _counts[i];
            }
        }
        return 0;
    }

    /// <summary>Adds <paramref name="delta"/>; an entry reaching zero is removed.</summary>
    public void Add(ulong pfn, int delta)
    {
        ulong key = pfn + 1;
        int i = Home(key);
        for (; _keys[i] != 0; i = (i + 1) & _mask)
        {
            if (_keys[i] == key)
            {
                if ((_counts[i] += delta) == 0)
                {
                    Remove(i);
                }
                return;
            }
        }
        _keys[i] = key;
        _counts[i] = delta;
        if (++_used * 2 > _keys.Length && _keys.Length < 2 * maxEntries)
        {
            Grow();
        }
    }

    /// <summary>Doubles the table and reinserts every key (slot order does not matter to lookups).</summary>
    private void Grow()
    {
        var (keys, counts) = (_keys, _counts);
        _keys = RecycledArrays<ulong>.Rent(keys.Length * 2);
        _counts = RecycledArrays<int>.Rent(keys.Length * 2);
        _mask = _keys.Length - 1;
        for (int j = 0; j < keys.Length; j++)
        {
            if (keys[j] != 0)
            {
                int i = Home(keys[j]);
                while (_keys[i] != 0)
                {
                    i = (i + 1) & _mask;
                }
                _keys[i] = keys[j];
                _counts[i] = counts[j];
            }
        }
        RecycledArrays<ulong>.Return(keys);
        RecycledArrays<int>.Return(counts);
    }

    /// <summary>Gives the storage back (<see cref="Tlb.Recycle"/>).</summary>
    public void Recycle()
    {
        RecycledArrays<ulong>.Return(_keys);
        RecycledArrays<int>.Return(_counts);
        (_keys, _counts, _mask, _used) = ([], [], 0, 0);
    }

    private void Remove(int hole)
    {
        _used--;
        _keys[hole] = 0;
        for (int j = (hole + 1) & _mask; _keys[j] != 0; j = (j + 1) & _mask)
        {
            int home = Home(_keys[j]);
            // Move j back into the hole unless its home lies cyclically in (hole, j].
            bool stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
            if (!stays)
            {
                _keys[hole] = _keys[j];
                _counts[hole] = _counts[j];
                _keys[j] = 0;
                hole = j;
            }
        }
    }
}

/// <summary>
/// struct mmu_gather: zapping collects the pages it unmapped and frees them only after the TLB
/// flush that removes every translation to them (mm/mmu_gather.c).
/// </summary>
[KernelSymbol("mmu_gather", "include/asm-generic/tlb.h")]
public sealed class MmuGather(MmStruct mm, bool fullmm)
{
    public readonly MmStruct Mm = mm;
    /// <summary>tlb->fullmm: the whole mm is going away (exit_mmap).</summary>
    public readonly bool FullMm = fullmm;
    public ulong Start = ulong.MaxValue;
    public ulong End;
    internal readonly List<(Folio Folio, int Refs)> Pages = [];
    internal readonly List<PageTable> Tables = [];

    /// <summary>tlb_flush_pte_range() / __tlb_adjust_range().</summary>
    public void AdjustRange(ulong address, ulong size)
    {
        Start = Math.Min(Start, address);
        End = Math.Max(End, address + size);
    }
}

// arch/x86/mm/tlb.c, mm/mmu_gather.c.
public sealed partial class Kernel
{
    /// <summary>flush_tlb_mm_range(): shoots down the range on every CPU that may cache the mm.</summary>
    /// <remarks>Context: interrupts enabled (it IPIs the other CPUs); often called under a page-table lock. Does not
    /// sleep.</remarks>
    [KernelSymbol("flush_tlb_mm_range", "arch/x86/mm/tlb.c")]
    public void FlushTlbMmRange(MmStruct mm, ulong start, ulong end)
    {
        if (end <= start)
        {
            return;
        }
        foreach (var cpu in Cpus)
        {
            Sched.Access(cpu.Tlb.Obj, write: true);
            cpu.Tlb.InvalidateRange(mm.Id, start >> PAGE_SHIFT, (end + PAGE_SIZE - 1) >> PAGE_SHIFT);
        }
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new NoteEffect($"flush_tlb mm#{mm.Id} [{start:x}-{end:x})"));
        }
    }

    /// <remarks>Context: as flush_tlb_mm_range().</remarks>
    [KernelSymbol("flush_tlb_range", "arch/x86/include/asm/tlbflush.h")]
    public void FlushTlbRange(VmAreaStruct vma, ulong start, ulong end) => FlushTlbMmRange(vma.VmMm, start, end);

    /// <remarks>Context: as flush_tlb_mm_range().</remarks>
    [KernelSymbol("flush_tlb_page", "arch/x86/include/asm/tlbflush.h")]
    public void FlushTlbPage(VmAreaStruct vma, ulong addr) => FlushTlbMmRange(vma.VmMm, addr, addr + PAGE_SIZE);

    /// <remarks>Context: as flush_tlb_mm_range().</remarks>
    [KernelSymbol("flush_tlb_mm", "arch/x86/include/asm/tlbflush.h")]
    public void FlushTlbMm(MmStruct mm) => FlushTlbMmRange(mm, 0, ulong.MaxValue & PAGE_MASK);

    /// <summary>flush_tlb_kernel_range(): every CPU, init_mm's translations.</summary>
    /// <remarks>Context: interrupts enabled (it IPIs every CPU); does not sleep.</remarks>
    [KernelSymbol("flush_tlb_kernel_range", "arch/x86/mm/tlb.c")]
    public void FlushTlbKernelRange(ulong start, ulong end) => FlushTlbMmRange(InitMm, start, end);

    /// <summary>tlb_gather_mmu().</summary>
    /// <remarks>Context: process context; the caller holds what keeps the range's VMAs stable (mmap_lock, or
    /// i_mmap_rwsem for an rmap zap).</remarks>
    [KernelSymbol("tlb_gather_mmu", "mm/mmu_gather.c")]
    public MmuGather TlbGatherMmu(MmStruct mm) => new(mm, fullmm: false);

    /// <summary>tlb_gather_mmu_fullmm().</summary>
    /// <remarks>Context: exit_mmap(): the mm has no users left.</remarks>
    [KernelSymbol("tlb_gather_mmu_fullmm", "mm/mmu_gather.c")]
    public MmuGather TlbGatherMmuFullmm(MmStruct mm) => new(mm, fullmm: true);

    /// <summary>__tlb_remove_folio_pages(): defer dropping references until after the flush.</summary>
    /// <remarks>Context: the PTL held (zap_pte_range()); does not sleep. The reference is dropped by tlb_flush_mmu(),
    /// after the flush.</remarks>
    [KernelSymbol("tlb_remove_folio_pages", "mm/mmu_gather.c")]
    public void TlbRemoveFolio(MmuGather tlb, Folio f, int refs = 1) => tlb.Pages.Add((f, refs));

    /// <summary>tlb_flush_mmu(): flush, then free the batched pages and tables.</summary>
    /// <remarks>Context: no page-table lock held (freeing the batch may reschedule); the lock the gather's caller
    /// holds (mmap_lock or i_mmap_rwsem) still held.</remarks>
    [KernelSymbol("tlb_flush_mmu", "mm/mmu_gather.c")]
    public void TlbFlushMmu(MmuGather tlb)
    {
        if (tlb.FullMm)
        {
            FlushTlbMm(tlb.Mm);
        }
        else if (tlb.End > tlb.Start)
        {
            FlushTlbMmRange(tlb.Mm, tlb.Start, tlb.End);
        }
        tlb.Start = ulong.MaxValue;
        tlb.End = 0;
        // mm/swap_state.c:free_pages_and_swap_cache() puts the references without draining this
        // CPU's LRU batches (it did before it moved to folios_put_refs()), and
        // mm/vma.c:unmap_region() does not drain either: a folio a batch holds outlives the unmap.
        foreach (var (f, refs) in tlb.Pages)
        {
            FolioPutRefs(f, refs);
        }
        tlb.Pages.Clear();
        foreach (var t in tlb.Tables)
        {
            FreePageTable(t);
        }
        tlb.Tables.Clear();
    }

    /// <summary>tlb_finish_mmu().</summary>
    /// <remarks>Context: as tlb_flush_mmu(); ends the gather.</remarks>
    [KernelSymbol("tlb_finish_mmu", "mm/mmu_gather.c")]
    public void TlbFinishMmu(MmuGather tlb) => TlbFlushMmu(tlb);
}

namespace Linux;

/// <summary>
/// The VMAs of an mm in address order (the kernel's maple tree, mm->mm_mt). Lookups are binary
/// searches, O(log n); inserts and removals shift an array, which for the tens of VMAs a scenario
/// has is cheaper than any tree.
/// </summary>
[KernelSymbol("mm_mt", "include/linux/mm_types.h")]
public sealed class VmaTree
{
    private readonly List<VmAreaStruct> _vmas = [];
    private readonly Kernel _k;
    private readonly MmStruct _mm;
    /// <summary>Footprint identity of the tree.</summary>
    public readonly ulong Obj;

    internal VmaTree(Kernel k, MmStruct mm)
    {
        _k = k;
        _mm = mm;
        Obj = ObjId.Make(ObjId.Kind.VmaTree, (ulong)mm.Id);
    }

    public int Count => _vmas.Count;

    /// <summary>All VMAs in address order (a snapshot).</summary>
    public IReadOnlyList<VmAreaStruct> Snapshot() => [.. _vmas];

    /// <summary>The <paramref name="index"/>-th VMA in address order, for readers that do not change
    /// the tree while they go through it (the invariant checks).</summary>
    internal VmAreaStruct this[int index] => _vmas[index];

    /// <summary>Index of the first VMA with vm_end &gt; addr.</summary>
    private int LowerBound(ulong addr)
    {
        int lo = 0, hi = _vmas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (_vmas[mid].VmEnd > addr)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }
        return lo;
    }

    /// <summary>find_vma(): the first VMA with vm_end &gt; addr, or null.</summary>
    /// <remarks>Context: mmap_lock held, read or write (mmap_assert_locked()).</remarks>
    [KernelSymbol("find_vma", "mm/mmap.c")]
    public VmAreaStruct? FindVma(ulong addr)
    {
        _k.MmapAssertLocked(_mm, "find_vma");
        return MtFind(addr);
    }

    /// <summary>mt_find() from addr: the first VMA with vm_end &gt; addr, or null, asserting nothing.</summary>
    /// <remarks>Context: the tree kept stable by the mmap lock or read under RCU.</remarks>
    [KernelSymbol("mt_find", "lib/maple_tree.c")]
    private VmAreaStruct? MtFind(ulong addr)
    {
        _k.Sched.Access(Obj, write: false);
        int i = LowerBound(addr);
        return i < _vmas.Count ? _vmas[i] : null;
    }

    /// <summary>vma_lookup(): the VMA containing addr, or null (mtree_load(), which asserts no lock).</summary>
    /// <remarks>Context: mmap_lock held; or, in lock_vma_under_rcu(), a lockless lookup whose VMA is revalidated once
    /// read-locked.</remarks>
    [KernelSymbol("vma_lookup", "include/linux/mm.h")]
    public VmAreaStruct? VmaLookup(ulong addr)
    {
        var v = MtFind(addr);
        return v is not null && v.VmStart <= addr ? v : null;
    }

    /// <summary>find_vma_prev(): the VMA at or after addr, and the one before it.</summary>
    /// <remarks>Context: mmap_lock held, read or write.</remarks>
    [KernelSymbol("find_vma_prev", "mm/mmap.c")]
    public VmAreaStruct? FindVmaPrev(ulong addr, out VmAreaStruct? prev)
    {
        _k.Sched.Access(Obj, write: false);
        int i = LowerBound(addr);
        prev = i > 0 ? _vmas[i - 1] : null;
        return i < _vmas.Count ? _vmas[i] : null;
    }

    /// <summary>find_vma_intersection(): the first VMA overlapping [start, end).</summary>
    /// <remarks>Context: mmap_lock held, read or write (mmap_assert_locked(), through find_vma() here).</remarks>
    [KernelSymbol("find_vma_intersection", "mm/mmap.c")]
    public VmAreaStruct? FindVmaIntersection(ulong start, ulong end)
    {
        var v = FindVma(start);
        return v is not null && v.VmStart < end ? v : null;
    }

    /// <summary>The VMAs overlapping [start, end), in order (a snapshot).</summary>
    public List<VmAreaStruct> Overlapping(ulong start, ulong end)
    {
        _k.Sched.Access(Obj, write: false);
        var list = new List<VmAreaStruct>();
        for (int i = LowerBound(start); i < _vmas.Count && _vmas[i].VmStart < end; i++)
        {
            list.Add(_vmas[i]);
        }
        return list;
    }

    /// <summary>The VMA after <paramref name="vma"/> (vma_next()).</summary>
    public VmAreaStruct? Next(VmAreaStruct vma)
    {
        _k.Sched.Access(Obj, write: false);
        int i = LowerBound(vma.VmEnd);
        return i < _vmas.Count ? _vmas[i] : null;
    }

    /// <summary>The VMA before <paramref name="vma"/> (vma_prev()).</summary>
    public VmAreaStruct? Prev(VmAreaStruct vma)
    {
        _k.Sched.Access(Obj, write: false);
        int i = LowerBound(vma.VmStart);
        return i > 0 ? _vmas[i - 1] : null;
    }

    /// <summary>vma_iter_store(): inserts a VMA; its range must be free.</summary>
    internal void Insert(VmAreaStruct vma)
    {
        _k.Sched.Access(Obj, write: true);
        int i = LowerBound(vma.VmStart);
        if (i < _vmas.Count && _vmas[i].VmStart < vma.VmEnd)
        {
            throw new InvalidOperationException($"model defect: {vma} overlaps {_vmas[i]} in the VMA tree");
        }
        _vmas.Insert(i, vma);
        vma.Attached = true;
    }

    /// <summary>vma_iter_clear(): removes a VMA.</summary>
    internal void Remove(VmAreaStruct vma)
    {
        _k.Sched.Access(Obj, write: true);
        int i = LowerBound(vma.VmStart);
        if (i >= _vmas.Count || _vmas[i] != vma)
        {
            i = _vmas.IndexOf(vma);
        }
        if (i < 0)
        {
            throw new InvalidOperationException($"model defect: {vma} is not in the VMA tree");
        }
        _vmas.RemoveAt(i);
        vma.Attached = false;
    }

    /// <summary>Called after a VMA's bounds changed in place (they must keep the order).</summary>
    internal void Touch() => _k.Sched.Access(Obj, write: true);
}

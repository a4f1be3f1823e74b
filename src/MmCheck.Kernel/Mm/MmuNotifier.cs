namespace Linux;

/// <summary>struct mmu_notifier_range: what is being invalidated, why, and by whom.</summary>
[KernelSymbol("mmu_notifier_range", "include/linux/mmu_notifier.h")]
public sealed record MmuNotifierRange(MmStruct Mm, MmuNotifierEvent Event, ulong Start, ulong End, object? Owner);

/// <summary>
/// struct mmu_notifier with its ops: a secondary MMU (a device's page tables) following an mm.
/// invalidate_range_start() is called before any PTE in the range changes; _end() after the
/// TLB flush. Between the two the subscriber must not establish new mappings of the range.
/// </summary>
[KernelSymbol("mmu_notifier", "include/linux/mmu_notifier.h")]
public sealed class MmuNotifier
{
    public required string Name { get; init; }
    public Func<MmuNotifierRange, ValueTask<int>>? InvalidateRangeStart { get; init; }
    public Func<MmuNotifierRange, ValueTask>? InvalidateRangeEnd { get; init; }
    /// <summary>->release(): the mm is being torn down (exit_mmap).</summary>
    public Func<MmStruct, ValueTask>? Release { get; init; }
}

// mm/mmu_notifier.c: subscriptions per mm and the invalidate_range_start/end calls.
public sealed partial class Kernel
{
    private readonly Dictionary<MmStruct, List<MmuNotifier>> _mmuNotifiers = [];

    /// <summary>mmu_notifier_register().</summary>
    /// <remarks>Context: no mm lock held, the mm kept alive (mm_users). The kernel takes mmap_lock for write (and
    /// mm_take_all_locks()) around the insertion; the model takes no lock.</remarks>
    [KernelSymbol("mmu_notifier_register", "mm/mmu_notifier.c")]
    public void MmuNotifierRegister(MmuNotifier n, MmStruct mm)
    {
        if (!_mmuNotifiers.TryGetValue(mm, out var list))
        {
            _mmuNotifiers[mm] = list = [];
        }
        list.Add(n);
    }

    /// <summary>mmu_notifier_unregister().</summary>
    /// <remarks>Context: may sleep (the kernel may call -&gt;release and waits for SRCU readers); no mm lock held.
    /// The model takes no lock.</remarks>
    [KernelSymbol("mmu_notifier_unregister", "mm/mmu_notifier.c")]
    public void MmuNotifierUnregister(MmuNotifier n, MmStruct mm)
    {
        if (_mmuNotifiers.TryGetValue(mm, out var list))
        {
            list.Remove(n);
        }
    }

    /// <summary>mmu_notifier_invalidate_range_start(): every subscriber's callback, in order.</summary>
    /// <remarks>Context: may sleep (a blockable range): no page-table lock held; the callers hold the
    /// mmap lock or an rmap lock (unmap_mapping_range()).</remarks>
    [KernelSymbol("mmu_notifier_invalidate_range_start", "include/linux/mmu_notifier.h")]
    public ValueTask MmuNotifierInvalidateRangeStart(MmStruct mm, MmuNotifierEvent ev, ulong start, ulong end, object? owner = null) =>
        _mmuNotifiers.Count == 0 || !_mmuNotifiers.TryGetValue(mm, out var list) || list.Count == 0
            ? default
            : CallInvalidateRangeStart(list, mm, ev, start, end, owner);

    private static async ValueTask CallInvalidateRangeStart(List<MmuNotifier> list, MmStruct mm, MmuNotifierEvent ev, ulong start, ulong end, object? owner)
    {
        var range = new MmuNotifierRange(mm, ev, start, end, owner);
        foreach (var n in list.ToList())
        {
            if (n.InvalidateRangeStart is { } f)
            {
                await f(range);
            }
        }
    }

    /// <summary>mmu_notifier_invalidate_range_end(): after the page tables of the range changed.</summary>
    /// <remarks>Context: as the matching invalidate_range_start(); no page-table lock held.</remarks>
    [KernelSymbol("mmu_notifier_invalidate_range_end", "include/linux/mmu_notifier.h")]
    public ValueTask MmuNotifierInvalidateRangeEnd(MmStruct mm, MmuNotifierEvent ev, ulong start, ulong end, object? owner = null) =>
        _mmuNotifiers.Count == 0 || !_mmuNotifiers.TryGetValue(mm, out var list) || list.Count == 0
            ? default
            : CallInvalidateRangeEnd(list, mm, ev, start, end, owner);

    private static async ValueTask CallInvalidateRangeEnd(List<MmuNotifier> list, MmStruct mm, MmuNotifierEvent ev, ulong start, ulong end, object? owner)
    {
        var range = new MmuNotifierRange(mm, ev, start, end, owner);
        foreach (var n in list.ToList())
        {
            if (n.InvalidateRangeEnd is { } f)
            {
                await f(range);
            }
        }
    }

    /// <summary>mmu_notifier_release(): exit_mmap() tells every subscriber the mm is going.</summary>
    /// <remarks>Context: the last mm user (exit_mmap()); may sleep; no locks held.</remarks>
    [KernelSymbol("mmu_notifier_release", "include/linux/mmu_notifier.h")]
    public async ValueTask MmuNotifierRelease(MmStruct mm)
    {
        if (!_mmuNotifiers.Remove(mm, out var list))
        {
            return;
        }
        foreach (var n in list)
        {
            if (n.Release is { } f)
            {
                await f(mm);
            }
        }
    }
}

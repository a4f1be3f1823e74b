namespace Linux;

// mm/swap.c: the per-CPU LRU batches. The model keeps only the lazyfree one (folio_mark_lazyfree());
// a new folio goes on the LRU at once rather than through an lru_add batch.
public sealed partial class Kernel
{
    /// <summary>FOLIO_BATCH_SIZE (include/linux/pagevec.h): the capacity of a folio batch.</summary>
    private const int FOLIO_BATCH_SIZE = 31;

    /// <summary>Per CPU (<see cref="ThisCpu"/>): folios waiting for lru_lazyfree(), each holding a reference.</summary>
    private readonly Dictionary<int, List<Folio>> _lruLazyfreeBatches = [];

    /// <summary>smp_processor_id() for per-CPU data: the current task's CPU, or the one CPU of
    /// <see cref="KernelConfig.OneCpu"/>; -1 outside any task.</summary>
    private int ThisCpu() => Current is not { } t ? -1 : Config.OneCpu ? 0 : t.Cpu.Id;

    /// <summary>
    /// folio_mark_lazyfree(): a clean anonymous folio on the LRU becomes lazily freeable — queued
    /// (with a reference, PG_lru kept) on this CPU's lru_lazyfree batch; lru_lazyfree() clears
    /// PG_swapbacked when the batch drains (full, or lru_add_drain()).
    /// </summary>
    /// <remarks>
    /// Context: called under the PTL: takes a folio reference and queues it on this CPU's batch
    /// without sleeping.
    /// </remarks>
    [KernelSymbol("folio_mark_lazyfree", "mm/swap.c")]
    public void FolioMarkLazyfree(Folio folio)
    {
        if (FolioTestAnon(folio) && FolioTest(folio, PageFlags.PG_swapbacked) && FolioTest(folio, PageFlags.PG_lru) &&
            !FolioTestSwapcache(folio) && !FolioTest(folio, PageFlags.PG_unevictable))
        {
            FolioGet(folio);
            int cpu = ThisCpu();
            if (!_lruLazyfreeBatches.TryGetValue(cpu, out var batch))
            {
                batch = [];
                _lruLazyfreeBatches[cpu] = batch;
            }
            batch.Add(folio);
            if (batch.Count >= FOLIO_BATCH_SIZE)
            {
                FolioBatchMoveLru(batch);
            }
        }
    }

    /// <summary>
    /// folio_batch_move_lru() with lru_lazyfree(): each folio still on the LRU and still an
    /// ordinary anonymous folio loses PG_active, PG_referenced and PG_swapbacked; then the batch's
    /// references are dropped.
    /// </summary>
    /// <remarks>
    /// Context: this CPU's batch; does not sleep (may run under a PTL). The lruvec lock is not
    /// modelled.
    /// </remarks>
    [KernelSymbol("folio_batch_move_lru", "mm/swap.c")]
    private void FolioBatchMoveLru(List<Folio> batch)
    {
        foreach (var folio in batch)
        {
            // folio_test_clear_lru(): isolated folios are skipped.
            if (!FolioTest(folio, PageFlags.PG_lru))
            {
                continue;
            }
            // lru_lazyfree().
            if (FolioTestAnon(folio) && FolioTest(folio, PageFlags.PG_swapbacked) && !FolioTestSwapcache(folio) &&
                !FolioTest(folio, PageFlags.PG_unevictable))
            {
                FolioClear(folio, PageFlags.PG_active | PageFlags.PG_referenced | PageFlags.PG_swapbacked);
            }
        }
        var folios = batch.ToList();
        batch.Clear();
        foreach (var folio in folios)
        {
            FolioPut(folio);
        }
    }

    /// <summary>lru_add_drain(): drain this CPU's LRU batches (the lazyfree one is the model's only).</summary>
    /// <remarks>Context: any; does not sleep.</remarks>
    [KernelSymbol("lru_add_drain", "mm/swap.c")]
    public void LruAddDrain()
    {
        int cpu = ThisCpu();
        if (_lruLazyfreeBatches.TryGetValue(cpu, out var batch) && batch.Count > 0)
        {
            FolioBatchMoveLru(batch);
        }
    }

    /// <summary>
    /// folio_batch_release() → mm/swap.c:__folio_batch_release(): drains this CPU's LRU batches
    /// the first time a batch is released (the folios may sit in them, which would keep them from
    /// being freed), then puts the batch's references.
    /// </summary>
    /// <remarks>Context: process context; does not sleep. <paramref name="drained"/> is the
    /// batch's percpu_pvec_drained, which folio_batch_init() clears and releasing it sets.</remarks>
    [KernelSymbol("folio_batch_release", "include/linux/pagevec.h")]
    private void FolioBatchRelease(IEnumerable<Folio> folios, ref bool drained)
    {
        if (!drained)
        {
            LruAddDrain();
            drained = true;
        }
        foreach (var f in folios)
        {
            FolioPut(f);
        }
    }
}

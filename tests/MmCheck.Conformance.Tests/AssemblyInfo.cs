// Every native oracle pins its processes to the lowest CPU it may use, so oracles running at once
// share that CPU's per-CPU LRU batches and free lists: one test's MADV_FREE, munmap or populate
// changes which frame another test's fault gets or keeps. The tests run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

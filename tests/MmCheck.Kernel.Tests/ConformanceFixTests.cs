using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>Model fixes for disagreements the conformance run found against this machine's kernel
/// (Linux 6.18); each also has a scenario in scenarios/conformance/.</summary>
public class ConformanceFixTests
{
    private const ulong P = 4096;

    /// <summary>
    /// mm/madvise.c:madvise_vma_behavior(): 6.18 refuses MADV_DOFORK only on VM_IO VMAs, so the vDSO
    /// (VM_DONTEXPAND, no VM_IO) accepts it; linux-mm after 6.18 refuses every VM_SPECIAL VMA, which
    /// is the variant madvise.dofork=vm_special.
    /// </summary>
    [Fact]
    public void MadviseDoforkRefusesVmIoOnlyUnlessTheVmSpecialVariantIsSelected()
    {
        var current = Proc.Boot();
        ulong a = current.MmapAnon(1);
        current.K.VmaAt(current.Mm, a)!.__VmFlags |= VmFlags.VM_DONTEXPAND;
        Assert.Equal(0, current.Madvise(a, P, MADV_DOFORK));
        current.K.VmaAt(current.Mm, a)!.__VmFlags |= VmFlags.VM_IO;
        Assert.Equal(-Errno.EINVAL, current.Madvise(a, P, MADV_DOFORK));

        var variants = Variants.Current.With("madvise.dofork", "vm_special", out var error);
        Assert.Null(error);
        Assert.Equal(["madvise.dofork=vm_special"], variants!.Describe());
        var next = Proc.Boot(new KernelConfig { Variants = variants });
        ulong b = next.MmapAnon(1);
        next.K.VmaAt(next.Mm, b)!.__VmFlags |= VmFlags.VM_DONTEXPAND;
        Assert.Equal(-Errno.EINVAL, next.Madvise(b, P, MADV_DOFORK));
        Assert.Equal(0, next.Madvise(b, P, MADV_DONTFORK));
    }

    /// <summary>
    /// mm/shmem.c:shmem_zero_setup() → __shmem_file_setup() → shmem_acct_size(): MAP_SHARED|MAP_ANONYMOUS
    /// charges its whole size at mmap() time unless MAP_NORESERVE, so under the overcommit heuristic a
    /// mapping larger than RAM is -ENOMEM; the charge goes back when the last mapping is gone.
    /// </summary>
    [Fact]
    public void SharedAnonymousMmapChargesItsSizeUnlessNoreserve()
    {
        var p = Proc.Boot(new KernelConfig { RamBytes = 64UL << 20 });
        ulong big = 128UL << 20;
        long before = p.K.CommittedPages;
        Assert.Equal(-Errno.ENOMEM, p.Mmap(0, big, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS));
        Assert.Equal(before, p.K.CommittedPages);
        long r = p.Mmap(0, big, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE);
        Assert.True(r > 0, Errno.Format(r));
        Assert.Equal(before, p.K.CommittedPages);

        long small = p.Mmap(0, 4 * P, PROT_READ, MAP_SHARED | MAP_ANONYMOUS);
        Assert.True(small > 0, Errno.Format(small));
        Assert.Equal(before + 4, p.K.CommittedPages);
        Assert.Equal(0, p.Munmap((ulong)small, 4 * P));
        Assert.Equal(before, p.K.CommittedPages);
        p.AssertClean();
    }

    /// <summary>
    /// A page MADV_FREE left in this CPU's lazyfree batch is referenced by that batch, so a write
    /// fault on it (its PTE read-only since fork) copies it unless something drained the batch
    /// first. mm/gup.c:populate_vma_page_range() and faultin_page_range() end with lru_add_drain(),
    /// so after MAP_POPULATE or MADV_POPULATE_WRITE elsewhere wp_can_reuse_anon_folio() finds the
    /// mapping's reference alone and reuses the page (random-s38-1508); so does truncating a memfd
    /// page (shmem_undo_range() → folio_batch_release()); munmap() drains nothing
    /// (mm/vma.c:unmap_region(), free_pages_and_swap_cache()), even when it frees pages, and neither
    /// does MAP_POPULATE of a PROT_NONE mapping, which populate_vma_page_range() refuses before its
    /// drain (random-s5-1351). No scenario in scenarios/conformance/: a final condition compares
    /// frames with each other, not with the frame a page had before.
    /// </summary>
    [Theory]
    [InlineData("none", false)]
    [InlineData("MAP_POPULATE", true)]
    [InlineData("PROT_NONE MAP_POPULATE", false)]
    [InlineData("MADV_POPULATE_WRITE", true)]
    [InlineData("munmap", false)]
    [InlineData("ftruncate", true)]
    public void AWriteAfterMadviseFreeReusesThePageOnlyAfterACallThatDrainsTheBatch(string between, bool reused)
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        ulong other = p.MmapAnon(1);
        p.Write(a, 1);
        p.Write(other, 1);
        var child = p.Fork();
        child.Write(a, 2);
        ulong before = p.Pagemap(a).Pfn;
        Assert.Equal(0, p.Madvise(a, P, MADV_FREE));
        switch (between)
        {
            case "MAP_POPULATE":
                p.MmapAnon(1, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
                break;
            case "PROT_NONE MAP_POPULATE":
                p.MmapAnon(1, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
                break;
            case "MADV_POPULATE_WRITE":
                Assert.Equal(0, p.Madvise(p.MmapAnon(1), P, MADV_POPULATE_WRITE));
                break;
            case "munmap":
                Assert.Equal(0, p.Munmap(other, P));
                break;
            case "ftruncate":
                long fd = p.Memfd(1);
                p.Write(p.MmapFile(fd, 1, MAP_SHARED), 1);
                Assert.Equal(0, p.Ftruncate(fd, 0));
                break;
        }
        p.Write(a, 3);
        Assert.Equal(reused, p.Pagemap(a).Pfn == before);
        Assert.Equal(3UL, p.Read(a));
        Assert.Equal(2UL, child.Read(a));
        p.AssertClean();
    }

    /// <summary>
    /// The LRU batches are per CPU. With every task on one CPU (<see cref="KernelConfig.OneCpu"/>,
    /// as the conformance oracle pins its processes), the drain that starts the parent's MADV_FREE
    /// (mm/madvise.c:madvise_free_single_vma()) empties the batch the child's MADV_FREE filled, and
    /// the child's write then reuses its page; with a CPU per task the child's batch keeps its
    /// reference and the write copies (random-s2-413).
    /// </summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void ADrainEmptiesTheBatchesOfItsOwnCpuOnly(bool oneCpu, bool reused)
    {
        var p = Proc.Boot(new KernelConfig { OneCpu = oneCpu });
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        var child = p.Fork();
        p.Write(a, 2);
        ulong before = child.Pagemap(a).Pfn;
        Assert.Equal(0, child.Madvise(a, P, MADV_FREE));
        Assert.Equal(0, p.Madvise(a, P, MADV_FREE));
        child.Write(a, 3);
        Assert.Equal(reused, child.Pagemap(a).Pfn == before);
        Assert.Equal(3UL, child.Read(a));
        Assert.Equal(2UL, p.Read(a));
        p.AssertClean();
    }
}

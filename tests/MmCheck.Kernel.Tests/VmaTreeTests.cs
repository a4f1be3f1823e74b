using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>mm->mm_mt: the ordered VMA tree and its lookups (find_vma, vma_lookup, find_vma_prev,
/// find_vma_intersection), checked against a linear scan over many VMAs.</summary>
public class VmaTreeTests
{
    private static Proc ManyVmas(int pages, out ulong start)
    {
        var p = Proc.Boot();
        start = p.MmapAnon((ulong)pages);
        // Every other page read-only: mprotect splits the mapping into `pages` VMAs.
        for (int i = 1; i < pages; i += 2)
        {
            Assert.Equal(0L, p.Mprotect(start + (ulong)i * 4096, 4096, PROT_READ));
        }
        // And a hole every 64 pages.
        for (int i = 32; i < pages; i += 64)
        {
            Assert.Equal(0L, p.Munmap(start + (ulong)i * 4096, 4096));
        }
        return p;
    }

    [Fact]
    public void TheTreeKeepsVmasOrderedAndDisjoint()
    {
        var p = ManyVmas(1024, out _);
        var vmas = p.Vmas;
        Assert.True(vmas.Count > 1000);
        Assert.Equal(vmas.Count, p.Mm.MapCount);
        for (int i = 1; i < vmas.Count; i++)
        {
            Assert.True(vmas[i - 1].VmEnd <= vmas[i].VmStart);
            Assert.True(vmas[i].VmStart < vmas[i].VmEnd);
        }
    }

    [Fact]
    public void LookupsAgreeWithALinearScanAtEveryBoundary()
    {
        var p = ManyVmas(1024, out ulong start);
        var vmas = p.Vmas;
        var tree = p.Mm.MmMt;
        var probes = new List<ulong> { 0, start - 1, ulong.MaxValue - 4096 };
        foreach (var v in vmas)
        {
            probes.AddRange([v.VmStart - 1, v.VmStart, v.VmStart + 1, v.VmEnd - 1, v.VmEnd]);
        }
        p.K.Run(p.T, async () =>
        {
            await p.K.MmapReadLock(p.Mm);
            foreach (ulong addr in probes)
            {
                var first = vmas.FirstOrDefault(v => v.VmEnd > addr);
                Assert.Same(first, tree.FindVma(addr));
                Assert.Same(first is not null && first.VmStart <= addr ? first : null, tree.VmaLookup(addr));
                var next = tree.FindVmaPrev(addr, out var prev);
                Assert.Same(first, next);
                Assert.Same(vmas.LastOrDefault(v => v.VmEnd <= addr), prev);
                var inter = vmas.FirstOrDefault(v => v.VmEnd > addr && v.VmStart < addr + 3 * 4096);
                Assert.Same(inter, tree.FindVmaIntersection(addr, addr + 3 * 4096));
            }
            await p.K.MmapReadUnlock(p.Mm);
        });
        p.AssertClean();
    }

    [Fact]
    public void RemovingSplitsMergesBackIntoOneVma()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(64);
        for (int i = 1; i < 64; i += 2)
        {
            Assert.Equal(0L, p.Mprotect(a + (ulong)i * 4096, 4096, PROT_READ));
        }
        Assert.Equal(64, p.Vmas.Count);
        Assert.Equal(0L, p.Mprotect(a, 64 * 4096, PROT_READ | PROT_WRITE));
        var v = Assert.Single(p.Vmas);
        Assert.Equal(a, v.VmStart);
        Assert.Equal(a + 64 * 4096, v.VmEnd);
        Assert.Equal(1, p.Mm.MapCount);
        p.AssertClean();
    }
}

using Linux;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// Kernel.CheckInvariants(): the page-table checks share one walk of the user PTEs per pass, find
/// what is broken, and allocate nothing when everything holds (the explorer runs them after
/// nearly every step of every execution).
/// </summary>
public class InvariantCheckTests
{
    private static Proc ForkedWithSharedPages(out Proc child, out ulong addr)
    {
        var p = Proc.Boot();
        addr = p.MmapAnon(8);
        p.Fill(addr, 8, 0x1000);
        child = p.Fork();
        child.Write(addr, 0x77);
        return p;
    }

    [Fact]
    public void ACleanKernelPassesEveryCheckWithoutAllocating()
    {
        var p = ForkedWithSharedPages(out _, out _);
        Assert.Empty(p.K.CheckInvariants());
        long before = GC.GetAllocatedBytesForCurrentThread();
        var found = p.K.CheckInvariants();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Empty(found);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void AMapcountOffByOneIsReportedAgainstThePtesThatMapTheFolio()
    {
        var p = ForkedWithSharedPages(out var child, out ulong addr);
        // Page 1 is still shared after fork: two PTEs map it.
        ulong pfn = p.K.Pagemap(p.Mm, addr + 4096).Pfn;
        Assert.Equal(pfn, child.K.Pagemap(child.Mm, addr + 4096).Pfn);
        p.K.MemMap.MapCount(pfn)++;
        var found = p.K.CheckInvariants().ToList();
        Assert.Contains((Invariants.RmapComplete, $"pfn {pfn:x} has mapcount 3 but 2 page-table entries map it"), found);
        // The mapcount now exceeds the folio's references: the refcount check sees it in the same pass.
        Assert.Contains(found, v => v.Invariant == Invariants.RefCount && v.Message.Contains($"pfn {pfn:x} has refcount", StringComparison.Ordinal));
        p.K.MemMap.MapCount(pfn)--;
        Assert.Empty(p.K.CheckInvariants());
    }
}

using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// dup_mmap() + copy_page_range(): which VMAs get their page tables copied (vma_needs_copy()), and
/// what copy_present_ptes() does to each kind of entry.
/// </summary>
public class ForkTests
{
    private static Pte PteAt(Proc p, ulong addr) => p.K.PtepGet(p.K.WalkPte(p.Mm, addr)!.Value);

    [Fact]
    public void AnonPtesAreCopiedWriteProtectedOldAndShared()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(1);
        p.Write(a, 1);
        ulong pfn = p.Pagemap(a).Pfn;
        var c = p.Fork();
        var pp = PteAt(p, a);
        var cp = PteAt(c, a);
        Assert.Equal(pfn, PgTable.PtePfn(cp));
        // __copy_present_ptes(): wrprotect in both, the child's entry old; dirty carried over for anon.
        Assert.False(PgTable.PteWrite(pp));
        Assert.False(PgTable.PteWrite(cp));
        Assert.False(PgTable.PteYoung(cp));
        Assert.True(PgTable.PteDirty(cp));
        Assert.Equal(2, p.K.FolioRefCount(new Folio(pfn)));
        Assert.Equal(2, p.K.FolioMapcount(new Folio(pfn)));
        Assert.False(p.K.PageAnonExclusive(new Page(pfn)));
        p.AssertClean();
    }

    [Fact]
    public void SharedFileVmasAreNotCopiedAndTheChildRefaultsTheSamePage()
    {
        // vma_needs_copy(): no anon_vma, no PFNMAP/MIXEDMAP/uffd-wp → skip the page tables.
        var p = Proc.Boot();
        long fd = p.Memfd(1);
        ulong a = p.MmapFile(fd, 1, MAP_SHARED);
        p.Write(a, 0x42);
        var c = p.Fork();
        Assert.False(c.Pagemap(a).Present);
        Assert.Equal(0x42UL, c.Read(a));
        Assert.Equal(p.Pagemap(a).Pfn, c.Pagemap(a).Pfn);
        c.Write(a, 0x43);
        Assert.Equal(0x43UL, p.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void PrivateFileVmasWithAnAnonVmaAreCopied()
    {
        var p = Proc.Boot();
        long fd = p.Memfd(2);
        ulong a = p.MmapFile(fd, 2, MAP_PRIVATE);
        p.Write(a, 7);       // an anon COW copy: the VMA now has an anon_vma
        p.Read(a + 4096);    // a page-cache page mapped read-only
        var c = p.Fork();
        Assert.True(c.Pagemap(a).Present);
        Assert.True(c.Pagemap(a + 4096).Present);
        Assert.True(c.Pagemap(a + 4096).File);
        Assert.Equal(7UL, c.Read(a));
        c.Write(a, 8);
        Assert.Equal(7UL, p.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void PfnmapEntriesAreCopiedAsTheyAreWithoutTouchingAnyDescriptor()
    {
        var p = Proc.Boot(new KernelConfig { RamBytes = 4UL << 30 });
        long fd = p.K.Run(p.T, () => p.K.SysOpen("/dev/mem", O_RDWR));
        Assert.True(fd >= 0, Errno.Format(fd));
        ulong phys = PageAllocator.PciHoleStart + 0x100000;
        long m = p.Mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, phys);
        Assert.True(m > 0, Errno.Format(m));
        ulong a = (ulong)m;
        Assert.True((p.Vmas.Single(v => v.VmStart == a).VmFlags & VmFlags.VM_PFNMAP) != 0);
        p.Write(a, 0x99);
        var pte = PteAt(p, a);
        Assert.True(PgTable.PteSpecial(pte));
        Assert.False(p.K.PfnValid(PgTable.PtePfn(pte)));
        var c = p.Fork();
        // Copied at fork (VM_PFNMAP is in VM_COPY_ON_FORK), special, same frame, still writable:
        // a shared mapping is not write-protected.
        var cp = PteAt(c, a);
        Assert.Equal(PgTable.PtePfn(pte), PgTable.PtePfn(cp));
        Assert.True(PgTable.PteSpecial(cp));
        Assert.True(PgTable.PteWrite(cp));
        // __copy_present_ptes(): a VM_SHARED source gives a clean child entry; every child entry is old.
        Assert.True(PgTable.PteDirty(PteAt(p, a)));
        Assert.False(PgTable.PteDirty(cp));
        Assert.False(PgTable.PteYoung(cp));
        Assert.Equal(0x99UL, c.Read(a));
        c.Write(a + 8, 0x77);
        Assert.Equal(0x77UL, p.Read(a + 8));
        c.Exit();
        Assert.Equal(0x99UL, p.Read(a));
        p.AssertClean();
    }

    [Fact]
    public void ExitOfAForkedChildFreesEveryFrameItTook()
    {
        var p = Proc.Boot();
        ulong a = p.MmapAnon(16);
        p.Fill(a, 16, 1);
        long before = p.K.Buddy.UsedPages;
        var c = p.Fork();
        c.Write(a, 99);
        Assert.True(p.K.Buddy.UsedPages > before);
        c.Exit();
        // Its COW copy, its page tables and (at mmdrop) its PGD are back with the allocator.
        Assert.Equal(before, p.K.Buddy.UsedPages);
        Assert.Equal(1UL, p.Read(a));
        Assert.True(p.Pagemap(a).Exclusive);
        p.AssertClean();
    }

    [Theory]
    [InlineData(0)]   // pgd_alloc() fails
    [InlineData(1)]   // the PGD fits, the first table below it does not
    [InlineData(3)]   // the PTE table does not
    public void ForkWithoutMemoryForTheChildsTablesFailsWithEnomemAndLeavesTheParentIntact(int spare)
    {
        var p = Proc.Boot(new KernelConfig { RamBytes = 8UL << 20 });
        ulong a = p.MmapAnon(2040);
        ulong i = 0;
        // Touch pages until exactly `spare` frames are left (no further fault: it would OOM-kill us).
        while (p.K.Buddy.FreePages > spare && i < 2040)
        {
            p.Write(a + i * 4096, i + 1);
            i++;
        }
        Assert.Equal(spare, p.K.Buddy.FreePages);
        long used = p.K.Buddy.UsedPages;
        var (child, ret) = p.K.Run(p.T, () => p.K.SysFork());
        Assert.Null(child);
        Assert.Equal(-Errno.ENOMEM, ret);
        Assert.Equal(used, p.K.Buddy.UsedPages);
        Assert.Equal(1UL, p.Read(a));
        Assert.True(p.Pagemap(a).Exclusive);
        p.AssertClean();
    }
}

using Linux;
using static Linux.Mman;

namespace MmCheck.Kernel.Tests;

/// <summary>A kernel and a process to drive it with, as a user-space test program would.</summary>
internal sealed class Proc
{
    public readonly Linux.Kernel K;
    public readonly TaskStruct T;

    public Proc(Linux.Kernel k, TaskStruct t)
    {
        K = k;
        T = t;
    }

    public static Proc Boot(KernelConfig? config = null)
    {
        var k = new Linux.Kernel(config);
        return new Proc(k, k.CreateProcess("test"));
    }

    public MmStruct Mm => T.Mm!;

    public long Mmap(ulong addr, ulong len, int prot, int flags, long fd = -1, ulong off = 0) =>
        K.Run(T, () => K.SysMmap(addr, len, prot, flags, fd, off));

    public ulong MmapAnon(ulong pages, int prot = PROT_READ | PROT_WRITE, int flags = MAP_PRIVATE | MAP_ANONYMOUS)
    {
        long a = Mmap(0, pages * 4096, prot, flags | MAP_ANONYMOUS);
        Assert.True(a > 0, $"mmap failed: {Errno.Format(a)}");
        return (ulong)a;
    }

    /// <summary>A memfd of <paramref name="pages"/> pages: memfd_create() and ftruncate(), both asserted.</summary>
    public long Memfd(ulong pages, string name = "m")
    {
        long fd = MemfdCreate(name);
        Assert.True(fd >= 0, $"memfd_create failed: {Errno.Format(fd)}");
        Assert.Equal(0, Ftruncate(fd, (long)(pages * 4096)));
        return fd;
    }

    /// <summary>mmap() of <paramref name="pages"/> pages of <paramref name="fd"/>, asserted to succeed.</summary>
    public ulong MmapFile(long fd, ulong pages, int flags, int prot = PROT_READ | PROT_WRITE, ulong off = 0)
    {
        long a = Mmap(0, pages * 4096, prot, flags, fd, off);
        Assert.True(a > 0, $"mmap failed: {Errno.Format(a)}");
        return (ulong)a;
    }

    public long Munmap(ulong addr, ulong len) => K.Run(T, () => K.SysMunmap(addr, len));

    public long Mprotect(ulong addr, ulong len, int prot) => K.Run(T, () => K.SysMprotect(addr, len, prot));

    public long Madvise(ulong addr, ulong len, int advice) => K.Run(T, () => K.SysMadvise(addr, len, advice));

    public long MemfdCreate(string name, uint flags = 0) => K.Run(T, () => K.SysMemfdCreate(name, flags));

    public long Ftruncate(long fd, long len) => K.Run(T, () => K.SysFtruncate(fd, len));

    public UserAccessResult Load(ulong addr, int size = 8) => K.Run(T, () => K.UserLoad(addr, size));

    public UserAccessResult Store(ulong addr, ulong value, int size = 8) => K.Run(T, () => K.UserStore(addr, size, value));

    public ulong Read(ulong addr, int size = 8)
    {
        var r = Load(addr, size);
        Assert.True(r.Ok, $"load {addr:x} got {r}");
        return r.Value;
    }

    public void Write(ulong addr, ulong value, int size = 8)
    {
        var r = Store(addr, value, size);
        Assert.True(r.Ok, $"store {addr:x} got {r}");
    }

    /// <summary>Stores seed, seed + 1, … into the first word of each of <paramref name="pages"/> pages.</summary>
    public void Fill(ulong addr, ulong pages, ulong seed)
    {
        for (ulong i = 0; i < pages; i++)
        {
            Write(addr + (i * 4096), seed + i);
        }
    }

    public Proc Fork()
    {
        var (child, ret) = K.Run(T, () => K.SysFork());
        Assert.True(ret > 0, $"fork failed: {Errno.Format(ret)}");
        return new Proc(K, child!);
    }

    public void Exit() => K.Run(T, () => K.SysExit());

    public PagemapEntry Pagemap(ulong addr) => K.Pagemap(Mm, addr);

    public IReadOnlyList<VmAreaStruct> Vmas => Mm.MmMt.Snapshot();

    /// <summary>No BUG, WARN, lockdep report or broken invariant so far.</summary>
    public void AssertClean()
    {
        Assert.Empty(K.Findings);
        Assert.Empty(K.CheckInvariants());
    }
}

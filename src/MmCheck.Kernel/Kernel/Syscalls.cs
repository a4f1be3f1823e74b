using System.Runtime.InteropServices;
using static Linux.PgTable;

namespace Linux;

// The system-call layer: each entry is a scheduling point, and the way back to user space runs
// task work (deferred fput) and the return-to-user checks (locks, TLB coherence).
public sealed partial class Kernel
{
    private async ValueTask SyscallEnter(string name)
    {
        await Sched.Point(SchedPointKind.Syscall, ObjId.Make(ObjId.Kind.Other, (ulong)Current!.Pid), name);
    }

    /// <summary>
    /// exit_to_user_mode(): task work (the deferred final fput), then checks that no lock is held
    /// and that no CPU still caches a translation this task made stale without flushing it.
    /// </summary>
    /// <remarks>Context: the end of a system call; no locks may be held (a finding otherwise).</remarks>
    [KernelSymbol("exit_to_user_mode", "kernel/entry/common.c")]
    public ValueTask ReturnToUser(TaskStruct t, string fn)
    {
        if (_deferredFput.Count > 0)
        {
            return ReturnToUserWithTaskWork(t, fn);
        }
        LockdepAssertNoneHeld(t, fn);
        CheckStaleTlb(t, fn);
        return default;
    }

    private async ValueTask ReturnToUserWithTaskWork(TaskStruct t, string fn)
    {
        await RunDeferredFput();
        LockdepAssertNoneHeld(t, fn);
        CheckStaleTlb(t, fn);
    }

    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("mmap", "arch/x86/kernel/sys_x86_64.c")]
    public async ValueTask<long> SysMmap(ulong addr, ulong len, int prot, int flags, long fd, ulong off)
    {
        await SyscallEnter("mmap");
        long r = (off & ~PAGE_MASK) != 0 ? -Errno.EINVAL : await KsysMmapPgoff(addr, len, prot, flags, fd, off >> PAGE_SHIFT);
        await ReturnToUser(Current!, "mmap");
        return r;
    }

    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("munmap", "mm/mmap.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<long> SysMunmap(ulong addr, ulong len)
    {
        await SyscallEnter("munmap");
        long r = await __VmMunmap(addr, len, unlock: true);
        await ReturnToUser(Current!, "munmap");
        return r;
    }

    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("mprotect", "mm/mprotect.c")]
    public async ValueTask<long> SysMprotect(ulong start, ulong len, int prot)
    {
        await SyscallEnter("mprotect");
        long r = await DoMprotectPkey(start, len, prot);
        await ReturnToUser(Current!, "mprotect");
        return r;
    }

    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("mremap", "mm/mremap.c")]
    public async ValueTask<long> SysMremap(ulong addr, ulong oldLen, ulong newLen, int flags, ulong newAddr)
    {
        await SyscallEnter("mremap");
        long r = await DoMremap(addr, oldLen, newLen, flags, newAddr);
        await ReturnToUser(Current!, "mremap");
        return r;
    }

    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("madvise", "mm/madvise.c")]
    public async ValueTask<long> SysMadvise(ulong start, ulong len, int behavior)
    {
        await SyscallEnter("madvise");
        long r = await DoMadvise(Current!.Mm!, start, len, behavior);
        await ReturnToUser(Current!, "madvise");
        return r;
    }

    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("memfd_create", "mm/memfd.c")]
    public async ValueTask<long> SysMemfdCreate(string name, uint flags)
    {
        await SyscallEnter("memfd_create");
        long r = MemfdCreate(name, flags);
        await ReturnToUser(Current!, "memfd_create");
        return r;
    }

    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("ftruncate", "fs/open.c")]
    public async ValueTask<long> SysFtruncate(long fd, long length)
    {
        await SyscallEnter("ftruncate");
        long r = await DoSysFtruncate(fd, length);
        await ReturnToUser(Current!, "ftruncate");
        return r;
    }

    /// <summary>close(2): drops the descriptor; the file's last reference goes at the return to user
    /// space (fs/file_table.c:fput() defers __fput() to task work).</summary>
    /// <remarks>Context: system call entry; no locks held.</remarks>
    [KernelSymbol("close", "fs/open.c")]
    public async ValueTask<long> SysClose(long fd)
    {
        await SyscallEnter("close");
        var files = Current!.Files;
        long r;
        if (files.Get(fd) is { } f)
        {
            files.Fd[(int)fd] = null;
            Fput(f);
            r = 0;
        }
        else
        {
            r = -Errno.EBADF;
        }
        await ReturnToUser(Current!, "close");
        return r;
    }

    /// <summary>fork(2): returns the child task to the parent (whose return value is its pid).</summary>
    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("fork", "kernel/fork.c")]
    public async ValueTask<(TaskStruct? Child, long Ret)> SysFork()
    {
        await SyscallEnter("fork");
        var (child, err) = await KernelClone();
        await ReturnToUser(Current!, "fork");
        return (child, child is null ? err : child.Pid);
    }

    /// <summary>exit(2): the task never returns.</summary>
    /// <remarks>Context: system call entry: process context, no locks held.</remarks>
    [KernelSymbol("exit", "kernel/exit.c")]
    public async ValueTask SysExit()
    {
        await SyscallEnter("exit");
        await DoExit();
        Current!.SchedState = TaskSchedState.Dead;
    }

    /// <summary>Leaf PTE writes of the current kernel entry, for the TLB check at return. A write to
    /// the page after the last one extends its run, so zapping or write-protecting a range costs one
    /// entry, not one per page.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void NoteLeafWrite(MmStruct mm, ulong addr)
    {
        if (Current?.LeafWrites is { Count: > 0 } writes)
        {
            ref var last = ref CollectionsMarshal.AsSpan(writes)[^1];
            if (last.Mm == mm && last.Addr + (last.Pages << PAGE_SHIFT) == addr)
            {
                last.Pages++;
                return;
            }
        }
        NoteLeafWriteRun(mm, addr);
    }

    /// <summary>Starts a new run: the write does not follow the last one.</summary>
    private void NoteLeafWriteRun(MmStruct mm, ulong addr)
    {
        if (Current is { } t)
        {
            (t.LeafWrites ??= []).Add(new LeafWriteRun(mm, addr, 1));
        }
    }

    /// <summary>
    /// tlb-coherent: when a task goes back to user space, no CPU may still cache a translation of a
    /// page whose PTE this task changed in a way that needed a flush (gone, moved, or lost RW).
    /// </summary>
    /// <remarks>Every written page is checked on every CPU, in the order written; a run no TLB caches
    /// any page of (the common case after a flush) is passed over with one look at each TLB.</remarks>
    private void CheckStaleTlb(TaskStruct t, string fn)
    {
        if (t.LeafWrites is not { Count: > 0 } writes)
        {
            return;
        }
        foreach (var run in writes)
        {
            if (!AnyTlbCaches(run))
            {
                continue;
            }
            for (ulong i = 0; i < run.Pages; i++)
            {
                CheckStaleTlbPage(t, run.Mm, run.Addr + (i << PAGE_SHIFT), fn);
            }
        }
        writes.Clear();
    }

    /// <summary>Whether some CPU's TLB caches a page of <paramref name="run"/>.</summary>
    private bool AnyTlbCaches(LeafWriteRun run)
    {
        ulong vpn = run.Addr >> PAGE_SHIFT;
        foreach (var cpu in Cpus)
        {
            if (cpu.Tlb.AnyInRange(run.Mm.Id, vpn, vpn + run.Pages))
            {
                return true;
            }
        }
        return false;
    }

    private void CheckStaleTlbPage(TaskStruct t, MmStruct mm, ulong addr, string fn)
    {
        ulong vpn = addr >> PAGE_SHIFT;
        foreach (var cpu in Cpus)
        {
            if (!cpu.Tlb.TryGet(mm.Id, vpn, out var e))
            {
                continue;
            }
            ulong v = 0;
            int level = 0;
            bool ok = !mm.Dead && PeekLeaf(mm, addr, out v, out level) && (v & X86Pte._PAGE_PRESENT) != 0;
            if (ok)
            {
                ulong pfn = PagingMode.LeafPfn(v, Paging.ShiftOfLevel(level), addr);
                ok = pfn == e.Pfn && (!e.Writable || (v & X86Pte._PAGE_RW) != 0);
            }
            if (!ok)
            {
                Violation(Invariants.TlbCoherent,
                    $"pid {t.Pid} returned to user space while cpu{cpu.Id}'s TLB still maps {addr:x} → pfn {e.Pfn:x}" +
                    (e.Writable ? " writable" : "") + " after its PTE changed without a flush", fn);
            }
        }
    }
}

/// <summary>Leaf entries a task wrote for pages [Addr, Addr + Pages × PAGE_SIZE) of one mm, in
/// ascending order, during one kernel entry.</summary>
internal record struct LeafWriteRun(MmStruct Mm, ulong Addr, ulong Pages);

namespace Linux;

// include/linux/mmap_lock.h, mm/mmap_lock.c, and the vm_flags_*() wrappers of include/linux/mm.h.
public sealed partial class Kernel
{
    /// <summary>mmap_read_lock().</summary>
    /// <remarks>Context: process context, may sleep; the mmap lock not held by the caller.</remarks>
    [KernelSymbol("mmap_read_lock", "include/linux/mmap_lock.h")]
    public ValueTask MmapReadLock(MmStruct mm, [CallerMemberName] string fn = "") => mm.MmapLock.DownRead(fn);

    /// <summary>mmap_read_trylock(): false while a writer holds the lock or waits for it.</summary>
    /// <remarks>Context: any; does not sleep.</remarks>
    [KernelSymbol("mmap_read_trylock", "include/linux/mmap_lock.h")]
    public ValueTask<bool> MmapReadTrylock(MmStruct mm, [CallerMemberName] string fn = "") => mm.MmapLock.DownReadTrylock(fn);

    /// <summary>mmap_read_unlock().</summary>
    /// <remarks>Context: the mmap lock read-held by the caller.</remarks>
    [KernelSymbol("mmap_read_unlock", "include/linux/mmap_lock.h")]
    public ValueTask MmapReadUnlock(MmStruct mm, [CallerMemberName] string fn = "") => mm.MmapLock.UpRead(fn);

    /// <summary>mmap_write_lock(): also opens a new mm_lock_seq section (odd).</summary>
    /// <remarks>Context: process context, may sleep; the mmap lock not held by the caller.</remarks>
    [KernelSymbol("mmap_write_lock", "include/linux/mmap_lock.h")]
    public async ValueTask MmapWriteLock(MmStruct mm, [CallerMemberName] string fn = "")
    {
        await mm.MmapLock.DownWrite(fn);
        MmLockSeqcountBegin(mm);
    }

    /// <summary>mmap_write_lock_nested(): fork takes the child's lock inside the parent's.</summary>
    /// <remarks>Context: may sleep; another mm's mmap lock write-held (lockdep subclass
    /// <paramref name="subclass"/>).</remarks>
    [KernelSymbol("mmap_write_lock_nested", "include/linux/mmap_lock.h")]
    public async ValueTask MmapWriteLockNested(MmStruct mm, int subclass, [CallerMemberName] string fn = "")
    {
        await mm.MmapLock.DownWrite(fn, subclass);
        MmLockSeqcountBegin(mm);
    }

    /// <summary>mmap_write_lock_killable(): 0 (no fatal signals in the model interrupt it).</summary>
    /// <remarks>Context: as <see cref="MmapWriteLock"/>.</remarks>
    [KernelSymbol("mmap_write_lock_killable", "include/linux/mmap_lock.h")]
    public async ValueTask<int> MmapWriteLockKillable(MmStruct mm, [CallerMemberName] string fn = "")
    {
        await MmapWriteLock(mm, fn);
        return 0;
    }

    /// <summary>mmap_read_lock_killable(): 0 (no fatal signals in the model interrupt it).</summary>
    /// <remarks>Context: as <see cref="MmapReadLock"/>.</remarks>
    [KernelSymbol("mmap_read_lock_killable", "include/linux/mmap_lock.h")]
    public async ValueTask<int> MmapReadLockKillable(MmStruct mm, [CallerMemberName] string fn = "")
    {
        await MmapReadLock(mm, fn);
        return 0;
    }

    /// <summary>mmap_write_unlock(): vma_end_write_all() drops every VMA write lock at once.</summary>
    /// <remarks>Context: the mmap lock write-held by the caller.</remarks>
    [KernelSymbol("mmap_write_unlock", "include/linux/mmap_lock.h")]
    public async ValueTask MmapWriteUnlock(MmStruct mm, [CallerMemberName] string fn = "")
    {
        VmaEndWriteAll(mm);
        await mm.MmapLock.UpWrite(fn);
    }

    /// <summary>mmap_write_downgrade(): write to read without letting a writer in; VMA write locks end.</summary>
    /// <remarks>Context: the mmap lock write-held; read-held on return.</remarks>
    [KernelSymbol("mmap_write_downgrade", "include/linux/mmap_lock.h")]
    public async ValueTask MmapWriteDowngrade(MmStruct mm, [CallerMemberName] string fn = "")
    {
        VmaEndWriteAll(mm);
        await mm.MmapLock.DowngradeWrite(fn);
    }

    private void MmLockSeqcountBegin(MmStruct mm)
    {
        Sched.Access(mm.MmapLock.Obj, write: true);
        mm.MmLockSeq++;
    }

    /// <summary>vma_end_write_all(): mm_lock_seq moves on, so no VMA matches it any more.</summary>
    /// <remarks>Context: the mmap lock write-held.</remarks>
    [KernelSymbol("vma_end_write_all", "include/linux/mmap_lock.h")]
    private void VmaEndWriteAll(MmStruct mm)
    {
        if ((mm.MmLockSeq & 1) == 1)
        {
            Sched.Access(mm.MmapLock.Obj, write: true);
            mm.MmLockSeq++;
        }
    }

    /// <summary>mmap_assert_locked(): read or write; a lockdep finding otherwise.</summary>
    /// <remarks>Context: any.</remarks>
    [KernelSymbol("mmap_assert_locked", "include/linux/mmap_lock.h")]
    public void MmapAssertLocked(MmStruct mm, [CallerMemberName] string fn = "") => LockdepAssertHeld(mm.MmapLock, fn);

    /// <summary>mmap_assert_write_locked(): a lockdep finding unless write-held.</summary>
    /// <remarks>Context: any.</remarks>
    [KernelSymbol("mmap_assert_write_locked", "include/linux/mmap_lock.h")]
    public void MmapAssertWriteLocked(MmStruct mm, [CallerMemberName] string fn = "") => LockdepAssertHeldWrite(mm.MmapLock, fn);

    /// <summary>vma_start_write(): marks the VMA write-locked for this mm_lock_seq section, waiting
    /// for per-VMA readers (faults under lock_vma_under_rcu()) to leave.</summary>
    /// <remarks>Context: the mmap lock write-held; may sleep.</remarks>
    [KernelSymbol("vma_start_write", "include/linux/mmap_lock.h")]
    public ValueTask VmaStartWrite(VmAreaStruct vma, [CallerMemberName] string fn = "") => vma.VmLock.StartWrite(fn);

    /// <summary>vma_assert_locked(): the VMA lock (read) or the mmap lock is held.</summary>
    /// <remarks>Context: any.</remarks>
    [KernelSymbol("vma_assert_locked", "include/linux/mmap_lock.h")]
    public void VmaAssertLocked(VmAreaStruct vma, [CallerMemberName] string fn = "")
    {
        var t = Current;
        if (t is not null && !vma.VmLock.IsHeldBy(t) && !vma.VmMm.MmapLock.IsHeldBy(t))
        {
            Violation(Invariants.LockAssert, $"{fn}: neither the VMA lock of {vma} nor the mmap lock is held", fn);
        }
    }

    /// <summary>vm_flags_init(): for a VMA nobody else can see yet.</summary>
    /// <remarks>Context: none needed: the VMA is not in any tree.</remarks>
    [KernelSymbol("vm_flags_init", "include/linux/mm.h")]
    public static void VmFlagsInit(VmAreaStruct vma, VmFlags flags) => vma.__VmFlags = flags;

    /// <summary>vm_flags_reset().</summary>
    /// <remarks>Context: the VMA write-locked (asserted).</remarks>
    [KernelSymbol("vm_flags_reset", "include/linux/mm.h")]
    public void VmFlagsReset(VmAreaStruct vma, VmFlags flags, [CallerMemberName] string fn = "")
    {
        vma.VmLock.AssertWriteLocked(fn);
        SetVmFlags(vma, flags);
    }

    /// <summary>vm_flags_set(): vma_start_write(), then ORs the flags in.</summary>
    /// <remarks>Context: the mmap lock write-held; may sleep.</remarks>
    [KernelSymbol("vm_flags_set", "include/linux/mm.h")]
    public async ValueTask VmFlagsSet(VmAreaStruct vma, VmFlags flags, [CallerMemberName] string fn = "")
    {
        await VmaStartWrite(vma, fn);
        SetVmFlags(vma, vma.__VmFlags | flags);
    }

    /// <summary>vm_flags_clear(): vma_start_write(), then clears the flags.</summary>
    /// <remarks>Context: the mmap lock write-held; may sleep.</remarks>
    [KernelSymbol("vm_flags_clear", "include/linux/mm.h")]
    public async ValueTask VmFlagsClear(VmAreaStruct vma, VmFlags flags, [CallerMemberName] string fn = "")
    {
        await VmaStartWrite(vma, fn);
        SetVmFlags(vma, vma.__VmFlags & ~flags);
    }

    /// <summary>vm_flags_mod(): vma_start_write(), then sets and clears.</summary>
    /// <remarks>Context: the mmap lock write-held; may sleep.</remarks>
    [KernelSymbol("vm_flags_mod", "include/linux/mm.h")]
    public async ValueTask VmFlagsMod(VmAreaStruct vma, VmFlags set, VmFlags clear, [CallerMemberName] string fn = "")
    {
        await VmaStartWrite(vma, fn);
        SetVmFlags(vma, (vma.__VmFlags | set) & ~clear);
    }

    private void SetVmFlags(VmAreaStruct vma, VmFlags flags)
    {
        Sched.Access(ObjId.Make(ObjId.Kind.Vma, (ulong)vma.Id), write: true);
        var old = vma.__VmFlags;
        vma.__VmFlags = flags;
        if (Sched.RecordsEffects && old != flags)
        {
            Sched.OnEffect(new VmaEffect(vma.VmMm.Id, "flags", vma.VmStart, vma.VmEnd, flags));
        }
    }
}

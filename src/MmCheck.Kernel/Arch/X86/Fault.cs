using static Linux.VmFault;
using static Linux.X86PfError;

namespace Linux;

/// <summary>How a user access ended: a value, or the signal the kernel delivered.</summary>
public readonly record struct UserAccessResult(ulong Value, int Signal)
{
    public bool Ok => Signal == 0;

    public static UserAccessResult Sig(int signal) => new(0, signal);

    public override string ToString() => Signal switch
    {
        0 => $"0x{Value:x}",
        Mman.SIGSEGV => "SIGSEGV",
        Mman.SIGBUS => "SIGBUS",
        Mman.SIGKILL => "SIGKILL",
        _ => $"signal {Signal}",
    };
}

// arch/x86/mm/fault.c: the user-mode page-fault handler.
public sealed partial class Kernel
{
    /// <summary>
    /// exc_page_fault() → do_user_addr_fault(): resolves a user fault. Returns 0 when the access
    /// should be retried, or the signal to deliver (SIGSEGV, SIGBUS, SIGKILL).
    /// </summary>
    /// <remarks>Context: the faulting task, interrupts on, no locks held; takes the VMA lock
    /// (lock_vma_under_rcu()) or else the mmap lock for read, and drops it before returning.</remarks>
    [KernelSymbol("do_user_addr_fault", "arch/x86/mm/fault.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<int> DoUserAddrFault(ulong address, X86PfError errorCode)
    {
        var tsk = Current!;
        var mm = tsk.Mm;
        if (mm is null)
        {
            return Mman.SIGSEGV;
        }
        var flags = FaultFlag.FAULT_FLAG_DEFAULT | FaultFlag.FAULT_FLAG_USER;
        if ((errorCode & X86_PF_WRITE) != 0)
        {
            flags |= FaultFlag.FAULT_FLAG_WRITE;
        }
        if ((errorCode & X86_PF_INSTR) != 0)
        {
            flags |= FaultFlag.FAULT_FLAG_INSTRUCTION;
        }

        VmFault fault;
        var vma = await LockVmaUnderRcu(mm, address);
        if (vma is not null)
        {
            if (AccessError(errorCode, vma))
            {
                await vma.VmLock.EndRead();
                CountVmEvent(VmEventItem.VMA_LOCK_SUCCESS);
                return Mman.SIGSEGV;
            }
            fault = await HandleMmFault(vma, address, flags | FaultFlag.FAULT_FLAG_VMA_LOCK);
            if ((fault & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)) == 0)
            {
                await vma.VmLock.EndRead();
            }
            if ((fault & VM_FAULT_RETRY) == 0)
            {
                CountVmEvent(VmEventItem.VMA_LOCK_SUCCESS);
                return FaultDone(fault);
            }
            CountVmEvent(VmEventItem.VMA_LOCK_RETRY);
            if ((fault & VM_FAULT_MAJOR) != 0)
            {
                flags |= FaultFlag.FAULT_FLAG_TRIED;
            }
            if (tsk.FatalSignalPending)
            {
                return Mman.SIGKILL;
            }
        }

        for (int tries = 0; ; tries++)
        {
            if (tries > 64)
            {
                throw new InvalidOperationException("model defect: page fault retried forever");
            }
            vma = await LockMmAndFindVma(mm, address);
            if (vma is null)
            {
                return Mman.SIGSEGV;
            }
            if (AccessError(errorCode, vma))
            {
                await MmapReadUnlock(mm);
                return Mman.SIGSEGV;
            }
            fault = await HandleMmFault(vma, address, flags);
            if ((fault & VM_FAULT_COMPLETED) != 0)
            {
                return 0;
            }
            if ((fault & VM_FAULT_RETRY) != 0)
            {
                if (tsk.FatalSignalPending)
                {
                    return Mman.SIGKILL;
                }
                flags |= FaultFlag.FAULT_FLAG_TRIED;
                continue;
            }
            await MmapReadUnlock(mm);
            return FaultDone(fault);
        }
    }

    /// <summary>The "done:" tail of do_user_addr_fault(): which signal a fault result means.</summary>
    private int FaultDone(VmFault fault)
    {
        if ((fault & VM_FAULT_ERROR) == 0)
        {
            return 0;
        }
        if ((fault & VM_FAULT_OOM) != 0)
        {
            // pagefault_out_of_memory(): the OOM killer picks the task that faulted (the model has
            // nothing else to reclaim from).
            Current!.FatalSignalPending = true;
            return Mman.SIGKILL;
        }
        if ((fault & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) != 0)
        {
            return Mman.SIGBUS;
        }
        if ((fault & VM_FAULT_SIGSEGV) != 0)
        {
            return Mman.SIGSEGV;
        }
        Bug($"do_user_addr_fault: unexpected fault result {fault}");
        return 0;
    }

    /// <summary>access_error(): whether the VMA forbids the faulting access.</summary>
    /// <remarks>Context: mmap_lock read-held or the VMA read-locked (do_user_addr_fault()); reads vm_flags
    /// only.</remarks>
    [KernelSymbol("access_error", "arch/x86/mm/fault.c")]
    public static bool AccessError(X86PfError errorCode, VmAreaStruct vma)
    {
        if ((errorCode & X86_PF_PK) != 0)
        {
            return true;
        }
        if ((errorCode & X86_PF_WRITE) != 0)
        {
            return (vma.VmFlags & VmFlags.VM_WRITE) == 0;
        }
        if ((errorCode & X86_PF_PROT) != 0)
        {
            return true;
        }
        return !vma.IsAccessible;
    }

    /// <summary>
    /// lock_vma_under_rcu(): finds the VMA without the mmap lock and read-locks it; null if it is
    /// write-locked or the address is in a gap (the caller falls back to the mmap lock).
    /// </summary>
    /// <remarks>Context: no lock held; returns the VMA read-locked, or null.</remarks>
    [KernelSymbol("lock_vma_under_rcu", "mm/mmap_lock.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<VmAreaStruct?> LockVmaUnderRcu(MmStruct mm, ulong address)
    {
        while (true)
        {
            await Sched.Point(SchedPointKind.ReadOnce, mm.MmMt.Obj, "LockVmaUnderRcu");
            var vma = mm.MmMt.VmaLookup(address);
            if (vma is null)
            {
                CountVmEvent(VmEventItem.VMA_LOCK_ABORT);
                return null;
            }
            var r = await vma.VmLock.StartRead("LockVmaUnderRcu");
            if (!r)
            {
                if (!vma.Attached)
                {
                    // Isolated after we found it: the area was replaced, look again.
                    CountVmEvent(VmEventItem.VMA_LOCK_MISS);
                    continue;
                }
                CountVmEvent(VmEventItem.VMA_LOCK_ABORT);
                return null;
            }
            if (address < vma.VmStart || address >= vma.VmEnd)
            {
                await vma.VmLock.EndRead("LockVmaUnderRcu");
                CountVmEvent(VmEventItem.VMA_LOCK_ABORT);
                return null;
            }
            return vma;
        }
    }

    /// <summary>
    /// lock_mm_and_find_vma(): takes the mmap read lock and finds the VMA containing the address;
    /// null (lock dropped) if there is none. Stack expansion (VM_GROWSDOWN) is not modelled: such an
    /// address below the stack VMA gets SIGSEGV.
    /// </summary>
    /// <remarks>Context: no lock held; returns with the mmap read lock held if it found a VMA, else with no lock.</remarks>
    [KernelSymbol("lock_mm_and_find_vma", "mm/memory.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<VmAreaStruct?> LockMmAndFindVma(MmStruct mm, ulong addr)
    {
        if (!await MmapReadTrylock(mm))
        {
            await MmapReadLock(mm);
        }
        var vma = mm.MmMt.FindVma(addr);
        if (vma is not null && vma.VmStart <= addr)
        {
            return vma;
        }
        await MmapReadUnlock(mm);
        return null;
    }

    // ---- user accesses (a user-mode load or store on the task's CPU) ----

    /// <summary>A user-mode load of <paramref name="size"/> bytes (1, 2, 4, 8).</summary>
    public ValueTask<UserAccessResult> UserLoad(ulong addr, int size) => UserAccess(addr, size, write: false, 0);

    /// <summary>A user-mode store of <paramref name="size"/> bytes (1, 2, 4, 8).</summary>
    public ValueTask<UserAccessResult> UserStore(ulong addr, int size, ulong value) => UserAccess(addr, size, write: true, value);

    /// <summary>
    /// One user instruction's memory access: every page it touches is translated first (faulting
    /// and retrying as needed), then the access happens at once, as a faulting instruction has no
    /// partial effect.
    /// </summary>
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    private async ValueTask<UserAccessResult> UserAccess(ulong addr, int size, bool write, ulong value)
    {
        if (size is not (1 or 2 or 4 or 8))
        {
            throw new ArgumentOutOfRangeException(nameof(size), "user accesses are 1, 2, 4 or 8 bytes");
        }
        var t = Current!;
        var cpu = t.Cpu;
        await Sched.Point(SchedPointKind.UserAccess, cpu.Tlb.Obj, write ? "store" : "load");
        ulong last = addr + (ulong)size - 1;
        if (last < addr || last >= Paging.TaskSize)
        {
            // A non-canonical or kernel address from user mode is a #GP / #PF(U) → SIGSEGV.
            return Accessed(UserAccessResult.Sig(Mman.SIGSEGV), addr, write, value, 0);
        }
        int pieces = (addr >> PgTable.PAGE_SHIFT) == (last >> PgTable.PAGE_SHIFT) ? 1 : 2;
        ulong pfn0 = 0, pfn1 = 0;
        for (int attempt = 0; ; attempt++)
        {
            bool allOk = true;
            for (int i = 0; i < pieces; i++)
            {
                ulong va = i == 0 ? addr : last & PgTable.PAGE_MASK;
                var r = cpu.Translate(va, write, user: true);
                if (r.Ok)
                {
                    if (i == 0)
                    {
                        pfn0 = r.Pfn;
                    }
                    else
                    {
                        pfn1 = r.Pfn;
                    }
                    continue;
                }
                allOk = false;
                int sig = await DoUserAddrFault(va, r.Error);
                await ReturnToUser(t, "exc_page_fault");
                if (sig != 0)
                {
                    return Accessed(UserAccessResult.Sig(sig), addr, write, value, 0);
                }
                await Sched.Point(SchedPointKind.HardwareWalk, cpu.Tlb.Obj, write ? "store" : "load");
                break;
            }
            if (allOk)
            {
                break;
            }
            if (attempt > 64)
            {
                throw new InvalidOperationException($"model defect: access to {addr:x} faults forever");
            }
        }
        return Accessed(PhysAccess(addr, size, write, value, pfn0, pfn1), addr, write, value, pfn0);
    }

    /// <summary>What a user access returns, said in a readable trace when one is drawn (every user
    /// access comes through here: the formatting stays out of line).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private UserAccessResult Accessed(UserAccessResult r, ulong addr, bool write, ulong value, ulong pfn)
    {
        if (Sched.RecordsEffects)
        {
            NoteAccess(r, addr, write, value, pfn);
        }
        return r;
    }

    /// <summary>The value loaded or stored and the frame, or the signal.</summary>
    private void NoteAccess(UserAccessResult r, ulong addr, bool write, ulong value, ulong pfn) =>
        Sched.OnEffect(new NoteEffect(!r.Ok ? $"{r} on the {(write ? "store to" : "load from")} {addr:x}"
            : write ? $"stored 0x{value:x} at {addr:x} (pfn {pfn:x})"
            : $"loaded {r} from {addr:x} (pfn {pfn:x})"));

    /// <summary>The memory side of an access whose pages are translated.</summary>
    private UserAccessResult PhysAccess(ulong addr, int size, bool write, ulong value, ulong pfn0, ulong pfn1)
    {
        ulong off = addr & ~PgTable.PAGE_MASK;
        int first = (int)Math.Min((ulong)size, PgTable.PAGE_SIZE - off);
        ulong pa0 = (pfn0 << PgTable.PAGE_SHIFT) | off;
        CheckFrameLive(pfn0, addr);
        if (first == size)
        {
            Sched.Access(ObjId.Word(pa0), write);
            if (write)
            {
                StoreFrame(pfn0, pa0, size, value);
                return new UserAccessResult(0, 0);
            }
            return new UserAccessResult(Mem.Load(pa0, size), 0);
        }
        // Split across two pages: byte by byte, little-endian.
        CheckFrameLive(pfn1, (addr + (ulong)first) & PgTable.PAGE_MASK);
        ulong result = 0;
        for (int i = 0; i < size; i++)
        {
            ulong pa = i < first ? pa0 + (ulong)i : (pfn1 << PgTable.PAGE_SHIFT) + (ulong)(i - first);
            ulong pfn = i < first ? pfn0 : pfn1;
            Sched.Access(ObjId.Word(pa), write);
            if (write)
            {
                StoreFrame(pfn, pa, 1, (value >> (8 * i)) & 0xff);
            }
            else
            {
                result |= Mem.Load(pa, 1) << (8 * i);
            }
        }
        return new UserAccessResult(result, 0);
    }

    /// <summary>A store into a frame, keeping the frame's has-content flag for cheap freeing.</summary>
    internal void StoreFrame(ulong pfn, ulong pa, int size, ulong value)
    {
        bool ram = PfnValid(pfn);
        // A RAM frame without the flag holds no word and reads as zeroes: storing zero into it
        // changes nothing (the contents store is not even looked up).
        if (value == 0 && ram && (MemMap.PeekFlags(pfn) & (uint)PageFlags.ModelHasContent) == 0)
        {
            return;
        }
        if (Mem.Store(pa, size, value) && ram)
        {
            MemMap.Flags(pfn) |= (uint)PageFlags.ModelHasContent;
        }
    }

    /// <summary>use-after-free: an access that reaches a frame the allocator owns.</summary>
    private void CheckFrameLive(ulong pfn, ulong va)
    {
        if (PfnValid(pfn) && PageIsFree(pfn))
        {
            Violation(Invariants.UseAfterFree, $"cpu{Current!.Cpu.Id} accessed freed pfn {pfn:x} at {va:x}", "user access");
        }
    }
}

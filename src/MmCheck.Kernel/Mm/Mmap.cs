using static Linux.Mman;
using static Linux.PgTable;
using static Linux.VmFlags;

namespace Linux;

/// <summary>struct vm_unmapped_area_info.</summary>
[KernelSymbol("vm_unmapped_area_info", "include/linux/mm.h")]
public sealed record VmUnmappedAreaInfo(bool TopDown, ulong Length, ulong LowLimit, ulong HighLimit, ulong AlignMask, ulong AlignOffset, ulong StartGap);

// mm/mmap.c and the mmap parts of mm/vma.c: address selection, do_mmap(), __mmap_region(),
// munmap(2), exit_mmap(), populate.
public sealed partial class Kernel
{
    /// <summary>
    /// arch_pick_mmap_layout() / mmap_base(): top-down layout below the stack gap, with no
    /// randomisation (the model is deterministic, as a process with ADDR_NO_RANDOMIZE is). The base
    /// is taken below task_size_64bit(0) = DEFAULT_MAP_WINDOW, so LA57 maps above 47 bits only on a hint.
    /// </summary>
    /// <remarks>Context: while the mm is being set up and not yet visible to anyone else; no locks.</remarks>
    [KernelSymbol("arch_pick_mmap_layout", "arch/x86/mm/mmap.c")]
    private MmStruct MmInit(MmStruct mm)
    {
        mm.MmapBase = MmapBase(Paging.DefaultMapWindow);
        return mm;
    }

    /// <summary>mmap_base(): TASK_SIZE minus the stack gap (RLIMIT_STACK plus the guard gap,
    /// clamped to [128 MiB, 5/6 of the address space]).</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("mmap_base", "arch/x86/mm/mmap.c")]
    public ulong MmapBase(ulong taskSize)
    {
        const ulong SZ_128M = 128UL << 20;
        ulong gap = Config.StackRlimit;
        ulong pad = StackGuardGap;
        if (gap + pad > gap)
        {
            gap += pad;
        }
        ulong gapMax = taskSize / 6 * 5;
        gap = Math.Clamp(gap, SZ_128M, gapMax);
        return PageAlign(taskSize - gap);
    }

    /// <summary>stack_guard_gap: 256 pages.</summary>
    public const ulong StackGuardGap = 256UL << PAGE_SHIFT;

    /// <summary>Sets a process's mmap_base explicitly (conformance mirrors the real process's layout).</summary>
    public void SetMmapBase(MmStruct mm, ulong mmapBase) => mm.MmapBase = mmapBase;

    /// <summary>vm_start_gap(): a VMA's start minus the guard gap of a stack below it.</summary>
    /// <remarks>Context: the VMA is stable (mmap_lock held).</remarks>
    [KernelSymbol("vm_start_gap", "include/linux/mm.h")]
    private static ulong VmStartGap(VmAreaStruct vma)
    {
        ulong start = vma.VmStart;
        if ((vma.VmFlags & VM_GROWSDOWN) != 0)
        {
            start = start > StackGuardGap ? start - StackGuardGap : 0;
        }
        return start;
    }

    /// <summary>
    /// unmapped_area_topdown(): the highest gap in [low_limit, high_limit) that fits length with
    /// the alignment, walking the VMAs from the top.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock held (write for mmap, mremap): the gap found stays free only while it is
    /// held.
    /// </remarks>
    [KernelSymbol("unmapped_area_topdown", "mm/vma.c")]
    private long UnmappedAreaTopdown(MmStruct mm, VmUnmappedAreaInfo info)
    {
        ulong length = info.Length + info.AlignMask + info.StartGap;
        if (length < info.Length)
        {
            return -Errno.ENOMEM;
        }
        ulong low = info.LowLimit, high = info.HighLimit;
        if (high < length)
        {
            return -Errno.ENOMEM;
        }
        var vmas = mm.MmMt.Snapshot();
        // Gaps from the top: [prev.end, next.start_gap) with next the VMA above.
        ulong gapEnd = high;
        for (int i = vmas.Count; i >= 0; i--)
        {
            ulong gapStart = i > 0 ? vmas[i - 1].VmEnd : 0;
            ulong nextStart = i < vmas.Count ? VmStartGap(vmas[i]) : ulong.MaxValue;
            ulong end = Math.Min(gapEnd, nextStart);
            ulong start = Math.Max(gapStart, low);
            if (end > start && end - start >= length)
            {
                ulong addr = end - info.Length;
                addr -= (addr - info.AlignOffset) & info.AlignMask;
                if (addr >= start + info.StartGap)
                {
                    return (long)addr;
                }
            }
            if (gapStart <= low)
            {
                break;
            }
        }
        return -Errno.ENOMEM;
    }

    /// <summary>unmapped_area(): the lowest gap that fits (bottom-up layout).</summary>
    /// <remarks>
    /// Context: mmap_lock held (write for mmap, mremap): the gap found stays free only while it is
    /// held.
    /// </remarks>
    [KernelSymbol("unmapped_area", "mm/vma.c")]
    private long UnmappedArea(MmStruct mm, VmUnmappedAreaInfo info)
    {
        ulong length = info.Length + info.AlignMask + info.StartGap;
        var vmas = mm.MmMt.Snapshot();
        ulong gapStart = info.LowLimit;
        for (int i = 0; i <= vmas.Count; i++)
        {
            ulong gapEnd = i < vmas.Count ? VmStartGap(vmas[i]) : info.HighLimit;
            gapEnd = Math.Min(gapEnd, info.HighLimit);
            ulong start = Math.Max(gapStart, info.LowLimit) + info.StartGap;
            ulong addr = start + ((info.AlignOffset - start) & info.AlignMask);
            if (gapEnd > addr && gapEnd - addr >= info.Length && length <= gapEnd - Math.Max(gapStart, info.LowLimit))
            {
                return (long)addr;
            }
            if (i < vmas.Count)
            {
                gapStart = Math.Max(gapStart, vmas[i].VmEnd);
            }
        }
        return -Errno.ENOMEM;
    }

    /// <summary>mmap_address_hint_valid(): the hint and its end stay on one side of the 47-bit window.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("mmap_address_hint_valid", "arch/x86/kernel/sys_x86_64.c")]
    private bool MmapAddressHintValid(ulong addr, ulong len)
    {
        if (Paging.TaskSize - len < addr)
        {
            return false;
        }
        return (addr > Paging.DefaultMapWindow) == (addr + len > Paging.DefaultMapWindow);
    }

    /// <summary>
    /// arch_get_unmapped_area_topdown(): MAP_FIXED is taken as is; a free hint is honoured;
    /// otherwise the highest fitting gap below mmap_base.
    /// </summary>
    /// <remarks>Context: mmap_lock held (write for mmap, mremap); searches the VMA tree.</remarks>
    [KernelSymbol("arch_get_unmapped_area_topdown", "arch/x86/kernel/sys_x86_64.c")]
    private long ArchGetUnmappedAreaTopdown(MmStruct mm, File? filp, ulong addr, ulong len, ulong pgoff, int flags, VmFlags vmFlags)
    {
        if (len > Paging.TaskSize)
        {
            return -Errno.ENOMEM;
        }
        if ((flags & MAP_FIXED) != 0)
        {
            return (long)addr;
        }
        if (addr != 0)
        {
            addr &= PAGE_MASK;
            if (MmapAddressHintValid(addr, len))
            {
                var vma = mm.MmMt.FindVma(addr);
                if (vma is null || addr + len <= VmStartGap(vma))
                {
                    return (long)addr;
                }
            }
        }
        ulong high = mm.MmapBase;
        if (addr > Paging.DefaultMapWindow)
        {
            high += Paging.TaskSize - Paging.DefaultMapWindow;
        }
        var info = new VmUnmappedAreaInfo(true, len, PAGE_SIZE, high, 0, pgoff << PAGE_SHIFT, 0);
        long r = UnmappedAreaTopdown(mm, info);
        if (r >= 0)
        {
            return r;
        }
        // Bottom-up fallback, from TASK_UNMAPPED_BASE (TASK_SIZE / 3).
        var bu = new VmUnmappedAreaInfo(false, len, PageAlign(Paging.DefaultMapWindow / 3), Paging.DefaultMapWindow, 0, pgoff << PAGE_SHIFT, 0);
        return UnmappedArea(mm, bu);
    }

    /// <summary>
    /// __get_unmapped_area(): picks the address: the file's own hook, THP alignment for anonymous
    /// mappings whose length is a multiple of the PMD size, then the arch's top-down search.
    /// </summary>
    /// <remarks>Context: mmap_lock held (write for mmap, mremap); searches the VMA tree.</remarks>
    [KernelSymbol("__get_unmapped_area", "mm/mmap.c")]
    public long __GetUnmappedArea(MmStruct mm, File? file, ulong addr, ulong len, ulong pgoff, int flags, VmFlags vmFlags)
    {
        if (len > Paging.TaskSize)
        {
            return -Errno.ENOMEM;
        }
        // The kernel always treats pgoff as zero for anonymous memory (THP alignment below must not
        // depend on where an anonymous mapping that mremap() moves used to be).
        if (file is null)
        {
            pgoff = 0;
        }
        long r;
        if (file?.FOp.GetUnmappedArea is { } gua)
        {
            r = (long)gua(file, addr, len, pgoff, (ulong)flags);
        }
        else if (file is null && (flags & MAP_SHARED) != 0)
        {
            // shmem_get_unmapped_area() for shared anon: THP alignment only when shmem THP is
            // enabled, which it is not on this machine ("never").
            r = ArchGetUnmappedAreaTopdown(mm, null, addr, len, 0, flags, vmFlags);
        }
        else if (file is null && addr == 0 && (len & (Paging.PmdSize - 1)) == 0 && (flags & MAP_FIXED) == 0)
        {
            r = ThpGetUnmappedArea(mm, addr, len, pgoff, flags, vmFlags);
        }
        else
        {
            r = ArchGetUnmappedAreaTopdown(mm, file, addr, len, pgoff, flags, vmFlags);
        }
        if (r < 0 && Errno.IsErrValue(r))
        {
            return r;
        }
        ulong a = (ulong)r;
        if (a > Paging.TaskSize - len)
        {
            return -Errno.ENOMEM;
        }
        if (OffsetInPage(a))
        {
            return -Errno.EINVAL;
        }
        return r;
    }

    /// <summary>
    /// thp_get_unmapped_area_vmflags() → __thp_get_unmapped_area(): ask for len + PMD_SIZE and
    /// align the result to the PMD size; fall back to an ordinary search.
    /// </summary>
    /// <remarks>Context: mmap_lock held (write for mmap); searches the VMA tree.</remarks>
    [KernelSymbol("__thp_get_unmapped_area", "mm/huge_memory.c")]
    private long ThpGetUnmappedArea(MmStruct mm, ulong addr, ulong len, ulong pgoff, int flags, VmFlags vmFlags)
    {
        ulong size = Paging.PmdSize;
        ulong offset = pgoff << PAGE_SHIFT;
        ulong lenPad = len + size;
        if (lenPad < len || offset + lenPad < offset)
        {
            return ArchGetUnmappedAreaTopdown(mm, null, addr, len, pgoff, flags, vmFlags);
        }
        long ret = ArchGetUnmappedAreaTopdown(mm, null, 0, lenPad, pgoff, flags, vmFlags);
        if (ret < 0)
        {
            return ArchGetUnmappedAreaTopdown(mm, null, addr, len, pgoff, flags, vmFlags);
        }
        ulong r = (ulong)ret;
        // The top-down search returns the top of the padded area; move down to the aligned start
        // nearest the top of the gap (as the kernel's adjustment does).
        ulong offAlign = r + lenPad - len;
        offAlign -= (offAlign - offset) & (size - 1);
        if (offAlign < r)
        {
            return ArchGetUnmappedAreaTopdown(mm, null, addr, len, pgoff, flags, vmFlags);
        }
        return (long)offAlign;
    }

    /// <summary>CONFIG_LSM_MMAP_MIN_ADDR (its default, and this machine's).</summary>
    public const ulong LsmMmapMinAddr = 65536;

    /// <summary>
    /// round_hint_to_min(): hints below mmap_min_addr move up to it. That is the kernel's
    /// mmap_min_addr, which security/min_addr.c:update_mmap_min_addr() sets to the larger of the
    /// vm.mmap_min_addr sysctl and CONFIG_LSM_MMAP_MIN_ADDR (CONFIG_SECURITY=y).
    /// </summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("round_hint_to_min", "mm/mmap.c")]
    private ulong RoundHintToMin(ulong hint)
    {
        ulong min = Math.Max(Config.MmapMinAddr, LsmMmapMinAddr);
        hint &= PAGE_MASK;
        return hint != 0 && hint < min ? PageAlign(min) : hint;
    }

    /// <summary>calc_vm_prot_bits().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("calc_vm_prot_bits", "include/linux/mman.h")]
    public static VmFlags CalcVmProtBits(int prot) =>
        ((prot & PROT_READ) != 0 ? VM_READ : 0) | ((prot & PROT_WRITE) != 0 ? VM_WRITE : 0) |
        ((prot & PROT_EXEC) != 0 ? VM_EXEC : 0);

    /// <summary>calc_vm_flag_bits(): MAP_GROWSDOWN, MAP_LOCKED, MAP_SYNC, and MAP_STACK → VM_NOHUGEPAGE.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("calc_vm_flag_bits", "include/linux/mman.h")]
    public static VmFlags CalcVmFlagBits(int flags) =>
        ((flags & MAP_GROWSDOWN) != 0 ? VM_GROWSDOWN : 0) | ((flags & MAP_LOCKED) != 0 ? VM_LOCKED : 0) |
        ((flags & MAP_SYNC) != 0 ? VM_SYNC : 0) | ((flags & MAP_STACK) != 0 ? VM_NOHUGEPAGE : 0);

    /// <summary>
    /// do_mmap(): validates the request against the file and the flags, picks the address and
    /// calls mmap_region(). Returns the address or -errno; sets <paramref name="populate"/> when
    /// the caller must fault the range in.
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("do_mmap", "mm/mmap.c")]
    public async ValueTask<(long Addr, ulong Populate)> DoMmap(File? file, ulong addr, ulong len, int prot, int flags, VmFlags vmFlags, ulong pgoff)
    {
        var mm = Current!.Mm!;
        MmapAssertWriteLocked(mm);
        if (len == 0)
        {
            return (-Errno.EINVAL, 0);
        }
        if ((flags & MAP_FIXED_NOREPLACE) != 0)
        {
            flags |= MAP_FIXED;
        }
        if ((flags & MAP_FIXED) == 0)
        {
            addr = RoundHintToMin(addr);
        }
        len = PageAlign(len);
        if (len == 0)
        {
            return (-Errno.ENOMEM, 0);
        }
        if (pgoff + (len >> PAGE_SHIFT) < pgoff)
        {
            return (-Errno.EOVERFLOW, 0);
        }
        if (mm.MapCount > Config.MaxMapCount)
        {
            return (-Errno.ENOMEM, 0);
        }
        long r = __GetUnmappedArea(mm, file, addr, len, pgoff, flags, vmFlags);
        if (r < 0 && Errno.IsErrValue(r))
        {
            return (r, 0);
        }
        addr = (ulong)r;
        if ((flags & MAP_FIXED_NOREPLACE) != 0 && mm.MmMt.FindVmaIntersection(addr, addr + len) is not null)
        {
            return (-Errno.EEXIST, 0);
        }
        vmFlags |= CalcVmProtBits(prot) | CalcVmFlagBits(flags) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
        if (file is not null)
        {
            if (!FileMmapOk(file, pgoff, len))
            {
                return (-Errno.EOVERFLOW, 0);
            }
            switch (flags & MAP_TYPE)
            {
                case MAP_SHARED:
                case MAP_SHARED_VALIDATE:
                    if ((flags & MAP_TYPE) == MAP_SHARED)
                    {
                        flags &= LEGACY_MAP_MASK;
                    }
                    if ((flags & ~LEGACY_MAP_MASK) != 0)
                    {
                        return (-Errno.EOPNOTSUPP, 0);
                    }
                    if ((prot & PROT_WRITE) != 0 && !file.Writable)
                    {
                        return (-Errno.EACCES, 0);
                    }
                    vmFlags |= VM_SHARED | VM_MAYSHARE;
                    if (!file.Writable)
                    {
                        vmFlags &= ~(VM_MAYWRITE | VM_SHARED);
                    }
                    goto case MAP_PRIVATE;
                case MAP_PRIVATE:
                    if (!file.Readable)
                    {
                        return (-Errno.EACCES, 0);
                    }
                    if (file.FOp.Mmap is null && file.FOp.MmapPrepare is null)
                    {
                        return (-Errno.ENODEV, 0);
                    }
                    if ((vmFlags & VM_GROWSDOWN) != 0)
                    {
                        return (-Errno.EINVAL, 0);
                    }
                    break;
                default:
                    return (-Errno.EINVAL, 0);
            }
            int err = MemfdCheckSealsMmap(file, ref vmFlags);
            if (err != 0)
            {
                return (err, 0);
            }
        }
        else
        {
            switch (flags & MAP_TYPE)
            {
                case MAP_SHARED:
                    if ((vmFlags & VM_GROWSDOWN) != 0)
                    {
                        return (-Errno.EINVAL, 0);
                    }
                    pgoff = 0;
                    vmFlags |= VM_SHARED | VM_MAYSHARE;
                    break;
                case MAP_PRIVATE:
                    pgoff = addr >> PAGE_SHIFT;
                    break;
                default:
                    return (-Errno.EINVAL, 0);
            }
        }
        if ((flags & MAP_NORESERVE) != 0)
        {
            vmFlags |= VM_NORESERVE;
        }
        long ret = await MmapRegion(file, addr, len, vmFlags, pgoff);
        ulong populate = 0;
        if (ret >= 0 && ((vmFlags & VM_LOCKED) != 0 || (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE))
        {
            populate = len;
        }
        return (ret, populate);
    }

    /// <summary>file_mmap_ok(): the offset and length fit the file's maximum size.</summary>
    /// <remarks>Context: any; reads only the file's limits.</remarks>
    [KernelSymbol("file_mmap_ok", "mm/mmap.c")]
    private static bool FileMmapOk(File file, ulong pgoff, ulong len)
    {
        ulong maxsize = file.FInode.Kind == "shmem" ? (ulong)long.MaxValue : ulong.MaxValue;
        if (len > maxsize)
        {
            return false;
        }
        maxsize -= len;
        return pgoff <= maxsize >> PAGE_SHIFT;
    }

    /// <summary>accountable_mapping(): private writable mappings are charged against overcommit.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("accountable_mapping", "mm/vma.h")]
    private static bool AccountableMapping(File? file, VmFlags vmFlags) =>
        (vmFlags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE;

    /// <summary>mmap_region(): the VM_SHARED+MAYWRITE validation, then __mmap_region().</summary>
    /// <remarks>Context: mmap_lock write-held (as __mmap_region()).</remarks>
    [KernelSymbol("mmap_region", "mm/vma.c")]
    public ValueTask<long> MmapRegion(File? file, ulong addr, ulong len, VmFlags vmFlags, ulong pgoff) =>
        __MmapRegion(file, addr, len, vmFlags, pgoff);

    /// <summary>
    /// __mmap_region(): unmaps what MAP_FIXED overlaps (PTEs first, while the old VMAs are still in
    /// the tree), charges the memory, merges into a neighbour or creates a VMA — calling the file's
    /// ->mmap_prepare() before, or its legacy ->mmap() while, the VMA is not yet linked — and
    /// finishes (accounting, VM_SOFTDIRTY, vma_set_page_prot, and ->mmap_prepare's action).
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("__mmap_region", "mm/vma.c")]
    private async ValueTask<long> __MmapRegion(File? file, ulong addr, ulong len, VmFlags vmFlags, ulong pgoff)
    {
        var mm = Current!.Mm!;
        ulong end = addr + len;
        ulong pglen = len >> PAGE_SHIFT;
        var pageProt = MmFlags.VmGetPageProt(vmFlags);
        VmOperationsStruct? vmOps = null;
        object? privateData = null;
        MmapAction? action = null;

        // __mmap_prepare(): gather and clean up whatever the new range overlaps.
        var vms = new VmaMunmapStruct { Mm = mm, Start = addr, End = end };
        vms.Vma = mm.MmMt.FindVmaIntersection(addr, end);
        VmAreaStruct? prev, next;
        if (vms.Vma is not null)
        {
            int error = await VmsGatherMunmapVmas(vms);
            if (error != 0)
            {
                return error;
            }
            (prev, next) = (vms.Prev, vms.Next);
        }
        else
        {
            next = mm.MmMt.FindVmaPrev(addr, out prev);
        }
        long charged = 0;
        if (AccountableMapping(file, vmFlags))
        {
            charged = (long)pglen - vms.NrAccounted;
            if (charged > 0 && VmEnoughMemory(charged) != 0)
            {
                return -Errno.ENOMEM;
            }
            vms.NrAccounted = 0;
            vmFlags |= VM_ACCOUNT;
        }
        // vms_clean_up_area(): clear the old PTEs while the VMAs are in the tree, then ->close them.
        if (vms.NrPages != 0)
        {
            await VmsClearPtes(vms, mmWrLocked: true);
            foreach (var v in vms.Detached)
            {
                await VmaClose(v);
            }
        }

        if (file?.FOp.MmapPrepare is { } prepare)
        {
            var desc = new VmAreaDesc
            {
                Mm = mm,
                File = file,
                Start = addr,
                End = end,
                Pgoff = pgoff,
                VmFlags = vmFlags,
                PageProt = pageProt,
            };
            int err = await prepare(desc);
            if (err != 0)
            {
                if (charged > 0)
                {
                    VmUnacctMemory(charged);
                }
                return err;
            }
            (pgoff, vmFlags, pageProt, vmOps, privateData, action) =
                (desc.Pgoff, desc.VmFlags, desc.PageProt, desc.VmOps, desc.PrivateData, desc.Action);
        }

        VmAreaStruct? vma = null;
        if (prev is not null || next is not null)
        {
            // The old VMAs leave the tree before a neighbour may grow over their range.
            VmsClearTree(vms);
            vma = await VmaMergeNewRange(new VmaMergeStruct
            {
                Mm = mm,
                Prev = prev,
                Next = next,
                Start = addr,
                End = end,
                Pgoff = pgoff,
                VmFlags = vmFlags,
                File = file,
            });
        }
        bool holdRmapLock = action?.HideFromRmapUntilComplete ?? false;
        bool havePrepare = file?.FOp.MmapPrepare is not null;
        bool allocatedNew = false;
        if (vma is null)
        {
            VmsClearTree(vms);
            var (nv, err) = await __MmapNewVma(mm, file, addr, end, pgoff, vmFlags, pageProt, vmOps, privateData,
                prev, next, holdRmapLock && file?.FOp.MmapPrepare is not null);
            if (err != 0)
            {
                if (charged > 0)
                {
                    VmUnacctMemory(charged);
                }
                return err;
            }
            vma = nv!;
            allocatedNew = true;
        }
        else
        {
            holdRmapLock = false;
        }

        // __mmap_complete().
        await VmsCompleteMunmapVmas(vms);
        VmStatAccount(mm, vma.VmFlags, (long)pglen);
        if (Config.MemSoftDirty)
        {
            await VmFlagsSet(vma, VM_SOFTDIRTY);
        }
        VmaSetPageProt(vma);
        // call_action_complete() only for a VMA ->mmap_prepare() described and __mmap_new_vma()
        // allocated: a merge into a neighbour runs no action (VM_SPECIAL actions never merge).
        if (havePrepare && allocatedNew)
        {
            int err = await MmapActionComplete(vma, action!, holdRmapLock);
            if (err != 0)
            {
                return err;
            }
        }
        return (long)addr;
    }

    /// <summary>
    /// __mmap_new_vma(): allocate the VMA, let the file's legacy ->mmap() set it up (before the
    /// VMA is visible in the tree or in i_mmap), or make it shared-anon (shmem_zero_setup) or
    /// anonymous; then store it in the tree and link it into i_mmap.
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("__mmap_new_vma", "mm/vma.c")]
    private async ValueTask<(VmAreaStruct? Vma, int Err)> __MmapNewVma(MmStruct mm, File? file, ulong addr, ulong end, ulong pgoff,
        VmFlags vmFlags, PgProt pageProt, VmOperationsStruct? vmOps, object? privateData, VmAreaStruct? prev, VmAreaStruct? next,
        bool holdRmapLock)
    {
        var vma = VmAreaAlloc(mm);
        VmaSetRange(vma, addr, end, pgoff);
        VmFlagsInit(vma, vmFlags);
        vma.VmPageProt = pageProt;
        vma.VmOps = vmOps;
        vma.VmPrivateData = privateData;
        if (file is not null)
        {
            vma.VmFile = file;
            file.FCount++;
            if (file.FOp.Mmap is { } mmap && file.FOp.MmapPrepare is null)
            {
                int error = await mmap(file, vma);
                if (error != 0)
                {
                    vma.VmFile = null;
                    Fput(file);
                    // unmap_region(): undo any partial mapping the driver made.
                    var tlb = TlbGatherMmu(mm);
                    await UnmapVmas(tlb, [vma], vma.VmStart, vma.VmEnd);
                    FreePgdRange(mm, vma.VmStart, vma.VmEnd, prev?.VmEnd ?? 0, next?.VmStart ?? 0);
                    TlbFinishMmu(tlb);
                    return (null, error);
                }
                WarnOnOnce(addr != vma.VmStart, "->mmap changed the VMA's address");
            }
        }
        else if ((vmFlags & VM_SHARED) != 0)
        {
            int error = await ShmemZeroSetup(vma);
            if (error != 0)
            {
                return (null, error);
            }
        }
        await VmaStartWrite(vma);
        mm.MmMt.Insert(vma);
        mm.MapCount++;
        if (Sched.RecordsEffects)
        {
            Sched.OnEffect(new VmaEffect(mm.Id, "inserted", vma.VmStart, vma.VmEnd, vma.VmFlags));
        }
        await VmaLinkFile(vma, holdRmapLock);
        return (vma, 0);
    }

    /// <summary>vm_pgprot_modify().</summary>
    private static PgProt VmPgprotModify(PgProt oldprot, VmFlags flags) =>
        PgprotModify(oldprot, MmFlags.VmGetPageProt(flags));

    /// <summary>
    /// vma_set_page_prot(): the VMA's PTE protection from its flags; a VMA that wants write
    /// notification gets read-only PTEs even if it is shared and writable.
    /// </summary>
    /// <remarks>
    /// Context: mmap_lock write-held; the VMA is new or write-locked (vm_page_prot is read by
    /// faults under the VMA lock).
    /// </remarks>
    [KernelSymbol("vma_set_page_prot", "mm/mmap.c")]
    public void VmaSetPageProt(VmAreaStruct vma)
    {
        var flags = vma.VmFlags;
        var prot = VmPgprotModify(vma.VmPageProt, flags);
        if (VmaWantsWritenotify(vma, prot))
        {
            flags &= ~VM_SHARED;
            prot = VmPgprotModify(prot, flags);
        }
        Sched.Access(ObjId.Make(ObjId.Kind.Vma, (ulong)vma.Id), write: true);
        vma.VmPageProt = prot;
    }

    /// <summary>
    /// vma_wants_writenotify(): a shared writable VMA whose backer wants to hear of the first write
    /// to each page (->page_mkwrite / ->pfn_mkwrite, dirty accounting, soft-dirty); never a plain
    /// VM_PFNMAP.
    /// </summary>
    /// <remarks>Context: mmap_lock held (the VMA's flags and ops are stable).</remarks>
    [KernelSymbol("vma_wants_writenotify", "mm/mmap.c")]
    public bool VmaWantsWritenotify(VmAreaStruct vma, PgProt vmPageProt)
    {
        var flags = vma.VmFlags;
        if ((flags & (VM_WRITE | VM_SHARED)) != (VM_WRITE | VM_SHARED))
        {
            return false;
        }
        var ops = vma.VmOps;
        if (ops is not null && (ops.PageMkwrite is not null || ops.PfnMkwrite is not null))
        {
            return true;
        }
        if (vmPageProt.Val != VmPgprotModify(vmPageProt, flags).Val)
        {
            return false;
        }
        if (Config.MemSoftDirty && (flags & VM_SOFTDIRTY) == 0)
        {
            return true;
        }
        if ((flags & VM_UFFD_WP) != 0)
        {
            return true;
        }
        if ((flags & VM_PFNMAP) != 0)
        {
            return false;
        }
        return vma.VmFile is { } f && f.FMapping.CanWriteback;
    }

    /// <summary>
    /// mmap_action_complete(): runs ->mmap_prepare()'s deferred action once the VMA is linked
    /// (remap_pfn_range_complete()), then drops the rmap lock if it was held throughout.
    /// </summary>
    /// <remarks>Context: mmap write lock held.</remarks>
    [KernelSymbol("mmap_action_complete", "mm/util.c")]
    private async ValueTask<int> MmapActionComplete(VmAreaStruct vma, MmapAction action, bool heldRmapLock)
    {
        int err = 0;
        if (action.Type == MmapAction.ActionType.RemapPfn)
        {
            err = await RemapPfnRangeComplete(vma, action.RemapStart, action.RemapStartPfn, action.RemapSize, action.RemapPgProt);
        }
        if (err == 0 && action.SuccessHook is { } hook)
        {
            err = await hook(vma);
        }
        if (heldRmapLock && vma.VmFile is { } f)
        {
            await f.FMapping.IMmapRwsem.UpWrite("mmap_action_complete");
        }
        if (err != 0)
        {
            // A failed action unmaps the new VMA.
            await DoVmiMunmap(vma.VmMm, vma.VmStart, vma.VmEnd - vma.VmStart, unlock: false);
        }
        return err;
    }

    /// <summary>
    /// vm_mmap_pgoff(): takes the mmap write lock around do_mmap() and populates afterwards.
    /// </summary>
    /// <remarks>Context: no locks held; takes the mmap write lock.</remarks>
    [KernelSymbol("vm_mmap_pgoff", "mm/util.c")]
    public async ValueTask<long> VmMmapPgoff(File? file, ulong addr, ulong len, int prot, int flag, ulong pgoff)
    {
        var mm = Current!.Mm!;
        await MmapWriteLockKillable(mm);
        var (ret, populate) = await DoMmap(file, addr, len, prot, flag, 0, pgoff);
        await MmapWriteUnlock(mm);
        if (populate != 0)
        {
            await MmPopulate((ulong)ret, populate);
        }
        return ret;
    }

    /// <summary>ksys_mmap_pgoff(): looks up the fd and refuses hugetlb (no huge pages are reserved).</summary>
    /// <remarks>Context: system call body: no locks held.</remarks>
    [KernelSymbol("ksys_mmap_pgoff", "mm/mmap.c")]
    public async ValueTask<long> KsysMmapPgoff(ulong addr, ulong len, int prot, int flags, long fd, ulong pgoff)
    {
        File? file = null;
        if ((flags & MAP_ANONYMOUS) == 0)
        {
            file = Current!.Files.Get(fd);
            if (file is null)
            {
                return -Errno.EBADF;
            }
            if ((flags & MAP_HUGETLB) != 0)
            {
                return -Errno.EINVAL;
            }
            file.FCount++;
        }
        else if ((flags & MAP_HUGETLB) != 0)
        {
            // hugetlb_file_setup() with vm.nr_hugepages = 0.
            return -Errno.ENOMEM;
        }
        long retval = await VmMmapPgoff(file, addr, len, prot, flags, pgoff);
        if (file is not null)
        {
            Fput(file);
        }
        return retval;
    }

    /// <summary>__vm_munmap(): munmap(2) under the mmap write lock, downgraded for the zap.</summary>
    /// <remarks>Context: no locks held; takes the mmap write lock.</remarks>
    [KernelSymbol("__vm_munmap", "mm/vma.c")]
    [AsyncMethodBuilder(typeof(InlineAsyncBuilder<>))]
    public async ValueTask<int> __VmMunmap(ulong start, ulong len, bool unlock)
    {
        var mm = Current!.Mm!;
        await MmapWriteLockKillable(mm);
        int ret = await DoVmiMunmap(mm, start, len, unlock);
        if (ret != 0 || !unlock)
        {
            await MmapWriteUnlock(mm);
        }
        return ret;
    }

    /// <summary>
    /// exit_mmap(): tears the whole address space down: zap everything with a full-mm gather, free
    /// the page tables, remove every VMA.
    /// </summary>
    /// <remarks>Context: the mm has no users left; takes the mmap read lock to unmap, then the write lock to free the tables.</remarks>
    [KernelSymbol("exit_mmap", "mm/mmap.c")]
    public async ValueTask ExitMmap(MmStruct mm)
    {
        await MmuNotifierRelease(mm);
        await MmapReadLock(mm);
        var vmas = mm.MmMt.Snapshot();
        var tlb = TlbGatherMmuFullmm(mm);
        if (vmas.Count > 0)
        {
            await UnmapVmas(tlb, vmas, 0, ulong.MaxValue);
        }
        await MmapReadUnlock(mm);
        await MmapWriteLock(mm);
        mm.Flags |= MmStruct.MMF_UNSTABLE;
        await FreePgtables(tlb, vmas, 0, 0, mmWrLocked: true);
        TlbFinishMmu(tlb);
        long nrAccounted = 0;
        foreach (var vma in vmas)
        {
            if ((vma.VmFlags & VM_ACCOUNT) != 0)
            {
                nrAccounted += (long)vma.Pages;
            }
            mm.MmMt.Remove(vma);
            await RemoveVma(vma);
            mm.MapCount--;
        }
        VmUnacctMemory(nrAccounted);
        mm.Dead = true;
        await MmapWriteUnlock(mm);
    }
}

using System.Text;

namespace Linux;

/// <summary>vm_flags_t: include/linux/mm.h VM_* flags, kernel spelling and values.</summary>
[Flags]
[KernelSymbol("vm_flags_t", "include/linux/mm.h")]
public enum VmFlags : ulong
{
    VM_NONE = 0,
    VM_READ = 0x00000001,
    VM_WRITE = 0x00000002,
    VM_EXEC = 0x00000004,
    VM_SHARED = 0x00000008,
    VM_MAYREAD = 0x00000010,
    VM_MAYWRITE = 0x00000020,
    VM_MAYEXEC = 0x00000040,
    VM_MAYSHARE = 0x00000080,
    VM_GROWSDOWN = 0x00000100,
    VM_UFFD_MISSING = 0x00000200,
    VM_PFNMAP = 0x00000400,
    /// <summary>VM_MAYBE_GUARD: MADV_GUARD_INSTALL may have left guard markers (a sticky flag).</summary>
    VM_MAYBE_GUARD = 0x00000800,
    VM_UFFD_WP = 0x00001000,
    VM_LOCKED = 0x00002000,
    VM_IO = 0x00004000,
    VM_SEQ_READ = 0x00008000,
    VM_RAND_READ = 0x00010000,
    VM_DONTCOPY = 0x00020000,
    VM_DONTEXPAND = 0x00040000,
    VM_LOCKONFAULT = 0x00080000,
    VM_ACCOUNT = 0x00100000,
    VM_NORESERVE = 0x00200000,
    VM_HUGETLB = 0x00400000,
    VM_SYNC = 0x00800000,
    VM_ARCH_1 = 0x01000000,
    /// <summary>VM_PAT (x86's VM_ARCH_1): remap_pfn_range() of the whole VMA reserved the PFN
    /// range's memory type (track_pfn_remap(), v2.6.29 to v6.15; removed by "mm: remove VM_PAT").</summary>
    VM_PAT = VM_ARCH_1,
    VM_WIPEONFORK = 0x02000000,
    VM_DONTDUMP = 0x04000000,
    VM_SOFTDIRTY = 0x08000000,
    VM_MIXEDMAP = 0x10000000,
    VM_HUGEPAGE = 0x20000000,
    VM_NOHUGEPAGE = 0x40000000,
    VM_MERGEABLE = 0x80000000,

    /// <summary>VM_SPECIAL: no merging, no mlock, no madvise of most kinds.</summary>
    VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP,
    VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC,
    VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT,
    /// <summary>VM_STACK on x86 (stack grows down).</summary>
    VM_STACK = VM_GROWSDOWN,
    /// <summary>remap_pfn_range()'s flags (VMA_REMAP_FLAGS).</summary>
    VM_REMAP_FLAGS = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP,
    /// <summary>VM_COPY_ON_FORK: page tables must be copied at fork (vma_needs_copy()).</summary>
    VM_COPY_ON_FORK = VM_PFNMAP | VM_MIXEDMAP | VM_UFFD_WP,
}

/// <summary>enum fault_flag (include/linux/mm_types.h).</summary>
[Flags]
[KernelSymbol("fault_flag", "include/linux/mm_types.h")]
public enum FaultFlag : uint
{
    None = 0,
    FAULT_FLAG_WRITE = 1u << 0,
    FAULT_FLAG_MKWRITE = 1u << 1,
    FAULT_FLAG_ALLOW_RETRY = 1u << 2,
    FAULT_FLAG_RETRY_NOWAIT = 1u << 3,
    FAULT_FLAG_KILLABLE = 1u << 4,
    FAULT_FLAG_TRIED = 1u << 5,
    FAULT_FLAG_USER = 1u << 6,
    FAULT_FLAG_REMOTE = 1u << 7,
    FAULT_FLAG_INSTRUCTION = 1u << 8,
    FAULT_FLAG_INTERRUPTIBLE = 1u << 9,
    FAULT_FLAG_UNSHARE = 1u << 10,
    FAULT_FLAG_ORIG_PTE_VALID = 1u << 11,
    FAULT_FLAG_VMA_LOCK = 1u << 12,

    /// <summary>FAULT_FLAG_DEFAULT: what an arch fault handler starts with.</summary>
    FAULT_FLAG_DEFAULT = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_INTERRUPTIBLE,
}

/// <summary>vm_fault_t: enum vm_fault_reason (include/linux/mm_types.h).</summary>
[Flags]
[KernelSymbol("vm_fault_reason", "include/linux/mm_types.h")]
public enum VmFault : uint
{
    /// <summary>0: the fault was handled.</summary>
    None = 0,
    VM_FAULT_OOM = 0x000001,
    VM_FAULT_SIGBUS = 0x000002,
    VM_FAULT_MAJOR = 0x000004,
    VM_FAULT_HWPOISON = 0x000010,
    VM_FAULT_HWPOISON_LARGE = 0x000020,
    VM_FAULT_SIGSEGV = 0x000040,
    VM_FAULT_NOPAGE = 0x000100,
    VM_FAULT_LOCKED = 0x000200,
    VM_FAULT_RETRY = 0x000400,
    VM_FAULT_FALLBACK = 0x000800,
    VM_FAULT_DONE_COW = 0x001000,
    VM_FAULT_NEEDDSYNC = 0x002000,
    VM_FAULT_COMPLETED = 0x004000,

    VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON |
                     VM_FAULT_HWPOISON_LARGE | VM_FAULT_FALLBACK,
}

/// <summary>FOLL_* (include/linux/mm_types.h enum and mm/internal.h).</summary>
[Flags]
[KernelSymbol("FOLL_*", "include/linux/mm_types.h")]
public enum Foll : uint
{
    None = 0,
    FOLL_WRITE = 1u << 0,
    FOLL_GET = 1u << 1,
    FOLL_DUMP = 1u << 2,
    FOLL_FORCE = 1u << 3,
    FOLL_NOWAIT = 1u << 4,
    FOLL_NOFAULT = 1u << 5,
    FOLL_HWPOISON = 1u << 6,
    FOLL_ANON = 1u << 7,
    FOLL_LONGTERM = 1u << 8,
    FOLL_SPLIT_PMD = 1u << 9,
    FOLL_PCI_P2PDMA = 1u << 10,
    FOLL_INTERRUPTIBLE = 1u << 11,
    FOLL_HONOR_NUMA_FAULT = 1u << 12,
    // mm/internal.h
    FOLL_TOUCH = 1u << 16,
    FOLL_TRIED = 1u << 17,
    FOLL_REMOTE = 1u << 18,
    FOLL_PIN = 1u << 19,
    FOLL_FAST_ONLY = 1u << 20,
    FOLL_UNLOCKABLE = 1u << 21,
    FOLL_MADV_POPULATE = 1u << 22,
}

/// <summary>enum mmu_notifier_event (include/linux/mmu_notifier.h).</summary>
[KernelSymbol("mmu_notifier_event", "include/linux/mmu_notifier.h")]
public enum MmuNotifierEvent
{
    MMU_NOTIFY_UNMAP = 0,
    MMU_NOTIFY_CLEAR,
    MMU_NOTIFY_PROTECTION_VMA,
    MMU_NOTIFY_PROTECTION_PAGE,
    MMU_NOTIFY_SOFT_DIRTY,
    MMU_NOTIFY_RELEASE,
    MMU_NOTIFY_MIGRATE,
    MMU_NOTIFY_EXCLUSIVE,
}

/// <summary>rss counters: NR_MM_COUNTERS (include/linux/mm_types_task.h).</summary>
public enum MmCounter
{
    MM_FILEPAGES = 0,
    MM_ANONPAGES = 1,
    MM_SWAPENTS = 2,
    MM_SHMEMPAGES = 3,
}

/// <summary>
/// struct vm_fault: filled by the fault handler and passed down to the VMA's ->fault and friends.
/// </summary>
[KernelSymbol("vm_fault", "include/linux/mm.h")]
public sealed class VmFaultInfo
{
    public VmAreaStruct Vma = null!;
    /// <summary>The faulting address rounded down to the page.</summary>
    public ulong Address;
    /// <summary>The faulting address as given.</summary>
    public ulong RealAddress;
    public FaultFlag Flags;
    /// <summary>Offset of the page in the VMA's file or anon space (linear_page_index()).</summary>
    public ulong Pgoff;
    public PtPtr Pmd;
    public PtPtr Pud;
    /// <summary>The PTE pointer, valid while mapped (pte_offset_map*).</summary>
    public PtPtr? Pte;
    public SpinLock? Ptl;
    /// <summary>The PTE value read when the fault began.</summary>
    public Pte OrigPte;
    public Pmd OrigPmd;
    /// <summary>Page allocated for a copy-on-write fault.</summary>
    public Page? CowPage;
    /// <summary>The page ->fault returned (locked if VM_FAULT_LOCKED).</summary>
    public Page? Page;
    /// <summary>A page table allocated before taking the PTL, installed by pmd_install().</summary>
    public ulong? PreallocPte;
}

/// <summary>
/// struct vm_operations_struct: a driver's or filesystem's hooks into the VMA's life. Each hook
/// is nullable, as a C function pointer is.
/// </summary>
[KernelSymbol("vm_operations_struct", "include/linux/mm.h")]
public sealed class VmOperationsStruct
{
    public required string Name { get; init; }
    /// <summary>->open(): a new VMA from fork or split. Context: mmap write lock held.</summary>
    public Func<VmAreaStruct, ValueTask>? Open { get; init; }
    /// <summary>->close(): the VMA is going away. Context: mmap write lock held.</summary>
    public Func<VmAreaStruct, ValueTask>? Close { get; init; }
    /// <summary>->may_split(): veto a split at an address (returns 0 or -errno).</summary>
    public Func<VmAreaStruct, ulong, int>? MaySplit { get; init; }
    /// <summary>->mremap(): the VMA is moving (returns 0 or -errno).</summary>
    public Func<VmAreaStruct, int>? Mremap { get; init; }
    /// <summary>->fault(). Context: mmap read lock (never only the VMA lock, see vmf_can_call_fault()).</summary>
    public Func<VmFaultInfo, ValueTask<VmFault>>? Fault { get; init; }
    /// <summary>->huge_fault(vmf, order).</summary>
    public Func<VmFaultInfo, int, ValueTask<VmFault>>? HugeFault { get; init; }
    /// <summary>->map_pages(vmf, start_pgoff, end_pgoff): fault-around over the page cache.</summary>
    public Func<VmFaultInfo, ulong, ulong, ValueTask<VmFault>>? MapPages { get; init; }
    /// <summary>->page_mkwrite(): a read-only page is about to become writable.</summary>
    public Func<VmFaultInfo, ValueTask<VmFault>>? PageMkwrite { get; init; }
    /// <summary>->pfn_mkwrite(): as page_mkwrite for VM_PFNMAP / VM_MIXEDMAP.</summary>
    public Func<VmFaultInfo, ValueTask<VmFault>>? PfnMkwrite { get; init; }
    /// <summary>->name(): the name /proc/pid/maps shows.</summary>
    public Func<VmAreaStruct, string?>? MapName { get; init; }

    public override string ToString() => Name;
}

/// <summary>Helpers of include/linux/mm.h that need no kernel state.</summary>
public static class MmFlags
{
    /// <summary>is_cow_mapping(): private and possibly writable.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("is_cow_mapping", "include/linux/mm.h")]
    public static bool IsCowMapping(VmFlags flags) =>
        (flags & (VmFlags.VM_SHARED | VmFlags.VM_MAYWRITE)) == VmFlags.VM_MAYWRITE;

    /// <summary>is_shared_maywrite().</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("is_shared_maywrite", "include/linux/mm.h")]
    public static bool IsSharedMaywrite(VmFlags flags) =>
        (flags & (VmFlags.VM_SHARED | VmFlags.VM_MAYWRITE)) == (VmFlags.VM_SHARED | VmFlags.VM_MAYWRITE);

    /// <summary>vm_get_page_prot(): protection_map[] indexed by the access and shared bits.</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("vm_get_page_prot", "arch/x86/mm/pgprot.c")]
    public static PgProt VmGetPageProt(VmFlags flags) =>
        new(X86Pte.ProtectionMap[(int)((ulong)flags & (ulong)(VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_EXEC | VmFlags.VM_SHARED))]);

    private static readonly (VmFlags Flag, string Name)[] s_names =
    [
        (VmFlags.VM_READ, "rd"), (VmFlags.VM_WRITE, "wr"), (VmFlags.VM_EXEC, "ex"), (VmFlags.VM_SHARED, "sh"),
        (VmFlags.VM_MAYREAD, "mr"), (VmFlags.VM_MAYWRITE, "mw"), (VmFlags.VM_MAYEXEC, "me"), (VmFlags.VM_MAYSHARE, "ms"),
        (VmFlags.VM_GROWSDOWN, "gd"), (VmFlags.VM_PFNMAP, "pf"), (VmFlags.VM_MAYBE_GUARD, "gu"), (VmFlags.VM_LOCKED, "lo"), (VmFlags.VM_IO, "io"),
        (VmFlags.VM_SEQ_READ, "sr"), (VmFlags.VM_RAND_READ, "rr"), (VmFlags.VM_DONTCOPY, "dc"), (VmFlags.VM_DONTEXPAND, "de"),
        (VmFlags.VM_LOCKONFAULT, "lf"), (VmFlags.VM_ACCOUNT, "ac"), (VmFlags.VM_NORESERVE, "nr"), (VmFlags.VM_HUGETLB, "ht"),
        (VmFlags.VM_SYNC, "sf"), (VmFlags.VM_WIPEONFORK, "wf"), (VmFlags.VM_DONTDUMP, "dd"), (VmFlags.VM_SOFTDIRTY, "sd"),
        (VmFlags.VM_MIXEDMAP, "mm"), (VmFlags.VM_HUGEPAGE, "hg"), (VmFlags.VM_NOHUGEPAGE, "nh"), (VmFlags.VM_MERGEABLE, "mg"),
        (VmFlags.VM_UFFD_MISSING, "um"), (VmFlags.VM_UFFD_WP, "uw"),
    ];

    /// <summary>The two-letter mnemonics of /proc/pid/smaps "VmFlags:" (fs/proc/task_mmu.c:show_smap_vma_flags()).</summary>
    /// <remarks>Context: any; pure.</remarks>
    [KernelSymbol("show_smap_vma_flags", "fs/proc/task_mmu.c")]
    public static string Format(VmFlags flags)
    {
        var sb = new StringBuilder();
        foreach (var (f, n) in s_names)
        {
            if ((flags & f) != 0)
            {
                if (sb.Length > 0)
                {
                    sb.Append(' ');
                }
                sb.Append(n);
            }
        }
        return sb.ToString();
    }
}

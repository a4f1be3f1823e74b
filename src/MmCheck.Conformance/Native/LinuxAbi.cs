namespace MmCheck.Conformance.Native;

/// <summary>The Linux x86-64 ABI numbers the oracle's commands take and return, in kernel spelling.</summary>
public static class LinuxAbi
{
    public const ulong PAGE_SIZE = 4096;

    public const int PROT_NONE = 0x0;
    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int PROT_EXEC = 0x4;

    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_FIXED = 0x10;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_NORESERVE = 0x4000;
    public const int MAP_POPULATE = 0x8000;
    public const int MAP_FIXED_NOREPLACE = 0x100000;

    public const int MADV_NORMAL = 0;
    public const int MADV_RANDOM = 1;
    public const int MADV_SEQUENTIAL = 2;
    public const int MADV_WILLNEED = 3;
    public const int MADV_DONTNEED = 4;
    public const int MADV_FREE = 8;
    public const int MADV_REMOVE = 9;
    public const int MADV_DONTFORK = 10;
    public const int MADV_DOFORK = 11;
    public const int MADV_HUGEPAGE = 14;
    public const int MADV_NOHUGEPAGE = 15;
    public const int MADV_WIPEONFORK = 18;
    public const int MADV_KEEPONFORK = 19;
    public const int MADV_COLD = 20;
    public const int MADV_PAGEOUT = 21;

    public const int MREMAP_MAYMOVE = 1;
    public const int MREMAP_FIXED = 2;
    public const int MREMAP_DONTUNMAP = 4;

    public const int MFD_CLOEXEC = 0x1;
    public const int MFD_ALLOW_SEALING = 0x2;

    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int EOVERFLOW = 75;

    public const int SIGBUS = 7;
    public const int SIGSEGV = 11;

    public const int SEGV_MAPERR = 1;
    public const int SEGV_ACCERR = 2;
    public const int BUS_ADRALN = 1;
    public const int BUS_ADRERR = 2;

    // /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h).
    public const int KPF_LOCKED = 0;
    public const int KPF_UPTODATE = 3;
    public const int KPF_DIRTY = 4;
    public const int KPF_LRU = 5;
    public const int KPF_ACTIVE = 6;
    public const int KPF_SLAB = 7;
    public const int KPF_BUDDY = 10;
    public const int KPF_MMAP = 11;
    public const int KPF_ANON = 12;
    public const int KPF_SWAPCACHE = 13;
    public const int KPF_SWAPBACKED = 14;
    public const int KPF_COMPOUND_HEAD = 15;
    public const int KPF_COMPOUND_TAIL = 16;
    public const int KPF_HUGE = 17;
    public const int KPF_NOPAGE = 20;
    public const int KPF_KSM = 21;
    public const int KPF_THP = 22;
    public const int KPF_ZERO_PAGE = 24;
    public const int KPF_PGTABLE = 26;
    public const int KPF_RESERVED = 32;

    public static bool HasKpf(ulong flags, int bit) => (flags >> bit & 1) != 0;
}

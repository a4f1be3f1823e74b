namespace Linux;

/// <summary>The user ABI constants: include/uapi/asm-generic/mman-common.h, mman.h, linux/mman.h,
/// fcntl.h, memfd.h and signal numbers, with the values x86-64 uses.</summary>
[KernelSymbol("uapi mman", "include/uapi/asm-generic/mman-common.h")]
public static class Mman
{
    public const int PROT_NONE = 0x0;
    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int PROT_EXEC = 0x4;
    public const int PROT_SEM = 0x8;
    public const int PROT_GROWSDOWN = 0x01000000;
    public const int PROT_GROWSUP = 0x02000000;

    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_SHARED_VALIDATE = 0x03;
    public const int MAP_TYPE = 0x0f;
    public const int MAP_FIXED = 0x10;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_32BIT = 0x40;
    public const int MAP_GROWSDOWN = 0x0100;
    public const int MAP_DENYWRITE = 0x0800;
    public const int MAP_EXECUTABLE = 0x1000;
    public const int MAP_LOCKED = 0x2000;
    public const int MAP_NORESERVE = 0x4000;
    public const int MAP_POPULATE = 0x008000;
    public const int MAP_NONBLOCK = 0x010000;
    public const int MAP_STACK = 0x020000;
    public const int MAP_HUGETLB = 0x040000;
    public const int MAP_SYNC = 0x080000;
    public const int MAP_FIXED_NOREPLACE = 0x100000;
    public const int MAP_UNINITIALIZED = 0x4000000;
    /// <summary>LEGACY_MAP_MASK: flags mmap accepted before MAP_SHARED_VALIDATE checked them.</summary>
    public const int LEGACY_MAP_MASK = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE |
                                       MAP_EXECUTABLE | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED |
                                       MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB;

    public const int MADV_NORMAL = 0;
    public const int MADV_RANDOM = 1;
    public const int MADV_SEQUENTIAL = 2;
    public const int MADV_WILLNEED = 3;
    public const int MADV_DONTNEED = 4;
    public const int MADV_FREE = 8;
    public const int MADV_REMOVE = 9;
    public const int MADV_DONTFORK = 10;
    public const int MADV_DOFORK = 11;
    public const int MADV_MERGEABLE = 12;
    public const int MADV_UNMERGEABLE = 13;
    public const int MADV_HUGEPAGE = 14;
    public const int MADV_NOHUGEPAGE = 15;
    public const int MADV_DONTDUMP = 16;
    public const int MADV_DODUMP = 17;
    public const int MADV_WIPEONFORK = 18;
    public const int MADV_KEEPONFORK = 19;
    public const int MADV_COLD = 20;
    public const int MADV_PAGEOUT = 21;
    public const int MADV_POPULATE_READ = 22;
    public const int MADV_POPULATE_WRITE = 23;
    public const int MADV_DONTNEED_LOCKED = 24;
    public const int MADV_COLLAPSE = 25;
    public const int MADV_GUARD_INSTALL = 102;
    public const int MADV_GUARD_REMOVE = 103;
    public const int MADV_HWPOISON = 100;
    public const int MADV_SOFT_OFFLINE = 101;

    public const int MREMAP_MAYMOVE = 1;
    public const int MREMAP_FIXED = 2;
    public const int MREMAP_DONTUNMAP = 4;

    public const int O_RDONLY = 0x0;
    public const int O_WRONLY = 0x1;
    public const int O_RDWR = 0x2;
    public const int O_ACCMODE = 0x3;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_TRUNC = 0x200;
    public const int O_APPEND = 0x400;
    public const int O_DSYNC = 0x1000;
    public const int O_SYNC = 0x101000;
    public const int O_CLOEXEC = 0x80000;

    public const int MFD_CLOEXEC = 0x0001;
    public const int MFD_ALLOW_SEALING = 0x0002;
    public const int MFD_HUGETLB = 0x0004;
    public const int MFD_NOEXEC_SEAL = 0x0008;
    public const int MFD_EXEC = 0x0010;

    public const int SIGBUS = 7;
    public const int SIGKILL = 9;
    public const int SIGSEGV = 11;

    /// <summary>Every named constant, for the scenario language's table.</summary>
    public static IReadOnlyDictionary<string, long> All { get; } =
        typeof(Mman).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(int))
            .ToDictionary(f => f.Name, f => (long)(int)f.GetRawConstantValue()!);
}

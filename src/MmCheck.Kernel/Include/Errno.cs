namespace Linux;

/// <summary>include/uapi/asm-generic/errno-base.h and errno.h: the values this model returns, negated.</summary>
[KernelSymbol("errno", "include/uapi/asm-generic/errno-base.h")]
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int E2BIG = 7;
    public const int EBADF = 9;
    public const int ECHILD = 10;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ETXTBSY = 26;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int ESPIPE = 29;
    public const int EROFS = 30;
    public const int ERANGE = 34;
    public const int ENOSYS = 38;
    public const int EOVERFLOW = 75;
    public const int EOPNOTSUPP = 95;
    public const int EHWPOISON = 133;

    private static readonly (string Name, int Value)[] s_all =
    [
        ("EPERM", EPERM), ("ENOENT", ENOENT), ("ESRCH", ESRCH), ("EINTR", EINTR), ("EIO", EIO),
        ("ENXIO", ENXIO), ("E2BIG", E2BIG), ("EBADF", EBADF), ("ECHILD", ECHILD), ("EAGAIN", EAGAIN),
        ("ENOMEM", ENOMEM), ("EACCES", EACCES), ("EFAULT", EFAULT), ("EBUSY", EBUSY), ("EEXIST", EEXIST),
        ("ENODEV", ENODEV), ("ENOTDIR", ENOTDIR), ("EISDIR", EISDIR), ("EINVAL", EINVAL), ("ENFILE", ENFILE),
        ("EMFILE", EMFILE), ("ETXTBSY", ETXTBSY), ("EFBIG", EFBIG), ("ENOSPC", ENOSPC), ("ESPIPE", ESPIPE),
        ("EROFS", EROFS), ("ERANGE", ERANGE), ("ENOSYS", ENOSYS), ("EOVERFLOW", EOVERFLOW), ("EOPNOTSUPP", EOPNOTSUPP),
        ("EHWPOISON", EHWPOISON),
    ];

    /// <summary>Every errno the model knows, by name.</summary>
    public static IReadOnlyList<(string Name, int Value)> All => s_all;

    public static string? Name(int value)
    {
        foreach (var (n, v) in s_all)
        {
            if (v == value)
            {
                return n;
            }
        }
        return null;
    }

    /// <summary>IS_ERR_VALUE(): a return value in [-4095, -1].</summary>
    public static bool IsErrValue(long v) => v < 0 && v >= -4095;

    /// <summary>Prints a syscall result the way strace does: "-EINVAL" or the number.</summary>
    public static string Format(long v)
    {
        if (IsErrValue(v) && Name((int)-v) is { } n)
        {
            return "-" + n;
        }
        return v.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}

namespace Linux;

/// <summary>
/// The file operations of a device file that mm itself never calls — unlocked_ioctl, read and
/// write at an offset — kept beside <see cref="FileOperations"/>, which carries only mm's hooks.
/// </summary>
[KernelSymbol("file_operations", "include/linux/fs.h")]
public sealed class DeviceFileOperations
{
    /// <summary>->unlocked_ioctl(file, cmd, arg).</summary>
    public Func<File, uint, ulong, ValueTask<long>>? UnlockedIoctl { get; init; }
    /// <summary>->read() of <c>size</c> bytes (1, 2, 4, 8) at an offset: (bytes or -errno, value).</summary>
    public Func<File, long, int, ValueTask<(long Ret, ulong Value)>>? Read { get; init; }
    /// <summary>->write() of <c>size</c> bytes at an offset: bytes or -errno.</summary>
    public Func<File, long, int, ulong, ValueTask<long>>? Write { get; init; }
}

/// <summary>
/// A node in the model's small VFS: a path ("/dev/mem", "/proc/bus/pci/00/01.0",
/// "/sys/bus/pci/devices/0000:00:01.0/resource0", "/dev/vfio/devices/vfio0", "/dev/fb0") with its
/// inode and the ->open that builds the struct file — choosing f_mapping, as open_port() and
/// proc_bus_pci_open() do, and filling private_data.
/// </summary>
public sealed class DeviceNode
{
    public required string Path { get; init; }
    public required Inode Inode { get; init; }
    public required FileOperations Fops { get; init; }
    public DeviceFileOperations? Ops { get; init; }
    /// <summary>->open(inode, file): returns the file to install (with its f_mapping) or -errno.</summary>
    public required Func<DeviceNode, int, ValueTask<(File? File, int Err)>> Open { get; init; }

    public override string ToString() => Path;
}

// fs/open.c, fs/ioctl.c and fs/read_write.c for device files: a table of device paths instead of
// a dentry cache, openat(2), ioctl(2), pread64(2) and pwrite64(2).
public sealed partial class Kernel
{
    /// <summary>ENOTTY: not a typewriter (an ioctl the file does not know).</summary>
    public const int ENOTTY = 25;

    private readonly Dictionary<string, DeviceNode> _deviceNodes = new(StringComparer.Ordinal);
    private readonly Dictionary<FileOperations, DeviceFileOperations> _deviceFileOps = new(ReferenceEqualityComparer.Instance);

    /// <summary>Adds a device path (the model's mknod / proc_create / sysfs_create_bin_file).</summary>
    public void RegisterDeviceNode(DeviceNode node)
    {
        _deviceNodes[node.Path] = node;
        if (node.Ops is { } ops)
        {
            _deviceFileOps[node.Fops] = ops;
        }
    }

    /// <summary>Removes a device path (device removal).</summary>
    public void UnregisterDeviceNode(string path) => _deviceNodes.Remove(path);

    /// <summary>The device paths that exist, sorted.</summary>
    public IReadOnlyList<string> DevicePaths => [.. _deviceNodes.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Looks up a device node by path.</summary>
    public DeviceNode? LookupDeviceNode(string path) => _deviceNodes.GetValueOrDefault(path);

    /// <summary>
    /// do_dentry_open(): a struct file for the node's inode, f_mapping defaulting to
    /// inode->i_mapping (the ->open passes another mapping when it redirects f_mapping).
    /// </summary>
    /// <remarks>Context: open(2): no mm locks held; the new file is private to the caller.</remarks>
    [KernelSymbol("do_dentry_open", "fs/open.c")]
    public static File AllocDeviceFile(DeviceNode node, int flags, AddressSpace? mapping = null, object? privateData = null)
    {
        node.Inode.ICount++;
        return new File(node.Inode, node.Fops, flags, mapping) { PrivateData = privateData };
    }

    /// <summary>
    /// openat(2) → do_sys_openat2(): finds the node, runs its ->open and installs the file in
    /// the lowest free descriptor. -ENOENT for an unknown path.
    /// </summary>
    /// <remarks>Context: system call entry: no locks held; calls the device's open.</remarks>
    [KernelSymbol("openat", "fs/open.c")]
    public async ValueTask<long> SysOpen(string path, int flags)
    {
        await SyscallEnter("openat");
        EnsureDevices();
        long r;
        if (!_deviceNodes.TryGetValue(path, out var node))
        {
            r = -Errno.ENOENT;
        }
        else
        {
            var (file, err) = await node.Open(node, flags);
            r = file is null ? err : Current!.Files.Install(file);
        }
        await ReturnToUser(Current!, "openat");
        return r;
    }

    /// <summary>ioctl(2) → vfs_ioctl() → ->unlocked_ioctl; -ENOTTY if the file has none.</summary>
    /// <remarks>Context: system call entry: no locks held; calls the device's ioctl.</remarks>
    [KernelSymbol("ioctl", "fs/ioctl.c")]
    public async ValueTask<long> SysIoctl(long fd, uint cmd, ulong arg)
    {
        await SyscallEnter("ioctl");
        long r;
        if (Current!.Files.Get(fd) is not { } f)
        {
            r = -Errno.EBADF;
        }
        else if (_deviceFileOps.GetValueOrDefault(f.FOp)?.UnlockedIoctl is { } ioctl)
        {
            r = await ioctl(f, cmd, arg);
        }
        else
        {
            r = -ENOTTY;
        }
        await ReturnToUser(Current!, "ioctl");
        return r;
    }

    /// <summary>pread64(2) of one value of <paramref name="size"/> bytes at <paramref name="offset"/>.</summary>
    /// <remarks>Context: system call entry: no locks held; calls the device's read.</remarks>
    [KernelSymbol("pread64", "fs/read_write.c")]
    public async ValueTask<(long Ret, ulong Value)> SysPread(long fd, int size, long offset)
    {
        await SyscallEnter("pread64");
        (long, ulong) r;
        if (Current!.Files.Get(fd) is not { } f)
        {
            r = (-Errno.EBADF, 0);
        }
        else if (!f.Readable)
        {
            r = (-Errno.EBADF, 0);
        }
        else if (_deviceFileOps.GetValueOrDefault(f.FOp)?.Read is { } read)
        {
            r = await read(f, offset, size);
        }
        else
        {
            r = (-Errno.EINVAL, 0);
        }
        await ReturnToUser(Current!, "pread64");
        return r;
    }

    /// <summary>pwrite64(2) of one value of <paramref name="size"/> bytes at <paramref name="offset"/>.</summary>
    /// <remarks>Context: system call entry: no locks held; calls the device's write.</remarks>
    [KernelSymbol("pwrite64", "fs/read_write.c")]
    public async ValueTask<long> SysPwrite(long fd, ulong value, int size, long offset)
    {
        await SyscallEnter("pwrite64");
        long r;
        if (Current!.Files.Get(fd) is not { } f)
        {
            r = -Errno.EBADF;
        }
        else if (!f.Writable)
        {
            r = -Errno.EBADF;
        }
        else if (_deviceFileOps.GetValueOrDefault(f.FOp)?.Write is { } write)
        {
            r = await write(f, offset, size, value);
        }
        else
        {
            r = -Errno.EINVAL;
        }
        await ReturnToUser(Current!, "pwrite64");
        return r;
    }
}

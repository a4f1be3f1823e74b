using System.Collections.Immutable;
using System.Globalization;
using MmCheck.Conformance.Native;

namespace MmCheck.Conformance;

/// <summary>A special mapping of the real process ([vvar], [vvar_vclock], [vdso]): where, its
/// permissions as /proc/pid/maps shows them, and its smaps VmFlags mnemonics.</summary>
public sealed record SpecialMappingInfo(string Name, ulong Start, ulong End, string Perms, ImmutableArray<string> VmFlags);

/// <summary>
/// What the model's first process must mirror of the real one: the top of the mmap area, the
/// special mappings there, the stack, the oracle's own binary, .bss and heap at the bottom
/// (<see cref="LowMappings"/>: they decide whether a low hint is free), and the system settings
/// that change syscall results (mmap_min_addr, total RAM for the overcommit heuristic). Read from the oracle with
/// <see cref="FromOracle"/>; <see cref="Default"/> is what the oracle reported on the machine
/// this was written on, for model-only use.
/// </summary>
public sealed record ProcessLayout(
    ulong MmapTop,
    ulong MmapBase,
    ulong TaskSize,
    ulong StackStart,
    ulong StackEnd,
    ImmutableArray<SpecialMappingInfo> Specials,
    ulong MemTotalBytes,
    ulong MmapMinAddr,
    ImmutableArray<MapsLine> LowMappings)
{
    /// <summary>Maps observations show VMAs from here up to the stack: the mmap area, not the
    /// oracle's own binary, .bss and heap at the bottom of the address space.</summary>
    public const ulong MapsFloor = 1UL << 32;

    /// <summary>The layout the oracle reports on an x86-64 machine with 4-level paging, ASLR off and an
    /// 8 MiB stack rlimit (Linux 6.18: [vvar] 4 pages, [vvar_vclock] 2, [vdso] 2).</summary>
    public static ProcessLayout Default { get; } = new(
        MmapTop: 0x7ffff7ff7000,
        MmapBase: 0x7ffff7fff000,
        TaskSize: 0x7ffffffff000,
        StackStart: 0x7ffffffde000,
        StackEnd: 0x7ffffffff000,
        Specials:
        [
            new("[vvar]", 0x7ffff7ff7000, 0x7ffff7ffb000, "r--p", ["rd", "mr", "pf", "io", "de", "dd"]),
            new("[vvar_vclock]", 0x7ffff7ffb000, 0x7ffff7ffd000, "r--p", ["rd", "mr", "pf", "io", "de", "dd"]),
            new("[vdso]", 0x7ffff7ffd000, 0x7ffff7fff000, "r-xp", ["rd", "ex", "mr", "mw", "me", "de"]),
        ],
        MemTotalBytes: 8UL << 30,
        MmapMinAddr: 4096,
        LowMappings:
        [
            new(0x400000, 0x401000, "r--p", 0, "oracle"),
            new(0x401000, 0x499000, "r-xp", 0x1000, "oracle"),
            new(0x499000, 0x4c3000, "r--p", 0x99000, "oracle"),
            new(0x4c3000, 0x4c7000, "r--p", 0xc3000, "oracle"),
            new(0x4c7000, 0x4ca000, "rw-p", 0xc7000, "oracle"),
            new(0x4ca000, 0xe78000, "rw-p", 0, ""),
            new(0xe78000, 0xe9a000, "rw-p", 0, "[heap]"),
        ]);

    /// <summary>Reads the layout of oracle subject <paramref name="subject"/> (which must be pristine:
    /// nothing mapped by commands yet).</summary>
    public static ProcessLayout FromOracle(NativeOracle oracle, int subject = 0)
    {
        ArgumentNullException.ThrowIfNull(oracle);
        var layout = oracle.Layout(subject);
        var maps = oracle.Maps(subject).Select(MapsLine.Parse).ToList();
        var stack = maps.FirstOrDefault(m => m.Name == "[stack]")
            ?? throw new NativeOracleException("the oracle's maps have no [stack]");
        var specials = ImmutableArray.CreateBuilder<SpecialMappingInfo>();
        foreach (var m in maps.Where(m => m.Start >= layout.MmapTop && m.End <= stack.Start && m.Name.StartsWith('[')))
        {
            var smaps = oracle.Smaps(subject, m.Start)
                ?? throw new NativeOracleException($"no smaps for {m.Name} at {m.Start:x}");
            specials.Add(new SpecialMappingInfo(m.Name, m.Start, m.End, m.Perms, [.. smaps.VmFlagList]));
        }
        if (specials.Count == 0)
        {
            throw new NativeOracleException("the oracle's maps show no special mapping at mmap_top");
        }
        return new ProcessLayout(layout.MmapTop, specials.Max(s => s.End), layout.TaskSize, stack.Start, stack.End,
            specials.ToImmutable(), ReadMemTotal() ?? Default.MemTotalBytes, ReadMmapMinAddr() ?? Default.MmapMinAddr,
            [.. maps.Where(m => m.End <= MapsFloor)]);
    }

    private static ulong? ReadMemTotal()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    var kb = line["MemTotal:".Length..].Trim().Split(' ')[0];
                    return ulong.Parse(kb, CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }

    private static ulong? ReadMmapMinAddr()
    {
        try
        {
            return ulong.Parse(File.ReadAllText("/proc/sys/vm/mmap_min_addr").Trim(), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    /// <summary>"top-0x4000" for addresses near MMAP_TOP, "0x…" otherwise. Both sides format with the
    /// same layout, so two texts are equal exactly when the addresses are.</summary>
    public string FormatAddress(ulong a)
    {
        const ulong near = 1UL << 40;
        if (a >= MmapTop && a - MmapTop < near)
        {
            return "top" + Arg.FormatOffset((long)(a - MmapTop));
        }
        if (a < MmapTop && MmapTop - a < near)
        {
            return "top" + Arg.FormatOffset(-(long)(MmapTop - a));
        }
        return "0x" + a.ToString("x", CultureInfo.InvariantCulture);
    }

    /// <summary>Whether a VMA belongs in a maps observation: in the mmap area, below the stack.</summary>
    public bool InMapsWindow(ulong start) => start >= MapsFloor && start < StackStart;
}

/// <summary>One /proc/pid/maps line.</summary>
public sealed record MapsLine(ulong Start, ulong End, string Perms, ulong Offset, string Name)
{
    /// <summary>Parses "start-end perms offset dev inode [name]".</summary>
    public static MapsLine Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 5)
        {
            throw new FormatException($"not a maps line: '{line}'");
        }
        var range = parts[0].Split('-');
        return new MapsLine(
            ulong.Parse(range[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture),
            ulong.Parse(range[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture),
            parts[1],
            ulong.Parse(parts[2], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture),
            parts.Length > 5 ? parts[5].Trim() : "");
    }
}

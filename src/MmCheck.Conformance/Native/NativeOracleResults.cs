namespace MmCheck.Conformance.Native;

/// <summary>Result of <c>layout</c>: where top-down mmap starts, and the top of the default mmap window.</summary>
/// <param name="MmapTop">Lowest start of the special mappings ([vvar], [vvar_vclock], [vdso]) at the top of the
/// mmap area; the first top-down allocation ends here.</param>
/// <param name="TaskSize">End of [stack]; with ASLR off this is STACK_TOP == DEFAULT_MAP_WINDOW.</param>
public sealed record MmapLayout(ulong MmapTop, ulong TaskSize);

/// <summary>Result of a load or store.</summary>
/// <param name="Value">The loaded value (0 for a store or a faulting access).</param>
/// <param name="Signal">0, or <see cref="LinuxAbi.SIGBUS"/> (7) / <see cref="LinuxAbi.SIGSEGV"/> (11).</param>
/// <param name="SignalCode">si_code of the signal (e.g. SEGV_MAPERR 1, SEGV_ACCERR 2, BUS_ADRERR 2).</param>
/// <param name="FaultAddress">si_addr of the signal.</param>
public sealed record AccessResult(ulong Value, int Signal, int SignalCode = 0, ulong FaultAddress = 0)
{
    public bool Faulted => Signal != 0;

    public static AccessResult Ok(ulong value) => new(value, 0);
}

/// <summary>One /proc/self/pagemap entry (bits 63, 56, 0-54, 62, 61).</summary>
public sealed record PagemapEntry(bool Present, bool Exclusive, ulong Pfn, bool Swapped, bool FileOrSharedAnon);

/// <summary>The smaps block of the VMA containing an address.</summary>
/// <param name="VmFlags">The "VmFlags:" value, comma-separated ("rd,wr,mr,mw,me,ac"); "-" if empty.</param>
public sealed record SmapsEntry(ulong Start, ulong End, long RssKb, long AnonymousKb, string VmFlags)
{
    public IReadOnlyList<string> VmFlagList => VmFlags == "-" ? [] : VmFlags.Split(',');

    public bool HasVmFlag(string flag) => VmFlagList.Contains(flag, StringComparer.Ordinal);
}

/// <summary>Whether this machine can run the oracle, and whether PFNs are visible.</summary>
/// <param name="CanRun">Linux, gcc present, oracle.c builds statically.</param>
/// <param name="CanReadPfns">/proc/self/pagemap shows PFNs (root/CAP_SYS_ADMIN) and /proc/kpagecount,
/// /proc/kpageflags are readable.</param>
/// <param name="Reason">Why not (or a short confirmation when everything is available).</param>
public sealed record NativeOracleAvailability(bool CanRun, bool CanReadPfns, string Reason)
{
    public bool IsAvailable => CanRun && CanReadPfns;
}

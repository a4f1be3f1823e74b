using System.Collections.Immutable;
using System.Runtime.InteropServices;
using MmCheck.Conformance.Native;
using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance;

/// <summary>
/// Runs cases on this machine's kernel through <see cref="NativeOracle"/>. Oracle subject 0 is
/// kept pristine as a template: each case's process 0 is a fresh fork of it (same layout, nothing
/// mapped in the mmap area), and the case's own forks become further subjects. Everything the
/// case created exits when it ends. If the oracle fails (a timeout, a dead subject), the case is
/// skipped with the reason and the oracle is restarted for the next case.
/// </summary>
public sealed class NativeRunner : IDisposable
{
    private readonly string? _workDir;
    private NativeOracle? _oracle;
    private ulong? _zeroPfn;

    public NativeRunner(string? workDir = null)
    {
        _workDir = workDir;
        _oracle = StartPinned();
        Layout = ProcessLayout.FromOracle(_oracle);
    }

    /// <summary>The CPU every oracle process runs on, or -1 if pinning failed.</summary>
    public int Cpu { get; private set; } = -1;

    /// <summary>
    /// Starts the oracle with the controller and the template subject (hence every subject forked
    /// from it) pinned to one CPU. The kernel keeps per-CPU state that user-visible results depend
    /// on: a folio still in another CPU's LRU-add batch holds a reference that lru_add_drain() on
    /// this CPU cannot drop, so do_wp_page() copies instead of reusing (wp_can_reuse_anon_folio());
    /// per-CPU page lists decide which frame is reused. On one CPU the real kernel is
    /// deterministic in these respects, as the model is.
    /// </summary>
    private NativeOracle StartPinned()
    {
        var oracle = NativeOracle.Start(_workDir);
        Cpu = Affinity.PinToOneCpu(oracle.ControllerPid, oracle.Pid(0));
        return oracle;
    }

    /// <summary>The layout of the pristine template subject; the model mirrors it.</summary>
    public ProcessLayout Layout { get; }

    public CaseRun Run(ConformanceCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        _oracle ??= StartPinned();
        CaseRun run;
        var side = new NativeSide(Layout, _oracle, this);
        try
        {
            run = CaseInterpreter.Run(c, side);
        }
        finally
        {
            side.Dispose();   // ends the case's subjects while the oracle is still up
        }
        if (run.Skipped || side.Broken)
        {
            // Whatever went wrong, the next case starts from a fresh oracle.
            _oracle.Dispose();
            _oracle = null;
        }
        return run;
    }

    internal ulong? ZeroPfn
    {
        get => _zeroPfn;
        set => _zeroPfn = value;
    }

    public void Dispose()
    {
        _oracle?.Dispose();
        _oracle = null;
    }
}

/// <summary>The native side of one case.</summary>
internal sealed class NativeSide : Side
{
    private readonly NativeOracle _o;
    private readonly NativeRunner _runner;
    private readonly Dictionary<int, int> _subject = [];
    private readonly HashSet<ulong> _frames = [];

    public NativeSide(ProcessLayout layout, NativeOracle oracle, NativeRunner runner)
        : base(layout)
    {
        _o = oracle;
        _runner = runner;
    }

    public override string Name => "native";

    /// <summary>Set when cleaning up failed: the oracle should not be reused.</summary>
    public bool Broken { get; private set; }

    private int S(int p) => _subject[p];

    private int FreeSubject()
    {
        for (int id = 1; id < NativeOracle.MaxSubjects; id++)
        {
            if (!_subject.ContainsValue(id))
            {
                return id;
            }
        }
        throw new SideUnavailableException($"more than {NativeOracle.MaxSubjects - 1} processes: the oracle has no free subject");
    }

    public override void Begin(ConformanceCase c)
    {
        int id = FreeSubject();
        long r = _o.Fork(0, id);
        if (r < 0)
        {
            throw new SideUnavailableException($"forking the template subject failed: errno {-r}");
        }
        _subject[0] = id;
    }

    public override void End()
    {
        try
        {
            foreach (var id in _subject.Values.ToList())
            {
                _o.Exit(id);
            }
            _subject.Clear();
        }
        catch (Exception e) when (e is NativeOracleException or ObjectDisposedException)
        {
            Broken = true;
            _subject.Clear();
        }
    }

    public override void Dispose()
    {
        if (_subject.Count > 0)
        {
            End();
        }
    }

    public override long Mmap(int p, ulong addr, ulong len, int prot, int flags, long fd, long off) =>
        _o.Mmap(S(p), addr, len, prot, flags, (int)fd, off);

    public override long Munmap(int p, ulong addr, ulong len) => _o.Munmap(S(p), addr, len);

    public override long Mprotect(int p, ulong addr, ulong len, int prot) => _o.Mprotect(S(p), addr, len, prot);

    public override long Mremap(int p, ulong oldAddr, ulong oldLen, ulong newLen, int flags, ulong newAddr) =>
        _o.Mremap(S(p), oldAddr, oldLen, newLen, flags, newAddr);

    public override long Madvise(int p, ulong addr, ulong len, int advice) => _o.Madvise(S(p), addr, len, advice);

    public override long MemfdCreate(int p, string name, int flags) => _o.MemfdCreate(S(p), name, flags);

    public override long Ftruncate(int p, long fd, long len) => _o.Ftruncate(S(p), (int)fd, len);

    public override long Close(int p, long fd) => _o.Close(S(p), (int)fd);

    public override long Fork(int p, int newProc)
    {
        int id = FreeSubject();
        long r = _o.Fork(S(p), id);
        if (r < 0)
        {
            return r;
        }
        _subject[newProc] = id;
        return 0;
    }

    public override void Exit(int p)
    {
        _o.Exit(S(p));
        _subject.Remove(p);
    }

    public override AccessOutcome Load(int p, ulong addr, int size)
    {
        var r = _o.Load(S(p), addr, size);
        return new AccessOutcome(r.Value, r.Signal);
    }

    public override AccessOutcome Store(int p, ulong addr, int size, ulong value)
    {
        var r = _o.Store(S(p), addr, size, value);
        return new AccessOutcome(r.Value, r.Signal);
    }

    public override PageState Pagemap(int p, ulong addr)
    {
        var e = _o.Pagemap(S(p), addr);
        if (e.Present && e.Pfn == 0)
        {
            throw new SideUnavailableException("/proc/pid/pagemap hides PFNs (not root?)");
        }
        if (e.Present && e.Pfn != _runner.ZeroPfn)
        {
            _frames.Add(e.Pfn);
        }
        return new PageState(e.Present, e.Exclusive, e.Swapped, e.FileOrSharedAnon, e.Pfn);
    }

    public override bool IsZeroPfn(ulong pfn)
    {
        if (_runner.ZeroPfn is { } z)
        {
            return pfn == z;
        }
        if (HasKpf(_o.KpageFlags(pfn), KPF_ZERO_PAGE))
        {
            _runner.ZeroPfn = pfn;
            _frames.Remove(pfn);
            return true;
        }
        return false;
    }

    public override long KpageCount(ulong pfn) => (long)_o.KpageCount(pfn);

    public override ulong KpageFlags(ulong pfn) => _o.KpageFlags(pfn);

    public override SmapsView? Smaps(int p, ulong addr) =>
        _o.Smaps(S(p), addr) is { } s ? new SmapsView(s.Start, s.End, s.RssKb, s.AnonymousKb, s.VmFlagList) : null;

    public override IReadOnlyList<MapsLine> Maps(int p) => _o.Maps(S(p)).Select(MapsLine.Parse).ToList();

    /// <summary>Bits a frame in use by a process or the page cache shows; a freed frame shows none of them.</summary>
    private const ulong InUse = (1UL << KPF_ANON) | (1UL << KPF_LRU) | (1UL << KPF_SWAPBACKED) | (1UL << KPF_MMAP) |
                                (1UL << KPF_UPTODATE) | (1UL << KPF_SLAB) | (1UL << KPF_PGTABLE) |
                                (1UL << KPF_RESERVED) | (1UL << KPF_COMPOUND_HEAD) | (1UL << KPF_COMPOUND_TAIL);

    /// <summary>
    /// Whether /proc/kpageflags shows a frame the kernel has freed or can only free: in the buddy
    /// allocator, without any in-use bit, or an anonymous page mapped nowhere, outside the swap cache
    /// and KSM's stable tree. No fault can map such a page again. A page faulted in shortly before
    /// munmap() is one: its last reference is the per-CPU batch of folios waiting to go on the LRU
    /// (mm/swap.c:folio_add_lru()), and mm/vma.c:unmap_region() does not drain that batch, so the page is
    /// freed, and its frame handed out again, inside whichever later call drains it.
    /// </summary>
    internal static bool LooksFreed(ulong flags) =>
        HasKpf(flags, KPF_BUDDY) || (flags & InUse) == 0 ||
        (HasKpf(flags, KPF_ANON) && !HasKpf(flags, KPF_MMAP) && !HasKpf(flags, KPF_SWAPCACHE) && !HasKpf(flags, KPF_KSM));

    /// <summary>
    /// The kernel does not say which frames an operation freed; this polls /proc/kpageflags of every
    /// frame the case has observed after each operation that can free memory, and reports those that
    /// <see cref="LooksFreed"/>.
    /// </summary>
    public override ImmutableArray<ulong> AfterOp(Op op)
    {
        if (op.Kind is OpKind.Load or OpKind.Fork or OpKind.Mprotect or OpKind.MemfdCreate || _frames.Count == 0)
        {
            return [];
        }
        var freed = ImmutableArray.CreateBuilder<ulong>();
        foreach (var pfn in _frames.Order())
        {
            if (LooksFreed(_o.KpageFlags(pfn)))
            {
                freed.Add(pfn);
            }
        }
        return freed.ToImmutable();
    }
}

/// <summary>sched_setaffinity(2) for the oracle's processes.</summary>
internal static class Affinity
{
    private const int MaskBytes = 128;

    [DllImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static extern int SchedGetaffinity(int pid, nint cpusetsize, byte[] mask);

    [DllImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern int SchedSetaffinity(int pid, nint cpusetsize, byte[] mask);

    /// <summary>Pins <paramref name="pids"/> to the lowest CPU this process may run on; returns it,
    /// or -1 if that is not possible (then the kernel's per-CPU effects stay possible).</summary>
    public static int PinToOneCpu(params int[] pids)
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }
        try
        {
            var mask = new byte[MaskBytes];
            if (SchedGetaffinity(0, MaskBytes, mask) != 0)
            {
                return -1;
            }
            int cpu = -1;
            for (int i = 0; i < MaskBytes * 8 && cpu < 0; i++)
            {
                if ((mask[i / 8] >> (i % 8) & 1) != 0)
                {
                    cpu = i;
                }
            }
            if (cpu < 0)
            {
                return -1;
            }
            var one = new byte[MaskBytes];
            one[cpu / 8] = (byte)(1 << (cpu % 8));
            foreach (int pid in pids)
            {
                if (SchedSetaffinity(pid, MaskBytes, one) != 0)
                {
                    return -1;
                }
            }
            return cpu;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }
    }
}

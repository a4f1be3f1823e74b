using System.Collections.Immutable;
using Linux;
using static Linux.Mman;

namespace MmCheck.Conformance;

/// <summary>
/// Runs cases on the model: each on a fresh <see cref="Kernel"/> whose first process mirrors the
/// real process's layout (<see cref="ProcessLayout"/>): the same mmap_base, [vvar],
/// [vvar_vclock] and [vdso] installed with _install_special_mapping() at the same addresses with
/// the same flags, a stack VMA where the real stack is (it bounds hints by its guard gap), file
/// descriptors 0-2 taken (so the first memfd is fd 3, as in the real process), and the machine's
/// mmap_min_addr and RAM size (the overcommit heuristic's limit).
/// </summary>
public sealed class ModelRunner
{
    private readonly ProcessLayout _layout;
    private readonly KernelConfig _config;

    public ModelRunner(ProcessLayout layout, KernelConfig? config = null)
    {
        ArgumentNullException.ThrowIfNull(layout);
        _layout = layout;
        _config = (config ?? new KernelConfig()) with
        {
            RamBytes = layout.MemTotalBytes & ~4095UL,
            MmapMinAddr = layout.MmapMinAddr,
            StackRlimit = 8UL << 20,
            MemSoftDirty = false,
            // The oracle pins every process it runs to one CPU.
            OneCpu = true,
        };
    }

    public ProcessLayout Layout => _layout;

    /// <summary>How long a case may run on the model. A model that does not finish (an endless loop,
    /// a populate of terabytes the kernel would have refused) is a defect, reported as the model's
    /// observation of the operation it was stuck in; its thread is abandoned.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Model runs abandoned because they did not finish (their threads still spin).</summary>
    public static int Abandoned => s_abandoned;

    private static int s_abandoned;

    public CaseRun Run(ConformanceCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var done = new List<Observation>();
        CaseRun? result = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var side = new ModelSide(_layout, _config);
                result = CaseInterpreter.Run(c, side, o =>
                {
                    lock (done)
                    {
                        done.Add(o);
                    }
                });
            }
            catch (Exception e)
            {
                error = e;
            }
        }, 16 << 20)
        {
            IsBackground = true,
            Name = "model " + c.Name,
        };
        thread.Start();
        if (!thread.Join(Timeout))
        {
            Interlocked.Increment(ref s_abandoned);
            lock (done)
            {
                var obs = ImmutableArray.CreateBuilder<Observation>(c.Ops.Length);
                obs.AddRange(done);
                int stuck = obs.Count;
                obs.Add(new Observation(stuck, $"model defect: did not finish within {Timeout.TotalSeconds:0} s"));
                for (int i = stuck + 1; i < c.Ops.Length; i++)
                {
                    obs.Add(new Observation(i, $"model stopped after a defect at #{stuck}"));
                }
                return new CaseRun("model", obs.ToImmutable());
            }
        }
        if (error is not null)
        {
            throw new ModelDefectException($"running {c.Name} on the model: {error.Message}", error);
        }
        return result!;
    }

    /// <summary>A fresh kernel and its first process, mirroring the layout (for tests and tools).</summary>
    public (Kernel Kernel, TaskStruct Process) Boot()
    {
        var side = new ModelSide(_layout, _config);
        side.Begin(new ConformanceCase("boot", []));
        return (side.Kernel!, side.Process(0));
    }
}

/// <summary>The model side: one kernel per case, one task per process.</summary>
internal sealed class ModelSide : Side
{
    private static readonly Dictionary<string, VmFlags> s_mnemonics = BuildMnemonics();
    private readonly KernelConfig _config;
    private readonly Dictionary<int, TaskStruct> _procs = [];
    private readonly HashSet<string> _reported = [];
    private readonly HashSet<ulong> _specialPfns = [];
    private ModelScheduler? _sched;
    private int _findingsSeen;

    public ModelSide(ProcessLayout layout, KernelConfig config)
        : base(layout) => _config = config;

    public Kernel? Kernel { get; private set; }

    public override string Name => "model";

    private Kernel K => Kernel ?? throw new InvalidOperationException("Begin() first");

    private ModelScheduler S => _sched!;

    public TaskStruct Process(int p) => _procs[p];

    public override void Begin(ConformanceCase c)
    {
        _sched = new ModelScheduler();
        Kernel = new Kernel(_config, _sched);
        var t = K.CreateProcess("P0");
        _procs[0] = t;
        Mirror(t);
        S.TakeFreed();
        _findingsSeen = S.Findings.Count;
        if (TakeFindings() is { } f)
        {
            throw new ModelDefectException("setting up the mirrored layout: " + f);
        }
    }

    /// <summary>Gives the model process the real process's layout.</summary>
    private void Mirror(TaskStruct t)
    {
        var k = K;
        var mm = t.Mm!;
        k.SetMmapBase(mm, Layout.MmapBase);
        foreach (var sp in Layout.Specials)
        {
            var flags = VmFlags.VM_NONE;
            foreach (var m in sp.VmFlags)
            {
                flags |= s_mnemonics.TryGetValue(m, out var f) ? f
                    : throw new ModelDefectException($"cannot mirror {sp.Name}: the model has no VmFlags mnemonic '{m}'");
            }
            // [vdso] is backed by pages (the vDSO image) that GUP and MADV_POPULATE_READ can fault in;
            // the model's stand-ins are zero-filled (loads of the vDSO are not compared). [vvar] and
            // [vvar_vclock] are VM_PFNMAP|VM_IO: nothing pins or populates them.
            List<Page>? pages = null;
            if (sp.Name == "[vdso]")
            {
                pages = [];
                for (ulong a = sp.Start; a < sp.End; a += 4096)
                {
                    var page = k.AllocPage() ?? throw new ModelDefectException("no memory for the vDSO pages");
                    pages.Add(page);
                    _specialPfns.Add(page.Pfn);
                }
            }
            var spec = new VmSpecialMapping { Name = sp.Name, Pages = pages };
            int err = S.Run(t, async () =>
            {
                await k.MmapWriteLockKillable(mm);
                var (_, e) = await k._InstallSpecialMapping(mm, sp.Start, sp.End - sp.Start, flags, spec);
                await k.MmapWriteUnlock(mm);
                return e;
            });
            if (err != 0)
            {
                throw new ModelDefectException($"_install_special_mapping({sp.Name}) failed: {Errno.Format(err)}");
            }
        }
        long stack = S.Run(t, () => k.SysMmap(Layout.StackStart, Layout.StackEnd - Layout.StackStart, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0));
        if ((ulong)stack != Layout.StackStart)
        {
            throw new ModelDefectException($"mirroring the stack VMA failed: {Errno.Format(stack)}");
        }
        // The oracle's binary, .bss and heap: placeholders with the same ranges and permissions (their
        // contents and file backing do not matter; they are never accessed nor shown in maps observations).
        foreach (var low in Layout.LowMappings)
        {
            int prot = (low.Perms[0] == 'r' ? PROT_READ : 0) | (low.Perms[1] == 'w' ? PROT_WRITE : 0) | (low.Perms[2] == 'x' ? PROT_EXEC : 0);
            long r = S.Run(t, () => k.SysMmap(low.Start, low.End - low.Start, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0));
            if ((ulong)r != low.Start)
            {
                throw new ModelDefectException($"mirroring {low.Name} at {low.Start:x} failed: {Errno.Format(r)}");
            }
        }
        // The real process has stdin, stdout and stderr: its first new descriptor is 3.
        foreach (var name in new[] { "stdin", "stdout", "stderr" })
        {
            S.Run(t, () => k.SysMemfdCreate(name, 0));
        }
    }

    private static Dictionary<string, VmFlags> BuildMnemonics()
    {
        var d = new Dictionary<string, VmFlags>(StringComparer.Ordinal);
        for (int bit = 0; bit < 64; bit++)
        {
            var f = (VmFlags)(1UL << bit);
            var name = MmFlags.Format(f);
            if (name.Length > 0 && !name.Contains(' ', StringComparison.Ordinal))
            {
                d[name] = f;
            }
        }
        return d;
    }

    public override void End()
    {
    }

    private TaskStruct T(int p) => _procs[p];

    private long Sys(int p, Func<ValueTask<long>> f) => S.Run(T(p), f);

    public override long Mmap(int p, ulong addr, ulong len, int prot, int flags, long fd, long off) =>
        Sys(p, () => K.SysMmap(addr, len, prot, flags, fd, (ulong)off));

    public override long Munmap(int p, ulong addr, ulong len) => Sys(p, () => K.SysMunmap(addr, len));

    public override long Mprotect(int p, ulong addr, ulong len, int prot) => Sys(p, () => K.SysMprotect(addr, len, prot));

    public override long Mremap(int p, ulong oldAddr, ulong oldLen, ulong newLen, int flags, ulong newAddr) =>
        Sys(p, () => K.SysMremap(oldAddr, oldLen, newLen, flags, newAddr));

    public override long Madvise(int p, ulong addr, ulong len, int advice) => Sys(p, () => K.SysMadvise(addr, len, advice));

    public override long MemfdCreate(int p, string name, int flags) => Sys(p, () => K.SysMemfdCreate(name, unchecked((uint)flags)));

    public override long Ftruncate(int p, long fd, long len) => Sys(p, () => K.SysFtruncate(fd, len));

    public override long Close(int p, long fd) => Sys(p, () => K.SysClose(fd));

    public override long Fork(int p, int newProc)
    {
        var (child, ret) = S.Run(T(p), () => K.SysFork());
        if (child is null)
        {
            return ret < 0 ? ret : -Errno.ENOMEM;
        }
        child.Comm = "P" + newProc.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _procs[newProc] = child;
        return 0;
    }

    public override void Exit(int p) => S.Run(T(p), async () =>
    {
        await K.SysExit();
        return 0;
    });

    public override AccessOutcome Load(int p, ulong addr, int size)
    {
        var r = S.Run(T(p), () => K.UserLoad(addr, size));
        return new AccessOutcome(r.Value, r.Signal);
    }

    public override AccessOutcome Store(int p, ulong addr, int size, ulong value)
    {
        var r = S.Run(T(p), () => K.UserStore(addr, size, value));
        return new AccessOutcome(r.Value, r.Signal);
    }

    public override PageState Pagemap(int p, ulong addr)
    {
        var e = K.Pagemap(T(p).Mm!, addr);
        return new PageState(e.Present, e.Exclusive, e.Swapped, e.File, e.Pfn);
    }

    public override bool IsZeroPfn(ulong pfn) => K.IsZeroPfn(pfn);

    public override long KpageCount(ulong pfn) => K.KpageCount(pfn);

    public override ulong KpageFlags(ulong pfn) => K.KpageFlags(pfn);

    public override SmapsView? Smaps(int p, ulong addr)
    {
        if (K.VmaAt(T(p).Mm!, addr) is not { } vma)
        {
            return null;
        }
        var flags = MmFlags.Format(vma.VmFlags).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (vma.VmEnd - vma.VmStart > MaxWalkedBytes)
        {
            return new SmapsView(vma.VmStart, vma.VmEnd, -1, -1, flags);
        }
        var s = K.Smaps(vma);
        return new SmapsView(s.Start, s.End, (long)(s.Rss / 1024), (long)(s.Anonymous / 1024), flags);
    }

    public override IReadOnlyList<MapsLine> Maps(int p) =>
        K.ProcMaps(T(p).Mm!).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(MapsLine.Parse).ToList();

    public override ImmutableArray<ulong> AfterOp(Op op) => [.. S.TakeFreed()];

    /// <summary>Above this much mapped memory (all processes) the invariants are not checked.</summary>
    internal const ulong MaxCheckedBytes = 16UL << 30;

    /// <summary>VMAs larger than this are not walked for smaps (the model's smaps visits every page).</summary>
    internal const ulong MaxWalkedBytes = 16UL << 30;

    public override string? TakeFindings()
    {
        var found = new List<string>();
        for (; _findingsSeen < S.Findings.Count; _findingsSeen++)
        {
            var f = S.Findings[_findingsSeen];
            found.Add($"{f.Invariant}: {f.Message} ({f.Function})");
        }
        // The model's invariant checks walk every page of every VMA; over a huge mapping (the generator
        // makes 64 TiB ones to reach the accounting paths) that would take hours. Page tables are only
        // checked while the address spaces are of a walkable size.
        ulong mapped = 0;
        foreach (var mm in K.Mms)
        {
            foreach (var v in mm.MmMt.Snapshot())
            {
                mapped += v.VmEnd - v.VmStart;
            }
        }
        foreach (var (inv, msg) in mapped > MaxCheckedBytes ? [] : K.CheckInvariants())
        {
            var s = $"{inv}: {msg}";
            // A vDSO page has no ->mapping, so no rmap walk can find where it is mapped: in the kernel
            // as in the model. The model's rmap-complete check does not make that exception.
            if (inv == Invariants.RmapComplete && _specialPfns.Any(pfn => msg.Contains($"→ pfn {pfn:x} (no mapping", StringComparison.Ordinal)))
            {
                continue;
            }
            if (_reported.Add(s))
            {
                found.Add(s);
            }
        }
        return found.Count == 0 ? null : string.Join("; ", found);
    }
}

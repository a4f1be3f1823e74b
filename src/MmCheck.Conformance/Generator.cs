using System.Globalization;
using static MmCheck.Conformance.Native.LinuxAbi;

namespace MmCheck.Conformance;

/// <summary>Which operations the random generator favours.</summary>
public enum GeneratorMix
{
    /// <summary>Every operation, argument and error path (the default).</summary>
    Broad,

    /// <summary>
    /// Page sharing and reuse: small valid mappings, forks, stores, and MADV_FREE, DONTNEED,
    /// POPULATE_(READ|WRITE), WIPEONFORK, DONTFORK and DOFORK far more often; few invalid arguments.
    /// Copy-on-write, lazily freed pages and the per-CPU LRU batches decide which frame a write
    /// gets, and those decisions need several of these in a row, which the broad mix rarely makes.
    /// </summary>
    Sharing,
}

/// <summary>What the random generator may use.</summary>
public sealed record GeneratorOptions
{
    /// <summary>Which operations to favour; a mix other than broad names its cases random-&lt;mix&gt;-s…</summary>
    public GeneratorMix Mix { get; init; } = GeneratorMix.Broad;

    /// <summary>Operations before the final observation sweep (at least 8).</summary>
    public int MaxOps { get; init; } = 40;

    /// <summary>Processes per case, the initial one included (1 to 7).</summary>
    public int MaxProcesses { get; init; } = 4;

    public bool UseMremap { get; init; } = true;

    public bool UseMadvise { get; init; } = true;

    /// <summary>Append maps, smaps, pagemap and kpagecount of every live process's regions at the end.</summary>
    public bool FinalSweep { get; init; } = true;
}

/// <summary>
/// Random conformance cases from a seed (System.Random seeded per case: the same seed and index
/// always give the same case). A case mixes mmap (anonymous private and shared, memfd shared and
/// private, NULL, hints, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_NORESERVE), munmap,
/// mprotect, mremap (MAYMOVE, FIXED, DONTUNMAP), madvise (DONTNEED, FREE, DONTFORK, DOFORK,
/// WIPEONFORK, KEEPONFORK, POPULATE_READ, POPULATE_WRITE, NORMAL, RANDOM, SEQUENTIAL),
/// memfd_create, ftruncate, close, fork (up to <see cref="GeneratorOptions.MaxProcesses"/>),
/// exit, and loads and stores of 1-8 bytes, aligned and not, inside, across the edges of and
/// outside mappings; page-granular arguments mostly, and deliberately unaligned, empty, huge or
/// otherwise invalid ones so that the errno paths run too. Observations follow interesting
/// operations, and a sweep ends the case.
/// </summary>
/// <remarks>
/// Left out because the result would depend on something other than mm semantics:
/// MAP_GROWSDOWN/MAP_STACK (stack expansion depends on the real stack and its rlimit),
/// MAP_HUGETLB/MFD_HUGETLB (no huge pages reserved), MAP_LOCKED, mlock (RLIMIT_MEMLOCK),
/// MADV_HUGEPAGE/MADV_COLLAPSE (THP is "madvise" here: khugepaged and allocation success decide),
/// MADV_COLD/PAGEOUT/WILLNEED (reclaim and readahead, timing), MAP_32BIT and MAP_SYNC, loads and
/// stores of [vvar]/[vdso] (kernel data that changes with time; the interpreter skips those),
/// the oracle's own binary, heap and stack, file descriptors other than the case's memfds (0-2 are
/// /dev/null, 100+ are the oracle's channels), and sizes near physical memory (the overcommit
/// heuristic depends on free memory).
/// </remarks>
public sealed class Generator
{
    private const long P = 4096;

    /// <summary>The advice of <see cref="GeneratorMix.Sharing"/>, repeated by weight.</summary>
    internal static readonly int[] SharingAdvices =
    [
        MADV_DONTNEED, MADV_FREE, MADV_FREE, 22 /* POPULATE_READ */, 23 /* POPULATE_WRITE */,
        23 /* POPULATE_WRITE */, 18 /* WIPEONFORK */, MADV_DONTFORK, MADV_DOFORK,
    ];

    private readonly int _seed;
    private readonly GeneratorOptions _options;

    public Generator(int seed, GeneratorOptions? options = null)
    {
        _seed = seed;
        _options = options ?? new GeneratorOptions();
        if (_options.MaxOps < 8 || _options.MaxProcesses is < 1 or > 7)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "MaxOps >= 8, MaxProcesses 1..7");
        }
    }

    /// <summary>Cases 0 .. <paramref name="count"/>-1 of this seed.</summary>
    public IEnumerable<ConformanceCase> GenerateCases(int count)
    {
        for (int i = 0; i < count; i++)
        {
            yield return Generate(i);
        }
    }

    /// <summary>Case <paramref name="index"/> of this seed.</summary>
    public ConformanceCase Generate(int index)
    {
        var rng = new Random(unchecked((_seed * 1_000_003) ^ (index * 7919) ^ 0x5eed));
        string mix = _options.Mix == GeneratorMix.Broad ? "" : _options.Mix.ToString().ToLowerInvariant() + "-";
        var g = new Gen(rng, _options, $"random-{mix}s{_seed.ToString(CultureInfo.InvariantCulture)}-{index.ToString(CultureInfo.InvariantCulture)}");
        return g.Build();
    }

    private sealed record Region(Arg Start, long Len);

    private sealed class ProcShadow
    {
        public List<Region> Regions = [];
        public List<int> Fds = [];

        public ProcShadow Clone() => new() { Regions = [.. Regions], Fds = [.. Fds] };
    }

    private sealed class Gen(Random rng, GeneratorOptions options, string name)
    {
        private readonly CaseBuilder _b = new(name);
        private readonly SortedDictionary<int, ProcShadow> _live = new() { [0] = new ProcShadow() };
        private int _created = 1;
        private int _memfds;

        private static readonly int[] Advices =
        [
            MADV_DONTNEED, MADV_FREE, MADV_DONTFORK, MADV_DOFORK, 18 /* WIPEONFORK */, 19 /* KEEPONFORK */,
            22 /* POPULATE_READ */, 23 /* POPULATE_WRITE */, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL,
        ];

        private bool Sharing => options.Mix == GeneratorMix.Sharing;

        private bool Chance(double p) => rng.NextDouble() < p;

        private T Pick<T>(IReadOnlyList<T> xs) => xs[rng.Next(xs.Count)];

        private int PickProc()
        {
            var ids = _live.Keys.ToList();
            return Pick(ids);
        }

        public ConformanceCase Build()
        {
            int target = rng.Next(8, options.MaxOps + 1);
            // Start with something mapped: most interesting behaviour needs memory.
            GenMmap(0, forceValid: true);
            while (_b.Count < target && _live.Count > 0)
            {
                Step();
            }
            if (options.FinalSweep)
            {
                Sweep();
            }
            return _b.Build();
        }

        private void Step()
        {
            int p = PickProc();
            int w = Sharing ? SharingWeight(rng.Next(100)) : rng.Next(100);
            int before = _b.Count;
            OpKind? did = null;
            if (w < 16)
            {
                GenMmap(p, forceValid: false);
                did = OpKind.Mmap;
            }
            else if (w < 22)
            {
                GenRangeOp(p, OpKind.Munmap);
                did = OpKind.Munmap;
            }
            else if (w < 28)
            {
                GenRangeOp(p, OpKind.Mprotect);
            }
            else if (w < 33)
            {
                if (options.UseMremap)
                {
                    GenMremap(p);
                    did = OpKind.Mremap;
                }
            }
            else if (w < 40)
            {
                if (options.UseMadvise)
                {
                    GenRangeOp(p, OpKind.Madvise);
                    did = OpKind.Madvise;
                }
            }
            else if (w < 43)
            {
                GenMemfd(p);
            }
            else if (w < 46)
            {
                GenFtruncate(p);
                did = OpKind.Ftruncate;
            }
            else if (w < 48)
            {
                GenClose(p);
            }
            else if (w < 52)
            {
                if (_created < options.MaxProcesses)
                {
                    int child = _b.Fork(p);
                    _created++;
                    _live[child] = _live[p].Clone();
                    did = OpKind.Fork;
                }
            }
            else if (w < 54)
            {
                if (_live.Count > 1 && (p != 0 || Chance(0.3)))
                {
                    _b.Exit(p);
                    _live.Remove(p);
                    return;
                }
            }
            else if (w < 70)
            {
                GenAccess(p, OpKind.Load);
            }
            else if (w < 88)
            {
                GenAccess(p, OpKind.Store);
                did = OpKind.Store;
            }
            else
            {
                GenObservation(p);
            }
            if (did is not null && _b.Count > before && Chance(0.4))
            {
                GenObservation(PickProc());
            }
        }

        /// <summary>Maps a roll to the point of the broad mix's scale that picks the same
        /// operation, with the sharing mix's weights: fewer mmaps, munmaps and observations; many
        /// more forks, madvises and stores.</summary>
        private static int SharingWeight(int roll) => roll switch
        {
            < 8 => 0,      // mmap
            < 12 => 16,    // munmap
            < 17 => 22,    // mprotect
            < 21 => 28,    // mremap
            < 36 => 33,    // madvise
            < 38 => 40,    // memfd_create
            < 40 => 43,    // ftruncate
            < 50 => 48,    // fork
            < 52 => 52,    // exit
            < 62 => 54,    // load
            < 84 => 70,    // store
            _ => 88,       // an observation
        };

        // ---- arguments ----

        private Region? PickRegion(int p)
        {
            var rs = _live[p].Regions;
            if (rs.Count == 0)
            {
                return null;
            }
            // Recent regions more often.
            int i = rs.Count - 1 - (int)Math.Min(rs.Count - 1, Math.Floor(-Math.Log(1 - rng.NextDouble()) * 1.5));
            return rs[i];
        }

        private long PickPages() => Sharing ? rng.Next(1, 5) : rng.Next(100) switch
        {
            < 45 => rng.Next(1, 3),
            < 80 => rng.Next(3, 9),
            < 92 => Pick(new long[] { 16, 17, 32 }),
            _ => 512,
        };

        /// <summary>A length: mostly whole pages; sometimes 0 or unaligned; with <paramref name="allowHuge"/>
        /// sometimes 64 TiB (only where that cannot populate memory or reach the real process's stack:
        /// mmap without MAP_POPULATE, munmap, whose TASK_SIZE check refuses it).</summary>
        private long PickLen(bool allowHuge)
        {
            switch (rng.Next(100))
            {
                case < 4:
                    return 0;
                case < 6 when allowHuge:
                    return 1L << 46;
                case < 14:
                    return rng.Next(1, 3 * (int)P);
            }
            return PickPages() * P;
        }

        private Arg Weird() => Pick(new[]
        {
            Arg.Abs(0), Arg.Abs(0x1000), Arg.Abs(0x1001), Arg.Abs(0x7ffffffff000L), Arg.Abs(0x800000000000L),
            Arg.Abs(unchecked((long)0xffff880000000000UL)), Arg.Top(-0x1234),
        });

        /// <summary>An address in, at the edge of, or just outside a known region of <paramref name="p"/>.</summary>
        private Arg PickAddr(int p, bool aligned)
        {
            var r = PickRegion(p);
            int w = rng.Next(100);
            if (r is null || w < 5)
            {
                return Arg.Top(-P * rng.Next(1, 80));
            }
            if (w < 10)
            {
                return Arg.Top(-P * rng.Next(1, 80));
            }
            long pages = Math.Max(1, r.Len / P);
            long page = rng.Next(100) switch
            {
                < 80 => rng.NextInt64(0, pages),
                < 90 => pages,
                _ => -1,
            };
            long off = page * P;
            if (!aligned && Chance(0.15))
            {
                off += rng.Next(1, (int)P);
            }
            return r.Start.WithOffset(r.Start.Offset + off);
        }

        private int PickProt() => rng.Next(100) switch
        {
            < 55 => PROT_READ | PROT_WRITE,
            < 75 => PROT_READ,
            < 85 => PROT_NONE,
            < 90 => PROT_WRITE,
            < 95 => PROT_READ | PROT_WRITE | PROT_EXEC,
            _ => PROT_READ | PROT_EXEC,
        };

        private Arg PickFd(int p, bool allowBad)
        {
            var fds = _live[p].Fds;
            if (fds.Count == 0 || (allowBad && Chance(0.08)))
            {
                return Arg.Abs(Pick(new long[] { -1, 1000, 77 }));
            }
            return Arg.Result(Pick(fds));
        }

        // ---- operations ----

        private void GenMmap(int p, bool forceValid)
        {
            int kind = rng.Next(100);
            bool memfd = kind >= 55 && kind < 92;
            bool shared = kind < 55 ? Chance(0.25) : kind < 80;
            Arg fd = Arg.Abs(-1);
            long off = 0;
            if (memfd)
            {
                if (_live[p].Fds.Count == 0 || Chance(0.15))
                {
                    GenMemfd(p);
                }
                fd = PickFd(p, allowBad: !forceValid);
                if (Chance(0.2))
                {
                    off = rng.Next(1, 5) * P;
                }
                if (!forceValid && Chance(0.03))
                {
                    off = 100;
                }
            }
            int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | (memfd ? 0 : MAP_ANONYMOUS);
            Arg addr = Arg.Abs(0);
            bool weird = false;
            int mode = forceValid || (Sharing && Chance(0.8)) ? 0 : rng.Next(100);
            if (mode >= 55 && mode < 65)
            {
                addr = PickAddr(p, aligned: Chance(0.8));
            }
            else if (mode >= 65 && mode < 85)
            {
                flags |= MAP_FIXED;
                addr = Chance(0.5) ? PickAddr(p, aligned: Chance(0.95)) : Arg.Top(-P * rng.Next(1, 200));
            }
            else if (mode >= 85 && mode < 95)
            {
                flags |= MAP_FIXED_NOREPLACE;
                addr = Chance(0.5) ? PickAddr(p, aligned: true) : Arg.Top(-P * rng.Next(1, 200));
            }
            else if (mode >= 95)
            {
                flags |= Chance(0.5) ? MAP_FIXED : 0;
                addr = Weird();
                weird = true;
            }
            if (Chance(0.15))
            {
                flags |= MAP_POPULATE;
            }
            if (Chance(0.05))
            {
                flags |= MAP_NORESERVE;
            }
            if (!forceValid && Chance(0.03))
            {
                flags &= ~(MAP_SHARED | MAP_PRIVATE);
            }
            long len = forceValid ? PickPages() * P : PickLen(allowHuge: (flags & MAP_POPULATE) == 0);
            if (len == 512 * P && Chance(0.5) && (flags & MAP_FIXED) != 0)
            {
                len = 8 * P;
            }
            if (len > 512 * P)
            {
                // Never anything that could populate or reserve a huge range on the real machine.
                flags &= ~(MAP_POPULATE | MAP_NORESERVE);
            }
            int prot = forceValid ? PROT_READ | PROT_WRITE : PickProt();
            int op = _b.Mmap(p, addr, (ulong)len, prot, flags, fd, off);
            // Later operations pick addresses and ranges from regions; keep only sizes that are safe to
            // populate, and only regions placed in the mmap area (not at a deliberately odd address,
            // which could be low, next to the oracle's own binary).
            if (len <= 512 * P && !weird)
            {
                _live[p].Regions.Add(new Region(Arg.Result(op), Math.Max(len, P)));
            }
        }

        /// <summary>A range for munmap, mprotect or madvise: within or around a region, or an odd one.
        /// Lengths stay at most 2 MiB from regions near MMAP_TOP (which cannot reach the real stack,
        /// 128 MiB above) and from odd addresses (which cannot reach the oracle's binary at 4 MiB).</summary>
        private (Arg Addr, long Len) PickRange(int p, bool allowHuge)
        {
            var r = PickRegion(p);
            if (r is null || Chance(0.05))
            {
                return (Chance(0.5) ? Weird() : Arg.Top(P * rng.Next(0, 8)), PickLen(allowHuge: false));
            }
            if (allowHuge && Chance(0.02))
            {
                return (r.Start, 1L << 46);
            }
            long pages = Math.Max(1, r.Len / P);
            long first = Chance(0.6) ? 0 : rng.NextInt64(0, pages);
            long count = Chance(0.5) ? pages - first : rng.NextInt64(1, pages - first + 2);
            long off = first * P;
            long len = count * P;
            if (Chance(0.06))
            {
                off += rng.Next(1, (int)P);
            }
            if (Chance(0.06))
            {
                len = Chance(0.5) ? 0 : len - rng.Next(1, (int)P);
            }
            return (r.Start.WithOffset(r.Start.Offset + off), len);
        }

        private void GenRangeOp(int p, OpKind kind)
        {
            var (addr, len) = Chance(0.03) ? (Arg.Top(P * rng.Next(0, 8)), P * rng.Next(1, 4)) : PickRange(p, allowHuge: kind == OpKind.Munmap);
            switch (kind)
            {
                case OpKind.Munmap:
                    _b.Munmap(p, addr, (ulong)len);
                    break;
                case OpKind.Mprotect:
                    _b.Mprotect(p, addr, (ulong)len, Chance(0.03) ? 0x40 : PickProt());
                    break;
                default:
                    _b.Madvise(p, addr, (ulong)len, Sharing ? Pick(SharingAdvices) : Chance(0.03) ? 999 : Pick(Advices));
                    break;
            }
        }

        private void GenMremap(int p)
        {
            var r = PickRegion(p);
            if (r is null)
            {
                GenRangeOp(p, OpKind.Munmap);
                return;
            }
            long pages = Math.Max(1, r.Len / P);
            long first = Chance(0.7) ? 0 : rng.NextInt64(0, pages);
            long oldPages = Chance(0.7) ? pages - first : rng.NextInt64(1, pages - first + 1);
            long newPages = rng.Next(100) switch
            {
                < 35 => oldPages + rng.Next(1, 5),
                < 65 => Math.Max(1, oldPages - rng.Next(0, (int)Math.Min(oldPages, 4))),
                _ => oldPages,
            };
            Arg old = r.Start.WithOffset(r.Start.Offset + first * P);
            int flags;
            Arg newAddr = Arg.Abs(0);
            switch (rng.Next(100))
            {
                case < 30:
                    flags = 0;
                    break;
                case < 70:
                    flags = MREMAP_MAYMOVE;
                    break;
                case < 85:
                    flags = MREMAP_MAYMOVE | MREMAP_FIXED;
                    newAddr = Chance(0.6) ? Arg.Top(-P * rng.Next(100, 400)) : PickAddr(p, aligned: true);
                    break;
                case < 95:
                    flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
                    newPages = oldPages;
                    break;
                default:
                    flags = Pick(new[] { MREMAP_FIXED, MREMAP_DONTUNMAP, 8 });
                    newAddr = Arg.Top(-P * rng.Next(100, 400));
                    break;
            }
            if (Chance(0.04))
            {
                old = old.WithOffset(old.Offset + 123);
            }
            int op = _b.Mremap(p, old, (ulong)(oldPages * P), (ulong)(newPages * P), flags, newAddr);
            _live[p].Regions.Add(new Region(Arg.Result(op), newPages * P));
        }

        private void GenMemfd(int p)
        {
            int flags = rng.Next(100) switch
            {
                < 60 => 0,
                < 80 => MFD_CLOEXEC,
                < 97 => MFD_ALLOW_SEALING,
                _ => 0x1000,
            };
            int op = _b.MemfdCreate(p, "m" + (_memfds++).ToString(CultureInfo.InvariantCulture), flags);
            _live[p].Fds.Add(op);
            if (Chance(0.75))
            {
                _b.Ftruncate(p, Arg.Result(op), rng.Next(1, 9) * P);
            }
        }

        private void GenFtruncate(int p)
        {
            long len = rng.Next(100) switch
            {
                < 70 => rng.Next(0, 9) * P,
                < 90 => rng.Next(1, 8 * (int)P),
                < 95 => 16 * P,
                _ => -1,
            };
            _b.Ftruncate(p, PickFd(p, allowBad: true), len);
        }

        private void GenClose(int p)
        {
            var fds = _live[p].Fds;
            if (fds.Count > 0 && Chance(0.8))
            {
                int op = Pick(fds);
                fds.Remove(op);
                _b.Close(p, Arg.Result(op));
            }
            else
            {
                _b.Close(p, Arg.Abs(Pick(new long[] { -1, 1000 })));
            }
        }

        private void GenAccess(int p, OpKind kind)
        {
            int size = Pick(new[] { 1, 2, 4, 8, 8, 8 });
            Arg addr;
            var r = PickRegion(p);
            if (r is null || Chance(0.04))
            {
                addr = Chance(0.5) ? Weird() : Arg.Top(-P * rng.Next(1, 80));
            }
            else
            {
                long pages = Math.Max(1, r.Len / P);
                long off = rng.NextInt64(0, pages) * P;
                off += rng.Next(100) switch
                {
                    < 60 => size * rng.Next(0, (int)P / size),
                    < 75 => rng.Next(0, (int)P - size + 1),
                    < 85 => P - (size / 2) - (size == 1 ? 1 : 0),
                    < 92 => -(size / 2) - 1 - (off == 0 ? 0 : off),
                    _ => pages * P - off + rng.Next(0, 16),
                };
                addr = r.Start.WithOffset(r.Start.Offset + off);
            }
            if (kind == OpKind.Load)
            {
                _b.Load(p, addr, size);
            }
            else
            {
                ulong value = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
                if (size < 8)
                {
                    value &= (1UL << (8 * size)) - 1;
                }
                _b.Store(p, addr, value, size);
            }
        }

        private void GenObservation(int p)
        {
            var r = PickRegion(p);
            int w = rng.Next(100);
            if (r is null || w < 6)
            {
                _b.Maps(p);
                return;
            }
            long pages = Math.Max(1, r.Len / P);
            Arg addr = r.Start.WithOffset(r.Start.Offset + rng.NextInt64(0, Math.Min(pages, 16)) * P);
            if (w < 18)
            {
                _b.Smaps(p, addr);
                return;
            }
            // The same page in every live process: sharing across fork is where frames matter.
            foreach (var q in _live.Keys.Where(q => q == p || _live.Count <= 3))
            {
                if (w < 70)
                {
                    _b.Pagemap(q, addr);
                }
                else if (w < 88)
                {
                    _b.KpageCount(q, addr);
                }
                else
                {
                    _b.KpageFlags(q, addr);
                }
            }
        }

        private void Sweep()
        {
            foreach (var (p, shadow) in _live)
            {
                _b.Maps(p);
                var regions = shadow.Regions.TakeLast(4).ToList();
                foreach (var r in regions)
                {
                    _b.Smaps(p, r.Start);
                    long pages = Math.Min(3, Math.Max(1, r.Len / P));
                    for (long i = 0; i < pages; i++)
                    {
                        _b.Pagemap(p, r.Start.WithOffset(r.Start.Offset + i * P));
                    }
                    _b.KpageCount(p, r.Start);
                }
            }
        }
    }
}

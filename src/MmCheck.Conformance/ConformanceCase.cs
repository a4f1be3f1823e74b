using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace MmCheck.Conformance;

/// <summary>The operations a conformance case is made of: the kernel's syscalls, user accesses, and
/// observations of /proc (pagemap, kpagecount, kpageflags, smaps, maps).</summary>
public enum OpKind
{
    /// <summary>mmap(addr, len, prot, flags, fd, off): Args = addr, len, prot, flags, fd, off.</summary>
    Mmap,

    /// <summary>munmap(addr, len).</summary>
    Munmap,

    /// <summary>mprotect(addr, len, prot).</summary>
    Mprotect,

    /// <summary>mremap(old, old_len, new_len, flags, new_addr).</summary>
    Mremap,

    /// <summary>madvise(addr, len, advice).</summary>
    Madvise,

    /// <summary>memfd_create(name, flags): Args = flags; <see cref="Op.Name"/> is the name.</summary>
    MemfdCreate,

    /// <summary>ftruncate(fd, len).</summary>
    Ftruncate,

    /// <summary>close(fd).</summary>
    Close,

    /// <summary>fork(): the child becomes process <see cref="Op.NewProc"/>.</summary>
    Fork,

    /// <summary>exit(): the process ends; later operations of it are skipped.</summary>
    Exit,

    /// <summary>A user-mode load: Args = addr, size (1, 2, 4, 8).</summary>
    Load,

    /// <summary>A user-mode store: Args = addr, value, size (1, 2, 4, 8).</summary>
    Store,

    /// <summary>/proc/pid/pagemap of the page at addr: present, exclusive, file, swapped, and the frame.</summary>
    Pagemap,

    /// <summary>/proc/kpagecount of the frame mapped at addr.</summary>
    KpageCount,

    /// <summary>/proc/kpageflags of the frame mapped at addr (the stable bits: ANON, ZERO_PAGE, MMAP).</summary>
    KpageFlags,

    /// <summary>/proc/pid/smaps of the VMA containing addr: its range, Rss, Anonymous and VmFlags.</summary>
    Smaps,

    /// <summary>/proc/pid/maps: the VMAs of the mmap area, addresses relative to MMAP_TOP.</summary>
    Maps,
}

/// <summary>What an <see cref="Arg"/>'s value is relative to.</summary>
public enum ArgBase
{
    /// <summary>A constant (flags, lengths, and deliberately invalid, unaligned or out-of-range values).</summary>
    Absolute,

    /// <summary>The result of an earlier operation (an address from mmap/mremap, an fd from memfd_create,
    /// a loaded value) plus <see cref="Arg.Offset"/>.</summary>
    Result,

    /// <summary>MMAP_TOP, the lowest start of the special mappings at the top of the mmap area (where
    /// top-down allocation starts), plus <see cref="Arg.Offset"/>.</summary>
    Top,
}

/// <summary>
/// One numeric argument, symbolic so that the same case means the same thing on both sides: a
/// constant, the result of operation <see cref="Op"/> plus an offset, or MMAP_TOP plus an offset.
/// </summary>
public readonly record struct Arg(ArgBase Base, int Op, long Offset)
{
    public static Arg Abs(long value) => new(ArgBase.Absolute, -1, value);

    public static Arg Abs(ulong value) => new(ArgBase.Absolute, -1, unchecked((long)value));

    public static Arg Result(int op, long offset = 0) => new(ArgBase.Result, op, offset);

    public static Arg Top(long offset) => new(ArgBase.Top, -1, offset);

    public bool IsAbsolute => Base == ArgBase.Absolute;

    /// <summary>The constant of an absolute argument.</summary>
    public long Value => Base == ArgBase.Absolute ? Offset : throw new InvalidOperationException($"{this} is not a constant");

    public Arg WithOffset(long offset) => this with { Offset = offset };

    /// <summary>"0x22", "-1", "#3+0x1000", "top-0x4000".</summary>
    public override string ToString() => Base switch
    {
        ArgBase.Absolute => FormatConstant(Offset),
        ArgBase.Result => "#" + Op.ToString(CultureInfo.InvariantCulture) + FormatOffset(Offset),
        _ => "top" + FormatOffset(Offset),
    };

    internal static string FormatConstant(long v) =>
        v is >= 0 and < 10 ? v.ToString(CultureInfo.InvariantCulture)
        : v < 0 && v > -4096 ? v.ToString(CultureInfo.InvariantCulture)
        : "0x" + ((ulong)v).ToString("x", CultureInfo.InvariantCulture);

    internal static string FormatOffset(long v) =>
        v == 0 ? "" : v > 0 ? "+0x" + v.ToString("x", CultureInfo.InvariantCulture) : "-0x" + ((ulong)-v).ToString("x", CultureInfo.InvariantCulture);
}

/// <summary>
/// One operation of a case, run by process <see cref="Proc"/> (0 is the initial process; a
/// <see cref="OpKind.Fork"/> creates process <see cref="NewProc"/>). The argument list depends on
/// the kind (see <see cref="OpKind"/>).
/// </summary>
public sealed record Op(OpKind Kind, int Proc, ImmutableArray<Arg> Args, string? Name = null, int NewProc = -1)
{
    /// <summary>Number of arguments each kind takes.</summary>
    public static int Arity(OpKind kind) => kind switch
    {
        OpKind.Mmap => 6,
        OpKind.Munmap => 2,
        OpKind.Mprotect => 3,
        OpKind.Mremap => 5,
        OpKind.Madvise => 3,
        OpKind.MemfdCreate => 1,
        OpKind.Ftruncate => 2,
        OpKind.Close => 1,
        OpKind.Fork or OpKind.Exit or OpKind.Maps => 0,
        OpKind.Load => 2,
        OpKind.Store => 3,
        _ => 1,
    };

    /// <summary>The kernel name of the operation ("mmap", "kpagecount", …).</summary>
    public static string VerbName(OpKind kind) => kind switch
    {
        OpKind.MemfdCreate => "memfd_create",
        OpKind.KpageCount => "kpagecount",
        OpKind.KpageFlags => "kpageflags",
        _ => kind.ToString().ToLowerInvariant(),
    };

    /// <summary>Observations of /proc, which change nothing.</summary>
    public bool IsObservation => Kind is OpKind.Pagemap or OpKind.KpageCount or OpKind.KpageFlags or OpKind.Smaps or OpKind.Maps;

    public Arg this[int i] => Args[i];

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append('P').Append(Proc.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(VerbName(Kind)).Append('(');
        if (Kind == OpKind.MemfdCreate)
        {
            sb.Append('"').Append(Name).Append("\", ");
        }
        sb.Append(string.Join(", ", Args.Select(a => a.ToString())));
        sb.Append(')');
        if (Kind == OpKind.Fork)
        {
            sb.Append(" -> P").Append(NewProc.ToString(CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}

/// <summary>
/// A deterministic list of operations run in order on the model and on the real kernel, each
/// producing one observation. Build it with <see cref="CaseBuilder"/>, generate it with
/// <see cref="Generator"/>, or lower a scenario with <see cref="LitmusLowering"/>.
/// </summary>
public sealed record ConformanceCase(string Name, ImmutableArray<Op> Ops)
{
    /// <summary>Processes the case uses: 0 and every fork's child.</summary>
    public IEnumerable<int> Processes => Ops.Where(o => o.Kind == OpKind.Fork).Select(o => o.NewProc).Prepend(0);

    /// <summary>One line per operation: "#3 P0 mmap(0, 0x4000, 0x3, 0x22, -1, 0)". Same case, same text.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append("case ").Append(Name).Append('\n');
        for (int i = 0; i < Ops.Length; i++)
        {
            sb.Append('#').Append(i.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(Ops[i]).Append('\n');
        }
        return sb.ToString();
    }

    public override string ToString() => ToText();

    /// <summary>Structural equality (record equality compares the op array by reference).</summary>
    public bool SameOps(ConformanceCase other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Ops.Length == other.Ops.Length && Ops.Zip(other.Ops).All(p =>
            p.First.Kind == p.Second.Kind && p.First.Proc == p.Second.Proc && p.First.NewProc == p.Second.NewProc &&
            p.First.Name == p.Second.Name && p.First.Args.SequenceEqual(p.Second.Args));
    }

    /// <summary>Null if the case is well formed; otherwise why not (a reference to a later op, a
    /// process used before its fork, an access size other than 1, 2, 4, 8, …).</summary>
    public string? Validate()
    {
        var known = new HashSet<int> { 0 };
        for (int i = 0; i < Ops.Length; i++)
        {
            var op = Ops[i];
            if (op.Args.IsDefault || op.Args.Length != Op.Arity(op.Kind))
            {
                return $"#{i} {Op.VerbName(op.Kind)} takes {Op.Arity(op.Kind)} argument(s)";
            }
            if (!known.Contains(op.Proc))
            {
                return $"#{i} runs in P{op.Proc}, which no earlier fork creates";
            }
            foreach (var a in op.Args)
            {
                if (a.Base == ArgBase.Result && (a.Op < 0 || a.Op >= i))
                {
                    return $"#{i} refers to the result of #{a.Op}, which does not come before it";
                }
            }
            switch (op.Kind)
            {
                case OpKind.Fork:
                    if (op.NewProc <= 0 || !known.Add(op.NewProc))
                    {
                        return $"#{i} fork names P{op.NewProc}, which is not a new process id";
                    }
                    break;
                case OpKind.MemfdCreate:
                    if (string.IsNullOrEmpty(op.Name) || op.Name.Any(c => c <= ' ' || c > '~'))
                    {
                        return $"#{i} memfd_create needs a printable name without blanks";
                    }
                    break;
                case OpKind.Load or OpKind.Store:
                    var size = op.Args[op.Kind == OpKind.Load ? 1 : 2];
                    if (!size.IsAbsolute || size.Value is not (1 or 2 or 4 or 8))
                    {
                        return $"#{i} {Op.VerbName(op.Kind)} size must be the constant 1, 2, 4 or 8";
                    }
                    break;
            }
        }
        return null;
    }
}

/// <summary>Builds a case op by op; each method returns the new op's index, to use in <see cref="Arg.Result"/>.</summary>
public sealed class CaseBuilder(string name)
{
    private readonly List<Op> _ops = [];
    private int _nextProc = 1;

    public int Count => _ops.Count;

    public int Add(Op op)
    {
        ArgumentNullException.ThrowIfNull(op);
        _ops.Add(op);
        if (op.Kind == OpKind.Fork)
        {
            _nextProc = Math.Max(_nextProc, op.NewProc + 1);
        }
        return _ops.Count - 1;
    }

    public int Add(OpKind kind, int proc, params Arg[] args) => Add(new Op(kind, proc, [.. args]));

    public int Mmap(int p, Arg addr, ulong len, int prot, int flags, Arg? fd = null, long off = 0) =>
        Add(OpKind.Mmap, p, addr, Arg.Abs(len), Arg.Abs(prot), Arg.Abs(flags), fd ?? Arg.Abs(-1), Arg.Abs(off));

    public int Munmap(int p, Arg addr, ulong len) => Add(OpKind.Munmap, p, addr, Arg.Abs(len));

    public int Mprotect(int p, Arg addr, ulong len, int prot) => Add(OpKind.Mprotect, p, addr, Arg.Abs(len), Arg.Abs(prot));

    public int Mremap(int p, Arg old, ulong oldLen, ulong newLen, int flags, Arg? newAddr = null) =>
        Add(OpKind.Mremap, p, old, Arg.Abs(oldLen), Arg.Abs(newLen), Arg.Abs(flags), newAddr ?? Arg.Abs(0));

    public int Madvise(int p, Arg addr, ulong len, int advice) => Add(OpKind.Madvise, p, addr, Arg.Abs(len), Arg.Abs(advice));

    public int MemfdCreate(int p, string memfdName, int flags = 0) => Add(new Op(OpKind.MemfdCreate, p, [Arg.Abs(flags)], memfdName));

    public int Ftruncate(int p, Arg fd, long len) => Add(OpKind.Ftruncate, p, fd, Arg.Abs(len));

    public int Close(int p, Arg fd) => Add(OpKind.Close, p, fd);

    /// <summary>Process <paramref name="p"/> forks; returns the child's process id.</summary>
    public int Fork(int p)
    {
        int child = _nextProc;
        Add(new Op(OpKind.Fork, p, [], NewProc: child));
        return child;
    }

    public int Exit(int p) => Add(OpKind.Exit, p);

    public int Load(int p, Arg addr, int size = 8) => Add(OpKind.Load, p, addr, Arg.Abs(size));

    public int Store(int p, Arg addr, ulong value, int size = 8) => Add(OpKind.Store, p, addr, Arg.Abs(value), Arg.Abs(size));

    public int Pagemap(int p, Arg addr) => Add(OpKind.Pagemap, p, addr);

    public int KpageCount(int p, Arg addr) => Add(OpKind.KpageCount, p, addr);

    public int KpageFlags(int p, Arg addr) => Add(OpKind.KpageFlags, p, addr);

    public int Smaps(int p, Arg addr) => Add(OpKind.Smaps, p, addr);

    public int Maps(int p) => Add(OpKind.Maps, p);

    public ConformanceCase Build() => new(name, [.. _ops]);
}

using static Linux.PgTable;
using static Linux.X86Pte;

namespace Linux;

/// <summary>The x86 page-fault error code bits (arch/x86/include/asm/trap_pf.h).</summary>
[Flags]
[KernelSymbol("x86_pf_error_code", "arch/x86/include/asm/trap_pf.h")]
public enum X86PfError : uint
{
    None = 0,
    X86_PF_PROT = 1u << 0,
    X86_PF_WRITE = 1u << 1,
    X86_PF_USER = 1u << 2,
    X86_PF_RSVD = 1u << 3,
    X86_PF_INSTR = 1u << 4,
    X86_PF_PK = 1u << 5,
}

/// <summary>
/// One CPU: the mm it has loaded (CR3) and its TLB. The page walker reads the loaded mm's tables
/// as the hardware does: every level must be present; writes need RW at every level, user
/// accesses need US at every level; A is set on each entry walked and D on the leaf of a write.
/// </summary>
public sealed class Cpu
{
    public readonly Kernel K;
    public readonly int Id;
    public readonly Tlb Tlb;
    /// <summary>The mm whose PGD is in CR3.</summary>
    public MmStruct? LoadedMm { get; private set; }

    internal Cpu(Kernel k, int id)
    {
        K = k;
        Id = id;
        Tlb = new Tlb(id);
    }

    /// <summary>switch_mm(): loads CR3 and joins the mm's cpumask.</summary>
    /// <remarks>Context: the context switch (interrupts off in the kernel); the model calls it once, when a task is
    /// created. Does not sleep.</remarks>
    [KernelSymbol("switch_mm", "arch/x86/mm/tlb.c")]
    public void SwitchMm(MmStruct mm)
    {
        LoadedMm = mm;
        mm.CpuMask.Add(Id);
    }

    /// <summary>What a walk found: a translation or a fault with its error code.</summary>
    public readonly record struct WalkResult(bool Ok, ulong Pfn, X86PfError Error);

    /// <summary>
    /// A hardware walk for <paramref name="va"/> in the loaded mm. On success fills the TLB and
    /// returns the frame; otherwise the #PF error code.
    /// </summary>
    public WalkResult Walk(ulong va, bool write, bool user)
    {
        var k = K;
        var mm = LoadedMm!;
        var g = Geometry();
        X86PfError baseErr = (write ? X86PfError.X86_PF_WRITE : 0) | (user ? X86PfError.X86_PF_USER : 0);
        bool rw = true, us = true;
        var slot = k.PgdOffset(mm, va);
        int level = 5;
        // Descend the real levels. A folded level is skipped; the slot we hold is the next real one.
        while (true)
        {
            ulong v = ReadForWalk(slot);
            if ((v & _PAGE_PRESENT) == 0)
            {
                return new WalkResult(false, 0, baseErr);
            }
            rw &= (v & _PAGE_RW) != 0;
            us &= (v & _PAGE_USER) != 0;
            bool leaf = level == 1 || ((level == 2 || level == 3) && (v & _PAGE_PSE) != 0);
            if (leaf)
            {
                if ((user && !us) || (write && !rw))
                {
                    return new WalkResult(false, 0, baseErr | X86PfError.X86_PF_PROT);
                }
                ulong nv = v | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
                ulong leafMask = (1UL << g.Shift[level]) - 1;
                if (nv != v)
                {
                    k.WriteEntry(slot, nv, va & ~leafMask, byHardware: true);
                }
                ulong pfn = PagingMode.LeafPfn(v, g.Shift[level], va);
                Tlb.Fill(mm.Id, va >> PAGE_SHIFT, new TlbEntry(pfn, rw, us, (nv & _PAGE_DIRTY) != 0));
                k.Sched.Access(Tlb.Obj, write: true);
                return new WalkResult(true, pfn, 0);
            }
            if ((v & _PAGE_ACCESSED) == 0)
            {
                k.WriteEntry(slot, v | _PAGE_ACCESSED, va, byHardware: true);
            }
            var table = k.TableOf(v);
            level = g.Next[level];
            slot = new PtPtr(table, (int)((va >> g.Shift[level]) & g.IndexMask[level]));
        }
    }

    /// <summary>The paging mode's levels as the walker steps through them, by level number: the
    /// next real level below each (folded ones skipped), and each level's shift and index mask.</summary>
    private sealed class WalkGeometry
    {
        public readonly PagingMode Mode;
        public readonly int[] Next = new int[6];
        public readonly int[] Shift = new int[6];
        public readonly ulong[] IndexMask = new ulong[6];

        public WalkGeometry(PagingMode p)
        {
            Mode = p;
            for (int level = 1; level <= 5; level++)
            {
                Next[level] = NextRealLevel(p, level);
                Shift[level] = p.ShiftOfLevel(level);
                IndexMask[level] = (ulong)(p.PtrsOfLevel(level) - 1);
            }
        }
    }

    private WalkGeometry? _geometry;

    /// <summary>The walk geometry of the kernel's paging mode (fixed once the kernel is built, but
    /// read lazily: the CPUs exist before its initialisers run).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private WalkGeometry Geometry()
    {
        var g = _geometry;
        return g is not null && ReferenceEquals(g.Mode, K.Paging) ? g : _geometry = new WalkGeometry(K.Paging);
    }

    private ulong ReadForWalk(PtPtr slot)
    {
        K.Sched.Access(slot.Obj, write: false);
        return slot.Table.Entries[slot.Index];
    }

    /// <summary>The next level below <paramref name="level"/> that is not folded.</summary>
    private static int NextRealLevel(PagingMode p, int level)
    {
        int l = level - 1;
        while ((l == 4 && p.P4dFolded) || (l == 3 && p.PudFolded) || (l == 2 && p.PmdFolded))
        {
            l--;
        }
        return l;
    }

    /// <summary>
    /// Translates one access through the TLB: a hit that permits the access (a write also needs the
    /// cached D bit, else the CPU re-walks to set it) costs nothing; otherwise the page walker runs.
    /// </summary>
    public WalkResult Translate(ulong va, bool write, bool user)
    {
        var mm = LoadedMm!;
        ulong vpn = va >> PAGE_SHIFT;
        K.Sched.Access(Tlb.Obj, write: false);
        if (Tlb.TryGet(mm.Id, vpn, out var e) && (!user || e.User) && (!write || (e.Writable && e.Dirty)))
        {
            return new WalkResult(true, e.Pfn, 0);
        }
        var r = Walk(va, write, user);
        if (!r.Ok)
        {
            // A #PF invalidates the TLB entries for the faulting address.
            Tlb.Invalidate(mm.Id, vpn);
        }
        return r;
    }
}

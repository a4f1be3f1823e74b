using System.Globalization;
using System.Text;
using static Linux.PgTable;

namespace Linux;

/// <summary>One /proc/pid/pagemap entry, decoded.</summary>
public readonly record struct PagemapEntry(ulong Raw)
{
    public const int PM_PFRAME_BITS = 55;
    public const ulong PM_PFRAME_MASK = (1UL << PM_PFRAME_BITS) - 1;
    public const ulong PM_SOFT_DIRTY = 1UL << 55;
    public const ulong PM_MMAP_EXCLUSIVE = 1UL << 56;
    public const ulong PM_UFFD_WP = 1UL << 57;
    public const ulong PM_GUARD_REGION = 1UL << 58;
    public const ulong PM_FILE = 1UL << 61;
    public const ulong PM_SWAP = 1UL << 62;
    public const ulong PM_PRESENT = 1UL << 63;

    public bool Present => (Raw & PM_PRESENT) != 0;
    public bool Swapped => (Raw & PM_SWAP) != 0;
    public bool File => (Raw & PM_FILE) != 0;
    public bool Exclusive => (Raw & PM_MMAP_EXCLUSIVE) != 0;
    public bool SoftDirty => (Raw & PM_SOFT_DIRTY) != 0;
    public bool UffdWp => (Raw & PM_UFFD_WP) != 0;
    public bool Guard => (Raw & PM_GUARD_REGION) != 0;
    public ulong Pfn => Raw & PM_PFRAME_MASK;
}

/// <summary>The smaps counters of one VMA, in bytes.</summary>
public sealed record SmapsInfo(ulong Start, ulong End, VmFlags Flags, ulong Rss, ulong Anonymous, ulong LazyFree,
    ulong SharedClean, ulong SharedDirty, ulong PrivateClean, ulong PrivateDirty, ulong Referenced, ulong Swap);

// fs/proc/task_mmu.c and fs/proc/page.c: what user space can observe of an address space.
// Observers run outside any scheduling point and touch no footprint: they read the state.
public sealed partial class Kernel
{
    /// <summary>
    /// The leaf entry mapping <paramref name="addr"/>, read directly without footprint or locks
    /// (for observers and checkers). Level 1 is a PTE; 2 and 3 are huge leaves.
    /// </summary>
    public bool PeekLeaf(MmStruct mm, ulong addr, out ulong entry, out int level)
    {
        var p = Paging;
        ulong v = mm.Pgd.Entries[p.PgdIndex(addr)];
        level = 5;
        for (int next = 4; next >= 1; next--)
        {
            if ((next == 4 && p.P4dFolded) || (next == 3 && p.PudFolded) || (next == 2 && p.PmdFolded))
            {
                continue;
            }
            // A huge leaf (PSE) ends the walk, PROT_NONE ones (P clear) included, as pmd_present() says.
            if ((v & X86Pte._PAGE_PRESENT) == 0 || (level is 2 or 3 && (v & X86Pte._PAGE_PSE) != 0))
            {
                break;
            }
            if (Handles.Get(MemMap.Mapping(TablePfn(v))) is not PageTable table)
            {
                break;
            }
            v = table.Entries[next switch { 4 => p.P4dIndex(addr), 3 => p.PudIndex(addr), 2 => p.PmdIndex(addr), _ => p.PteIndex(addr) }];
            level = next;
        }
        entry = v;
        return level == 1 || (level is 2 or 3 && (v & X86Pte._PAGE_PSE) != 0 &&
                              (v & (X86Pte._PAGE_PRESENT | X86Pte._PAGE_PROTNONE)) != 0);
    }

    /// <summary>pte_to_pagemap_entry() / pagemap_read(): the pagemap entry of one virtual page.</summary>
    /// <remarks>
    /// Context: an observer outside the scheduler: reads the tables between steps without locks or
    /// scheduling points (the kernel's pagemap_read() holds mmap_lock read and the PTL).
    /// </remarks>
    [KernelSymbol("pte_to_pagemap_entry", "fs/proc/task_mmu.c")]
    public PagemapEntry Pagemap(MmStruct mm, ulong addr)
    {
        var vma = mm.MmMt.Snapshot().FirstOrDefault(v => v.VmStart <= addr && addr < v.VmEnd);
        if (vma is null)
        {
            return new PagemapEntry(0);
        }
        ulong flags = 0, frame = 0;
        if ((vma.VmFlags & VmFlags.VM_SOFTDIRTY) != 0)
        {
            flags |= PagemapEntry.PM_SOFT_DIRTY;
        }
        if (!PeekLeaf(mm, addr, out ulong e, out int level))
        {
            return new PagemapEntry(flags);
        }
        Page? page = null;
        if (level > 1)
        {
            ulong shift = (ulong)Paging.ShiftOfLevel(level);
            frame = ((e ^ ProtnoneMask(e)) & X86Pte.PTE_PFN_MASK & ~((1UL << (int)shift) - 1)) >> PAGE_SHIFT;
            frame += (addr & ((1UL << (int)shift) - 1)) >> PAGE_SHIFT;
            flags |= PagemapEntry.PM_PRESENT;
        }
        else
        {
            var pte = new Pte(e);
            if (PtePresent(pte))
            {
                frame = PtePfn(pte);
                flags |= PagemapEntry.PM_PRESENT;
                page = VmNormalPageQuiet(vma, pte);
                if (PteSoftDirty(pte))
                {
                    flags |= PagemapEntry.PM_SOFT_DIRTY;
                }
                if (PteUffdWp(pte))
                {
                    flags |= PagemapEntry.PM_UFFD_WP;
                }
            }
            else if (SwapOps.IsSwapPte(pte))
            {
                if (SwapOps.PteSwpSoftDirty(pte))
                {
                    flags |= PagemapEntry.PM_SOFT_DIRTY;
                }
                if (SwapOps.PteSwpUffdWp(pte))
                {
                    flags |= PagemapEntry.PM_UFFD_WP;
                }
                var entry = SwapOps.PteToSwpEntry(pte);
                ulong offset = SwapOps.IsPfnSwapEntry(entry) ? SwapOps.SwpOffsetPfn(entry) : entry.Offset;
                frame = entry.Type | (offset << SwapOps.MAX_SWAPFILES_SHIFT);
                flags |= PagemapEntry.PM_SWAP;
                if (SwapOps.IsPfnSwapEntry(entry))
                {
                    page = new Page(SwapOps.SwpOffsetPfn(entry));
                }
                if (SwapOps.IsPteMarkerEntry(entry))
                {
                    ulong m = SwapOps.PteMarkerGet(entry);
                    if ((m & SwapOps.PTE_MARKER_UFFD_WP) != 0)
                    {
                        flags |= PagemapEntry.PM_UFFD_WP;
                    }
                    if ((m & SwapOps.PTE_MARKER_GUARD) != 0)
                    {
                        flags |= PagemapEntry.PM_GUARD_REGION;
                    }
                }
            }
        }
        if (page is { } pg)
        {
            uint pf = MemMap.PeekFlags(pg.Pfn);
            if ((pf & (uint)PageFlags.PAGE_MAPPING_ANON) == 0)
            {
                flags |= PagemapEntry.PM_FILE;
            }
            if ((flags & PagemapEntry.PM_PRESENT) != 0 && MemMap.MapCount(pg.Pfn) == 1)
            {
                flags |= PagemapEntry.PM_MMAP_EXCLUSIVE;
            }
        }
        return new PagemapEntry((frame & PagemapEntry.PM_PFRAME_MASK) | flags);
    }

    /// <summary>vm_normal_page() without reports or footprint, for observers.</summary>
    private Page? VmNormalPageQuiet(VmAreaStruct vma, Pte pte)
    {
        ulong pfn = PtePfn(pte);
        if (PteSpecial(pte) || !PfnValid(pfn))
        {
            return null;
        }
        return new Page(pfn);
    }

    /// <summary>/proc/kpagecount: the page's precise mapcount (0 for frames without a struct page).</summary>
    /// <remarks>
    /// Context: an observer outside the scheduler: reads the descriptor between steps, lock-free as
    /// the kernel does.
    /// </remarks>
    [KernelSymbol("kpagecount_read", "fs/proc/page.c")]
    public long KpageCount(ulong pfn)
    {
        if (!PfnValid(pfn))
        {
            return 0;
        }
        uint f = MemMap.PeekFlags(pfn);
        if ((f & (uint)(PageFlags.PGTY_table | PageFlags.PGTY_buddy)) != 0)
        {
            return 0;
        }
        return MemMap.MapCount(pfn);
    }

    /// <summary>KPF_* bit numbers of /proc/kpageflags (include/uapi/linux/kernel-page-flags.h).</summary>
    public static class Kpf
    {
        public const int LOCKED = 0, REFERENCED = 2, UPTODATE = 3, DIRTY = 4, LRU = 5, ACTIVE = 6, SLAB = 7, WRITEBACK = 8,
            RECLAIM = 9, BUDDY = 10, MMAP = 11, ANON = 12, SWAPCACHE = 13, SWAPBACKED = 14, COMPOUND_HEAD = 15,
            COMPOUND_TAIL = 16, HUGE = 17, UNEVICTABLE = 18, HWPOISON = 19, NOPAGE = 20, KSM = 21, THP = 22,
            OFFLINE = 23, ZERO_PAGE = 24, IDLE = 25, PGTABLE = 26, RESERVED = 32, MLOCKED = 33, PRIVATE = 35;
    }

    /// <summary>stable_page_flags(): the /proc/kpageflags word of a frame.</summary>
    /// <remarks>
    /// Context: an observer outside the scheduler: reads the descriptor between steps, lock-free as
    /// the kernel does.
    /// </remarks>
    [KernelSymbol("stable_page_flags", "fs/proc/page.c")]
    public ulong KpageFlags(ulong pfn)
    {
        if (!PfnValid(pfn))
        {
            return 1UL << Kpf.NOPAGE;
        }
        uint k = MemMap.PeekFlags(pfn);
        ulong u = 0;
        void Copy(int kpf, PageFlags pg)
        {
            if ((k & (uint)pg) != 0)
            {
                u |= 1UL << kpf;
            }
        }
        if (MemMap.MapCount(pfn) > 0)
        {
            u |= 1UL << Kpf.MMAP;
        }
        if ((k & (uint)PageFlags.PAGE_MAPPING_ANON) != 0)
        {
            u |= 1UL << Kpf.ANON;
        }
        if (IsZeroPfn(pfn))
        {
            u |= 1UL << Kpf.ZERO_PAGE;
        }
        Copy(Kpf.BUDDY, PageFlags.PGTY_buddy);
        Copy(Kpf.PGTABLE, PageFlags.PGTY_table);
        Copy(Kpf.LOCKED, PageFlags.PG_locked);
        Copy(Kpf.REFERENCED, PageFlags.PG_referenced);
        Copy(Kpf.UPTODATE, PageFlags.PG_uptodate);
        Copy(Kpf.DIRTY, PageFlags.PG_dirty);
        Copy(Kpf.LRU, PageFlags.PG_lru);
        Copy(Kpf.ACTIVE, PageFlags.PG_active);
        Copy(Kpf.WRITEBACK, PageFlags.PG_writeback);
        Copy(Kpf.RECLAIM, PageFlags.PG_reclaim);
        Copy(Kpf.SWAPCACHE, PageFlags.PG_swapcache);
        Copy(Kpf.SWAPBACKED, PageFlags.PG_swapbacked);
        Copy(Kpf.UNEVICTABLE, PageFlags.PG_unevictable);
        Copy(Kpf.HWPOISON, PageFlags.PG_hwpoison);
        Copy(Kpf.RESERVED, PageFlags.PG_reserved);
        Copy(Kpf.MLOCKED, PageFlags.PG_mlocked);
        Copy(Kpf.PRIVATE, PageFlags.PG_private);
        return u;
    }

    /// <summary>smaps_pte_entry() over one VMA: Rss counts pages with a struct page (not the zero
    /// page, not PFN maps); Anonymous counts anon pages.</summary>
    /// <remarks>
    /// Context: an observer outside the scheduler: walks VMAs and tables between steps without
    /// locks (the kernel holds mmap_lock read and the PTLs).
    /// </remarks>
    [KernelSymbol("show_smap", "fs/proc/task_mmu.c")]
    public SmapsInfo Smaps(VmAreaStruct vma)
    {
        ulong rss = 0, anon = 0, lazyfree = 0, sc = 0, sd = 0, pc = 0, pd = 0, referenced = 0, swap = 0;
        for (ulong addr = vma.VmStart; addr < vma.VmEnd; addr += PAGE_SIZE)
        {
            if (!PeekLeaf(vma.VmMm, addr, out ulong e, out int level) || level != 1)
            {
                continue;
            }
            var pte = new Pte(e);
            if (!PtePresent(pte))
            {
                if (SwapOps.IsSwapPte(pte) && !SwapOps.NonSwapEntry(SwapOps.PteToSwpEntry(pte)))
                {
                    swap += PAGE_SIZE;
                }
                continue;
            }
            if (VmNormalPageQuiet(vma, pte) is not { } page)
            {
                continue;
            }
            uint f = MemMap.PeekFlags(page.Pfn);
            bool dirty = PteDirty(pte) || (f & (uint)PageFlags.PG_dirty) != 0;
            if ((f & (uint)PageFlags.PAGE_MAPPING_ANON) != 0)
            {
                anon += PAGE_SIZE;
                if ((f & (uint)PageFlags.PG_swapbacked) == 0 && !dirty)
                {
                    lazyfree += PAGE_SIZE;
                }
            }
            rss += PAGE_SIZE;
            if (PteYoung(pte) || (f & (uint)PageFlags.PG_referenced) != 0)
            {
                referenced += PAGE_SIZE;
            }
            bool shared = MemMap.RefCount(page.Pfn) != 1 && MemMap.MapCount(page.Pfn) >= 2;
            if (shared)
            {
                if (dirty) { sd += PAGE_SIZE; } else { sc += PAGE_SIZE; }
            }
            else
            {
                if (dirty) { pd += PAGE_SIZE; } else { pc += PAGE_SIZE; }
            }
        }
        return new SmapsInfo(vma.VmStart, vma.VmEnd, vma.VmFlags, rss, anon, lazyfree, sc, sd, pc, pd, referenced, swap);
    }

    /// <summary>The VMA containing <paramref name="addr"/>, for observers.</summary>
    public VmAreaStruct? VmaAt(MmStruct mm, ulong addr) =>
        mm.MmMt.Snapshot().FirstOrDefault(v => v.VmStart <= addr && addr < v.VmEnd);

    /// <summary>show_map_vma(): /proc/pid/maps. Each line is "start-end perms offset dev inode "
    /// (seq_setwidth(25 + 6 * sizeof(void *) - 1)); a name is padded to that width and follows one more
    /// space (seq_pad()), so names start in column 73 and unnamed lines keep their trailing space.</summary>
    /// <remarks>
    /// Context: an observer outside the scheduler: reads the VMA tree between steps (the kernel
    /// holds mmap_lock read or uses the per-VMA lock).
    /// </remarks>
    [KernelSymbol("show_map_vma", "fs/proc/task_mmu.c")]
    public string ProcMaps(MmStruct mm)
    {
        const int width = 25 + 6 * 8 - 1;
        var sb = new StringBuilder();
        foreach (var v in mm.MmMt.Snapshot())
        {
            var f = v.VmFlags;
            int lineStart = sb.Length;
            sb.Append(CultureInfo.InvariantCulture, $"{v.VmStart:x8}-{v.VmEnd:x8} ");
            sb.Append((f & VmFlags.VM_READ) != 0 ? 'r' : '-');
            sb.Append((f & VmFlags.VM_WRITE) != 0 ? 'w' : '-');
            sb.Append((f & VmFlags.VM_EXEC) != 0 ? 'x' : '-');
            sb.Append((f & VmFlags.VM_MAYSHARE) != 0 ? 's' : 'p');
            ulong pgoff = v.VmFile is not null ? v.VmPgoff << PAGE_SHIFT : 0;
            ulong ino = v.VmFile?.FInode.Ino ?? 0;
            // MAJOR:MINOR of the file's superblock: shm_mnt's anonymous device is the first one the
            // kernel hands out at boot (00:01); anonymous memory has none.
            string dev = v.VmFile?.FInode.Kind == "shmem" ? "00:01" : "00:00";
            sb.Append(CultureInfo.InvariantCulture, $" {pgoff:x8} {dev} {ino} ");
            string? name = v.VmFile is { } file
                ? file.FInode.NLink == 0 ? file.FInode.Path + " (deleted)" : file.FInode.Path
                : v.VmOps?.MapName?.Invoke(v) ?? (v.AnonName is { } an ? $"[anon:{an}]" : null);
            if (name is not null)
            {
                int pad = lineStart + width - sb.Length;
                if (pad > 0)
                {
                    sb.Append(' ', pad);
                }
                sb.Append(' ').Append(name);
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }
}

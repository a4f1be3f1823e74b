using System.Globalization;
using System.Text;
using static Linux.PgTable;
using Strategy = Linux.Variants.VfioPciFaultStrategy;

namespace Linux;

/// <summary>
/// One row of <see cref="VfioStrategyTable"/>: what it cost one strategy to let user space touch
/// <see cref="PagesTouched"/> pages of a BAR mapping, in order from the start.
/// </summary>
/// <param name="Strategy">The vfio_pci.fault variant value.</param>
/// <param name="Release">Which kernels shipped it.</param>
/// <param name="PagesTouched">Pages loaded from, one 8-byte load per page, in address order.</param>
/// <param name="FirstPage">The page of the BAR the loads start at (0: its first page).</param>
/// <param name="PgFault">The vmstat pgfault delta (handle_mm_fault() calls; a fault first tried
/// under the per-VMA lock and retried under the mmap lock counts twice, as in /proc/vmstat).</param>
/// <param name="HandlerCalls">Calls into vfio's ->fault and ->huge_fault.</param>
/// <param name="Ptes">PTEs mapping the BAR afterwards.</param>
/// <param name="Pmds">PMD leaves (2 MiB) mapping the BAR afterwards.</param>
/// <param name="Puds">PUD leaves (1 GiB) mapping the BAR afterwards.</param>
/// <param name="Findings">What the model reported (lock-assert, bug, …), by invariant.</param>
public sealed record VfioStrategyRow(string Strategy, string Release, long PagesTouched, long PgFault, long HandlerCalls,
    long Ptes, long Pmds, long Puds, string Findings, long FirstPage = 0);

/// <summary>
/// The table "faults taken and page-table entries installed per vfio-pci fault strategy" for
/// touching 1 page, 16 pages and all of a BAR (1 GiB by default), each row on a fresh kernel of
/// the strategy's release:
/// one process opens the vfio device, mmaps BAR 0 at a 1 GiB-aligned address and loads one word
/// from each page in turn.
/// </summary>
public static class VfioStrategyTable
{
    /// <summary>Every strategy, newest first.</summary>
    public static readonly IReadOnlyList<Strategy> AllStrategies =
    [
        Strategy.Huge, Strategy.HugeV612, Strategy.InsertFullVma, Strategy.InsertPfn,
        Strategy.RemapDropMmapLock, Strategy.RemapVmaList, Strategy.RemapNoListCheck,
    ];

    /// <summary>
    /// The kernel preset a strategy's row runs on: the last release that shipped it (for the
    /// unmerged proposal, the release it was written against; for aac6db75a9fc alone, v6.10-rc1),
    /// so that remap_pfn_range() tracks and asserts as it did next to that handler.
    /// </summary>
    public static string KernelOf(Strategy s) => s switch
    {
        Strategy.Huge => "current",
        Strategy.HugeV612 => "v6.14",
        Strategy.InsertFullVma or Strategy.InsertPfn => "v6.10",
        Strategy.RemapDropMmapLock => "v6.4",
        Strategy.RemapVmaList => "v6.9",
        _ => "v5.12",
    };

    /// <summary>The release each strategy shipped in.</summary>
    public static string ReleaseOf(Strategy s) => s switch
    {
        Strategy.Huge => "v6.15+",
        Strategy.HugeV612 => "v6.12-v6.14",
        Strategy.InsertFullVma => "v6.10-v6.11",
        Strategy.InsertPfn => "aac6db75a9fc alone",
        Strategy.RemapDropMmapLock => "proposal (2023)",
        Strategy.RemapVmaList => "v5.13-v6.9",
        _ => "v5.8-v5.12",
    };

    /// <summary>
    /// Builds the rows. <paramref name="touches"/> defaults to 1, 16 and every page of the BAR;
    /// <paramref name="barBytes"/> must be a power of two of at least 2 MiB. With
    /// <paramref name="firstPage"/> the loads start inside the BAR (an unaligned first fault).
    /// </summary>
    public static IReadOnlyList<VfioStrategyRow> Build(ulong barBytes = 1UL << 30, IReadOnlyList<long>? touches = null,
        IEnumerable<Strategy>? strategies = null, long firstPage = 0)
    {
        long barPages = (long)(barBytes >> PAGE_SHIFT);
        touches ??= [1, 16, barPages - firstPage];
        var rows = new List<VfioStrategyRow>();
        foreach (var s in strategies ?? AllStrategies)
        {
            foreach (long n in touches)
            {
                rows.Add(Run(s, barBytes, Math.Min(n, barPages - firstPage), firstPage));
            }
        }
        return rows;
    }

    /// <summary>
    /// One row: a fresh kernel of the strategy's release (<see cref="KernelOf"/>), one BAR, one
    /// mmap, <paramref name="pages"/> loads from <paramref name="firstPage"/>.
    /// </summary>
    public static VfioStrategyRow Run(Strategy s, ulong barBytes, long pages, long firstPage = 0)
    {
        var variants = Variants.Preset(KernelOf(s))! with { VfioPciFault = s };
        var k = new Kernel(new KernelConfig { Variants = variants });
        var pdev = k.PciAddDevice(1, 0, new PciBarSpec(barBytes, Mem64: true, Prefetch: true));
        var vdev = k.VfioPciBind(pdev);
        var t = k.CreateProcess("vfio-user");
        // A hint aligned to 1 GiB so that PMD and PUD leaves are possible.
        const ulong hint = 0x40_0000_0000UL;
        long pgfault0 = 0;
        long addr = k.Run(t, async () =>
        {
            long fd = await k.SysOpen(vdev.Path, Mman.O_RDWR);
            if (fd < 0)
            {
                return fd;
            }
            long a = await k.SysMmap(hint, barBytes, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_SHARED, fd, 0);
            pgfault0 = k.VmEvent(VmEventItem.PGFAULT);
            if (a < 0)
            {
                return a;
            }
            for (long i = 0; i < pages; i++)
            {
                var r = await k.UserLoad((ulong)a + ((ulong)(firstPage + i) << PAGE_SHIFT), 8);
                if (!r.Ok)
                {
                    return -(long)r.Signal - 1000;
                }
            }
            return a;
        });
        if (addr < 0)
        {
            throw new InvalidOperationException($"{Variants.VfioPciFaultName(s)}: mmap or access failed ({addr})");
        }
        long pgfault = k.VmEvent(VmEventItem.PGFAULT) - pgfault0;
        ulong first = pdev.BarPfn(0), last = first + (barBytes >> PAGE_SHIFT) - 1;
        long ptes = 0, pmds = 0, puds = 0;
        foreach (var leaf in k.UserLeaves())
        {
            if (leaf.Mm != t.Mm || leaf.Pfn > last || leaf.Pfn + leaf.Pages - 1 < first)
            {
                continue;
            }
            switch (leaf.Level)
            {
                case 1:
                    ptes++;
                    break;
                case 2:
                    pmds++;
                    break;
                default:
                    puds++;
                    break;
            }
        }
        string findings = string.Join(", ", k.Findings.GroupBy(f => f.Invariant).Select(g => $"{g.Key} x{g.Count()}"));
        return new VfioStrategyRow(Variants.VfioPciFaultName(s), ReleaseOf(s), pages, pgfault,
            vdev.FaultCalls + vdev.HugeFaultCalls, ptes, pmds, puds, findings.Length == 0 ? "-" : findings, firstPage);
    }

    /// <summary>The rows as a Markdown table.</summary>
    public static string Format(IEnumerable<VfioStrategyRow> rows)
    {
        var sb = new StringBuilder();
        sb.Append("| strategy | release | pages touched | pgfault | ->fault/->huge_fault calls | PTEs | PMDs | PUDs | findings |\n");
        sb.Append("|---|---|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var r in rows)
        {
            string touched = r.FirstPage == 0 ? r.PagesTouched.ToString(CultureInfo.InvariantCulture) : $"{r.PagesTouched} from page {r.FirstPage}";
            sb.Append(CultureInfo.InvariantCulture,
                $"| {r.Strategy} | {r.Release} | {touched} | {r.PgFault} | {r.HandlerCalls} | {r.Ptes} | {r.Pmds} | {r.Puds} | {r.Findings} |\n");
        }
        return sb.ToString();
    }
}

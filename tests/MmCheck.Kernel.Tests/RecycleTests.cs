using Linux;
using static Linux.X86Pte;

namespace MmCheck.Kernel.Tests;

/// <summary>
/// Kernel.Recycle(): a finished instance's storage serves the next instance built on the same
/// thread, and that instance cannot tell: it sees exactly what a kernel on a fresh thread sees.
/// </summary>
public class RecycleTests
{
    /// <summary>Everything a workload leaves behind that recycled storage could corrupt: every
    /// non-zero page-table entry (walked from each PGD), every TLB entry, the descriptors of the
    /// frames in use, and what user space reads back.</summary>
    private static List<string> Workload(int pages, ulong seed, bool recycleFirst)
    {
        if (recycleFirst)
        {
            // A bigger, different workload first: more tables, another fork, other frames and TLB sets.
            var old = Proc.Boot();
            ulong a = old.MmapAnon(96);
            old.Fill(a, 96, 0xdead0000);
            var child = old.Fork();
            child.Fill(a, 96, 0xbeef0000);
            old.K.Recycle();
        }
        var p = Proc.Boot();
        ulong x = p.MmapAnon((ulong)pages);
        p.Fill(x, (ulong)pages, seed);
        var c = p.Fork();
        c.Write(x, seed ^ 0xff);

        var state = new List<string>();
        ulong maxPfn = 0;
        foreach (var mm in p.K.Mms)
        {
            Dump(p.K, mm.Pgd, mm.Id, state, ref maxPfn);
        }
        foreach (var cpu in p.K.Cpus)
        {
            state.AddRange(cpu.Tlb.Entries().Select(e => $"cpu{cpu.Id} tlb mm{e.Mm} {e.Va:x} {e.Entry}"));
        }
        for (ulong pfn = 0; pfn <= maxPfn; pfn++)
        {
            var m = p.K.MemMap;
            if (m.PeekFlags(pfn) != 0 || m.RefCount(pfn) != 0 || m.MapCount(pfn) != 0)
            {
                state.Add($"pfn {pfn:x} flags {m.Flags(pfn):x} ref {m.RefCount(pfn)} map {m.MapCount(pfn)} index {m.GetIndex(pfn):x}");
            }
        }
        for (ulong i = 0; i < (ulong)pages; i++)
        {
            state.Add($"parent {p.Read(x + (i * 4096)):x} child {c.Read(x + (i * 4096)):x}");
        }
        p.AssertClean();
        return state;
    }

    private static void Dump(Linux.Kernel k, PageTable t, int mm, List<string> into, ref ulong maxPfn)
    {
        maxPfn = Math.Max(maxPfn, t.Pfn);
        for (int i = 0; i < t.Entries.Length; i++)
        {
            ulong e = t.Entries[i];
            if (e == 0)
            {
                continue;
            }
            into.Add($"mm{mm} L{t.Level} pfn {t.Pfn:x}[{i}] = {e:x}");
            if ((e & _PAGE_PRESENT) == 0)
            {
                continue;
            }
            if (t.Level > 1 && (e & _PAGE_PSE) == 0)
            {
                Dump(k, k.TableOf(e), mm, into, ref maxPfn);
            }
            else
            {
                maxPfn = Math.Max(maxPfn, (e & 0x000f_ffff_ffff_f000UL) >> 12);
            }
        }
    }

    private static T OnFreshThread<T>(Func<T> f)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = f();
            }
#pragma warning disable CA1031 // rethrown below
            catch (Exception e)
#pragma warning restore CA1031
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        }
        return result;
    }

    [Fact]
    public void AKernelBuiltOnRecycledStorageSeesWhatAFreshKernelSees()
    {
        var fresh = OnFreshThread(() => Workload(6, 0x1000, recycleFirst: false));
        var recycled = OnFreshThread(() => Workload(6, 0x1000, recycleFirst: true));
        Assert.Contains(fresh, s => s.StartsWith("mm1 L1", StringComparison.Ordinal));
        Assert.Contains(fresh, s => s.Contains(" tlb ", StringComparison.Ordinal));
        Assert.Equal(fresh, recycled);
    }

    [Fact]
    public void ARecycledKernelFailsLoudlyInsteadOfReadingAnotherKernelsTables()
    {
        OnFreshThread(() =>
        {
            var p = Proc.Boot();
            ulong x = p.MmapAnon(2);
            p.Write(x, 7);
            p.K.Recycle();
            var next = Proc.Boot();
            ulong y = next.MmapAnon(2);
            next.Write(y, 9);
            Assert.ThrowsAny<Exception>(() => p.Load(x));
            Assert.Equal(9UL, next.Read(y));
            return 0;
        });
    }
}

using MmCheck.Conformance.Native;
using Xunit.Abstractions;
using static MmCheck.Conformance.Native.LinuxAbi;
using static MmCheck.Conformance.Tests.TestOracle;

namespace MmCheck.Conformance.Tests;

public sealed class LayoutTests(ITestOutputHelper output)
{
    [Fact]
    public void Anonymous_mmap_returns_a_page_aligned_address_below_mmap_top()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var layout = o.Layout(0);
        var a = o.MapAnon(0, 4);
        Assert.Equal(0UL, a % P);
        Assert.True(a + 4 * P <= layout.MmapTop);
        Assert.True(layout.MmapTop < layout.TaskSize);
    }

    [Fact]
    public void First_mmap_is_placed_directly_below_mmap_top_and_the_second_directly_below_the_first()
    {
        using var o = Start(output);
        if (o is null)
            return;
        var top = o.Layout(0).MmapTop;
        var a = o.MapAnon(0, 4);
        var b = o.MapAnon(0, 4);
        Assert.Equal(top - 4 * P, a);
        Assert.Equal(a - 4 * P, b);
    }

    [Fact]
    public void Mmap_top_is_the_start_of_vvar_below_vdso_and_the_layout_is_reproducible()
    {
        MmapLayout first, second;
        IReadOnlyList<string> maps;
        using (var o = Start(output))
        {
            if (o is null)
                return;
            first = o.Layout(0);
            maps = o.Maps(0);
        }
        using (var o = NativeOracle.Start())
            second = o.Layout(0);

        output.WriteLine(string.Join(Environment.NewLine, maps));
        Assert.Equal(first, second);        // ADDR_NO_RANDOMIZE and a fixed stack rlimit
        var vvar = maps.Single(l => l.EndsWith("[vvar]", StringComparison.Ordinal));
        Assert.StartsWith($"{first.MmapTop:x}-", vvar, StringComparison.Ordinal);
        Assert.Contains(maps, l => l.EndsWith("[vdso]", StringComparison.Ordinal));
        Assert.Contains(maps, l => l.EndsWith("[stack]", StringComparison.Ordinal) &&
                                   l.Contains($"-{first.TaskSize:x} ", StringComparison.Ordinal));
        if (System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.X64)
            Assert.Equal(0x7ffffffff000UL, first.TaskSize);   // 47-bit default mmap window
        // A static binary: nothing in the mmap area but the special mappings at its top.
        Assert.DoesNotContain(maps, l => l.Contains(".so", StringComparison.Ordinal));
    }

    [Fact]
    public void Anonymous_mmap_of_a_multiple_of_2MiB_is_THP_aligned()
    {
        using var o = Start(output);
        if (o is null)
            return;
        if (!Directory.Exists("/sys/kernel/mm/transparent_hugepage"))
        {
            output.WriteLine("SKIPPED: kernel without CONFIG_TRANSPARENT_HUGEPAGE");
            return;
        }
        const ulong pmd = 2UL << 20;
        var top = o.Layout(0).MmapTop;
        var big = (ulong)o.Mmap(0, 0, 2 * pmd, RW, PrivAnon);
        Assert.Equal(0UL, big % pmd);
        Assert.Equal((top - 2 * pmd) & ~(pmd - 1), big);   // highest 2 MiB-aligned fit below mmap_top
        var odd = (ulong)o.Mmap(0, 0, pmd + P, RW, PrivAnon);
        Assert.Equal(big - pmd - P, odd);                    // not a PMD multiple: no alignment
    }
}

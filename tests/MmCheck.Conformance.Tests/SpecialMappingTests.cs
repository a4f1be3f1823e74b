using Linux;
using static Linux.Mman;

namespace MmCheck.Conformance.Tests;

/// <summary>mm/mmap.c:_install_special_mapping() in the model, as the conformance runner mirrors [vvar],
/// [vvar_vclock] and [vdso] with it.</summary>
public sealed class SpecialMappingTests
{
    private static readonly ProcessLayout L = ProcessLayout.Default;

    /// <summary>A mirrored process, handed over to a direct scheduler for Kernel.Run().</summary>
    private static (Kernel K, TaskStruct T) Boot()
    {
        var (k, t) = new ModelRunner(L).Boot();
        k.UseScheduler(new DirectScheduler());
        return (k, t);
    }

    private static long Sys(Kernel k, TaskStruct t, Func<ValueTask<long>> f) => k.Run(t, f);

    [Fact]
    public void The_mirrored_process_shows_the_special_mappings_with_their_names_and_flags()
    {
        var (k, t) = Boot();
        var maps = k.ProcMaps(t.Mm!).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(MapsLine.Parse).ToList();
        foreach (var sp in L.Specials)
        {
            var line = Assert.Single(maps, m => m.Name == sp.Name);
            Assert.Equal((sp.Start, sp.End, sp.Perms), (line.Start, line.End, line.Perms));
            var vma = k.VmaAt(t.Mm!, sp.Start)!;
            Assert.Equal(sp.VmFlags.Order(StringComparer.Ordinal), MmFlags.Format(vma.VmFlags).Split(' ').Order(StringComparer.Ordinal));
            Assert.Same(k.SpecialMappingVmops, vma.VmOps);
            Assert.True(k.VmaIsSpecialMapping(vma, (VmSpecialMapping)vma.VmPrivateData!));
            Assert.Equal(0UL, vma.VmPgoff);
        }
        // VM_DONTEXPAND is added by the installer, VM_SOFTDIRTY only with CONFIG_MEM_SOFT_DIRTY.
        var vdso = k.VmaAt(t.Mm!, L.MmapBase - 4096)!;
        Assert.NotEqual(VmFlags.VM_NONE, vdso.VmFlags & VmFlags.VM_DONTEXPAND);
        Assert.Equal(VmFlags.VM_NONE, vdso.VmFlags & VmFlags.VM_SOFTDIRTY);
    }

    [Fact]
    public void Top_down_allocation_starts_below_the_special_mappings()
    {
        var (k, t) = Boot();
        Assert.Equal((long)(L.MmapTop - 4096), Sys(k, t, () => k.SysMmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
    }

    [Fact]
    public void A_special_mapping_cannot_be_split_but_can_be_unmapped_whole()
    {
        var (k, t) = Boot();
        var vvar = L.Specials[0];
        Assert.Equal(-Errno.EINVAL, Sys(k, t, () => k.SysMunmap(vvar.Start, 4096)));
        Assert.Equal(-Errno.EINVAL, Sys(k, t, () => k.SysMprotect(vvar.Start + 4096, 4096, PROT_NONE)));
        Assert.NotNull(k.VmaAt(t.Mm!, vvar.Start));
        Assert.Equal(0, Sys(k, t, () => k.SysMunmap(vvar.Start, vvar.End - vvar.Start)));
        Assert.Null(k.VmaAt(t.Mm!, vvar.Start));
        Assert.Empty(k.Findings);
    }

    [Fact]
    public void Faults_on_pages_the_mapping_does_not_provide_are_SIGBUS_and_writes_to_read_only_ones_SIGSEGV()
    {
        var (k, t) = Boot();
        var vvar = L.Specials[0];
        var vdso = L.Specials[^1];
        Assert.Equal("[vvar]", vvar.Name);
        Assert.Equal("[vdso]", vdso.Name);
        // The mirror gives [vvar] no page array (the timekeeping data is not modelled): special_mapping_fault() SIGBUS.
        Assert.Equal(SIGBUS, k.Run(t, () => k.UserLoad(vvar.Start, 8)).Signal);
        // [vdso] has its stand-in pages: readable, but a write to the r-x mapping is a SIGSEGV.
        Assert.Equal(0, k.Run(t, () => k.UserLoad(vdso.Start, 8)).Signal);
        Assert.Equal(SIGSEGV, k.Run(t, () => k.UserStore(vdso.Start, 8, 1)).Signal);
        // [vvar] has no VM_MAYWRITE: it can never become writable.
        Assert.Equal(-Errno.EACCES, k.Run(t, () => k.SysMprotect(vvar.Start, vvar.End - vvar.Start, PROT_READ | PROT_WRITE)));
        Assert.Empty(k.Findings);
    }

    [Fact]
    public void The_generic_fault_handler_maps_the_provided_pages()
    {
        var k = new Kernel();
        var t = k.CreateProcess("p");
        var page = k.AllocPage()!.Value;
        k.Mem.Store(page.Pfn << 12, 8, 0x1234);
        var spec = new VmSpecialMapping { Name = "[test]", Pages = [page] };
        const ulong at = 0x10000000;
        int err = k.Run(t, async () =>
        {
            await k.MmapWriteLockKillable(t.Mm!);
            var (_, e) = await k._InstallSpecialMapping(t.Mm!, at, 2 * 4096, VmFlags.VM_READ | VmFlags.VM_MAYREAD, spec);
            await k.MmapWriteUnlock(t.Mm!);
            return e;
        });
        Assert.Equal(0, err);
        Assert.Equal(0x1234UL, k.Run(t, () => k.UserLoad(at, 8)).Value);
        Assert.Equal(SIGBUS, k.Run(t, () => k.UserLoad(at + 4096, 8)).Signal);   // past the page array
        Assert.Contains("[test]", k.ProcMaps(t.Mm!), StringComparison.Ordinal);
        // Overlapping an existing VMA: insert_vm_struct() refuses.
        err = k.Run(t, async () =>
        {
            await k.MmapWriteLockKillable(t.Mm!);
            var (_, e) = await k._InstallSpecialMapping(t.Mm!, at + 4096, 4096, VmFlags.VM_READ, spec);
            await k.MmapWriteUnlock(t.Mm!);
            return e;
        });
        Assert.Equal(-Errno.ENOMEM, err);
        Assert.Empty(k.Findings);
        // The page has no ->mapping (as a vDSO page in the kernel): rmap cannot find its mapping, in
        // the kernel as in the model; the model's rmap-complete check does not know that exception.
        Assert.All(k.CheckInvariants(), v => Assert.Equal("rmap-complete", v.Invariant));
    }

    [Fact]
    public void Fork_copies_the_special_mappings()
    {
        var (k, t) = Boot();
        var (child, ret) = k.Run(t, () => k.SysFork());
        Assert.True(ret > 0);
        foreach (var sp in L.Specials)
        {
            Assert.Contains(sp.Name, k.ProcMaps(child!.Mm!), StringComparison.Ordinal);
        }
        Assert.Empty(k.Findings);
    }
}

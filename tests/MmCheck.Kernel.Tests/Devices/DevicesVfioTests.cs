using Linux;
using static Linux.Mman;
using static MmCheck.Kernel.Tests.DevicesKit;

namespace MmCheck.Kernel.Tests;

/// <summary>vfio-pci BAR mmaps under every fault strategy (variant vfio_pci.fault), seed 001.</summary>
public class DevicesVfioTests
{
    private const ulong BarSize = 4UL << 20;

    /// <summary>
    /// A kernel with the strategy as a variant over the current mm, or over the mm of
    /// <paramref name="kernel"/> (a preset): a remap strategy depends on how remap_pfn_range()
    /// tracked PFN ranges in the releases that shipped it.
    /// </summary>
    private static (Proc P, PciDev Dev, VfioPciCoreDevice Vdev) Boot(string strategy, string kernel = "current")
    {
        var preset = Variants.Preset(kernel)!;
        var v = preset.With("vfio_pci.fault", strategy, out string? error);
        Assert.True(v is not null, error);
        var p = DevicesKit.Boot(v);
        var dev = p.K.PciAddDevice(1, 0, new PciBarSpec(BarSize, Mem64: true, Prefetch: true));
        return (p, dev, p.K.VfioPciBind(dev));
    }

    [Fact]
    public void VfioMmapInstallsNothingUntilTheFaultThenMapsTheBar()
    {
        var (p, dev, vdev) = Boot("insert_pfn");
        var (_, a) = p.MapVfioBar(vdev, 16);
        var vma = p.Mm.MmMt.VmaLookup(a)!;
        var want = VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        Assert.Equal(want, vma.VmFlags & want);
        Assert.Equal(vdev.Inode.IMapping, vma.VmFile!.FMapping);
        Assert.Empty(BarLeaves(p.K, p.Mm, dev));
        dev.PokeBar(0, 5 * PG, 0xabcd);
        Assert.Equal(0xabcdUL, p.Read(a + 5 * PG));
        Assert.Equal(dev.BarPfn(0) + 5, p.Pagemap(a + 5 * PG).Pfn);
        Assert.Single(BarLeaves(p.K, p.Mm, dev));
        // Claiming the BAR at the first mmap made it busy.
        Assert.Contains("vfio", p.K.ProcIomem());
        p.AssertClean();
    }

    [Fact]
    public void RemapInTheFaultUnderTheMmapReadLockIsTheSeed001LockAssert()
    {
        var (p, dev, vdev) = Boot("remap_vma_list");
        var (_, a) = p.MapVfioBar(vdev, 16);
        Assert.Equal(0UL, p.Read(a));
        var f = Assert.Single(p.K.Findings);
        Assert.Equal(Invariants.LockAssert, f.Invariant);
        Assert.Contains("mmap_lock", f.Message);
        Assert.Contains("read", f.Message);
        Assert.Equal(16, BarLeaves(p.K, p.Mm, dev).Count);
        Assert.Single(vdev.VmaList);
        // Further pages are already mapped: no more faults.
        long faults = vdev.FaultCalls;
        p.Read(a + 15 * PG);
        Assert.Equal(faults, vdev.FaultCalls);
    }

    [Fact]
    public void Type1PinOfABarMappingFaultsThroughFixupUserFaultAsInYanZhaosTrace()
    {
        var (p, dev, vdev) = Boot("remap_vma_list");
        var (_, a) = p.MapVfioBar(vdev, 16);
        var (ret, pfns) = p.K.Run(p.T, () => p.K.VfioIommuMapDma(a, 4, write: true));
        Assert.Equal(4, ret);
        Assert.Equal([dev.BarPfn(0), dev.BarPfn(0) + 1, dev.BarPfn(0) + 2, dev.BarPfn(0) + 3], pfns);
        var f = Assert.Single(p.K.Findings);
        Assert.Equal(Invariants.LockAssert, f.Invariant);
    }

    [Theory]
    [InlineData("insert_pfn")]
    [InlineData("insert_full_vma")]
    [InlineData("huge")]
    [InlineData("huge_v6.12")]
    public void Type1PinIsCleanWithFaultTimeInsertion(string strategy)
    {
        var (p, dev, vdev) = Boot(strategy);
        var (_, a) = p.MapVfioBar(vdev, 16);
        var (ret, pfns) = p.K.Run(p.T, () => p.K.VfioIommuMapDma(a, 16, write: true));
        Assert.Equal(16, ret);
        Assert.Equal(dev.BarPfn(0) + 15, pfns[^1]);
        p.AssertClean();
    }

    [Fact]
    public void DroppingTheMmapLockInsideTheFaultWorksAloneButLetsMunmapFreeTheVma()
    {
        var (p, dev, vdev) = Boot("remap_drop_mmap_lock");
        var (_, a) = p.MapVfioBar(vdev, 16);
        // Alone it looks fine: the write lock is held for io_remap_pfn_range(), VM_FAULT_COMPLETED.
        Assert.Equal(0UL, p.Read(a));
        p.AssertClean();
        Assert.Equal(0, p.Munmap(a, 16 * PG));

        var (_, b) = p.MapVfioBar(vdev, 16);
        var k = p.K;
        var mm = p.Mm;
        var ds = (DirectScheduler)k.Sched;
        var unmapper = k.CreateThread(p.T, "munmap");
        var trigger = k.CreateThread(p.T, "trigger");
        var reader = k.CreateThread(p.T, "reader");
        var release = k.CreateThread(p.T, "release");
        var gate = new Completion(k, "gate");
        var readerGate = new Completion(k, "reader-gate");
        int fixupRet = -1;
        ds.Run(p.T, async () =>
        {
            // VFIO type1 resolving the BAR: mmap read lock, then fixup_user_fault() (follow_fault_pfn()).
            await k.MmapReadLock(mm);
            // Another reader keeps the lock read-held past the handler's up_read(), so that munmap,
            // queued first, gets the lock before the handler's down_write() (which could otherwise
            // take it while the woken munmap has not run yet).
            ds.Spawn(reader, async () =>
            {
                await k.MmapReadLock(mm);
                await readerGate.Wait();
                await k.MmapReadUnlock(mm);
            }, "reader");
            ds.Spawn(unmapper, async () => await k.SysMunmap(b, 16 * PG), "munmap");
            ds.Spawn(trigger, () =>
            {
                gate.CompleteAll();
                // Runs once the handler sleeps in down_write(), queued behind munmap.
                ds.Spawn(release, () =>
                {
                    readerGate.CompleteAll();
                    return ValueTask.CompletedTask;
                }, "release");
                return ValueTask.CompletedTask;
            }, "trigger");
            await gate.Wait();
            var (r, unlocked) = await k.FixupUserFault(mm, b, FaultFlag.FAULT_FLAG_REMOTE, allowUnlock: true);
            fixupRet = r;
            Assert.True(unlocked);
            await k.MmapReadUnlock(mm);
        });
        Assert.Equal(0, fixupRet);
        // The munmap ran while the handler waited for the write lock; the handler then remapped the freed VMA.
        Assert.Contains(k.Findings, f => f.Invariant == Invariants.UseAfterFree && f.Message.Contains("KASAN"));
        Assert.Null(mm.MmMt.VmaLookup(b));
        Assert.Equal(16, BarLeaves(k, mm, dev).Count);
        // User space keeps a BAR mapping it unmapped: a load that must SIGSEGV reads the device.
        dev.PokeBar(0, 0, 0x5a);
        Assert.Equal(new UserAccessResult(0x5a, 0), p.Load(b));
    }

    [Fact]
    public void DroppingTheMmapLockOopsACallerThatAllowsNoRetry()
    {
        var (p, _, vdev) = Boot("remap_drop_mmap_lock");
        var (_, a) = p.MapVfioBar(vdev, 16);
        var k = p.K;
        // futex's fault_in_user_writeable(): fixup_user_fault(mm, addr, FAULT_FLAG_WRITE, NULL).
        Assert.Throws<TaskIncompleteException>(() => k.Run(p.T, async () =>
        {
            await k.MmapReadLock(p.Mm);
            await k.FixupUserFault(p.Mm, a, FaultFlag.FAULT_FLAG_WRITE, allowUnlock: false);
            await k.MmapReadUnlock(p.Mm);
        }));
        Assert.Contains(k.Findings, f => f.Invariant == Invariants.KernelOops && f.Message.Contains("FAULT_FLAG_ALLOW_RETRY"));
    }

    /// <summary>
    /// Two threads fault the same VMA while a third holds memory_lock for write: both see the PTE
    /// none and queue in the handler; the second populates again.
    /// </summary>
    private static (Linux.Kernel K, TaskStruct T1, TaskStruct T2) ConcurrentFaults(Proc p, VfioPciCoreDevice vdev, ulong a)
    {
        var k = p.K;
        var ds = (DirectScheduler)k.Sched;
        var holder = k.CreateKernelThread("memory_lock holder");
        var t1 = k.CreateThread(p.T, "t1");
        var t2 = k.CreateThread(p.T, "t2");
        var trigger = k.CreateKernelThread("trigger");
        var gate = new Completion(k, "gate");
        ds.Run(holder, async () =>
        {
            // As vfio_pci_memory_lock_and_enable() does around a ROM access.
            await vdev.MemoryLock.DownWrite();
            ds.Spawn(t1, async () => await k.UserLoad(a, 8), "t1");
            ds.Spawn(t2, async () => await k.UserLoad(a + 3 * PG, 8), "t2");
            ds.Spawn(trigger, () =>
            {
                gate.CompleteAll();
                return ValueTask.CompletedTask;
            }, "trigger");
            await gate.Wait();
            await vdev.MemoryLock.UpWrite();
        });
        return (k, t1, t2);
    }

    [Fact]
    public void WithoutTheVmaListCheckTwoFaultsRemapTheSameRangeAndHitBug()
    {
        // The v5.8-v5.12 handler on its own kernel: flags written directly, no PFN-range context.
        var (p, _, vdev) = Boot("remap_no_list_check", "v5.10");
        var (_, a) = p.MapVfioBar(vdev, 16);
        var thrown = new List<Finding>();
        EventHandler<System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs> onThrow = (_, e) =>
        {
            if (e.Exception is KernelBugException kb)
            {
                lock (thrown)
                {
                    thrown.Add(kb.Finding);
                }
            }
        };
        AppDomain.CurrentDomain.FirstChanceException += onThrow;
        Linux.Kernel k;
        TaskStruct t1, t2;
        try
        {
            (k, t1, t2) = ConcurrentFaults(p, vdev, a);
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= onThrow;
        }
        var bug = Assert.Single(k.Findings, f => f.Invariant == Invariants.Bug);
        // Thrown once, by the BUG_ON: remap_pte_range()'s frame stops the task, and none of the
        // frames above it (the fault handler, handle_mm_fault(), the user access) rethrows it.
        lock (thrown)
        {
            Assert.Single(thrown, f => ReferenceEquals(f, bug));
        }
        Assert.Contains("already set", bug.Message);
        Assert.True(t2.Oopsed);
        Assert.False(t1.Oopsed);
        // The list now holds the VMA twice.
        Assert.Equal(2, vdev.VmaList.Count);
        Assert.DoesNotContain(k.Findings, f => f.Invariant == Invariants.LockAssert);
        // make_task_dead() unwinds nothing: the oopsed task still holds the PTE table's lock, the
        // mmap lock and memory_lock it had at the BUG_ON, as on a real kernel.
        var held = t2.HeldLocks.Select(h => h.Lock).ToList();
        Assert.Contains(held, l => l.Class == LockClass.PtLock);
        Assert.Contains(held, l => l.Class == LockClass.MmapLock);
        Assert.Contains(vdev.MemoryLock, held);
        Assert.Empty(t1.HeldLocks);
        Assert.DoesNotContain(k.Findings, f => f.Invariant == Invariants.Deadlock);
    }

    [Fact]
    public void OnTheCurrentMmASecondWholeVmaRemapAfterTheFirstCompletedGetsEinval()
    {
        // The v5.8 handler over today's remap_pfn_range(): the first remap left a pfnmap_track_ctx
        // on the VMA, so the second fault's remap returns -EINVAL before touching a PTE (SIGBUS),
        // after remap_pfn_range_prepare_vma()'s vm_flags_set() asserted the write lock again.
        var (p, dev, vdev) = Boot("remap_no_list_check");
        var (_, a) = p.MapVfioBar(vdev, 16);
        var (k, t1, t2) = ConcurrentFaults(p, vdev, a);
        Assert.DoesNotContain(k.Findings, f => f.Invariant == Invariants.Bug);
        Assert.False(t1.Oopsed || t2.Oopsed);
        Assert.Equal(16, BarLeaves(k, p.Mm, dev).Count);
        Assert.NotNull(p.Mm.MmMt.VmaLookup(a)!.PfnmapTrackCtx);
        Assert.Equal(2, k.Findings.Count(f => f.Invariant == Invariants.LockAssert));
    }

    [Fact]
    public void TheVmaListCheckMakesTheSecondFaultANoOp()
    {
        var (p, dev, vdev) = Boot("remap_vma_list");
        var (_, a) = p.MapVfioBar(vdev, 16);
        var (k, t1, t2) = ConcurrentFaults(p, vdev, a);
        Assert.DoesNotContain(k.Findings, f => f.Invariant == Invariants.Bug);
        Assert.False(t1.Oopsed || t2.Oopsed);
        Assert.Single(vdev.VmaList);
        Assert.Equal(16, BarLeaves(k, p.Mm, dev).Count);
        Assert.All(k.Findings, f => Assert.Equal(Invariants.LockAssert, f.Invariant));
    }

    [Theory]
    [InlineData("insert_pfn")]
    [InlineData("insert_full_vma")]
    [InlineData("huge")]
    public void ConcurrentFaultsAreCleanWithVmfInsertPfn(string strategy)
    {
        var (p, dev, vdev) = Boot(strategy);
        var (_, a) = p.MapVfioBar(vdev, 16);
        var (k, t1, t2) = ConcurrentFaults(p, vdev, a);
        Assert.False(t1.Oopsed || t2.Oopsed);
        Assert.NotEmpty(BarLeaves(k, p.Mm, dev));
        p.AssertClean();
    }

    [Theory]
    [InlineData("huge", "current")]
    [InlineData("huge_v6.12", "v6.12")]
    [InlineData("insert_full_vma", "v6.10")]
    [InlineData("insert_pfn", "current")]
    [InlineData("remap_vma_list", "v6.9")]
    public void MemoryDisableRevokesEveryMappingAndFaultsGetSigbusUntilEnabled(string strategy, string kernel)
    {
        var (p, dev, vdev) = Boot(strategy, kernel);
        var (fd, a) = p.MapVfioBar(vdev, 1024, hint: 0x40_0000_0000UL);
        p.Read(a);
        p.Read(a + 700 * PG);
        Assert.NotEmpty(BarLeaves(p.K, p.Mm, dev));
        Assert.Equal(2, p.K.Run(p.T, () => p.K.VfioMemoryDisable(fd)));
        Assert.Empty(BarLeaves(p.K, p.Mm, dev));
        Assert.Empty(Violations(p.K, Invariants.RevokedIomemMapped));
        Assert.Equal(SIGBUS, p.Load(a).Signal);
        // Device register access through the fd fails too.
        var (r, _) = p.K.Run(p.T, () => p.K.SysPread(fd, 8, 0));
        Assert.Equal(-Errno.EIO, r);
        Assert.Equal(2, p.K.Run(p.T, () => p.K.VfioMemoryEnable(fd)));
        dev.PokeBar(0, 8, 9);
        Assert.Equal(9UL, p.Read(a + 8));
        Assert.Empty(Violations(p.K, Invariants.RevokedIomemMapped));
        Assert.All(p.K.Findings, f => Assert.Equal(Invariants.LockAssert, f.Invariant));
    }

    [Theory]
    [InlineData("insert_pfn", "current")]
    [InlineData("remap_vma_list", "v6.9")]
    public void ResetAndLowPowerRevokeToo(string strategy, string kernel)
    {
        var (p, dev, vdev) = Boot(strategy, kernel);
        var (fd, a) = p.MapVfioBar(vdev, 16);
        p.Read(a);
        Assert.Equal(0, p.K.Run(p.T, () => p.K.VfioDeviceReset(fd)));
        Assert.Empty(BarLeaves(p.K, p.Mm, dev));
        Assert.Equal(1, dev.Resets);
        p.Read(a);
        Assert.Equal(0, p.K.Run(p.T, () => p.K.VfioLowPowerEntry(fd)));
        Assert.Empty(BarLeaves(p.K, p.Mm, dev));
        Assert.Equal(SIGBUS, p.Load(a).Signal);
        Assert.Empty(Violations(p.K, Invariants.RevokedIomemMapped));
        Assert.Equal(0, p.K.Run(p.T, () => p.K.VfioLowPowerExit(fd)));
        Assert.True(p.Load(a).Ok);
    }

    [Fact]
    public void OnTheCurrentMmTheV69HandlerCannotRefaultAfterARevoke()
    {
        // The pfnmap_track_ctx outlives zap_vma_ptes(): once vma_list forgot the zapped VMA, the
        // next fault remaps the whole VMA again and remap_pfn_range_track() refuses (-EINVAL).
        // Released kernels never combined the two: v6.10 replaced the handler before v6.16.
        var (p, _, vdev) = Boot("remap_vma_list");
        var (fd, a) = p.MapVfioBar(vdev, 16);
        p.Read(a);
        Assert.Equal(2, p.K.Run(p.T, () => p.K.VfioMemoryDisable(fd)));
        Assert.Equal(2, p.K.Run(p.T, () => p.K.VfioMemoryEnable(fd)));
        Assert.Equal(SIGBUS, p.Load(a).Signal);
    }

    [Fact]
    public void ForkCopiesPfnmapPtesAfterOpenAndTheDeviceInodeRevokesTheChildToo()
    {
        var (p, dev, vdev) = Boot("insert_pfn");
        var (fd, a) = p.MapVfioBar(vdev, 16);
        p.Read(a + 2 * PG);
        var child = p.Fork();
        // ->open (none here) runs before copy_page_range(); VM_PFNMAP forces the copy.
        Assert.True(child.Pagemap(a + 2 * PG).Present);
        Assert.Equal(dev.BarPfn(0) + 2, child.Pagemap(a + 2 * PG).Pfn);
        Assert.Equal(2, p.K.Run(p.T, () => p.K.VfioMemoryDisable(fd)));
        Assert.False(child.Pagemap(a + 2 * PG).Present);
        Assert.Empty(Violations(p.K, Invariants.RevokedIomemMapped));
        Assert.Equal(SIGBUS, child.Load(a + 2 * PG).Signal);
        p.AssertClean();
    }

    [Theory]
    [InlineData("lockless", true)]
    [InlineData("recheck", true)]
    [InlineData("skip", false)]
    public void ForkGivesTheChildAHugeSpecialPmdOldUnlessTheKernelPredatesHugePfnmapCopy(string rule, bool copied)
    {
        var v = Variants.Current.With("vfio_pci.fault", "huge", out _)!.With("copy_huge_pmd.special", rule, out string? error);
        Assert.True(v is not null, error);
        var p = DevicesKit.Boot(v);
        var k = p.K;
        var dev = k.PciAddDevice(1, 0, new PciBarSpec(BarSize, Mem64: true, Prefetch: true));
        var vdev = k.VfioPciBind(dev);
        var (fd, a) = p.MapVfioBar(vdev, 1024, hint: 0x40_0000_0000UL);
        p.Read(a);
        Assert.Equal((a, dev.BarPfn(0), 2), Assert.Single(BarLeaves(k, p.Mm, dev)));
        var child = p.Fork();
        if (copied)
        {
            Assert.Equal((a, dev.BarPfn(0), 2), Assert.Single(BarLeaves(k, child.Mm, dev)));
            // pmd_mkold(): the child's copy starts not accessed; the parent's was.
            ulong Entry(MmStruct mm) => k.UserLeaves().Single(l => l.Mm == mm && l.Addr == a).Entry;
            Assert.NotEqual(0UL, Entry(p.Mm) & X86Pte._PAGE_ACCESSED);
            Assert.Equal(0UL, Entry(child.Mm) & X86Pte._PAGE_ACCESSED);
        }
        else
        {
            // Not copied: the child refaults the BAR, a PMD again.
            Assert.Empty(BarLeaves(k, child.Mm, dev));
            Assert.True(child.Load(a).Ok);
            Assert.Single(BarLeaves(k, child.Mm, dev));
        }
        Assert.Equal(2, k.Run(p.T, () => k.VfioMemoryDisable(fd)));
        Assert.Empty(BarLeaves(k, child.Mm, dev));
        Assert.Empty(Violations(k, Invariants.RevokedIomemMapped));
        p.AssertClean();
    }

    [Fact]
    public void HugePfnmapPmdsAreCopiedAtForkFromV612On()
    {
        Assert.Equal(Variants.CopyHugePmdSpecialRule.Skip, Variants.Preset("v6.11")!.CopyHugePmdSpecial);
        Assert.Equal(Variants.CopyHugePmdSpecialRule.Lockless, Variants.Preset("v6.12")!.CopyHugePmdSpecial);
        Assert.Equal(Variants.CopyHugePmdSpecialRule.Lockless, Variants.Current.CopyHugePmdSpecial);
    }

    [Fact]
    public void ForkUnderTheVmaListStrategyLeavesTheChildMappedPastTheRevoke()
    {
        var (p, dev, vdev) = Boot("remap_vma_list");
        var (fd, a) = p.MapVfioBar(vdev, 16);
        p.Read(a);
        var child = p.Fork();
        // vfio_pci_mmap_open() zapped the child VMA before copy_page_range() filled it (35e351780fa9).
        Assert.True(child.Pagemap(a).Present);
        Assert.Single(vdev.VmaList);
        Assert.Equal(2, p.K.Run(p.T, () => p.K.VfioMemoryDisable(fd)));
        Assert.False(p.Pagemap(a).Present);
        Assert.True(child.Pagemap(a).Present);
        var v = Violations(p.K, Invariants.RevokedIomemMapped);
        Assert.Contains($"mm#{child.Mm.Id}", Assert.Single(v));
        Assert.Contains("and 15 more page(s)", v[0]);
        // The child reads the BAR while memory decoding is off.
        Assert.True(child.Load(a).Ok);
    }

    [Fact]
    public void HugeFaultsMapPmdsAndAPudForAnAlignedGigabyteBar()
    {
        var p = DevicesKit.Boot();
        var dev = p.K.PciAddDevice(1, 0, new PciBarSpec(1UL << 30, Mem64: true, Prefetch: true));
        var vdev = p.K.VfioPciBind(dev);
        var (_, a) = p.MapVfioBar(vdev, (1UL << 30) / PG, hint: 0x40_0000_0000UL);
        Assert.Equal(0x40_0000_0000UL, a);
        p.Read(a + 12345 * PG);
        var leaf = Assert.Single(BarLeaves(p.K, p.Mm, dev));
        Assert.Equal(3, leaf.Level);
        Assert.Equal(dev.BarPfn(0) + 12345, p.Pagemap(a + 12345 * PG).Pfn);
        Assert.Equal(1, vdev.HugeFaultCalls);
        p.AssertClean();
    }
}

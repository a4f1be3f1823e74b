namespace Linux;

// kernel/exit.c (do_exit → exit_mm, exit_files) and kernel/fork.c (mmput, __mmput, mmdrop).
public sealed partial class Kernel
{
    /// <summary>do_exit(): the task gives up its mm and files and dies.</summary>
    /// <remarks>Context: process context, no locks held; does not return to user space.</remarks>
    [KernelSymbol("do_exit", "kernel/exit.c")]
    public async ValueTask DoExit()
    {
        var t = Current!;
        await ExitMm(t);
        ExitFiles(t);
        await RunDeferredFput();
        LockdepAssertNoneHeld(t, "do_exit");
    }

    /// <summary>exit_mm(): clears tsk-&gt;mm under the mmap read lock, as kernel/exit.c:exit_mm()
    /// does, then mmput().</summary>
    /// <remarks>Context: no locks held; may sleep. The kernel also takes task_lock() around the
    /// store to tsk-&gt;mm, for readers of tsk-&gt;mm such as get_task_mm(); the model has no such
    /// reader and takes no task lock.</remarks>
    [KernelSymbol("exit_mm", "kernel/exit.c")]
    private async ValueTask ExitMm(TaskStruct t)
    {
        var mm = t.Mm;
        if (mm is null)
        {
            return;
        }
        await MmapReadLock(mm);
        t.Mm = null;
        await MmapReadUnlock(mm);
        await Mmput(mm);
    }

    /// <summary>mmput(): the last user tears the address space down.</summary>
    /// <remarks>Context: no locks held; may sleep (exit_mmap() takes the mmap write lock).</remarks>
    [KernelSymbol("mmput", "kernel/fork.c")]
    public async ValueTask Mmput(MmStruct mm)
    {
        if (--mm.MmUsers > 0)
        {
            return;
        }
        await ExitMmap(mm);
        Mmdrop(mm);
    }

    /// <summary>mmput() for an mm no task ever used (a failed fork).</summary>
    private async ValueTask MmputNoTask(MmStruct mm)
    {
        await ExitMmap(mm);
        Mmdrop(mm);
    }

    /// <summary>mmdrop(): the last mm_count reference frees the mm.</summary>
    /// <remarks>Context: any; does not sleep. The last reference frees the mm (__mmdrop()).</remarks>
    [KernelSymbol("mmdrop", "include/linux/sched/mm.h")]
    private void Mmdrop(MmStruct mm)
    {
        if (--mm.MmCount > 0)
        {
            return;
        }
        __Mmdrop(mm);
    }

    /// <summary>__mmdrop(): the PGD goes (pgd_free() leaves pgd_list), then check_mm() looks at
    /// what is left before the mm is freed.</summary>
    /// <remarks>Context: the last mm_count reference is gone (no task uses the mm; exit_mmap() is done). The kernel
    /// takes pgd_lock to leave pgd_list; the model does not.</remarks>
    [KernelSymbol("__mmdrop", "kernel/fork.c")]
    private void __Mmdrop(MmStruct mm)
    {
        PgdList.Remove(mm);
        foreach (var cpu in Cpus)
        {
            cpu.Tlb.InvalidateMm(mm.Id);
        }
        FreePageTable(mm.Pgd);
        CheckMm(mm);
        Mms.Remove(mm);
    }

    /// <summary>
    /// check_mm(): every rss counter must be back to zero once exit_mmap() has zapped every VMA. A
    /// page still counted was mapped where no VMA covers it (exit_mmap() never saw it) or was
    /// accounted wrongly; the kernel prints "BUG: Bad rss-counter state" (pr_alert, the task goes on),
    /// here a <see cref="Invariants.BadRssCounter"/> finding. The pgtables_bytes check is not
    /// modelled (the model does not count page-table bytes).
    /// </summary>
    /// <remarks>Context: __mmdrop(): the mm has no users; no locks.</remarks>
    [KernelSymbol("check_mm", "kernel/fork.c")]
    private void CheckMm(MmStruct mm)
    {
        // The enum's names are resident_page_types[], the names check_mm() prints.
        for (int i = 0; i < mm.RssStat.Length; i++)
        {
            long x = mm.RssStat[i];
            if (x != 0)
            {
                // The kernel adds Comm and Pid; the finding carries the pid, and leaving the name
                // out keeps one violation class whichever thread happened to drop the mm last.
                Violation(Invariants.BadRssCounter, $"Bad rss-counter state {mm} type:{(MmCounter)i} val:{x}", "check_mm");
            }
        }
    }

    /// <summary>exit_files(): every descriptor is closed.</summary>
    /// <remarks>Context: do_exit(): process context, no locks held; the last fput()s are deferred to task work. The
    /// kernel clears tsk-&gt;files under task_lock(); the model takes no lock.</remarks>
    [KernelSymbol("exit_files", "kernel/exit.c")]
    private void ExitFiles(TaskStruct t)
    {
        var files = t.Files;
        bool lastUser = !Tasks.Any(o => o != t && o.Files == files && o.SchedState != TaskSchedState.Dead && o.Mm is not null);
        if (!lastUser)
        {
            return;
        }
        for (int i = 0; i < files.Fd.Count; i++)
        {
            if (files.Fd[i] is { } f)
            {
                files.Fd[i] = null;
                Fput(f);
            }
        }
    }
}

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

    /// <summary>exit_mm(): detach the mm from the task, then mmput().</summary>
    /// <remarks>Context: no locks held; may sleep.</remarks>
    [KernelSymbol("exit_mm", "kernel/exit.c")]
    private async ValueTask ExitMm(TaskStruct t)
    {
        var mm = t.Mm;
        if (mm is null)
        {
            return;
        }
        t.Mm = null;
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

    /// <summary>mmdrop() → __mmdrop(): the PGD goes (pgd_free() leaves pgd_list).</summary>
    [KernelSymbol("mmdrop", "include/linux/sched/mm.h")]
    private void Mmdrop(MmStruct mm)
    {
        if (--mm.MmCount > 0)
        {
            return;
        }
        PgdList.Remove(mm);
        foreach (var cpu in Cpus)
        {
            cpu.Tlb.InvalidateMm(mm.Id);
        }
        FreePageTable(mm.Pgd);
        Mms.Remove(mm);
    }

    /// <summary>exit_files(): every descriptor is closed.</summary>
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

namespace Linux;

/// <summary>struct files_struct: a process's file descriptors, shared by its threads.</summary>
[KernelSymbol("files_struct", "include/linux/fdtable.h")]
public sealed class FilesStruct
{
    public readonly List<File?> Fd = [];

    /// <summary>get_unused_fd_flags() + fd_install(): the lowest free descriptor.</summary>
    public int Install(File f)
    {
        for (int i = 0; i < Fd.Count; i++)
        {
            if (Fd[i] is null)
            {
                Fd[i] = f;
                return i;
            }
        }
        Fd.Add(f);
        return Fd.Count - 1;
    }

    public File? Get(long fd) => fd >= 0 && fd < Fd.Count ? Fd[(int)fd] : null;

    /// <summary>dup_fd(): the child's table refers to the same open files.</summary>
    public FilesStruct Dup()
    {
        var n = new FilesStruct();
        foreach (var f in Fd)
        {
            if (f is not null)
            {
                f.FCount++;
            }
            n.Fd.Add(f);
        }
        return n;
    }
}

/// <summary>
/// struct task_struct: one scenario thread. Each runs on its own <see cref="Cpu"/>.
/// </summary>
[KernelSymbol("task_struct", "include/linux/sched.h")]
public sealed class TaskStruct
{
    public readonly int Pid;
    public int Tgid;
    public string Comm;
    /// <summary>task->mm: null for kernel threads and after exit_mm().</summary>
    public MmStruct? Mm;
    public FilesStruct Files;
    public readonly Cpu Cpu;
    /// <summary>lockdep's held_locks.</summary>
    public readonly List<HeldLock> HeldLocks = [];
    /// <summary>preempt_count(): spinlocks held.</summary>
    public int PreemptCount;
    /// <summary>Where the task stands with its scheduler.</summary>
    public TaskSchedState SchedState;
    /// <summary>The continuation to resume when the scheduler picks this task. Scheduler-owned.</summary>
    public Action? Continuation;
    /// <summary>What the task is sleeping on, for deadlock reports. Scheduler-owned.</summary>
    public object? WaitChannel;
    /// <summary>A scheduler's own per-task data.</summary>
    public object? SchedData;
    /// <summary>Writes so far to objects the registered invariants read, counted by a scheduler
    /// that records footprints (<see cref="Scheduler.CountCheckedWrite"/>): whether a page-table
    /// lock holder has begun an update (<see cref="Kernel.PageTablesBusy"/>). Scheduler-owned.</summary>
    public long CheckedWrites;
    /// <summary>The task died in BUG/oops.</summary>
    public bool Oopsed;
    /// <summary>A fatal signal is pending (SIGKILL from the OOM killer).</summary>
    public bool FatalSignalPending;
    /// <summary>struct vm_fault instances: the kernel keeps them on the stack; the model reuses them.</summary>
    internal readonly Stack<VmFaultInfo> FaultFrames = new();
    /// <summary>Leaf page-table entries written during the current kernel entry (for the TLB check),
    /// as runs of consecutive pages.</summary>
    internal List<LeafWriteRun>? LeafWrites;

    internal TaskStruct(int pid, string comm, MmStruct? mm, FilesStruct files, Cpu cpu)
    {
        Pid = pid;
        Tgid = pid;
        Comm = comm;
        Mm = mm;
        Files = files;
        Cpu = cpu;
    }

    public override string ToString() => $"{Comm}[{Pid}]";
}

using System.Text;
using Linux;

namespace MmCheck.Explorer;

/// <summary>
/// Draws a schedule the way kernel comments draw races: one column per thread, time flowing down,
/// each step under its thread with the kernel function, what it did at its scheduling point and on
/// which lock or object, and beneath it what changed (PTEs, VMAs, refcounts) and any finding.
/// </summary>
public static class TracePrinter
{
    /// <summary>Width of a thread's column.</summary>
    public const int ColumnWidth = 50;

    public static string Print(TraceRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var sb = new StringBuilder();
        if (run.Title is { } title)
        {
            sb.Append(title).Append('\n').Append('\n');
        }
        int cols = Math.Max(1, run.Threads.Count);
        var header = new string[cols];
        var rule = new string[cols];
        for (int t = 0; t < cols; t++)
        {
            header[t] = t < run.Threads.Count ? run.Threads[t] : "";
            rule[t] = new string('-', Math.Min(ColumnWidth - 2, Math.Max(header[t].Length, 8)));
        }
        Row(sb, cols, header);
        Row(sb, cols, rule);
        foreach (var step in run.Steps)
        {
            var lines = new List<string> { $"{step.Index,3} {Describe(step)}" };
            foreach (var c in step.Choices)
            {
                lines.Add($"      choose {c.What}: {c.Value} of {c.Count}");
            }
            foreach (var e in step.Effects)
            {
                lines.Add("      " + e);
            }
            foreach (var f in step.Findings)
            {
                lines.Add($"      !! {f.Invariant}: {f.Message}");
            }
            foreach (var line in lines)
            {
                foreach (var piece in Wrap(line, ColumnWidth - 1))
                {
                    var cells = new string[cols];
                    cells[Math.Min(step.Thread, cols - 1)] = piece;
                    Row(sb, cols, cells);
                }
            }
        }
        sb.Append('\n');
        if (run.Ending is { } ending)
        {
            sb.Append("end: ").Append(ending).Append('\n');
        }
        if (run.Outcome is { } outcome)
        {
            sb.Append("outcome: ").Append(outcome).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>"function: what it does" for one step.</summary>
    public static string Describe(StepView step)
    {
        ArgumentNullException.ThrowIfNull(step);
        string obj = step.Object;
        string action = step.Kind switch
        {
            SchedPointKind.TaskStart => "starts",
            // A replay names the call (every lock comes through Scheduler.LockPoint); a view built
            // by other means may not.
            SchedPointKind.LockAcquire or SchedPointKind.LockRelease =>
                $"{step.LockCall ?? (step.Kind == SchedPointKind.LockAcquire ? "lock" : "unlock")}({obj}){(step.AfterSleep ? ": woken" : "")}",
            SchedPointKind.ReadOnce => $"READ_ONCE {obj}",
            SchedPointKind.WriteOnce => $"WRITE_ONCE {obj}",
            SchedPointKind.HardwareWalk => "page-table walk",
            SchedPointKind.GupFast => $"gup-fast walk {obj}",
            SchedPointKind.UserAccess => "user access",
            SchedPointKind.DeviceAccess => $"device access {obj}",
            SchedPointKind.Syscall => "syscall",
            SchedPointKind.Preempt when step.AfterSleep => "wakes up",
            SchedPointKind.Preempt => obj.Length > 0 ? $"may resched ({obj})" : "may resched",
            _ => step.Kind.ToString(),
        };
        string s = step.Kind == SchedPointKind.TaskStart ? action : $"{step.Function}: {action}";
        return step.Preempted ? s + "  [preempts]" : s;
    }

    private static void Row(StringBuilder sb, int cols, string?[] cells)
    {
        var line = new StringBuilder();
        for (int t = 0; t < cols; t++)
        {
            string c = cells[t] ?? "";
            line.Append(c);
            if (t + 1 < cols)
            {
                line.Append(' ', Math.Max(1, ColumnWidth - c.Length));
            }
        }
        sb.Append(line.ToString().TrimEnd()).Append('\n');
    }

    /// <summary>How far a line may run past its column rather than wrap: each row holds one thread's
    /// text, so the overhang falls on blank space, and a lock call such as
    /// "spin_unlock(mm#1.page_table_lock)" is not cut before its last characters.</summary>
    private const int Overhang = 4;

    private static IEnumerable<string> Wrap(string line, int width)
    {
        if (line.Length <= width + Overhang)
        {
            yield return line;
            yield break;
        }
        // Continuations line up under the text of the step or effect they continue.
        int indent = 0;
        while (indent < line.Length && line[indent] == ' ')
        {
            indent++;
        }
        string pad = new(' ', Math.Min(Math.Max(indent + 2, 6), width / 2));
        int pos = 0;
        bool first = true;
        while (pos < line.Length)
        {
            int room = first ? width : width - pad.Length;
            int take = line.Length - pos <= room + Overhang ? line.Length - pos : room;
            if (pos + take < line.Length)
            {
                int space = line.LastIndexOf(' ', pos + take, take);
                if (space > pos + room / 3)
                {
                    take = space - pos;
                }
            }
            string piece = line.Substring(pos, take);
            yield return first ? piece : pad + piece.TrimStart();
            pos += take;
            first = false;
        }
    }
}

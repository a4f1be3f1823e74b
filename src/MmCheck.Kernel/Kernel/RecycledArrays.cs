namespace Linux;

/// <summary>
/// Model-only: the storage arrays of finished kernel instances (page-table entries, mem_map chunks,
/// TLB sets), kept per thread for the next instance built on it (<see cref="Kernel.Recycle"/>). An
/// explorer builds a kernel per execution; before this, most of what an execution allocated was
/// these arrays, and zeroing fresh memory and collecting it cost more than much of the kernel's work.
/// </summary>
/// <remarks>Arrays come back zeroed, as fresh ones are, so nothing an execution computes depends on
/// which array it got: results stay identical with or without recycling, on any worker.</remarks>
internal static class RecycledArrays<T>
{
    /// <summary>At most this many arrays of one length are kept per thread.</summary>
    private const int MaxKept = 1024;

    /// <summary>Free arrays by exact length; an instance uses a few lengths, so a list is enough.</summary>
    [ThreadStatic]
    private static List<(int Length, Stack<T[]> Free)>? t_free;

    /// <summary>A zeroed array of <paramref name="length"/> elements.</summary>
    public static T[] Rent(int length)
    {
        var free = Find(length, create: false);
        return free is { Count: > 0 } ? free.Pop() : new T[length];
    }

    /// <summary>Keeps <paramref name="array"/>, zeroed, for a later <see cref="Rent"/> on this thread.</summary>
    public static void Return(T[] array)
    {
        var free = Find(array.Length, create: true)!;
        if (free.Count < MaxKept)
        {
            Array.Clear(array);
            free.Push(array);
        }
    }

    private static Stack<T[]>? Find(int length, bool create)
    {
        var lists = t_free;
        if (lists is null)
        {
            if (!create)
            {
                return null;
            }
            t_free = lists = [];
        }
        foreach (var (len, free) in lists)
        {
            if (len == length)
            {
                return free;
            }
        }
        if (!create)
        {
            return null;
        }
        var s = new Stack<T[]>();
        lists.Add((length, s));
        return s;
    }
}

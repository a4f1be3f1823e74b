using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

/// <summary>
/// Random small concurrent programs over shared words and kernel mutexes (and, with
/// <c>rwsem</c>, rw_semaphores taken for read, for write and by trylock), for checking DPOR
/// against plain DFS: both must see the same final states and the same deadlocks.
/// </summary>
internal static class RandomPrograms
{
    private static readonly LockClass[] s_classes =
    [
        LockClass.Define("rp_lock_0", sleeps: true),
        LockClass.Define("rp_lock_1", sleeps: true),
    ];

    private static readonly LockClass[] s_rwClasses =
    [
        LockClass.Define("rp_rwsem_0", sleeps: true),
        LockClass.Define("rp_rwsem_1", sleeps: true),
    ];

    private enum Op
    {
        Read,
        Write,
        Add,
        LockUnlock,
        Choose,
        Spawn,
        /// <summary>down_read(), the body, up_read().</summary>
        ReadSection,
        /// <summary>down_read_trylock() (its result a register), the body and up_read() if taken.</summary>
        TryReadSection,
    }

    private sealed record Instr(Op Op, int Word, int Lock, int Value, Instr[]? Child = null, Instr[]? Inside = null);

    /// <summary>Lock indices below this are mutexes; from it on, rw_semaphores (rwsem programs).</summary>
    private const int FirstRwsem = 2;

    public static ExplorationTarget Make(int seed, int threads = 3, int ops = 2, int words = 2, bool rwsem = false)
    {
        var rng = new Random(seed);
        var program = new Instr[threads][];
        for (int t = 0; t < threads; t++)
        {
            program[t] = Body(rng, ops, words, allowSpawn: t == 0, depth: 0, outer: -1, rwsem);
        }
        return Target($"random-program{(rwsem ? "-rwsem" : "")}-{seed}", program, words);
    }

    /// <summary>
    /// One rw_semaphore and one word; each thread a string of sections: <c>R</c> down_read, load
    /// the word, up_read; <c>W</c> down_write, store the thread's number, up_write; <c>T</c>
    /// down_read_trylock (its result a register), and if taken load the word and up_read.
    /// </summary>
    public static ExplorationTarget RwSections(params string[] threads)
    {
        var program = new Instr[threads.Length][];
        for (int t = 0; t < threads.Length; t++)
        {
            program[t] = [.. threads[t].Select(c => c switch
            {
                'R' => new Instr(Op.ReadSection, 0, FirstRwsem, 0, Inside: [new Instr(Op.Read, 0, 0, 0)]),
                'W' => new Instr(Op.LockUnlock, 0, FirstRwsem, 0, Inside: [new Instr(Op.Write, 0, 0, t + 1)]),
                'T' => new Instr(Op.TryReadSection, 0, FirstRwsem, 0, Inside: [new Instr(Op.Read, 0, 0, 0)]),
                _ => throw new ArgumentException($"no section '{c}'", nameof(threads)),
            })];
        }
        return Target($"rwsem-{string.Join('-', threads)}", program, words: 1);
    }

    private static ExplorationTarget Target(string name, Instr[][] program, int words)
    {
        int threads = program.Length;
        return new LambdaTarget(name, (s, g) =>
        {
            var k = new Linux.Kernel(new KernelConfig { LockGraph = g });
            var locks = new Linux.Mutex[s_classes.Length];
            for (int i = 0; i < locks.Length; i++)
            {
                locks[i] = new Linux.Mutex(k, s_classes[i], $"L{i}");
            }
            var rwsems = new RwSemaphore[s_rwClasses.Length];
            for (int i = 0; i < rwsems.Length; i++)
            {
                rwsems[i] = new RwSemaphore(k, s_rwClasses[i], $"R{i}");
            }
            var mem = new ulong[words];
            var regs = new List<(string, ulong)>[threads + 1];
            var tasks = new TaskStruct[threads + 1];
            for (int t = 0; t <= threads; t++)
            {
                tasks[t] = k.CreateKernelThread($"T{t}");
                regs[t] = [];
            }
            k.UseScheduler(s);
            for (int t = 0; t < threads; t++)
            {
                int tt = t;
                s.Spawn(tasks[t], () => Run(k, s, program[tt], mem, locks, rwsems, regs, tasks, tt), $"T{t}");
            }
            return new Execution(k, () =>
            {
                var values = new List<(string, string)>();
                for (int t = 0; t <= threads; t++)
                {
                    for (int i = 0; i < regs[t].Count; i++)
                    {
                        values.Add(($"T{t}:{regs[t][i].Item1}{i}", regs[t][i].Item2.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    }
                }
                for (int w = 0; w < words; w++)
                {
                    values.Add(($"w{w}", mem[w].ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }
                return Outcome.Of([.. values]);
            });
        });
    }

    /// <summary>A random thread body. With <paramref name="rwsem"/>, lock indices from
    /// <see cref="FirstRwsem"/> on are rw_semaphores (taken for write by <see cref="Op.LockUnlock"/>)
    /// and read sections appear; without, the draws are those the mutex programs always made.</summary>
    private static Instr[] Body(Random rng, int ops, int words, bool allowSpawn, int depth, int outer, bool rwsem)
    {
        var list = new List<Instr>();
        int n = s_classes.Length + (rwsem ? s_rwClasses.Length : 0);
        for (int i = 0; i < ops; i++)
        {
            var op = rwsem ? RwOp(rng.Next(allowSpawn ? 14 : 13), depth) : MutexOp(rng.Next(allowSpawn ? 12 : 11), depth);
            // Nested sections never take a lock already held (recursion is a self-deadlock).
            int lk;
            if (op is Op.ReadSection or Op.TryReadSection)
            {
                lk = FirstRwsem + rng.Next(s_rwClasses.Length);
                if (lk == outer)
                {
                    lk = FirstRwsem + (lk - FirstRwsem + 1) % s_rwClasses.Length;
                }
            }
            else
            {
                lk = outer < 0 ? rng.Next(n) : (outer + 1 + rng.Next(n - 1)) % n;
            }
            Instr[]? child = op == Op.Spawn ? Body(rng, 1, words, false, 1, -1, rwsem) : null;
            Instr[]? inside = op is Op.LockUnlock or Op.ReadSection or Op.TryReadSection
                ? Body(rng, 1, words, false, depth + 1, lk, rwsem)
                : null;
            list.Add(new Instr(op, rng.Next(words), lk, 1 + rng.Next(3), child, inside));
            if (op == Op.Spawn)
            {
                allowSpawn = false;
            }
        }
        return [.. list];
    }

    private static Op MutexOp(int r, int depth) => r switch
    {
        < 3 => Op.Read,
        < 6 => Op.Write,
        < 8 => Op.Add,
        < 10 => depth <= 1 ? Op.LockUnlock : Op.Read,
        10 => Op.Choose,
        _ => Op.Spawn,
    };

    private static Op RwOp(int r, int depth) => r switch
    {
        < 2 => Op.Read,
        < 4 => Op.Write,
        < 5 => Op.Add,
        < 7 => depth <= 1 ? Op.LockUnlock : Op.Read,
        < 10 => depth <= 1 ? Op.ReadSection : Op.Read,
        < 12 => depth <= 1 ? Op.TryReadSection : Op.Write,
        12 => Op.Choose,
        _ => Op.Spawn,
    };

    private static async ValueTask Run(Linux.Kernel k, ExplorerScheduler s, Instr[] body, ulong[] mem, Linux.Mutex[] locks,
        RwSemaphore[] rwsems, List<(string, ulong)>[] regs, TaskStruct[] tasks, int self)
    {
        foreach (var ins in body)
        {
            ulong obj = ObjId.Make(ObjId.Kind.Other, 0x5000UL + (ulong)ins.Word);
            switch (ins.Op)
            {
                case Op.Read:
                    await k.Sched.Point(SchedPointKind.ReadOnce, obj, "read");
                    k.Sched.Access(obj, write: false);
                    regs[self].Add(("r", mem[ins.Word]));
                    break;
                case Op.Write:
                    await k.Sched.Point(SchedPointKind.WriteOnce, obj, "write");
                    k.Sched.Access(obj, write: true);
                    mem[ins.Word] = (ulong)ins.Value;
                    break;
                case Op.Add:
                    await k.Sched.Point(SchedPointKind.WriteOnce, obj, "add");
                    k.Sched.Access(obj, write: true);
                    mem[ins.Word] += (ulong)ins.Value;
                    break;
                case Op.LockUnlock when ins.Lock >= FirstRwsem:
                    await rwsems[ins.Lock - FirstRwsem].DownWrite("written");
                    await Run(k, s, ins.Inside!, mem, locks, rwsems, regs, tasks, self);
                    await rwsems[ins.Lock - FirstRwsem].UpWrite("written");
                    break;
                case Op.LockUnlock:
                    await locks[ins.Lock].Lock("locked");
                    await Run(k, s, ins.Inside!, mem, locks, rwsems, regs, tasks, self);
                    await locks[ins.Lock].Unlock("locked");
                    break;
                case Op.ReadSection:
                    await rwsems[ins.Lock - FirstRwsem].DownRead("read");
                    await Run(k, s, ins.Inside!, mem, locks, rwsems, regs, tasks, self);
                    await rwsems[ins.Lock - FirstRwsem].UpRead("read");
                    break;
                case Op.TryReadSection:
                    bool got = await rwsems[ins.Lock - FirstRwsem].DownReadTrylock("tried");
                    regs[self].Add(("t", got ? 1UL : 0UL));
                    if (got)
                    {
                        await Run(k, s, ins.Inside!, mem, locks, rwsems, regs, tasks, self);
                        await rwsems[ins.Lock - FirstRwsem].UpRead("tried");
                    }
                    break;
                case Op.Choose:
                    int v = k.Sched.Choose("value", 2);
                    await k.Sched.Point(SchedPointKind.WriteOnce, obj, "choose");
                    k.Sched.Access(obj, write: true);
                    mem[ins.Word] = (ulong)(10 + v);
                    break;
                case Op.Spawn:
                    int child = tasks.Length - 1;
                    var childBody = ins.Child!;
                    s.Spawn(tasks[child], () => Run(k, s, childBody, mem, locks, rwsems, regs, tasks, child), $"T{child}");
                    break;
            }
        }
    }
}

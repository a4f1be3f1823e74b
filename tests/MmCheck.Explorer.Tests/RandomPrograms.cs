using Linux;
using MmCheck.Explorer;

namespace MmCheck.Explorer.Tests;

/// <summary>
/// Random small concurrent programs over shared words and kernel mutexes, for checking DPOR
/// against plain DFS: both must see the same final states and the same deadlocks.
/// </summary>
internal static class RandomPrograms
{
    private static readonly LockClass[] s_classes =
    [
        LockClass.Define("rp_lock_0", sleeps: true),
        LockClass.Define("rp_lock_1", sleeps: true),
    ];

    private enum Op
    {
        Read,
        Write,
        Add,
        LockUnlock,
        Choose,
        Spawn,
    }

    private sealed record Instr(Op Op, int Word, int Lock, int Value, Instr[]? Child = null, Instr[]? Inside = null);

    public static ExplorationTarget Make(int seed, int threads = 3, int ops = 2, int words = 2)
    {
        var rng = new Random(seed);
        var program = new Instr[threads][];
        for (int t = 0; t < threads; t++)
        {
            program[t] = Body(rng, ops, words, allowSpawn: t == 0, depth: 0, outer: -1);
        }
        return new LambdaTarget($"random-program-{seed}", (s, g) =>
        {
            var k = new Linux.Kernel(new KernelConfig { LockGraph = g });
            var locks = new Linux.Mutex[s_classes.Length];
            for (int i = 0; i < locks.Length; i++)
            {
                locks[i] = new Linux.Mutex(k, s_classes[i], $"L{i}");
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
                s.Spawn(tasks[t], () => Run(k, s, program[tt], mem, locks, regs, tasks, tt), $"T{t}");
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

    private static Instr[] Body(Random rng, int ops, int words, bool allowSpawn, int depth, int outer)
    {
        var list = new List<Instr>();
        for (int i = 0; i < ops; i++)
        {
            int r = rng.Next(allowSpawn ? 12 : 11);
            var op = r switch
            {
                < 3 => Op.Read,
                < 6 => Op.Write,
                < 8 => Op.Add,
                < 10 => depth <= 1 ? Op.LockUnlock : Op.Read,
                10 => Op.Choose,
                _ => Op.Spawn,
            };
            // Nested locks never repeat one already held (that would be a self-deadlock).
            int n = s_classes.Length;
            int lk = outer < 0 ? rng.Next(n) : (outer + 1 + rng.Next(n - 1)) % n;
            Instr[]? child = op == Op.Spawn ? Body(rng, 1, words, false, 1, -1) : null;
            Instr[]? inside = op == Op.LockUnlock ? Body(rng, 1, words, false, depth + 1, lk) : null;
            list.Add(new Instr(op, rng.Next(words), lk, 1 + rng.Next(3), child, inside));
            if (op == Op.Spawn)
            {
                allowSpawn = false;
            }
        }
        return [.. list];
    }

    private static async ValueTask Run(Linux.Kernel k, ExplorerScheduler s, Instr[] body, ulong[] mem, Linux.Mutex[] locks,
        List<(string, ulong)>[] regs, TaskStruct[] tasks, int self)
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
                case Op.LockUnlock:
                    await locks[ins.Lock].Lock("locked");
                    await Run(k, s, ins.Inside!, mem, locks, regs, tasks, self);
                    await locks[ins.Lock].Unlock("locked");
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
                    s.Spawn(tasks[child], () => Run(k, s, childBody, mem, locks, regs, tasks, child), $"T{child}");
                    break;
            }
        }
    }
}

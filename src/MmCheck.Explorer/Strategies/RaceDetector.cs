using System.Numerics;

namespace MmCheck.Explorer;

/// <summary>
/// Happens-before and races of one execution, for source-DPOR (Abdulla et al., POPL 2014).
/// </summary>
/// <remarks>
/// Each step gets a vector clock: its thread's previous step, the step that spawned or woke it, and
/// every earlier step it depends on (a common object, one of the two writing). Per object the last
/// writer and the readers since are kept, so the steps a new step depends on are found without a
/// scan. Two steps of different threads race when they are dependent and nothing else orders them;
/// for each race the initials of the reversed sequence (notdep(e).e') are computed, which is what
/// source-DPOR adds to the backtrack set of the node before e.
/// An execution that replays the previous one's first steps keeps what they added: every change
/// to the per-object tables is logged, and <see cref="Rewind"/> undoes those of the later steps.
/// </remarks>
internal sealed class RaceDetector
{
    private int _stride = 8;
    private int[] _clk = new int[256 * 8];
    private readonly Dictionary<ulong, int> _objIndex = [];
    private int[] _lastWrite = new int[256];
    private int[] _readHead = new int[256];
    private int _objCount;
    private int[] _readStep = new int[1024];
    private int[] _readNext = new int[1024];
    private int _readCount;
    private readonly int[] _candStep = new int[ExplorerScheduler.MaxTasks];
    private readonly int[] _firstSeq = new int[ExplorerScheduler.MaxTasks];
    private readonly int[] _races = new int[ExplorerScheduler.MaxTasks];

    // Undo log: per footprint entry, the object's last writer and reader list before it.
    private Undo[] _undo = new Undo[1024];
    private int _undoCount;
    // Per step, where its undo entries and reads began.
    private int[] _stepUndo = new int[256];
    private int[] _stepReads = new int[256];
    private int _steps;

    private struct Undo
    {
        public int Obj;
        public int LastWrite;
        public int ReadHead;
    }

    /// <summary>Forgets every step.</summary>
    public void Reset()
    {
        _objIndex.Clear();
        _objCount = 0;
        _readCount = 0;
        _undoCount = 0;
        _steps = 0;
    }

    /// <summary>
    /// Back to the state after the first <paramref name="steps"/> steps added, for an execution
    /// whose first steps are the same (their clock rows are kept as they are).
    /// </summary>
    public void Rewind(int steps)
    {
        if (steps <= 0)
        {
            Reset();
            return;
        }
        if (steps > _steps)
        {
            throw new InvalidOperationException($"rewind to step {steps} of {_steps}");
        }
        if (steps == _steps)
        {
            return;
        }
        int stop = _stepUndo[steps];
        for (int u = _undoCount - 1; u >= stop; u--)
        {
            ref var e = ref _undo[u];
            _lastWrite[e.Obj] = e.LastWrite;
            _readHead[e.Obj] = e.ReadHead;
        }
        _undoCount = stop;
        _readCount = _stepReads[steps];
        _steps = steps;
    }

    /// <summary>
    /// Adds step <paramref name="i"/> (its footprint is complete). When <paramref name="analyze"/>,
    /// reports each race (earlier step, initials mask) through <paramref name="onRace"/>.
    /// </summary>
    public void AddStep(StepLog log, int i, int threads, bool analyze, Action<int, ulong> onRace)
    {
        if (i != _steps)
        {
            throw new InvalidOperationException($"step {i} added after {_steps} steps");
        }
        EnsureCapacity(i + 1, threads);
        _stepUndo[i] = _undoCount;
        _stepReads[i] = _readCount;
        _steps = i + 1;
        ref var st = ref log.Steps[i];
        int p = st.Thread;
        int stride = _stride;
        var clk = _clk;
        int row = i * stride;
        if (st.Prev >= 0)
        {
            Array.Copy(clk, st.Prev * stride, clk, row, stride);
        }
        else
        {
            Array.Clear(clk, row, stride);
        }
        if (st.SpawnSrc >= 0)
        {
            Join(row, st.SpawnSrc * stride);
        }
        if (st.WakeSrc >= 0)
        {
            Join(row, st.WakeSrc * stride);
        }

        // The latest dependent step of each other thread (earlier ones are ordered before it).
        ulong cands = 0;
        var foot = log.Foot;
        int fEnd = st.FootStart + st.FootLen;
        for (int f = st.FootStart; f < fEnd; f++)
        {
            ulong e = foot[f];
            ulong o = e & ~StepLog.WriteBit;
            bool w = (e & StepLog.WriteBit) != 0;
            ref int oi = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_objIndex, o, out bool exists);
            if (!exists)
            {
                oi = NewObject();
            }
            int obj = oi;
            int lw = _lastWrite[obj];
            PushUndo(obj, lw);
            if (lw >= 0)
            {
                AddCandidate(log, lw, p, ref cands);
            }
            if (w)
            {
                for (int r = _readHead[obj]; r >= 0; r = _readNext[r])
                {
                    AddCandidate(log, _readStep[r], p, ref cands);
                }
                _lastWrite[obj] = i;
                _readHead[obj] = -1;
            }
            else
            {
                AddRead(obj, i);
            }
        }

        // A candidate races with this step unless it is already ordered before it by the base clock
        // or by another candidate.
        int nRaces = 0;
        if (analyze && cands != 0)
        {
            for (ulong m = cands; m != 0; m &= m - 1)
            {
                int t = BitOperations.TrailingZeroCount(m);
                int c = _candStep[t];
                int sc = log.Steps[c].Seq;
                if (clk[row + t] >= sc)
                {
                    continue;
                }
                bool direct = true;
                for (ulong m2 = cands; m2 != 0; m2 &= m2 - 1)
                {
                    int t2 = BitOperations.TrailingZeroCount(m2);
                    if (t2 != t && clk[_candStep[t2] * stride + t] >= sc)
                    {
                        direct = false;
                        break;
                    }
                }
                if (direct)
                {
                    _races[nRaces++] = c;
                }
            }
        }
        for (ulong m = cands; m != 0; m &= m - 1)
        {
            Join(row, _candStep[BitOperations.TrailingZeroCount(m)] * stride);
        }
        clk[row + p] = st.Seq;

        for (int r = 0; r < nRaces; r++)
        {
            int c = _races[r];
            ulong initials = Initials(log, c, i);
            if (initials != 0)
            {
                onRace(c, initials);
            }
        }
    }

    /// <summary>True if step <paramref name="a"/> happens before step <paramref name="b"/>.</summary>
    public bool HappensBefore(StepLog log, int a, int b) =>
        _clk[b * _stride + log.Steps[a].Thread] >= log.Steps[a].Seq;

    /// <summary>
    /// I(notdep(c).e_i): the threads whose first step in the sequence of steps after
    /// <paramref name="c"/> that do not happen after it, followed by step <paramref name="i"/>, has
    /// no predecessor in that sequence.
    /// </summary>
    private ulong Initials(StepLog log, int c, int i)
    {
        int stride = _stride;
        var clk = _clk;
        int tc = log.Steps[c].Thread;
        int sc = log.Steps[c].Seq;
        ulong inV = 0;
        ulong initials = 0;
        for (int k = c + 1; k <= i; k++)
        {
            int rk = k * stride;
            int tk = log.Steps[k].Thread;
            if (k < i && clk[rk + tc] >= sc)
            {
                continue;
            }
            if ((inV & (1UL << tk)) != 0)
            {
                continue;
            }
            bool initial = true;
            for (ulong m = inV; m != 0; m &= m - 1)
            {
                int t2 = BitOperations.TrailingZeroCount(m);
                if (clk[rk + t2] >= _firstSeq[t2])
                {
                    initial = false;
                    break;
                }
            }
            inV |= 1UL << tk;
            _firstSeq[tk] = log.Steps[k].Seq;
            if (initial)
            {
                initials |= 1UL << tk;
            }
        }
        return initials;
    }

    private void AddCandidate(StepLog log, int step, int p, ref ulong cands)
    {
        int t = log.Steps[step].Thread;
        if (t == p)
        {
            return;
        }
        ulong bit = 1UL << t;
        if ((cands & bit) == 0 || _candStep[t] < step)
        {
            _candStep[t] = step;
            cands |= bit;
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Join(int dst, int src)
    {
        var clk = _clk;
        for (int k = 0; k < _stride; k++)
        {
            if (clk[src + k] > clk[dst + k])
            {
                clk[dst + k] = clk[src + k];
            }
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void PushUndo(int obj, int lastWrite)
    {
        if (_undoCount == _undo.Length)
        {
            Array.Resize(ref _undo, _undoCount * 2);
        }
        ref var e = ref _undo[_undoCount++];
        e.Obj = obj;
        e.LastWrite = lastWrite;
        e.ReadHead = _readHead[obj];
    }

    private int NewObject()
    {
        if (_objCount == _lastWrite.Length)
        {
            Array.Resize(ref _lastWrite, _objCount * 2);
            Array.Resize(ref _readHead, _objCount * 2);
        }
        _lastWrite[_objCount] = -1;
        _readHead[_objCount] = -1;
        return _objCount++;
    }

    private void AddRead(int obj, int step)
    {
        if (_readCount == _readStep.Length)
        {
            Array.Resize(ref _readStep, _readCount * 2);
            Array.Resize(ref _readNext, _readCount * 2);
        }
        _readStep[_readCount] = step;
        _readNext[_readCount] = _readHead[obj];
        _readHead[obj] = _readCount++;
    }

    private void EnsureCapacity(int steps, int threads)
    {
        if (threads > _stride)
        {
            int ns = Math.Max(threads, _stride * 2);
            var n = new int[Math.Max(steps, _clk.Length / _stride) * ns];
            int rows = Math.Min(steps - 1, _clk.Length / _stride);
            for (int r = 0; r < rows; r++)
            {
                Array.Copy(_clk, r * _stride, n, r * ns, _stride);
            }
            _clk = n;
            _stride = ns;
        }
        if (steps * _stride > _clk.Length)
        {
            Array.Resize(ref _clk, Math.Max(steps * _stride, _clk.Length * 2));
        }
        if (steps > _stepUndo.Length)
        {
            Array.Resize(ref _stepUndo, Math.Max(steps, _stepUndo.Length * 2));
            Array.Resize(ref _stepReads, _stepUndo.Length);
        }
    }
}

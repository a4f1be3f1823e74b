namespace MmCheck.Explorer;

/// <summary>SplitMix64: small, fast, and the same sequence on every platform and runtime version.</summary>
internal struct Prng(ulong seed)
{
    private ulong _state = seed;

    public ulong NextULong()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, n).</summary>
    public int Next(int n) => n <= 1 ? 0 : (int)(((NextULong() >> 32) * (ulong)n) >> 32);

    /// <summary>The seed of schedule <paramref name="index"/> of a phase: independent of which worker runs it.</summary>
    public static ulong ForSchedule(long seed, int phase, long index)
    {
        var p = new Prng((ulong)seed ^ ((ulong)phase * 0xD1B54A32D192ED03UL));
        ulong a = p.NextULong();
        var q = new Prng(a + (ulong)index * 0x9E3779B97F4A7C15UL);
        return q.NextULong();
    }
}

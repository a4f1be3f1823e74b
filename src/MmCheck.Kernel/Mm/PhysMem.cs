namespace Linux;

/// <summary>
/// The contents of physical memory, RAM and I/O alike. Only words that were ever stored non-zero
/// cost anything: a hash of 8-byte words keyed by physical address, with a per-frame chain so a
/// frame can be cleared or copied in time proportional to what it holds.
/// </summary>
/// <remarks>Model-only: the kernel has no such structure; memory is memory.</remarks>
public sealed class PhysMem
{
    private struct Entry
    {
        public ulong Word;      // physical address >> 3
        public ulong Value;
        public int NextInBucket;
        public int NextInFrame;
    }

    // Small to start with (both grow by doubling): a kernel is built for every explored execution.
    private Entry[] _entries = new Entry[16];
    private int[] _buckets = new int[16];  // 1-based entry index, 0 = empty
    private int _count;
    private int _free = -1;
    private int _used;
    private readonly Dictionary<ulong, int> _frameHead = [];

    /// <summary>Number of words held.</summary>
    public int Words => _used;

    /// <summary>Approximate bytes used by the store.</summary>
    public long AllocatedBytes => (long)_entries.Length * 24 + (long)_buckets.Length * 4 + _frameHead.Count * 24L;

    /// <summary>
    /// The bucket of a word: the same offset in consecutive frames of one 4 MiB block lands in
    /// consecutive buckets, so work that walks frames in order (freeing an unmapped range, copying)
    /// walks the buckets in order too instead of missing the cache on each; blocks and offsets
    /// within a frame are scattered by multiplicative hashing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Bucket(ulong word)
    {
        ulong pfn = word >> (PgTable.PAGE_SHIFT - 3);
        ulong block = (pfn >> 10) * 0x9E3779B97F4A7C15UL >> 32;
        ulong offset = (word & (PgTable.PAGE_SIZE / 8 - 1)) * 0x9E3779B1UL;
        return (int)(block + (pfn & 1023) + offset) & (_buckets.Length - 1);
    }

    private int Find(ulong word)
    {
        for (int i = _buckets[Bucket(word)]; i != 0; i = _entries[i - 1].NextInBucket)
        {
            if (_entries[i - 1].Word == word)
            {
                return i;
            }
        }
        return 0;
    }

    public ulong ReadWord(ulong paddr)
    {
        int i = Find(paddr >> 3);
        return i == 0 ? 0 : _entries[i - 1].Value;
    }

    /// <summary>Writes a word; returns true if the frame gained its first word.</summary>
    public bool WriteWord(ulong paddr, ulong value)
    {
        ulong word = paddr >> 3;
        int i = Find(word);
        if (i != 0)
        {
            _entries[i - 1].Value = value;
            return false;
        }
        if (value == 0)
        {
            return false;
        }
        ulong pfn = paddr >> PgTable.PAGE_SHIFT;
        if (_used * 4 >= _buckets.Length * 3)
        {
            Grow();
        }
        int idx;
        if (_free >= 0)
        {
            idx = _free;
            _free = _entries[idx].NextInBucket - 1;
        }
        else
        {
            if (_count == _entries.Length)
            {
                Array.Resize(ref _entries, _entries.Length * 2);
            }
            idx = _count++;
        }
        int b = Bucket(word);
        bool first = !_frameHead.TryGetValue(pfn, out int head);
        _entries[idx] = new Entry { Word = word, Value = value, NextInBucket = _buckets[b], NextInFrame = first ? 0 : head };
        _buckets[b] = idx + 1;
        _frameHead[pfn] = idx + 1;
        _used++;
        return first;
    }

    private void Grow()
    {
        _buckets = new int[_buckets.Length * 2];
        for (int i = 0; i < _count; i++)
        {
            if (_entries[i].Word == ulong.MaxValue)
            {
                continue;
            }
            int b = Bucket(_entries[i].Word);
            _entries[i].NextInBucket = _buckets[b];
            _buckets[b] = i + 1;
        }
        // The free list was threaded through NextInBucket; rebuild it.
        _free = -1;
        for (int i = _count - 1; i >= 0; i--)
        {
            if (_entries[i].Word == ulong.MaxValue)
            {
                _entries[i].NextInBucket = _free + 1;
                _free = i;
            }
        }
    }

    /// <summary>Forgets every word of a frame (it reads as zeroes again).</summary>
    public void ClearFrame(ulong pfn)
    {
        if (!_frameHead.Remove(pfn, out int i))
        {
            return;
        }
        while (i != 0)
        {
            int next = _entries[i - 1].NextInFrame;
            Unlink(i);
            i = next;
        }
    }

    private void Unlink(int i)
    {
        ulong word = _entries[i - 1].Word;
        int b = Bucket(word);
        int prev = 0;
        for (int j = _buckets[b]; j != 0; prev = j, j = _entries[j - 1].NextInBucket)
        {
            if (j == i)
            {
                if (prev == 0)
                {
                    _buckets[b] = _entries[j - 1].NextInBucket;
                }
                else
                {
                    _entries[prev - 1].NextInBucket = _entries[j - 1].NextInBucket;
                }
                break;
            }
        }
        _entries[i - 1] = new Entry { Word = ulong.MaxValue, NextInBucket = _free + 1 };
        _free = i - 1;
        _used--;
    }

    /// <summary>The non-zero words of a frame, as (offset in page, value).</summary>
    public IEnumerable<(int Offset, ulong Value)> FrameWords(ulong pfn)
    {
        if (!_frameHead.TryGetValue(pfn, out int i))
        {
            yield break;
        }
        while (i != 0)
        {
            var e = _entries[i - 1];
            yield return ((int)((e.Word << 3) & (PgTable.PAGE_SIZE - 1)), e.Value);
            i = e.NextInFrame;
        }
    }

    public bool HasContent(ulong pfn) => _frameHead.ContainsKey(pfn);

    /// <summary>copy_page(): the destination becomes a copy of the source.</summary>
    public void CopyFrame(ulong dst, ulong src)
    {
        ClearFrame(dst);
        if (!_frameHead.ContainsKey(src))
        {
            return;
        }
        var words = FrameWords(src).ToList();
        ulong dbase = dst << PgTable.PAGE_SHIFT;
        foreach (var (off, v) in words)
        {
            WriteWord(dbase + (ulong)off, v);
        }
    }

    /// <summary>Loads <paramref name="size"/> bytes (1, 2, 4, 8) little-endian; the range must not
    /// cross a page (the CPU model splits such accesses).</summary>
    public ulong Load(ulong paddr, int size)
    {
        int shift = (int)(paddr & 7) * 8;
        ulong lo = ReadWord(paddr & ~7UL);
        ulong v = lo >> shift;
        if (shift + size * 8 > 64)
        {
            ulong hi = ReadWord((paddr & ~7UL) + 8);
            v |= hi << (64 - shift);
        }
        return size == 8 ? v : v & ((1UL << (size * 8)) - 1);
    }

    /// <summary>Stores <paramref name="size"/> bytes little-endian. Returns true if the frame of
    /// <paramref name="paddr"/> gained its first word.</summary>
    public bool Store(ulong paddr, int size, ulong value)
    {
        int shift = (int)(paddr & 7) * 8;
        ulong mask = size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
        value &= mask;
        ulong w0 = paddr & ~7UL;
        ulong lo = ReadWord(w0);
        lo = (lo & ~(mask << shift)) | (value << shift);
        bool first = WriteWord(w0, lo);
        if (shift + size * 8 > 64)
        {
            int done = 64 - shift;
            ulong hi = ReadWord(w0 + 8);
            ulong himask = mask >> done;
            hi = (hi & ~himask) | (value >> done);
            first |= WriteWord(w0 + 8, hi);
        }
        return first;
    }
}

using Linux;

namespace MmCheck.Kernel.Tests;

/// <summary>The sparse store of physical memory contents.</summary>
public class PhysMemTests
{
    [Fact]
    public void UntouchedMemoryReadsZeroAndCostsNothing()
    {
        var m = new PhysMem();
        Assert.Equal(0UL, m.Load(0x123456, 8));
        Assert.Equal(0, m.Words);
    }

    [Fact]
    public void AStoreIsVisibleToEveryLaterLoadOfThatAddress()
    {
        var m = new PhysMem();
        m.Store(0x1000, 8, 0x0102030405060708);
        Assert.Equal(0x0102030405060708UL, m.Load(0x1000, 8));
        Assert.Equal(0x08UL, m.Load(0x1000, 1));
        Assert.Equal(0x0506UL, m.Load(0x1002, 2));
        Assert.Equal(1, m.Words);
    }

    [Fact]
    public void UnalignedStoresSpanTwoWords()
    {
        var m = new PhysMem();
        m.Store(0x2005, 8, 0xAABBCCDDEEFF1122);
        Assert.Equal(0xAABBCCDDEEFF1122UL, m.Load(0x2005, 8));
        Assert.Equal(2, m.Words);
        Assert.Equal(0xFF1122UL << 40, m.Load(0x2000, 8));
    }

    [Fact]
    public void ClearAndCopyWorkPerFrame()
    {
        var m = new PhysMem();
        for (ulong i = 0; i < 512; i += 7)
        {
            m.Store((5UL << 12) + i * 8, 8, i + 1);
        }
        m.Store(6UL << 12, 8, 99);
        m.CopyFrame(9, 5);
        for (ulong i = 0; i < 512; i += 7)
        {
            Assert.Equal(i + 1, m.Load((9UL << 12) + i * 8, 8));
        }
        m.ClearFrame(5);
        Assert.Equal(0UL, m.Load(5UL << 12, 8));
        Assert.Equal(99UL, m.Load(6UL << 12, 8));
        Assert.False(m.HasContent(5));
        Assert.True(m.HasContent(9));
    }

    [Fact]
    public void TheStoreSurvivesGrowthAndDeletionChurn()
    {
        var m = new PhysMem();
        var rng = new Random(1);
        var shadow = new Dictionary<ulong, ulong>();
        for (int i = 0; i < 20000; i++)
        {
            ulong frame = (ulong)rng.Next(64);
            ulong addr = (frame << 12) + ((ulong)rng.Next(512) << 3);
            if (rng.Next(10) == 0)
            {
                m.ClearFrame(frame);
                foreach (var k in shadow.Keys.Where(a => a >> 12 == frame).ToList())
                {
                    shadow.Remove(k);
                }
                continue;
            }
            ulong v = (ulong)rng.NextInt64();
            m.Store(addr, 8, v);
            shadow[addr] = v;
        }
        foreach (var (a, v) in shadow)
        {
            Assert.Equal(v, m.Load(a, 8));
        }
    }
}

namespace MmCheck.Conformance.Tests;

/// <summary>The comparator: texts exactly, frames up to renaming with their lifetimes.</summary>
public sealed class ComparatorTests
{
    /// <summary>One observation: its text, the frame it is about, and the frames freed by the op.</summary>
    private static Observation O(int op, string text, ulong? frame = null, params ulong[] freed) =>
        new(op, text, frame, [.. freed]);

    /// <summary>A case with the given op kinds (arguments do not matter to the comparator).</summary>
    private static ConformanceCase Case(params OpKind[] kinds) =>
        new("synthetic", [.. kinds.Select(k => new Op(k, 0, [.. Enumerable.Repeat(Arg.Abs(0), Op.Arity(k))]))]);

    private static Disagreement? Compare(ConformanceCase c, Observation[] model, Observation[] native) =>
        Comparator.Compare(c, new CaseRun("model", [.. model]), new CaseRun("native", [.. native]));

    private const string Page = "present excl=0 file=0 frame";

    [Fact]
    public void Equal_texts_and_consistently_renamed_frames_agree()
    {
        var c = Case(OpKind.Pagemap, OpKind.Pagemap, OpKind.Pagemap, OpKind.Pagemap);
        // Model frames 10, 10, 11, 10 ~ native frames 900, 900, 5, 900: the same sharing structure.
        Assert.Null(Compare(c,
            [O(0, Page, 10), O(1, Page, 10), O(2, Page, 11), O(3, Page, 10)],
            [O(0, Page, 900), O(1, Page, 900), O(2, Page, 5), O(3, Page, 900)]));
    }

    [Fact]
    public void A_different_text_is_a_result_disagreement()
    {
        var d = Compare(Case(OpKind.Mmap, OpKind.Load), [O(0, "top-0x1000"), O(1, "0x11")], [O(0, "top-0x1000"), O(1, "0x22")]);
        Assert.NotNull(d);
        Assert.Equal((1, "0x11", "0x22", "result"), (d.Op, d.Model, d.Native, d.Reason));
    }

    [Fact]
    public void Two_pages_sharing_a_frame_in_the_model_must_share_one_natively()
    {
        // P0 and P1 after fork: the model shares frame 10; the kernel shows two frames.
        var d = Compare(Case(OpKind.Pagemap, OpKind.Pagemap),
            [O(0, Page, 10), O(1, Page, 10)],
            [O(0, Page, 900), O(1, Page, 901)]);
        Assert.NotNull(d);
        Assert.Equal(1, d.Op);
        Assert.Contains("moved", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_pages_sharing_a_frame_natively_must_share_one_in_the_model()
    {
        var d = Compare(Case(OpKind.Pagemap, OpKind.Pagemap),
            [O(0, Page, 10), O(1, Page, 11)],
            [O(0, Page, 900), O(1, Page, 900)]);
        Assert.NotNull(d);
        Assert.Equal(1, d.Op);
        Assert.Contains("already holds", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_zero_page_is_part_of_the_text()
    {
        var d = Compare(Case(OpKind.Pagemap), [O(0, "present excl=0 file=0 zero")], [O(0, Page, 900)]);
        Assert.NotNull(d);
        Assert.Equal("result", d.Reason);
    }

    [Fact]
    public void A_frame_on_one_side_only_disagrees()
    {
        Assert.NotNull(Compare(Case(OpKind.Pagemap), [O(0, Page)], [O(0, Page, 900)]));
    }

    [Fact]
    public void A_model_copy_where_the_kernel_reused_the_frame_disagrees()
    {
        // #0 observe the page; #1 a store: the model copies (frees 10, maps 11), the kernel reuses 900
        // in place (frees nothing); #2 observe again.
        var c = Case(OpKind.Pagemap, OpKind.Store, OpKind.Pagemap);
        var d = Compare(c,
            [O(0, Page, 10), O(1, "ok", null, 10), O(2, Page, 11)],
            [O(0, Page, 900), O(1, "ok"), O(2, Page, 900)]);
        Assert.NotNull(d);
        Assert.Equal(2, d.Op);
        Assert.Contains("kept frame", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_frame_freed_on_both_sides_may_be_reused_under_another_name()
    {
        // #1 munmap frees the page on both sides; #2 a new mapping gets the kernel's old frame back
        // (its per-CPU lists are LIFO) but a new frame in the model: fine, both were freed.
        var c = Case(OpKind.Pagemap, OpKind.Munmap, OpKind.Pagemap);
        Assert.Null(Compare(c,
            [O(0, Page, 10), O(1, "0", null, 10), O(2, Page, 11)],
            [O(0, Page, 900), O(1, "0", null, 900), O(2, Page, 900)]));
        // And the other way round: the model reuses its frame, the kernel takes another.
        Assert.Null(Compare(c,
            [O(0, Page, 10), O(1, "0", null, 10), O(2, Page, 10)],
            [O(0, Page, 900), O(1, "0", null, 900), O(2, Page, 901)]));
    }

    [Fact]
    public void A_free_and_reuse_inside_one_mmap_is_accepted_without_seeing_the_free()
    {
        // MAP_FIXED|MAP_POPULATE over a populated page: both sides free and allocate inside the call.
        var c = Case(OpKind.Pagemap, OpKind.Mmap, OpKind.Pagemap);
        Assert.Null(Compare(c,
            [O(0, Page, 10), O(1, "top-0x1000", null, 10), O(2, Page, 12)],
            [O(0, Page, 900), O(1, "top-0x1000"), O(2, Page, 900)]));
    }

    [Fact]
    public void A_page_the_model_keeps_but_the_kernel_freed_disagrees_when_seen_again()
    {
        var c = Case(OpKind.Pagemap, OpKind.Madvise, OpKind.Pagemap);
        var d = Compare(c,
            [O(0, Page, 10), O(1, "0"), O(2, Page, 10)],
            [O(0, Page, 900), O(1, "0", null, 900), O(2, Page, 900)]);
        Assert.NotNull(d);
        Assert.Equal(2, d.Op);
        Assert.Contains("freed", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Frames_are_shared_across_processes_and_over_time()
    {
        // P0 writes (frame a), forks, both see a; P1 writes: P1 gets a new frame (b), P0 keeps a; the
        // kernel does the same with other numbers.
        var c = Case(OpKind.Pagemap, OpKind.Fork, OpKind.Pagemap, OpKind.Pagemap, OpKind.Store, OpKind.Pagemap, OpKind.Pagemap);
        var model = new[]
        {
            O(0, Page, 10), O(1, "ok: P1"), O(2, Page, 10), O(3, Page, 10), O(4, "ok"), O(5, Page, 10), O(6, Page, 11),
        };
        var native = new[]
        {
            O(0, Page, 7), O(1, "ok: P1"), O(2, Page, 7), O(3, Page, 7), O(4, "ok"), O(5, Page, 7), O(6, Page, 8),
        };
        Assert.Null(Compare(c, model, native));
        // If the kernel had given P1's copy the old frame and P0 a new one, the sharing structure
        // differs: P0's page was frame 10 (~7) all along in the model.
        native[5] = O(5, Page, 8);
        native[6] = O(6, Page, 7);
        var d = Compare(c, model, native);
        Assert.NotNull(d);
        Assert.Equal(5, d.Op);
    }

    [Fact]
    public void Runs_of_different_length_disagree()
    {
        var c = Case(OpKind.Load, OpKind.Load);
        var d = Comparator.Compare(c, new CaseRun("model", [O(0, "0x0"), O(1, "0x0")]), new CaseRun("native", [O(0, "0x0")]));
        Assert.NotNull(d);
        Assert.Equal(1, d.Op);
    }

    [Fact]
    public void Observation_prints_its_frame()
    {
        Assert.Equal("#3 present excl=0 file=0 frame (pfn 0x1f)", O(3, Page, 31).ToString());
        Assert.True(new Observation(0, "x").FreedFrames.IsEmpty);
        Assert.Equal([1UL], O(0, "x", null, 1).FreedFrames.ToArray());
    }
}

using MmCheck.Litmus.Syntax;

namespace MmCheck.Litmus.Tests;

public class SourceTextTests
{
    [Theory]
    [InlineData("ab\ncd", 3, 2, 1)]
    [InlineData("ab\r\ncd", 4, 2, 1)]
    [InlineData("ab\rcd", 3, 2, 1)]
    [InlineData("ab\ncd", 2, 1, 3)]
    [InlineData("ab\ncd", 5, 2, 3)]
    [InlineData("", 0, 1, 1)]
    [InlineData("\t\tx", 2, 1, 3)]
    public void Offsets_map_to_one_based_lines_and_columns(string text, int offset, int line, int column)
    {
        Assert.Equal((line, column), SourceText.From(text).GetLineColumn(offset));
    }

    [Fact]
    public void Line_text_excludes_every_kind_of_line_break()
    {
        var source = SourceText.From("one\r\ntwo\rthree\nfour");
        Assert.Equal(4, source.LineCount);
        Assert.Equal(["one", "two", "three", "four"], Enumerable.Range(1, 4).Select(source.GetLineText));
    }

    [Fact]
    public void Span_reports_file_line_column_and_end()
    {
        var source = new SourceText("dir/a.litmus", "MM a\n  thread T0 {\n");
        var span = new SourceSpan(source, 7, 6);
        Assert.Equal(("dir/a.litmus", 2, 3, 2, 9, "thread"), (span.FileName, span.Line, span.Column, span.EndLine, span.EndColumn, span.Text));
        Assert.Equal("dir/a.litmus:2:3", span.ToString());
    }

    [Fact]
    public void Default_span_does_not_throw()
    {
        var span = default(SourceSpan);
        Assert.Equal((0, 0, ""), (span.Line, span.Column, span.Text));
        Assert.Equal(("<generated>", 1, 1), (SourceSpan.None.FileName, SourceSpan.None.Line, SourceSpan.None.Column));
    }

    [Fact]
    public void Utf8_input_with_malformed_bytes_decodes_to_replacement_characters()
    {
        var source = SourceText.FromUtf8([(byte)'M', 0xff, (byte)'\n'], "bytes.litmus");
        Assert.Equal("M\uFFFD\n", source.Text);
        Assert.Equal(2, source.LineCount);
    }
}

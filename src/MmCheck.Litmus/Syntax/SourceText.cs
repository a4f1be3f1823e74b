using System.Collections.Immutable;

namespace MmCheck.Litmus.Syntax;

/// <summary>
/// The text of one scenario file and the map from offsets to lines and columns.
/// Lines and columns are 1-based. A column counts UTF-16 code units, so a tab is one column
/// (the convention LSP editors use, which keeps columns stable whatever the tab width).
/// </summary>
public sealed class SourceText
{
    private ImmutableArray<int> _lineStarts;

    public SourceText(string fileName, string text)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(text);
        FileName = fileName;
        Text = text;
    }

    /// <summary>Stands in for the source of nodes that a tool built rather than parsed.</summary>
    public static SourceText Empty { get; } = new("<generated>", "");

    public string FileName { get; }

    public string Text { get; }

    public int Length => Text.Length;

    /// <summary>Offsets at which each line begins; "\n", "\r\n" and a lone "\r" all end a line.</summary>
    public ImmutableArray<int> LineStarts
    {
        get
        {
            // Computed on first use: an oversized file is rejected before anyone needs its lines.
            // Two threads racing here both store an equal array, which is harmless.
            if (_lineStarts.IsDefault)
            {
                _lineStarts = ComputeLineStarts(Text);
            }

            return _lineStarts;
        }
    }

    public int LineCount => LineStarts.Length;

    public static SourceText From(string text, string fileName = "<input>") => new(fileName, text);

    /// <summary>Decodes UTF-8; malformed sequences become U+FFFD instead of failing.</summary>
    public static SourceText FromUtf8(ReadOnlySpan<byte> bytes, string fileName = "<input>") =>
        new(fileName, System.Text.Encoding.UTF8.GetString(bytes));

    /// <summary>The 1-based line that contains <paramref name="offset"/> (clamped into the text).</summary>
    public int GetLine(int offset)
    {
        offset = Math.Clamp(offset, 0, Text.Length);
        var starts = LineStarts;
        int index = starts.AsSpan().BinarySearch(offset);
        return index >= 0 ? index + 1 : ~index;
    }

    public (int Line, int Column) GetLineColumn(int offset)
    {
        offset = Math.Clamp(offset, 0, Text.Length);
        int line = GetLine(offset);
        return (line, offset - LineStarts[line - 1] + 1);
    }

    public int GetLineStart(int line) => LineStarts[Math.Clamp(line, 1, LineCount) - 1];

    /// <summary>The offset where the line's text ends, before its line break.</summary>
    public int GetLineEnd(int line)
    {
        line = Math.Clamp(line, 1, LineCount);
        int end = line < LineCount ? LineStarts[line] : Text.Length;
        if (end > GetLineStart(line) && Text[end - 1] == '\n')
        {
            end--;
        }

        if (end > GetLineStart(line) && Text[end - 1] == '\r')
        {
            end--;
        }

        return end;
    }

    /// <summary>The text of a 1-based line without its line break.</summary>
    public string GetLineText(int line)
    {
        int start = GetLineStart(line);
        return Text[start..GetLineEnd(line)];
    }

    public override string ToString() => FileName;

    private static ImmutableArray<int> ComputeLineStarts(string text)
    {
        var starts = ImmutableArray.CreateBuilder<int>();
        starts.Add(0);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\r')
            {
                if (i + 1 < text.Length && text[i + 1] == '\n')
                {
                    i++;
                }

                starts.Add(i + 1);
            }
            else if (c == '\n')
            {
                starts.Add(i + 1);
            }
        }

        return starts.ToImmutable();
    }
}

/// <summary>A range of a <see cref="SourceText"/>: start offset and length in UTF-16 code units.</summary>
public readonly record struct SourceSpan(SourceText Source, int Start, int Length)
{
    /// <summary>The span of nodes that were built, not parsed.</summary>
    public static SourceSpan None => new(SourceText.Empty, 0, 0);

    public int End => Start + Length;

    // A default(SourceSpan) has no source; the accessors below must not fail on it.
    public string FileName => Source?.FileName ?? "";

    public int Line => Source?.GetLine(Start) ?? 0;

    public int Column => Source?.GetLineColumn(Start).Column ?? 0;

    public int EndLine => Source?.GetLine(End) ?? 0;

    public int EndColumn => Source?.GetLineColumn(End).Column ?? 0;

    public string Text => Source is null ? "" : Source.Text.Substring(Start, Length);

    public static SourceSpan FromBounds(SourceText source, int start, int end) => new(source, start, end - start);

    public override string ToString() => $"{FileName}:{Line}:{Column}";
}

using System.Globalization;
using System.Text;

namespace MmCheck.Litmus.Syntax;

/// <summary>
/// Renders diagnostics the way gcc and clang do, so editors and terminals that already
/// understand "file:line:col: error: ..." pick them up:
/// <code>
/// scenarios/cow/x.litmus:12:17: error: expected ')' but found ';'
///    12 |   P: buf = mmap(NULL, 1 page;
///       |                 ^~~~~~~~~~~~~~
/// </code>
/// </summary>
public static class DiagnosticFormatter
{
    private const int GutterWidth = 5;

    // A minified or random one-line file must not turn every diagnostic into a megabyte of output.
    private const int MaxShownLineLength = 160;
    private const int ContextBeforeCaret = 60;
    private const string Ellipsis = "...";

    /// <summary>The first line only: "file:line:col: severity: message".</summary>
    public static string FormatHeader(Diagnostic diagnostic)
    {
        ArgumentNullException.ThrowIfNull(diagnostic);
        var span = diagnostic.Span;
        string severity = diagnostic.Severity == DiagnosticSeverity.Error ? "error" : "warning";
        return string.Create(
            CultureInfo.InvariantCulture,
            $"{span.FileName}:{span.Line}:{span.Column}: {severity}: {diagnostic.Message}");
    }

    /// <summary>The header, the source line, and a caret line under the span.</summary>
    public static string Format(Diagnostic diagnostic)
    {
        var builder = new StringBuilder();
        Append(builder, diagnostic);
        return builder.ToString();
    }

    /// <summary>Each diagnostic in turn, one per three lines, separated by newlines.</summary>
    public static string Format(IEnumerable<Diagnostic> diagnostics)
    {
        ArgumentNullException.ThrowIfNull(diagnostics);
        var builder = new StringBuilder();
        foreach (var diagnostic in diagnostics)
        {
            if (builder.Length > 0)
            {
                builder.Append('\n');
            }

            Append(builder, diagnostic);
        }

        return builder.ToString();
    }

    private static void Append(StringBuilder builder, Diagnostic diagnostic)
    {
        builder.Append(FormatHeader(diagnostic));
        var source = diagnostic.Span.Source;
        if (source is null)
        {
            return;
        }

        int start = Math.Clamp(diagnostic.Span.Start, 0, source.Length);
        int line = source.GetLine(start);
        int lineStart = source.GetLineStart(line);
        string text = source.Text[lineStart..source.GetLineEnd(line)];
        int column = Math.Min(start - lineStart, text.Length);

        // The caret may sit one past the last character: that is where a missing token belongs.
        int markers = Math.Clamp(diagnostic.Span.Length, 1, text.Length - column + 1);

        string prefix = "";
        string suffix = "";
        if (text.Length > MaxShownLineLength)
        {
            int windowStart = Math.Max(0, column - ContextBeforeCaret);
            int windowEnd = Math.Min(text.Length, windowStart + MaxShownLineLength);
            prefix = windowStart > 0 ? Ellipsis : "";
            suffix = windowEnd < text.Length ? Ellipsis : "";
            markers = Math.Min(markers, windowEnd - column + 1);
            column = column - windowStart + prefix.Length;
            text = text[windowStart..windowEnd];
        }

        string shown = prefix + Sanitize(text) + suffix;
        string gutter = line.ToString(CultureInfo.InvariantCulture).PadLeft(GutterWidth);
        builder.Append('\n').Append(gutter).Append(" | ").Append(shown.TrimEnd());
        builder.Append('\n').Append(' ', gutter.Length).Append(" | ");

        // Copying the tabs keeps the caret aligned whatever tab width the terminal uses.
        for (int i = 0; i < column; i++)
        {
            builder.Append(i < shown.Length && shown[i] == '\t' ? '\t' : ' ');
        }

        builder.Append('^').Append('~', markers - 1);
    }

    // Control characters could drive the terminal; one '?' each keeps the columns in place.
    private static string Sanitize(string text)
    {
        if (!text.Any(c => char.IsControl(c) && c != '\t'))
        {
            return text;
        }

        return string.Create(text.Length, text, static (span, source) =>
        {
            for (int i = 0; i < source.Length; i++)
            {
                char c = source[i];
                span[i] = char.IsControl(c) && c != '\t' ? '?' : c;
            }
        });
    }
}

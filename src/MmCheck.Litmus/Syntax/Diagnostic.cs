namespace MmCheck.Litmus.Syntax;

public enum DiagnosticSeverity
{
    Error,
    Warning,
}

/// <summary>
/// One finding about a scenario file. <see cref="Expected"/> and <see cref="Found"/> repeat, in
/// plain words, the two halves of an "expected X but found Y" message so tools need not parse it.
/// </summary>
public sealed record Diagnostic(
    DiagnosticSeverity Severity,
    string Code,
    string Message,
    SourceSpan Span,
    string? Expected = null,
    string? Found = null)
{
    public bool IsError => Severity == DiagnosticSeverity.Error;

    public override string ToString() => DiagnosticFormatter.FormatHeader(this);
}

/// <summary>
/// Stable codes: tests, golden files and editor integrations key on these, never on the wording.
/// LIT00xx are lexical, LIT01xx syntactic, LIT09xx about the input as a whole.
/// </summary>
public static class DiagnosticCodes
{
    public const string InvalidCharacter = "LIT0001";
    public const string UnterminatedComment = "LIT0002";
    public const string UnterminatedString = "LIT0003";
    public const string InvalidEscape = "LIT0004";
    public const string IntegerOverflow = "LIT0005";
    public const string InvalidNumber = "LIT0006";

    public const string UnexpectedToken = "LIT0100";
    public const string UnknownExpectation = "LIT0101";
    public const string MisplacedSection = "LIT0102";
    public const string DuplicateSection = "LIT0103";
    public const string EmptyScenario = "LIT0104";
    public const string NestingTooDeep = "LIT0105";
    public const string InvalidSettingValue = "LIT0106";

    public const string DuplicateSetting = "LIT0200";
    public const string UnknownSetting = "LIT0201";
    public const string UnknownKernel = "LIT0202";
    public const string UnknownArch = "LIT0203";
    public const string UnknownVariant = "LIT0204";
    public const string DuplicateName = "LIT0205";
    public const string BadDeclaration = "LIT0206";
    public const string UnknownProcess = "LIT0207";
    public const string UnknownThread = "LIT0208";
    public const string UnknownLabel = "LIT0209";
    public const string CyclicAfter = "LIT0210";
    public const string UnknownName = "LIT0211";
    public const string UnknownVerb = "LIT0212";
    public const string ArgumentCount = "LIT0213";
    public const string ArgumentKind = "LIT0214";
    public const string VerbNeedsProcess = "LIT0215";
    public const string NestedCall = "LIT0216";
    public const string MisplacedLocation = "LIT0217";
    public const string InvalidSize = "LIT0218";
    public const string UnknownDevice = "LIT0219";
    public const string UnknownView = "LIT0220";
    public const string TypeMismatch = "LIT0221";
    public const string UnknownInvariant = "LIT0222";
    public const string ExpectationConflict = "LIT0223";

    public const string InputTooLarge = "LIT0900";
    public const string TooManyErrors = "LIT0901";
    public const string ParserStalled = "LIT0999";
}

namespace MmCheck.Bench;

/// <summary>One measured figure, with its unit and the target it is held to (if any).</summary>
public sealed record Figure(string Name, double Value, string Unit, string? Target = null, bool? Met = null);

using System.Text.Json;
using System.Text.Json.Serialization;
using Linux;

namespace MmCheck.Explorer;

/// <summary>One data choice made inside a step (trylock outcome, which waiter, allocator pick).</summary>
public sealed record TraceChoice(string What, int Count, int Value);

/// <summary>
/// One step of a schedule: which thread ran, the scheduling point it resumed from (kept to detect
/// that the model changed since the trace was written), and the data choices made inside it.
/// </summary>
public sealed record TraceStep(int Thread, SchedPointKind Kind, string Function, bool AfterSleep, IReadOnlyList<TraceChoice> Choices)
{
    [JsonIgnore]
    public string Label => AfterSleep ? $"{Kind} in {Function} (after sleeping)" : $"{Kind} in {Function}";
}

/// <summary>
/// A schedule that replays deterministically: the settings it was found with, the thread names,
/// and every step. A lock-order inversion spans executions (lockdep's graph is shared by the whole
/// exploration), so its trace carries a <see cref="Prelude"/>: the schedules that first took the
/// other orders, replayed before it on the same lock graph.
/// </summary>
public sealed class Trace
{
    public const string FormatId = "mmcheck-trace/1";

    public string Format { get; init; } = FormatId;
    public required string Scenario { get; init; }
    public required string Strategy { get; init; }
    public long Seed { get; init; }
    /// <summary>Settings in force when the trace was found (free-form, for the record).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();
    /// <summary>The invariant the trace violates at its last step, if any.</summary>
    public string? Invariant { get; init; }
    public string? Message { get; init; }
    /// <summary>The outcome the schedule ends in, for an outcome witness.</summary>
    public string? Outcome { get; init; }
    /// <summary>Thread names by index (spawn order).</summary>
    public required IReadOnlyList<string> Threads { get; init; }
    public required IReadOnlyList<TraceStep> Steps { get; init; }
    public int Preemptions { get; init; }
    public IReadOnlyList<Trace> Prelude { get; init; } = [];

    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        // Traces are read by people too: keep "→" and "+" as they are.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public string ToJson() => JsonSerializer.Serialize(this, s_json);

    /// <summary>Parses a trace; throws <see cref="FormatException"/> with the reason when it is not one.</summary>
    public static Trace FromJson(string json)
    {
        Trace? t;
        try
        {
            t = JsonSerializer.Deserialize<Trace>(json, s_json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"not an MmCheck trace: {e.Message}", e);
        }
        if (t is null || t.Format != FormatId)
        {
            throw new FormatException($"not an MmCheck trace (format {t?.Format ?? "missing"}, expected {FormatId})");
        }
        return t;
    }

    public void Save(string path) => System.IO.File.WriteAllText(path, ToJson() + "\n");

    public static Trace Load(string path) => FromJson(System.IO.File.ReadAllText(path));

    public override string ToString() =>
        $"{Scenario}: {Steps.Count} steps, {Preemptions} preemptions" + (Invariant is null ? "" : $", {Invariant}");
}

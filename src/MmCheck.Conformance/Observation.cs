using System.Collections.Immutable;
using System.Globalization;

namespace MmCheck.Conformance;

/// <summary>
/// What one side saw for one operation: a canonical text (return value or errno, loaded value or
/// signal, pagemap bits, counters, VMA ranges relative to MMAP_TOP) that must be equal on both
/// sides, and the frame-identity facts that are compared up to renaming of PFNs instead:
/// <see cref="Frame"/>, the PFN the observation is about (null when no RAM frame other than the
/// zero page is involved; the zero page shows as "zero" in the text), and <see cref="Freed"/>,
/// the frames this side knows were freed by the operation (the model: exactly, from its
/// allocator; the kernel: frames seen free in /proc/kpageflags right after the operation).
/// </summary>
public sealed record Observation(int Op, string Text, ulong? Frame = null, ImmutableArray<ulong> Freed = default)
{
    public ImmutableArray<ulong> FreedFrames => Freed.IsDefault ? [] : Freed;

    public override string ToString() =>
        "#" + Op.ToString(CultureInfo.InvariantCulture) + " " + Text +
        (Frame is { } f ? " (pfn 0x" + f.ToString("x", CultureInfo.InvariantCulture) + ")" : "");
}

/// <summary>One side's run of a case: an observation per operation, or the reason the side could not
/// run it (the oracle failed, a subject died).</summary>
public sealed record CaseRun(string Side, ImmutableArray<Observation> Observations, string? SkipReason = null)
{
    public bool Skipped => SkipReason is not null;
}

/// <summary>A model defect surfaced while running a case (an exception out of the model, a task
/// that never completed): reported as the model's observation, never hidden.</summary>
public sealed class ModelDefectException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The side could not go on (native oracle failure): the case is skipped with this reason.</summary>
public sealed class SideUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

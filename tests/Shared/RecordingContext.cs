namespace MmCheck.Tests;

/// <summary>A SynchronizationContext that counts what is posted to it and runs none of it: the
/// model must never hand it a continuation (its pooled value tasks would, under a caller's context).
/// Compiled into each test project that checks that (Kernel, Explorer).</summary>
internal sealed class RecordingContext : SynchronizationContext
{
    public int Posts;

    public override void Post(SendOrPostCallback d, object? state) => Interlocked.Increment(ref Posts);
}

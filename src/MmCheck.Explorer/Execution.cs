using Linux;

namespace MmCheck.Explorer;

/// <summary>A prepared execution: the kernel it runs on and how to read its final state.</summary>
public sealed class Execution
{
    public Execution(Kernel kernel, Func<Outcome> observe)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(observe);
        Kernel = kernel;
        Observe = observe;
    }

    public Kernel Kernel { get; }

    /// <summary>Reads the final state once every thread has ended (not called after a deadlock).</summary>
    public Func<Outcome> Observe { get; }
}

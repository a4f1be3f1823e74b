using MmCheck.Conformance.Native;
using Xunit.Abstractions;

namespace MmCheck.Conformance.Tests;

public sealed class AvailabilityTests(ITestOutputHelper output)
{
    [Fact]
    public void Availability_gives_a_reason_and_is_complete_for_root_on_Linux_with_gcc()
    {
        var a = NativeOracle.Availability();
        output.WriteLine($"{a}");
        Assert.False(string.IsNullOrWhiteSpace(a.Reason));
        Assert.Equal(a.CanRun && a.CanReadPfns, a.IsAvailable);
        if (OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess && File.Exists("/proc/kpagecount") &&
            OracleBuild.FindCompiler() is not null)
            Assert.True(a.IsAvailable, a.Reason);   // no silent skipping where the machine can do it
    }

    [Fact]
    public void Oracle_binary_is_built_once_per_source_hash_into_the_work_directory()
    {
        if (!NativeOracle.Availability().CanRun)
        {
            output.WriteLine($"SKIPPED: {NativeOracle.Availability().Reason}");
            return;
        }
        var dir = Path.Combine(Path.GetTempPath(), $"mmcheck-oracle-test-{Guid.NewGuid():N}");
        try
        {
            string first;
            DateTime built;
            using (var o = NativeOracle.Start(dir))
            {
                first = o.BinaryPath;
                built = File.GetLastWriteTimeUtc(first);
                Assert.StartsWith(dir, first, StringComparison.Ordinal);
                Assert.Matches("oracle-[0-9a-f]{16}$", first);
            }
            using (var o = NativeOracle.Start(dir))
            {
                Assert.Equal(first, o.BinaryPath);
                Assert.Equal(built, File.GetLastWriteTimeUtc(first));
            }
            Assert.Single(Directory.GetFiles(dir, "oracle-*"), f => !f.EndsWith(".c", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

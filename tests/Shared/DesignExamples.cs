namespace MmCheck.Tests;

/// <summary>The two scenarios of shared/design.md, verbatim: they must always parse cleanly. Compiled
/// into each test project that runs them (Litmus, Conformance).</summary>
internal static class DesignExamples
{
    public const string CowBasicAfterFork = """
        MM cow-basic-after-fork
        (* cow.c "Basic COW after fork()": a parent write after fork() stays out of the child. *)
        kernel = current
        arch = x86_64
        {
          process P;
          P: buf = mmap(NULL, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
          P: store(buf, 0x11);
        }
        thread T0 in P {
          fork: C = fork();
          store(buf, 0x22);
          r0 = load(buf);
        }
        thread T1 in C after T0.fork {
          r1 = load(buf);
        }
        forall (T0:r0 = 0x22 /\ T1:r1 = 0x11)
        expect always

        """;

    public const string PciProcfsMmapVsRevoke = """
        MM pci-procfs-mmap-vs-revoke
        (* Seed 000: ->mmap populates the PTEs before vma_link(); a concurrent region claim
           revokes through i_mmap, misses the VMA, and the user keeps the BAR mapped. *)
        kernel = v5.10
        arch = x86_64
        {
          device G = pci(bar0 = 16 pages);
          process P;
          P: fd = open("/proc/bus/pci/00/00.0", O_RDWR);
        }
        thread User in P {
          p = mmap(NULL, 16 pages, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0);
        }
        thread Probe {
          r = request_mem_region(G.bar0, 16 pages, "driver");
        }
        expect violation revoked-iomem-mapped

        """;

    public static IEnumerable<string> All => [CowBasicAfterFork, PciProcfsMmapVsRevoke];
}

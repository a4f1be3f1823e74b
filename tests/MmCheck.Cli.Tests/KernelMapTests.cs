using KernelMap = Linux.KernelMap;

namespace MmCheck.Cli.Tests;

public class KernelMapTests
{
    private static string RepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "MmCheck.slnx")))
            {
                return Path.Combine(d.FullName, relative);
            }
        }
        throw new InvalidOperationException("not inside an MmCheck checkout");
    }

    [Fact]
    public void Docs_kernel_map_is_what_the_code_says()
    {
        string doc = File.ReadAllText(RepoFile("docs/kernel-map.md")).ReplaceLineEndings("\n");
        Assert.True(doc == KernelMap.Markdown(), "docs/kernel-map.md is out of date: regenerate it with 'mmcheck list --kernel-map > docs/kernel-map.md'");
    }

    [Fact]
    public void The_map_leads_from_a_kernel_function_to_its_file()
    {
        var e = Assert.Single(KernelMap.Entries(), e => e.Symbol == "do_wp_page");
        Assert.Equal("mm/memory.c", e.KernelFile);
        Assert.Equal("Kernel.DoWpPage", e.Member);
        Assert.Equal("src/MmCheck.Kernel/Mm/Memory.Fault.cs", e.SourceFile);
    }
}

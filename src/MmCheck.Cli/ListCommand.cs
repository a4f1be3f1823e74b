using System.CommandLine;
using Linux;
using MmCheck.Litmus.Binding;
using MmCheck.Litmus.Runner;

namespace MmCheck.Cli;

/// <summary><c>mmcheck list</c>: the bundled scenarios and what each shows; the scenario vocabulary.</summary>
internal static class ListCommand
{
    public static Command Create(CliIo io)
    {
        var cmd = new Command("list", "List the bundled scenarios (or, with an option, the verbs, invariants, variants and views a scenario can use).");
        var verbs = new Option<bool>("--verbs") { Description = "the calls a scenario can make" };
        var invariants = new Option<bool>("--invariants") { Description = "the built-in invariants" };
        var variants = new Option<bool>("--variants") { Description = "the named historical behaviours" };
        var views = new Option<bool>("--views") { Description = "the state a condition can read" };
        var devices = new Option<bool>("--devices") { Description = "the device kinds a scenario can declare" };
        var kernelMap = new Option<bool>("--kernel-map") { Description = "every mirrored kernel symbol and where the model holds it (docs/kernel-map.md)" };
        var vfioTable = new Option<bool>("--vfio-table")
        {
            Description = "faults taken and page-table entries installed per vfio-pci fault strategy for touching 1 page, 16 pages and all of a 1 GiB BAR (docs/devices.md)",
        };
        cmd.Add(verbs);
        cmd.Add(invariants);
        cmd.Add(variants);
        cmd.Add(views);
        cmd.Add(devices);
        cmd.Add(kernelMap);
        cmd.Add(vfioTable);
        cmd.SetAction(p =>
        {
            bool any = false;
            if (p.GetValue(verbs))
            {
                any = true;
                foreach (var v in VerbTable.All.OrderBy(v => v.Name, StringComparer.Ordinal))
                {
                    io.Out.WriteLine($"{v.Signature,-60} {v.Doc}  [{v.KernelSymbol}]");
                }
            }
            if (p.GetValue(invariants))
            {
                any = true;
                foreach (var i in Binder.KnownInvariants)
                {
                    io.Out.WriteLine(i);
                }
            }
            if (p.GetValue(variants))
            {
                any = true;
                foreach (var v in Variants.All)
                {
                    io.Out.WriteLine($"variant {v.Name} = {string.Join(" | ", v.Values)}");
                    io.Out.WriteLine($"    {v.Description}");
                    io.Out.WriteLine($"    {v.Upstream}");
                }
            }
            if (p.GetValue(views))
            {
                any = true;
                foreach (var (name, fields) in Binder.Views)
                {
                    io.Out.WriteLine(fields is null ? $"P:{name}(addr)" : $"P:{name}(addr).{{{string.Join(",", fields)}}}");
                }
                io.Out.WriteLine("T:reg");
                io.Out.WriteLine("P:[addr]   (what a load of 8 bytes by P returns at the end, or the signal)");
            }
            if (p.GetValue(devices))
            {
                any = true;
                foreach (var d in DeviceTable.All)
                {
                    io.Out.WriteLine($"device NAME = {d.Name}({string.Join(", ", d.Params.Select(x => x + " = …"))})   members: {string.Join(", ", d.Members)}   {d.Doc}");
                }
            }
            if (p.GetValue(kernelMap))
            {
                any = true;
                io.Out.Write(KernelMap.Markdown());
            }
            if (p.GetValue(vfioTable))
            {
                any = true;
                io.Out.Write(VfioStrategyTable.Format(VfioStrategyTable.Build()));
            }
            return any ? ExitCodes.Ok : Scenarios(io);
        });
        return cmd;
    }

    private static int Scenarios(CliIo io)
    {
        int exit = ExitCodes.Ok;
        foreach (var file in ScenarioFiles.Collect([]))
        {
            var loaded = ScenarioRunner.Load(file);
            if (loaded.Ast is not { } ast)
            {
                io.Out.WriteLine($"{file}: does not parse");
                exit = ExitCodes.Usage;
                continue;
            }
            string desc = ast.Description?.Text.Trim() is { Length: > 0 } d ? FirstSentence(d) : "";
            string expects = ast.Expectations.Length == 0 ? "clean" : string.Join(", ", ast.Expectations.Select(e =>
                e.Kind == Litmus.Syntax.ExpectationKind.Violation ? "violation " + e.Invariant?.Text : e.Kind.ToString().ToLowerInvariant()));
            io.Out.WriteLine($"{file}");
            io.Out.WriteLine($"    {ast.Name.Text} — expects {expects}");
            if (desc.Length > 0)
            {
                io.Out.WriteLine($"    {desc}");
            }
        }
        return exit;
    }

    private static string FirstSentence(string text)
    {
        string t = string.Join(' ', text.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        int end = t.IndexOf(". ", StringComparison.Ordinal);
        return end > 0 ? t[..(end + 1)] : t;
    }
}

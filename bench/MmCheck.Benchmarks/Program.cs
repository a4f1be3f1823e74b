using System.Globalization;
using MmCheck.Bench;

// The same benchmarks as `mmcheck bench` (src/MmCheck.Cli/BenchCommand.cs), without the CLI:
//   dotnet run -c Release --project bench/MmCheck.Benchmarks [-- --json] [--quick] [--bytes=1G|256M|N] [--repeats=N] [--no-native] [--no-explorer]
//     [--scenarios=DIR] [--no-scenarios]
var o = args.Contains("--quick") ? BenchOptions.Quick : new BenchOptions();
foreach (var a in args)
{
    if (a.StartsWith("--bytes=", StringComparison.Ordinal))
    {
        string size = a["--bytes=".Length..];
        if (BenchOptions.ParseBytes(size) is not { } bytes)
        {
            Console.Error.WriteLine($"MmCheck.Benchmarks: bad --bytes '{size}' ({BenchOptions.BytesFormat})");
            return 2;
        }
        o = o with { Bytes = bytes };
    }
    else if (a.StartsWith("--scenarios=", StringComparison.Ordinal))
    {
        o = o with { ScenarioDirectory = a["--scenarios=".Length..] };
    }
    else if (a.StartsWith("--repeats=", StringComparison.Ordinal))
    {
        o = o with { Repeats = int.Parse(a["--repeats=".Length..], CultureInfo.InvariantCulture) };
    }
}
o = o with { Native = o.Native && !args.Contains("--no-native"), Explorer = o.Explorer && !args.Contains("--no-explorer"), Scenarios = o.Scenarios && !args.Contains("--no-scenarios") };
bool json = args.Contains("--json");
var report = BenchSuite.Run(o, json ? null : Console.Error);
if (json)
{
    Console.WriteLine(BenchSuite.ToJson(report));
}
else
{
    BenchSuite.WriteText(report, Console.Out);
}
return 0;

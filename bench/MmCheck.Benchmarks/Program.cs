using System.Globalization;
using System.Text.Json;
using MmCheck.Benchmarks;

bool json = args.Contains("--json");
ulong bytes = 1UL << 30;
foreach (var a in args.Where(a => a.StartsWith("--bytes=", StringComparison.Ordinal)))
{
    bytes = ulong.Parse(a["--bytes=".Length..], CultureInfo.InvariantCulture);
}
var figures = KernelBenchmarks.Run(bytes);
if (json)
{
    Console.WriteLine(JsonSerializer.Serialize(figures, new JsonSerializerOptions { WriteIndented = true }));
}
else
{
    foreach (var f in figures)
    {
        string target = f.Target is null ? "" : $"  (target {f.Target}: {(f.Met == true ? "met" : "not met")})";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{f.Name,-34} {f.Value,12:F2} {f.Unit}{target}"));
    }
}

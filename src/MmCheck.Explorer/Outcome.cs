using System.Text;

namespace MmCheck.Explorer;

/// <summary>
/// The observed final state of one execution: named values in a canonical order, printable
/// ("T0:r0=0x22"). Two outcomes are equal when their values are, in order.
/// </summary>
public sealed record Outcome(IReadOnlyList<KeyValuePair<string, string>> Values)
{
    public static Outcome Empty { get; } = new([]);

    /// <summary>An outcome from pairs, kept in the order given (the scenario decides the order).</summary>
    public static Outcome Of(params (string Key, string Value)[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var list = new KeyValuePair<string, string>[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            list[i] = new KeyValuePair<string, string>(values[i].Key, values[i].Value);
        }
        return new Outcome(list);
    }

    // Loops over Values go by index: the explorer hashes an outcome per execution, and an
    // interface foreach would allocate an enumerator each time.

    /// <summary>Hash of <see cref="Values"/>, computed on first use (0: not yet).</summary>
    private int _hash;

    /// <summary>A copy (<c>with</c>) hashes its own values.</summary>
    private Outcome(Outcome original) => Values = original.Values;

    /// <summary>The value of <paramref name="key"/>, or null.</summary>
    public string? this[string key]
    {
        get
        {
            for (int i = 0; i < Values.Count; i++)
            {
                if (Values[i].Key == key)
                {
                    return Values[i].Value;
                }
            }
            return null;
        }
    }

    public bool Equals(Outcome? other)
    {
        if (other is null || other.Values.Count != Values.Count)
        {
            return false;
        }
        for (int i = 0; i < Values.Count; i++)
        {
            if (Values[i].Key != other.Values[i].Key || Values[i].Value != other.Values[i].Value)
            {
                return false;
            }
        }
        return true;
    }

    public override int GetHashCode()
    {
        if (_hash == 0)
        {
            var h = new HashCode();
            for (int i = 0; i < Values.Count; i++)
            {
                h.Add(Values[i].Key, StringComparer.Ordinal);
                h.Add(Values[i].Value, StringComparer.Ordinal);
            }
            _hash = h.ToHashCode() | 1;
        }
        return _hash;
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var kv in Values)
        {
            if (sb.Length > 0)
            {
                sb.Append(' ');
            }
            sb.Append(kv.Key).Append('=').Append(kv.Value);
        }
        return sb.ToString();
    }
}

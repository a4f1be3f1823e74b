namespace MmCheck.Litmus.Syntax;

internal enum IntegerError
{
    None,
    Overflow,
    MissingDigits,
    InvalidDigit,
}

/// <summary>Integer literals: decimal, 0x hex, 0b binary, C octal (0644), '_' between digits.</summary>
internal static class IntegerSyntax
{
    public static IntegerError Parse(ReadOnlySpan<char> text, out ulong value, out IntegerRadix radix, out int errorIndex)
    {
        value = 0;
        radix = IntegerRadix.Decimal;
        errorIndex = -1;
        if (text.IsEmpty)
        {
            errorIndex = 0;
            return IntegerError.MissingDigits;
        }

        int index = 0;
        bool anyDigit = false;
        if (text.Length >= 2 && text[0] == '0' && text[1] is 'x' or 'X')
        {
            radix = IntegerRadix.Hexadecimal;
            index = 2;
        }
        else if (text.Length >= 2 && text[0] == '0' && text[1] is 'b' or 'B')
        {
            radix = IntegerRadix.Binary;
            index = 2;
        }
        else if (text.Length >= 2 && text[0] == '0' && (char.IsAsciiDigit(text[1]) || text[1] == '_'))
        {
            // Kernel developers write modes as 0644 and mean octal; reading that as decimal 644
            // would be a silent surprise, so the literal follows C.
            radix = IntegerRadix.Octal;
            index = 1;
            anyDigit = true;
        }

        uint radixBase = BaseOf(radix);
        bool overflow = false;
        for (; index < text.Length; index++)
        {
            char c = text[index];
            if (c == '_')
            {
                continue;
            }

            int digit = DigitValue(c);
            if (digit < 0 || digit >= radixBase)
            {
                errorIndex = index;
                return IntegerError.InvalidDigit;
            }

            anyDigit = true;
            if (!overflow)
            {
                if (value > (ulong.MaxValue - (ulong)digit) / radixBase)
                {
                    overflow = true;
                }
                else
                {
                    value = (value * radixBase) + (ulong)digit;
                }
            }
        }

        if (!anyDigit)
        {
            errorIndex = text.Length;
            return IntegerError.MissingDigits;
        }

        if (overflow)
        {
            value = 0;
            return IntegerError.Overflow;
        }

        return IntegerError.None;
    }

    /// <summary>True when all of <paramref name="text"/> is one valid integer literal.</summary>
    public static bool TryParse(string text, out ulong value)
    {
        value = 0;
        return text.Length > 0 && char.IsAsciiDigit(text[0]) &&
            Parse(text, out value, out _, out _) == IntegerError.None;
    }

    public static uint BaseOf(IntegerRadix radix) => radix switch
    {
        IntegerRadix.Hexadecimal => 16,
        IntegerRadix.Binary => 2,
        IntegerRadix.Octal => 8,
        _ => 10,
    };

    public static string NameOf(IntegerRadix radix) => radix switch
    {
        IntegerRadix.Hexadecimal => "hexadecimal",
        IntegerRadix.Binary => "binary",
        IntegerRadix.Octal => "octal",
        _ => "decimal",
    };

    public static string Format(ulong value, IntegerRadix radix) => radix switch
    {
        IntegerRadix.Hexadecimal => "0x" + value.ToString("x", System.Globalization.CultureInfo.InvariantCulture),
        IntegerRadix.Binary => "0b" + ToBase(value, 2),
        IntegerRadix.Octal => "0" + ToBase(value, 8),
        _ => value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string ToBase(ulong value, uint radixBase)
    {
        Span<char> digits = stackalloc char[64];
        int position = digits.Length;
        do
        {
            digits[--position] = (char)('0' + (int)(value % radixBase));
            value /= radixBase;
        }
        while (value != 0);

        return new string(digits[position..]);
    }

    private static int DigitValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'z' => c - 'a' + 10,
        >= 'A' and <= 'Z' => c - 'A' + 10,
        _ => -1,
    };
}

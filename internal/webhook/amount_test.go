package webhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseAmount(t *testing.T) {
	t.Parallel()
	valid := []struct{ in, want string }{
		{"0", "0"},
		{"0.000001", "0.000001"},
		{"10", "10"},
		{"10.50", "10.5"},
		{"007", "7"},
		{"0.000000000000000001", "0.000000000000000001"},
		{"999999999999999999", "999999999999999999"},     // largest int64 fast path
		{"1000000000000000000", "1000000000000000000"},   // 19 digits: big path
		{"123456789012.123456", "123456789012.123456"},   // 18 digits total: fast path
		{"123456789012.1234567", "123456789012.1234567"}, // 19 digits total: big path
		{"123456789012345678901234567890.123456789012345678", "123456789012345678901234567890.123456789012345678"},
		{strings.Repeat("9", 30), strings.Repeat("9", 30)},
	}
	for _, tc := range valid {
		t.Run("valid/"+tc.in, func(t *testing.T) {
			t.Parallel()
			d, err := ParseAmount(tc.in)
			if err != nil {
				t.Fatalf("ParseAmount(%q): %v", tc.in, err)
			}
			if !d.Equal(decimal.RequireFromString(tc.want)) || d.String() != tc.want {
				t.Fatalf("ParseAmount(%q) = %s, want %s", tc.in, d, tc.want)
			}
		})
	}

	invalid := []string{
		"", "-1", "+1", "1e3", "1E3", "1e-3", "NaN", "nan", "Infinity", "-Infinity", "Inf",
		" 1", "1 ", "1.", ".5", "1,5", "1_000", "0x10", "0b1", "١٢", "１２", "1.2.3", "--1", "1\x00",
		"\u200b1", "1\n",
		strings.Repeat("1", 31),                                      // 31 integer digits
		"0" + strings.Repeat("0", 30),                                // leading zeros count
		"1." + strings.Repeat("1", 19),                               // 19 fraction digits
		strings.Repeat("9", 31) + ".5",                               //
		"1" + strings.Repeat("0", 400),                               // huge
		"0." + strings.Repeat("0", 17) + "01",                        // 19 fraction digits, tiny value
		"12345678901234567890123456789012345678901234567890.1234567", //
	}
	for _, in := range invalid {
		t.Run("invalid/"+quoteShort(in), func(t *testing.T) {
			t.Parallel()
			d, err := ParseAmount(in)
			if !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("ParseAmount(%q) = %s, %v; want ErrInvalidAmount", in, d, err)
			}
			if _, err := ParsePositiveAmount(in); !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("ParsePositiveAmount(%q) accepted it", in)
			}
		})
	}
}

func TestParsePositiveAmount(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"0", "0.0", "000", "0.000000000000000000"} {
		if d, err := ParseAmount(in); err != nil || !d.IsZero() {
			t.Errorf("ParseAmount(%q) = %s, %v; want 0", in, d, err)
		}
		if _, err := ParsePositiveAmount(in); !errors.Is(err, ErrInvalidAmount) || !strings.Contains(err.Error(), "zero") {
			t.Errorf("ParsePositiveAmount(%q) = %v; want a zero error", in, err)
		}
	}
	d, err := ParsePositiveAmount("0.000000000000000001")
	if err != nil || d.String() != "0.000000000000000001" {
		t.Fatalf("ParsePositiveAmount(smallest) = %s, %v", d, err)
	}
}

func TestParseAmountErrorMessageIsBounded(t *testing.T) {
	t.Parallel()
	_, err := ParseAmount("x" + strings.Repeat("\u202e", 10000))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("error %d bytes long: %.200v", len(err.Error()), err)
	}
	if strings.ContainsRune(err.Error(), '\u202e') {
		t.Fatal("error message carries a raw bidi override")
	}
}

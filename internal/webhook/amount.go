package webhook

import (
	"errors"
	"fmt"

	"github.com/shopspring/decimal"
)

// Limits of ParseAmount. 30 integer digits is far beyond any real balance and 18
// fraction digits is the precision of the finest token (wei); anything longer is
// a mistake or an attack, and would be rounded somewhere downstream.
const (
	MaxAmountIntegerDigits  = 30
	MaxAmountFractionDigits = 18
)

// ErrInvalidAmount is wrapped by every ParseAmount / ParsePositiveAmount error.
var ErrInvalidAmount = errors.New("invalid amount")

// ParseAmount is the one strict money parser: a plain decimal string matching
// ^[0-9]+(\.[0-9]+)?$ with at most 30 integer and 18 fraction digits (leading
// zeros count). No sign, exponent, spaces, separators, NaN/Infinity or non-ASCII
// digits: decimal.NewFromString alone would accept "1e3" and "-1", and a money
// field that could mean two things is rejected rather than guessed at. Zero is
// accepted; see ParsePositiveAmount.
func ParseAmount(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Decimal{}, fmt.Errorf("%w: empty", ErrInvalidAmount)
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := i
	if intDigits == 0 {
		return decimal.Decimal{}, fmt.Errorf("%w: %s does not start with a digit", ErrInvalidAmount, quoteShort(s))
	}
	fracDigits := 0
	if i < len(s) {
		if s[i] != '.' {
			return decimal.Decimal{}, fmt.Errorf("%w: %s has an unexpected character at byte %d", ErrInvalidAmount, quoteShort(s), i)
		}
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracDigits = i - start
		if fracDigits == 0 {
			return decimal.Decimal{}, fmt.Errorf("%w: %s has no digit after the decimal point", ErrInvalidAmount, quoteShort(s))
		}
		if i < len(s) {
			return decimal.Decimal{}, fmt.Errorf("%w: %s has an unexpected character at byte %d", ErrInvalidAmount, quoteShort(s), i)
		}
	}
	if intDigits > MaxAmountIntegerDigits {
		return decimal.Decimal{}, fmt.Errorf("%w: %d integer digits, at most %d", ErrInvalidAmount, intDigits, MaxAmountIntegerDigits)
	}
	if fracDigits > MaxAmountFractionDigits {
		return decimal.Decimal{}, fmt.Errorf("%w: %d fraction digits, at most %d", ErrInvalidAmount, fracDigits, MaxAmountFractionDigits)
	}
	if intDigits+fracDigits <= 18 {
		// Fits an int64 (< 10^18): build the coefficient directly, which skips
		// NewFromString's string splitting and big.Int parsing.
		var coef int64
		for j := 0; j < len(s); j++ {
			if c := s[j]; c != '.' {
				coef = coef*10 + int64(c-'0')
			}
		}
		return decimal.New(coef, -int32(fracDigits)), nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil { // unreachable for text that passed the checks above
		return decimal.Decimal{}, fmt.Errorf("%w: %w", ErrInvalidAmount, err)
	}
	return d, nil
}

// ParsePositiveAmount is ParseAmount for amounts that must move money: zero is
// rejected too.
func ParsePositiveAmount(s string) (decimal.Decimal, error) {
	d, err := ParseAmount(s)
	if err != nil {
		return decimal.Decimal{}, err
	}
	if d.Sign() <= 0 {
		return decimal.Decimal{}, fmt.Errorf("%w: %s is zero, must be greater than zero", ErrInvalidAmount, quoteShort(s))
	}
	return d, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

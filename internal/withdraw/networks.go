package withdraw

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/shopspring/decimal"
	"golang.org/x/crypto/sha3"
)

// AddressKind says how a chain's addresses are checked before anything is sent.
type AddressKind string

// Address kinds.
const (
	AddressEVM    AddressKind = "evm"    // 0x + 40 hex digits; a mixed-case address must match its EIP-55 checksum
	AddressTron   AddressKind = "tron"   // base58, T + 33 characters
	AddressSolana AddressKind = "solana" // base58, 32 to 44 characters
	AddressAny    AddressKind = "any"    // visible ASCII, no spaces, at most 128 characters
)

// Network is a chain that deposit addresses and withdrawals may use, with the
// currencies Interlace supports on it.
type Network struct {
	Chain      string // Interlace's chain code, spelled as Interlace spells it
	Address    AddressKind
	Currencies []string
}

// Networks is the table of supported (currency, chain) pairs, keyed by upper-cased
// chain code. Interlace's chain codes are opaque strings (the guide shows "ETH" and
// "ARB"); a pair outside the table is refused before any upstream call, so adding
// a chain means adding it here (DefaultNetworks) or passing a table built with
// ParseNetworks.
type Networks map[string]Network

// DefaultNetworks is the table sweeper ships with: USDC and USDT on the major EVM
// chains and Solana, USDT only on TRON (Circle stopped supporting USDC on TRON in
// 2024), and WUSD on Ethereum.
func DefaultNetworks() Networks {
	n, err := ParseNetworks("ETH:evm:USDC,USDT,WUSD;BSC:evm:USDC,USDT;POLYGON:evm:USDC,USDT;ARB:evm:USDC,USDT;" +
		"TRON:tron:USDT;SOL:solana:USDC,USDT")
	if err != nil {
		panic("withdraw: default networks: " + err.Error()) // a constant of this file
	}
	return n
}

// ParseNetworks reads a table written as `CHAIN:kind:CUR,CUR;CHAIN:kind:CUR…`, for
// example "ETH:evm:USDC,USDT;TRON:tron:USDT". kind is evm, tron, solana or any.
func ParseNetworks(spec string) (Networks, error) {
	out := Networks{}
	for _, entry := range strings.Split(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("network %q: want CHAIN:kind:CURRENCIES", entry)
		}
		chain := strings.TrimSpace(parts[0])
		if !visibleASCII(chain, 32) {
			return nil, fmt.Errorf("network %q: bad chain code", entry)
		}
		kind := AddressKind(strings.ToLower(strings.TrimSpace(parts[1])))
		switch kind {
		case AddressEVM, AddressTron, AddressSolana, AddressAny:
		default:
			return nil, fmt.Errorf("network %q: address kind %q is not evm, tron, solana or any", entry, parts[1])
		}
		n := Network{Chain: chain, Address: kind}
		for _, c := range strings.Split(parts[2], ",") {
			c = strings.ToUpper(strings.TrimSpace(c))
			if _, ok := currencyPlaces[c]; !ok || c == "USD" {
				return nil, fmt.Errorf("network %q: currency %q is not a supported stablecoin (USDC, USDT, WUSD)", entry, c)
			}
			n.Currencies = append(n.Currencies, c)
		}
		key := strings.ToUpper(chain)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("network %q listed twice", chain)
		}
		out[key] = n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no networks")
	}
	return out, nil
}

// String writes the table back in ParseNetworks' form, chains sorted.
func (ns Networks) String() string {
	keys := make([]string, 0, len(ns))
	for k := range ns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		n := ns[k]
		fmt.Fprintf(&b, "%s:%s:%s", n.Chain, n.Address, strings.Join(n.Currencies, ","))
	}
	return b.String()
}

// Lookup returns the network of a (currency, chain) pair, matching both
// case-insensitively; the returned Network carries the canonical chain code.
func (ns Networks) Lookup(currency, chain string) (Network, error) {
	n, ok := ns[strings.ToUpper(strings.TrimSpace(chain))]
	if !ok {
		return Network{}, invalid("unsupported_network", "chain", fmt.Sprintf("chain %q is not supported (supported: %s)", chain, ns))
	}
	cur := strings.ToUpper(strings.TrimSpace(currency))
	for _, c := range n.Currencies {
		if c == cur {
			return n, nil
		}
	}
	return Network{}, invalid("unsupported_network", "currency",
		fmt.Sprintf("currency %q is not supported on %s (supported: %s)", currency, n.Chain, strings.Join(n.Currencies, ", ")))
}

// currencyPlaces are the decimals each currency allows: what Interlace accepts,
// and what the sandbox enforces.
var currencyPlaces = map[string]int32{"USD": 2, "USDC": 6, "USDT": 6, "WUSD": 6}

// CheckAmount refuses non-positive amounts and amounts with more decimals than the
// currency allows (trailing zeros are fine: 10.50 USD is 2 decimals).
func CheckAmount(field string, d decimal.Decimal, currency string) error {
	places, ok := currencyPlaces[strings.ToUpper(currency)]
	if !ok {
		return invalid("unsupported_currency", field, fmt.Sprintf("currency %q is not supported", currency))
	}
	if !d.IsPositive() {
		return invalid("invalid_amount", field, fmt.Sprintf("%s must be greater than 0, got %s", field, d))
	}
	if !d.Equal(d.Truncate(places)) {
		return invalid("invalid_amount", field, fmt.Sprintf("%s %s has more than %d decimal places, the most %s allows",
			field, d, places, strings.ToUpper(currency)))
	}
	return nil
}

var (
	evmAddress    = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
	tronAddress   = regexp.MustCompile(`^T[1-9A-HJ-NP-Za-km-z]{33}$`)
	solanaAddress = regexp.MustCompile(`^[1-9A-HJ-NP-Za-km-z]{32,44}$`)
)

// CheckAddress validates a destination address for the network.
func (n Network) CheckAddress(addr string) error {
	bad := func(want string) error {
		return invalid("invalid_address", "address", fmt.Sprintf("address %q is not a valid %s address (%s)", addr, n.Chain, want))
	}
	switch n.Address {
	case AddressEVM:
		if !evmAddress.MatchString(addr) {
			return bad("0x followed by 40 hexadecimal digits")
		}
		if !evmChecksumOK(addr) {
			return bad("mixed-case address whose EIP-55 checksum does not match: a typo?")
		}
	case AddressTron:
		if !tronAddress.MatchString(addr) {
			return bad("base58, T followed by 33 characters")
		}
	case AddressSolana:
		if !solanaAddress.MatchString(addr) {
			return bad("base58, 32 to 44 characters")
		}
	default:
		if !visibleASCII(addr, 128) {
			return bad("visible ASCII without spaces, at most 128 characters")
		}
	}
	return nil
}

// evmChecksumOK checks EIP-55: an all-lower or all-upper address carries no
// checksum; a mixed-case one must capitalise exactly the letters whose nibble of
// keccak256(lower-case hex) is >= 8.
func evmChecksumOK(addr string) bool {
	hexPart := addr[2:]
	lower, upper := strings.ToLower(hexPart), strings.ToUpper(hexPart)
	if hexPart == lower || hexPart == upper {
		return true
	}
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := hex.EncodeToString(h.Sum(nil))
	for i, c := range hexPart {
		if c >= '0' && c <= '9' {
			continue
		}
		wantUpper := sum[i] >= '8'
		if isUpper := c >= 'A' && c <= 'F'; isUpper != wantUpper {
			return false
		}
	}
	return true
}

func visibleASCII(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

package withdraw

import (
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"go.uber.org/zap"
)

func TestCheckAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount, currency, code string
	}{
		{"10", "USD", ""},
		{"10.5", "USD", ""},
		{"10.50", "USD", ""},
		{"10.500", "USD", ""}, // trailing zeros carry no extra precision
		{"0.01", "USD", ""},
		{"10.005", "USD", "invalid_amount"},
		{"0", "USD", "invalid_amount"},
		{"-1", "USD", "invalid_amount"},
		{"0.000001", "USDC", ""},
		{"0.0000001", "USDC", "invalid_amount"},
		{"1.1234567", "USDT", "invalid_amount"},
		{"1.123456", "WUSD", ""},
		{"1", "EUR", "unsupported_currency"},
	} {
		err := CheckAmount("amount", decimal.RequireFromString(tc.amount), tc.currency)
		if got := code(err); got != tc.code {
			t.Errorf("%s %s: code %q (%v), want %q", tc.amount, tc.currency, got, err, tc.code)
		}
	}
}

func code(err error) string {
	var ie *InputError
	if errors.As(err, &ie) {
		return ie.Code
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestNetworksLookupAndAddresses(t *testing.T) {
	t.Parallel()
	ns := DefaultNetworks()
	for _, tc := range []struct {
		name, currency, chain, address, code, canonical string
	}{
		{"GuideARB", "USDC", "ARB", "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17", "", "ARB"},
		{"LowerCaseChainAndCurrency", "usdc", "eth", "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2", "", "ETH"},
		{"AllUpperHex", "USDT", "BSC", "0xD8B5F8E714D70E5CFF389C5C2BF51D27E61C92C2", "", "BSC"},
		{"BadChecksum", "USDC", "ETH", "0x89f9Cfaa0dA076351DdfC6E320bD8df8b538dB17", "invalid_address", ""},
		{"ShortEVM", "USDC", "POLYGON", "0x1234", "invalid_address", ""},
		{"NoPrefix", "USDC", "ETH", "89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17", "invalid_address", ""},
		{"NonHex", "USDC", "ETH", "0xg9F9Cfaa0dA076351DdfC6E320bD8df8b538dB17", "invalid_address", ""},
		{"Tron", "USDT", "TRON", "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9", "", "TRON"},
		{"TronEVMAddress", "USDT", "TRON", "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2", "invalid_address", ""},
		{"USDCNotOnTron", "USDC", "TRON", "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9", "unsupported_network", ""},
		{"Solana", "USDC", "SOL", "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV", "", "SOL"},
		{"SolanaWithZero", "USDC", "SOL", "0EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV", "invalid_address", ""},
		{"UnknownChain", "USDC", "DOGE", "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2", "unsupported_network", ""},
		{"USDIsNotOnChain", "USD", "ETH", "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2", "unsupported_network", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ns.Lookup(tc.currency, tc.chain)
			if err == nil {
				err = n.CheckAddress(tc.address)
			}
			if got := code(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
			if tc.code == "" && n.Chain != tc.canonical {
				t.Fatalf("chain %q, want %q", n.Chain, tc.canonical)
			}
		})
	}
}

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	ns, err := ParseNetworks(" ETH:evm:usdc ; OPTIMISM:EVM:USDC,USDT ;X:any:USDT")
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.String(); got != "ETH:evm:USDC;OPTIMISM:evm:USDC,USDT;X:any:USDT" {
		t.Fatalf("round trip %q", got)
	}
	if err := ns["X"].CheckAddress("some address"); code(err) != "invalid_address" {
		t.Fatalf("space in an 'any' address accepted: %v", err)
	}
	for _, bad := range []string{"", "ETH:evm", "ETH:btc:USDC", "ETH:evm:USD", "ETH:evm:USDC;eth:evm:USDT", "E TH:evm:USDC"} {
		if _, err := ParseNetworks(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := DefaultNetworks().String(); !strings.Contains(got, "TRON:tron:USDT") || !strings.Contains(got, "ARB:evm:USDC,USDT") {
		t.Fatalf("default table %s", got)
	}
}

// Validation happens before the database or Interlace is touched: a Service with
// neither still answers every invalid request.
func TestCheckWithdrawal(t *testing.T) {
	t.Parallel()
	s, err := NewService(Config{AccountID: "acc", MaxFeeRate: decimal.RequireFromString("0.02")}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	valid := func() WithdrawalRequest {
		return WithdrawalRequest{IdempotencyKey: "k1", WalletID: "w1", Amount: decimal.RequireFromString("10"),
			Currency: "USDC", Chain: "ETH", Address: "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2"}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*WithdrawalRequest)
		code   string
	}{
		{"Valid", func(*WithdrawalRequest) {}, ""},
		{"NoKey", func(r *WithdrawalRequest) { r.IdempotencyKey = " " }, "missing_field"},
		{"KeyWithSpace", func(r *WithdrawalRequest) { r.IdempotencyKey = "a b" }, "invalid_field"},
		{"NoWallet", func(r *WithdrawalRequest) { r.WalletID = "" }, "missing_field"},
		{"NoCurrency", func(r *WithdrawalRequest) { r.Currency = "" }, "missing_field"},
		{"NoChain", func(r *WithdrawalRequest) { r.Chain = "" }, "missing_field"},
		{"NoAddress", func(r *WithdrawalRequest) { r.Address = "" }, "missing_field"},
		{"ZeroAmount", func(r *WithdrawalRequest) { r.Amount = decimal.Zero }, "invalid_amount"},
		{"NegativeAmount", func(r *WithdrawalRequest) { r.Amount = decimal.RequireFromString("-5") }, "invalid_amount"},
		{"ThreeDecimalsUSD", func(r *WithdrawalRequest) { r.Amount = decimal.RequireFromString("10.001") }, "invalid_amount"},
		{"EURSource", func(r *WithdrawalRequest) { r.SourceCurrency = "EUR" }, "unsupported_currency"},
		{"ExplicitUSD", func(r *WithdrawalRequest) { r.SourceCurrency = "usd" }, ""},
		{"UnknownPair", func(r *WithdrawalRequest) { r.Chain = "TRON"; r.Address = "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9" }, "unsupported_network"},
		{"BadEVMAddress", func(r *WithdrawalRequest) { r.Address = "0xabc" }, "invalid_address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.mutate(&r)
			if got := code(s.CheckWithdrawal(&r)); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}
	r := valid()
	r.Currency, r.Chain = "usdc", "eth"
	if err := s.CheckWithdrawal(&r); err != nil || r.Currency != "USDC" || r.Chain != "ETH" || r.SourceCurrency != "USD" {
		t.Fatalf("not normalised: %+v %v", r, err)
	}
}

func TestCheckWalletRequest(t *testing.T) {
	t.Parallel()
	s, err := NewService(Config{AccountID: "acc"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  WalletRequest
		code string
	}{
		{"Valid", WalletRequest{UserRef: "user-1", Nickname: "Ann", Addresses: []AddressRequest{{"USDC", "ETH"}}}, ""},
		{"NoUser", WalletRequest{}, "missing_field"},
		{"UserWithSpace", WalletRequest{UserRef: "a b"}, "invalid_field"},
		{"LongNickname", WalletRequest{UserRef: "u", Nickname: strings.Repeat("x", 65)}, "invalid_field"},
		{"ControlInNickname", WalletRequest{UserRef: "u", Nickname: "a\nb"}, "invalid_field"},
		{"AddressWithoutChain", WalletRequest{UserRef: "u", Addresses: []AddressRequest{{"USDC", ""}}}, "missing_field"},
		{"UnsupportedPair", WalletRequest{UserRef: "u", Addresses: []AddressRequest{{"USDC", "TRON"}}}, "unsupported_network"},
		{"TooMany", WalletRequest{UserRef: "u", Addresses: make([]AddressRequest, 21)}, "invalid_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req
			if got := code(s.checkWalletRequest(&r)); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}
	r := WalletRequest{UserRef: "u", Addresses: []AddressRequest{{"usdc", "eth"}, {"USDC", "ETH"}, {"USDT", "tron"}}}
	if err := s.checkWalletRequest(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Addresses) != 2 || r.Addresses[0] != (AddressRequest{"USDC", "ETH"}) || r.Addresses[1] != (AddressRequest{"USDT", "TRON"}) {
		t.Fatalf("addresses not normalised and deduplicated: %+v", r.Addresses)
	}
}

func TestRunnerConfigDefaults(t *testing.T) {
	t.Parallel()
	if _, err := NewRunner(RunnerConfig{AccountID: "a"}, nil, nil, zap.NewNop(), nil); err == nil {
		t.Fatal("runner without owner accepted")
	}
	r, err := NewRunner(RunnerConfig{Owner: "o", AccountID: "a"}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.Concurrency != 1 || r.cfg.SourceCurrency != "USD" || r.cfg.Lease <= 0 {
		t.Fatalf("defaults %+v", r.cfg)
	}
}

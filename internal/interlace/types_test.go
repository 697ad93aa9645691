package interlace

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestMillisDecoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64 // 0 means the zero time
		ok   bool
	}{
		{`"1762413577403"`, 1762413577403, true},
		{`1762413577403`, 1762413577403, true},
		{`1.762413577403e12`, 1762413577403, true},
		{`"1762413577403.0"`, 1762413577403, true},
		{`null`, 0, true},
		{`""`, 0, true},
		{`0`, 0, true},
		{`"0"`, 0, true},
		{`"soon"`, 0, false},
		{`1762413577403.5`, 0, false},
		{`true`, 0, false},
		{`{}`, 0, false},
		{`"99999999999999999999999"`, 0, false},
	} {
		var v struct {
			T Millis `json:"t"`
		}
		err := json.Unmarshal([]byte(`{"t":`+tc.in+`}`), &v)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if tc.want == 0 {
			if !v.T.IsZero() {
				t.Errorf("%s: got %v, want the zero time", tc.in, v.T)
			}
			continue
		}
		ms(t, tc.in, v.T, tc.want)
	}
}

func TestMillisEncoding(t *testing.T) {
	t.Parallel()
	m := NewMillis(time.Date(2025, 11, 6, 7, 19, 37, 403_999_999, time.FixedZone("x", 3600)))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "json", string(b), `"1762409977403"`)
	eq(t, "location", m.Location(), time.UTC)

	var back Millis
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	eq(t, "round trip", back.Equal(m.Time), true)

	b, err = json.Marshal(Millis{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "zero", string(b), "null")
}

func TestFlexInt(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{`"60000"`: 60000, `60000`: 60000, `"1"`: 1, `null`: 0, `""`: 0, `6e4`: 60000} {
		var f FlexInt
		if err := json.Unmarshal([]byte(in), &f); err != nil || int64(f) != want {
			t.Errorf("%s: got %d, %v; want %d", in, f, err, want)
		}
	}
	for _, in := range []string{`"x"`, `1.5`, `[]`, `false`} {
		var f FlexInt
		if err := json.Unmarshal([]byte(in), &f); err == nil {
			t.Errorf("%s: accepted as %d", in, f)
		}
	}
	b, _ := json.Marshal(FlexInt(42))
	eq(t, "marshal", string(b), `"42"`)
}

// rate is a number in one guide example (1.00) and a string in another ("1"); amounts may come either
// way too. Long amounts must keep every digit.
func TestDecimalFieldsAcceptStringsAndNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`1.00`, "1"},
		{`"1"`, "1"},
		{`"0.000000000000000001"`, "0.000000000000000001"},
		{`123456789012345678901234567890.123456789`, "123456789012345678901234567890.123456789"},
		{`null`, "0"},
	} {
		var leg TransferLeg
		if err := json.Unmarshal([]byte(`{"rate":`+tc.in+`,"amount":`+tc.in+`}`), &leg); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		dec(t, "rate "+tc.in, leg.Rate, tc.want)
		dec(t, "amount "+tc.in, leg.Amount, tc.want)
	}
	for _, in := range []string{`""`, `"ten"`, `true`, `{}`, `"NaN"`} {
		var leg TransferLeg
		if err := json.Unmarshal([]byte(`{"amount":`+in+`}`), &leg); err == nil {
			t.Errorf("%s: accepted as %s", in, leg.Amount)
		}
	}
}

// Amounts go out as JSON strings even if some other package flips decimal's process-wide switch.
// Not parallel: it changes a package variable of decimal, restored before any parallel test runs.
func TestRequestAmountsAreAlwaysStrings(t *testing.T) {
	old := decimal.MarshalJSONWithoutQuotes
	decimal.MarshalJSONWithoutQuotes = true
	defer func() { decimal.MarshalJSONWithoutQuotes = old }()

	amount := decimal.RequireFromString("125.500000")
	for name, v := range map[string]any{
		"InternalTransferRequest": InternalTransferRequest{ClientTransactionID: "k", Amount: amount},
		"QuoteRequest":            QuoteRequest{RFQAmount: amount},
		"TradeRequest":            TradeRequest{RFQAmount: amount},
		"FeeQuotaRequest":         FeeQuotaRequest{Amount: Money{Amount: amount, Currency: "USDC"}},
		"BlockchainTransfer":      BlockchainTransferRequest{Amount: Money{Amount: amount, Currency: "USDC"}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"125.5"`) || strings.Contains(string(b), `:125.5`) {
			t.Errorf("%s: amount not sent as an exact string: %s", name, b)
		}
		if strings.Count(string(b), "125.5") != 1 {
			t.Errorf("%s: amount appears more than once: %s", name, b)
		}
	}
	// An empty optional accountId is not sent.
	b, _ := json.Marshal(BlockchainTransferRequest{IdempotencyKey: "k"})
	if strings.Contains(string(b), "accountId") {
		t.Errorf("empty accountId sent: %s", b)
	}
}

func TestAddressAcceptsObjectOrString(t *testing.T) {
	t.Parallel()
	var w Wallet
	err := json.Unmarshal([]byte(`{"id":"w","addresses":[{"currency":"USDC","chain":"ETH","address":"0xa","selected":true},"0xb"]}`), &w)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "first", w.Addresses[0], Address{Currency: "USDC", Chain: "ETH", Address: "0xa", Selected: true})
	eq(t, "second", w.Addresses[1], Address{Address: "0xb"})
}

func TestTotalFees(t *testing.T) {
	t.Parallel()
	d := decimal.RequireFromString
	for _, tc := range []struct {
		name string
		leg  TransferLeg
		sum  string
		cur  string
		err  error
	}{
		{"None", TransferLeg{Currency: "USDC"}, "0", "USDC", nil},
		{"ZeroLineInOtherCurrency", TransferLeg{Currency: "USDC", Fees: []LegFee{{Amount: d("0"), Currency: "USD"}, {Amount: d("0.05"), Currency: "USDC"}}}, "0.05", "USDC", nil},
		{"Sum", TransferLeg{Currency: "USDC", Fees: []LegFee{{Amount: d("0.05"), Currency: "USDC"}, {Amount: d("0.010000000000000001"), Currency: "USDC"}}}, "0.060000000000000001", "USDC", nil},
		{"Mixed", TransferLeg{Currency: "USDC", Fees: []LegFee{{Amount: d("1"), Currency: "USDC"}, {Amount: d("1"), Currency: "USD"}}}, "0", "", ErrMixedFeeCurrencies},
	} {
		sum, cur, err := tc.leg.TotalFees()
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
		dec(t, tc.name+" sum", sum, tc.sum)
		eq(t, tc.name+" currency", cur, tc.cur)
	}
}

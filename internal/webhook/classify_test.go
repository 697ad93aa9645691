package webhook

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// sampleDeposit is the deposit resource of contract.md §4 with real-looking values.
const sampleDeposit = `{"id":"5f0c8b52-6f7e-4c3a-9d0e-2b1a7c4d9e31","accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347",` +
	`"source":{"type":"blockchain","chain":"ETH","address":"0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},` +
	`"destination":{"type":"cryptoconnect_wallet","id":"32aae8b7-4a69-474f-b7d5-337e190af878","address":"0x4E83362442B8d1beC281594cEa3050c8EB01311C"},` +
	`"amount":{"amount":"10.5","currency":"USDC"},"fees":[{"amount":"0","currency":"USDC","type":"GAS"}],` +
	`"status":"Closed","transactionHash":"0x9fc76417374aa880d4449a1f7f31ec597f00b1f6f3dd2d66f4c9c6c445836d8b",` +
	`"createTime":"1758276661923","updateTime":"1758276662488"}`

// depositWith returns sampleDeposit with edit applied to its decoded form.
func depositWith(t testing.TB, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(sampleDeposit), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func mustClassify(t testing.TB, resource string) Classification {
	t.Helper()
	c, err := ClassifyResource(resource)
	if err != nil {
		t.Fatalf("ClassifyResource(%s): %v", resource, err)
	}
	return c
}

func TestClassifySampleDeposit(t *testing.T) {
	t.Parallel()
	c := mustClassify(t, sampleDeposit)
	if c.Kind != KindDeposit || c.Deposit == nil || c.TransferID != "5f0c8b52-6f7e-4c3a-9d0e-2b1a7c4d9e31" {
		t.Fatalf("got %+v", c)
	}
	d := c.Deposit
	want := Deposit{
		TransferID: "5f0c8b52-6f7e-4c3a-9d0e-2b1a7c4d9e31", AccountID: "b27c8873-e400-47cd-adc1-035cfa0d5347",
		WalletID: "32aae8b7-4a69-474f-b7d5-337e190af878", Chain: "ETH",
		SourceAddress:  "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17",
		DepositAddress: "0x4E83362442B8d1beC281594cEa3050c8EB01311C",
		TxHash:         "0x9fc76417374aa880d4449a1f7f31ec597f00b1f6f3dd2d66f4c9c6c445836d8b",
		Currency:       "USDC", Status: "Closed", Class: ClassFinal,
		CreatedAt: time.UnixMilli(1758276661923).UTC(), UpdatedAt: time.UnixMilli(1758276662488).UTC(),
	}
	if !d.Amount.Equal(decimal.RequireFromString("10.5")) {
		t.Errorf("amount %s", d.Amount)
	}
	if len(d.Fees) != 1 || d.Fees[0].Type != "GAS" || d.Fees[0].Currency != "USDC" || !d.Fees[0].Amount.IsZero() {
		t.Errorf("fees %+v", d.Fees)
	}
	got := *d
	got.Amount, got.Fees = decimal.Decimal{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestClassStatus(t *testing.T) {
	t.Parallel()
	tests := map[StatusClass][]string{
		ClassFinal:   {"closed", "Closed", "CLOSED", "completed", "COMPLETED", "success", "Success", " closed ", "\tCLOSED\n"},
		ClassPending: {"pending", "Pending", "PENDING", "processing", "PROCESSING", "on_hold", "ON_HOLD", "OnHold", "onhold", "on-hold", "On-Hold"},
		ClassFailed:  {"failed", "FAILED", "rejected", "Rejected", "refunded", "REFUNDED", "cancelled", "CANCELLED", "canceled", "Canceled"},
		ClassUnknown: {"", " ", "COMPLETE", "done", "succeeded", "closedd", "close", "on hold", "cloſed", "ϲlosed", "CLOSED\u200b", "failed!", "null"},
	}
	for want, statuses := range tests {
		for _, s := range statuses {
			if got := ClassStatus(s); got != want {
				t.Errorf("ClassStatus(%q) = %s, want %s", s, got, want)
			}
		}
	}
}

// Every status class, through the whole resource.
func TestClassifyStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status string
		want   StatusClass
	}{
		{"CLOSED", ClassFinal}, {"Completed", ClassFinal}, {"success", ClassFinal},
		{"PENDING", ClassPending}, {"Processing", ClassPending}, {"ON_HOLD", ClassPending}, {"OnHold", ClassPending},
		{"FAILED", ClassFailed}, {"Rejected", ClassFailed}, {"REFUNDED", ClassFailed}, {"Cancelled", ClassFailed}, {"canceled", ClassFailed},
		{"EXPIRED", ClassUnknown}, {"", ClassUnknown},
	}
	for _, tc := range tests {
		res := depositWith(t, func(m map[string]any) { m["status"] = tc.status })
		c := mustClassify(t, res)
		if c.Deposit.Class != tc.want || c.Deposit.Status != tc.status {
			t.Errorf("status %q: class %s (status %q), want %s", tc.status, c.Deposit.Class, c.Deposit.Status, tc.want)
		}
	}
	noStatus := depositWith(t, func(m map[string]any) { delete(m, "status") })
	if c := mustClassify(t, noStatus); c.Deposit.Class != ClassUnknown || c.Deposit.Status != "" {
		t.Errorf("missing status: %+v", c.Deposit)
	}
}

func TestClassifyShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		resource string
		want     Kind
	}{
		{"sample", sampleDeposit, KindDeposit},
		{"upper-case type", depositWith(t, func(m map[string]any) { sub(m, "destination")["type"] = "CRYPTOCONNECT_WALLET" }), KindDeposit},
		{"mixed case, spaces", depositWith(t, func(m map[string]any) { sub(m, "destination")["type"] = " CryptoConnect_Wallet " }), KindDeposit},
		{"escaped type", strings.Replace(sampleDeposit, `"cryptoconnect_wallet"`, `"cryptoconnect\u005fwallet"`, 1), KindDeposit},
		{"withdrawal", `{"id":"t","source":{"type":"cryptoconnect_wallet","id":"w"},"destination":{"type":"blockchain","chain":"ETH","address":"0x1"},"amount":{"amount":"9.95","currency":"USDC"},"status":"Pending"}`, KindOther},
		{"wallet-to-wallet fee preview shape", depositWith(t, func(m map[string]any) { sub(m, "destination")["type"] = "WALLET" }), KindOther},
		{"look-alike type", depositWith(t, func(m map[string]any) { sub(m, "destination")["type"] = "cryptoconnect_wallet\u200b" }), KindOther},
		{"no destination", depositWith(t, func(m map[string]any) { delete(m, "destination") }), KindOther},
		{"destination string", depositWith(t, func(m map[string]any) { m["destination"] = "cryptoconnect_wallet" }), KindOther},
		{"destination null", depositWith(t, func(m map[string]any) { m["destination"] = nil }), KindOther},
		{"destination type number", depositWith(t, func(m map[string]any) { sub(m, "destination")["type"] = 1 }), KindOther},
		{"destination without type", depositWith(t, func(m map[string]any) { delete(sub(m, "destination"), "type") }), KindOther},
		{"card transaction", `{"id":"r-123","accountId":"acc-1","cardId":"c-1","status":"CLOSED","amount":"5","currency":"USD"}`, KindOther},
		{"empty object", `{}`, KindOther},
		{"unusable-looking but not a deposit", `{"id":"\u202e","amount":"-1"}`, KindOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustClassify(t, tc.resource)
			if c.Kind != tc.want || (c.Deposit != nil) != (tc.want == KindDeposit) {
				t.Fatalf("got %+v, want kind %s", c, tc.want)
			}
		})
	}
}

// Deposits are recognised by shape, whatever the event is called.
func TestClassifyIgnoresEventType(t *testing.T) {
	t.Parallel()
	for _, eventType := range []string{"CRYPTO_TRANSFER.UPDATED", "CRYPTOCONNECT_TRANSFER.CREATED", "CARD_TRANSACTION.CREATED", "KYC.UPDATED", ""} {
		env := mustEnvelope(t, envelopeBody(t, "n-1", eventType, sampleDeposit))
		if c := mustClassify(t, env.Resource); c.Kind != KindDeposit {
			t.Errorf("eventType %q: kind %s", eventType, c.Kind)
		}
		env = mustEnvelope(t, envelopeBody(t, "n-2", eventType, `{"id":"card-1","status":"CLOSED"}`))
		if c := mustClassify(t, env.Resource); c.Kind != KindOther {
			t.Errorf("eventType %q: non-deposit classified %s", eventType, c.Kind)
		}
	}
}

func TestClassifyTolerance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		resource string
		check    func(t *testing.T, d *Deposit)
	}{
		{"amounts and times as JSON numbers", depositWith(t, func(m map[string]any) {
			sub(m, "amount")["amount"] = json.Number("10.5")
			m["fees"] = []any{map[string]any{"amount": json.Number("0.25"), "currency": "usdc", "type": "GAS"}}
			m["createTime"] = json.Number("1758276661923")
		}), func(t *testing.T, d *Deposit) {
			if d.Amount.String() != "10.5" || d.Fees[0].Amount.String() != "0.25" || d.Fees[0].Currency != "USDC" ||
				!d.CreatedAt.Equal(time.UnixMilli(1758276661923)) {
				t.Errorf("%+v", d)
			}
		}},
		{"amount with every digit kept", depositWith(t, func(m map[string]any) {
			sub(m, "amount")["amount"] = json.Number("123456789012345678901234567890.123456789012345678")
		}), func(t *testing.T, d *Deposit) {
			if d.Amount.String() != "123456789012345678901234567890.123456789012345678" {
				t.Errorf("amount %s", d.Amount)
			}
		}},
		{"lower-case currency", depositWith(t, func(m map[string]any) { sub(m, "amount")["currency"] = "usdt" }),
			func(t *testing.T, d *Deposit) {
				if d.Currency != "USDT" {
					t.Errorf("currency %q", d.Currency)
				}
			}},
		{"flat amount with top-level currency", depositWith(t, func(m map[string]any) { m["amount"] = "7.25"; m["currency"] = "eth" }),
			func(t *testing.T, d *Deposit) {
				if d.Amount.String() != "7.25" || d.Currency != "ETH" {
					t.Errorf("%s %s", d.Amount, d.Currency)
				}
			}},
		{"pending with null hash, no fees, no times, no account", depositWith(t, func(m map[string]any) {
			m["status"], m["transactionHash"], m["fees"] = "PENDING", nil, nil
			delete(m, "createTime")
			delete(m, "updateTime")
			delete(m, "accountId")
			delete(m, "source")
		}), func(t *testing.T, d *Deposit) {
			if d.TxHash != "" || d.Fees != nil || !d.CreatedAt.IsZero() || !d.UpdatedAt.IsZero() || d.AccountID != "" ||
				d.Chain != "" || d.SourceAddress != "" || d.Class != ClassPending {
				t.Errorf("%+v", d)
			}
		}},
		{"txHash alias, chain at the top", depositWith(t, func(m map[string]any) {
			delete(m, "transactionHash")
			delete(sub(m, "source"), "chain")
			m["txHash"], m["chain"] = "0xabc", "TRON"
		}), func(t *testing.T, d *Deposit) {
			if d.TxHash != "0xabc" || d.Chain != "TRON" {
				t.Errorf("%+v", d)
			}
		}},
		{"RFC 3339 times", depositWith(t, func(m map[string]any) { m["createTime"] = "2025-09-19T10:11:01.923Z" }),
			func(t *testing.T, d *Deposit) {
				if !d.CreatedAt.Equal(time.UnixMilli(1758276661923)) {
					t.Errorf("createTime %v", d.CreatedAt)
				}
			}},
		{"unknown fields and case-variant keys", depositWith(t, func(m map[string]any) {
			m["extra"] = map[string]any{"deep": []any{1, "x", map[string]any{"y": nil}}}
			m["STATUS"] = m["status"]
			delete(m, "status")
		}), func(t *testing.T, d *Deposit) {
			if d.Status != "Closed" {
				t.Errorf("status %q", d.Status)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustClassify(t, tc.resource)
			if c.Kind != KindDeposit || c.Deposit == nil {
				t.Fatalf("got %+v", c)
			}
			tc.check(t, c.Deposit)
		})
	}
}

func TestClassifyUnusable(t *testing.T) {
	t.Parallel()
	const sampleID = "5f0c8b52-6f7e-4c3a-9d0e-2b1a7c4d9e31"
	set := func(path string, v any) string {
		return depositWith(t, func(m map[string]any) {
			keys := strings.Split(path, ".")
			for _, k := range keys[:len(keys)-1] {
				m = sub(m, k)
			}
			if v == nil {
				delete(m, keys[len(keys)-1])
				return
			}
			m[keys[len(keys)-1]] = v
		})
	}
	null := json.RawMessage("null")
	tests := []struct {
		name     string
		resource string
		reason   string // substring of the error
		kind     Kind
		transfer string // Classification.TransferID
		also     error  // another sentinel the error wraps
	}{
		{"not JSON", `{"id":`, "not valid JSON", KindOther, "", nil},
		{"not JSON at all", `deposit`, "not valid JSON", KindOther, "", nil},
		{"empty resource", ``, "not valid JSON", KindOther, "", nil},
		{"array", `[` + sampleDeposit + `]`, "not a JSON object", KindOther, "", nil},
		{"string", string(must(json.Marshal(sampleDeposit))), "not a JSON object", KindOther, "", nil},
		{"number", `10.5`, "not a JSON object", KindOther, "", nil},
		{"invalid UTF-8", "{\"id\":\"\xff\"}", "not valid JSON", KindOther, "", nil},

		{"duplicate top-level id", strings.Replace(sampleDeposit, `{"id":`, `{"id":"evil","id":`, 1), `duplicate key "id"`, KindOther, "", ErrDuplicateKey},
		{"duplicate case variant", strings.Replace(sampleDeposit, `{"id":`, `{"ID":"evil","id":`, 1), "duplicate key", KindOther, "", ErrDuplicateKey},
		{"duplicate amount", strings.Replace(sampleDeposit, `"amount":{"amount":"10.5"`, `"amount":{"amount":"1","amount":"10.5"`, 1), `duplicate key "amount"`, KindOther, "", ErrDuplicateKey},
		{"duplicate destination", strings.Replace(sampleDeposit, `"destination":{`, `"destination":{"type":"blockchain"},"destination":{`, 1), `duplicate key "destination"`, KindOther, "", ErrDuplicateKey},
		{"duplicate wallet id", strings.Replace(sampleDeposit, `"id":"32aae8b7`, `"id":"other","id":"32aae8b7`, 1), "duplicate key", KindOther, "", ErrDuplicateKey},
		{"duplicate in a fee", strings.Replace(sampleDeposit, `"type":"GAS"`, `"type":"GAS","type":"FX"`, 1), "duplicate key", KindOther, "", ErrDuplicateKey},
		{"duplicate via escape", strings.Replace(sampleDeposit, `"status":`, `"st\u0061tus":"PENDING","status":`, 1), "duplicate key", KindOther, "", ErrDuplicateKey},
		{"absurd nesting", `{"id":"t","x":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`, "nested deeper", KindOther, "", nil},

		{"transfer id missing", set("id", nil), "transfer id: missing", KindDeposit, "", nil},
		{"transfer id empty", set("id", ""), "transfer id: missing", KindDeposit, "", nil},
		{"transfer id null", set("id", null), "transfer id: missing", KindDeposit, "", nil},
		{"transfer id number", set("id", 12345), "transfer id: is a number", KindDeposit, "", nil},
		{"transfer id zero-width", set("id", "5f0c8b52\u200b"), "transfer id", KindDeposit, "", nil},
		{"transfer id RTL override", set("id", "\u202e13e9-5f0c8b52"), "transfer id", KindDeposit, "", nil},
		{"transfer id Cyrillic homoglyph", set("id", "5f0c8b52-6f7e-4c3\u0430"), "transfer id", KindDeposit, "", nil},
		{"transfer id control char", set("id", "5f0c\n8b52"), "transfer id", KindDeposit, "", nil},
		{"transfer id NUL", set("id", "5f0c\x008b52"), "transfer id", KindDeposit, "", nil},
		{"transfer id space", set("id", "5f0c 8b52"), "transfer id", KindDeposit, "", nil},
		{"transfer id DEL", set("id", "5f0c\x7f"), "transfer id", KindDeposit, "", nil},
		{"transfer id 129 chars", set("id", strings.Repeat("a", 129)), "transfer id: longer than 128", KindDeposit, "", nil},
		{"account id unicode", set("accountId", "b27c8873\u2060"), "account id", KindDeposit, sampleID, nil},
		{"wallet id missing", set("destination.id", nil), "wallet id (destination.id): missing", KindDeposit, sampleID, nil},
		{"wallet id empty", set("destination.id", ""), "wallet id (destination.id): missing", KindDeposit, sampleID, nil},
		{"wallet id homoglyph", set("destination.id", "32aae8b7-4\u0430"), "wallet id", KindDeposit, sampleID, nil},
		{"wallet id too long", set("destination.id", strings.Repeat("w", 200)), "wallet id (destination.id): longer than 128", KindDeposit, sampleID, nil},
		{"deposit address unicode", set("destination.address", "0x4E83\u200d"), "deposit address", KindDeposit, sampleID, nil},
		{"source address unicode", set("source.address", "0x89F9\u202e"), "source address", KindDeposit, sampleID, nil},
		{"source not an object", set("source", "blockchain"), "source: is a string", KindDeposit, sampleID, nil},
		{"chain unicode", set("source.chain", "ЕТН"), "chain", KindDeposit, sampleID, nil},
		{"tx hash number", set("transactionHash", 12), "transaction hash: is a number", KindDeposit, sampleID, nil},

		{"currency missing", set("amount.currency", nil), "currency: missing", KindDeposit, sampleID, nil},
		{"currency empty", set("amount.currency", ""), "currency: missing", KindDeposit, sampleID, nil},
		{"currency number", set("amount.currency", 840), "currency: is a number", KindDeposit, sampleID, nil},
		{"currency one letter", set("amount.currency", "U"), "currency", KindDeposit, sampleID, nil},
		{"currency too long", set("amount.currency", "USDCUSDCUSD"), "currency", KindDeposit, sampleID, nil},
		{"currency with space", set("amount.currency", "US DC"), "currency", KindDeposit, sampleID, nil},
		{"currency with dash", set("amount.currency", "USD-C"), "currency", KindDeposit, sampleID, nil},
		{"currency zero-width", set("amount.currency", "USDC\u200b"), "currency", KindDeposit, sampleID, nil},
		{"currency Cyrillic T", set("amount.currency", "USD\u0422"), "currency", KindDeposit, sampleID, nil},
		{"currency long s upper-cases to S", set("amount.currency", "u\u017fdc"), "currency", KindDeposit, sampleID, nil},
		{"currency dotless i upper-cases to I", set("amount.currency", "b\u0131t"), "currency", KindDeposit, sampleID, nil},

		{"amount missing", set("amount.amount", nil), "amount: missing", KindDeposit, sampleID, nil},
		{"amount object missing", set("amount", nil), "missing", KindDeposit, sampleID, nil},
		{"amount null", set("amount.amount", null), "amount: missing", KindDeposit, sampleID, nil},
		{"amount negative", set("amount.amount", "-10.5"), "amount: invalid amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount negative number", set("amount.amount", json.Number("-10.5")), "amount: invalid amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount zero", set("amount.amount", "0"), "zero", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount zero number", set("amount.amount", json.Number("0.000")), "zero", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount exponent", set("amount.amount", "1e3"), "amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount exponent number", set("amount.amount", json.Number("1E3")), "amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount NaN", set("amount.amount", "NaN"), "amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount Infinity", set("amount.amount", "Infinity"), "amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount huge", set("amount.amount", "1"+strings.Repeat("0", 30)), "31 integer digits", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount too precise", set("amount.amount", "0."+strings.Repeat("1", 19)), "19 fraction digits", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount with comma", set("amount.amount", "10,5"), "amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"amount boolean", set("amount.amount", true), "amount: is a boolean", KindDeposit, sampleID, nil},
		{"amount array", set("amount", []any{"10.5", "USDC"}), "amount: is an array", KindDeposit, sampleID, nil},

		{"status number", set("status", 3), "status: is a number", KindDeposit, sampleID, nil},
		{"status control char", set("status", "CLOSED\r\n"), "status", KindDeposit, sampleID, nil},
		{"status too long", set("status", strings.Repeat("S", 65)), "status: longer than 64", KindDeposit, sampleID, nil},
		{"fees object", set("fees", map[string]any{"amount": "0"}), "fees: is an object", KindDeposit, sampleID, nil},
		{"fee not an object", set("fees", []any{"0.1"}), "fees[0]: is a string", KindDeposit, sampleID, nil},
		{"fee negative", set("fees", []any{map[string]any{"amount": "0", "currency": "USDC"}, map[string]any{"amount": "-1", "currency": "USDC"}}), "fees[1]: amount", KindDeposit, sampleID, ErrInvalidAmount},
		{"fee currency", set("fees", []any{map[string]any{"amount": "1", "currency": "$"}}), "fees[0]: currency", KindDeposit, sampleID, nil},
		{"fee type control char", set("fees", []any{map[string]any{"amount": "1", "currency": "USDC", "type": "G\tAS"}}), "fees[0]: type", KindDeposit, sampleID, nil},
		{"too many fees", set("fees", func() []any {
			fees := make([]any, 65)
			for i := range fees {
				fees[i] = map[string]any{"amount": "0", "currency": "USDC"}
			}
			return fees
		}()), "more than 64", KindDeposit, sampleID, nil},
		{"createTime garbage", set("createTime", "yesterday"), "createTime", KindDeposit, sampleID, nil},
		{"createTime float", set("createTime", json.Number("1.758276661923e12")), "createTime", KindDeposit, sampleID, nil},
		{"updateTime object", set("updateTime", map[string]any{}), "updateTime: is an object", KindDeposit, sampleID, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ClassifyResource(tc.resource)
			if !errors.Is(err, ErrUnusable) {
				t.Fatalf("ClassifyResource = %+v, %v; want ErrUnusable\nresource: %s", c, err, tc.resource)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("error %q does not wrap %v", err, tc.also)
			}
			if c.Kind != tc.kind || c.Deposit != nil || c.TransferID != tc.transfer {
				t.Errorf("classification %+v, want kind %s, transfer %q, no deposit", c, tc.kind, tc.transfer)
			}
			if len(err.Error()) > 300 || strings.ContainsAny(err.Error(), "\x00\n\r\u202e\u200b") {
				t.Errorf("error message unsafe for logs: %q", err)
			}
		})
	}
}

var currencyRE = regexp.MustCompile(`^[A-Z0-9]{2,10}$`)

func TestClassifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ClassifyResource(sampleDeposit); err != nil {
			t.Fatal(err)
		}
	})
	// The Deposit, the fee slice and the decimals' big.Ints; strings are
	// substrings of the resource.
	if allocs > 24 {
		t.Fatalf("ClassifyResource allocates %.0f times, want at most 24", allocs)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

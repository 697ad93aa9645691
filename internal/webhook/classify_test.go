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

	"github.com/sweeperhq/sweeper/internal/status"
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
		Currency:       "USDC", Status: "Closed", Class: status.Final, Origin: "blockchain",
		CreatedAt: time.UnixMilli(1758276661923).UTC(), UpdatedAt: time.UnixMilli(1758276662488).UTC(),
	}
	if !d.Amount.Equal(decimal.RequireFromString("10.5")) {
		t.Errorf("amount %s", d.Amount)
	}
	if len(d.Fees) != 1 || d.Fees[0].Type != "GAS" || d.Fees[0].Currency != "USDC" || !d.Fees[0].Amount.IsZero() {
		t.Errorf("fees %+v", d.Fees)
	}
	got := *d
	if string(d.FeesJSON) != `[{"amount":"0","currency":"USDC","type":"GAS"}]` {
		t.Errorf("fees as sent: %s", d.FeesJSON)
	}
	got.Amount, got.Fees, got.FeesJSON = decimal.Decimal{}, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// Every status class, through the whole resource.
func TestClassifyStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status string
		want   status.Class
	}{
		{"CLOSED", status.Final}, {"Completed", status.Final}, {"success", status.Final},
		{"PENDING", status.Waiting}, {"Processing", status.Waiting}, {"ON_HOLD", status.Waiting}, {"OnHold", status.Waiting},
		{"FAILED", status.Failed}, {"Rejected", status.Failed}, {"REFUNDED", status.Failed}, {"Cancelled", status.Failed},
		{"canceled", status.Failed}, {"EXPIRED", status.Failed}, {"Fail", status.Failed}, {"weird", status.Unknown},
	}
	for _, tc := range tests {
		res := depositWith(t, func(m map[string]any) { m["status"] = tc.status })
		c := mustClassify(t, res)
		if c.Deposit.Class != tc.want || c.Deposit.Status != tc.status {
			t.Errorf("status %q: class %s (status %q), want %s", tc.status, c.Deposit.Class, c.Deposit.Status, tc.want)
		}
	}
	// A missing status is an unusable money field: the deposit is kept for review.
	noStatus := depositWith(t, func(m map[string]any) { delete(m, "status") })
	if c, err := ClassifyResource(noStatus); !errors.Is(err, ErrUnusable) || c.Deposit == nil || c.Deposit.Review != "status: missing" {
		t.Errorf("missing status: %+v %v", c.Deposit, err)
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
			m["source"] = map[string]any{"type": "BLOCKCHAIN"}
		}), func(t *testing.T, d *Deposit) {
			if d.TxHash != "" || d.Fees != nil || !d.CreatedAt.IsZero() || !d.UpdatedAt.IsZero() || d.AccountID != "" ||
				d.Chain != "" || d.SourceAddress != "" || d.Class != status.Waiting || !d.FromChain() {
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

		{"duplicate top-level id", strings.Replace(sampleDeposit, `{"id":`, `{"id":"evil","id":`, 1), `duplicate key "id"`, KindDeposit, "", ErrDuplicateKey},
		{"duplicate case variant", strings.Replace(sampleDeposit, `{"id":`, `{"ID":"evil","id":`, 1), "duplicate key", KindDeposit, "", ErrDuplicateKey},
		{"duplicate amount", strings.Replace(sampleDeposit, `"amount":{"amount":"10.5"`, `"amount":{"amount":"1","amount":"10.5"`, 1), `duplicate key "amount"`, KindDeposit, "", ErrDuplicateKey},
		{"duplicate destination", strings.Replace(sampleDeposit, `"destination":{`, `"destination":{"type":"blockchain"},"destination":{`, 1), `duplicate key "destination"`, KindDeposit, "", ErrDuplicateKey},
		{"duplicate wallet id", strings.Replace(sampleDeposit, `"id":"32aae8b7`, `"id":"other","id":"32aae8b7`, 1), "duplicate key", KindDeposit, "", ErrDuplicateKey},
		{"duplicate in a fee", strings.Replace(sampleDeposit, `"type":"GAS"`, `"type":"GAS","type":"FX"`, 1), "duplicate key", KindDeposit, "", ErrDuplicateKey},
		{"duplicate via escape", strings.Replace(sampleDeposit, `"status":`, `"st\u0061tus":"PENDING","status":`, 1), "duplicate key", KindDeposit, "", ErrDuplicateKey},
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
		{"source not an object", set("source", "blockchain"), "source: is a string", KindDeposit, sampleID, nil},
		{"source missing", set("source", nil), "source: is absent", KindDeposit, sampleID, nil},
		{"source type missing", set("source.type", nil), "source.type: missing", KindDeposit, sampleID, nil},
		{"status missing", set("status", nil), "status: missing", KindDeposit, sampleID, nil},

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
			// A deposit with an unusable money field is kept for review (contract
			// §4), never dropped: the Deposit comes back with the reason.
			if c.Kind != tc.kind || (c.Deposit != nil) != (tc.kind == KindDeposit) || c.TransferID != tc.transfer {
				t.Errorf("classification %+v, want kind %s, transfer %q", c, tc.kind, tc.transfer)
			}
			if c.Deposit != nil && (c.Deposit.Review == "" || !strings.Contains(err.Error(), c.Deposit.Review)) {
				t.Errorf("review reason %q, error %q", c.Deposit.Review, err)
			}
			if len(err.Error()) > 300 || strings.ContainsAny(err.Error(), "\x00\n\r\u202e\u200b") {
				t.Errorf("error message unsafe for logs: %q", err)
			}
		})
	}
}

// Contract §4: a signed deposit whose money fields are usable is a deposit,
// whatever its other fields look like; they are kept as sent.
func TestClassifyKeepsOddNonMoneyFields(t *testing.T) {
	t.Parallel()
	set := func(edit func(m map[string]any)) string { return depositWith(t, edit) }
	tests := []struct {
		name     string
		resource string
		check    func(d *Deposit) bool
	}{
		{"fee written 0E-8", set(func(m map[string]any) {
			m["fees"] = []any{map[string]any{"amount": "0E-8", "currency": "USDT", "type": "GAS"}}
		}), func(d *Deposit) bool { return strings.Contains(string(d.FeesJSON), "0E-8") }},
		{"fee as a JSON number 0E-8", strings.Replace(sampleDeposit, `"amount":"0","currency":"USDC","type":"GAS"`, `"amount":0E-8,"currency":"USDC","type":"GAS"`, 1),
			func(d *Deposit) bool { return strings.Contains(string(d.FeesJSON), "0E-8") }},
		{"chain with a space", set(func(m map[string]any) { sub(m, "source")["chain"] = "BNB Chain" }),
			func(d *Deposit) bool { return d.Chain == "BNB Chain" }},
		{"chain in Cyrillic", set(func(m map[string]any) { sub(m, "source")["chain"] = "ЕТН" }),
			func(d *Deposit) bool { return d.Chain == "" }},
		{"createTime in another format", set(func(m map[string]any) { m["createTime"] = "2025/09/19 10:11:01" }),
			func(d *Deposit) bool { return d.CreatedAt.IsZero() }},
		{"createTime float", set(func(m map[string]any) { m["createTime"] = json.Number("1.758276661923e12") }),
			func(d *Deposit) bool { return d.CreatedAt.IsZero() }},
		{"updateTime object", set(func(m map[string]any) { m["updateTime"] = map[string]any{} }),
			func(d *Deposit) bool { return d.UpdatedAt.IsZero() }},
		{"tx hash number", set(func(m map[string]any) { m["transactionHash"] = 12 }), func(d *Deposit) bool { return d.TxHash == "" }},
		{"addresses with odd characters", set(func(m map[string]any) {
			sub(m, "destination")["address"] = "0x4E83\u200d"
			sub(m, "source")["address"] = "0x89F9\u202e"
		}), func(d *Deposit) bool { return d.DepositAddress == "" && d.SourceAddress == "" }},
		{"fees an object", set(func(m map[string]any) { m["fees"] = map[string]any{"amount": "0"} }),
			func(d *Deposit) bool { return d.Fees == nil && string(d.FeesJSON) == `{"amount":"0"}` }},
		{"negative fee", set(func(m map[string]any) {
			m["fees"] = []any{map[string]any{"amount": "-1", "currency": "USDC"}}
		}), func(d *Deposit) bool { return d.Fees == nil && strings.Contains(string(d.FeesJSON), "-1") }},
		{"credit from a wallet", set(func(m map[string]any) { sub(m, "source")["type"] = "cryptoconnect_wallet" }),
			func(d *Deposit) bool { return !d.FromChain() && d.Origin == "cryptoconnect_wallet" }},
		{"credit from the Infinity Account", set(func(m map[string]any) { m["source"] = map[string]any{"type": "infinity_account", "id": "x"} }),
			func(d *Deposit) bool { return !d.FromChain() }},
		{"source type in capitals", set(func(m map[string]any) { sub(m, "source")["type"] = " BlockChain " }),
			func(d *Deposit) bool { return d.FromChain() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustClassify(t, tc.resource)
			if c.Kind != KindDeposit || c.Deposit == nil || c.Deposit.Review != "" || !c.Deposit.Amount.Equal(decimal.RequireFromString("10.5")) {
				t.Fatalf("got %+v", c)
			}
			if !tc.check(c.Deposit) {
				t.Errorf("deposit %+v (fees %s)", c.Deposit, c.Deposit.FeesJSON)
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

package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sweeperhq/sweeper/internal/webhook"
)

// tableCounts is the row count of every table a delivery can touch.
type tableCounts struct {
	deliveries, unusable, deposits, depositEvents, sweeps, sweepEvents, attempts int
}

func (s *system) tableCounts() tableCounts {
	s.t.Helper()
	var c tableCounts
	err := s.pool.QueryRow(context.Background(), `SELECT
  (SELECT count(*) FROM webhook_deliveries), (SELECT count(*) FROM webhook_deliveries WHERE outcome = 'unusable'),
  (SELECT count(*) FROM deposits), (SELECT count(*) FROM deposit_events),
  (SELECT count(*) FROM sweeps), (SELECT count(*) FROM sweep_events), (SELECT count(*) FROM sweep_attempts)`).Scan(
		&c.deliveries, &c.unusable, &c.deposits, &c.depositEvents, &c.sweeps, &c.sweepEvents, &c.attempts)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// The bad-input table of docs/RELIABILITY.md, against the real program: for
// each malformed or hostile delivery, the answer, and proof that nothing
// partial was stored. What is signed but unusable is kept as one delivery row
// (for a human), and never becomes a deposit or a sweep; what is not signed (or
// cannot be verified) leaves no row at all.
func TestBadInputTable(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})

	// envelope wraps resource text in a notification; extra fields override.
	envelope := func(id, resource string) []byte {
		b, _ := json.Marshal(map[string]any{"id": id, "eventType": "CRYPTO_TRANSFER.UPDATED", "apiVersion": "v3",
			"code": "000000", "message": "", "resource": resource, "createTime": "1767225600000"})
		return b
	}
	// deposit is a valid Closed deposit resource with fields replaced (nil deletes).
	deposit := func(replace map[string]any) string {
		r := depositResource(uuid.NewString(), masterWallet, "Closed", "10")
		for k, v := range replace {
			if v == nil {
				delete(r, k)
			} else {
				r[k] = v
			}
		}
		b, _ := json.Marshal(r)
		return string(b)
	}
	withAmount := func(a any) string {
		return deposit(map[string]any{"amount": map[string]any{"amount": a, "currency": "USDC"}})
	}
	withCurrency := func(c string) string {
		return deposit(map[string]any{"amount": map[string]any{"amount": "10", "currency": c}})
	}
	signed := func(resource string) string { return webhook.Sign([]byte(webhookSecret), []byte(resource)) }
	// rawResource puts literal JSON text (duplicate keys, odd numbers) into a deposit.
	rawResource := func(transfer, amountJSON string) string {
		return `{"id":"` + transfer + `","accountId":"` + accountID + `","source":{"type":"blockchain"},"destination":{"type":"cryptoconnect_wallet","id":"` +
			masterWallet + `"},"amount":` + amountJSON + `,"status":"Closed"}`
	}
	replayed := deposit(nil)
	replayedBody := envelope("n-replayed", replayed)

	const (
		none     = ""
		unusable = "unusable"
		dep      = "deposit"
		// review: signed, deposit-shaped, a money field unusable: one unusable
		// delivery row AND a needs_review deposit, held in sweep_ledger (contract
		// §4: a signed deposit never vanishes), never a sweep.
		review     = "review"
		unverified = "unverified" // the legacy envelope: stored, moves nothing
	)
	type tc struct {
		name        string
		body        []byte
		sig         string // "" = no Signature header
		contentType string // "" = application/json
		status      int
		stored      string // none, unusable or deposit: the one delivery row expected
		deposit     bool   // a deposit row (and its event) expected
		sweep       bool   // a sweep row (and its event) expected
		// When body is nil, the delivery is a freshly signed deposit built from
		// one of these: an amount, a currency, a whole resource text, or a
		// variation of the request ("text/plain", "none", "unsigned", "wrong-secret").
		amount, currency, resource, variant string
	}
	huge := "1" + strings.Repeat("0", webhook.MaxAmountIntegerDigits)
	twoMiB := strings.Repeat("x", 2<<20)
	cases := []tc{
		// Controls: the table counts what it claims to count.
		{name: "ValidClosedDeposit", body: replayedBody, sig: signed(replayed), status: 200, stored: dep, deposit: true, sweep: true},
		{name: "ReplayedNotification", body: replayedBody, sig: signed(replayed), status: 200, stored: none},

		{name: "EmptyBody", body: []byte{}, sig: signed(""), status: 400},
		{name: "TwoMiBBody", body: envelope(uuid.NewString(), twoMiB), sig: signed(twoMiB), status: 413},
		{name: "InvalidJSON", body: []byte(`{"id":"n-1","resource":`), sig: signed(""), status: 400},
		{name: "NotAnObject", body: []byte(`["id","resource"]`), sig: signed(""), status: 400},
		{name: "InvalidUTF8", body: append([]byte(`{"id":"n-`), 0xff, '"', '}'), sig: signed(""), status: 400},
		{name: "ResourceNotAString", body: []byte(`{"id":"n-obj","resource":` + replayed + `}`), sig: signed(replayed), status: 400},
		{name: "ResourceNull", body: []byte(`{"id":"n-null","resource":null}`), sig: signed(""), status: 400},
		{name: "ResourceInvalidJSON", body: envelope(uuid.NewString(), `{"id":"t-1",`), sig: signed(`{"id":"t-1",`), status: 200, stored: unusable},
		{name: "ResourceNotAnObject", body: envelope(uuid.NewString(), `[1,2]`), sig: signed(`[1,2]`), status: 200, stored: unusable},
		{name: "ControlCharInEventType", body: []byte(`{"id":"n-ctl","eventType":"A\u0000B","resource":""}`), sig: signed(""), status: 400},

		{name: "NegativeAmount", status: 200, stored: review, amount: "-5"},
		{name: "ZeroAmount", status: 200, stored: review, amount: "0"},
		{name: "HugeAmount", status: 200, stored: review, amount: huge},
		{name: "ExponentAmount", status: 200, stored: review, amount: "1e3"},
		{name: "NaNAmount", status: 200, stored: review, amount: "NaN"},
		{name: "InfinityAmount", status: 200, stored: review, amount: "Infinity"},
		{name: "HexAmount", status: 200, stored: review, amount: "0x10"},
		{name: "SpacedAmount", status: 200, stored: review, amount: " 10"},
		{name: "FullwidthDigitsAmount", status: 200, stored: review, amount: "１０"},
		{name: "TooManyDecimals", status: 200, stored: review, amount: "0." + strings.Repeat("1", webhook.MaxAmountFractionDigits+1)},

		{name: "UnknownCurrencyIsKeptNotSwept", status: 200, stored: dep, deposit: true, currency: "DOGE"},
		{name: "MalformedCurrency", status: 200, stored: review, currency: "U$D"},
		{name: "HomoglyphCurrency", status: 200, stored: review, currency: "UЅDC"}, // Cyrillic Ѕ
		{name: "LongSCurrency", status: 200, stored: review, currency: "uſdc"},

		{name: "MissingNotificationID", body: envelope("", replayed), sig: signed(replayed), status: 200, stored: dep},
		{name: "ZeroWidthInNotificationID", body: envelope("n-\u200b1", replayed), sig: signed(replayed), status: 200, stored: dep},
		{name: "MissingTransferID", status: 200, stored: review, resource: deposit(map[string]any{"id": nil})},
		{name: "MissingWalletID", status: 200, stored: review, resource: deposit(map[string]any{
			"destination": map[string]any{"type": "cryptoconnect_wallet", "address": "0x2"}})},
		{name: "BidiOverrideInTransferID", status: 200, stored: review, resource: deposit(map[string]any{"id": "t-\u202e1"})},
		{name: "HomoglyphTransferID", status: 200, stored: review, resource: deposit(map[string]any{"id": "t-а1"})}, // Cyrillic а
		{name: "NULInWalletID", status: 200, stored: review, resource: deposit(map[string]any{
			"destination": map[string]any{"type": "cryptoconnect_wallet", "id": "w\u00001"}})},

		{name: "DuplicateEnvelopeKey", body: []byte(`{"id":"n-a","id":"n-b","resource":` + jsonString(replayed) + `}`), sig: signed(replayed), status: 400},
		{name: "CaseVariantEnvelopeKey", body: []byte(`{"id":"n-c","resource":` + jsonString(replayed) + `,"Resource":"{}"}`), sig: signed(replayed), status: 400},
		{name: "DuplicateResourceKey", status: 200, stored: review, resource: rawResource("t-dup", `{"amount":"1","amount":"1000","currency":"USDC"}`)},
		{name: "AmountAsJSONNumberIsExact", status: 200, stored: dep, deposit: true, sweep: true, resource: rawResource("t-num-"+uuid.NewString(), `{"amount":10.50,"currency":"USDC"}`)},
		{name: "AmountAsExponentNumber", status: 200, stored: review, resource: rawResource("t-exp", `{"amount":1e3,"currency":"USDC"}`)},

		{name: "WrongContentTypeSignedDeposit", status: 200, stored: dep, deposit: true, sweep: true, variant: "text/plain"},
		{name: "NoContentTypeSignedDeposit", status: 200, stored: dep, deposit: true, sweep: true, variant: "none"},
		{name: "UnsignedDeposit", status: 401, variant: "unsigned"},
		// Contract §4: odd non-money fields never make a signed deposit vanish.
		{name: "FeeWritten0E-8", status: 200, stored: dep, deposit: true, sweep: true, resource: deposit(map[string]any{
			"fees": []any{map[string]any{"amount": "0E-8", "currency": "USDC", "type": "GAS"}}})},
		{name: "ChainWithASpace", status: 200, stored: dep, deposit: true, sweep: true, resource: deposit(map[string]any{
			"source": map[string]any{"type": "blockchain", "chain": "BNB Chain", "address": "0x1"}})},
		{name: "TimeInAnotherFormat", status: 200, stored: dep, deposit: true, sweep: true, resource: deposit(map[string]any{
			"createTime": "2026/01/01 00:00:00", "updateTime": "yesterday"})},
		{name: "CreditFromAWalletIsKeptNotSwept", status: 200, stored: dep, deposit: true, resource: deposit(map[string]any{
			"source": map[string]any{"type": "cryptoconnect_wallet", "id": "w-payout"}})},
		{name: "MissingSourceType", status: 200, stored: review, resource: deposit(map[string]any{"source": nil})},
		{name: "MissingStatus", status: 200, stored: review, resource: deposit(map[string]any{"status": nil})},
		// Contract §9: the legacy envelope is stored unverified and answered 200
		// whatever its signature; it moves nothing. A v3 envelope still needs one.
		{name: "LegacyEnvelope", body: []byte(`{"id":"` + uuid.NewString() + `","businessType":"AssetsDeposit","data":` + deposit(nil) + `,"sign":"` + strings.Repeat("ab", 32) + `"}`), status: 200, stored: unverified},
		{name: "LegacyEnvelopeWithAWrongSignature", body: []byte(`{"id":"l-2","businessType":"CryptoConnectWallet","data":{"id":"t-l2"},"sign":"x"}`), sig: signed("x"), status: 200, stored: unverified},
		{name: "LegacyEnvelopeOver1MiB", body: []byte(`{"id":"l-3","businessType":"AssetsDeposit","data":{"x":"` + twoMiB + `"}}`), status: 413},
		{name: "V3EnvelopeWithBusinessTypeStillNeedsASignature", body: envelope("n-v3bt", deposit(map[string]any{"businessType": "AssetsDeposit"})), status: 401},
		{name: "WrongSecret", status: 401, variant: "wrong-secret"},
	}
	for _, c := range cases {
		if c.body == nil {
			resource := c.resource
			switch {
			case c.amount != "":
				resource = withAmount(c.amount)
			case c.currency != "":
				resource = withCurrency(c.currency)
			case resource == "":
				resource = deposit(nil)
			}
			c.body, c.sig = envelope(uuid.NewString(), resource), signed(resource)
			switch c.variant {
			case "unsigned":
				c.sig = ""
			case "wrong-secret":
				c.sig = webhook.Sign([]byte("not-the-secret"), []byte(resource))
			case "text/plain", "none":
				c.contentType = c.variant
			}
		}
		t.Run(c.name, func(t *testing.T) {
			before := s.tableCounts()
			req, _ := http.NewRequest(http.MethodPost, s.url+"/webhooks/interlace", bytes.NewReader(c.body))
			switch c.contentType {
			case "", "application/json":
				req.Header.Set("Content-Type", "application/json")
			case "none":
			default:
				req.Header.Set("Content-Type", c.contentType)
			}
			if c.sig != "" {
				req.Header.Set("Signature-Method", "HMAC-SHA256")
				req.Header.Set("Signature", c.sig)
				req.Header.Set("Timestamp", "1767225600000")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			var shape struct {
				Received bool `json:"received"`
				Error    *struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &shape); err != nil || (c.status == 200) != shape.Received || (c.status != 200) != (shape.Error != nil && shape.Error.Code != "") {
				t.Fatalf("answer is not the contract's JSON: %s", body)
			}

			after := s.tableCounts()
			want := before
			if c.stored != none {
				want.deliveries++
			}
			if c.stored == unusable || c.stored == review {
				want.unusable++
			}
			if c.deposit || c.stored == review {
				want.deposits++
				want.depositEvents++
			}
			if c.sweep {
				want.sweeps++
				want.sweepEvents++
			}
			if c.name == "UnknownCurrencyIsKeptNotSwept" || c.name == "CreditFromAWalletIsKeptNotSwept" {
				want.depositEvents++ // "not swept: currency DOGE is not swept"
			}
			if after != want {
				t.Fatalf("rows after: %+v\nwant:       %+v", after, want)
			}
		})
	}

	t.Run("NoSignedDepositVanishes", func(t *testing.T) {
		// Every needs_review deposit is visible as held, with its reason.
		if n := s.count(`SELECT count(*) FROM sweep_ledger WHERE deposit_status = 'needs_review'
		    AND sweep_status = 'held' AND last_error LIKE 'needs review: %'`); n != 22 {
			t.Fatalf("%d needs_review deposits held in sweep_ledger, want 22", n)
		}
		// The only unusable deliveries without a deposit are the ones whose
		// resource is not a readable object.
		if n := s.count(`SELECT count(*) FROM webhook_deliveries w WHERE outcome = 'unusable'
		    AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.id IN (w.transfer_id, 'review:' || w.notification_id))`); n != 2 {
			t.Fatalf("%d unusable deliveries left no deposit, want 2 (invalid JSON, not an object)", n)
		}
		if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE outcome = 'unverified' AND signature_key IS NULL
		    AND notification_id LIKE 'legacy:%'`); n != 2 {
			t.Fatalf("%d legacy deliveries stored unverified, want 2", n)
		}
	})
	t.Run("UnusableRowsKeepTheBytesAndAReason", func(t *testing.T) {
		if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE outcome = 'unusable' AND (reason IS NULL OR reason = '' OR length(body) = 0)`); n != 0 {
			t.Fatalf("%d unusable rows without reason or body", n)
		}
		// Ids that cannot be trusted are replaced by a digest of the bytes.
		if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE notification_id LIKE 'sha256:%'`); n != 2 {
			t.Fatalf("%d synthetic notification ids, want 2 (missing and zero-width)", n)
		}
	})
	t.Run("NumberAmountKeptExactly", func(t *testing.T) {
		if n := s.count(`SELECT count(*) FROM deposits WHERE id LIKE 't-num-%' AND amount::text = '10.50'`); n != 1 {
			t.Fatal("a JSON number amount was not stored digit for digit")
		}
	})
	t.Run("SkippedDepositIsInTheLedger", func(t *testing.T) {
		if n := s.count(`SELECT count(*) FROM sweep_ledger WHERE currency = 'DOGE' AND sweep_status = 'skipped' AND last_error LIKE '%DOGE%'`); n != 1 {
			t.Fatalf("unknown-currency deposit not in sweep_ledger as skipped (%d)", n)
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

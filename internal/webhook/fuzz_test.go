package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/; the f.Add seeds below cover
// the same ground so that `go test` alone exercises every target.

var amountRE = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?$`)

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "10", "10.50", "0.000001", "-1", "1e3", "NaN", ".5", "1.", "١٢",
		"123456789012345678901234567890.123456789012345678"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseAmount(s)
		// Oracle: the documented grammar, checked independently.
		m := amountRE.FindStringSubmatch(s)
		wantOK := m != nil && len(m[1]) <= MaxAmountIntegerDigits && len(m[2]) <= MaxAmountFractionDigits
		if (err == nil) != wantOK {
			t.Fatalf("ParseAmount(%q) error %v, grammar says ok=%v", s, err, wantOK)
		}
		p, perr := ParsePositiveAmount(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAmount) || !errors.Is(perr, ErrInvalidAmount) {
				t.Fatalf("errors do not wrap ErrInvalidAmount: %v / %v", err, perr)
			}
			return
		}
		if d.Sign() < 0 {
			t.Fatalf("negative amount %s from %q", d, s)
		}
		if ref := decimal.RequireFromString(s); !ref.Equal(d) {
			t.Fatalf("ParseAmount(%q) = %s, decimal says %s", s, d, ref)
		}
		// Round trip: what we print, we parse back to the same value.
		back, err := ParseAmount(d.String())
		if err != nil || !back.Equal(d) {
			t.Fatalf("round trip of %q via %q: %s, %v", s, d.String(), back, err)
		}
		if (perr == nil) != d.IsPositive() || (perr == nil && !p.Equal(d)) {
			t.Fatalf("ParsePositiveAmount(%q) = %s, %v; ParseAmount = %s", s, p, perr, d)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10","eventType":"SOME_RESOURCE.UPDATED","apiVersion":"v3","code":"000000","message":"","resource":"{\"id\":\"r-123\"}","createTime":"1767225600000"}`))
	f.Add([]byte(`{"id":"n","code":0,"createTime":1767225600000,"resource":"{\"a\":\"\\ud83d\\ude00\\ud800\"}"}`))
	f.Add([]byte(`{"id":"n","resource":"{}","Resource":"{}"}`))
	f.Add([]byte(`{"id":"n","resource":{"id":"t"}}`))
	f.Add([]byte(`[{"id":"n"}]`))
	f.Add([]byte("{\"id\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParseEnvelope(body)
		dup, decodable := refTopLevelDuplicates(body)
		if err != nil {
			if env != nil {
				t.Fatal("envelope returned with an error")
			}
			switch {
			case errors.Is(err, ErrNotJSON):
				if json.Valid(body) && utf8.Valid(body) && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
					t.Fatalf("valid JSON object refused as not JSON: %v", err)
				}
			case errors.Is(err, ErrDuplicateKey):
				if !dup {
					t.Fatalf("no duplicate key, but %v", err)
				}
			case errors.Is(err, ErrResourceNotString), errors.Is(err, ErrBadField):
			default:
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if !json.Valid(body) || !utf8.Valid(body) || !decodable || dup {
			t.Fatalf("accepted a body that is invalid (%v/%v), undecodable (%v) or has duplicates (%v)",
				json.Valid(body), utf8.Valid(body), decodable, dup)
		}
		// The signed text must be exactly what encoding/json decodes.
		var ref struct {
			Resource *string `json:"resource"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("encoding/json refuses an accepted body: %v", err)
		}
		if want := deref(ref.Resource); env.Resource != want {
			t.Fatalf("resource %q, encoding/json says %q", env.Resource, want)
		}
		var ids struct {
			ID        any `json:"id"`
			EventType any `json:"eventType"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&ids); err != nil {
			t.Fatal(err)
		}
		if id := anyText(ids.ID); id != env.ID {
			t.Fatalf("id %q, encoding/json says %q", env.ID, id)
		}
		if et := anyText(ids.EventType); et != env.EventType {
			t.Fatalf("eventType %q, encoding/json says %q", env.EventType, et)
		}
	})
}

func FuzzClassifyResource(f *testing.F) {
	f.Add(sampleDeposit)
	f.Add(`{"id":"t","destination":{"type":"CRYPTOCONNECT_WALLET","id":"w"},"amount":{"amount":10.5,"currency":"usdc"},"status":"on-hold","createTime":1758276661923}`)
	f.Add(`{"id":"t","destination":{"type":"cryptoconnect_wallet","id":"w"},"amount":"1","currency":"BTC","fees":[{"amount":"0","currency":"BTC","type":"GAS"}]}`)
	f.Add(`{"id":"t","id":"u"}`)
	f.Add(`{"id":"r-123","accountId":"acc-1","status":"CLOSED"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, resource string) {
		c, err := ClassifyResource(resource)
		c2, err2 := ClassifyResource(resource)
		if c.Kind != c2.Kind || c.TransferID != c2.TransferID || (err == nil) != (err2 == nil) {
			t.Fatal("not deterministic")
		}
		if c.Kind != KindDeposit && c.Kind != KindOther {
			t.Fatalf("kind %q", c.Kind)
		}
		if err != nil {
			// An unusable deposit is kept for review: it carries the reason.
			if !errors.Is(err, ErrUnusable) || (c.Deposit != nil) != (c.Kind == KindDeposit) ||
				(c.Deposit != nil && c.Deposit.Review == "") {
				t.Fatalf("error %v (deposit %+v): must wrap ErrUnusable, a deposit carrying its review reason", err, c.Deposit)
			}
			if c.TransferID != "" && checkID(c.TransferID, maxIDLen) != nil {
				t.Fatalf("invalid transfer id %q reported", c.TransferID)
			}
			return
		}
		if !json.Valid([]byte(resource)) {
			t.Fatal("invalid JSON classified without error")
		}
		if c.Kind == KindOther {
			if c.Deposit != nil {
				t.Fatal("other with a deposit")
			}
			return
		}
		d := c.Deposit
		if d == nil || d.TransferID != c.TransferID {
			t.Fatalf("deposit %+v, transfer id %q", d, c.TransferID)
		}
		for _, id := range []string{d.TransferID, d.WalletID} {
			if checkID(id, maxIDLen) != nil {
				t.Fatalf("bad required id %q", id)
			}
		}
		if d.AccountID != "" && checkID(d.AccountID, maxIDLen) != nil {
			t.Fatalf("bad account id %q", d.AccountID)
		}
		// Other fields are kept leniently, but always as printable ASCII text.
		for _, f := range []string{d.Chain, d.SourceAddress, d.DepositAddress, d.TxHash, d.Origin} {
			for i := 0; i < len(f); i++ {
				if f[i] < ' ' || f[i] >= 0x7f {
					t.Fatalf("unprintable field %q", f)
				}
			}
		}
		if !currencyRE.MatchString(d.Currency) {
			t.Fatalf("currency %q", d.Currency)
		}
		if !d.Amount.IsPositive() {
			t.Fatalf("amount %s", d.Amount)
		}
		if back, err := ParsePositiveAmount(d.Amount.String()); err != nil || !back.Equal(d.Amount) {
			t.Fatalf("amount %s does not round-trip: %v", d.Amount, err)
		}
		if d.Class != status.Classify(d.Status) {
			t.Fatalf("class %s for status %q", d.Class, d.Status)
		}
		for _, fee := range d.Fees {
			if fee.Amount.Sign() < 0 || !currencyRE.MatchString(fee.Currency) {
				t.Fatalf("fee %+v", fee)
			}
		}
		// Shape is decided by destination.type, as encoding/json sees it.
		var ref struct {
			Destination struct {
				Type string `json:"type"`
			} `json:"destination"`
		}
		if err := json.Unmarshal([]byte(resource), &ref); err != nil || !strings.EqualFold(strings.TrimSpace(ref.Destination.Type), walletDestType) {
			t.Fatalf("deposit, but encoding/json reads destination.type %q (%v)", ref.Destination.Type, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte("secret"), sampleDeposit, []byte(`{"resource":"x"}`), false, "")
	f.Add([]byte("secret"), "{}", []byte(`{"id":"n"}`), true, "bm90IGEgc2lnbmF0dXJl")
	f.Add([]byte{0}, "", []byte{}, false, strings.Repeat("A", 43)+"=")
	f.Fuzz(func(t *testing.T, secret []byte, resource string, body []byte, bodyMode bool, sig string) {
		part := SignedResource
		msg := []byte(resource)
		if bodyMode {
			part, msg = SignedBody, body
		}
		env := &Envelope{Resource: resource}
		v, err := NewVerifier(part, secret)
		if len(secret) == 0 {
			if !errors.Is(err, ErrNoSecret) {
				t.Fatalf("empty secret: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		good := Sign(secret, msg)
		signable := bodyMode || resource != ""

		// An arbitrary header never panics, and verifies only if it is the signature.
		if idx, err := v.Verify(sig, body, env); err == nil {
			if idx != 0 || strings.Trim(sig, " \t") != good {
				t.Fatalf("forged signature %q accepted (index %d)", sig, idx)
			}
		} else if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMissingSignature) {
			t.Fatalf("unexpected error %v", err)
		}

		// A fresh signature verifies, with either key position.
		two, err := NewVerifier(part, []byte("other-key"), secret)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := two.Verify(good, body, env)
		wantIdx := 1
		if string(secret) == "other-key" {
			wantIdx = 0
		}
		if signable && (err != nil || idx != wantIdx) {
			t.Fatalf("fresh signature: %d, %v", idx, err)
		}
		if !signable && err == nil {
			t.Fatal("empty resource verified")
		}

		// Any change to the signature, the message or the key breaks it.
		altered := []byte(good)
		altered[0] = nextB64(altered[0])
		if _, err := v.Verify(string(altered), body, env); err == nil {
			t.Fatal("altered signature verified")
		}
		if signable {
			other := &Envelope{Resource: resource + " "}
			if _, err := v.Verify(good, append(append([]byte(nil), body...), ' '), other); err == nil {
				t.Fatal("altered message verified")
			}
			wrong, _ := NewVerifier(part, append(append([]byte(nil), secret...), 'x'))
			if _, err := wrong.Verify(good, body, env); err == nil {
				t.Fatal("wrong key verified")
			}
		}
	})
}

// refTopLevelDuplicates reports, using encoding/json's tokenizer, whether body's
// top-level object has two keys encoding/json would map to the same field.
func refTopLevelDuplicates(body []byte) (dup, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return false, false
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false, false
		}
		k := tok.(string)
		for _, o := range keys {
			if strings.EqualFold(o, k) {
				dup = true
			}
		}
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false, false
		}
	}
	if _, err := dec.Token(); err != nil {
		return false, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return false, false
	}
	return dup, true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// anyText renders a value decoded with UseNumber the way Envelope keeps it.
func anyText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	default:
		return ""
	}
}

package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// envelopeBody builds a v3 notification body the way Interlace serialises it.
func envelopeBody(t testing.TB, id, eventType, resource string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"id": id, "eventType": eventType, "apiVersion": "v3", "code": "000000", "message": "",
		"resource": resource, "createTime": "1767225600000",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEnvelope(t testing.TB, body []byte) *Envelope {
	t.Helper()
	env, err := ParseEnvelope(body)
	if err != nil {
		t.Fatalf("ParseEnvelope(%s): %v", body, err)
	}
	return env
}

func TestParseEnvelopeValid(t *testing.T) {
	t.Parallel()
	body := []byte(`{
  "id": "0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10",
  "eventType": "SOME_RESOURCE.UPDATED",
  "apiVersion": "v3",
  "code": "000000",
  "message": "",
  "resource": "{\"id\":\"r-123\",\"accountId\":\"acc-1\",\"status\":\"CLOSED\",\"createTime\":\"1767225600000\"}",
  "createTime": "1767225600000"
}`)
	env := mustEnvelope(t, body)
	want := Envelope{
		ID: "0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10", EventType: "SOME_RESOURCE.UPDATED", APIVersion: "v3",
		Code: "000000", Resource: `{"id":"r-123","accountId":"acc-1","status":"CLOSED","createTime":"1767225600000"}`,
		CreateTime: "1767225600000",
	}
	if *env != want {
		t.Fatalf("got %+v\nwant %+v", *env, want)
	}
	at, err := env.CreatedAt()
	if err != nil || !at.Equal(time.UnixMilli(1767225600000)) {
		t.Fatalf("CreatedAt = %v, %v", at, err)
	}
}

func TestParseEnvelopeVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want Envelope
	}{
		{"createTime and code as numbers", `{"id":"n","code":0,"createTime":1767225600000,"resource":"{}"}`,
			Envelope{ID: "n", Code: "0", CreateTime: "1767225600000", Resource: "{}"}},
		{"nulls are empty", `{"id":"n","eventType":null,"message":null,"createTime":null}`, Envelope{ID: "n"}},
		{"resource absent", `{"id":"n","eventType":"X.Y"}`, Envelope{ID: "n", EventType: "X.Y"}},
		{"empty object", `{}`, Envelope{}},
		{"unknown fields of every type", `{"id":"n","extra":{"resource":{"nested":true}},"list":[1,"a",{"b":[]}],"flag":false,"n":-1.5e3,"z":null,"resource":"{}"}`,
			Envelope{ID: "n", Resource: "{}"}},
		{"surrounding whitespace", " \r\n\t{\"id\" : \"n\" , \"resource\" : \"{}\" }\n", Envelope{ID: "n", Resource: "{}"}},
		{"keys match case-insensitively like encoding/json", `{"ID":"n","EVENTTYPE":"A.B","Resource":"{}"}`,
			Envelope{ID: "n", EventType: "A.B", Resource: "{}"}},
		{"escaped key", `{"\u0072esource":"{}","i\u0064":"n"}`, Envelope{ID: "n", Resource: "{}"}},
		{"huge id kept as sent", `{"id":"` + strings.Repeat("a", 10000) + `"}`, Envelope{ID: strings.Repeat("a", 10000)}},
		{"unicode id kept as sent", `{"id":"n\u200b-\u202e-\u0430"}`, Envelope{ID: "n\u200b-\u202e-\u0430"}},
		{"numeric id kept as its literal", `{"id":12345678901234567890}`, Envelope{ID: "12345678901234567890"}},
		{"legacy style B body", `{"id":"n","businessType":"AssetsDeposit","data":{"a":1},"sign":"00ff"}`, Envelope{ID: "n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := mustEnvelope(t, []byte(tc.body))
			if *env != tc.want {
				t.Fatalf("got %+v\nwant %+v", *env, tc.want)
			}
		})
	}
}

// The resource must come out as exactly the string any JSON decoder produces:
// it is the signed text.
func TestParseEnvelopeResourceDecoding(t *testing.T) {
	t.Parallel()
	resources := []string{
		`{"a":"b"}`,
		`{"memo":"quote \" backslash \\ slash / tab \t nl \n cr \r ff \f bs \b"}`,
		"{\"memo\":\"unicode é 中文 😀 \u2028 \u2029 \x7f\"}",
		`{"html":"<script>&</script>"}`,
		"",
		strings.Repeat(`{"k":"v"}`, 1000),
	}
	for _, res := range resources {
		body, err := json.Marshal(map[string]string{"id": "n", "resource": res})
		if err != nil {
			t.Fatal(err)
		}
		if env := mustEnvelope(t, body); env.Resource != res {
			t.Errorf("resource %q came back as %q", res, env.Resource)
		}
	}
	// Escapes a serialiser may choose, compared against encoding/json itself.
	raws := []string{
		`"\u00e9\u4e2d\ud83d\ude00"`,     // BMP and a surrogate pair
		`"\ud83d"`,                       // lone high surrogate
		`"\ude00x"`,                      // lone low surrogate
		`"\ud83d\u0041"`,                 // high surrogate then a non-surrogate
		`"\ud83d\ud83d\ude00"`,           // high, then a full pair
		`"\/\"\\\b\f\n\r\t\u0000\u001f"`, // every short escape, NUL
		`"\uD83D\uDE00 upper-case hex"`,  //
	}
	for _, raw := range raws {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		env := mustEnvelope(t, []byte(`{"resource":`+raw+`}`))
		if env.Resource != want {
			t.Errorf("resource %s decoded to %q, encoding/json says %q", raw, env.Resource, want)
		}
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	t.Parallel()
	many := func(extra string) string {
		var b strings.Builder
		b.WriteString(`{"id":"n"`)
		for i := 0; i < 40; i++ {
			fmt.Fprintf(&b, `,"k%d":%d`, i, i)
		}
		b.WriteString(extra + `}`)
		return b.String()
	}
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty", ``, ErrNotJSON},
		{"not JSON", `nope`, ErrNotJSON},
		{"truncated", `{"id":"n","resource":"{}"`, ErrNotJSON},
		{"two objects", `{"id":"a"}{"id":"b"}`, ErrNotJSON},
		{"trailing comma", `{"id":"a",}`, ErrNotJSON},
		{"single quotes", `{'id':'a'}`, ErrNotJSON},
		{"array", `[{"id":"n","resource":"{}"}]`, ErrNotJSON},
		{"string", `"{\"id\":\"n\"}"`, ErrNotJSON},
		{"number", `42`, ErrNotJSON},
		{"null", `null`, ErrNotJSON},
		{"invalid UTF-8 in a string", "{\"id\":\"n\",\"resource\":\"{\xff}\"}", ErrNotJSON},
		{"invalid UTF-8 in an unknown field", "{\"id\":\"n\",\"x\":\"\xc3\"}", ErrNotJSON},
		{"raw control character", "{\"id\":\"n\x01\"}", ErrNotJSON},
		{"resource object", `{"id":"n","resource":{"id":"t"}}`, ErrResourceNotString},
		{"resource number", `{"id":"n","resource":1}`, ErrResourceNotString},
		{"resource null", `{"id":"n","resource":null}`, ErrResourceNotString},
		{"resource array", `{"id":"n","resource":["{}"]}`, ErrResourceNotString},
		{"resource boolean", `{"id":"n","resource":true}`, ErrResourceNotString},
		{"two resources", `{"id":"n","resource":"{\"a\":1}","resource":"{\"a\":2}"}`, ErrDuplicateKey},
		{"resource and Resource", `{"id":"n","resource":"{}","Resource":"{}"}`, ErrDuplicateKey},
		{"resource and escaped resource", `{"id":"n","resource":"{}","\u0072esource":"{}"}`, ErrDuplicateKey},
		{"resource and long-s reſource", `{"id":"n","resource":"{}","re\u017fource":"{}"}`, ErrDuplicateKey},
		{"two ids", `{"id":"a","resource":"{}","id":"b"}`, ErrDuplicateKey},
		{"two unknown keys", `{"id":"n","x":1,"x":2}`, ErrDuplicateKey},
		{"duplicate among many keys", many(`,"k3":"again"`), ErrDuplicateKey},
		{"case duplicate among many keys", many(`,"K39":"again"`), ErrDuplicateKey},
		{"kelvin-sign duplicate among many keys", many(`,"\u212a7":"again"`), ErrDuplicateKey},
		{"id object", `{"id":{"a":1}}`, ErrBadField},
		{"eventType boolean", `{"id":"n","eventType":true}`, ErrBadField},
		{"createTime array", `{"id":"n","createTime":[1]}`, ErrBadField},
		{"eventType with NUL", `{"id":"n","eventType":"A\u0000B"}`, ErrBadField},
		{"eventType with newline", `{"id":"n","eventType":"A\nB"}`, ErrBadField},
		{"eventType huge", `{"id":"n","eventType":"` + strings.Repeat("A", 129) + `"}`, ErrBadField},
		{"code huge", `{"id":"n","code":"` + strings.Repeat("0", 257) + `"}`, ErrBadField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, err := ParseEnvelope([]byte(tc.body))
			if !errors.Is(err, tc.want) || env != nil {
				t.Fatalf("ParseEnvelope = %+v, %v; want %v", env, err, tc.want)
			}
		})
	}
	// Nested duplicates belong to unknown fields (or to the resource, which is
	// a string here): the envelope does not judge them.
	if _, err := ParseEnvelope([]byte(`{"id":"n","x":{"a":1,"a":2}}`)); err != nil {
		t.Fatalf("nested duplicate in an unknown field: %v", err)
	}
	// Many distinct keys are fine, and the error names the duplicate.
	if _, err := ParseEnvelope([]byte(many(""))); err != nil {
		t.Fatal(err)
	}
	_, err := ParseEnvelope([]byte(many(`,"k3":"again"`)))
	if err == nil || !strings.Contains(err.Error(), `"k3"`) {
		t.Fatalf("duplicate error does not name the key: %v", err)
	}
}

func TestEnvelopeCreatedAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"0", time.Time{}, false},
		{"1767225600000", time.UnixMilli(1767225600000).UTC(), false},
		{"2026-01-01T00:00:00Z", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"2026-01-01T08:00:00.5+08:00", time.Date(2026, 1, 1, 0, 0, 0, 5e8, time.UTC), false},
		{"yesterday", time.Time{}, true},
		{"1.7672256e12", time.Time{}, true},
		{"-1767225600000", time.Time{}, true},
		{"1234567890123456", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := (&Envelope{CreateTime: tc.in}).CreatedAt()
		if (err != nil) != tc.bad || !got.Equal(tc.want) {
			t.Errorf("CreatedAt(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseEnvelopeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	body := envelopeBody(t, "0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10", "CRYPTO_TRANSFER.UPDATED", sampleDeposit)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseEnvelope(body); err != nil {
			t.Fatal(err)
		}
	})
	// The Envelope, its six string fields and the unescaped resource.
	if allocs > 8 {
		t.Fatalf("ParseEnvelope allocates %.0f times, want at most 8", allocs)
	}
}

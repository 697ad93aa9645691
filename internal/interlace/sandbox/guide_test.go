package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// The MoR guide's example responses, verbatim: every answer must have exactly these keys, nesting and JSON types.
const (
	guideWallet = `{"code":"000000","message":"success","data":{"id":"60c667cd-06f4-48c0-85ca-24e570097685",
"referenceId":"92a86ee7-5bb7-4272-afdb-3865bea9a2d5","accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347",
"nickname":"Developer","master":false,"balances":[{"currency":"USDC","available":"0","frozen":"0"},
{"currency":"USDT","available":"0","frozen":"0"}],"addresses":[]}}`
	guideAddress = `{"code":"000000","message":"success","data":{"currency":"USDC","chain":"ETH",
"address":"0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2","selected":true}}`
	// The guide's example plus objectType, which live answers carry (interlace-api-facts) and the sandbox
	// answers so that clients can tell the Infinity balance from a Budget one.
	guideCardWallets = `{"code":"000000","message":"success","data":{"list":[{"id":"63b2af21-1e8c-407b-8df9-10adc05963aa",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","createTime":"1700620189590","currency":"USD","walletType":0,
"objectType":0,"available":"56846.52"}],"total":"1"}}`
	guideCryptoToInfinity = `{"code":"000000","message":"success","data":{"clientTransactionId":"a0f57479-8218-4844-bec6-e819a38af55a",
"id":"1986315238040416258","status":"CLOSED","accountTransferType":"SAME_ACCOUNT",
"from":{"id":"32aae8b7-4a69-474f-b7d5-337e190af878","transferId":"33dd4cfb-ab69-4fd3-b472-358c89f2acb9",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","amount":"10","rate":1.00,"currency":"USDC","businessType":2,
"fees":[{"feeType":6,"amount":"0.05","currency":"USDC"}]},
"to":{"id":"63b2af21-1e8c-407b-8df9-10adc05963aa","transferId":"bf7dc081-947e-4eb7-96a2-06fa249516e8",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","amount":"9.95","currency":"USD","businessType":0,
"fees":[{"feeType":0,"amount":"0","currency":"USD"}]}}}`
	guideInfinityToCrypto = `{"code":"000000","message":"success","data":{"clientTransactionId":"24ec3603-293b-4f53-8d4d-ed68a3e40828",
"id":"1986330518716162050","status":"CLOSED","accountTransferType":"SAME_ACCOUNT",
"from":{"id":"63b2af21-1e8c-407b-8df9-10adc05963aa","transferId":"984ccaad-b018-42cf-acc7-c1a74ec85fd9",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","amount":"10","rate":1,"currency":"USD","businessType":0,
"fees":[{"feeType":0,"amount":"0","currency":"USD"}]},
"to":{"id":"b27c8873-e400-47cd-adc1-035cfa0d5347","transferId":"0875ddd2-d375-4d70-9204-ab6a681a99c7",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","amount":"10","currency":"USD","businessType":2,"fees":[]}}}`
	guideEstimate = `{"code":"000000","message":"success","data":{"id":"4ee15a1c-ade4-4e99-9222-661f33c0a7fe",
"quoteTime":"1762413531106","baseCurrency":"USDC","baseAmount":"9.95","quoteCurrency":"USD","quoteAmount":"10",
"side":"BUY","rate":"1","rfqAmount":"10","rfqCurrency":"USD","fee":"0.05","feeCurrency":"USD","ttlMs":"60000"}}`
	guideTrade = `{"code":"000000","message":"success","data":{"id":"d8ffbe31-e3d2-4615-9e13-0cae46d09b75",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","symbol":"USDC-USD","baseWalletId":"32aae8b7-4a69-474f-b7d5-337e190af878",
"baseCurrency":"USDC","baseAmount":"9.95","quoteCurrency":"USD","quoteAmount":"10","side":"BUY","rate":"1","fee":"0.05",
"feeCurrency":"USD","status":"COMPLETE","referenceId":"590a3852-f1aa-494f-a6d5-a3d13a715f70",
"createTime":"1762413577403","completeTime":"1762413578326"}}`
	guideFeeQuota = `{"code":0,"message":"ok","data":{"crossChainQuota":"10000","crossChainFeeRate":"0.003",
"crossChainAmount":"0","fees":[{"amount":"0.2","currency":"USDC","type":"GAS"}]}}`
	guideWithdrawal = `{"code":0,"message":"ok","data":{"id":"aba46642-edcf-4faa-8942-7d63c967fb07",
"accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347","idempotencyKey":"bfafe401-a54d-445a-a6c5-4b407b68a2cc",
"source":{"type":"cryptoconnect_wallet","id":"32aae8b7-4a69-474f-b7d5-337e190af878"},
"destination":{"type":"blockchain","chain":"ETH","address":"0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
"amount":{"amount":"9.95","currency":"USDC"},"fees":[{"amount":"0.2","currency":"USDC","type":"GAS"}],
"status":"Pending","createTime":"1758276661923","updateTime":"1758276662488"}}`
	// contract §4: the deposit resource.
	contractDeposit = `{"id":"t","accountId":"a","source":{"type":"blockchain","chain":"ETH","address":"0x1"},
"destination":{"type":"cryptoconnect_wallet","id":"w","address":"0x2"},"amount":{"amount":"10.5","currency":"USDC"},
"fees":[{"amount":"0","currency":"USDC","type":"GAS"}],"status":"Closed","transactionHash":"0x3",
"createTime":"1","updateTime":"1"}`
	errorEnvelopeA = `{"code":"010001","message":"m","data":null}`
	errorEnvelopeB = `{"code":10001,"message":"m","data":null}`
)

var (
	uuidRe      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	snowflakeRe = regexp.MustCompile(`^[1-9][0-9]{18}$`)
	addressRe   = regexp.MustCompile(`^0x[0-9a-f]{40}$`)
	txHashRe    = regexp.MustCompile(`^0x[0-9a-f]{64}$`)
	msRe        = regexp.MustCompile(`^[0-9]{13}$`)
	regexpHex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	s, _ := v.(string)
	return s
}

// TestGuideFlow walks the whole MoR guide against the sandbox, checking every answer's shape against the
// guide's example and the numbers the guide shows.
func TestGuideFlow(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{WithdrawalDelay: 50 * time.Millisecond})

	// Generate a wallet address.
	req := map[string]any{"referenceId": "92a86ee7-5bb7-4272-afdb-3865bea9a2d5", "accountId": acct, "nickname": "Developer"}
	created := e.api(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", req, nil)
	assertShape(t, "create wallet", mustJSON(t, guideWallet), created)
	walletID := str(created, "data", "id")
	if !uuidRe.MatchString(walletID) {
		t.Errorf("wallet id %q is not a UUID", walletID)
	}
	again := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", req)
	if again["id"] != walletID {
		t.Errorf("same referenceId gave wallet %v, want %s", again["id"], walletID)
	}
	got := e.api(http.MethodGet, "/open-api/v3/cryptoconnect/wallets/"+walletID, nil, nil)
	assertShape(t, "get wallet", mustJSON(t, guideWallet), got)

	addr := e.api(http.MethodPost, "/open-api/v3/cryptoconnect/wallets/"+walletID+"/addresses",
		map[string]any{"currency": "USDC", "chain": "ETH"}, nil)
	assertShape(t, "create address", mustJSON(t, guideAddress), addr)
	if a := str(addr, "data", "address"); !addressRe.MatchString(a) {
		t.Errorf("address %q is not 0x+40 hex", a)
	}
	addr2 := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets/"+walletID+"/addresses",
		map[string]any{"currency": "USDC", "chain": "ETH"})
	if addr2["address"] != str(addr, "data", "address") {
		t.Errorf("address not idempotent: %v then %v", str(addr, "data", "address"), addr2["address"])
	}
	withAddr := e.api(http.MethodGet, "/open-api/v3/cryptoconnect/wallets/"+walletID, nil, nil)
	assertShape(t, "wallet with address", mustJSON(t, guideWallet), withAddr)
	addrs := withAddr["data"].(map[string]any)["addresses"].([]any)
	if len(addrs) != 1 {
		t.Fatalf("wallet has %d addresses, want 1", len(addrs))
	}
	assertShape(t, "wallet address", mustJSON(t, guideAddress).(map[string]any)["data"], addrs[0])

	// Deposit crypto to the Infinity Account.
	cards := e.api(http.MethodGet, "/open-api/v3/cards/wallets?accountId="+acct+"&walletType=0", nil, nil)
	assertShape(t, "cards wallets", mustJSON(t, guideCardWallets), cards)
	if item := cards["data"].(map[string]any)["list"].([]any)[0].(map[string]any); item["id"] != infinity || item["available"] != "56846.52" {
		t.Errorf("infinity wallet = %v", item)
	}
	sweep := e.api(http.MethodPost, "/open-api/v3/business/transfer/internal",
		transferBody("a0f57479-8218-4844-bec6-e819a38af55a", master, "USDC", infinity, "USD", 2, 0, "10"), nil)
	assertShape(t, "crypto->infinity", mustJSON(t, guideCryptoToInfinity), sweep)
	d := sweep["data"].(map[string]any)
	if !snowflakeRe.MatchString(d["id"].(string)) || d["status"] != "CLOSED" || d["accountTransferType"] != "SAME_ACCOUNT" {
		t.Errorf("transfer = %v", d)
	}
	from, to := d["from"].(map[string]any), d["to"].(map[string]any)
	fee := from["fees"].([]any)[0].(map[string]any)
	if fee["feeType"] != float64(6) || fee["amount"] != "0.05" || fee["currency"] != "USDC" {
		t.Errorf("from.fees = %v, want feeType 6 amount 0.05 USDC", from["fees"])
	}
	if to["amount"] != "9.95" || to["currency"] != "USD" || from["rate"] != float64(1) {
		t.Errorf("to = %v, from.rate = %v", to, from["rate"])
	}
	if !uuidRe.MatchString(from["transferId"].(string)) || !uuidRe.MatchString(to["transferId"].(string)) {
		t.Errorf("transferIds %v %v are not UUIDs", from["transferId"], to["transferId"])
	}
	requireDec(t, "infinity", e.ledger().Infinity.Available, "56856.47")
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "990")

	// Convert & withdraw: USD to the master wallet (addressed by the account id, as the guide does).
	fund := e.api(http.MethodPost, "/open-api/v3/business/transfer/internal",
		transferBody("24ec3603-293b-4f53-8d4d-ed68a3e40828", infinity, "USD", acct, "USD", 0, 2, "10"), nil)
	assertShape(t, "infinity->crypto", mustJSON(t, guideInfinityToCrypto), fund)
	if to := fund["data"].(map[string]any)["to"].(map[string]any); to["id"] != acct || to["amount"] != "10" {
		t.Errorf("to = %v", to)
	}
	requireDec(t, "master USD", e.walletBalance(master, "USD"), "10")
	requireDec(t, "infinity", e.ledger().Infinity.Available, "56846.47")

	quoteReq := map[string]any{"accountId": acct, "baseCurrency": "USDC", "quoteCurrency": "USD", "side": "BUY", "rfqCurrency": "USD", "rfqAmount": "10"}
	est := e.api(http.MethodPost, "/open-api/v3/cryptoconnect/convert/estimate-quote", quoteReq, nil)
	assertShape(t, "estimate", mustJSON(t, guideEstimate), est)
	if d := est["data"].(map[string]any); d["baseAmount"] != "9.95" || d["fee"] != "0.05" || d["ttlMs"] != "60000" {
		t.Errorf("estimate = %v", d)
	}
	requireDec(t, "master USD after estimate", e.walletBalance(master, "USD"), "10")

	quoteReq["referenceId"] = "590a3852-f1aa-494f-a6d5-a3d13a715f70"
	trade := e.api(http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades", quoteReq, nil)
	assertShape(t, "trade", mustJSON(t, guideTrade), trade)
	td := trade["data"].(map[string]any)
	if td["baseWalletId"] != master || td["baseAmount"] != "9.95" || td["status"] != "COMPLETE" || td["symbol"] != "USDC-USD" {
		t.Errorf("trade = %v", td)
	}
	if again := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades", quoteReq); again["id"] != td["id"] {
		t.Errorf("trade replay gave %v, want %v", again["id"], td["id"])
	}
	requireDec(t, "master USD after trade", e.walletBalance(master, "USD"), "0")
	requireDec(t, "master USDC after trade", e.walletBalance(master, "USDC"), "999.95")

	fq := e.api(http.MethodPost, "/open-api/v3/cryptoconnect/transfers/fee-and-quota", map[string]any{
		"accountId":   acct,
		"source":      map[string]any{"type": "WALLET", "id": master},
		"destination": map[string]any{"type": "BLOCKCHAIN", "chain": "ARB", "address": "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
		"amount":      map[string]any{"currency": "USDC", "amount": "10"},
	}, nil)
	assertShape(t, "fee-and-quota", mustJSON(t, guideFeeQuota), fq)

	wreq := map[string]any{
		"idempotencyKey": "bfafe401-a54d-445a-a6c5-4b407b68a2cc",
		"source":         map[string]any{"type": "cryptoconnect_wallet", "id": master},
		"destination":    map[string]any{"type": "blockchain", "chain": "ETH", "address": "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
		"amount":         map[string]any{"amount": "9.95", "currency": "USDC"},
	}
	wd := e.api(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", wreq, nil)
	assertShape(t, "withdrawal", mustJSON(t, guideWithdrawal), wd)
	wid := str(wd, "data", "id")
	if str(wd, "data", "status") != "Pending" {
		t.Errorf("withdrawal status %q, want Pending", str(wd, "data", "status"))
	}
	requireDec(t, "master USDC after withdrawal", e.walletBalance(master, "USDC"), "989.8") // 999.95 - 9.95 - 0.2

	pending := e.api(http.MethodGet, "/open-api/v3/cryptoconnect/transfers/"+wid, nil, nil)
	assertShape(t, "get pending withdrawal", mustJSON(t, guideWithdrawal), pending)
	var closed map[string]any
	eventually(t, 5*time.Second, "withdrawal Closed", func() bool {
		closed = e.api(http.MethodGet, "/open-api/v3/cryptoconnect/transfers/"+wid, nil, nil)
		return str(closed, "data", "status") == "Closed"
	})
	withHash := mustJSON(t, guideWithdrawal).(map[string]any)
	withHash["data"].(map[string]any)["transactionHash"] = "0x"
	assertShape(t, "get closed withdrawal", withHash, closed)
	if h := str(closed, "data", "transactionHash"); !txHashRe.MatchString(h) {
		t.Errorf("transactionHash %q is not 0x+64 hex", h)
	}

	list := e.api(http.MethodGet, "/open-api/v3/cryptoconnect/transfers?accountId="+acct, nil, nil)
	if list["code"] != float64(0) {
		t.Fatalf("list = %v", list)
	}
	ld := list["data"].(map[string]any)
	if ld["total"] != "1" || len(ld["list"].([]any)) != 1 {
		t.Errorf("list = %v", ld)
	}
	assertShape(t, "listed withdrawal", withHash["data"], ld["list"].([]any)[0])
}

// TestErrorEnvelopes checks each endpoint family answers business errors in its own envelope, HTTP 200.
func TestErrorEnvelopes(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	tests := []struct {
		name, method, path string
		body               any
		envelope           string
		code               any
	}{
		{"wallet unknown", http.MethodGet, "/open-api/v3/cryptoconnect/wallets/nope", nil, errorEnvelopeA, "010021"},
		{"wallet bad account", http.MethodPost, "/open-api/v3/cryptoconnect/wallets", map[string]any{"referenceId": "r", "accountId": "x"}, errorEnvelopeA, "010001"},
		{"address bad currency", http.MethodPost, "/open-api/v3/cryptoconnect/wallets/" + master + "/addresses", map[string]any{"currency": "DOGE", "chain": "ETH"}, errorEnvelopeA, "010001"},
		{"cards without account", http.MethodGet, "/open-api/v3/cards/wallets", nil, errorEnvelopeA, "010001"},
		{"transfer not JSON", http.MethodPost, "/open-api/v3/business/transfer/internal", "[", errorEnvelopeA, "010001"},
		{"trade sell", http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades", map[string]any{"referenceId": "r", "accountId": acct, "baseCurrency": "USDC", "quoteCurrency": "USD", "side": "SELL", "rfqCurrency": "USD", "rfqAmount": "1"}, errorEnvelopeA, "010001"},
		{"trade without USD", http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades", map[string]any{"referenceId": "r", "accountId": acct, "baseCurrency": "USDC", "quoteCurrency": "USD", "side": "BUY", "rfqCurrency": "USD", "rfqAmount": "1"}, errorEnvelopeA, "010023"},
		{"fee-and-quota bad currency", http.MethodPost, "/open-api/v3/cryptoconnect/transfers/fee-and-quota", map[string]any{"amount": map[string]any{"currency": "XYZ"}}, errorEnvelopeB, float64(10001)},
		{"transfer unknown", http.MethodGet, "/open-api/v3/cryptoconnect/transfers/nope", nil, errorEnvelopeB, float64(10021)},
		{"withdrawal too large", http.MethodPost, "/open-api/v3/cryptoconnect/transfers", map[string]any{
			"idempotencyKey": "k", "source": map[string]any{"type": "cryptoconnect_wallet", "id": master},
			"destination": map[string]any{"type": "blockchain", "chain": "ETH", "address": "0xabc"},
			"amount":      map[string]any{"amount": "999.9", "currency": "USDC"}}, errorEnvelopeB, float64(10023)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body any = tc.body
			var st int
			var m map[string]any
			var raw []byte
			if s, ok := tc.body.(string); ok {
				st, m, raw = rawRequest(t, e, tc.method, tc.path, s)
			} else {
				st, m, raw = e.request(tc.method, tc.path, body, nil)
			}
			if st != http.StatusOK {
				t.Fatalf("HTTP %d %s, want 200", st, raw)
			}
			assertShape(t, tc.name, mustJSON(t, tc.envelope), m)
			if m["code"] != tc.code {
				t.Errorf("code = %#v (%v), want %#v", m["code"], m["message"], tc.code)
			}
			if m["message"] == "" {
				t.Error("empty message")
			}
		})
	}
	// The master wallet's 1000 USDC cover 999.8 + 0.2 gas exactly: the boundary is inclusive.
	wd := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", map[string]any{
		"idempotencyKey": "k", "source": map[string]any{"type": "cryptoconnect_wallet", "id": master},
		"destination": map[string]any{"type": "blockchain", "chain": "ETH", "address": "0xabc"},
		"amount":      map[string]any{"amount": "999.8", "currency": "USDC"}})
	if wd["status"] != "Pending" {
		t.Errorf("withdrawal = %v", wd)
	}
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "0")
}

func rawRequest(t *testing.T, e *env, method, path, body string) (int, map[string]any, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-access-token", e.token)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}

func TestCurrencyPair(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	m := e.api(http.MethodGet, "/open-api/v3/cryptoconnect/convert/currency-pair?fromCurrency=USD&toCurrency=USDC", nil, nil)
	assertShape(t, "currency pair", mustJSON(t, `{"code":0,"message":"ok","data":{"symbol":"USDC-USD","baseCurrency":"USDC","baseMin":"1","quoteCurrency":"USD","quoteMin":"1"}}`), m)
	if str(m, "data", "symbol") != "USDC-USD" {
		t.Errorf("pair = %v", m["data"])
	}
	if m := e.api(http.MethodGet, "/open-api/v3/cryptoconnect/convert/currency-pair?fromCurrency=USD&toCurrency=EUR", nil, nil); m["code"] != float64(10001) {
		t.Errorf("unsupported pair = %v", m)
	}
}

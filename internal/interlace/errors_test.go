package interlace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func sweepRequest() InternalTransferRequest {
	return InternalTransferRequest{
		ClientTransactionID: "a0f57479-8218-4844-bec6-e819a38af55a",
		AccountID:           guideAccount,
		From:                TransferEndpoint{BusinessType: BusinessTypeCryptoConnect, ID: guideCCWallet, Currency: "USDC"},
		To:                  TransferEndpoint{BusinessType: BusinessTypeInfinity, ID: guideInfinity, Currency: "USD"},
		Amount:              decimal.RequireFromString("10"),
	}
}

// transferData is the data object of the guide's deposit example, for building envelope variants.
const transferData = `{"clientTransactionId":"a0f57479-8218-4844-bec6-e819a38af55a","id":"1986315238040416258",
"status":"CLOSED","accountTransferType":"SAME_ACCOUNT",
"from":{"id":"32aae8b7-4a69-474f-b7d5-337e190af878","amount":"10","rate":1.00,"currency":"USDC","businessType":2,"fees":[]},
"to":{"id":"63b2af21-1e8c-407b-8df9-10adc05963aa","amount":"9.95","currency":"USD","businessType":0,"fees":[]}}`

func TestEnvelopeSuccessCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, code string }{
		{"StringSixZeros", `"000000"`},
		{"NumberZero", `0`},
		{"StringZero", `"0"`},
		{"NumberZeroWithFraction", `0.0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := `{"code":` + tc.code + `,"message":"ok","data":` + transferData + `}`
			up := newUpstream(t, answer(200, []byte(body)))
			c, _ := newTestClient(t, up.URL)
			tr, err := c.InternalTransfer(context.Background(), sweepRequest())
			if err != nil {
				t.Fatalf("code %s: %v", tc.code, err)
			}
			eq(t, "id", tr.ID, "1986315238040416258")
			dec(t, "to.amount", tr.To.Amount, "9.95")
		})
	}
}

func TestEnvelopeFailures(t *testing.T) {
	t.Parallel()
	type want struct {
		status     int
		code       string
		message    string // substring
		retryable  bool
		retryAfter time.Duration
		malformed  bool
	}
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   want
	}{
		// Definite rejections: a non-success code, or a 4xx other than 401/408/409/429.
		{"BusinessCodeOnHTTP200", 200, nil, `{"code":"010023","message":"insufficient balance","data":null}`,
			want{200, "010023", "insufficient balance", false, 0, false}},
		{"NumericBusinessCode", 200, nil, `{"code":1001,"message":"bad chain"}`,
			want{200, "1001", "bad chain", false, 0, false}},
		{"BadRequest", 400, nil, `{"code":"010001","message":"amount invalid"}`,
			want{400, "010001", "amount invalid", false, 0, false}},
		{"Forbidden", 403, nil, `{"code":"010403","message":"ip not whitelisted"}`,
			want{403, "010403", "ip not whitelisted", false, 0, false}},
		{"NotFound", 404, nil, `{"code":"010021","message":"balance does not exist"}`,
			want{404, "010021", "balance does not exist", false, 0, false}},
		{"Unprocessable", 422, nil, `{"code":"010422","message":"currency not supported"}`,
			want{422, "010422", "currency not supported", false, 0, false}},
		{"NotFoundPlainText", 404, nil, "404 page not found\n", want{404, "", "404 page not found", false, 0, false}},
		{"RedirectNotFollowed", 302, map[string]string{"Location": "http://127.0.0.1:1/elsewhere"}, ``,
			want{302, "", "", false, 0, false}},

		// "In progress": the first request with this key is still running.
		{"InProgressCode", 200, nil, `{"code":"010409","message":"Transaction in progress"}`,
			want{200, "010409", "Transaction in progress", true, 0, false}},
		// Contract §11: in progress is known from the status field or a known code, never from a
		// message that happens to contain "processing".
		{"ProcessingWordIsNotInProgress", 200, nil, `{"code":77,"message":"Request is PROCESSING, retry later"}`,
			want{200, "77", "PROCESSING", false, 0, false}},
		{"ProcessingWordOn400IsARejection", 400, nil, `{"code":"010001","message":"amount below the processing minimum"}`,
			want{400, "010001", "processing minimum", false, 0, false}},
		{"InProgressOn400", 400, nil, `{"code":"010409","message":"transaction in progress"}`,
			want{400, "010409", "in progress", true, 0, false}},

		// Transient statuses, whatever the body says (the sandbox sends a non-success code with them).
		{"InternalServerError", 500, nil, `{"code":"010500","message":"injected fault"}`,
			want{500, "010500", "injected fault", true, 0, false}},
		{"BadGatewayHTML", 502, nil, "<html><body><h1>502 Bad Gateway</h1></body></html>",
			want{502, "", "502 Bad Gateway", true, 0, false}},
		{"ServiceUnavailable", 503, map[string]string{"Retry-After": "3"}, `{"code":0,"message":"busy"}`,
			want{503, "0", "busy", true, 3 * time.Second, false}},
		{"TooManyRequests", 429, map[string]string{"Retry-After": "7"}, `{"code":"010429","message":"slow down"}`,
			want{429, "010429", "slow down", true, 7 * time.Second, false}},
		{"RequestTimeout", 408, nil, ``, want{408, "", "", true, 0, false}},
		{"Conflict", 409, nil, `{"code":"010409","message":"duplicate request"}`,
			want{409, "010409", "duplicate request", true, 0, false}},

		// A 2xx whose content cannot be understood: the transfer may have happened, so retry.
		{"SuccessWithoutData", 200, nil, `{"code":"000000","message":"success"}`,
			want{200, "000000", "without data", true, 0, true}},
		{"NoCode", 200, nil, `{"data":` + transferData + `}`, want{200, "", "", true, 0, true}},
		{"NotJSON", 200, nil, `OK`, want{200, "", "undecodable", true, 0, true}},
		{"EmptyBody", 200, nil, ``, want{200, "", "undecodable", true, 0, true}},
		{"JSONArray", 200, nil, `[1,2]`, want{200, "", "undecodable", true, 0, true}},
		{"CodeIsObject", 200, nil, `{"code":{"x":1}}`, want{200, "", "undecodable", true, 0, true}},
		{"BadAmount", 200, nil, `{"code":"000000","data":{"id":"1","status":"CLOSED","to":{"amount":"ten"}}}`,
			want{200, "000000", "undecodable data", true, 0, true}},
		{"NoTransferID", 200, nil, `{"code":"000000","data":{"status":"CLOSED"}}`,
			want{200, "000000", "incomplete data", true, 0, true}},
		{"Created201NoBody", 201, nil, ``, want{201, "", "undecodable", true, 0, true}},
		{"TooLarge", 200, nil, `{"code":"000000","message":"` + strings.Repeat("x", maxBodyBytes) + `"}`,
			want{200, "", "too large", true, 0, true}},

		// An answer for another request must not be booked as ours.
		{"ForeignClientTransactionID", 200, nil,
			`{"code":"000000","data":` + strings.Replace(transferData, "a0f57479", "ffffffff", 1) + `}`,
			want{200, "", "not", false, 0, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			c, obs := newTestClient(t, up.URL)
			tr, err := c.InternalTransfer(context.Background(), sweepRequest())
			if err == nil {
				t.Fatalf("got %+v, want an error", tr)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T %v is not an *APIError", err, err)
			}
			eq(t, "Endpoint", ae.Endpoint, EndpointInternalTransfer)
			eq(t, "HTTPStatus", ae.HTTPStatus, tc.want.status)
			eq(t, "Code", ae.Code, tc.want.code)
			if !strings.Contains(ae.Message, tc.want.message) {
				t.Errorf("Message = %q, want it to contain %q", ae.Message, tc.want.message)
			}
			eq(t, "Retryable", ae.Retryable, tc.want.retryable)
			eq(t, "IsRetryable", IsRetryable(err), tc.want.retryable)
			eq(t, "RetryAfter", ae.RetryAfter, tc.want.retryAfter)
			eq(t, "malformed", errors.Is(err, ErrMalformedResponse), tc.want.malformed)
			if len(ae.Message) > maxMessageLen+len("…") {
				t.Errorf("Message is %d bytes long", len(ae.Message))
			}
			if got := up.requests(); len(got) != 1 {
				t.Errorf("upstream saw %d requests, want 1 (the client itself never retries)", len(got))
			}
			if o := obs.all(); len(o) != 1 || o[0].status != fmt.Sprint(tc.status) {
				t.Errorf("observed %v, want one %d", o, tc.status)
			}
		})
	}
}

func TestTransportFailuresAreRetryableWithoutStatus(t *testing.T) {
	t.Parallel()
	hijackAndClose := func(w http.ResponseWriter, _ *http.Request, _ int) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	cutShort := func(w http.ResponseWriter, _ *http.Request, _ int) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"code\":\"000")
		_ = buf.Flush()
		_ = conn.Close()
	}
	for _, tc := range []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request, int)
		timeout time.Duration
		label   string
		is      error
	}{
		{"Timeout", func(w http.ResponseWriter, r *http.Request, _ int) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, 100 * time.Millisecond, StatusTimeout, context.DeadlineExceeded},
		{"ConnectionClosedBeforeAnswer", hijackAndClose, time.Second, StatusNetwork, nil},
		{"AnswerCutShort", cutShort, time.Second, "200", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, tc.respond)
			c, obs := newTestClient(t, up.URL, func(cfg *Config) { cfg.Timeout = tc.timeout })
			_, err := c.InternalTransfer(context.Background(), sweepRequest())
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T %v is not an *APIError", err, err)
			}
			eq(t, "HTTPStatus", ae.HTTPStatus, 0)
			eq(t, "Retryable", ae.Retryable, true)
			eq(t, "Code", ae.Code, "")
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if o := obs.all(); len(o) != 1 || o[0] != (observation{EndpointInternalTransfer, tc.label}) {
				t.Errorf("observed %v, want one %q", o, tc.label)
			}
		})
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c, obs := newTestClient(t, "http://"+addr)
	_, err = c.GetWallet(context.Background(), guideWallet)
	var ae *APIError
	if !errors.As(err, &ae) || !ae.Retryable || ae.HTTPStatus != 0 {
		t.Fatalf("err = %v, want a retryable APIError without status", err)
	}
	if o := obs.all(); len(o) != 1 || o[0].status != StatusNetwork {
		t.Errorf("observed %v", o)
	}
}

func TestCallerCancellation(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		close(started)
		<-r.Context().Done()
	})
	c, obs := newTestClient(t, up.URL)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.InternalTransfer(ctx, sweepRequest())
	if !errors.Is(err, context.Canceled) || !IsRetryable(err) {
		t.Fatalf("err = %v, want retryable and context.Canceled", err)
	}
	if o := obs.all(); len(o) != 1 || o[0].status != StatusCanceled {
		t.Errorf("observed %v", o)
	}
}

// The default client must not follow redirects: Go would forward x-access-token to the new host.
func TestRedirectDoesNotLeakToken(t *testing.T) {
	t.Parallel()
	other := newUpstream(t, answer(200, readTestdata(t, "get_wallet.json")))
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	c, _ := newTestClient(t, up.URL)
	_, err := c.GetWallet(context.Background(), guideWallet)
	var ae *APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusTemporaryRedirect || ae.Retryable {
		t.Fatalf("err = %v, want a non-retryable 307", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
}

func TestInvalidRequestsNeverReachUpstream(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "internal_transfer_deposit.json")))
	c, obs := newTestClient(t, up.URL)
	ctx := context.Background()
	noKey := sweepRequest()
	noKey.ClientTransactionID = ""
	zero := sweepRequest()
	zero.Amount = decimal.Zero
	negative := sweepRequest()
	negative.Amount = decimal.RequireFromString("-1")
	calls := map[string]func() error{
		"TransferWithoutKey":     func() error { _, err := c.InternalTransfer(ctx, noKey); return err },
		"TransferOfZero":         func() error { _, err := c.InternalTransfer(ctx, zero); return err },
		"TransferNegative":       func() error { _, err := c.InternalTransfer(ctx, negative); return err },
		"WalletWithoutReference": func() error { _, err := c.CreateWallet(ctx, CreateWalletRequest{AccountID: "a"}); return err },
		"GetWalletDotDot":        func() error { _, err := c.GetWallet(ctx, ".."); return err },
		"GetWalletEmpty":         func() error { _, err := c.GetWallet(ctx, ""); return err },
		"AddressWithoutChain": func() error {
			_, err := c.CreateAddress(ctx, guideWallet, CreateAddressRequest{Currency: "USDC"})
			return err
		},
		"ListWithoutAccount": func() error { _, err := c.ListInfinityWallets(ctx, ""); return err },
		"TradeWithoutReference": func() error {
			_, err := c.CreateTrade(ctx, TradeRequest{AccountID: "a", BaseCurrency: "USDC", QuoteCurrency: "USD",
				Side: "BUY", RFQCurrency: "USD", RFQAmount: decimal.NewFromInt(1)})
			return err
		},
		"WithdrawWithoutKey": func() error {
			_, err := c.CreateBlockchainTransfer(ctx, BlockchainTransferRequest{Source: Source{ID: "w"},
				Destination: Destination{Chain: "ETH", Address: "0x1"}, Amount: Money{decimal.NewFromInt(1), "USDC"}})
			return err
		},
		"GetTransferEmpty": func() error { _, err := c.GetBlockchainTransfer(ctx, ""); return err },
	}
	for name, call := range calls {
		err := call()
		var ae *APIError
		if !errors.As(err, &ae) || ae.Retryable || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want a non-retryable ErrInvalidRequest", name, err)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream got %d requests", n)
	}
	if n := len(obs.all()); n != 0 {
		t.Errorf("observed %d requests", n)
	}
}

func TestPathIDsAreEscaped(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "get_wallet.json")))
	c, _ := newTestClient(t, up.URL+"/prefix/")
	if _, err := c.GetWallet(context.Background(), "a/b?c"); err != nil {
		t.Fatal(err)
	}
	eq(t, "path", up.only(t).Path, "/prefix/open-api/v3/cryptoconnect/wallets/a%2Fb%3Fc")
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"120", 2 * time.Minute},
		{" 3 ", 3 * time.Second},
		{"99999999999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		eq(t, "parseRetryAfter("+tc.in+")", parseRetryAfter(tc.in, now), tc.want)
	}
}

func TestRetryAfterDateOn429(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Retry-After", time.Now().Add(time.Minute).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	})
	c, _ := newTestClient(t, up.URL)
	_, err := c.GetWallet(context.Background(), guideWallet)
	var ae *APIError
	if !errors.As(err, &ae) || !ae.Retryable {
		t.Fatalf("err = %v", err)
	}
	if ae.RetryAfter < 58*time.Second || ae.RetryAfter > time.Minute {
		t.Errorf("RetryAfter = %s, want about a minute", ae.RetryAfter)
	}
}

// secretFree fails when any rendering of err contains the secret.
func secretFree(t *testing.T, err error, secret string) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, secret) {
			t.Errorf("error text leaks the secret: %s", s)
		}
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), secret) {
			t.Errorf("wrapped error leaks the secret: %s", e.Error())
		}
	}
}

func TestErrorsNeverContainTheToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request, int)
		timeout time.Duration
	}{
		{"EchoedInMessage", func(w http.ResponseWriter, r *http.Request, _ int) {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"code":"010001","message":"token %s is not allowed here"}`, r.Header.Get("x-access-token"))
		}, time.Second},
		{"EchoedInCode", func(w http.ResponseWriter, r *http.Request, _ int) {
			fmt.Fprintf(w, `{"code":%q,"message":"x"}`, r.Header.Get("x-access-token"))
		}, time.Second},
		{"EchoedInHTMLPage", func(w http.ResponseWriter, r *http.Request, _ int) {
			w.WriteHeader(502)
			fmt.Fprintf(w, `<html>upstream said no to %s</html>`, r.Header.Get("x-access-token"))
		}, time.Second},
		{"EchoedInUndecodableData", func(w http.ResponseWriter, r *http.Request, _ int) {
			fmt.Fprintf(w, `{"code":"000000","data":{"id":"1","status":"CLOSED","to":{"amount":%q}}}`, r.Header.Get("x-access-token"))
		}, time.Second},
		{"Unauthorized", func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(401) }, time.Second},
		{"Timeout", func(w http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() }, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, tc.respond)
			c, _ := newTestClient(t, up.URL, func(cfg *Config) { cfg.Timeout = tc.timeout })
			_, err := c.InternalTransfer(context.Background(), sweepRequest())
			secretFree(t, err, testToken)
			if len(up.requests()) == 0 {
				t.Fatal("no request reached the server")
			}
		})
	}
}

func TestConfigDoesNotPrintSecrets(t *testing.T) {
	t.Parallel()
	cfg := Config{BaseURL: "https://x", Tokens: StaticToken(testToken)}
	ocfg := OAuthConfig{BaseURL: "https://x", ClientID: "id", ClientSecret: "client-secret-canary"}
	src := NewOAuthTokenSource(ocfg)
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Tokens),
		fmt.Sprintf("%v %+v %#v %s", ocfg, ocfg, ocfg, src),
		fmt.Sprintf("%v %+v %#v", src, src, src),
	} {
		if strings.Contains(s, testToken) || strings.Contains(s, "client-secret-canary") {
			t.Errorf("printed config leaks a secret: %s", s)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"NoBaseURL":     {Tokens: StaticToken("t")},
		"NotHTTP":       {BaseURL: "ftp://x", Tokens: StaticToken("t")},
		"NoHost":        {BaseURL: "http://", Tokens: StaticToken("t")},
		"Query":         {BaseURL: "http://x/?a=b", Tokens: StaticToken("t")},
		"NoTokens":      {BaseURL: "http://x"},
		"NegativeLimit": {BaseURL: "http://x", Tokens: StaticToken("t"), Timeout: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	c, err := New(Config{BaseURL: "https://api-sandbox.interlace.money/", Tokens: StaticToken("t")})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "base", c.base, "https://api-sandbox.interlace.money")
	eq(t, "timeout", c.timeout, defaultTimeout)
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost < 64 {
		t.Errorf("default transport = %#v, want MaxIdleConnsPerHost >= 64", c.http.Transport)
	}
}

func TestStaticTokenEmpty(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, answer(200, readTestdata(t, "get_wallet.json")))
	c, _ := newTestClient(t, up.URL, func(cfg *Config) { cfg.Tokens = StaticToken("") })
	_, err := c.GetWallet(context.Background(), guideWallet)
	if !errors.Is(err, ErrNoToken) || !IsRetryable(err) {
		t.Fatalf("err = %v, want retryable ErrNoToken", err)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream got %d requests without a token", n)
	}
}

package interlace

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// TestSandboxRealismThroughClient drives the stricter sandbox of contract §12 through this package's real
// client over real HTTP: what sweeper sees of each new behaviour. The list endpoint has no client method yet, so
// it is called through the client's own request path (do), which applies the same envelope and error rules.
func TestSandboxRealismThroughClient(t *testing.T) {
	t.Parallel()
	const (
		acct     = sandbox.DefaultAccountID
		master   = sandbox.DefaultMasterWalletID
		infinity = sandbox.DefaultInfinityWalletID
		budget   = sandbox.DefaultBudgetWalletID
	)
	sweep := func(ctid, amount string) InternalTransferRequest {
		return InternalTransferRequest{ClientTransactionID: ctid, AccountID: acct,
			From:   TransferEndpoint{BusinessType: BusinessTypeCryptoConnect, ID: master, Currency: "USDC"},
			To:     TransferEndpoint{BusinessType: BusinessTypeInfinity, ID: infinity, Currency: "USD"},
			Amount: decimal.RequireFromString(amount)}
	}
	withdrawal := func(key, amount string) BlockchainTransferRequest {
		return BlockchainTransferRequest{IdempotencyKey: key, AccountID: acct,
			Source:      Source{Type: "cryptoconnect_wallet", ID: master},
			Destination: Destination{Type: "blockchain", Chain: "ETH", Address: "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
			Amount:      Money{Amount: decimal.RequireFromString(amount), Currency: "USDC"}}
	}
	type listPage struct {
		List  []BlockchainTransfer `json:"list"`
		Total FlexInt              `json:"total"`
	}
	list := func(ctx context.Context, c *Client, q url.Values) (any, error) {
		var p listPage
		err := c.do(ctx, call{endpoint: "list_transfers", method: http.MethodGet, path: "/open-api/v3/cryptoconnect/transfers", query: q}, &p)
		return p, err
	}
	cards := func(ctx context.Context, c *Client, q url.Values) ([]InfinityWallet, error) {
		var p infinityWalletList
		err := c.do(ctx, call{endpoint: EndpointListInfinityWallets, method: http.MethodGet, path: "/open-api/v3/cards/wallets", query: q}, &p)
		return p.List, err
	}
	deposit := func(t *testing.T, sb *sandbox.Server, amount string) sandbox.Deposit {
		t.Helper()
		d, err := sb.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: decimal.RequireFromString(amount)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	tests := []struct {
		name     string
		cfg      sandbox.Config
		faults   sandbox.Faults
		run      func(ctx context.Context, t *testing.T, c *Client, sb *sandbox.Server) (any, error)
		wantCode string // "" = success
		check    func(t *testing.T, got any, sb *sandbox.Server)
	}{
		{
			name: "repeated clientTransactionId answers the first transfer by default",
			run: func(ctx context.Context, t *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				first, err := c.InternalTransfer(ctx, sweep("c-1", "10"))
				if err != nil {
					t.Fatal(err)
				}
				again, err := c.InternalTransfer(ctx, sweep("c-1", "10"))
				if err == nil && again.ID != first.ID {
					t.Errorf("replay id %s, want %s", again.ID, first.ID)
				}
				return again, err
			},
			check: func(t *testing.T, got any, sb *sandbox.Server) {
				if tr := got.(*InternalTransfer); tr.Status != "CLOSED" {
					t.Errorf("replay status %s", tr.Status)
				}
				if n := len(sb.Ledger().InternalTransfers); n != 1 {
					t.Errorf("%d transfers, want 1", n)
				}
			},
		},
		{
			name:   "repeated clientTransactionId under duplicateAnswer error",
			faults: sandbox.Faults{DuplicateAnswer: sandbox.DuplicateError},
			run: func(ctx context.Context, t *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				if _, err := c.InternalTransfer(ctx, sweep("c-2", "10")); err != nil {
					t.Fatal(err)
				}
				return c.InternalTransfer(ctx, sweep("c-2", "10"))
			},
			wantCode: "100409",
			check: func(t *testing.T, _ any, sb *sandbox.Server) {
				l := sb.Ledger()
				if got := l.AnswersByIdempotencyKey["c-2"]; !slices.Equal(got, []string{"applied", "duplicate_error"}) || len(l.InternalTransfers) != 1 {
					t.Errorf("answers %v, %d transfers", got, len(l.InternalTransfers))
				}
			},
		},
		{
			name:   "repeated idempotencyKey of a withdrawal under duplicateAnswer error",
			faults: sandbox.Faults{DuplicateAnswer: sandbox.DuplicateError},
			run: func(ctx context.Context, t *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				if _, err := c.CreateBlockchainTransfer(ctx, withdrawal("w-1", "5")); err != nil {
					t.Fatal(err)
				}
				return c.CreateBlockchainTransfer(ctx, withdrawal("w-1", "5"))
			},
			wantCode: "100409",
		},
		{
			name:   "PENDING answer, CLOSED after pendingMs",
			faults: sandbox.Faults{PendingRate: 1, PendingMs: 150},
			run: func(ctx context.Context, t *testing.T, c *Client, sb *sandbox.Server) (any, error) {
				tr, err := c.InternalTransfer(ctx, sweep("c-3", "10"))
				if err != nil {
					return nil, err
				}
				if tr.Status != "PENDING" {
					t.Fatalf("status %s, want PENDING", tr.Status)
				}
				time.Sleep(400 * time.Millisecond)
				return c.InternalTransfer(ctx, sweep("c-3", "10"))
			},
			check: func(t *testing.T, got any, sb *sandbox.Server) {
				if tr := got.(*InternalTransfer); tr.Status != "CLOSED" {
					t.Errorf("replay after pendingMs: %s, want CLOSED", tr.Status)
				}
				if it := sb.Ledger().InternalTransfers[0]; !it.Applied || it.Status != "CLOSED" {
					t.Errorf("ledger %+v", it)
				}
			},
		},
		{
			name: "insufficient balance on a sweep",
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return c.InternalTransfer(ctx, sweep("c-4", "1000.01"))
			},
			wantCode: "010023",
		},
		{
			name: "insufficient balance on a withdrawal from an empty master",
			cfg:  sandbox.Config{EmptyMaster: true},
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return c.CreateBlockchainTransfer(ctx, withdrawal("w-2", "1"))
			},
			wantCode: "10023",
		},
		{
			name: "insufficient balance on a trade",
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return c.CreateTrade(ctx, TradeRequest{ReferenceID: "t-1", AccountID: acct, BaseCurrency: "USDC",
					QuoteCurrency: "USD", Side: "BUY", RFQCurrency: "USD", RFQAmount: decimal.RequireFromString("10")})
			},
			wantCode: "010023",
		},
		{
			name:   "walletType alone lists the Budget first",
			faults: sandbox.Faults{BudgetBalance: true},
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return cards(ctx, c, url.Values{"accountId": {acct}, "walletType": {"0"}})
			},
			check: func(t *testing.T, got any, _ *sandbox.Server) {
				ws := got.([]InfinityWallet)
				if len(ws) != 2 || ws[0].ID != budget || ws[0].ObjectType == nil || *ws[0].ObjectType != 1 ||
					ws[0].Currency != "USD" || ws[0].WalletType != 0 || ws[1].ID != infinity || *ws[1].ObjectType != 0 {
					t.Errorf("list %+v, want the Budget (objectType 1, walletType 0, USD) then the Infinity balance", ws)
				}
			},
		},
		{
			name:   "objectType=0 lists the Infinity balance only",
			faults: sandbox.Faults{BudgetBalance: true},
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return cards(ctx, c, url.Values{"accountId": {acct}, "objectType": {"0"}, "walletType": {"0"}})
			},
			check: func(t *testing.T, got any, _ *sandbox.Server) {
				if ws := got.([]InfinityWallet); len(ws) != 1 || ws[0].ID != infinity {
					t.Errorf("list %+v, want the Infinity balance alone", ws)
				}
			},
		},
		{
			name:   "a sweep into the Budget is refused",
			faults: sandbox.Faults{BudgetBalance: true},
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				req := sweep("c-5", "10")
				req.To.ID = budget
				return c.InternalTransfer(ctx, req)
			},
			wantCode: "010001",
		},
		{
			name: "transfer list without accountId",
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return list(ctx, c, url.Values{"limit": {"10"}})
			},
			wantCode: "10001",
		},
		{
			name: "transfer list with limit 101",
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return list(ctx, c, url.Values{"accountId": {acct}, "limit": {"101"}})
			},
			wantCode: "10001",
		},
		{
			name: "transfer list with page 0",
			run: func(ctx context.Context, _ *testing.T, c *Client, _ *sandbox.Server) (any, error) {
				return list(ctx, c, url.Values{"accountId": {acct}, "page": {"0"}})
			},
			wantCode: "10001",
		},
		{
			name: "transfer list at its limits decodes, total as a string",
			run: func(ctx context.Context, t *testing.T, c *Client, sb *sandbox.Server) (any, error) {
				for range 3 {
					deposit(t, sb, "2.5")
				}
				return list(ctx, c, url.Values{"accountId": {acct}, "limit": {"2"}, "page": {"1"},
					"startTime": {"0"}, "endTime": {"99999999999999"}})
			},
			check: func(t *testing.T, got any, _ *sandbox.Server) {
				p := got.(listPage)
				if p.Total != 3 || len(p.List) != 2 || p.List[0].Status != "Closed" || p.List[0].Destination.Type != "cryptoconnect_wallet" {
					t.Errorf("page %+v", p)
				}
			},
		},
		{
			name:   "a refunded deposit reads Refunded by id",
			cfg:    sandbox.Config{RefundDelay: 20 * time.Millisecond},
			faults: sandbox.Faults{RefundAfterCloseRate: 1},
			run: func(ctx context.Context, t *testing.T, c *Client, sb *sandbox.Server) (any, error) {
				d := deposit(t, sb, "3")
				deadline := time.Now().Add(5 * time.Second)
				for {
					tr, err := c.GetBlockchainTransfer(ctx, d.ID)
					if err != nil || tr.Status == "Refunded" || time.Now().After(deadline) {
						return tr, err
					}
					time.Sleep(10 * time.Millisecond)
				}
			},
			check: func(t *testing.T, got any, _ *sandbox.Server) {
				if tr := got.(*BlockchainTransfer); tr.Status != "Refunded" || tr.Source.Type != "blockchain" {
					t.Errorf("deposit %+v, want Refunded", tr)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.StaticToken, cfg.Seed = testToken, 7
			sb := sandbox.New(cfg)
			srv := httptest.NewServer(sb.Handler())
			t.Cleanup(func() { srv.Close(); sb.Close() })
			sb.SetFaults(tc.faults)
			c, _ := newTestClient(t, srv.URL)

			got, err := tc.run(context.Background(), t, c, sb)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
			} else {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v (%T), want an *APIError with code %s", err, err, tc.wantCode)
				}
				// A business error: HTTP 200, a definite answer the caller must not blindly retry.
				if ae.Code != tc.wantCode || ae.HTTPStatus != http.StatusOK || ae.Retryable {
					t.Fatalf("APIError code %q HTTP %d retryable %v (%v), want code %s, HTTP 200, not retryable",
						ae.Code, ae.HTTPStatus, ae.Retryable, ae, tc.wantCode)
				}
			}
			if tc.check != nil {
				tc.check(t, got, sb)
			}
		})
	}
}

package interlace

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Interlace's documented limits of GET /open-api/v3/cryptoconnect/transfers
// (interlace-api-facts.md, Update): accountId required, limit 1–100, pages from 1.
const (
	MaxTransferPageSize = 100
)

// ListTransfersParams select one page of CryptoConnect transfers.
type ListTransfersParams struct {
	AccountID string    // required
	WalletID  string    // optional filter
	Start     time.Time // createTime window, sent as ms epochs; zero = unbounded
	End       time.Time
	Page      int // from 1
	Limit     int // 1..100
}

// TransferPage is one page of transfer records, each kept as the exact JSON
// object Interlace sent: sweeper reads them with the same classifier as a
// notification's resource, so nothing is lost or reinterpreted on the way.
type TransferPage struct {
	List  []json.RawMessage `json:"list"`
	Total FlexInt           `json:"total"`
}

// ListTransfers reads one page of the account's CryptoConnect transfers (deposits
// and withdrawals). Out-of-range paging is refused before any call.
func (c *Client) ListTransfers(ctx context.Context, p ListTransfersParams) (*TransferPage, error) {
	const ep = EndpointListTransfers
	if err := required(ep, "accountId", p.AccountID); err != nil {
		return nil, err
	}
	if p.Page < 1 {
		return nil, invalid(ep, "page must be >= 1, got %d", p.Page)
	}
	if p.Limit < 1 || p.Limit > MaxTransferPageSize {
		return nil, invalid(ep, "limit must be 1..%d, got %d", MaxTransferPageSize, p.Limit)
	}
	q := url.Values{"accountId": {p.AccountID}, "page": {strconv.Itoa(p.Page)}, "limit": {strconv.Itoa(p.Limit)}}
	if p.WalletID != "" {
		q.Set("walletId", p.WalletID)
	}
	if !p.Start.IsZero() {
		q.Set("startTime", strconv.FormatInt(p.Start.UnixMilli(), 10))
	}
	if !p.End.IsZero() {
		q.Set("endTime", strconv.FormatInt(p.End.UnixMilli(), 10))
	}
	var page TransferPage
	err := c.do(ctx, call{endpoint: ep, method: http.MethodGet, path: "/open-api/v3/cryptoconnect/transfers", query: q}, &page)
	if err != nil {
		return nil, err
	}
	return &page, nil
}

// GetTransferRecord reads one CryptoConnect transfer by its Interlace id and
// returns the object exactly as sent (see TransferPage).
func (c *Client) GetTransferRecord(ctx context.Context, id string) (json.RawMessage, error) {
	const ep = EndpointGetBlockchainTransfer
	seg, err := pathID(ep, "id", id)
	if err != nil {
		return nil, err
	}
	var rec json.RawMessage
	err = c.do(ctx, call{endpoint: ep, method: http.MethodGet, path: "/open-api/v3/cryptoconnect/transfers/" + seg}, &rec)
	if err != nil {
		return nil, err
	}
	return rec, nil
}

package interlace

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/shopspring/decimal"
)

func invalid(endpoint, format string, args ...any) error {
	return &APIError{Endpoint: endpoint, Message: fmt.Sprintf(format, args...), Err: ErrInvalidRequest}
}

// required reports the first empty field, by name, as an invalid request.
func required(endpoint string, fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return invalid(endpoint, "%s is required", fields[i])
		}
	}
	return nil
}

// pathID escapes an id for use as a path segment. "." and ".." survive escaping and would change the
// path's meaning, so they are refused.
func pathID(endpoint, field, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", invalid(endpoint, "%s %q is not a valid id", field, id)
	}
	return url.PathEscape(id), nil
}

// positive rejects zero and negative amounts before they reach Interlace: a money movement of a
// non-positive amount is always a caller bug.
func positive(endpoint, field string, d decimal.Decimal) error {
	if d.Sign() <= 0 {
		return invalid(endpoint, "%s must be positive, got %s", field, d.String())
	}
	return nil
}

// echoed guards against an answer that belongs to another request (a proxy or cache mix-up, or an
// idempotency key collision upstream). It is a definite error: recording that answer as ours would
// attach someone else's transfer to our record. Case is ignored because the keys are usually UUIDs,
// whose hex digits may come back in upper case.
func echoed(endpoint, field, sent, got string) error {
	if got != "" && !strings.EqualFold(got, sent) {
		return &APIError{Endpoint: endpoint, HTTPStatus: http.StatusOK,
			Message: fmt.Sprintf("answer is for %s %q, not %q", field, got, sent), Err: ErrMalformedResponse}
	}
	return nil
}

// CreateWallet creates a CryptoConnect wallet. ReferenceID is also the Idempotency-Key, so a repeated
// call returns the wallet created first.
func (c *Client) CreateWallet(ctx context.Context, req CreateWalletRequest) (*Wallet, error) {
	const ep = EndpointCreateWallet
	if err := required(ep, "referenceId", req.ReferenceID, "accountId", req.AccountID); err != nil {
		return nil, err
	}
	var w Wallet
	err := c.do(ctx, call{endpoint: ep, method: http.MethodPost, path: "/open-api/v3/cryptoconnect/wallets",
		body: req, idemKey: req.ReferenceID}, &w)
	if err != nil {
		return nil, err
	}
	if err := echoed(ep, "referenceId", req.ReferenceID, w.ReferenceID); err != nil {
		return nil, err
	}
	return &w, nil
}

// GetWallet reads a CryptoConnect wallet with its balances and addresses.
func (c *Client) GetWallet(ctx context.Context, walletID string) (*Wallet, error) {
	const ep = EndpointGetWallet
	seg, err := pathID(ep, "walletId", walletID)
	if err != nil {
		return nil, err
	}
	var w Wallet
	err = c.do(ctx, call{endpoint: ep, method: http.MethodGet, path: "/open-api/v3/cryptoconnect/wallets/" + seg}, &w)
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// CreateAddress adds a deposit address on a chain to a wallet.
func (c *Client) CreateAddress(ctx context.Context, walletID string, req CreateAddressRequest) (*Address, error) {
	const ep = EndpointCreateAddress
	seg, err := pathID(ep, "walletId", walletID)
	if err != nil {
		return nil, err
	}
	if err := required(ep, "currency", req.Currency, "chain", req.Chain); err != nil {
		return nil, err
	}
	var a Address
	err = c.do(ctx, call{endpoint: ep, method: http.MethodPost,
		path: "/open-api/v3/cryptoconnect/wallets/" + seg + "/addresses", body: req}, &a)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// ListInfinityWallets lists an account's balances with the documented Infinity filter objectType=0
// (walletType=0 is sent too, for servers that only know that one). Servers have been seen to ignore
// one filter or the other, so the answer may hold Budget or card balances as well: choose with
// PickInfinityWallet, never by position.
func (c *Client) ListInfinityWallets(ctx context.Context, accountID string) ([]InfinityWallet, error) {
	const ep = EndpointListInfinityWallets
	if err := required(ep, "accountId", accountID); err != nil {
		return nil, err
	}
	var page infinityWalletList
	err := c.do(ctx, call{endpoint: ep, method: http.MethodGet, path: "/open-api/v3/cards/wallets",
		query: url.Values{"accountId": {accountID}, "objectType": {"0"}, "walletType": {"0"}}}, &page)
	if err != nil {
		return nil, err
	}
	if page.List == nil {
		page.List = []InfinityWallet{}
	}
	return page.List, nil
}

// InternalTransfer moves money between balances of one account (the sweep). ClientTransactionID is
// also sent as the Idempotency-Key header: repeating the identical call after an ambiguous outcome
// returns the first result instead of moving the money twice.
func (c *Client) InternalTransfer(ctx context.Context, req InternalTransferRequest) (*InternalTransfer, error) {
	const ep = EndpointInternalTransfer
	if err := required(ep, "clientTransactionId", req.ClientTransactionID, "accountId", req.AccountID,
		"from.id", req.From.ID, "from.currency", req.From.Currency, "to.id", req.To.ID, "to.currency", req.To.Currency); err != nil {
		return nil, err
	}
	if err := positive(ep, "amount", req.Amount); err != nil {
		return nil, err
	}
	var t InternalTransfer
	err := c.do(ctx, call{endpoint: ep, method: http.MethodPost, path: "/open-api/v3/business/transfer/internal",
		body: req, idemKey: req.ClientTransactionID}, &t)
	if err != nil {
		return nil, err
	}
	if err := echoed(ep, "clientTransactionId", req.ClientTransactionID, t.ClientTransactionID); err != nil {
		return nil, err
	}
	return &t, nil
}

// EstimateQuote previews a conversion's rate and fee. It moves nothing.
func (c *Client) EstimateQuote(ctx context.Context, req QuoteRequest) (*Quote, error) {
	const ep = EndpointEstimateQuote
	if err := required(ep, "accountId", req.AccountID, "baseCurrency", req.BaseCurrency,
		"quoteCurrency", req.QuoteCurrency, "side", req.Side, "rfqCurrency", req.RFQCurrency); err != nil {
		return nil, err
	}
	if err := positive(ep, "rfqAmount", req.RFQAmount); err != nil {
		return nil, err
	}
	var q Quote
	err := c.do(ctx, call{endpoint: ep, method: http.MethodPost,
		path: "/open-api/v3/cryptoconnect/convert/estimate-quote", body: req}, &q)
	if err != nil {
		return nil, err
	}
	return &q, nil
}

// CreateTrade converts between USD and a stablecoin. ReferenceID is also the Idempotency-Key.
func (c *Client) CreateTrade(ctx context.Context, req TradeRequest) (*Trade, error) {
	const ep = EndpointCreateTrade
	if err := required(ep, "referenceId", req.ReferenceID, "accountId", req.AccountID, "baseCurrency", req.BaseCurrency,
		"quoteCurrency", req.QuoteCurrency, "side", req.Side, "rfqCurrency", req.RFQCurrency); err != nil {
		return nil, err
	}
	if err := positive(ep, "rfqAmount", req.RFQAmount); err != nil {
		return nil, err
	}
	var t Trade
	err := c.do(ctx, call{endpoint: ep, method: http.MethodPost, path: "/open-api/v3/cryptoconnect/convert/trades",
		body: req, idemKey: req.ReferenceID}, &t)
	if err != nil {
		return nil, err
	}
	if err := echoed(ep, "referenceId", req.ReferenceID, t.ReferenceID); err != nil {
		return nil, err
	}
	return &t, nil
}

// TransferFeeAndQuota previews the network fee and cross-chain quota of a withdrawal. It moves nothing.
func (c *Client) TransferFeeAndQuota(ctx context.Context, req FeeQuotaRequest) (*FeeQuota, error) {
	const ep = EndpointTransferFeeAndQuota
	if err := required(ep, "accountId", req.AccountID, "source.id", req.Source.ID, "destination.chain", req.Destination.Chain,
		"destination.address", req.Destination.Address, "amount.currency", req.Amount.Currency); err != nil {
		return nil, err
	}
	if err := positive(ep, "amount.amount", req.Amount.Amount); err != nil {
		return nil, err
	}
	var fq FeeQuota
	err := c.do(ctx, call{endpoint: ep, method: http.MethodPost,
		path: "/open-api/v3/cryptoconnect/transfers/fee-and-quota", body: req}, &fq)
	if err != nil {
		return nil, err
	}
	return &fq, nil
}

// CreateBlockchainTransfer withdraws crypto to an external address. IdempotencyKey travels in the body
// and as the Idempotency-Key header. The answer normally says Pending; poll GetBlockchainTransfer.
func (c *Client) CreateBlockchainTransfer(ctx context.Context, req BlockchainTransferRequest) (*BlockchainTransfer, error) {
	const ep = EndpointCreateBlockchainTransfer
	if err := required(ep, "idempotencyKey", req.IdempotencyKey, "source.id", req.Source.ID,
		"destination.chain", req.Destination.Chain, "destination.address", req.Destination.Address,
		"amount.currency", req.Amount.Currency); err != nil {
		return nil, err
	}
	if err := positive(ep, "amount.amount", req.Amount.Amount); err != nil {
		return nil, err
	}
	var t BlockchainTransfer
	err := c.do(ctx, call{endpoint: ep, method: http.MethodPost, path: "/open-api/v3/cryptoconnect/transfers",
		body: req, idemKey: req.IdempotencyKey}, &t)
	if err != nil {
		return nil, err
	}
	if err := echoed(ep, "idempotencyKey", req.IdempotencyKey, t.IdempotencyKey); err != nil {
		return nil, err
	}
	return &t, nil
}

// GetBlockchainTransfer reads a CryptoConnect transfer by its Interlace id. Not in the MoR guide: the
// answer is assumed to have the same shape as CreateBlockchainTransfer's, in either envelope.
func (c *Client) GetBlockchainTransfer(ctx context.Context, id string) (*BlockchainTransfer, error) {
	const ep = EndpointGetBlockchainTransfer
	seg, err := pathID(ep, "id", id)
	if err != nil {
		return nil, err
	}
	var t BlockchainTransfer
	err = c.do(ctx, call{endpoint: ep, method: http.MethodGet, path: "/open-api/v3/cryptoconnect/transfers/" + seg}, &t)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

package interlace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Millis is a point in time that Interlace writes as milliseconds since the Unix epoch, sometimes as a
// JSON string ("1762413577403") and sometimes as a number. The time is kept in UTC. A missing, null,
// empty or 0 value decodes to the zero time (Interlace uses these for "not yet", e.g. a trade's
// completeTime), and the zero time encodes as null.
type Millis struct{ time.Time }

// NewMillis truncates t to whole milliseconds, the wire's resolution.
func NewMillis(t time.Time) Millis {
	if t.IsZero() {
		return Millis{}
	}
	return Millis{time.UnixMilli(t.UnixMilli()).UTC()}
}

// MarshalJSON writes the string form the guide shows.
func (m Millis) MarshalJSON() ([]byte, error) {
	if m.IsZero() {
		return []byte("null"), nil
	}
	b := append([]byte{'"'}, strconv.FormatInt(m.UnixMilli(), 10)...)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts a string or a number.
func (m *Millis) UnmarshalJSON(b []byte) error {
	n, err := parseFlexInt(b)
	if err != nil {
		return fmt.Errorf("millisecond timestamp: %w", err)
	}
	if n == 0 {
		*m = Millis{}
		return nil
	}
	*m = Millis{time.UnixMilli(n).UTC()}
	return nil
}

// FlexInt is an integer that Interlace sends as a JSON string in some answers ("total": "1",
// "ttlMs": "60000") and as a number in others. It encodes as a string, like the guide.
type FlexInt int64

func (f FlexInt) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(strconv.FormatInt(int64(f), 10))), nil
}

func (f *FlexInt) UnmarshalJSON(b []byte) error {
	n, err := parseFlexInt(b)
	if err != nil {
		return err
	}
	*f = FlexInt(n)
	return nil
}

var errNotInteger = errors.New("not an integer")

// parseFlexInt reads an integer from a JSON string or number; null and "" are 0. Numbers in exponent
// or decimal form ("6e4", "60000.0") are accepted when their value is a whole number that fits int64.
func parseFlexInt(b []byte) (int64, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return 0, nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		if s == "" {
			return 0, nil
		}
	} else if b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return 0, fmt.Errorf("%w: %.32s", errNotInteger, s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil || !d.IsInteger() {
		return 0, fmt.Errorf("%w: %.32q", errNotInteger, s)
	}
	bi := d.BigInt()
	if !bi.IsInt64() {
		return 0, fmt.Errorf("%w: %.32q out of range", errNotInteger, s)
	}
	return bi.Int64(), nil
}

// jsonAmount writes a decimal as a JSON string whatever decimal.MarshalJSONWithoutQuotes says, because
// Interlace expects amounts as strings and a process-wide switch must not change our wire format.
type jsonAmount decimal.Decimal

func (a jsonAmount) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(decimal.Decimal(a).String())), nil
}

// Money is an amount with its currency, as the CryptoConnect endpoints write it.
type Money struct {
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
}

func (m Money) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Amount   jsonAmount `json:"amount"`
		Currency string     `json:"currency"`
	}{jsonAmount(m.Amount), m.Currency})
}

// Source is where a CryptoConnect transfer takes money from. Requests use Type and ID (a wallet);
// deposits seen in transfers carry Chain and Address (a blockchain sender).
type Source struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Chain   string `json:"chain,omitempty"`
	Address string `json:"address,omitempty"`
}

// Destination is where a CryptoConnect transfer sends money. Withdrawals use Type, Chain and Address;
// deposits carry ID (the wallet) and Address.
type Destination struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Chain   string `json:"chain,omitempty"`
	Address string `json:"address,omitempty"`
}

// Fee is a CryptoConnect fee line, e.g. {"amount":"0.2","currency":"USDC","type":"GAS"}.
type Fee struct {
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
	Type     string          `json:"type"`
}

// --- wallets -------------------------------------------------------------------------------------

type CreateWalletRequest struct {
	ReferenceID string `json:"referenceId"` // also sent as the Idempotency-Key header
	AccountID   string `json:"accountId"`
	Nickname    string `json:"nickname,omitempty"`
}

// Wallet is a CryptoConnect wallet.
type Wallet struct {
	ID          string          `json:"id"`
	ReferenceID string          `json:"referenceId"`
	AccountID   string          `json:"accountId"`
	Nickname    string          `json:"nickname"`
	Master      bool            `json:"master"`
	Balances    []WalletBalance `json:"balances"`
	Addresses   []Address       `json:"addresses"`
}

func (w *Wallet) validate() error {
	if w.ID == "" {
		return errMissing("wallet id")
	}
	return nil
}

// WalletBalance is one currency's balance in a wallet. ID is only present in some API versions.
type WalletBalance struct {
	ID        string          `json:"id,omitempty"`
	Currency  string          `json:"currency"`
	Available decimal.Decimal `json:"available"`
	Frozen    decimal.Decimal `json:"frozen"`
}

type CreateAddressRequest struct {
	Currency string `json:"currency"`
	Chain    string `json:"chain"`
}

// Address is a deposit address of a wallet on one chain.
type Address struct {
	Currency string `json:"currency"`
	Chain    string `json:"chain"`
	Address  string `json:"address"`
	Selected bool   `json:"selected"`
}

// UnmarshalJSON also accepts a bare string, because the guide never shows a filled wallet.addresses
// list and a list of plain address strings is the other plausible shape.
func (a *Address) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '"' {
		*a = Address{}
		return json.Unmarshal(t, &a.Address)
	}
	type plain Address
	return json.Unmarshal(b, (*plain)(a))
}

func (a *Address) validate() error {
	if a.Address == "" {
		return errMissing("address")
	}
	return nil
}

// InfinityWallet is a balance of the Infinity Account (cards/wallets with walletType 0).
type InfinityWallet struct {
	ID         string          `json:"id"`
	AccountID  string          `json:"accountId"`
	CreateTime Millis          `json:"createTime"`
	Currency   string          `json:"currency"`
	WalletType int             `json:"walletType"`
	ObjectType *int            `json:"objectType,omitempty"` // present in some answers, absent in the guide
	Available  decimal.Decimal `json:"available"`
}

type infinityWalletList struct {
	List  []InfinityWallet `json:"list"`
	Total FlexInt          `json:"total"`
}

// --- internal (business) transfer -----------------------------------------------------------------

// Business types of an internal transfer leg.
const (
	BusinessTypeInfinity      = 0
	BusinessTypeCryptoConnect = 2
)

// TransferEndpoint is one side of an internal transfer request.
type TransferEndpoint struct {
	BusinessType int    `json:"businessType"`
	ID           string `json:"id"`
	Currency     string `json:"currency"`
}

type InternalTransferRequest struct {
	ClientTransactionID string           `json:"clientTransactionId"` // also sent as the Idempotency-Key header
	AccountID           string           `json:"accountId"`
	From                TransferEndpoint `json:"from"`
	To                  TransferEndpoint `json:"to"`
	Amount              decimal.Decimal  `json:"amount"`
}

func (r InternalTransferRequest) MarshalJSON() ([]byte, error) {
	type plain InternalTransferRequest
	return json.Marshal(struct {
		plain
		Amount jsonAmount `json:"amount"`
	}{plain(r), jsonAmount(r.Amount)})
}

// InternalTransfer is Interlace's answer to an internal transfer. ID is a long numeric string; it is
// kept as text so that no digit is lost.
type InternalTransfer struct {
	ClientTransactionID string      `json:"clientTransactionId"`
	ID                  string      `json:"id"`
	Status              string      `json:"status"`
	AccountTransferType string      `json:"accountTransferType"`
	From                TransferLeg `json:"from"`
	To                  TransferLeg `json:"to"`
}

func (t *InternalTransfer) validate() error {
	if t.ID == "" {
		return errMissing("transfer id")
	}
	if t.Status == "" {
		return errMissing("transfer status")
	}
	return nil
}

// TransferLeg is one side of an executed internal transfer. Rate is absent on some legs (zero then).
type TransferLeg struct {
	ID           string          `json:"id"`
	TransferID   string          `json:"transferId"`
	AccountID    string          `json:"accountId"`
	Amount       decimal.Decimal `json:"amount"`
	Rate         decimal.Decimal `json:"rate"`
	Currency     string          `json:"currency"`
	BusinessType int             `json:"businessType"`
	Fees         []LegFee        `json:"fees"`
}

// LegFee is a fee line of a transfer leg. The feeType enum is not documented.
type LegFee struct {
	FeeType  int             `json:"feeType"`
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
}

// ErrMixedFeeCurrencies is returned by TotalFees when one leg charges fees in several currencies, which
// cannot be summed into one amount.
var ErrMixedFeeCurrencies = errors.New("fees in more than one currency")

// TotalFees sums the leg's fees. Zero-amount lines are skipped (Interlace lists a "0 USD" line on legs
// that charge nothing, possibly in another currency than the real fees); an empty or all-zero list
// gives zero in the leg's own currency.
func (l TransferLeg) TotalFees() (decimal.Decimal, string, error) {
	sum, currency := decimal.Zero, ""
	for _, f := range l.Fees {
		if f.Amount.IsZero() {
			continue
		}
		if currency != "" && f.Currency != currency {
			return decimal.Zero, "", fmt.Errorf("%w: %s and %s", ErrMixedFeeCurrencies, currency, f.Currency)
		}
		currency = f.Currency
		sum = sum.Add(f.Amount)
	}
	if currency == "" {
		currency = l.Currency
	}
	return sum, currency, nil
}

// --- convert ---------------------------------------------------------------------------------------

type QuoteRequest struct {
	AccountID     string          `json:"accountId"`
	BaseCurrency  string          `json:"baseCurrency"`
	QuoteCurrency string          `json:"quoteCurrency"`
	Side          string          `json:"side"` // BUY or SELL
	RFQCurrency   string          `json:"rfqCurrency"`
	RFQAmount     decimal.Decimal `json:"rfqAmount"`
}

func (r QuoteRequest) MarshalJSON() ([]byte, error) {
	type plain QuoteRequest
	return json.Marshal(struct {
		plain
		RFQAmount jsonAmount `json:"rfqAmount"`
	}{plain(r), jsonAmount(r.RFQAmount)})
}

// Quote is an indicative conversion price.
type Quote struct {
	ID            string          `json:"id"`
	QuoteTime     Millis          `json:"quoteTime"`
	BaseCurrency  string          `json:"baseCurrency"`
	BaseAmount    decimal.Decimal `json:"baseAmount"`
	QuoteCurrency string          `json:"quoteCurrency"`
	QuoteAmount   decimal.Decimal `json:"quoteAmount"`
	Side          string          `json:"side"`
	Rate          decimal.Decimal `json:"rate"`
	RFQAmount     decimal.Decimal `json:"rfqAmount"`
	RFQCurrency   string          `json:"rfqCurrency"`
	Fee           decimal.Decimal `json:"fee"`
	FeeCurrency   string          `json:"feeCurrency"`
	TTLMs         FlexInt         `json:"ttlMs"`
}

// TTL is how long the quote is valid after QuoteTime.
func (q Quote) TTL() time.Duration { return time.Duration(q.TTLMs) * time.Millisecond }

type TradeRequest struct {
	ReferenceID   string          `json:"referenceId"` // also sent as the Idempotency-Key header
	AccountID     string          `json:"accountId"`
	BaseCurrency  string          `json:"baseCurrency"`
	QuoteCurrency string          `json:"quoteCurrency"`
	Side          string          `json:"side"`
	RFQCurrency   string          `json:"rfqCurrency"`
	RFQAmount     decimal.Decimal `json:"rfqAmount"`
}

func (r TradeRequest) MarshalJSON() ([]byte, error) {
	type plain TradeRequest
	return json.Marshal(struct {
		plain
		RFQAmount jsonAmount `json:"rfqAmount"`
	}{plain(r), jsonAmount(r.RFQAmount)})
}

// Trade is an executed conversion. BaseWalletID is the wallet that received the base currency.
type Trade struct {
	ID            string          `json:"id"`
	AccountID     string          `json:"accountId"`
	Symbol        string          `json:"symbol"`
	BaseWalletID  string          `json:"baseWalletId"`
	BaseCurrency  string          `json:"baseCurrency"`
	BaseAmount    decimal.Decimal `json:"baseAmount"`
	QuoteCurrency string          `json:"quoteCurrency"`
	QuoteAmount   decimal.Decimal `json:"quoteAmount"`
	Side          string          `json:"side"`
	Rate          decimal.Decimal `json:"rate"`
	Fee           decimal.Decimal `json:"fee"`
	FeeCurrency   string          `json:"feeCurrency"`
	Status        string          `json:"status"`
	ReferenceID   string          `json:"referenceId"`
	CreateTime    Millis          `json:"createTime"`
	CompleteTime  Millis          `json:"completeTime"`
}

func (t *Trade) validate() error {
	if t.ID == "" {
		return errMissing("trade id")
	}
	return nil
}

// --- blockchain transfers ---------------------------------------------------------------------------

type FeeQuotaRequest struct {
	AccountID   string      `json:"accountId"`
	Source      Source      `json:"source"`
	Destination Destination `json:"destination"`
	Amount      Money       `json:"amount"`
}

// FeeQuota is the fee preview of a withdrawal.
type FeeQuota struct {
	CrossChainQuota   decimal.Decimal `json:"crossChainQuota"`
	CrossChainFeeRate decimal.Decimal `json:"crossChainFeeRate"`
	CrossChainAmount  decimal.Decimal `json:"crossChainAmount"`
	Fees              []Fee           `json:"fees"`
}

type BlockchainTransferRequest struct {
	IdempotencyKey string `json:"idempotencyKey"` // also sent as the Idempotency-Key header
	// AccountID is not in the guide's example. Interlace's generic Idempotency-Key check is skipped for
	// bodies without accountId, so callers may set it to get that protection too; empty is not sent.
	AccountID   string      `json:"accountId,omitempty"`
	Source      Source      `json:"source"`
	Destination Destination `json:"destination"`
	Amount      Money       `json:"amount"`
}

// BlockchainTransfer is a CryptoConnect transfer (a withdrawal, or a deposit when polled).
// TransactionHash stays empty until the transfer is broadcast.
type BlockchainTransfer struct {
	ID              string      `json:"id"`
	AccountID       string      `json:"accountId"`
	IdempotencyKey  string      `json:"idempotencyKey"`
	Source          Source      `json:"source"`
	Destination     Destination `json:"destination"`
	Amount          Money       `json:"amount"`
	Fees            []Fee       `json:"fees"`
	Status          string      `json:"status"`
	TransactionHash string      `json:"transactionHash,omitempty"`
	CreateTime      Millis      `json:"createTime"`
	UpdateTime      Millis      `json:"updateTime"`
}

func (t *BlockchainTransfer) validate() error {
	if t.ID == "" {
		return errMissing("transfer id")
	}
	if t.Status == "" {
		return errMissing("transfer status")
	}
	return nil
}

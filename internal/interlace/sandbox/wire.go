package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// The wire structs below mirror the MoR guide's examples field for field (names and JSON types). They are
// independent of internal/interlace on purpose.

// envelopeA is the `"code":"000000"` family (business transfer, cards, wallets, convert).
type envelopeA struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

// envelopeB is the `"code":0` family (blockchain transfers, fee-and-quota, currency pair).
type envelopeB struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

type family int

const (
	familyA family = iota
	familyB
)

func successBody(f family, data any) ([]byte, error) {
	if f == familyB {
		return json.Marshal(envelopeB{Code: 0, Message: "ok", Data: data})
	}
	return json.Marshal(envelopeA{Code: codeSuccess, Message: "success", Data: data})
}

func errorBody(f family, e *apiError) []byte {
	var b []byte
	if f == familyB {
		b, _ = json.Marshal(envelopeB{Code: e.numericCode(), Message: e.msg, Data: nil})
	} else {
		b, _ = json.Marshal(envelopeA{Code: e.code, Message: e.msg, Data: nil})
	}
	return b
}

// amountText accepts an amount sent as a JSON string (the documented form) or a bare JSON number, keeping the
// exact text so that no float ever touches it.
type amountText string

func (a *amountText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*a = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = amountText(strings.TrimSpace(s))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("amount must be a decimal string")
	}
	*a = amountText(n)
	return nil
}

// parse returns the amount, which must be > 0 and carry at most places decimals (trailing zeros do not count).
func (a amountText) parse(field string, places int32) (decimal.Decimal, *apiError) {
	if a == "" {
		return decimal.Decimal{}, invalidf("%s is required", field)
	}
	d, err := decimal.NewFromString(string(a))
	if err != nil {
		return decimal.Decimal{}, invalidf("%s %q is not a decimal number", field, string(a))
	}
	if !d.IsPositive() {
		return decimal.Decimal{}, invalidf("%s must be greater than 0", field)
	}
	if !d.Equal(d.Truncate(places)) {
		return decimal.Decimal{}, invalidf("%s %s has more than %d decimal places", field, d.String(), places)
	}
	return d, nil
}

// Currencies the sandbox knows. Precision per the internal transfer reference: stablecoins 6 places, fiat 2.
var currencyPlaces = map[string]int32{"USDC": 6, "USDT": 6, "WUSD": 6, "USD": 2}

func isStablecoin(c string) bool { return c == "USDC" || c == "USDT" || c == "WUSD" }

// ---- OAuth (bare, as the docs show) ----

type wireAuthorize struct {
	Timestamp int64  `json:"timestamp"`
	Code      string `json:"code"`
}

type wireAccessTokenReq struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	Code         string `json:"code"`
	RefreshToken string `json:"refreshToken"`
}

type wireAccessToken struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	ExpiresIn    int64  `json:"expiresIn"`
	Timestamp    int64  `json:"timestamp"`
}

// ---- CryptoConnect wallets ----

type wireCreateWalletReq struct {
	ReferenceID string `json:"referenceId"`
	AccountID   string `json:"accountId"`
	Nickname    string `json:"nickname"`
}

type wireWallet struct {
	ID          string              `json:"id"`
	ReferenceID string              `json:"referenceId"`
	AccountID   string              `json:"accountId"`
	Nickname    string              `json:"nickname"`
	Master      bool                `json:"master"`
	Balances    []wireWalletBalance `json:"balances"`
	Addresses   []Address           `json:"addresses"`
}

type wireWalletBalance struct {
	Currency  string `json:"currency"`
	Available string `json:"available"`
	Frozen    string `json:"frozen"`
}

type wireCreateAddressReq struct {
	Currency string `json:"currency"`
	Chain    string `json:"chain"`
}

// ---- Infinity (cards) wallets ----

type wireCardWallet struct {
	ID         string `json:"id"`
	AccountID  string `json:"accountId"`
	CreateTime string `json:"createTime"`
	Currency   string `json:"currency"`
	WalletType int    `json:"walletType"`
	ObjectType int    `json:"objectType"` // absent from the guide's example; live answers carry it (api facts)
	Available  string `json:"available"`
}

type wireList[T any] struct {
	List  []T    `json:"list"`
	Total string `json:"total"`
}

func newList[T any](items []T, total int) wireList[T] {
	if items == nil {
		items = []T{}
	}
	return wireList[T]{List: items, Total: strconv.Itoa(total)}
}

// ---- Business transfer (internal) ----

type wireInternalTransferReq struct {
	ClientTransactionID string      `json:"clientTransactionId"`
	AccountID           string      `json:"accountId"`
	From                wireSideReq `json:"from"`
	To                  wireSideReq `json:"to"`
	Amount              amountText  `json:"amount"`
}

type wireSideReq struct {
	BusinessType *int   `json:"businessType"`
	ID           string `json:"id"`
	Currency     string `json:"currency"`
}

type wireInternalTransfer struct {
	ClientTransactionID string           `json:"clientTransactionId"`
	ID                  string           `json:"id"`
	Status              string           `json:"status"`
	AccountTransferType string           `json:"accountTransferType"`
	From                wireTransferSide `json:"from"`
	To                  wireTransferSide `json:"to"`
}

// wireTransferSide: the guide's `from` carries a numeric `rate`, its `to` does not.
type wireTransferSide struct {
	ID           string            `json:"id"`
	TransferID   string            `json:"transferId"`
	AccountID    string            `json:"accountId"`
	Amount       string            `json:"amount"`
	Rate         json.Number       `json:"rate,omitempty"`
	Currency     string            `json:"currency"`
	BusinessType int               `json:"businessType"`
	Fees         []wireTransferFee `json:"fees"`
}

type wireTransferFee struct {
	FeeType  int    `json:"feeType"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// ---- Convert ----

type wireQuoteReq struct {
	ReferenceID   string     `json:"referenceId"`
	AccountID     string     `json:"accountId"`
	BaseCurrency  string     `json:"baseCurrency"`
	QuoteCurrency string     `json:"quoteCurrency"`
	Side          string     `json:"side"`
	RFQCurrency   string     `json:"rfqCurrency"`
	RFQAmount     amountText `json:"rfqAmount"`
}

type wireEstimateQuote struct {
	ID            string `json:"id"`
	QuoteTime     string `json:"quoteTime"`
	BaseCurrency  string `json:"baseCurrency"`
	BaseAmount    string `json:"baseAmount"`
	QuoteCurrency string `json:"quoteCurrency"`
	QuoteAmount   string `json:"quoteAmount"`
	Side          string `json:"side"`
	Rate          string `json:"rate"`
	RFQAmount     string `json:"rfqAmount"`
	RFQCurrency   string `json:"rfqCurrency"`
	Fee           string `json:"fee"`
	FeeCurrency   string `json:"feeCurrency"`
	TTLMs         string `json:"ttlMs"`
}

type wireTrade struct {
	ID            string `json:"id"`
	AccountID     string `json:"accountId"`
	Symbol        string `json:"symbol"`
	BaseWalletID  string `json:"baseWalletId"`
	BaseCurrency  string `json:"baseCurrency"`
	BaseAmount    string `json:"baseAmount"`
	QuoteCurrency string `json:"quoteCurrency"`
	QuoteAmount   string `json:"quoteAmount"`
	Side          string `json:"side"`
	Rate          string `json:"rate"`
	Fee           string `json:"fee"`
	FeeCurrency   string `json:"feeCurrency"`
	Status        string `json:"status"`
	ReferenceID   string `json:"referenceId"`
	CreateTime    string `json:"createTime"`
	CompleteTime  string `json:"completeTime"`
}

type wireCurrencyPair struct {
	Symbol        string `json:"symbol"`
	BaseCurrency  string `json:"baseCurrency"`
	BaseMin       string `json:"baseMin"`
	QuoteCurrency string `json:"quoteCurrency"`
	QuoteMin      string `json:"quoteMin"`
}

// ---- CryptoConnect (blockchain) transfers ----

type wireEndpoint struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Chain   string `json:"chain,omitempty"`
	Address string `json:"address,omitempty"`
}

type wireMoney struct {
	Amount   amountText `json:"amount"`
	Currency string     `json:"currency"`
}

type wireGasFee struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Type     string `json:"type"`
}

type wireFeeQuotaReq struct {
	AccountID   string       `json:"accountId"`
	Source      wireEndpoint `json:"source"`
	Destination wireEndpoint `json:"destination"`
	Amount      wireMoney    `json:"amount"`
}

type wireFeeQuota struct {
	CrossChainQuota   string       `json:"crossChainQuota"`
	CrossChainFeeRate string       `json:"crossChainFeeRate"`
	CrossChainAmount  string       `json:"crossChainAmount"`
	Fees              []wireGasFee `json:"fees"`
}

type wireChainTransferReq struct {
	IdempotencyKey string       `json:"idempotencyKey"`
	AccountID      string       `json:"accountId"`
	Source         wireEndpoint `json:"source"`
	Destination    wireEndpoint `json:"destination"`
	Amount         wireMoney    `json:"amount"`
}

// wireCryptoTransfer is both a blockchain transfer (withdrawal) and a deposit, as the API answers it and as the
// webhook `resource` carries it. transactionHash is absent while a withdrawal is Pending, as in the guide.
type wireCryptoTransfer struct {
	ID              string       `json:"id"`
	AccountID       string       `json:"accountId"`
	IdempotencyKey  string       `json:"idempotencyKey,omitempty"`
	Source          wireEndpoint `json:"source"`
	Destination     wireEndpoint `json:"destination"`
	Amount          wireAmount   `json:"amount"`
	Fees            []wireGasFee `json:"fees"`
	Status          string       `json:"status"`
	TransactionHash string       `json:"transactionHash,omitempty"`
	CreateTime      string       `json:"createTime"`
	UpdateTime      string       `json:"updateTime"`
}

type wireAmount struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// ---- Webhook ----

type wireNotification struct {
	ID         string `json:"id"`
	EventType  string `json:"eventType"`
	APIVersion string `json:"apiVersion"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	Resource   string `json:"resource"`
	CreateTime string `json:"createTime"`
}

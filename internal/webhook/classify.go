package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Kind is what a resource turned out to be.
type Kind string

// Kinds.
const (
	KindDeposit Kind = "deposit" // a CryptoConnect transfer into a CryptoConnect wallet
	KindOther   Kind = "other"   // anything else: stored, never swept
)

// StatusClass is what a deposit's status means for the sweep.
type StatusClass string

// Status classes (contract.md §4).
const (
	ClassFinal   StatusClass = "final"   // sweep it
	ClassPending StatusClass = "pending" // record, wait
	ClassFailed  StatusClass = "failed"  // record, never sweep
	ClassUnknown StatusClass = "unknown" // record, do not sweep, count it
)

// Fee is one entry of a transfer's `fees`.
type Fee struct {
	Type     string          `json:"type"`
	Currency string          `json:"currency"`
	Amount   decimal.Decimal `json:"amount"`
}

// Deposit is a validated deposit resource. Every string is visible ASCII.
type Deposit struct {
	TransferID     string // Interlace transfer id: identifies the deposit
	AccountID      string // may be empty
	WalletID       string // destination.id
	Chain          string // as sent; may be empty
	SourceAddress  string // may be empty
	DepositAddress string // may be empty
	TxHash         string // empty (or null) while pending
	Currency       string // upper-cased, ^[A-Z0-9]{2,10}$
	Amount         decimal.Decimal
	Status         string // as sent
	Class          StatusClass
	Fees           []Fee
	CreatedAt      time.Time // zero when absent
	UpdatedAt      time.Time // zero when absent
}

// Classification is the result of ClassifyResource.
type Classification struct {
	Kind    Kind
	Deposit *Deposit // set for a usable deposit only
	// TransferID is the resource's transfer id whenever it is a valid id, even
	// for a deposit that is otherwise unusable, so the delivery can be linked to
	// the transfer.
	TransferID string
}

// ErrUnusable is wrapped, with the precise reason, by every ClassifyResource
// error: the resource cannot be read unambiguously, or is a deposit with a field
// that cannot be trusted. The delivery is still recorded; it just never moves
// money.
var ErrUnusable = errors.New("unusable")

const (
	maxIDLen       = 128
	maxStatusLen   = 64
	maxFeeTypeLen  = 64
	maxFees        = 64
	walletDestType = "cryptoconnect_wallet"
)

// ClassifyResource reads the JSON text of an envelope's `resource`.
//
// A deposit is a transfer whose destination.type is "cryptoconnect_wallet"
// (case-insensitive, surrounding spaces ignored); the event's name plays no
// part, because Interlace's CryptoConnect event names are not documented. A
// deposit must carry a transfer id, a wallet id (destination.id), a currency and
// a positive amount, in the shape of contract.md §4; anything it carries must be
// well-formed. Otherwise the error wraps ErrUnusable and the Kind is still
// KindDeposit. Tolerated variations: numbers for amounts and times, `amount` as
// a plain value next to a top-level `currency`, `txHash` for `transactionHash`,
// and the chain on the destination or at the top level.
//
// A resource that is not a JSON object, or in which any object has two keys a
// JSON decoder could confuse, is unusable with KindOther: what it means depends
// on who reads it. Any other JSON object is KindOther with a nil error.
func ClassifyResource(resource string) (Classification, error) {
	other := Classification{Kind: KindOther}
	b := []byte(resource)
	if !utf8.Valid(b) || !json.Valid(b) {
		return other, unusablef("resource is not valid JSON")
	}
	top, ok := newObjectIter(b)
	if !ok {
		return other, unusablef("resource is not a JSON object")
	}
	if err := checkDuplicates(b, 0); err != nil {
		return other, fmt.Errorf("%w: resource: %w", ErrUnusable, err)
	}

	var r rawTransfer
	for key, val, ok := top.next(); ok; key, val, ok = top.next() {
		r.set(keyText(key), val)
	}
	if kindOf(r.destination) != kindObject {
		return other, nil
	}
	var dst rawEnd
	dst.read(r.destination)
	if kindOf(dst.typ) != kindString || !asciiEqualFold(strings.TrimSpace(unquote(dst.typ)), walletDestType) {
		return other, nil
	}

	c := Classification{Kind: KindDeposit}
	d, err := r.deposit(&dst, &c)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrUnusable, err)
	}
	c.Deposit = d
	return c, nil
}

// ClassStatus maps an upstream status to its class, case-insensitively and
// ignoring surrounding spaces. Only ASCII letters fold, so a look-alike such as
// "cloſed" is unknown rather than final.
func ClassStatus(status string) StatusClass {
	s := strings.TrimSpace(status)
	switch {
	case oneOf(s, "closed", "completed", "success"):
		return ClassFinal
	case oneOf(s, "pending", "processing", "on_hold", "onhold", "on-hold"):
		return ClassPending
	case oneOf(s, "failed", "rejected", "refunded", "cancelled", "canceled"):
		return ClassFailed
	default:
		return ClassUnknown
	}
}

func oneOf(s string, words ...string) bool {
	for _, w := range words {
		if asciiEqualFold(s, w) {
			return true
		}
	}
	return false
}

// rawTransfer holds the raw JSON values of the resource's top-level fields
// (sub-slices of the resource; nil when absent).
type rawTransfer struct {
	id, accountID, source, destination, amount, currency, fees, status []byte
	transactionHash, txHash, chain, createTime, updateTime             []byte
}

func (r *rawTransfer) set(k, v []byte) {
	switch {
	case keyIs(k, "id"):
		r.id = v
	case keyIs(k, "accountId"):
		r.accountID = v
	case keyIs(k, "source"):
		r.source = v
	case keyIs(k, "destination"):
		r.destination = v
	case keyIs(k, "amount"):
		r.amount = v
	case keyIs(k, "currency"):
		r.currency = v
	case keyIs(k, "fees"):
		r.fees = v
	case keyIs(k, "status"):
		r.status = v
	case keyIs(k, "transactionHash"):
		r.transactionHash = v
	case keyIs(k, "txHash"):
		r.txHash = v
	case keyIs(k, "chain"):
		r.chain = v
	case keyIs(k, "createTime"):
		r.createTime = v
	case keyIs(k, "updateTime"):
		r.updateTime = v
	}
}

// rawEnd is one end (source or destination) of a transfer.
type rawEnd struct{ typ, id, chain, address []byte }

func (e *rawEnd) read(obj []byte) {
	it, _ := newObjectIter(obj)
	for key, val, ok := it.next(); ok; key, val, ok = it.next() {
		switch k := keyText(key); {
		case keyIs(k, "type"):
			e.typ = val
		case keyIs(k, "id"):
			e.id = val
		case keyIs(k, "chain"):
			e.chain = val
		case keyIs(k, "address"):
			e.address = val
		}
	}
}

// deposit validates a deposit-shaped resource field by field. c.TransferID is
// filled in as soon as the id is known to be valid.
func (r *rawTransfer) deposit(dst *rawEnd, c *Classification) (*Deposit, error) {
	d := &Deposit{}
	var err error
	if d.TransferID, err = idField("transfer id", r.id, true); err != nil {
		return nil, err
	}
	c.TransferID = d.TransferID
	if d.AccountID, err = idField("account id", r.accountID, false); err != nil {
		return nil, err
	}
	if d.WalletID, err = idField("wallet id (destination.id)", dst.id, true); err != nil {
		return nil, err
	}
	if d.DepositAddress, err = idField("deposit address (destination.address)", dst.address, false); err != nil {
		return nil, err
	}

	var src rawEnd
	switch kindOf(r.source) {
	case kindObject:
		src.read(r.source)
	case kindAbsent, kindNull:
	default:
		return nil, fmt.Errorf("source: is %s, want an object", kindOf(r.source))
	}
	if d.SourceAddress, err = idField("source address (source.address)", src.address, false); err != nil {
		return nil, err
	}
	chain := firstPresent(src.chain, dst.chain, r.chain)
	if d.Chain, err = idField("chain", chain, false); err != nil {
		return nil, err
	}
	tx := r.transactionHash
	if isBlank(tx) {
		tx = r.txHash
	}
	if d.TxHash, err = idField("transaction hash", tx, false); err != nil {
		return nil, err
	}

	amountVal, currencyVal := r.amount, r.currency
	if kindOf(r.amount) == kindObject {
		amountVal = nil
		it, _ := newObjectIter(r.amount)
		for key, val, ok := it.next(); ok; key, val, ok = it.next() {
			switch k := keyText(key); {
			case keyIs(k, "amount"):
				amountVal = val
			case keyIs(k, "currency") && !isBlank(val):
				currencyVal = val
			}
		}
	}
	amount, err := numberText("amount", amountVal)
	if err != nil {
		return nil, err
	}
	if amount == "" {
		return nil, fmt.Errorf("amount: missing")
	}
	if d.Amount, err = ParsePositiveAmount(amount); err != nil {
		return nil, fmt.Errorf("amount: %w", err)
	}
	if d.Currency, err = currencyField("currency", currencyVal); err != nil {
		return nil, err
	}

	if d.Status, err = textField("status", r.status, maxStatusLen); err != nil {
		return nil, err
	}
	d.Class = ClassStatus(d.Status)
	if d.Fees, err = feesField(r.fees); err != nil {
		return nil, err
	}
	if d.CreatedAt, err = timeField("createTime", r.createTime); err != nil {
		return nil, err
	}
	if d.UpdatedAt, err = timeField("updateTime", r.updateTime); err != nil {
		return nil, err
	}
	return d, nil
}

func unusablef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnusable, fmt.Sprintf(format, args...))
}

// isBlank: absent or null.
func isBlank(v []byte) bool {
	k := kindOf(v)
	return k == kindAbsent || k == kindNull
}

func firstPresent(vs ...[]byte) []byte {
	for _, v := range vs {
		if !isBlank(v) && !(kindOf(v) == kindString && len(v) == 2) {
			return v
		}
	}
	return nil
}

// stringField returns the decoded string, "" for absent/null, and refuses any
// other JSON type.
func stringField(name string, v []byte) (string, error) {
	switch k := kindOf(v); k {
	case kindString:
		return unquote(v), nil
	case kindAbsent, kindNull:
		return "", nil
	default:
		return "", fmt.Errorf("%s: is %s, want a string", name, k)
	}
}

// idField reads an identifier: visible ASCII, at most 128 bytes.
func idField(name string, v []byte, required bool) (string, error) {
	s, err := stringField(name, v)
	if err != nil {
		return "", err
	}
	if s == "" && !required {
		return "", nil
	}
	if err := checkID(s, maxIDLen); err != nil {
		return "", fmt.Errorf("%s: %v", name, err)
	}
	return s, nil
}

// textField reads free-form but printable ASCII text (spaces allowed).
func textField(name string, v []byte, maxLen int) (string, error) {
	s, err := stringField(name, v)
	if err != nil {
		return "", err
	}
	if len(s) > maxLen {
		return "", fmt.Errorf("%s: longer than %d characters", name, maxLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return "", fmt.Errorf("%s: %s: byte %d is not printable ASCII", name, quoteShort(s), i)
		}
	}
	return s, nil
}

// currencyField upper-cases and checks a currency code. The ASCII check comes
// first: strings.ToUpper would turn "uſdc" into "USDC".
func currencyField(name string, v []byte) (string, error) {
	s, err := stringField(name, v)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("%s: missing", name)
	}
	if len(s) < 2 || len(s) > 10 {
		return "", fmt.Errorf("%s: %s: want 2 to 10 letters or digits", name, quoteShort(s))
	}
	lower := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z':
			lower = true
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			return "", fmt.Errorf("%s: %s: want 2 to 10 letters or digits", name, quoteShort(s))
		}
	}
	if lower {
		return strings.ToUpper(s), nil // ASCII only here, so this is exact
	}
	return s, nil
}

// numberText is the text of an amount or a time: a string's content, or a JSON
// number's literal text (never a float64, so nothing is rounded).
func numberText(name string, v []byte) (string, error) {
	switch k := kindOf(v); k {
	case kindString:
		return unquote(v), nil
	case kindNumber:
		return string(v), nil
	case kindAbsent, kindNull:
		return "", nil
	default:
		return "", fmt.Errorf("%s: is %s, want a string or a number", name, k)
	}
}

func timeField(name string, v []byte) (time.Time, error) {
	s, err := numberText(name, v)
	if err != nil {
		return time.Time{}, err
	}
	t, err := parseTimestamp(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %v", name, err)
	}
	return t, nil
}

// parseTimestamp reads a millisecond epoch (v3 webhooks) or RFC 3339 (v1
// objects). "" and "0" are the zero time: unset, not 1970.
func parseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if isDigit(s[0]) && strings.Trim(s, "0123456789") == "" {
		if len(s) > 15 { // 10^15 ms is the year 33658
			return time.Time{}, fmt.Errorf("%s: not a millisecond timestamp", quoteShort(s))
		}
		var ms int64
		for i := 0; i < len(s); i++ {
			ms = ms*10 + int64(s[i]-'0')
		}
		if ms == 0 {
			return time.Time{}, nil
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want milliseconds since the epoch or RFC 3339", quoteShort(s))
	}
	return t.UTC(), nil
}

func feesField(v []byte) ([]Fee, error) {
	switch k := kindOf(v); k {
	case kindAbsent, kindNull:
		return nil, nil
	case kindArray:
	default:
		return nil, fmt.Errorf("fees: is %s, want an array", k)
	}
	it, _ := newArrayIter(v)
	var fees []Fee
	for val, ok := it.next(); ok; val, ok = it.next() {
		n := len(fees)
		if n == maxFees {
			return nil, fmt.Errorf("fees: more than %d entries", maxFees)
		}
		if k := kindOf(val); k != kindObject {
			return nil, fmt.Errorf("fees[%d]: is %s, want an object", n, k)
		}
		var amount, currency, typ []byte
		fit, _ := newObjectIter(val)
		for key, fv, ok := fit.next(); ok; key, fv, ok = fit.next() {
			switch k := keyText(key); {
			case keyIs(k, "amount"):
				amount = fv
			case keyIs(k, "currency"):
				currency = fv
			case keyIs(k, "type"):
				typ = fv
			}
		}
		f, err := fee(amount, currency, typ)
		if err != nil {
			return nil, fmt.Errorf("fees[%d]: %w", n, err)
		}
		if fees == nil {
			fees = make([]Fee, 0, 2)
		}
		fees = append(fees, f)
	}
	return fees, nil
}

func fee(amount, currency, typ []byte) (Fee, error) {
	var f Fee
	var err error
	if f.Currency, err = currencyField("currency", currency); err != nil {
		return Fee{}, err
	}
	if f.Type, err = textField("type", typ, maxFeeTypeLen); err != nil {
		return Fee{}, err
	}
	text, err := numberText("amount", amount)
	if err != nil {
		return Fee{}, err
	}
	if f.Amount, err = ParseAmount(text); err != nil {
		return Fee{}, fmt.Errorf("amount: %w", err)
	}
	return f, nil
}

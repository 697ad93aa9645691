package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// Kind is what a resource turned out to be.
type Kind string

// Kinds.
const (
	KindDeposit Kind = "deposit" // a CryptoConnect transfer into a CryptoConnect wallet
	KindOther   Kind = "other"   // anything else: stored, never swept
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
	Class          status.Class
	// Origin is source.type as sent ("blockchain" for money from the chain).
	Origin string
	// Fees are the fee lines when every one of them reads as a decimal; FeesJSON
	// is the `fees` value exactly as sent (what is stored, so that a fee written
	// `0E-8` or in a shape we do not know is kept, never a reason to drop the
	// deposit).
	Fees      []Fee
	FeesJSON  json.RawMessage
	CreatedAt time.Time // zero when absent or not in a format we read (the body keeps the text)
	UpdatedAt time.Time // zero when absent or not in a format we read
	// Review, when set, says which money field is unusable: the deposit is kept
	// for a person (needs_review) and moves no money. The other fields hold what
	// could be read.
	Review    string
	reviewErr error
}

// FromChain reports whether the money arrived from the chain (source.type
// blockchain, contract §4): only such a credit is a deposit that is swept.
func (d *Deposit) FromChain() bool {
	return asciiEqualFold(strings.TrimSpace(d.Origin), "blockchain")
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

// ClassifyResource reads the JSON text of an envelope's `resource` (or a
// transfer record read from Interlace's API: the same object).
//
// A deposit is a transfer whose destination.type is "cryptoconnect_wallet"
// (case-insensitive, surrounding spaces ignored); the event's name plays no
// part, because Interlace's CryptoConnect event names are not documented.
// Contract §4: a signed notification is never dropped. Its money fields
// (transfer id, account, wallet = destination.id, amount, currency, status and
// source.type) decide: when all are usable it is a deposit, whatever its other
// fields look like (a fee written `0E-8`, a chain with a space, a time in another
// format are kept as sent, in the stored body and FeesJSON). When one is
// unusable the Deposit is still returned, with Review saying which, and the error
// wraps ErrUnusable: it becomes a needs_review deposit, held for a person.
// Tolerated variations: numbers for amounts and times, `amount` as a plain value
// next to a top-level `currency`, `txHash` for `transactionHash`, and the chain on
// the source, the destination or at the top level.
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
	dupErr := checkDuplicates(b, 0)

	var r rawTransfer
	for key, val, ok := top.next(); ok; key, val, ok = top.next() {
		r.set(keyText(key), val)
	}
	var dst rawEnd
	if kindOf(r.destination) == kindObject {
		dst.read(r.destination)
	}
	if kindOf(dst.typ) != kindString || !asciiEqualFold(strings.TrimSpace(unquote(dst.typ)), walletDestType) {
		if dupErr != nil {
			return other, fmt.Errorf("%w: resource: %w", ErrUnusable, dupErr)
		}
		return other, nil
	}

	c := Classification{Kind: KindDeposit}
	d := r.deposit(&dst)
	if dupErr != nil {
		// Two keys a decoder could confuse: which amount (or id) was meant is
		// ambiguous. Still a signed deposit: kept for review, under no transfer id
		// of ours (the ids read may be the wrong copies).
		d.TransferID = ""
		d.reviewErr = reviewErrors{fmt.Errorf("resource: %w", dupErr)}
		d.Review = d.reviewErr.Error()
	}
	c.Deposit, c.TransferID = d, d.TransferID
	if d.reviewErr != nil {
		return c, fmt.Errorf("%w: %w", ErrUnusable, d.reviewErr)
	}
	return c, nil
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

// deposit reads a deposit-shaped resource field by field. A money field that
// cannot be trusted sets Review (the first such reason) and leaves the field
// empty; the other fields are read leniently: what does not read is left empty,
// the stored body keeps it.
func (r *rawTransfer) deposit(dst *rawEnd) *Deposit {
	d := &Deposit{}
	var reasons reviewErrors
	money := func(err error) {
		if err != nil {
			reasons = append(reasons, err)
		}
	}
	lenient := func(s string, err error) string {
		if err != nil {
			return ""
		}
		return s
	}
	var err error
	d.TransferID, err = idField("transfer id", r.id, true)
	money(err)
	d.AccountID, err = idField("account id", r.accountID, false)
	money(err)
	d.WalletID, err = idField("wallet id (destination.id)", dst.id, true)
	money(err)
	d.DepositAddress = lenient(textField("deposit address", dst.address, maxIDLen))

	var src rawEnd
	switch kindOf(r.source) {
	case kindObject:
		src.read(r.source)
		d.Origin, err = textField("source.type", src.typ, maxStatusLen)
		if err == nil && strings.TrimSpace(d.Origin) == "" {
			err = errors.New("source.type: missing")
		}
		money(err)
	default:
		money(fmt.Errorf("source: is %s, want an object with a type", kindOf(r.source)))
	}
	d.SourceAddress = lenient(textField("source address", src.address, maxIDLen))
	d.Chain = strings.TrimSpace(lenient(textField("chain", firstPresent(src.chain, dst.chain, r.chain), maxIDLen)))
	tx := r.transactionHash
	if isBlank(tx) {
		tx = r.txHash
	}
	d.TxHash = lenient(textField("transaction hash", tx, maxIDLen))

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
	switch {
	case err != nil:
		money(err)
	case amount == "":
		money(errors.New("amount: missing"))
	default:
		if d.Amount, err = ParsePositiveAmount(amount); err != nil {
			money(fmt.Errorf("amount: %w", err))
		}
	}
	d.Currency, err = currencyField("currency", currencyVal)
	money(err)
	d.Status, err = textField("status", r.status, maxStatusLen)
	if err == nil && strings.TrimSpace(d.Status) == "" {
		err = errors.New("status: missing")
	}
	money(err)
	d.Class = status.Classify(d.Status)

	if !isBlank(r.fees) {
		d.FeesJSON = json.RawMessage(r.fees)
		d.Fees, _ = feesField(r.fees) // nil when a line does not read: FeesJSON keeps it
	}
	d.CreatedAt, _ = timeField("createTime", r.createTime)
	d.UpdatedAt, _ = timeField("updateTime", r.updateTime)
	if len(reasons) > 0 {
		d.Review, d.reviewErr = reasons.Error(), reasons
	}
	return d
}

// reviewErrors are the unusable money fields of one deposit, on one line.
type reviewErrors []error

func (r reviewErrors) Error() string {
	parts := make([]string, len(r))
	for i, e := range r {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (r reviewErrors) Unwrap() []error { return r }

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

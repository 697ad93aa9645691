package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Ledger is everything the sandbox holds: balances, every transfer it received and how many requests each
// idempotency key had. It is what GET /sandbox/ledger answers.
type Ledger struct {
	AccountID           string               `json:"accountId"`
	Infinity            InfinityBalance      `json:"infinity"`
	Wallets             []WalletState        `json:"wallets"`
	Deposits            []Deposit            `json:"deposits"`
	InternalTransfers   []InternalTransfer   `json:"internalTransfers"`
	Trades              []Trade              `json:"trades"`
	BlockchainTransfers []BlockchainTransfer `json:"blockchainTransfers"`
	// RequestsByIdempotencyKey counts every authorised request that carried the key (clientTransactionId,
	// Idempotency-Key header, trade referenceId, transfer idempotencyKey), including requests answered by an
	// injected fault and replays.
	RequestsByIdempotencyKey map[string]int `json:"requestsByIdempotencyKey"`
	// IdempotencyConflicts counts replays of a key whose request differed from the first one (a client bug:
	// the sandbox still answers the first result, as Interlace does).
	IdempotencyConflicts map[string]int `json:"idempotencyConflicts"`
	// AnswersByIdempotencyKey is, per key of a money-moving request (internal transfer clientTransactionId and
	// Idempotency-Key header, trade referenceId, blockchain transfer idempotencyKey), the class of every answer
	// the sandbox gave, in the order given. The classes:
	//   - AnswerApplied: a new transfer or trade, applied (internal transfer answered CLOSED; a blockchain
	//     transfer debited and answered Pending on its way to the chain);
	//   - AnswerPending: an internal transfer answered PENDING, new or replayed before it was applied: nothing
	//     has moved yet;
	//   - AnswerReplayed: a known key answered with the existing record (CLOSED, FAILED, a trade, a withdrawal in
	//     its current state); InternalTransfers says whether the money moved;
	//   - AnswerDuplicateError: a known key answered 100409 (Faults.DuplicateAnswer "error");
	//   - AnswerRejected: a business error; nothing was recorded under the key and nothing moved;
	//   - AnswerFault: an injected 5xx/429; nothing was applied;
	//   - "dropped:" + one of the above: the answer was lost by TimeoutAfterCommit (the connection was closed
	//     instead), so the client cannot know it.
	// A request that never reached a handler (no or bad token, an unreadable body) has no key and no entry.
	AnswersByIdempotencyKey map[string][]string `json:"answersByIdempotencyKey"`
}

// Answer classes of AnswersByIdempotencyKey.
const (
	AnswerApplied        = "applied"
	AnswerPending        = "pending"
	AnswerReplayed       = "replayed"
	AnswerDuplicateError = "duplicate_error"
	AnswerRejected       = "rejected"
	AnswerFault          = "fault"
	AnswerDroppedPrefix  = "dropped:"
)

// Refund states of a deposit (Deposit.Refund).
const (
	RefundScheduled = "scheduled" // rolled; waiting for RefundDelay after the Closed notification
	RefundDone      = "refunded"  // the wallet was debited and the deposit reads Refunded
	RefundSkipped   = "skipped"   // the wallet no longer held the amount (swept): nothing happened
)

// InfinityBalance is the account's Infinity Account (USD) balance.
type InfinityBalance struct {
	ID        string          `json:"id"`
	Currency  string          `json:"currency"`
	Available decimal.Decimal `json:"available"`
}

// WalletState is one CryptoConnect wallet.
type WalletState struct {
	ID          string                     `json:"id"`
	ReferenceID string                     `json:"referenceId"`
	Nickname    string                     `json:"nickname"`
	Master      bool                       `json:"master"`
	Balances    map[string]decimal.Decimal `json:"balances"`
	Addresses   []Address                  `json:"addresses"`
}

// Address is a wallet's blockchain address, in the guide's create-address shape.
type Address struct {
	Currency string `json:"currency"`
	Chain    string `json:"chain"`
	Address  string `json:"address"`
	Selected bool   `json:"selected"`
}

// DeliveryCounts describe the webhook notifications of one transfer.
type DeliveryCounts struct {
	// NotificationsSent counts the transfer's distinct notifications acknowledged with a 2xx (2 once both the
	// Pending and the Closed notification got through).
	NotificationsSent int64 `json:"notificationsSent"`
	// DeliveryAttempts counts every HTTP POST, retries and injected duplicates included.
	DeliveryAttempts int64 `json:"deliveryAttempts"`
	// NotificationsFailed counts notifications given up after the 16th retry.
	NotificationsFailed int64 `json:"notificationsFailed"`
}

// Deposit is an on-chain deposit into a CryptoConnect wallet (POST /sandbox/deposits).
type Deposit struct {
	ID        string          `json:"id"`
	AccountID string          `json:"accountId"`
	WalletID  string          `json:"walletId"`
	Currency  string          `json:"currency"`
	Chain     string          `json:"chain"`
	Amount    decimal.Decimal `json:"amount"`
	// Status is the deposit's current status: "Closed", or "Refunded" once refunded.
	Status          string `json:"status"`
	TransactionHash string `json:"transactionHash"`
	Address         string `json:"address"`     // the wallet's deposit address on that chain
	FromAddress     string `json:"fromAddress"` // the (random) sender
	CreateTime      string `json:"createTime"`
	UpdateTime      string `json:"updateTime"`
	// WebhooksDropped: Faults.DropWebhookRate rolled for it, so no notification was or will be sent.
	WebhooksDropped bool `json:"webhooksDropped"`
	// LegacyEnvelope: its notifications go out in the legacy envelope (Faults.LegacyEnvelopeRate), unsigned
	// by header; LegacyBusinessType is the envelope's businessType.
	LegacyEnvelope     bool   `json:"legacyEnvelope"`
	LegacyBusinessType string `json:"legacyBusinessType,omitempty"`
	// Refund is "" (none planned), RefundScheduled, RefundDone or RefundSkipped; RefundNote says why a refund
	// was skipped.
	Refund     string `json:"refund,omitempty"`
	RefundNote string `json:"refundNote,omitempty"`
	DeliveryCounts
}

// TransferSide is one side of an internal transfer as requested.
type TransferSide struct {
	BusinessType int    `json:"businessType"`
	ID           string `json:"id"`
	Currency     string `json:"currency"`
}

// InternalTransfer is an accepted POST /open-api/v3/business/transfer/internal: applied at once (CLOSED), or
// answered PENDING and later CLOSED (applied) or FAILED (nothing moved). Rejected requests are not listed.
type InternalTransfer struct {
	ID                  string          `json:"id"`
	ClientTransactionID string          `json:"clientTransactionId"`
	IdempotencyKey      string          `json:"idempotencyKey,omitempty"` // the Idempotency-Key header, if any
	From                TransferSide    `json:"from"`
	To                  TransferSide    `json:"to"`
	WalletID            string          `json:"walletId"` // the CryptoConnect wallet debited or credited
	Amount              decimal.Decimal `json:"amount"`
	Fee                 decimal.Decimal `json:"fee"`
	Credited            decimal.Decimal `json:"credited"`
	CreateTime          string          `json:"createTime"`
	// Status is "CLOSED", "PENDING" or "FAILED"; Applied says whether the money moved (only when CLOSED).
	Status  string `json:"status"`
	Applied bool   `json:"applied"`
	// Reason says why a PENDING transfer ended FAILED.
	Reason     string `json:"reason,omitempty"`
	UpdateTime string `json:"updateTime"`
}

// Trade is an applied convert trade.
type Trade struct {
	ID            string          `json:"id"`
	ReferenceID   string          `json:"referenceId"`
	WalletID      string          `json:"walletId"` // baseWalletId: where USD was debited and the crypto credited
	Symbol        string          `json:"symbol"`
	Side          string          `json:"side"`
	BaseCurrency  string          `json:"baseCurrency"`
	BaseAmount    decimal.Decimal `json:"baseAmount"`
	QuoteCurrency string          `json:"quoteCurrency"`
	QuoteAmount   decimal.Decimal `json:"quoteAmount"`
	Rate          decimal.Decimal `json:"rate"`
	Fee           decimal.Decimal `json:"fee"`
	FeeCurrency   string          `json:"feeCurrency"`
	Status        string          `json:"status"`
	CreateTime    string          `json:"createTime"`
}

// BlockchainTransfer is a withdrawal (POST /open-api/v3/cryptoconnect/transfers).
type BlockchainTransfer struct {
	ID              string          `json:"id"`
	IdempotencyKey  string          `json:"idempotencyKey"`
	WalletID        string          `json:"walletId"`
	Chain           string          `json:"chain"`
	Address         string          `json:"address"`
	Currency        string          `json:"currency"`
	Amount          decimal.Decimal `json:"amount"`
	Fee             decimal.Decimal `json:"fee"` // gas, charged on top of Amount
	Status          string          `json:"status"`
	TransactionHash string          `json:"transactionHash"`
	CreateTime      string          `json:"createTime"`
	UpdateTime      string          `json:"updateTime"`
	DeliveryCounts
}

// ---- internal records ----

// wallet is guarded by Server.mu. balances is copy-on-write and addresses append-only, so Ledger can share them
// with a snapshot after releasing the lock.
type wallet struct {
	id          string
	referenceID string
	nickname    string
	master      bool
	createTime  time.Time
	balances    map[string]decimal.Decimal
	addresses   []Address
}

func (w *wallet) balance(cur string) decimal.Decimal { return w.balances[cur] }

func (w *wallet) setBalance(cur string, v decimal.Decimal) {
	nm := make(map[string]decimal.Decimal, len(w.balances)+1)
	maps.Copy(nm, w.balances)
	nm[cur] = v
	w.balances = nm
}

// addressFor returns the wallet's address for (currency, chain), creating it if needed. One address serves
// every token of a chain, as on EVM chains, so it is derived from (wallet, chain) only: deterministic across
// restarts, different per wallet. Caller holds Server.mu.
func (w *wallet) addressFor(currency, chain string) Address {
	for _, a := range w.addresses {
		if a.Currency == currency && a.Chain == chain {
			return a
		}
	}
	sum := sha256.Sum256([]byte(w.id + "|" + chain))
	a := Address{Currency: currency, Chain: chain, Address: "0x" + hex.EncodeToString(sum[:20]), Selected: true}
	w.addresses = append(w.addresses, a)
	return a
}

// wire renders the wallet in the guide's shape: USDC and USDT always, then any other held currency. Caller
// holds Server.mu (or owns a snapshot).
func (w *wallet) wire(accountID string) wireWallet {
	curs := []string{"USDC", "USDT"}
	var extra []string
	for c := range w.balances {
		if c != "USDC" && c != "USDT" {
			extra = append(extra, c)
		}
	}
	sort.Strings(extra)
	curs = append(curs, extra...)
	bals := make([]wireWalletBalance, 0, len(curs))
	for _, c := range curs {
		bals = append(bals, wireWalletBalance{Currency: c, Available: w.balances[c].String(), Frozen: "0"})
	}
	addrs := slices.Clone(w.addresses)
	if addrs == nil {
		addrs = []Address{}
	}
	return wireWallet{
		ID: w.id, ReferenceID: w.referenceID, AccountID: accountID, Nickname: w.nickname, Master: w.master,
		Balances: bals, Addresses: addrs,
	}
}

// depositRec is immutable once stored: a refund stores a new record at the same index (copy-on-write), so
// snapshots taken earlier stay consistent.
type depositRec struct {
	Deposit
	stats   *deliveryStats
	created time.Time
	updated time.Time
	idx     int // in Server.deposits
}

func (d *depositRec) snapshot() Deposit {
	out := d.Deposit
	out.DeliveryCounts = d.stats.counts()
	return out
}

type chainRec struct {
	BlockchainTransfer // immutable: settlement stores a new record
	stats              *deliveryStats
	source             wireEndpoint // as answered: the requested source id, which may be the account id
	destination        wireEndpoint
	fingerprint        string
}

func (c *chainRec) snapshot() BlockchainTransfer {
	out := c.BlockchainTransfer
	out.DeliveryCounts = c.stats.counts()
	return out
}

// internalRec is immutable once stored: applying a PENDING transfer stores a new record at the same index.
type internalRec struct {
	InternalTransfer
	idx         int    // in Server.internals
	fingerprint string // the request, to detect a key replayed with a different body
	body        []byte // the answer for the record's current status, replayed byte for byte
	plan        transferPlan
	fromXferID  string // the legs' transferIds, the same in every answer
	toXferID    string
}

type tradeRec struct {
	Trade
	fingerprint string
	body        []byte
}

// xref locates a deposit or a blockchain transfer (they share the transfer id space and list).
type xref struct {
	deposit  bool
	idx      int
	createMs int64 // createTime, for the list's startTime/endTime filter
}

// Ledger returns a consistent snapshot. The lock is held only to copy pointers and small headers (records are
// immutable or copy-on-write), so it stays cheap with tens of thousands of transfers.
func (s *Server) Ledger() Ledger {
	type walletSnap struct {
		w     *wallet
		bals  map[string]decimal.Decimal
		addrs []Address
	}
	s.mu.Lock()
	inf := s.infinity
	ws := make([]walletSnap, len(s.walletOrder))
	for i, w := range s.walletOrder {
		ws[i] = walletSnap{w: w, bals: w.balances, addrs: w.addresses[:len(w.addresses):len(w.addresses)]}
	}
	deps := slices.Clone(s.deposits)
	ints := slices.Clone(s.internals)
	trs := slices.Clone(s.trades)
	chs := slices.Clone(s.chains)
	s.mu.Unlock()

	s.keysMu.Lock()
	keys := maps.Clone(s.keyCounts)
	conflicts := maps.Clone(s.conflicts)
	answers := make(map[string][]string, len(s.answers))
	for k, v := range s.answers {
		answers[k] = slices.Clone(v)
	}
	s.keysMu.Unlock()

	l := Ledger{
		AccountID:                s.cfg.AccountID,
		Infinity:                 InfinityBalance{ID: s.cfg.InfinityWalletID, Currency: "USD", Available: inf},
		Wallets:                  make([]WalletState, len(ws)),
		Deposits:                 make([]Deposit, len(deps)),
		InternalTransfers:        make([]InternalTransfer, len(ints)),
		Trades:                   make([]Trade, len(trs)),
		BlockchainTransfers:      make([]BlockchainTransfer, len(chs)),
		RequestsByIdempotencyKey: keys,
		IdempotencyConflicts:     conflicts,
		AnswersByIdempotencyKey:  answers,
	}
	for i, w := range ws {
		addrs := slices.Clone(w.addrs)
		if addrs == nil {
			addrs = []Address{}
		}
		l.Wallets[i] = WalletState{
			ID: w.w.id, ReferenceID: w.w.referenceID, Nickname: w.w.nickname, Master: w.w.master,
			Balances: maps.Clone(w.bals), Addresses: addrs,
		}
	}
	for i, d := range deps {
		l.Deposits[i] = d.snapshot()
	}
	for i, t := range ints {
		l.InternalTransfers[i] = t.InternalTransfer
	}
	for i, t := range trs {
		l.Trades[i] = t.Trade
	}
	for i, c := range chs {
		l.BlockchainTransfers[i] = c.snapshot()
	}
	return l
}

// Wallet returns one wallet's state.
func (s *Server) Wallet(id string) (WalletState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.resolveWalletLocked(id)
	if w == nil {
		return WalletState{}, false
	}
	return WalletState{
		ID: w.id, ReferenceID: w.referenceID, Nickname: w.nickname, Master: w.master,
		Balances: maps.Clone(w.balances), Addresses: slices.Clone(w.addresses),
	}, true
}

package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// DepositRequest is an on-chain deposit arriving in a CryptoConnect wallet (POST /sandbox/deposits).
type DepositRequest struct {
	// WalletID is the receiving wallet; "" (or the account id) means the master wallet.
	WalletID string `json:"walletId"`
	// Currency is USDC, USDT or WUSD; "" means USDC.
	Currency string `json:"currency"`
	// Chain is an opaque chain code; "" means ETH.
	Chain string `json:"chain"`
	// Amount must be > 0 with at most 6 decimals.
	Amount decimal.Decimal `json:"amount"`
}

// CreateDeposit credits the wallet at once and queues the signed notifications: the transfer Pending
// (CRYPTO_TRANSFER.CREATED) and then Closed (CRYPTO_TRANSFER.UPDATED), same transfer id, different notification
// ids. The realism faults are drawn here, once per deposit: no notification at all (DropWebhookRate), every
// notification in the legacy envelope (LegacyEnvelopeRate), a refund after the Closed notification
// (RefundAfterCloseRate). Errors wrap ErrInvalid or ErrNotFound.
func (s *Server) CreateDeposit(ctx context.Context, r DepositRequest) (Deposit, error) {
	if err := ctx.Err(); err != nil {
		return Deposit{}, err
	}
	cur := strings.ToUpper(strings.TrimSpace(r.Currency))
	if cur == "" {
		cur = "USDC"
	}
	if !isStablecoin(cur) {
		return Deposit{}, invalidf("currency %q cannot be deposited on-chain (USDC, USDT or WUSD)", r.Currency)
	}
	chain := strings.TrimSpace(r.Chain)
	if chain == "" {
		chain = "ETH"
	}
	if !r.Amount.IsPositive() {
		return Deposit{}, invalidf("amount must be greater than 0")
	}
	if !r.Amount.Equal(r.Amount.Truncate(currencyPlaces[cur])) {
		return Deposit{}, invalidf("amount %s has more than %d decimal places", r.Amount, currencyPlaces[cur])
	}

	now := time.Now()
	id, hash, sender := s.rng.uuid(), s.rng.hex0x(64), s.rng.hex0x(40)
	f := s.faults.Load()
	dropped := s.roll(f.DropWebhookRate)
	legacyType := ""
	if !dropped && s.roll(f.LegacyEnvelopeRate) {
		legacyType = legacyBusinessTypes[s.rng.intN(len(legacyBusinessTypes))]
	}
	refund := s.roll(f.RefundAfterCloseRate)

	s.mu.Lock()
	w := s.resolveWalletLocked(r.WalletID)
	if w == nil {
		s.mu.Unlock()
		return Deposit{}, notFoundf("CryptoConnect wallet %q does not exist", r.WalletID)
	}
	addr := w.addressFor(cur, chain)
	w.setBalance(cur, w.balance(cur).Add(r.Amount))
	rec := &depositRec{
		Deposit: Deposit{
			ID: id, AccountID: s.cfg.AccountID, WalletID: w.id, Currency: cur, Chain: chain, Amount: r.Amount,
			Status: depositClosed, TransactionHash: hash, Address: addr.Address, FromAddress: sender,
			CreateTime: msString(now), UpdateTime: msString(now), WebhooksDropped: dropped,
			LegacyEnvelope: legacyType != "", LegacyBusinessType: legacyType,
		},
		stats:   &deliveryStats{},
		created: now,
		updated: now,
		idx:     len(s.deposits),
	}
	if refund {
		rec.Refund = RefundScheduled
	}
	s.deposits = append(s.deposits, rec)
	xr := xref{deposit: true, idx: rec.idx, createMs: now.UnixMilli()}
	s.addTransferLocked(xr)
	s.transferByID[id] = xr
	s.mu.Unlock()

	scheduleRefund := func() {
		time.AfterFunc(s.cfg.RefundDelay, func() { s.refundDeposit(rec.idx) })
	}
	if s.notifies(rec) {
		pending := s.depositNotification(rec, EventTransferCreated, depositPending, now)
		closed := s.depositNotification(rec, EventTransferUpdated, depositClosed, time.Now())
		if refund {
			closed.afterFirst = scheduleRefund
		}
		s.release(pending)
		s.releaseAfter(pending, closed)
	} else if refund {
		scheduleRefund()
	}
	return rec.snapshot(), nil
}

// Deposit statuses.
const (
	depositPending  = "Pending"
	depositClosed   = "Closed"
	depositRefunded = "Refunded"
)

// roll draws true with probability rate; a zero rate draws nothing, so the random sequence (and every id a seed
// reproduces) is unchanged while a fault is off.
func (s *Server) roll(rate float64) bool { return rate > 0 && s.rng.float64() < rate }

// notifies reports whether the deposit's notifications go out at all.
func (s *Server) notifies(d *depositRec) bool { return s.cfg.WebhookURL != "" && !d.WebhooksDropped }

// depositNotification renders one notification of the deposit, in its envelope.
func (s *Server) depositNotification(d *depositRec, event, status string, updated time.Time) *notification {
	if d.LegacyEnvelope {
		return s.newLegacyNotification(d.LegacyBusinessType, d.wire(status, updated), d.stats)
	}
	return s.newNotification(event, d.wire(status, updated), d.stats)
}

// refundDeposit is the injected refund of a Closed deposit: if its wallet still holds the amount, the wallet is
// debited, the deposit reads Refunded (GET transfers and the list) and a Refunded notification is sent;
// otherwise the money was already swept out, nothing happens and the ledger keeps the reason. The record is
// replaced, not mutated. After Close, nothing is refunded.
func (s *Server) refundDeposit(idx int) {
	if s.ctx.Err() != nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	nr := *s.deposits[idx]
	w := s.wallets[nr.WalletID]
	bal := w.balance(nr.Currency)
	done := bal.GreaterThanOrEqual(nr.Amount)
	if done {
		w.setBalance(nr.Currency, bal.Sub(nr.Amount))
		nr.Status, nr.Refund = depositRefunded, RefundDone
		nr.updated, nr.UpdateTime = now, msString(now)
	} else {
		nr.Refund = RefundSkipped
		nr.RefundNote = fmt.Sprintf("not refunded: wallet %s holds %s %s, less than the %s deposited (already swept)",
			w.id, bal, nr.Currency, nr.Amount)
	}
	s.deposits[idx] = &nr
	s.mu.Unlock()
	if done && s.notifies(&nr) {
		s.release(s.depositNotification(&nr, EventTransferUpdated, depositRefunded, now))
	}
}

// wire renders the deposit as the contract §4 resource.
func (d *depositRec) wire(status string, updated time.Time) wireCryptoTransfer {
	return wireCryptoTransfer{
		ID:              d.ID,
		AccountID:       d.AccountID,
		Source:          wireEndpoint{Type: "blockchain", Chain: d.Chain, Address: d.FromAddress},
		Destination:     wireEndpoint{Type: "cryptoconnect_wallet", ID: d.WalletID, Address: d.Address},
		Amount:          wireAmount{Amount: d.Amount.String(), Currency: d.Currency},
		Fees:            []wireGasFee{{Amount: "0", Currency: d.Currency, Type: "GAS"}},
		Status:          status,
		TransactionHash: d.TransactionHash,
		CreateTime:      d.CreateTime,
		UpdateTime:      msString(updated),
	}
}

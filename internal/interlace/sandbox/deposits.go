package sandbox

import (
	"context"
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
// ids. Errors wrap ErrInvalid or ErrNotFound.
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
			Status: "Closed", TransactionHash: hash, Address: addr.Address, FromAddress: sender,
			CreateTime: msString(now),
		},
		stats:   &deliveryStats{},
		created: now,
	}
	s.deposits = append(s.deposits, rec)
	xr := xref{deposit: true, idx: len(s.deposits) - 1}
	s.transfers = append(s.transfers, xr)
	s.transferByID[id] = xr
	s.mu.Unlock()

	if s.cfg.WebhookURL != "" {
		pending := s.newNotification(EventTransferCreated, rec.wire("Pending", now), rec.stats)
		closed := s.newNotification(EventTransferUpdated, rec.wire("Closed", time.Now()), rec.stats)
		s.release(pending)
		s.releaseAfter(pending, closed)
	}
	return rec.snapshot(), nil
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

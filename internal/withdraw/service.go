// Package withdraw implements the two MoR guide flows an operator starts: giving a
// user a CryptoConnect wallet with deposit addresses ("Generate a Wallet Address")
// and paying money back out ("Convert & Withdraw") as a durable workflow.
//
// Service validates and records requests (no upstream call happens for invalid
// input); Runner executes withdrawals step by step. Every money-moving request
// carries an id derived from the withdrawal id and the step (package ids), each
// step's answer is committed before the next step starts, and withdrawals are
// claimed with leases like sweeps: a crash anywhere resumes at the step it was in
// and replays that step's idempotent request, so money never moves twice.
package withdraw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/store"
)

// Upstream is what this package needs from Interlace; *interlace.Client satisfies it.
type Upstream interface {
	CreateWallet(ctx context.Context, req interlace.CreateWalletRequest) (*interlace.Wallet, error)
	GetWallet(ctx context.Context, walletID string) (*interlace.Wallet, error)
	CreateAddress(ctx context.Context, walletID string, req interlace.CreateAddressRequest) (*interlace.Address, error)
	ListInfinityWallets(ctx context.Context, accountID string) ([]interlace.InfinityWallet, error)
	InternalTransfer(ctx context.Context, req interlace.InternalTransferRequest) (*interlace.InternalTransfer, error)
	EstimateQuote(ctx context.Context, req interlace.QuoteRequest) (*interlace.Quote, error)
	CreateTrade(ctx context.Context, req interlace.TradeRequest) (*interlace.Trade, error)
	TransferFeeAndQuota(ctx context.Context, req interlace.FeeQuotaRequest) (*interlace.FeeQuota, error)
	CreateBlockchainTransfer(ctx context.Context, req interlace.BlockchainTransferRequest) (*interlace.BlockchainTransfer, error)
	GetBlockchainTransfer(ctx context.Context, id string) (*interlace.BlockchainTransfer, error)
}

// Config configures the Service.
type Config struct {
	AccountID string // the merchant account [required]
	// SourceCurrency is the Infinity Account currency withdrawals are paid from [USD].
	SourceCurrency string
	// MaxFeeRate is SWEEPER_MAX_FEE_RATE, frozen into each withdrawal at creation.
	MaxFeeRate decimal.Decimal
	// Networks is the table of accepted (currency, chain) pairs [DefaultNetworks()].
	Networks Networks
}

// Service validates and records operator requests.
type Service struct {
	cfg   Config
	store *store.Store
	up    Upstream
	wake  func()
}

// NewService builds a Service. wake, when set, is called after a withdrawal is
// recorded, so a runner in this process starts it at once instead of at its next poll.
func NewService(cfg Config, st *store.Store, up Upstream, wake func()) (*Service, error) {
	if cfg.AccountID == "" {
		return nil, errors.New("withdraw: AccountID is required")
	}
	if cfg.SourceCurrency == "" {
		cfg.SourceCurrency = "USD"
	}
	cfg.SourceCurrency = strings.ToUpper(cfg.SourceCurrency)
	if cfg.MaxFeeRate.IsNegative() || cfg.MaxFeeRate.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return nil, fmt.Errorf("withdraw: MaxFeeRate must be in [0, 1), not %s", cfg.MaxFeeRate)
	}
	if cfg.Networks == nil {
		cfg.Networks = DefaultNetworks()
	}
	if wake == nil {
		wake = func() {}
	}
	return &Service{cfg: cfg, store: st, up: up, wake: wake}, nil
}

// --- wallets ---------------------------------------------------------------------------------------

// WalletRequest is POST /v1/wallets.
type WalletRequest struct {
	UserRef   string           `json:"userRef"`
	Nickname  string           `json:"nickname"`
	Addresses []AddressRequest `json:"addresses"`
}

// AddressRequest asks for a deposit address of a currency on a chain.
type AddressRequest struct {
	Currency string `json:"currency"`
	Chain    string `json:"chain"`
}

const maxAddressesPerRequest = 20

func (s *Service) checkWalletRequest(req *WalletRequest) error {
	req.UserRef = strings.TrimSpace(req.UserRef)
	if req.UserRef == "" {
		return missing("userRef")
	}
	if !visibleASCII(req.UserRef, 128) {
		return invalid("invalid_field", "userRef", "userRef must be 1 to 128 visible ASCII characters without spaces")
	}
	if utf8.RuneCountInString(req.Nickname) > 64 || strings.IndexFunc(req.Nickname, unicode.IsControl) >= 0 {
		return invalid("invalid_field", "nickname", "nickname must be at most 64 characters, without control characters")
	}
	if len(req.Addresses) > maxAddressesPerRequest {
		return invalid("invalid_field", "addresses", fmt.Sprintf("at most %d addresses per request", maxAddressesPerRequest))
	}
	seen := map[string]bool{}
	out := req.Addresses[:0:0]
	for i, a := range req.Addresses {
		field := fmt.Sprintf("addresses[%d]", i)
		if strings.TrimSpace(a.Currency) == "" {
			return missing(field + ".currency")
		}
		if strings.TrimSpace(a.Chain) == "" {
			return missing(field + ".chain")
		}
		n, err := s.cfg.Networks.Lookup(a.Currency, a.Chain)
		if err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				ie.Field = field + "." + ie.Field
			}
			return err
		}
		a = AddressRequest{Currency: strings.ToUpper(strings.TrimSpace(a.Currency)), Chain: n.Chain}
		if key := a.Currency + "/" + a.Chain; !seen[key] {
			seen[key] = true
			out = append(out, a)
		}
	}
	req.Addresses = out
	return nil
}

// ProvisionWallet gives a user their CryptoConnect wallet and the requested deposit
// addresses (guide: "Generate a Wallet Address", steps 1 and 3). The wallet's
// referenceId is derived from userRef, so a retried or concurrent request never
// creates a second wallet upstream; addresses already stored are not requested
// again. created reports that this call stored the wallet (201) rather than
// finding it (200). When an upstream call fails half-way, what was obtained is
// kept and the same request completes it.
func (s *Service) ProvisionWallet(ctx context.Context, req WalletRequest) (w store.Wallet, created bool, err error) {
	if err := s.checkWalletRequest(&req); err != nil {
		return store.Wallet{}, false, err
	}
	w, err = s.store.WalletByUserRef(ctx, req.UserRef)
	switch {
	case errors.Is(err, store.ErrNotFound):
		ref := ids.WalletReferenceID(req.UserRef)
		up, err := s.up.CreateWallet(ctx, interlace.CreateWalletRequest{
			ReferenceID: ref.String(), AccountID: s.cfg.AccountID, Nickname: req.Nickname,
		})
		if err != nil {
			return store.Wallet{}, false, fmt.Errorf("create wallet: %w", err)
		}
		created, err = s.store.SaveWallet(ctx, store.WalletInput{
			ID: up.ID, UserRef: req.UserRef, ReferenceID: ref, AccountID: s.cfg.AccountID, Nickname: up.Nickname,
			Master: up.Master, Balances: balances(up.Balances), Refreshed: true,
		})
		if err != nil {
			return store.Wallet{}, false, err
		}
		if err := s.store.SaveAddresses(ctx, up.ID, addresses(up.Addresses)); err != nil {
			return store.Wallet{}, false, err
		}
		if w, err = s.store.Wallet(ctx, up.ID); err != nil {
			return store.Wallet{}, false, err
		}
	case err != nil:
		return store.Wallet{}, false, err
	}

	have := map[string]bool{}
	for _, a := range w.Addresses {
		have[strings.ToUpper(a.Currency)+"/"+strings.ToUpper(a.Chain)] = true
	}
	added := false
	for _, a := range req.Addresses {
		if have[a.Currency+"/"+strings.ToUpper(a.Chain)] {
			continue
		}
		got, err := s.up.CreateAddress(ctx, w.ID, interlace.CreateAddressRequest{Currency: a.Currency, Chain: a.Chain})
		if err != nil {
			return store.Wallet{}, false, fmt.Errorf("create %s address on %s: %w", a.Currency, a.Chain, err)
		}
		// Stored under the pair we asked for: that is what later requests look up.
		addr := store.WalletAddress{Currency: a.Currency, Chain: a.Chain, Address: got.Address, Selected: got.Selected}
		if err := s.store.SaveAddresses(ctx, w.ID, []store.WalletAddress{addr}); err != nil {
			return store.Wallet{}, false, err
		}
		added = true
	}
	if added {
		if w, err = s.store.Wallet(ctx, w.ID); err != nil {
			return store.Wallet{}, false, err
		}
	}
	return w, created, nil
}

// Wallet returns a stored wallet; with refresh it first reads the wallet from
// Interlace (guide: "Get a wallet address") and stores its balances and addresses.
func (s *Service) Wallet(ctx context.Context, id string, refresh bool) (store.Wallet, error) {
	w, err := s.store.Wallet(ctx, id)
	if err != nil || !refresh {
		return w, err
	}
	up, err := s.up.GetWallet(ctx, id)
	if err != nil {
		return store.Wallet{}, fmt.Errorf("get wallet: %w", err)
	}
	if _, err := s.store.SaveWallet(ctx, store.WalletInput{
		ID: w.ID, UserRef: w.UserRef, ReferenceID: w.ReferenceID, AccountID: w.AccountID, Nickname: up.Nickname,
		Master: up.Master, Balances: balances(up.Balances), Refreshed: true,
	}); err != nil {
		return store.Wallet{}, err
	}
	if err := s.store.SaveAddresses(ctx, w.ID, addresses(up.Addresses)); err != nil {
		return store.Wallet{}, err
	}
	return s.store.Wallet(ctx, id)
}

func balances(in []interlace.WalletBalance) []store.WalletBalance {
	out := make([]store.WalletBalance, 0, len(in))
	for _, b := range in {
		out = append(out, store.WalletBalance{Currency: b.Currency, Available: b.Available, Frozen: b.Frozen})
	}
	return out
}

// addresses keeps the addresses Interlace lists with their currency and chain (a
// bare address string cannot be filed under a pair).
func addresses(in []interlace.Address) []store.WalletAddress {
	var out []store.WalletAddress
	for _, a := range in {
		if a.Currency == "" || a.Chain == "" || a.Address == "" {
			continue
		}
		out = append(out, store.WalletAddress{Currency: strings.ToUpper(a.Currency), Chain: a.Chain, Address: a.Address, Selected: a.Selected})
	}
	return out
}

// --- withdrawals -----------------------------------------------------------------------------------

// WithdrawalRequest is POST /v1/withdrawals.
type WithdrawalRequest struct {
	IdempotencyKey string          `json:"idempotencyKey"`
	WalletID       string          `json:"walletId"`
	Amount         decimal.Decimal `json:"amount"`
	SourceCurrency string          `json:"sourceCurrency"`
	Currency       string          `json:"currency"`
	Chain          string          `json:"chain"`
	Address        string          `json:"address"`
}

// CheckWithdrawal validates a request without touching the database or Interlace,
// normalising it (upper-case currencies, canonical chain code) in place.
func (s *Service) CheckWithdrawal(req *WithdrawalRequest) error {
	req.IdempotencyKey = strings.TrimSpace(req.IdempotencyKey)
	req.WalletID = strings.TrimSpace(req.WalletID)
	req.Address = strings.TrimSpace(req.Address)
	req.SourceCurrency = strings.ToUpper(strings.TrimSpace(req.SourceCurrency))
	req.Currency = strings.ToUpper(strings.TrimSpace(req.Currency))
	switch {
	case req.IdempotencyKey == "":
		return missing("idempotencyKey")
	case req.WalletID == "":
		return missing("walletId")
	case req.Currency == "":
		return missing("currency")
	case strings.TrimSpace(req.Chain) == "":
		return missing("chain")
	case req.Address == "":
		return missing("address")
	}
	if !visibleASCII(req.IdempotencyKey, 128) {
		return invalid("invalid_field", "idempotencyKey", "idempotencyKey must be 1 to 128 visible ASCII characters without spaces")
	}
	if !visibleASCII(req.WalletID, 128) {
		return invalid("invalid_field", "walletId", "walletId must be an Interlace wallet id")
	}
	if req.SourceCurrency == "" {
		req.SourceCurrency = s.cfg.SourceCurrency
	}
	if req.SourceCurrency != s.cfg.SourceCurrency {
		return invalid("unsupported_currency", "sourceCurrency",
			fmt.Sprintf("sourceCurrency must be %s (the Infinity Account currency), not %q", s.cfg.SourceCurrency, req.SourceCurrency))
	}
	if err := CheckAmount("amount", req.Amount, req.SourceCurrency); err != nil {
		return err
	}
	n, err := s.cfg.Networks.Lookup(req.Currency, req.Chain)
	if err != nil {
		return err
	}
	req.Chain = n.Chain
	return n.CheckAddress(req.Address)
}

// CreateWithdrawal validates and records a withdrawal; the runner does the rest.
// The id is derived from the idempotency key: repeating the request returns the
// same withdrawal (created false); the same key with another request is
// store.ErrConflict. walletId must be a wallet provisioned through sweeper or the
// account id, which the guide uses to mean the account's master wallet.
func (s *Service) CreateWithdrawal(ctx context.Context, req WithdrawalRequest) (store.Withdrawal, bool, error) {
	if err := s.CheckWithdrawal(&req); err != nil {
		return store.Withdrawal{}, false, err
	}
	if req.WalletID != s.cfg.AccountID {
		ok, err := s.store.WalletExists(ctx, req.WalletID)
		if err != nil {
			return store.Withdrawal{}, false, err
		}
		if !ok {
			return store.Withdrawal{}, false, invalid("unknown_wallet", "walletId", fmt.Sprintf(
				"wallet %q was not provisioned through sweeper (POST /v1/wallets); use the account id for the master wallet",
				req.WalletID))
		}
	}
	id := ids.WithdrawalID(req.IdempotencyKey)
	w, created, err := s.store.CreateWithdrawal(ctx, store.WithdrawalInput{
		ID: id, IdempotencyKey: req.IdempotencyKey, AccountID: s.cfg.AccountID, WalletID: req.WalletID,
		SourceCurrency: req.SourceCurrency, Amount: req.Amount, Currency: req.Currency, Chain: req.Chain,
		Address: req.Address, MaxFeeRate: s.cfg.MaxFeeRate,
		FundRequestID:     ids.WithdrawalStepID(id, store.StepFund),
		TradeRequestID:    ids.WithdrawalStepID(id, store.StepTrade),
		TransferRequestID: ids.WithdrawalStepID(id, store.StepTransfer),
	})
	if err != nil {
		return w, false, err
	}
	if created {
		s.wake()
	}
	return w, created, nil
}

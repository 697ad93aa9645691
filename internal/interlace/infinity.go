package interlace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// InfinityLister lists an account's Infinity Account balances; *Client is one.
type InfinityLister interface {
	ListInfinityWallets(ctx context.Context, accountID string) ([]InfinityWallet, error)
}

// Which field of a listed balance said it belongs to the Infinity Account.
const (
	ByObjectType = "objectType"
	ByWalletType = "walletType"
)

// InfinityPick is the balance discovery chose, and how.
type InfinityPick struct {
	Wallet InfinityWallet
	// By is ByObjectType, or ByWalletType when the entry carried no objectType.
	By string
	// WalletTypeOnly is the entry a filter on walletType alone would have taken, when that is another
	// one (a Budget balance, objectType 1, listed first with walletType 0); nil otherwise.
	WalletTypeOnly *InfinityWallet
	// Listed is how many entries the answer had; Others how many of them were not Infinity balances
	// (the server did not filter on objectType).
	Listed, Others int
}

// ErrNoInfinityBalance: the account lists no Infinity balance in the target currency.
var ErrNoInfinityBalance = errors.New("no Infinity balance")

// isInfinity: objectType 0 is the Infinity Account (1 Budget, 2 prepaid card); only when objectType is
// absent does walletType 0 count (contract §9). walletType alone is not enough: Budget balances carry
// walletType 0 too.
func isInfinity(w InfinityWallet) (bool, string) {
	if w.ObjectType != nil {
		return *w.ObjectType == 0, ByObjectType
	}
	return w.WalletType == 0, ByWalletType
}

// PickInfinityWallet chooses the sweep target among listed balances: the first Infinity balance (see
// isInfinity) in currency, never a Budget or card balance, whatever the list order.
func PickInfinityWallet(wallets []InfinityWallet, currency string) (InfinityPick, error) {
	p := InfinityPick{Listed: len(wallets)}
	found := false
	var naive *InfinityWallet
	for i := range wallets {
		w := wallets[i]
		ok, by := isInfinity(w)
		if !ok {
			p.Others++
		}
		if !strings.EqualFold(w.Currency, currency) || w.ID == "" {
			continue
		}
		if naive == nil && w.WalletType == 0 {
			naive = &wallets[i]
		}
		if ok && !found {
			p.Wallet, p.By, found = w, by, true
		}
	}
	if !found {
		return p, fmt.Errorf("%w in %s among %d listed balance(s)", ErrNoInfinityBalance, currency, len(wallets))
	}
	if naive != nil && naive.ID != p.Wallet.ID {
		p.WalletTypeOnly = naive
	}
	return p, nil
}

// InfinityWalletResolver resolves the id of the account's Infinity balance in one currency: the
// configured id when there is one, otherwise discovered with GET /open-api/v3/cards/wallets and cached.
// A failed discovery is not cached: it is retried, but only after a backoff (by default 1 s doubling
// up to a minute, jittered; WithBackoff puts the caller's retry policy in its place), so a failing
// upstream is not asked again on every tick of every worker.
type InfinityWalletResolver struct {
	lister    InfinityLister
	accountID string
	currency  string
	now       func() time.Time
	backoff   func(failures int) time.Duration

	mu       sync.Mutex
	id       string
	failures int
	retryAt  time.Time
	lastErr  error
}

// NewInfinityWalletResolver returns a resolver; static, when not empty, is used as is.
func NewInfinityWalletResolver(lister InfinityLister, accountID, currency, static string) *InfinityWalletResolver {
	return &InfinityWalletResolver{lister: lister, accountID: accountID, currency: currency, id: static, now: time.Now,
		backoff: backoff}
}

// WithBackoff replaces the wait after n failed discoveries in a row. A caller that retries on its
// own schedule (the withdrawal runner's leased-job backoff) passes that schedule, so that its
// retries and the discovery they wait for follow one policy instead of the stricter of two.
func (r *InfinityWalletResolver) WithBackoff(f func(failures int) time.Duration) *InfinityWalletResolver {
	r.backoff = f
	return r
}

// DiscoveryBackoffError is a discovery refused without asking upstream: the last one failed and
// its backoff has not elapsed. Nothing was sent; RetryIn says when asking again is allowed, so a
// caller retrying sooner only gets this error again.
type DiscoveryBackoffError struct {
	Failures int           // failed discoveries in a row
	RetryIn  time.Duration // until the next discovery is allowed
	Err      error         // the last failure
}

func (e *DiscoveryBackoffError) Error() string {
	return fmt.Sprintf("discover Infinity wallet: failed %d time(s) in a row, next attempt in %s: %v", e.Failures,
		e.RetryIn.Round(time.Millisecond), e.Err)
}

func (e *DiscoveryBackoffError) Unwrap() error { return e.Err }

// WithClock replaces time.Now (tests move the clock past the backoff).
func (r *InfinityWalletResolver) WithClock(now func() time.Time) *InfinityWalletResolver {
	r.now = now
	return r
}

// ID returns the balance id.
func (r *InfinityWalletResolver) ID(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.id != "" {
		return r.id, nil
	}
	if now := r.now(); now.Before(r.retryAt) {
		return "", &DiscoveryBackoffError{Failures: r.failures, RetryIn: r.retryAt.Sub(now), Err: r.lastErr}
	}
	id, err := r.discover(ctx)
	if err != nil {
		r.failures++
		r.retryAt = r.now().Add(r.backoff(r.failures))
		r.lastErr = err
		return "", fmt.Errorf("discover Infinity wallet: %w", err)
	}
	r.id, r.failures, r.retryAt, r.lastErr = id, 0, time.Time{}, nil
	return id, nil
}

func (r *InfinityWalletResolver) discover(ctx context.Context) (string, error) {
	wallets, err := r.lister.ListInfinityWallets(ctx, r.accountID)
	if err != nil {
		return "", err
	}
	p, err := PickInfinityWallet(wallets, r.currency)
	if err != nil {
		return "", fmt.Errorf("account %s: %w", r.accountID, err)
	}
	return p.Wallet.ID, nil
}

// Known returns the id if it is already known, without asking upstream ("" if not).
func (r *InfinityWalletResolver) Known() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

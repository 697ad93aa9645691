package interlace

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// InfinityLister lists an account's Infinity Account balances; *Client is one.
type InfinityLister interface {
	ListInfinityWallets(ctx context.Context, accountID string) ([]InfinityWallet, error)
}

// InfinityWalletResolver resolves the id of the account's Infinity balance in one
// currency: the configured id when there is one, otherwise discovered once with
// GET /open-api/v3/cards/wallets and cached. A failed discovery is retried on the
// next call, so a transient upstream error does not stick.
type InfinityWalletResolver struct {
	lister    InfinityLister
	accountID string
	currency  string

	mu sync.Mutex
	id string
}

// NewInfinityWalletResolver returns a resolver; static, when not empty, is used as is.
func NewInfinityWalletResolver(lister InfinityLister, accountID, currency, static string) *InfinityWalletResolver {
	return &InfinityWalletResolver{lister: lister, accountID: accountID, currency: currency, id: static}
}

// ID returns the balance id.
func (r *InfinityWalletResolver) ID(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.id != "" {
		return r.id, nil
	}
	wallets, err := r.lister.ListInfinityWallets(ctx, r.accountID)
	if err != nil {
		return "", fmt.Errorf("discover Infinity wallet: %w", err)
	}
	for _, w := range wallets {
		if strings.EqualFold(w.Currency, r.currency) && w.ID != "" {
			r.id = w.ID
			return w.ID, nil
		}
	}
	return "", fmt.Errorf("account %s has no Infinity balance in %s", r.accountID, r.currency)
}

// Known returns the id if it is already known, without asking upstream ("" if not).
func (r *InfinityWalletResolver) Known() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

package sandbox

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// POST /open-api/v3/cryptoconnect/wallets {referenceId, accountId, nickname} — idempotent on referenceId.
func (s *Server) handleCreateWallet(c *call) {
	var req wireCreateWalletReq
	if !c.decode(&req) || !c.begin(req.ReferenceID, c.r.Header.Get("Idempotency-Key")) {
		return
	}
	if e := s.checkAccount(req.AccountID); e != nil {
		c.fail(e)
		return
	}
	if req.ReferenceID == "" {
		c.fail(invalidf("referenceId is required"))
		return
	}
	id := s.rng.uuid()
	s.mu.Lock()
	w := s.walletsByRef[req.ReferenceID]
	if w == nil {
		w = &wallet{
			id:          id,
			referenceID: req.ReferenceID,
			nickname:    req.Nickname,
			createTime:  time.Now(),
			balances:    map[string]decimal.Decimal{},
		}
		s.wallets[w.id] = w
		s.walletsByRef[w.referenceID] = w
		s.walletOrder = append(s.walletOrder, w)
	}
	out := w.wire(s.cfg.AccountID)
	s.mu.Unlock()
	c.ok(out)
}

// GET /open-api/v3/cryptoconnect/wallets/{id}
func (s *Server) handleGetWallet(c *call) {
	if !c.begin() {
		return
	}
	id := c.r.PathValue("id")
	s.mu.Lock()
	w := s.wallets[id]
	var out wireWallet
	if w != nil {
		out = w.wire(s.cfg.AccountID)
	}
	s.mu.Unlock()
	if w == nil {
		c.fail(notFoundf("CryptoConnect wallet %q does not exist", id))
		return
	}
	c.ok(out)
}

// POST /open-api/v3/cryptoconnect/wallets/{id}/addresses {currency, chain} — idempotent per (wallet, currency,
// chain).
func (s *Server) handleCreateAddress(c *call) {
	var req wireCreateAddressReq
	if !c.decode(&req) || !c.begin() {
		return
	}
	cur := strings.ToUpper(strings.TrimSpace(req.Currency))
	chain := strings.TrimSpace(req.Chain)
	if !isStablecoin(cur) {
		c.fail(invalidf("currency %q is not supported (USDC, USDT or WUSD)", req.Currency))
		return
	}
	if chain == "" {
		c.fail(invalidf("chain is required"))
		return
	}
	id := c.r.PathValue("id")
	s.mu.Lock()
	w := s.wallets[id]
	var a Address
	if w != nil {
		a = w.addressFor(cur, chain)
	}
	s.mu.Unlock()
	if w == nil {
		c.fail(notFoundf("CryptoConnect wallet %q does not exist", id))
		return
	}
	c.ok(a)
}

// GET /open-api/v3/cards/wallets?accountId=&walletType=0 — the Infinity Account balance. Other wallet types
// (budgets, prepaid cards) do not exist in the sandbox, so they list empty.
func (s *Server) handleCardWallets(c *call) {
	if !c.begin() {
		return
	}
	q := c.r.URL.Query()
	acct := q.Get("accountId")
	if acct == "" {
		c.fail(invalidf("accountId is required"))
		return
	}
	typ := q.Get("walletType")
	if typ == "" {
		typ = q.Get("objectType")
	}
	if acct != s.cfg.AccountID || (typ != "" && typ != "0") {
		c.ok(newList[wireCardWallet](nil, 0))
		return
	}
	s.mu.Lock()
	avail := s.infinity
	s.mu.Unlock()
	c.ok(newList([]wireCardWallet{{
		ID:         s.cfg.InfinityWalletID,
		AccountID:  s.cfg.AccountID,
		CreateTime: msString(s.created),
		Currency:   "USD",
		WalletType: 0,
		Available:  avail.String(),
	}}, 1))
}

package sandbox

import (
	"strconv"
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

// Card wallet object types (interlace-api-facts: objectType 0 Infinity, 1 Budget, 2 prepaid card).
const (
	objectInfinity = 0
	objectBudget   = 1
)

// GET /open-api/v3/cards/wallets?accountId=&objectType= — the account's card-side balances: the Infinity
// Account USD balance (objectType 0, walletType 0), and, while Faults.BudgetBalance is on, a Budget USD balance
// (objectType 1, but walletType 0 too) listed BEFORE it. objectType is the documented filter and is honoured
// (0: Infinity only, 1: Budget only, 2: empty); walletType is not a filter here (the guide sends it, the
// reference does not document it), so a client that sends walletType=0 alone and takes the first USD entry
// picks the Budget. Another account's list is empty.
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
	objectType := -1
	if v := q.Get("objectType"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			c.fail(invalidf("objectType must be 0, 1 or 2, got %q", v))
			return
		}
		objectType = n
	}
	if acct != s.cfg.AccountID {
		c.ok(newList[wireCardWallet](nil, 0))
		return
	}
	s.mu.Lock()
	avail := s.infinity
	s.mu.Unlock()
	var out []wireCardWallet
	if s.faults.Load().BudgetBalance && (objectType == -1 || objectType == objectBudget) {
		out = append(out, wireCardWallet{
			ID: s.cfg.BudgetWalletID, AccountID: s.cfg.AccountID, CreateTime: msString(s.created), Currency: "USD",
			WalletType: 0, ObjectType: objectBudget, Available: s.cfg.BudgetAvailable.String(),
		})
	}
	if objectType == -1 || objectType == objectInfinity {
		out = append(out, wireCardWallet{
			ID: s.cfg.InfinityWalletID, AccountID: s.cfg.AccountID, CreateTime: msString(s.created), Currency: "USD",
			WalletType: 0, ObjectType: objectInfinity, Available: avail.String(),
		})
	}
	c.ok(newList(out, len(out)))
}

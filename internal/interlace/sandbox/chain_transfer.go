package sandbox

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// POST /open-api/v3/cryptoconnect/transfers/fee-and-quota — envelope B.
func (s *Server) handleFeeAndQuota(c *call) {
	var req wireFeeQuotaReq
	if !c.decode(&req) || !c.begin() {
		return
	}
	if req.AccountID != "" {
		if e := s.checkAccount(req.AccountID); e != nil {
			c.fail(e)
			return
		}
	}
	cur := strings.ToUpper(strings.TrimSpace(req.Amount.Currency))
	if !isStablecoin(cur) {
		c.fail(invalidf("amount.currency %q is not supported (USDC, USDT or WUSD)", req.Amount.Currency))
		return
	}
	if req.Amount.Amount != "" {
		if _, e := req.Amount.Amount.parse("amount.amount", currencyPlaces[cur]); e != nil {
			c.fail(e)
			return
		}
	}
	c.ok(wireFeeQuota{
		CrossChainQuota:   "10000",
		CrossChainFeeRate: "0.003",
		CrossChainAmount:  "0",
		Fees:              []wireGasFee{{Amount: s.cfg.GasFee.String(), Currency: cur, Type: "GAS"}},
	})
}

// POST /open-api/v3/cryptoconnect/transfers — a withdrawal, envelope B, idempotent on idempotencyKey: a repeat
// answers the same transfer (in its current state) and moves nothing. amount + gas leave the wallet at once;
// the transfer is Pending without a hash and becomes Closed with one after WithdrawalDelay.
func (s *Server) handleCreateChainTransfer(c *call) {
	var req wireChainTransferReq
	if !c.decode(&req) {
		return
	}
	c.track(req.IdempotencyKey, c.r.Header.Get("Idempotency-Key"))
	if !c.begin(req.IdempotencyKey, c.r.Header.Get("Idempotency-Key")) {
		return
	}
	rec, conflict, e := s.createChainTransfer(c, &req)
	if conflict {
		s.countConflict(req.IdempotencyKey)
	}
	if e != nil {
		c.fail(e)
		return
	}
	c.ok(rec.wire(s.cfg.AccountID))
}

func (s *Server) createChainTransfer(c *call, req *wireChainTransferReq) (*chainRec, bool, *apiError) {
	if req.IdempotencyKey == "" {
		return nil, false, invalidf("idempotencyKey is required")
	}
	if req.AccountID != "" {
		if e := s.checkAccount(req.AccountID); e != nil {
			return nil, false, e
		}
	}
	switch strings.ToLower(req.Source.Type) {
	case "", "cryptoconnect_wallet", "wallet":
	default:
		return nil, false, invalidf("source.type %q is not supported (cryptoconnect_wallet)", req.Source.Type)
	}
	switch strings.ToLower(req.Destination.Type) {
	case "", "blockchain":
	default:
		return nil, false, invalidf("destination.type %q is not supported (blockchain)", req.Destination.Type)
	}
	if req.Source.ID == "" {
		return nil, false, invalidf("source.id is required")
	}
	chain, address := strings.TrimSpace(req.Destination.Chain), strings.TrimSpace(req.Destination.Address)
	if chain == "" || address == "" {
		return nil, false, invalidf("destination.chain and destination.address are required")
	}
	cur := strings.ToUpper(strings.TrimSpace(req.Amount.Currency))
	if !isStablecoin(cur) {
		return nil, false, invalidf("amount.currency %q is not supported (USDC, USDT or WUSD)", req.Amount.Currency)
	}
	amount, e := req.Amount.Amount.parse("amount.amount", currencyPlaces[cur])
	if e != nil {
		return nil, false, e
	}
	fee := s.cfg.GasFee
	total := amount.Add(fee)
	fp := fmt.Sprintf("%s|%s|%s|%s|%s", req.Source.ID, chain, strings.ToLower(address), cur, amount)

	now := time.Now()
	s.mu.Lock()
	if idx, ok := s.chainByKey[req.IdempotencyKey]; ok {
		r := s.chains[idx]
		if s.faults.Load().DuplicateAnswer == DuplicateError {
			c.note(AnswerDuplicateError)
			s.mu.Unlock()
			return nil, r.fingerprint != fp, duplicateErr()
		}
		c.note(AnswerReplayed)
		s.mu.Unlock()
		return r, r.fingerprint != fp, nil
	}
	w := s.resolveWalletLocked(req.Source.ID)
	if w == nil {
		s.mu.Unlock()
		return nil, false, notFoundf("CryptoConnect wallet %q does not exist", req.Source.ID)
	}
	bal := w.balance(cur)
	if bal.LessThan(total) {
		s.mu.Unlock()
		return nil, false, insufficientf("insufficient balance: wallet %s holds %s %s, %s + %s gas requested", w.id, bal, cur, amount, fee)
	}
	w.setBalance(cur, bal.Sub(total))
	rec := &chainRec{
		BlockchainTransfer: BlockchainTransfer{
			ID: s.rng.uuid(), IdempotencyKey: req.IdempotencyKey, WalletID: w.id, Chain: chain, Address: address,
			Currency: cur, Amount: amount, Fee: fee, Status: "Pending", CreateTime: msString(now),
			UpdateTime: msString(now),
		},
		stats:       &deliveryStats{},
		source:      wireEndpoint{Type: "cryptoconnect_wallet", ID: req.Source.ID},
		destination: wireEndpoint{Type: "blockchain", Chain: chain, Address: address},
		fingerprint: fp,
	}
	s.chains = append(s.chains, rec)
	idx := len(s.chains) - 1
	s.chainByKey[rec.IdempotencyKey] = idx
	xr := xref{idx: idx, createMs: now.UnixMilli()}
	s.addTransferLocked(xr)
	s.transferByID[rec.ID] = xr
	c.note(AnswerApplied)
	s.mu.Unlock()

	var pending *notification
	if s.cfg.WebhookURL != "" {
		pending = s.newNotification(EventTransferCreated, rec.wire(s.cfg.AccountID), rec.stats)
		s.release(pending)
	}
	// A runtime timer, not a scheduler job: settlement must not queue behind slow webhook deliveries.
	time.AfterFunc(s.cfg.WithdrawalDelay, func() { s.settle(idx, pending) })
	return rec, false, nil
}

// settle closes a Pending withdrawal: the chain has confirmed it, so it gets its transaction hash. The record is
// replaced, not mutated, so snapshots taken earlier stay consistent.
func (s *Server) settle(idx int, pending *notification) {
	if s.ctx.Err() != nil {
		return // closed
	}
	hash := s.rng.hex0x(64)
	now := time.Now()
	s.mu.Lock()
	old := s.chains[idx]
	nr := *old
	nr.Status = "Closed"
	nr.TransactionHash = hash
	nr.UpdateTime = msString(now)
	s.chains[idx] = &nr
	s.mu.Unlock()
	if s.cfg.WebhookURL != "" {
		s.releaseAfter(pending, s.newNotification(EventTransferUpdated, nr.wire(s.cfg.AccountID), nr.stats))
	}
}

func (c *chainRec) wire(accountID string) wireCryptoTransfer {
	return wireCryptoTransfer{
		ID:              c.ID,
		AccountID:       accountID,
		IdempotencyKey:  c.IdempotencyKey,
		Source:          c.source,
		Destination:     c.destination,
		Amount:          wireAmount{Amount: c.Amount.String(), Currency: c.Currency},
		Fees:            []wireGasFee{{Amount: c.Fee.String(), Currency: c.Currency, Type: "GAS"}},
		Status:          c.Status,
		TransactionHash: c.TransactionHash,
		CreateTime:      c.CreateTime,
		UpdateTime:      c.UpdateTime,
	}
}

// transferWireLocked renders a deposit or a withdrawal. Caller holds s.mu.
func (s *Server) transferWireLocked(xr xref) wireCryptoTransfer {
	if xr.deposit {
		d := s.deposits[xr.idx]
		return d.wire(d.Status, d.updated)
	}
	return s.chains[xr.idx].wire(s.cfg.AccountID)
}

// GET /open-api/v3/cryptoconnect/transfers/{id} — a deposit or a withdrawal, envelope B.
func (s *Server) handleGetTransfer(c *call) {
	if !c.begin() {
		return
	}
	id := c.r.PathValue("id")
	s.mu.Lock()
	xr, ok := s.transferByID[id]
	var out wireCryptoTransfer
	if ok {
		out = s.transferWireLocked(xr)
	}
	s.mu.Unlock()
	if !ok {
		c.fail(notFoundf("transfer %q does not exist", id))
		return
	}
	c.ok(out)
}

// Interlace's documented limits of the list endpoint.
const (
	defaultListLimit = 10
	maxListLimit     = 100
)

// GET /open-api/v3/cryptoconnect/transfers?accountId=&walletId=&startTime=&endTime=&page=&limit= — deposits and
// withdrawals, newest first, as {list, total} in envelope B, with Interlace's documented limits:
//   - accountId is required (business error without it); another account's list is empty;
//   - limit is 1..100, default 10; page starts at 1. Anything else (0, 101, junk) is a business error, never
//     clamped, so a client that pages wrongly finds out;
//   - startTime and endTime are ms epochs filtering on createTime as the half-open window
//     startTime <= createTime < endTime (the documentation is silent; half-open windows tile without overlap
//     or gap), each optional; startTime > endTime is an error;
//   - walletId keeps the transfers of one CryptoConnect wallet;
//   - total is the number of matching transfers, as a string like every v3 list.
func (s *Server) handleListTransfers(c *call) {
	if !c.begin() {
		return
	}
	q := c.r.URL.Query()
	acct := q.Get("accountId")
	if acct == "" {
		c.fail(invalidf("accountId is required"))
		return
	}
	page, e := intParam(q, "page", 1, 1, 1<<30)
	if e != nil {
		c.fail(e)
		return
	}
	limit, e := intParam(q, "limit", defaultListLimit, 1, maxListLimit)
	if e != nil {
		c.fail(e)
		return
	}
	start, e := intParam(q, "startTime", 0, 0, 1<<53)
	if e != nil {
		c.fail(e)
		return
	}
	end, e := intParam(q, "endTime", 1<<53, 0, 1<<53)
	if e != nil {
		c.fail(e)
		return
	}
	if start > end {
		c.fail(invalidf("startTime %d is after endTime %d", start, end))
		return
	}
	if acct != s.cfg.AccountID {
		c.ok(newList[wireCryptoTransfer](nil, 0))
		return
	}
	walletID := q.Get("walletId")
	skip := (page - 1) * limit
	var out []wireCryptoTransfer
	total := 0
	s.mu.Lock()
	// s.transfers is ordered by createTime, so the window is one slice found by
	// binary search: a list call costs the page, not the whole history (the
	// bench runs this sandbox in-process, where a scan would be ours to pay).
	lo := sort.Search(len(s.transfers), func(i int) bool { return s.transfers[i].createMs >= int64(start) })
	hi := sort.Search(len(s.transfers), func(i int) bool { return s.transfers[i].createMs >= int64(end) })
	if walletID == "" {
		total = hi - lo
		for i := hi - 1 - skip; i >= lo && len(out) < limit; i-- {
			out = append(out, s.transferWireLocked(s.transfers[i]))
		}
	} else {
		for i := hi - 1; i >= lo; i-- {
			xr := s.transfers[i]
			var wid string
			if xr.deposit {
				wid = s.deposits[xr.idx].WalletID
			} else {
				wid = s.chains[xr.idx].WalletID
			}
			if wid != walletID {
				continue
			}
			if total >= skip && len(out) < limit {
				out = append(out, s.transferWireLocked(xr))
			}
			total++
		}
	}
	s.mu.Unlock()
	c.ok(newList(out, total))
}

// addTransferLocked files xr in s.transfers, which stays ordered by createTime
// (ties in arrival order): callers take their clock before the lock, so the
// newest may arrive a moment behind one stamped later.
func (s *Server) addTransferLocked(xr xref) {
	i := len(s.transfers)
	for i > 0 && s.transfers[i-1].createMs > xr.createMs {
		i--
	}
	s.transfers = slices.Insert(s.transfers, i, xr)
}

// intParam reads an optional integer query parameter within [lo, hi]; absent means def. Out of range or junk
// is a business error: Interlace's limits are enforced, not clamped.
func intParam(q url.Values, name string, def, lo, hi int) (int, *apiError) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalidf("%s must be an integer between %d and %d, got %q", name, lo, hi, v)
	}
	return n, nil
}

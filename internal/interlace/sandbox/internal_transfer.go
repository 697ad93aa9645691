package sandbox

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Business types of an internal transfer side.
const (
	businessInfinity       = 0
	businessCryptoConnect  = 2
	feeTypeNone            = 0
	feeTypeCryptoToFiat    = 6 // the guide's fee type on a CryptoConnect -> Infinity transfer
	accountTransferSameAcc = "SAME_ACCOUNT"
)

// POST /open-api/v3/business/transfer/internal
//
// Idempotent on clientTransactionId and on the Idempotency-Key header: a repeat answers the transfer in its
// current state (PENDING, CLOSED or FAILED; a CLOSED answer is the first answer byte for byte) and moves
// nothing, or, with Faults.DuplicateAnswer "error", code 100409. Only accepted transfers are remembered
// (Interlace replays "the result of the first successful request"), so a transfer refused for lack of funds
// can succeed later with the same id; a PENDING transfer that ended FAILED is remembered.
func (s *Server) handleInternalTransfer(c *call) {
	var req wireInternalTransferReq
	if !c.decode(&req) {
		return
	}
	hdr := c.r.Header.Get("Idempotency-Key")
	c.track(req.ClientTransactionID, hdr)
	if !c.begin(req.ClientTransactionID, hdr) {
		return
	}
	body, conflictKey, e := s.internalTransfer(c, &req, hdr)
	if conflictKey != "" {
		s.countConflict(conflictKey)
	}
	if e != nil {
		c.fail(e)
		return
	}
	c.write(200, body)
}

// Internal transfer statuses as answered (and in the ledger).
const (
	internalClosed  = "CLOSED"
	internalPending = "PENDING"
	internalFailed  = "FAILED"
)

type transferPlan struct {
	toInfinity bool // CryptoConnect -> Infinity; otherwise Infinity -> CryptoConnect
	fromCur    string
	toCur      string
	amount     decimal.Decimal
}

func (s *Server) planInternalTransfer(req *wireInternalTransferReq) (transferPlan, *apiError) {
	var p transferPlan
	if req.ClientTransactionID == "" {
		return p, invalidf("clientTransactionId is required")
	}
	if e := s.checkAccount(req.AccountID); e != nil {
		return p, e
	}
	if req.From.BusinessType == nil || req.To.BusinessType == nil {
		return p, invalidf("from.businessType and to.businessType are required")
	}
	if req.From.ID == "" || req.To.ID == "" {
		return p, invalidf("from.id and to.id are required")
	}
	p.fromCur = strings.ToUpper(strings.TrimSpace(req.From.Currency))
	p.toCur = strings.ToUpper(strings.TrimSpace(req.To.Currency))
	places, ok := currencyPlaces[p.fromCur]
	if !ok {
		return p, invalidf("from.currency %q is not supported", req.From.Currency)
	}
	if _, ok := currencyPlaces[p.toCur]; !ok {
		return p, invalidf("to.currency %q is not supported", req.To.Currency)
	}
	amount, e := req.Amount.parse("amount", places)
	if e != nil {
		return p, e
	}
	p.amount = amount
	switch fb, tb := *req.From.BusinessType, *req.To.BusinessType; {
	case fb == businessCryptoConnect && tb == businessInfinity:
		if p.toCur != "USD" {
			return p, invalidf("the Infinity Account holds USD only, to.currency is %q", req.To.Currency)
		}
		p.toInfinity = true
	case fb == businessInfinity && tb == businessCryptoConnect:
		if p.fromCur != "USD" || p.toCur != "USD" {
			return p, invalidf("Infinity Account to CryptoConnect supports fiat (USD) only, not %s -> %s", p.fromCur, p.toCur)
		}
	default:
		return p, invalidf("unsupported transfer direction: businessType %d -> %d", fb, tb)
	}
	return p, nil
}

func internalFingerprint(req *wireInternalTransferReq, amount decimal.Decimal) string {
	return fmt.Sprintf("%s|%d|%s|%s|%d|%s|%s|%s", req.AccountID,
		*req.From.BusinessType, req.From.ID, strings.ToUpper(req.From.Currency),
		*req.To.BusinessType, req.To.ID, strings.ToUpper(req.To.Currency), amount.String())
}

// internalTransfer applies the transfer (or, under Faults.PendingRate, accepts it PENDING), or answers a known
// key. It returns the answer's body, and the key whose replay differed from the first request, if any, so the
// caller can record it outside the ledger lock. The answer's class is noted on c inside the critical section.
func (s *Server) internalTransfer(c *call, req *wireInternalTransferReq, hdrKey string) ([]byte, string, *apiError) {
	p, e := s.planInternalTransfer(req)
	if e != nil {
		return nil, "", e
	}
	fp := internalFingerprint(req, p.amount)
	f := s.faults.Load()

	s.mu.Lock()
	defer s.mu.Unlock() // in-memory work only below: no I/O, no sleeping
	idx, known := s.internalByCTID[req.ClientTransactionID]
	key := req.ClientTransactionID
	if !known && hdrKey != "" {
		idx, known = s.internalByHdr[hdrKey]
		key = hdrKey
	}
	if known {
		r := s.internals[idx]
		ck := conflictKey(r.fingerprint, fp, key)
		if f.DuplicateAnswer == DuplicateError {
			c.note(AnswerDuplicateError)
			return nil, ck, duplicateErr()
		}
		if r.Status == internalPending {
			c.note(AnswerPending)
		} else {
			c.note(AnswerReplayed)
		}
		return r.body, ck, nil
	}

	var w *wallet
	if p.toInfinity {
		if w = s.resolveWalletLocked(req.From.ID); w == nil {
			return nil, "", notFoundf("CryptoConnect wallet %q does not exist", req.From.ID)
		}
		if e := s.checkInfinityIDLocked("to.id", req.To.ID); e != nil {
			return nil, "", e
		}
	} else {
		if e := s.checkInfinityIDLocked("from.id", req.From.ID); e != nil {
			return nil, "", e
		}
		if w = s.resolveWalletLocked(req.To.ID); w == nil {
			return nil, "", notFoundf("CryptoConnect wallet %q does not exist", req.To.ID)
		}
	}
	fee, credited := decimal.Zero, p.amount
	if p.toInfinity && isStablecoin(p.fromCur) {
		// Rounded DOWN to 6 places (the stablecoin precision), so the fee never exceeds the configured rate
		// and amount = fee + credited holds exactly: nothing is created or lost by rounding.
		fee = p.amount.Mul(s.cfg.TransferFeeRate).RoundDown(6)
		credited = p.amount.Sub(fee)
	}

	now := time.Now()
	rec := &internalRec{
		InternalTransfer: InternalTransfer{
			ID:                  s.ids.next(now),
			ClientTransactionID: req.ClientTransactionID,
			IdempotencyKey:      hdrKey,
			From:                TransferSide{BusinessType: *req.From.BusinessType, ID: req.From.ID, Currency: p.fromCur},
			To:                  TransferSide{BusinessType: *req.To.BusinessType, ID: req.To.ID, Currency: p.toCur},
			WalletID:            w.id,
			Amount:              p.amount,
			Fee:                 fee,
			Credited:            credited,
			CreateTime:          msString(now),
			UpdateTime:          msString(now),
		},
		idx:         len(s.internals),
		fingerprint: fp,
		plan:        p,
	}
	pending := f.PendingRate > 0 && s.rng.float64() < f.PendingRate
	if pending {
		// Nothing moves and no balance is checked until the transfer is applied.
		rec.Status = internalPending
	} else {
		if e := s.applyInternalLocked(rec, w); e != nil {
			return nil, "", e
		}
		rec.Status, rec.Applied = internalClosed, true
	}
	rec.fromXferID, rec.toXferID = s.rng.uuid(), s.rng.uuid()
	rec.body = s.internalTransferBody(rec)
	s.internals = append(s.internals, rec)
	s.internalByCTID[rec.ClientTransactionID] = rec.idx
	if hdrKey != "" {
		s.internalByHdr[hdrKey] = rec.idx
	}
	if pending {
		c.note(AnswerPending)
		// A runtime timer, like withdrawal settlement: it must not queue behind webhook deliveries.
		time.AfterFunc(time.Duration(f.PendingMs)*time.Millisecond, func() { s.applyPending(rec.idx) })
	} else {
		c.note(AnswerApplied)
	}
	return rec.body, "", nil
}

// checkInfinityIDLocked accepts only the Infinity Account's balance id as the Infinity side of a transfer. The
// Budget balance (listed by cards/wallets under Faults.BudgetBalance) is refused with its own message, so a
// client that picked it learns why.
func (s *Server) checkInfinityIDLocked(field, id string) *apiError {
	switch id {
	case s.cfg.InfinityWalletID:
		return nil
	case s.cfg.BudgetWalletID:
		return invalidf("%s %q is a Budget balance, not the Infinity Account: internal transfers with CryptoConnect use the Infinity Account balance (cards/wallets objectType 0)", field, id)
	}
	return notFoundf("Infinity Account balance %q does not exist", id)
}

// applyInternalLocked checks the paying balance and moves the money of rec. Caller holds s.mu.
func (s *Server) applyInternalLocked(rec *internalRec, w *wallet) *apiError {
	if rec.plan.toInfinity {
		bal := w.balance(rec.From.Currency)
		if bal.LessThan(rec.Amount) {
			return insufficientf("insufficient balance: wallet %s holds %s %s, %s requested", w.id, bal, rec.From.Currency, rec.Amount)
		}
		w.setBalance(rec.From.Currency, bal.Sub(rec.Amount))
		s.infinity = s.infinity.Add(rec.Credited)
		return nil
	}
	if s.infinity.LessThan(rec.Amount) {
		return insufficientf("insufficient balance: Infinity Account holds %s USD, %s requested", s.infinity, rec.Amount)
	}
	s.infinity = s.infinity.Sub(rec.Amount)
	w.setBalance("USD", w.balance("USD").Add(rec.Amount))
	s.lastUSDFunded = w
	return nil
}

// applyPending settles a PENDING internal transfer: CLOSED if the paying balance holds the amount now, FAILED
// (nothing moved, the reason kept) if not. The record is replaced, not mutated, so earlier snapshots stay
// consistent. After Close, pending transfers stay PENDING.
func (s *Server) applyPending(idx int) {
	if s.ctx.Err() != nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	nr := *s.internals[idx]
	if e := s.applyInternalLocked(&nr, s.wallets[nr.WalletID]); e != nil {
		nr.Status, nr.Reason = internalFailed, e.msg
	} else {
		nr.Status, nr.Applied = internalClosed, true
	}
	nr.UpdateTime = msString(now)
	nr.body = s.internalTransferBody(&nr)
	s.internals[idx] = &nr
}

func conflictKey(first, now, key string) string {
	if first != now {
		return key
	}
	return ""
}

// internalTransferBody renders the guide's response for the record's status: `from` with a numeric rate and
// its fees, `to` without a rate. The legs' transferIds stay the same across statuses.
func (s *Server) internalTransferBody(rec *internalRec) []byte {
	acct := s.cfg.AccountID
	from := wireTransferSide{
		ID: rec.From.ID, TransferID: rec.fromXferID, AccountID: acct, Amount: rec.Amount.String(), Rate: "1",
		Currency: rec.From.Currency, BusinessType: rec.From.BusinessType,
	}
	to := wireTransferSide{
		ID: rec.To.ID, TransferID: rec.toXferID, AccountID: acct, Amount: rec.Credited.String(),
		Currency: rec.To.Currency, BusinessType: rec.To.BusinessType,
	}
	if rec.plan.toInfinity {
		from.Fees = []wireTransferFee{{FeeType: feeTypeCryptoToFiat, Amount: rec.Fee.String(), Currency: rec.From.Currency}}
		if !isStablecoin(rec.From.Currency) {
			from.Fees = []wireTransferFee{{FeeType: feeTypeNone, Amount: "0", Currency: rec.From.Currency}}
		}
		to.Fees = []wireTransferFee{{FeeType: feeTypeNone, Amount: "0", Currency: rec.To.Currency}}
	} else {
		from.Fees = []wireTransferFee{{FeeType: feeTypeNone, Amount: "0", Currency: rec.From.Currency}}
		to.Fees = []wireTransferFee{}
	}
	b, err := successBody(familyA, wireInternalTransfer{
		ClientTransactionID: rec.ClientTransactionID,
		ID:                  rec.ID,
		Status:              rec.Status,
		AccountTransferType: accountTransferSameAcc,
		From:                from,
		To:                  to,
	})
	if err != nil {
		panic("sandbox: encode internal transfer: " + err.Error()) // our own struct; cannot fail
	}
	return b
}

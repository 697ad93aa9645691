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
// Idempotent on clientTransactionId and on the Idempotency-Key header: a repeat returns the first answer byte
// for byte and moves nothing. Only successes are remembered (Interlace replays "the result of the first
// successful request"), so a transfer refused for lack of funds can succeed later with the same id.
func (s *Server) handleInternalTransfer(c *call) {
	var req wireInternalTransferReq
	if !c.decode(&req) {
		return
	}
	hdr := c.r.Header.Get("Idempotency-Key")
	if !c.begin(req.ClientTransactionID, hdr) {
		return
	}
	rec, conflictKey, e := s.internalTransfer(&req, hdr)
	if conflictKey != "" {
		s.countConflict(conflictKey)
	}
	if e != nil {
		c.fail(e)
		return
	}
	c.write(200, rec.body)
}

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

// internalTransfer applies the transfer, or returns the first result for a known key. It returns the key whose
// replay differed from the first request, if any, so the caller can record it outside the ledger lock.
func (s *Server) internalTransfer(req *wireInternalTransferReq, hdrKey string) (*internalRec, string, *apiError) {
	p, e := s.planInternalTransfer(req)
	if e != nil {
		return nil, "", e
	}
	fp := internalFingerprint(req, p.amount)

	s.mu.Lock()
	defer s.mu.Unlock() // in-memory work only below: no I/O, no sleeping
	if r := s.internalByCTID[req.ClientTransactionID]; r != nil {
		return r, conflictKey(r.fingerprint, fp, req.ClientTransactionID), nil
	}
	if hdrKey != "" {
		if r := s.internalByHdr[hdrKey]; r != nil {
			return r, conflictKey(r.fingerprint, fp, hdrKey), nil
		}
	}

	var (
		w        *wallet
		fee      = decimal.Zero
		credited = p.amount
	)
	if p.toInfinity {
		if w = s.resolveWalletLocked(req.From.ID); w == nil {
			return nil, "", notFoundf("CryptoConnect wallet %q does not exist", req.From.ID)
		}
		if req.To.ID != s.cfg.InfinityWalletID {
			return nil, "", notFoundf("Infinity Account balance %q does not exist", req.To.ID)
		}
		bal := w.balance(p.fromCur)
		if bal.LessThan(p.amount) {
			return nil, "", insufficientf("insufficient balance: wallet %s holds %s %s, %s requested", w.id, bal, p.fromCur, p.amount)
		}
		if isStablecoin(p.fromCur) {
			// Rounded DOWN to 6 places (the stablecoin precision), so the fee never exceeds the configured rate
			// and amount = fee + credited holds exactly: nothing is created or lost by rounding.
			fee = p.amount.Mul(s.cfg.TransferFeeRate).RoundDown(6)
			credited = p.amount.Sub(fee)
		}
		w.setBalance(p.fromCur, bal.Sub(p.amount))
		s.infinity = s.infinity.Add(credited)
	} else {
		if req.From.ID != s.cfg.InfinityWalletID {
			return nil, "", notFoundf("Infinity Account balance %q does not exist", req.From.ID)
		}
		if w = s.resolveWalletLocked(req.To.ID); w == nil {
			return nil, "", notFoundf("CryptoConnect wallet %q does not exist", req.To.ID)
		}
		if s.infinity.LessThan(p.amount) {
			return nil, "", insufficientf("insufficient balance: Infinity Account holds %s USD, %s requested", s.infinity, p.amount)
		}
		s.infinity = s.infinity.Sub(p.amount)
		w.setBalance("USD", w.balance("USD").Add(p.amount))
		s.lastUSDFunded = w
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
		},
		fingerprint: fp,
	}
	rec.body = s.internalTransferBody(rec, p)
	s.internals = append(s.internals, rec)
	s.internalByCTID[rec.ClientTransactionID] = rec
	if hdrKey != "" {
		s.internalByHdr[hdrKey] = rec
	}
	return rec, "", nil
}

func conflictKey(first, now, key string) string {
	if first != now {
		return key
	}
	return ""
}

// internalTransferBody renders the guide's response: `from` with a numeric rate and its fees, `to` without a
// rate. Caller holds s.mu (for the random transfer ids).
func (s *Server) internalTransferBody(rec *internalRec, p transferPlan) []byte {
	acct := s.cfg.AccountID
	from := wireTransferSide{
		ID: rec.From.ID, TransferID: s.rng.uuid(), AccountID: acct, Amount: rec.Amount.String(), Rate: "1",
		Currency: rec.From.Currency, BusinessType: rec.From.BusinessType,
	}
	to := wireTransferSide{
		ID: rec.To.ID, TransferID: s.rng.uuid(), AccountID: acct, Amount: rec.Credited.String(),
		Currency: rec.To.Currency, BusinessType: rec.To.BusinessType,
	}
	if p.toInfinity {
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
		Status:              "CLOSED",
		AccountTransferType: accountTransferSameAcc,
		From:                from,
		To:                  to,
	})
	if err != nil {
		panic("sandbox: encode internal transfer: " + err.Error()) // our own struct; cannot fail
	}
	return b
}

package sandbox

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

type quote struct {
	base, quote, side string
	rfqAmount         decimal.Decimal // = quoteAmount: only rfqCurrency == quoteCurrency (USD) is supported
	fee               decimal.Decimal
	baseAmount        decimal.Decimal
}

// quoteFor prices a BUY of a stablecoin with USD: fee = rfqAmount*TradeFeeRate and baseAmount =
// (quoteAmount - fee)*TradeRate, both rounded DOWN to 6 places (the stablecoin precision) so the sandbox never
// credits more than it was paid. With the defaults nothing is rounded: 10 USD -> fee 0.05, base 9.95.
func (s *Server) quoteFor(req *wireQuoteReq) (quote, *apiError) {
	var q quote
	if e := s.checkAccount(req.AccountID); e != nil {
		return q, e
	}
	q.base = strings.ToUpper(strings.TrimSpace(req.BaseCurrency))
	q.quote = strings.ToUpper(strings.TrimSpace(req.QuoteCurrency))
	q.side = strings.ToUpper(strings.TrimSpace(req.Side))
	rfqCur := strings.ToUpper(strings.TrimSpace(req.RFQCurrency))
	if q.side != "BUY" {
		return q, invalidf("side %q is not supported by the sandbox (BUY only)", req.Side)
	}
	if !isStablecoin(q.base) {
		return q, invalidf("baseCurrency %q is not supported (USDC, USDT or WUSD)", req.BaseCurrency)
	}
	if q.quote != "USD" || rfqCur != "USD" {
		return q, invalidf("quoteCurrency and rfqCurrency must be USD, got %q and %q", req.QuoteCurrency, req.RFQCurrency)
	}
	amt, e := req.RFQAmount.parse("rfqAmount", currencyPlaces["USD"])
	if e != nil {
		return q, e
	}
	q.rfqAmount = amt
	q.fee = amt.Mul(s.cfg.TradeFeeRate).RoundDown(6)
	q.baseAmount = amt.Sub(q.fee).Mul(s.cfg.TradeRate).RoundDown(6)
	if !q.baseAmount.IsPositive() {
		return q, invalidf("rfqAmount %s is too small to buy anything after fees", amt)
	}
	return q, nil
}

// POST /open-api/v3/cryptoconnect/convert/estimate-quote — the trade's numbers, nothing moves.
func (s *Server) handleEstimateQuote(c *call) {
	var req wireQuoteReq
	if !c.decode(&req) || !c.begin() {
		return
	}
	q, e := s.quoteFor(&req)
	if e != nil {
		c.fail(e)
		return
	}
	c.ok(wireEstimateQuote{
		ID:            s.rng.uuid(),
		QuoteTime:     msString(time.Now()),
		BaseCurrency:  q.base,
		BaseAmount:    q.baseAmount.String(),
		QuoteCurrency: q.quote,
		QuoteAmount:   q.rfqAmount.String(),
		Side:          q.side,
		Rate:          s.cfg.TradeRate.String(),
		RFQAmount:     q.rfqAmount.String(),
		RFQCurrency:   "USD",
		Fee:           q.fee.String(),
		FeeCurrency:   "USD",
		TTLMs:         "60000",
	})
}

// POST /open-api/v3/cryptoconnect/convert/trades — idempotent on referenceId. The USD comes from the wallet
// most recently funded with USD by an internal transfer (the redemption's step 1), else the master wallet, else
// any wallet holding enough; the crypto lands in the same wallet, answered as baseWalletId.
func (s *Server) handleCreateTrade(c *call) {
	var req wireQuoteReq
	if !c.decode(&req) {
		return
	}
	c.track(req.ReferenceID, c.r.Header.Get("Idempotency-Key"))
	if !c.begin(req.ReferenceID, c.r.Header.Get("Idempotency-Key")) {
		return
	}
	rec, conflict, e := s.createTrade(c, &req)
	if conflict {
		s.countConflict(req.ReferenceID)
	}
	if e != nil {
		c.fail(e)
		return
	}
	c.write(200, rec.body)
}

func (s *Server) createTrade(c *call, req *wireQuoteReq) (*tradeRec, bool, *apiError) {
	if req.ReferenceID == "" {
		return nil, false, invalidf("referenceId is required")
	}
	q, e := s.quoteFor(req)
	if e != nil {
		return nil, false, e
	}
	fp := fmt.Sprintf("%s|%s|%s|%s", req.AccountID, q.base, q.side, q.rfqAmount)

	s.mu.Lock()
	defer s.mu.Unlock() // in-memory only
	if r := s.tradesByRef[req.ReferenceID]; r != nil {
		// Trades always replay (Faults.DuplicateAnswer covers transfers only, as contract §12 says).
		c.note(AnswerReplayed)
		return r, r.fingerprint != fp, nil
	}
	w := s.usdPayerLocked(q.rfqAmount)
	if w == nil {
		return nil, false, insufficientf("insufficient balance: no CryptoConnect wallet holds %s USD", q.rfqAmount)
	}
	w.setBalance("USD", w.balance("USD").Sub(q.rfqAmount))
	w.setBalance(q.base, w.balance(q.base).Add(q.baseAmount))

	now := time.Now()
	rec := &tradeRec{
		Trade: Trade{
			ID: s.rng.uuid(), ReferenceID: req.ReferenceID, WalletID: w.id, Symbol: q.base + "-" + q.quote,
			Side: q.side, BaseCurrency: q.base, BaseAmount: q.baseAmount, QuoteCurrency: q.quote,
			QuoteAmount: q.rfqAmount, Rate: s.cfg.TradeRate, Fee: q.fee, FeeCurrency: "USD", Status: "COMPLETE",
			CreateTime: msString(now),
		},
		fingerprint: fp,
	}
	b, err := successBody(familyA, wireTrade{
		ID: rec.ID, AccountID: s.cfg.AccountID, Symbol: rec.Symbol, BaseWalletID: rec.WalletID,
		BaseCurrency: rec.BaseCurrency, BaseAmount: rec.BaseAmount.String(), QuoteCurrency: rec.QuoteCurrency,
		QuoteAmount: rec.QuoteAmount.String(), Side: rec.Side, Rate: rec.Rate.String(), Fee: rec.Fee.String(),
		FeeCurrency: rec.FeeCurrency, Status: rec.Status, ReferenceID: rec.ReferenceID, CreateTime: rec.CreateTime,
		CompleteTime: rec.CreateTime,
	})
	if err != nil {
		panic("sandbox: encode trade: " + err.Error()) // our own struct; cannot fail
	}
	rec.body = b
	s.trades = append(s.trades, rec)
	s.tradesByRef[rec.ReferenceID] = rec
	c.note(AnswerApplied)
	return rec, false, nil
}

// usdPayerLocked picks the wallet a trade debits. Caller holds s.mu.
func (s *Server) usdPayerLocked(amount decimal.Decimal) *wallet {
	for _, w := range []*wallet{s.lastUSDFunded, s.wallets[s.cfg.MasterWalletID]} {
		if w != nil && w.balance("USD").GreaterThanOrEqual(amount) {
			return w
		}
	}
	for _, w := range s.walletOrder {
		if w.balance("USD").GreaterThanOrEqual(amount) {
			return w
		}
	}
	return nil
}

// GET /open-api/v3/cryptoconnect/convert/currency-pair?fromCurrency=&toCurrency= — envelope B, as the guide's
// converting overview shows. Supported: USD <-> USDC/USDT/WUSD and USDC <-> USDT.
func (s *Server) handleCurrencyPair(c *call) {
	if !c.begin() {
		return
	}
	q := c.r.URL.Query()
	from := strings.ToUpper(q.Get("fromCurrency"))
	to := strings.ToUpper(q.Get("toCurrency"))
	var base, quoteCur string
	switch {
	case from == "USD" && isStablecoin(to):
		base, quoteCur = to, from
	case to == "USD" && isStablecoin(from):
		base, quoteCur = from, to
	case (from == "USDC" && to == "USDT") || (from == "USDT" && to == "USDC"):
		base, quoteCur = "USDT", "USDC"
	default:
		c.fail(invalidf("currency pair %q -> %q is not supported", q.Get("fromCurrency"), q.Get("toCurrency")))
		return
	}
	c.ok(wireCurrencyPair{Symbol: base + "-" + quoteCur, BaseCurrency: base, BaseMin: "1", QuoteCurrency: quoteCur, QuoteMin: "1"})
}

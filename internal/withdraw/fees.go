package withdraw

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace"
)

// FeeCheck is the guard that stops a withdrawal before money moves. It runs twice:
// on the estimate quote and a fee-and-quota preview before step 1 (so that no USD
// leaves the Infinity Account when the fees are too high), and on the executed
// trade and a fresh fee-and-quota before step 5 (so that nothing leaves the account
// when the trade's numbers turned out worse than quoted).
//
// Rules, in this order (the first that fails stops the withdrawal):
//  1. the conversion rate must be positive, and every fee must be in the source
//     currency (USD) or the withdrawn currency, so that fees can be added up exactly;
//  2. the network fee must be less than the amount bought: it is withheld from
//     it, and what is left is sent ("a fee-and-quota over the amount");
//  3. trade fee + network fee must not exceed MaxRate × Amount ("a quote whose fee
//     exceeds the ceiling"). The sum is taken in the withdrawn currency, USD amounts
//     multiplied by the rate (never divided), so the comparison is exact.
type FeeCheck struct {
	Amount           decimal.Decimal // requested, in SourceCurrency
	SourceCurrency   string
	MaxRate          decimal.Decimal // SWEEPER_MAX_FEE_RATE, frozen into the withdrawal
	TradeFee         decimal.Decimal
	TradeFeeCurrency string
	Rate             decimal.Decimal // units of Currency per unit of SourceCurrency
	Withdrawn        decimal.Decimal // in Currency: the quoted or traded baseAmount
	Currency         string
	NetworkFees      []interlace.Fee
}

// FeeVerdict is the outcome of a FeeCheck. Amounts are in the withdrawn currency.
type FeeVerdict struct {
	NetworkFee decimal.Decimal
	Total      decimal.Decimal // trade fee + network fee
	Limit      decimal.Decimal // MaxRate × Amount
	Stop       string          // why the withdrawal must stop; "" to go on
}

// Evaluate applies the rules.
func (c FeeCheck) Evaluate() FeeVerdict {
	var v FeeVerdict
	src, cur := strings.ToUpper(c.SourceCurrency), strings.ToUpper(c.Currency)
	if !c.Rate.IsPositive() {
		v.Stop = fmt.Sprintf("no usable conversion rate (%s): fees cannot be compared", c.Rate)
		return v
	}
	inCur := func(amount decimal.Decimal, currency string) (decimal.Decimal, bool) {
		switch strings.ToUpper(currency) {
		case cur:
			return amount, true
		case src, "":
			return amount.Mul(c.Rate), true
		}
		return decimal.Zero, amount.IsZero()
	}
	for _, f := range c.NetworkFees {
		a, ok := inCur(f.Amount, f.Currency)
		if !ok {
			v.Stop = fmt.Sprintf("network fee %s %s is in neither %s nor %s", f.Amount, f.Currency, src, cur)
			return v
		}
		v.NetworkFee = v.NetworkFee.Add(a)
	}
	tradeFee, ok := inCur(c.TradeFee, c.TradeFeeCurrency)
	if !ok {
		v.Stop = fmt.Sprintf("trade fee %s %s is in neither %s nor %s", c.TradeFee, c.TradeFeeCurrency, src, cur)
		return v
	}
	if v.NetworkFee.IsNegative() || tradeFee.IsNegative() {
		v.Stop = fmt.Sprintf("negative fee (trade %s, network %s %s)", c.TradeFee, v.NetworkFee, cur)
		return v
	}
	v.Total = tradeFee.Add(v.NetworkFee)
	v.Limit = c.MaxRate.Mul(c.Amount).Mul(c.Rate)
	// The network fee comes out of what the trade buys (contract §11): it must leave something to send.
	if v.NetworkFee.GreaterThanOrEqual(c.Withdrawn) {
		v.Stop = fmt.Sprintf("network fee %s %s leaves nothing of the %s %s bought", v.NetworkFee, cur, c.Withdrawn, cur)
		return v
	}
	if v.Total.GreaterThan(v.Limit) {
		v.Stop = fmt.Sprintf("fees %s %s (trade fee %s %s + network fee %s %s) exceed SWEEPER_MAX_FEE_RATE %s of %s %s (%s %s at rate %s)",
			v.Total, cur, c.TradeFee, orDefault(c.TradeFeeCurrency, src), v.NetworkFee, cur, c.MaxRate, c.Amount, src,
			v.Limit, cur, c.Rate)
	}
	return v
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

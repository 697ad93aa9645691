package withdraw

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace"
)

func TestFeeCheck(t *testing.T) {
	t.Parallel()
	d := decimal.RequireFromString
	gas := func(amount, cur string) []interlace.Fee {
		return []interlace.Fee{{Amount: d(amount), Currency: cur, Type: "GAS"}}
	}
	base := func() FeeCheck {
		// The guide's numbers: 10 USD, fee 0.05 USD, rate 1, 9.95 USDC, gas 0.2 USDC.
		return FeeCheck{Amount: d("10"), SourceCurrency: "USD", MaxRate: d("0.03"), TradeFee: d("0.05"),
			TradeFeeCurrency: "USD", Rate: d("1"), Withdrawn: d("9.95"), Currency: "USDC", NetworkFees: gas("0.2", "USDC")}
	}
	for _, tc := range []struct {
		name      string
		mutate    func(*FeeCheck)
		stop      string // substring of the reason; "" = go on
		total     string
		network   string
		limitWant string
	}{
		{"GuideWithin3Percent", func(*FeeCheck) {}, "", "0.25", "0.2", "0.3"},
		{"ExactlyAtTheLimitPasses", func(c *FeeCheck) { c.MaxRate = d("0.025") }, "", "0.25", "0.2", "0.25"},
		{"OneUnitOverStops", func(c *FeeCheck) { c.MaxRate = d("0.024999") }, "exceed SWEEPER_MAX_FEE_RATE", "", "", ""},
		{"DefaultTwoPercentStopsTheGuideExample", func(c *FeeCheck) { c.MaxRate = d("0.02") }, "fees 0.25 USDC", "", "", ""},
		{"NetworkFeeOverAmount", func(c *FeeCheck) { c.MaxRate = d("0.99"); c.NetworkFees = gas("9.950001", "USDC") },
			"leaves nothing of the 9.95 USDC bought", "", "", ""},
		// The fee is withheld from what the trade bought: a fee equal to it leaves nothing to send.
		{"NetworkFeeEqualToAmountStops", func(c *FeeCheck) {
			c.MaxRate = d("0.999")
			c.TradeFee = decimal.Zero
			c.NetworkFees = gas("9.95", "USDC")
		}, "leaves nothing", "", "", ""},
		{"NetworkFeeJustUnderAmountGoesOn", func(c *FeeCheck) {
			c.MaxRate = d("0.999")
			c.TradeFee = decimal.Zero
			c.NetworkFees = gas("9.94", "USDC")
		}, "", "9.94", "9.94", "9.99"},
		{"FeesInUSDAreConvertedByRate", func(c *FeeCheck) {
			c.Rate = d("0.5")
			c.NetworkFees = gas("0.2", "USD")
		}, "", "0.125", "0.1", "0.15"},
		{"RateAppliesToTheLimitToo", func(c *FeeCheck) { c.Rate = d("2"); c.TradeFee = d("0.1") }, "", "0.4", "0.2", "0.6"},
		{"ForeignFeeCurrency", func(c *FeeCheck) { c.NetworkFees = gas("0.2", "ETH") }, "neither USD nor USDC", "", "", ""},
		{"ZeroForeignFeeIgnored", func(c *FeeCheck) {
			c.NetworkFees = append(gas("0", "ETH"), gas("0.2", "USDC")...)
		}, "", "0.25", "0.2", "0.3"},
		{"NoRate", func(c *FeeCheck) { c.Rate = decimal.Zero }, "no usable conversion rate", "", "", ""},
		{"NegativeFee", func(c *FeeCheck) { c.NetworkFees = gas("-1", "USDC") }, "negative fee", "", "", ""},
		{"TradeFeeInCrypto", func(c *FeeCheck) { c.TradeFeeCurrency = "USDC"; c.Rate = d("2") }, "", "0.25", "0.2", "0.6"},
		{"SeveralGasLines", func(c *FeeCheck) { c.NetworkFees = append(gas("0.1", "USDC"), gas("0.05", "usdc")...) },
			"", "0.2", "0.15", "0.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			v := c.Evaluate()
			if tc.stop == "" {
				if v.Stop != "" {
					t.Fatalf("stopped: %s", v.Stop)
				}
				if !v.Total.Equal(d(tc.total)) || !v.NetworkFee.Equal(d(tc.network)) || !v.Limit.Equal(d(tc.limitWant)) {
					t.Fatalf("total %s network %s limit %s, want %s %s %s", v.Total, v.NetworkFee, v.Limit, tc.total, tc.network, tc.limitWant)
				}
				return
			}
			if !strings.Contains(v.Stop, tc.stop) {
				t.Fatalf("stop %q, want it to mention %q", v.Stop, tc.stop)
			}
		})
	}
}

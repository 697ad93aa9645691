package sweep

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/store"
)

func job() store.Sweep {
	return store.Sweep{DepositID: "d1", ClientTransactionID: uuid.MustParse("5858b107-d1c5-5e8e-b436-886dfa9f5238"), Currency: "USDC",
		Amount: decimal.RequireFromString("10"), FromWalletID: "w1", ToWalletID: "inf1", ToCurrency: "USD"}
}

func TestClassify(t *testing.T) {
	ok := func(status string) *interlace.InternalTransfer {
		return &interlace.InternalTransfer{
			ClientTransactionID: "5858b107-d1c5-5e8e-b436-886dfa9f5238", ID: "1986315238040416258", Status: status,
			From: interlace.TransferLeg{ID: "w1", Amount: decimal.RequireFromString("10"), Currency: "USDC", Fees: []interlace.LegFee{{FeeType: 6, Amount: decimal.RequireFromString("0.05"), Currency: "USDC"}}},
			To:   interlace.TransferLeg{Amount: decimal.RequireFromString("9.95"), Currency: "USD"},
		}
	}
	tests := []struct {
		name    string
		res     *interlace.InternalTransfer
		err     error
		kind    outcomeKind
		attempt string
		reason  string
	}{
		{"Closed", ok("CLOSED"), nil, outcomeSucceeded, store.AttemptSucceeded, ""},
		{"ClosedMixedCase", ok("Closed"), nil, outcomeSucceeded, store.AttemptSucceeded, ""},
		{"PendingIsReplayedLater", ok("PENDING"), nil, outcomeRetry, store.AttemptInProgress, "PENDING"},
		{"FailedStatusStops", ok("FAILED"), nil, outcomeRejected, store.AttemptRejected, "FAILED"},
		{"OtherTransferIsNeverBooked", func() *interlace.InternalTransfer {
			r := ok("CLOSED")
			r.ClientTransactionID = uuid.NewString()
			return r
		}(), nil, outcomeUnresolved, attemptMismatch, "clientTransactionId"},
		{"Retryable5xx", nil, &interlace.APIError{HTTPStatus: 503, Retryable: true}, outcomeRetry, store.AttemptRetry, "503"},
		{"TimeoutNoStatus", nil, &interlace.APIError{Retryable: true, Err: errors.New("context deadline exceeded")}, outcomeRetry, store.AttemptRetry, "deadline"},
		{"BusinessRejection", nil, &interlace.APIError{HTTPStatus: 200, Code: "010023", Message: "insufficient balance"}, outcomeRejected, store.AttemptRejected, "010023 insufficient balance"},
		{"UnknownErrorRetries", nil, errors.New("weird"), outcomeRetry, store.AttemptRetry, "weird"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var att store.Attempt
			o := classify(tc.res, tc.err, &att, job(), time.Hour)
			if o.kind != tc.kind || att.Outcome != tc.attempt || !strings.Contains(o.reason, tc.reason) {
				t.Fatalf("kind %d outcome %q reason %q", o.kind, att.Outcome, o.reason)
			}
			if o.kind == outcomeSucceeded {
				r := o.result
				if r.InterlaceTransferID != "1986315238040416258" || !r.CreditedAmount.Equal(decimal.RequireFromString("9.95")) ||
					r.CreditedCurrency != "USD" || r.FeeAmount == nil || !r.FeeAmount.Equal(decimal.RequireFromString("0.05")) || r.FeeCurrency != "USDC" {
					t.Fatalf("result %+v", r)
				}
			}
		})
	}
	var att store.Attempt
	if o := classify(nil, &interlace.APIError{HTTPStatus: 429, Retryable: true, RetryAfter: 7 * time.Second}, &att, job(), time.Hour); o.retryAfter != 7*time.Second || att.HTTPStatus != 429 {
		t.Fatalf("Retry-After not carried: %+v %+v", o, att)
	}
}

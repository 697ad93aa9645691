package sweep

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// sandboxRig is one real sandbox deposit, recorded final in a fresh database,
// and a worker that sweeps it through the real client over HTTP.
type sandboxRig struct {
	t    *testing.T
	sb   *sandbox.Server
	st   *store.Store
	dep  sandbox.Deposit
	ctid string
	url  string
}

func newSandboxRig(t *testing.T, faults sandbox.Faults) *sandboxRig {
	t.Helper()
	t.Parallel()
	sb := sandbox.New(sandbox.Config{StaticToken: "tok", Logger: zap.NewNop(), Seed: 1})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); srv.Close() })
	dep, err := sb.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: decimal.RequireFromString("10")})
	if err != nil {
		t.Fatal(err)
	}
	sb.SetFaults(faults)
	st := store.New(pgtest.NewPool(t))
	_, err = st.Ingest(context.Background(), store.Delivery{
		NotificationID: "n-" + dep.ID, EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{}`), Outcome: store.OutcomeDeposit,
		TransferID: dep.ID, Deposit: &store.DepositInput{TransferID: dep.ID, AccountID: dep.AccountID, WalletID: dep.WalletID,
			Chain: dep.Chain, Currency: dep.Currency, Amount: dep.Amount, UpstreamStatus: "Closed", Status: store.DepositFinal,
			ClientTransactionID: ids.SweepTransactionID(dep.ID), SweepAccountID: dep.AccountID, ToCurrency: "USD"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &sandboxRig{t: t, sb: sb, st: st, dep: dep, ctid: ids.SweepTransactionID(dep.ID).String(), url: srv.URL}
}

// run runs a worker until the sweep is no longer pending or in flight.
func (r *sandboxRig) run(cfg Config, whileRunning func()) store.LedgerRow {
	r.t.Helper()
	client, err := interlace.New(interlace.Config{BaseURL: r.url, Tokens: interlace.StaticToken("tok"), Timeout: 2 * time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	cfg.Owner, cfg.AccountID, cfg.InfinityWalletID = "w", r.dep.AccountID, sandbox.DefaultInfinityWalletID
	cfg.BaseDelay, cfg.PollInterval = 20*time.Millisecond, 10*time.Millisecond
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 100 * time.Millisecond
	}
	w, err := New(cfg, r.st, client, zap.NewNop(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if whileRunning != nil {
			whileRunning()
		}
		row, err := r.st.Ledger(context.Background(), r.dep.ID)
		if err != nil {
			r.t.Fatal(err)
		}
		if row.SweepStatus != status.SweepPending && row.SweepStatus != status.SweepInFlight {
			return row
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("sweep still %s; sandbox answers %v", row.SweepStatus, r.answers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *sandboxRig) answers() []string { return r.sb.Ledger().AnswersByIdempotencyKey[r.ctid] }

// applied counts the internal transfers under the sweep's id that moved money.
func (r *sandboxRig) applied() int {
	n := 0
	for _, tr := range r.sb.Ledger().InternalTransfers {
		if tr.ClientTransactionID == r.ctid && tr.Applied {
			n++
		}
	}
	return n
}

// TestSandboxDuplicateErrorAfterLostAnswerIsUnresolved: the realistic sandbox
// applies the transfer and drops the answer, then answers the replay with its
// 100409 duplicate error. The money moved; sweeper must say unresolved, never
// failed, and the sandbox's own ledger shows the case is genuinely ambiguous.
// An operator then resolves it with the evidence.
func TestSandboxDuplicateErrorAfterLostAnswerIsUnresolved(t *testing.T) {
	r := newSandboxRig(t, sandbox.Faults{TimeoutAfterCommitRate: 1, DuplicateAnswer: sandbox.DuplicateError})
	row := r.run(Config{}, func() {
		// Once the first answer is lost, stop dropping answers: the replay gets the duplicate error.
		if len(r.answers()) > 0 {
			r.sb.SetFaults(sandbox.Faults{DuplicateAnswer: sandbox.DuplicateError})
		}
	})
	if row.SweepStatus != status.SweepUnresolved {
		t.Fatalf("sweep %s (%v), want unresolved; sandbox answers %v", row.SweepStatus, row.LastError, r.answers())
	}
	if got := r.answers(); !slices.Equal(got, []string{sandbox.AnswerDroppedPrefix + sandbox.AnswerApplied, sandbox.AnswerDuplicateError}) {
		t.Fatalf("sandbox answers %v", got)
	}
	if r.applied() != 1 {
		t.Fatalf("applied %d times", r.applied())
	}
	var tr sandbox.InternalTransfer
	for _, it := range r.sb.Ledger().InternalTransfers {
		if it.ClientTransactionID == r.ctid {
			tr = it
		}
	}
	err := r.st.ResolveSweep(context.Background(), r.dep.ID, store.Resolution{Outcome: status.SweepSucceeded,
		Note: "sandbox ledger shows " + tr.ID + " applied", Actor: "test", InterlaceTransferID: tr.ID,
		CreditedAmount: &tr.Credited, CreditedCurrency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	row, _ = r.st.Ledger(context.Background(), r.dep.ID)
	if row.SweepStatus != status.SweepSucceeded || *row.InterlaceTransferID != tr.ID || !row.CreditedAmount.Equal(tr.Credited) {
		t.Fatalf("after resolve %+v", row)
	}
}

// TestSandboxPendingThenClosed: the realistic sandbox answers PENDING until it
// applies the transfer; the worker backs off and books the CLOSED answer.
func TestSandboxPendingThenClosed(t *testing.T) {
	r := newSandboxRig(t, sandbox.Faults{PendingRate: 1, PendingMs: 400})
	row := r.run(Config{}, nil)
	if row.SweepStatus != status.SweepSucceeded || r.applied() != 1 {
		t.Fatalf("sweep %s (%v), applied %d; answers %v", row.SweepStatus, row.LastError, r.applied(), r.answers())
	}
	got := r.answers()
	if got[0] != sandbox.AnswerPending || !strings.Contains(strings.Join(got, ","), sandbox.AnswerReplayed) {
		t.Fatalf("sandbox answers %v", got)
	}
}

// TestSandboxPendingForeverIsUnresolved: PENDING past SWEEPER_PENDING_MAX_AGE is
// unresolved; the sandbox shows nothing moved yet (it may still), which is
// exactly the ambiguity an operator must settle.
func TestSandboxPendingForeverIsUnresolved(t *testing.T) {
	r := newSandboxRig(t, sandbox.Faults{PendingRate: 1, PendingMs: 600_000})
	row := r.run(Config{PendingMaxAge: 500 * time.Millisecond, MaxDelay: time.Minute}, nil)
	if row.SweepStatus != status.SweepUnresolved || row.LastError == nil || !strings.Contains(*row.LastError, "in-progress") {
		t.Fatalf("sweep %s (%v)", row.SweepStatus, row.LastError)
	}
	got := r.answers()
	for _, a := range got {
		if a != sandbox.AnswerPending {
			t.Fatalf("sandbox answers %v", got)
		}
	}
	if len(got) > 8 {
		t.Fatalf("%d requests in 500ms: PENDING was not backed off", len(got))
	}
}

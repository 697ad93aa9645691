package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
)

// The finance guide is executable: every ```sql block of docs/FINANCE.md is
// parsed out of the file and run here against deposits seeded in every state,
// so the guide and the schema cannot drift apart unnoticed.

const finDoc = "../../docs/FINANCE.md"

// finBlock is one named SQL block of the guide.
type finBlock struct {
	name string
	sql  string
}

var (
	finFence = regexp.MustCompile("(?ms)^```sql\\n(.*?)^```")
	finName  = regexp.MustCompile(`^-- name: ([a-z0-9-]+)\n`)
)

func finBlocks(t *testing.T) []finBlock {
	t.Helper()
	doc, err := os.ReadFile(finDoc)
	if err != nil {
		t.Fatal(err)
	}
	var out []finBlock
	seen := map[string]bool{}
	for _, m := range finFence.FindAllStringSubmatch(string(doc), -1) {
		n := finName.FindStringSubmatch(m[1])
		if n == nil {
			t.Fatalf("%s: a sql block does not start with `-- name: <id>`:\n%s", finDoc, m[1])
		}
		if seen[n[1]] {
			t.Fatalf("%s: two blocks named %s", finDoc, n[1])
		}
		seen[n[1]] = true
		out = append(out, finBlock{name: n[1], sql: m[1]})
	}
	// Any other fenced block that looks like SQL would escape the test.
	if strings.Count(string(doc), "```sql") != len(out) {
		t.Fatalf("%s: %d ```sql fences, %d parsed blocks", finDoc, strings.Count(string(doc), "```sql"), len(out))
	}
	return out
}

// Deposit ids of the fixture. finFailedA is the id the guide's sweep-history query names.
const (
	finOK1       = "dep-ok-1"
	finOK2       = "dep-ok-2"
	finOK3       = "dep-ok-3"
	finBoundary  = "dep-month-start"
	finOld       = "dep-last-month"
	finFailedA   = "2d6f1c9e-5b7a-4c1e-9f3a-8e2b4d6a0c11"
	finFailedB   = "dep-failed-b"
	finRetry     = "dep-retry"
	finInFlight  = "dep-in-flight"
	finQueued    = "dep-queued"
	finWaiting   = "dep-waiting"
	finUnknown   = "dep-unknown"
	finRejected  = "dep-rejected"
	finForeign   = "dep-foreign"
	finUnswept   = "dep-eth"
	finAccount   = "acc-merchant"
	finAlice     = "wallet-alice"
	finBob       = "wallet-bob"
	finMaster    = "wallet-master"
	finInfinity  = "infinity-usd"
	finSkipOther = "deposit belongs to account acc-other, not the configured account"
	finSkipETH   = "currency ETH is not swept (SWEEPER_SWEEP_CURRENCIES)"
)

type finSeeder struct {
	t    *testing.T
	ctx  context.Context
	st   *store.Store
	pool *pgxpool.Pool
}

func (f *finSeeder) ingest(id, wallet, currency, amount, upstream, status, account, skip string) {
	f.t.Helper()
	d := store.Delivery{
		NotificationID: "n-" + id, EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{"id":"n-` + id + `"}`),
		Outcome: store.OutcomeDeposit, TransferID: id,
		Deposit: &store.DepositInput{
			TransferID: id, AccountID: account, WalletID: wallet, Chain: "ETH", TxHash: "0x" + id,
			Currency: currency, Amount: decimal.RequireFromString(amount), UpstreamStatus: upstream, Status: status,
			SkipReason: skip, ClientTransactionID: ids.SweepTransactionID(id), SweepAccountID: finAccount, ToCurrency: "USD",
		},
	}
	if eff, err := f.st.Ingest(f.ctx, d); err != nil || eff != store.EffectCreated {
		f.t.Fatalf("ingest %s: %v %v", id, eff, err)
	}
}

// finTruthSeed records the states of contract §9: a final deposit whose
// refund came before its sweep ran (held, 11), a needs_review deposit (amount
// unusable), and a final deposit waiting for Interlace's record (20).
func finTruthSeed(f *finSeeder) {
	f.t.Helper()
	f.ingest("fin-refunded", finAlice, "USDC", "11", "Closed", store.DepositFinal, finAccount, "")
	d := store.Delivery{NotificationID: "n-fin-refund", EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{}`),
		Outcome: store.OutcomeDeposit, TransferID: "fin-refunded",
		Deposit: &store.DepositInput{TransferID: "fin-refunded", AccountID: finAccount, WalletID: finAlice,
			Currency: "USDC", Amount: decimal.RequireFromString("11"), UpstreamStatus: "Refunded", Status: store.DepositFailed,
			ClientTransactionID: ids.SweepTransactionID("fin-refunded"), SweepAccountID: finAccount, ToCurrency: "USD"}}
	if eff, err := f.st.Ingest(f.ctx, d); err != nil || eff != store.EffectHeld {
		f.t.Fatalf("refund: %v %v", eff, err)
	}
	review := store.Delivery{NotificationID: "n-fin-review", EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{}`),
		Outcome: store.OutcomeUnusable, Reason: "amount: abc", TransferID: "fin-review",
		Deposit: &store.DepositInput{TransferID: "fin-review", AccountID: finAccount, WalletID: finAlice,
			Currency: "USDC", UpstreamStatus: "Closed", Status: store.DepositNeedsReview, ReviewReason: "amount: abc",
			ClientTransactionID: ids.SweepTransactionID("fin-review")}}
	if eff, err := f.st.Ingest(f.ctx, review); err != nil || eff != store.EffectCreated {
		f.t.Fatalf("review: %v %v", eff, err)
	}
	waiting := store.Delivery{NotificationID: "n-fin-waiting", EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{}`),
		Outcome: store.OutcomeDeposit, TransferID: "fin-waiting",
		Deposit: &store.DepositInput{TransferID: "fin-waiting", AccountID: finAccount, WalletID: finBob,
			Currency: "USDC", Amount: decimal.RequireFromString("20"), UpstreamStatus: "Closed", Status: store.DepositFinal,
			ClientTransactionID: ids.SweepTransactionID("fin-waiting"), SweepAccountID: finAccount, ToCurrency: "USD",
			NeedConfirm: true}}
	if eff, err := f.st.Ingest(f.ctx, waiting); err != nil || eff != store.EffectCreated {
		f.t.Fatalf("waiting: %v %v", eff, err)
	}
	f.exec(`UPDATE deposits SET received_at = received_at + (CASE id WHEN 'fin-refunded' THEN 1 ELSE 2 END) * interval '1 ms'
	         WHERE id IN ('fin-refunded', 'fin-review')`)
}

// claim leases the one due sweep, which must be id's.
func (f *finSeeder) claim(id string) store.Sweep {
	f.t.Helper()
	jobs, err := f.st.ClaimSweeps(f.ctx, store.ClaimParams{Owner: "finance-test", Limit: 2, Lease: time.Hour, ToWalletID: finInfinity})
	if err != nil || len(jobs) != 1 || jobs[0].DepositID != id {
		f.t.Fatalf("claim %s: %+v %v", id, jobs, err)
	}
	return jobs[0]
}

func finAttempt(outcome string, status int, code, msg string) store.Attempt {
	return store.Attempt{Worker: "finance-test", StartedAt: time.Now(), Duration: 120 * time.Millisecond,
		HTTPStatus: status, Code: code, Message: msg, Outcome: outcome}
}

func (f *finSeeder) swept(id, wallet, currency, amount, fee, credited string) {
	f.t.Helper()
	f.ingest(id, wallet, currency, amount, "Closed", store.DepositFinal, finAccount, "")
	job := f.claim(id)
	res := store.SweepResult{InterlaceTransferID: "tr-" + id, UpstreamStatus: "CLOSED",
		CreditedAmount: decimal.RequireFromString(credited), CreditedCurrency: "USD",
		FeeAmount: ptr(decimal.RequireFromString(fee)), FeeCurrency: currency}
	if err := f.st.RecordOutcome(f.ctx, store.Succeeded(job, res, finAttempt(store.AttemptSucceeded, 200, "000000", "CLOSED"))); err != nil {
		f.t.Fatal(err)
	}
}

func (f *finSeeder) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// finSeed records deposits in every state through the store's own code paths,
// with amounts that floating point would get wrong (0.1 + 0.2, 12 decimals).
func finSeed(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	f := &finSeeder{t: t, ctx: context.Background(), st: store.New(pool), pool: pool}
	f.exec(`INSERT INTO wallets (id, user_ref, reference_id, account_id) VALUES
	        ($1, 'alice', $3, $5), ($2, 'bob', $4, $5)`, finAlice, finBob, uuid.New(), uuid.New(), finAccount)

	f.swept(finOK1, finAlice, "USDC", "100.000001", "0.500001", "99.5")
	f.swept(finOK2, finBob, "USDC", "0.1", "0.0005", "0.0995")
	f.swept(finOK3, finMaster, "USDT", "0.2", "0.001", "0.199")
	f.swept(finBoundary, finAlice, "USDT", "1.5", "0.0075", "1.4925")
	f.swept(finOld, finBob, "USDC", "250.25", "1.25125", "248.99875")

	// Failed after a retry: Interlace refused it with a business code.
	f.ingest(finFailedA, finAlice, "USDC", "1000000", "Closed", store.DepositFinal, finAccount, "")
	job := f.claim(finFailedA)
	if err := f.st.RecordOutcome(f.ctx, store.Retry(job, 0, "", "interlace internal_transfer: HTTP 503", store.RetryUnknown,
		finAttempt(store.AttemptRetry, 503, "", "Service Unavailable"))); err != nil {
		t.Fatal(err)
	}
	job = f.claim(finFailedA)
	if err := f.st.RecordOutcome(f.ctx, store.Failed(job, "100023", "100023 Insufficient balance",
		finAttempt(store.AttemptRejected, 200, "100023", "Insufficient balance"))); err != nil {
		t.Fatal(err)
	}
	// Failed on the first call, without a code: the transfer came back rejected.
	f.ingest(finFailedB, finMaster, "USDT", "20", "Closed", store.DepositFinal, finAccount, "")
	job = f.claim(finFailedB)
	if err := f.st.RecordOutcome(f.ctx, store.Failed(job, "", "transfer 7712 status REJECTED",
		finAttempt(store.AttemptRejected, 200, "000000", "REJECTED"))); err != nil {
		t.Fatal(err)
	}
	// Retrying in an hour after a 503.
	f.ingest(finRetry, finBob, "USDT", "50.05", "Closed", store.DepositFinal, finAccount, "")
	job = f.claim(finRetry)
	if err := f.st.RecordOutcome(f.ctx, store.Retry(job, time.Hour, "", "interlace internal_transfer: HTTP 503", store.RetryUnknown,
		finAttempt(store.AttemptRetry, 503, "", "Service Unavailable"))); err != nil {
		t.Fatal(err)
	}
	// Being sent right now.
	f.ingest(finInFlight, finAlice, "USDC", "7.7", "Closed", store.DepositFinal, finAccount, "")
	f.claim(finInFlight)
	// Queued, never tried (nothing claims after this).
	f.ingest(finQueued, finBob, "USDT", "3", "Closed", store.DepositFinal, finAccount, "")
	// Never swept, or not yet.
	f.ingest(finWaiting, finAlice, "USDC", "12.34", "Pending", store.DepositPending, finAccount, "")
	f.ingest(finUnknown, finMaster, "USDT", "4.56", "Frozen", store.DepositUnknown, finAccount, "")
	f.ingest(finRejected, finBob, "USDC", "9.99", "Rejected", store.DepositFailed, finAccount, "")
	f.ingest(finForeign, finMaster, "USDC", "5", "Closed", store.DepositFinal, "acc-other", finSkipOther)
	f.ingest(finUnswept, finAlice, "ETH", "0.123456789012", "Closed", store.DepositFinal, finAccount, finSkipETH)

	// The period boundaries: exactly at the start of today / this month is in;
	// one microsecond before the month is out of both.
	f.exec(`UPDATE deposits SET received_at = date_trunc('day', now()) WHERE id = $1`, finBoundary)
	f.exec(`UPDATE sweeps SET swept_at = date_trunc('month', now()) WHERE deposit_id = $1`, finBoundary)
	f.exec(`UPDATE deposits SET received_at = date_trunc('month', now()) - interval '1 microsecond' WHERE id = $1`, finOld)
	f.exec(`UPDATE sweeps SET swept_at = date_trunc('month', now()) - interval '1 microsecond' WHERE deposit_id = $1`, finOld)
}

// finRows runs sql as sweeper_finance (the role the guide is for) and returns
// every value as text: decimals in their shortest exact form, NULL as "NULL".
func finRows(t *testing.T, pool *pgxpool.Pool, sql string) []map[string]string {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE sweeper_finance`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, fd := range rows.FieldDescriptions() {
			row[fd.Name] = finText(vals[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	return out
}

func finText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case decimal.Decimal:
		return x.String()
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case [16]byte:
		return uuid.UUID(x).String()
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

// finExpect compares the named columns of rows with want, row by row.
func finExpect(t *testing.T, rows []map[string]string, cols []string, want [][]string) {
	t.Helper()
	got := make([][]string, len(rows))
	for i, r := range rows {
		for _, c := range cols {
			v, ok := r[c]
			if !ok {
				t.Fatalf("no column %q in %v", c, r)
			}
			got[i] = append(got[i], v)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("columns %v:\n got %v\nwant %v", cols, got, want)
	}
}

// finChecks holds the expected result of every block of the guide, by name.
var finChecks = map[string]func(t *testing.T, pool *pgxpool.Pool, sql string){
	"time-zone": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		ctx := context.Background()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }() // SET is undone with the transaction
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		var tz string
		if err := tx.QueryRow(ctx, `SHOW TIME ZONE`).Scan(&tz); err != nil || tz != "UTC" {
			t.Fatalf("time zone %q %v", tz, err)
		}
	},
	"today-by-currency": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		finExpect(t, finRows(t, pool, sql),
			[]string{"currency", "deposits", "received", "final", "not_final", "failed", "swept"},
			[][]string{
				{"ETH", "1", "0.123456789012", "0.123456789012", "0", "0", "0"},
				// ok1, ok2, failed-a, in-flight, waiting, rejected, foreign (not last month's)
				{"USDC", "7", "1000135.130001", "1000112.800001", "12.34", "9.99", "100.100001"},
				// ok3, month-start (received at 00:00 today), failed-b, retry, queued, unknown
				{"USDT", "6", "79.31", "74.75", "4.56", "0", "1.7"},
			})
	},
	"sweep-totals": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		finExpect(t, finRows(t, pool, sql),
			[]string{"currency", "swept", "pending", "failed", "not_final", "never_swept", "swept_count", "pending_count", "failed_count"},
			[][]string{
				{"ETH", "0", "0", "0", "0", "0.123456789012", "0", "0", "0"},
				{"USDC", "350.350001", "7.7", "1000000", "12.34", "14.99", "3", "1", "1"},
				{"USDT", "1.7", "53.05", "20", "4.56", "0", "2", "2", "1"},
			})
	},
	"fees-paid": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		// Last month's sweep (one microsecond before the month) is out; the one
		// at the very start of the month is in.
		finExpect(t, finRows(t, pool, sql),
			[]string{"currency", "fee_currency", "credited_currency", "sweeps", "swept", "fees", "credited", "fee_rate"},
			[][]string{
				{"USDC", "USDC", "USD", "2", "100.100001", "0.500501", "99.5995", "0.005"},
				{"USDT", "USDT", "USD", "2", "1.7", "0.0085", "1.6915", "0.005"},
			})
	},
	"deposits-by-user": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		finExpect(t, finRows(t, pool, sql),
			[]string{"user_ref", "currency", "deposits", "received", "swept", "credited", "fees"},
			[][]string{
				{"alice", "ETH", "1", "0.123456789012", "0", "0", "0"},
				{"alice", "USDC", "4", "1000120.040001", "100.000001", "99.5", "0.500001"},
				{"alice", "USDT", "1", "1.5", "1.5", "1.4925", "0.0075"},
				{"bob", "USDC", "3", "260.34", "250.35", "249.09825", "1.25175"},
				{"bob", "USDT", "2", "53.05", "0", "0", "0"},
				{"(no user)", "USDC", "1", "5", "0", "0", "0"},
				{"(no user)", "USDT", "3", "24.76", "0.2", "0.199", "0.001"},
			})
	},
	"failed-sweeps": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		rows := finRows(t, pool, sql)
		finExpect(t, rows,
			[]string{"deposit_id", "currency", "amount", "wallet_id", "attempts", "last_error_code", "last_error", "last_http_status", "last_message"},
			[][]string{
				{finFailedB, "USDT", "20", finMaster, "1", "NULL", "transfer 7712 status REJECTED", "200", "REJECTED"},
				{finFailedA, "USDC", "1000000", finAlice, "2", "100023", "100023 Insufficient balance", "200", "Insufficient balance"},
			})
		for _, r := range rows {
			if r["client_transaction_id"] != ids.SweepTransactionID(r["deposit_id"]).String() || r["failed_at"] == "NULL" {
				t.Errorf("row %v", r)
			}
		}
	},
	"sweep-history": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		rows := finRows(t, pool, sql)
		var got []string
		for _, r := range rows {
			got = append(got, r["kind"]+": "+r["what"])
		}
		want := []string{
			"event: pending", // created
			"event: pending -> in_flight",
			"attempt 1: retry",
			"event: in_flight -> pending",
			"event: pending -> in_flight",
			"attempt 2: rejected",
			"event: in_flight -> failed",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if d := rows[len(rows)-2]["detail"]; !strings.Contains(d, "HTTP 200 100023 Insufficient balance") {
			t.Errorf("attempt detail %q", d)
		}
	},
	"not-swept": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		finExpect(t, finRows(t, pool, sql),
			[]string{"deposit_id", "currency", "amount", "deposit_status", "sweep_status", "reason"},
			[][]string{
				{finWaiting, "USDC", "12.34", "pending", "waiting", "not final yet: Interlace says Pending"},
				{finUnknown, "USDT", "4.56", "unknown", "waiting", "unknown upstream status Frozen"},
				{finRejected, "USDC", "9.99", "failed", "skipped", "deposit Rejected"},
				{finForeign, "USDC", "5", "final", "skipped", finSkipOther},
				{finUnswept, "ETH", "0.123456789012", "final", "skipped", finSkipETH},
			})
	},
	"reconciliation": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		finExpect(t, finRows(t, pool, sql),
			[]string{"currency", "deposits", "received", "swept", "in_flight", "queued", "failed", "waiting", "skipped", "held", "unresolved", "unexplained", "mismatched", "balanced"},
			[][]string{
				{"ETH", "1", "0.123456789012", "0", "0", "0", "0", "0", "0.123456789012", "0", "0", "0", "0", "true"},
				{"USDC", "8", "1000385.380001", "350.350001", "7.7", "0", "1000000", "12.34", "14.99", "0", "0", "0", "0", "true"},
				{"USDT", "6", "79.31", "1.7", "0", "53.05", "20", "4.56", "0", "0", "0", "0", "0", "true"},
			})
		// The states of contract §9, on a database of their own: a sweep held by
		// a refund, a needs_review deposit (amount unknown), a final deposit
		// waiting for Interlace's record. Everything is explained and balanced.
		tp := pgtest.NewPool(t)
		f := &finSeeder{t: t, ctx: context.Background(), st: store.New(tp), pool: tp}
		finTruthSeed(f)
		finExpect(t, finRows(t, tp, sql),
			[]string{"currency", "deposits", "received", "swept", "queued", "waiting", "held", "unexplained", "mismatched", "balanced"},
			[][]string{{"USDC", "3", "31", "0", "0", "20", "11", "0", "0", "true"}})
	},
	"held": func(t *testing.T, pool *pgxpool.Pool, sql string) {
		if rows := finRows(t, pool, sql); len(rows) != 0 {
			t.Errorf("held deposits in the common seed: %v", rows)
		}
		tp := pgtest.NewPool(t)
		f := &finSeeder{t: t, ctx: context.Background(), st: store.New(tp), pool: tp}
		finTruthSeed(f)
		finExpect(t, finRows(t, tp, sql),
			[]string{"deposit_id", "deposit_status", "currency", "amount", "last_error"},
			[][]string{
				{"fin-refunded", "final", "USDC", "11", "deposit is Closed 11 USDC in wallet " + finAlice +
					"; a later notification says Refunded 11 USDC in wallet " + finAlice},
				{"fin-review", "needs_review", "USDC", "NULL", "needs review: amount: abc"},
			})
	},
	// The two administration blocks change roles and grants: they are checked
	// by TestFinanceGuideAdministration on databases of their own.
	"create-login":  nil,
	"grant-finance": nil,
}

func TestFinanceGuideQueries(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	finSeed(t, pool)
	blocks := finBlocks(t)
	inDoc := map[string]bool{}
	for _, b := range blocks {
		inDoc[b.name] = true
		check, known := finChecks[b.name]
		if !known {
			t.Errorf("%s: query %s has no expected result in this test", finDoc, b.name)
			continue
		}
		if check == nil {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			check(t, pool, b.sql)
		})
	}
	for name := range finChecks {
		if !inDoc[name] {
			t.Errorf("%s: no query named %s any more", finDoc, name)
		}
	}
}

// The reconciliation must be able to fail: a sweep sent for another amount, and
// a final deposit that has neither a sweep nor a reason, both unbalance it.
func TestFinanceReconciliationCatchesDrift(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	finSeed(t, pool)
	var sql string
	for _, b := range finBlocks(t) {
		if b.name == "reconciliation" {
			sql = b.sql
		}
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE sweeps SET amount = amount + 0.000001 WHERE deposit_id = $1`, finQueued); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO deposits (id, account_id, wallet_id, currency, amount, status, upstream_status)
	  VALUES ('dep-orphan', $1, $2, 'USDC', 0.000001, 'final', 'Closed')`, finAccount, finMaster); err != nil {
		t.Fatal(err)
	}
	finExpect(t, finRows(t, pool, sql),
		[]string{"currency", "unexplained", "mismatched", "balanced"},
		[][]string{
			{"ETH", "0", "0", "true"},
			{"USDC", "0.000001", "0", "false"},
			{"USDT", "0", "1", "false"},
		})
}

func finBlock1(t *testing.T, name string) string {
	t.Helper()
	for _, b := range finBlocks(t) {
		if b.name == name {
			return b.sql
		}
	}
	t.Fatalf("%s: no block %s", finDoc, name)
	return ""
}

// finSQLState runs sql in a savepoint and returns the SQLSTATE it failed with ("" = it succeeded).
func finSQLState(t *testing.T, tx pgx.Tx, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sp.Rollback(ctx) }()
	rows, err := sp.Query(ctx, sql, args...)
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
		err = rows.Err()
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return ""
}

// Contract §6: sweeper_finance may read the views and tables and write nothing.
func TestFinanceRoleReadsEverythingAndWritesNothing(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	finSeed(t, pool)
	ctx := context.Background()
	var relations []struct{ name, kind, col string }
	rows, err := pool.Query(ctx, `
SELECT c.relname, c.relkind::text,
       (SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = '' AND a.attgenerated = ''
         ORDER BY a.attnum LIMIT 1)
  FROM pg_class c
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY c.relname`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r struct{ name, kind, col string }
		if err := rows.Scan(&r.name, &r.kind, &r.col); err != nil {
			t.Fatal(err)
		}
		relations = append(relations, r)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	names := map[string]bool{}
	for _, r := range relations {
		names[r.name] = true
	}
	for _, must := range []string{"sweep_ledger", "deposits", "sweeps", "sweep_attempts", "webhook_deliveries", "deposit_events", "sweep_events"} {
		if !names[must] {
			t.Fatalf("relation %s not found among %v", must, relations)
		}
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE sweeper_finance`); err != nil {
		t.Fatal(err)
	}
	const denied = "42501" // insufficient_privilege
	for _, r := range relations {
		if code := finSQLState(t, tx, `SELECT * FROM `+pgx.Identifier{r.name}.Sanitize()+` LIMIT 1`); code != "" {
			t.Errorf("SELECT on %s: SQLSTATE %s", r.name, code)
		}
		for _, priv := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"} {
			var has bool
			if err := tx.QueryRow(ctx, `SELECT has_table_privilege('sweeper_finance', $1::regclass, $2)`,
				pgx.Identifier{r.name}.Sanitize(), priv).Scan(&has); err != nil {
				t.Fatal(err)
			}
			if has != (priv == "SELECT") {
				t.Errorf("sweeper_finance has %s on %s: %v", priv, r.name, has)
			}
		}
		if r.kind == "v" {
			// A view that is not updatable refuses writes before privileges are
			// even checked; the privilege check above is the one that matters.
			continue
		}
		writes := []string{
			`INSERT INTO %s DEFAULT VALUES`,
			`UPDATE %s SET ` + pgx.Identifier{r.col}.Sanitize() + ` = ` + pgx.Identifier{r.col}.Sanitize(),
			`DELETE FROM %s`,
			`TRUNCATE %s CASCADE`,
		}
		for _, w := range writes {
			sql := fmt.Sprintf(w, pgx.Identifier{r.name}.Sanitize())
			if code := finSQLState(t, tx, sql); code != denied {
				t.Errorf("%s as sweeper_finance: SQLSTATE %q, want %s (permission denied)", sql, code, denied)
			}
		}
	}
	// sweeper's functions are executable by anyone, but run with the caller's
	// rights: the first write inside is refused.
	ingest := `SELECT sweeper_ingest('n-x', 'X.Y', 0::smallint, '\x7b7d'::bytea, 'ignored', NULL, NULL, NULL, NULL, NULL,
	        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	        NULL, NULL, NULL, NULL, NULL)`
	if code := finSQLState(t, tx, ingest); code != denied {
		t.Errorf("sweeper_ingest as sweeper_finance: SQLSTATE %q, want %s", code, denied)
	}
	if code := finSQLState(t, tx, `CREATE TABLE finance_scratch (x int)`); code != denied {
		t.Errorf("CREATE TABLE as sweeper_finance: SQLSTATE %q, want %s", code, denied)
	}
}

// The guide's administration blocks do what they say: a person's login role
// reads through sweeper_finance, and the grant block restores read access on a
// database whose grants are missing (the role was created after migrating).
func TestFinanceGuideAdministration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("create-login", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.NewPool(t)
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }() // roles are cluster-wide: leave none behind
		if _, err := tx.Exec(ctx, finBlock1(t, "create-login")); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE finance_alice`); err != nil {
			t.Fatal(err)
		}
		if code := finSQLState(t, tx, `SELECT count(*) FROM sweep_ledger`); code != "" {
			t.Errorf("finance_alice cannot read sweep_ledger: %s", code)
		}
		if code := finSQLState(t, tx, `DELETE FROM deposits`); code != "42501" {
			t.Errorf("finance_alice may delete deposits: %q", code)
		}
	})

	t.Run("grant-finance", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.NewPool(t)
		if _, err := pool.Exec(ctx, `REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM sweeper_finance;
		                             REVOKE USAGE ON SCHEMA public FROM sweeper_finance`); err != nil {
			t.Fatal(err)
		}
		canRead := func() string {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE sweeper_finance`); err != nil {
				t.Fatal(err)
			}
			return finSQLState(t, tx, `SELECT count(*) FROM sweep_ledger`)
		}
		if code := canRead(); code != "42501" {
			t.Fatalf("after REVOKE, reading is %q, want refused", code)
		}
		if _, err := pool.Exec(ctx, finBlock1(t, "grant-finance")); err != nil {
			t.Fatal(err)
		}
		if code := canRead(); code != "" {
			t.Fatalf("after the guide's grants, reading fails with %s", code)
		}
	})
}

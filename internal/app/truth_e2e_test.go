package app_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/store"
)

// truthOn is the production setting of contract §9: confirmation on, and a
// poller whose interval the test chooses.
func truthOn(pollInterval string) map[string]string {
	return map[string]string{"SWEEPER_CONFIRM_DEPOSITS": "true", "SWEEPER_POLL_INTERVAL": pollInterval}
}

// silentSandbox is a sandbox that never delivers a notification: every
// deposit's webhooks are lost, only its transfer list knows them.
func silentSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	sb := sandbox.New(sandbox.Config{Logger: zap.NewNop()})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); srv.Close() })
	return sb, srv.URL
}

// A deposit whose notifications never arrive is found by the poller and swept,
// through the whole real program.
func TestDepositWithLostWebhooksIsFoundAndSwept(t *testing.T) {
	t.Parallel()
	sb, sbURL := silentSandbox(t)
	s := start(t, sysOpts{sandbox: sb, sbURL: sbURL, env: truthOn("1s")})
	d := s.deposit("42.5")
	row := s.waitFor(d.ID, "succeeded")
	if !row.Amount.Equal(d.Amount) || row.CreditedAmount == nil {
		t.Fatalf("ledger %+v", row)
	}
	if n := s.count(`SELECT count(*) FROM sweep_ledger WHERE deposit_id = $1 AND source = 'poll' AND confirmed_at IS NOT NULL`, d.ID); n != 1 {
		t.Fatal("not recorded as found by the poll, confirmed")
	}
	if n := s.count(`SELECT count(*) FROM poll_state WHERE name = 'transfers' AND last_success_at IS NOT NULL AND cursor_at IS NOT NULL`); n != 1 {
		t.Fatal("poll state not kept")
	}
	sc := s.scrape()
	if sc.value("sweeper_poll_deposits_found_total", nil) < 1 || sc.value("sweeper_polls_total", map[string]string{"outcome": "ok"}) < 1 {
		t.Fatalf("poll not visible in metrics")
	}
}

// The legacy envelope (contract §9): stored unverified, answered 200, moves no
// money by itself, wakes the poller; the deposit is swept once Interlace's
// record shows it, and a legacy delivery about a transfer Interlace does not
// know moves nothing at all.
func TestLegacyEnvelopeDepositIsSweptOnlyThroughInterlacesRecord(t *testing.T) {
	t.Parallel()
	sb, sbURL := silentSandbox(t)
	s := start(t, sysOpts{sandbox: sb, sbURL: sbURL, env: truthOn("1h")})
	// The start-up poll finds nothing; after it, only a wake-up polls again.
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM poll_state WHERE last_success_at IS NOT NULL`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no start-up poll")
		}
		time.Sleep(50 * time.Millisecond)
	}

	forged := `{"id":"legacy-1","businessType":"AssetsDeposit","data":` +
		string(mustJSON(depositResource("t-forged", masterWallet, "Closed", "1000"))) + `,"sign":"` + strings.Repeat("0", 64) + `"}`
	if r := s.postRaw("", []byte(forged)); r.StatusCode != 200 {
		t.Fatalf("legacy delivery: status %d", r.StatusCode)
	}
	d := s.deposit("8")
	legacy := `{"id":"legacy-2","businessType":"AssetsDeposit","data":` +
		string(mustJSON(depositResource(d.ID, d.WalletID, "Closed", "8"))) + `,"sign":"` + strings.Repeat("1", 64) + `"}`
	if r := s.postRaw("", []byte(legacy)); r.StatusCode != 200 {
		t.Fatalf("legacy delivery: status %d", r.StatusCode)
	}
	if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE outcome = 'unverified' AND signature_key IS NULL`); n != 2 {
		t.Fatalf("unverified deliveries = %d", n)
	}
	s.waitFor(d.ID, "succeeded")
	if n := s.count(`SELECT count(*) FROM deposits WHERE id = 't-forged'`); n != 0 {
		t.Fatal("a legacy delivery made a deposit Interlace does not know")
	}
	if n := s.count(`SELECT count(*) FROM deposits WHERE id = $1 AND source = 'poll'`, d.ID); n != 1 {
		t.Fatal("the deposit was not made from Interlace's record")
	}
}

// A notification whose figures disagree with Interlace's record holds the
// sweep; the operator's release re-reads Interlace and sweeps the record's
// amount; every action leaves an event naming who and why.
func TestDisagreeingNotificationIsHeldUntilReleased(t *testing.T) {
	t.Parallel()
	sb, sbURL := silentSandbox(t)
	s := start(t, sysOpts{sandbox: sb, sbURL: sbURL, env: truthOn("0")})
	d := s.deposit("5")
	if r := s.post(webhookSecret, "n-lie", depositResource(d.ID, d.WalletID, "Closed", "50")); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	row := s.waitFor(d.ID, "held")
	if row.LastError == nil || !strings.Contains(*row.LastError, "Interlace's record says Closed 5 USDC") {
		t.Fatalf("held without the reason: %+v", row)
	}
	var list struct{ Deposits []store.LedgerRow }
	if code := s.adminCall("GET", "/deposits?status=held", nil, &list); code != 200 || len(list.Deposits) != 1 {
		t.Fatalf("held filter: %d %+v", code, list)
	}
	var rel struct {
		Outcome string
		Deposit store.LedgerRow
	}
	if code := s.adminCall("POST", "/deposits/"+d.ID+"/release", map[string]string{"actor": "alice", "note": "record checked"}, &rel); code != 200 ||
		rel.Outcome != store.ReleaseReleased {
		t.Fatalf("release: %d %+v", code, rel)
	}
	row = s.waitFor(d.ID, "succeeded")
	if n := s.count(`SELECT count(*) FROM sweep_attempts WHERE deposit_id = $1`, d.ID); n != 1 {
		t.Fatalf("attempts = %d", n)
	}
	if n := s.count(`SELECT count(*) FROM sweeps WHERE deposit_id = $1 AND amount = 5`, d.ID); n != 1 {
		t.Fatal("the notification's amount was swept, not the record's")
	}
	if n := s.count(`SELECT count(*) FROM sweep_events WHERE deposit_id = $1 AND reason LIKE 'released by alice (record checked)%'`, d.ID); n != 1 {
		t.Fatal("release event without who and why")
	}
	_ = row
}

// A refund notification before the money moved holds the sweep, and the
// operator cannot release it while Interlace's record disagrees with the sweep.
func TestRefundBeforeTheSweepHolds(t *testing.T) {
	t.Parallel()
	sb, sbURL := silentSandbox(t)
	// No worker: the sweep cannot run between the two notifications.
	s := start(t, sysOpts{sandbox: sb, sbURL: sbURL, env: truthOn("0"), noWork: true})
	d := s.deposit("6")
	s.post(webhookSecret, "n-closed", depositResource(d.ID, d.WalletID, "Closed", "6"))
	s.post(webhookSecret, "n-refunded", depositResource(d.ID, d.WalletID, "Refunded", "6"))
	row := s.waitFor(d.ID, "held")
	if row.LastError == nil || !strings.Contains(*row.LastError, "later notification says Refunded") {
		t.Fatalf("ledger %+v", row)
	}
	if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE effect = 'held'`); n != 1 {
		t.Fatal("the contradiction is not on its delivery")
	}
}

// A deposit skipped under one configuration is swept after the configuration
// changes, on the operator's retry, under the deposit's one clientTransactionId.
func TestRetrySweepsASkippedDepositAfterAConfigChange(t *testing.T) {
	t.Parallel()
	sb, sbURL := silentSandbox(t)
	env := map[string]string{"SWEEPER_SWEEP_CURRENCIES": "USDT"}
	s := start(t, sysOpts{sandbox: sb, sbURL: sbURL, env: env})
	d := s.deposit("4")
	s.post(webhookSecret, "n-1", depositResource(d.ID, d.WalletID, "Closed", "4"))
	s.waitFor(d.ID, "skipped")
	var e apiError
	if code := s.adminCall("POST", "/deposits/"+d.ID+"/retry", nil, &e); code != 409 || e.Error.Code != "invalid_state" {
		t.Fatalf("retry under the same configuration: %d %+v", code, e)
	}
	s.stop()

	env["SWEEPER_SWEEP_CURRENCIES"] = "USDC,USDT"
	s2 := start(t, sysOpts{sandbox: sb, sbURL: sbURL, dbURL: s.dbURL, env: env})
	if code := s2.adminCall("POST", "/deposits/"+d.ID+"/retry", map[string]string{"note": "USDC now swept"}, nil); code != 202 {
		t.Fatalf("retry: %d", code)
	}
	row := s2.waitFor(d.ID, "succeeded")
	if row.ClientTransactionID == nil {
		t.Fatal("no clientTransactionId")
	}
}

package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/store"
)

// unresolvedSweep records a deposit through the real webhook path (no worker),
// then claims it and books it unresolved as the worker would after a timeout and
// a rejection of the replay.
func unresolvedSweep(t *testing.T, s *system) string {
	t.Helper()
	d := s.deposit("7")
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM sweeps WHERE deposit_id=$1`, d.ID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("sweep never created")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := store.New(s.pool)
	jobs, err := st.ClaimSweeps(context.Background(), store.ClaimParams{Owner: "w", Limit: 1, Lease: time.Minute, ToWalletID: "inf"})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim %v %v", jobs, err)
	}
	at := store.Attempt{Worker: "w", StartedAt: time.Now(), HTTPStatus: 200, Code: "100409", Outcome: store.AttemptRejected}
	if err := st.RecordOutcome(context.Background(), store.Unresolved(jobs[0], "100409",
		"rejected after an attempt whose outcome is unknown", "", "", at)); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// TestResolveUnresolvedSweep: POST /v1/deposits/{id}/resolve closes an
// unresolved sweep with evidence; the note and who are kept in its events; bad
// input is refused before anything is written; only unresolved sweeps resolve.
func TestResolveUnresolvedSweep(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	id := unresolvedSweep(t, s)

	var list struct{ Deposits []store.LedgerRow }
	if code := s.adminCall(http.MethodGet, "/deposits?status=unresolved", nil, &list); code != 200 || len(list.Deposits) != 1 {
		t.Fatalf("unresolved list %d %+v", code, list)
	}
	for name, body := range map[string]string{
		"NoNote":              `{"outcome":"succeeded","interlaceTransferId":"it-1"}`,
		"BadOutcome":          `{"outcome":"retry","note":"x"}`,
		"AmountAsNumber":      `{"outcome":"succeeded","note":"x","interlaceTransferId":"it-1","creditedAmount":6.95,"creditedCurrency":"USD"}`,
		"AmountWithExponent":  `{"outcome":"succeeded","note":"x","interlaceTransferId":"it-1","creditedAmount":"6.95e0","creditedCurrency":"USD"}`,
		"AmountWithoutCur":    `{"outcome":"succeeded","note":"x","interlaceTransferId":"it-1","creditedAmount":"6.95"}`,
		"FailedWithTransfer":  `{"outcome":"failed","note":"x","interlaceTransferId":"it-1"}`,
		"UnknownField":        `{"outcome":"failed","note":"x","force":true}`,
		"SucceededNoTransfer": `{"outcome":"succeeded","note":"x"}`,
	} {
		var e apiError
		code := s.adminCall(http.MethodPost, "/deposits/"+id+"/resolve", body, &e)
		if code < 400 || code >= 500 {
			t.Fatalf("%s: %d %+v", name, code, e)
		}
	}
	if n := s.count(`SELECT count(*) FROM sweeps WHERE deposit_id=$1 AND status='unresolved'`, id); n != 1 {
		t.Fatal("refused input changed the sweep")
	}

	req := `{"outcome":"succeeded","note":"Interlace statement 2026-11-28 shows transfer it-77 for 7 USDC","interlaceTransferId":"it-77","creditedAmount":"6.965","creditedCurrency":"USD"}`
	var row store.LedgerRow
	if code := callAs(t, s, "/deposits/"+id+"/resolve", req, "alice@finance", &row); code != 200 {
		t.Fatalf("resolve: %d", code)
	}
	if row.SweepStatus != "succeeded" || row.InterlaceTransferID == nil || *row.InterlaceTransferID != "it-77" ||
		row.CreditedAmount == nil || row.CreditedAmount.String() != "6.965" {
		t.Fatalf("row %+v", row)
	}
	var reason, actor string
	if err := s.pool.QueryRow(context.Background(), `SELECT reason, actor FROM sweep_events WHERE deposit_id=$1 AND from_status='unresolved'`, id).
		Scan(&reason, &actor); err != nil {
		t.Fatal(err)
	}
	if actor != "alice@finance" || !strings.Contains(reason, "Interlace statement 2026-11-28") {
		t.Fatalf("event %q by %q", reason, actor)
	}
	// Another one, which Interlace's records show never moved: failed, and then
	// an ordinary requeue under the same id is allowed.
	other := unresolvedSweep(t, s)
	var failed store.LedgerRow
	if code := callAs(t, s, "/deposits/"+other+"/resolve", `{"outcome":"failed","note":"not in Interlace's statement"}`, "bob", &failed); code != 200 ||
		failed.SweepStatus != "failed" || failed.InterlaceTransferID != nil || failed.CreditedAmount != nil {
		t.Fatalf("resolve failed: %d %+v", code, failed)
	}
	if code := s.adminCall(http.MethodPost, "/deposits/"+other+"/retry", nil, nil); code != http.StatusAccepted {
		t.Fatalf("retry after a failed resolution: %d", code)
	}
	// A second resolve finds nothing unresolved.
	var e apiError
	if code := s.adminCall(http.MethodPost, "/deposits/"+id+"/resolve", `{"outcome":"failed","note":"again"}`, &e); code != 409 {
		t.Fatalf("second resolve: %d %+v", code, e)
	}
}

func callAs(t *testing.T, s *system, path, body, actor string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("X-Operator", actor)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = jsonDecode(resp, out)
	}
	return resp.StatusCode
}

func jsonDecode(resp *http.Response, out any) error { return json.NewDecoder(resp.Body).Decode(out) }

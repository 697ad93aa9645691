package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// textParam reads a free-text filter: trimmed, at most max bytes of printable
// ASCII (ids, currencies and user references are), else a 400 naming it.
func textParam(q url.Values, name string, max int) (string, error) {
	v := strings.TrimSpace(q.Get(name))
	if len(v) > max {
		return "", badRequest("%s is longer than %d characters.", name, max)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", badRequest("%s may hold only printable ASCII characters.", name)
		}
	}
	return v, nil
}

// depositsData is the deposits page's.
type depositsData struct {
	Filter    store.ConsoleDepositFilter
	Statuses  []string
	Attention *store.ConsoleDepositPage // first, unfiltered page only
	Counts    store.ConsoleCounts
	Page      store.ConsoleDepositPage
	NextURL   string
	FirstURL  string // set when not on the first page
}

// attentionRows is how many of the deposits needing attention the first page
// shows above the list (the rest are one link away).
const attentionRows = 20

func (c *console) deposits(w http.ResponseWriter, r *http.Request, v *view) error {
	q := r.URL.Query()
	var f store.ConsoleDepositFilter
	var err error
	f.Status = q.Get("status")
	if f.Status != "" && !slices.Contains(store.ConsoleStatuses(), f.Status) {
		return badRequest("Unknown status %q: choose one of the list.", truncate(f.Status, 40))
	}
	if f.Currency, err = textParam(q, "currency", 16); err != nil {
		return err
	}
	f.Currency = strings.ToUpper(f.Currency)
	if f.UserRef, err = textParam(q, "user", 200); err != nil {
		return err
	}
	if f.After, err = textParam(q, "after", 200); err != nil {
		return err
	}
	d := depositsData{Filter: f, Statuses: store.ConsoleStatuses()}
	ctx := r.Context()
	if d.Page, err = c.d.Store.ConsoleDeposits(ctx, f); err != nil {
		return err
	}
	if f == (store.ConsoleDepositFilter{}) {
		att, err := c.d.Store.ConsoleDeposits(ctx, store.ConsoleDepositFilter{Status: store.ConsoleAttention, Limit: attentionRows})
		if err != nil {
			return err
		}
		d.Attention = &att
		if d.Counts, err = c.d.Store.ConsoleCounts(ctx); err != nil {
			return err
		}
	}
	list := url.Values{}
	for k, val := range map[string]string{"status": f.Status, "currency": f.Currency, "user": f.UserRef} {
		if val != "" {
			list.Set(k, val)
		}
	}
	if d.Page.Next != "" {
		next := url.Values{"after": {d.Page.Next}}
		for k, val := range list {
			next[k] = val
		}
		d.NextURL = "/console/?" + next.Encode()
	}
	if f.After != "" {
		d.FirstURL = "/console/"
		if len(list) > 0 {
			d.FirstURL += "?" + list.Encode()
		}
	}
	v.Title, v.Nav, v.Data = "Deposits", "deposits", d
	c.render(w, "deposits", v)
	return nil
}

// depositData is one deposit's page's.
type depositData struct {
	D          store.ConsoleDeposit
	CanRetry   bool
	CanRelease bool
	CanResolve bool
}

// idParam reads a deposit id from the path: Interlace ids are short printable
// ASCII; anything else is a bad address, not a lookup.
func idParam(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || len(id) > 200 {
		return "", badRequest("That is not a deposit id.")
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= 0x20 || id[i] > 0x7e {
			return "", badRequest("That is not a deposit id.")
		}
	}
	return id, nil
}

// doneMessages say what an action did, after its redirect.
var doneMessages = map[string]string{
	"retry":            "Retry requested: the sweep is queued again under the same clientTransactionId.",
	"release-released": "Released: Interlace's record agrees, and the sweep is queued.",
	"release-refused":  "Not released: Interlace's record still disagrees (or could not be used); the deposit stays held, and the last error says why.",
	"release-not_held": "Nothing was held: reading Interlace's record again settled the deposit.",
	"resolve":          "Resolved: the sweep is closed with your evidence.",
}

// doneMessage is the message of ?done=, or a plain one for an outcome this
// console does not know yet (only letters and underscores are repeated).
func doneMessage(done string) string {
	if m, ok := doneMessages[done]; ok {
		return m
	}
	if action, outcome, ok := strings.Cut(done, "-"); ok && action == "release" && len(outcome) <= 32 &&
		strings.Trim(outcome, "abcdefghijklmnopqrstuvwxyz_") == "" {
		return "Release: " + outcome + "."
	}
	return ""
}

func (c *console) deposit(w http.ResponseWriter, r *http.Request, v *view) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	dep, err := c.d.Store.ConsoleDeposit(r.Context(), id)
	if err != nil {
		return err
	}
	a := c.d.Actions
	st := dep.SweepStatus
	retryStates := a.RetryStates
	if retryStates == nil {
		retryStates = []string{status.SweepFailed}
	}
	d := depositData{
		D:          dep,
		CanRetry:   a.Retry != nil && slices.Contains(retryStates, st),
		CanRelease: a.Release != nil && st == status.SweepHeld,
		CanResolve: a.Resolve != nil && st == status.SweepUnresolved,
	}
	v.Flash = doneMessage(r.URL.Query().Get("done"))
	v.Title, v.Nav, v.Data = "Deposit "+truncate(id, 40), "deposits", d
	c.render(w, "deposit", v)
	return nil
}

// act runs one operator action on a deposit, then shows the deposit again
// (POST, redirect, GET: a reload never repeats the action).
func (c *console) act(w http.ResponseWriter, r *http.Request, v *view) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if note == "" {
		return badRequest("Say why in the note: it is kept in the deposit's events.")
	}
	if len(note) > 1000 {
		return badRequest("The note is longer than 1000 characters.")
	}
	ctx, a, action := r.Context(), c.d.Actions, r.PathValue("action")
	done := action
	switch {
	case action == "retry" && a.Retry != nil:
		err = a.Retry(ctx, id, v.Actor, note)
	case action == "release" && a.Release != nil:
		var outcome string
		outcome, err = a.Release(ctx, id, v.Actor, note)
		done = action + "-" + outcome
	case action == "resolve" && a.Resolve != nil:
		var res Resolution
		if res, err = resolution(r.PostForm); err != nil {
			return err
		}
		res.Note, res.Actor = note, v.Actor
		err = a.Resolve(ctx, id, res)
	default:
		return errNotFound
	}
	if err != nil {
		return actionError(err)
	}
	http.Redirect(w, r, "/console/deposits/"+url.PathEscape(id)+"?"+url.Values{"done": {done}}.Encode(), http.StatusSeeOther)
	return nil
}

// actionError keeps the store's own errors (not found, wrong state, bad
// input: fail maps them) and turns anything else, typically reading Interlace
// during a release, into a 502 that says what happened: the operator is the
// admin, and "try again" needs the reason.
func actionError(err error) error {
	var he *httpError
	if errors.As(err, &he) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidState) ||
		errors.Is(err, store.ErrInvalidInput) || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return &httpError{http.StatusBadGateway, "The action did not complete (" + strings.ToValidUTF8(truncate(err.Error(), 300), "?") +
		"). Reload the deposit to see its state, then try again."}
}

// resolution reads the evidence of a resolve form, refusing what the operator
// API refuses for the same request (POST /v1/deposits/{id}/resolve), so a form
// error says what to fix instead of failing in the store.
func resolution(f url.Values) (Resolution, error) {
	res := Resolution{Outcome: f.Get("outcome")}
	if res.Outcome != status.SweepSucceeded && res.Outcome != status.SweepFailed {
		return res, badRequest("Choose the outcome: succeeded or failed.")
	}
	res.InterlaceTransferID = strings.TrimSpace(f.Get("interlaceTransferId"))
	res.CreditedCurrency = strings.ToUpper(strings.TrimSpace(f.Get("creditedCurrency")))
	amount := strings.TrimSpace(f.Get("creditedAmount"))
	if res.Outcome == status.SweepFailed {
		if res.InterlaceTransferID != "" || res.CreditedCurrency != "" || amount != "" {
			return res, badRequest("A failed sweep credited nothing: leave the transfer id, amount and currency empty.")
		}
		return res, nil
	}
	if len(res.InterlaceTransferID) > 128 || strings.ContainsFunc(res.InterlaceTransferID, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return res, badRequest("The Interlace transfer id is at most 128 visible ASCII characters.")
	}
	if (amount == "") != (res.CreditedCurrency == "") {
		return res, badRequest("The credited amount and its currency go together.")
	}
	if amount != "" {
		amt, err := decimal.NewFromString(amount)
		if err != nil || !amt.IsPositive() || len(amount) > 40 || strings.ContainsAny(amount, "eE") {
			return res, badRequest("The credited amount must be a positive decimal number, such as 99.5.")
		}
		if len(res.CreditedCurrency) > 16 || strings.Trim(res.CreditedCurrency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			return res, badRequest("The credited currency is a currency code such as USD.")
		}
		res.CreditedAmount = &amt
	}
	return res, nil
}

// withdrawalsData is the withdrawals page's.
type withdrawalsData struct {
	Status   string
	Statuses []string
	Rows     []store.Withdrawal
	NextURL  string
	FirstURL string
}

const withdrawalsPerPage = 50

func (c *console) withdrawals(w http.ResponseWriter, r *http.Request, v *view) error {
	q := r.URL.Query()
	statuses := []string{store.WithdrawalPending, store.WithdrawalRunning, store.WithdrawalCompleted,
		store.WithdrawalFailed, store.WithdrawalStopped, store.WithdrawalUnresolved}
	st := q.Get("status")
	if st != "" && !slices.Contains(statuses, st) {
		return badRequest("Unknown status %q: choose one of the list.", truncate(st, 40))
	}
	after := q.Get("after")
	if after != "" {
		if _, err := uuid.Parse(after); err != nil {
			return badRequest("after is not a withdrawal id.")
		}
	}
	rows, err := c.d.Store.ListWithdrawals(r.Context(), store.WithdrawalFilter{Status: st, After: after, Limit: withdrawalsPerPage + 1})
	if err != nil {
		return err
	}
	d := withdrawalsData{Status: st, Statuses: statuses, Rows: rows}
	list := url.Values{}
	if st != "" {
		list.Set("status", st)
	}
	if len(rows) > withdrawalsPerPage {
		d.Rows = rows[:withdrawalsPerPage]
		next := url.Values{"after": {d.Rows[len(d.Rows)-1].ID.String()}}
		if st != "" {
			next.Set("status", st)
		}
		d.NextURL = "/console/withdrawals?" + next.Encode()
	}
	if after != "" {
		d.FirstURL = "/console/withdrawals"
		if st != "" {
			d.FirstURL += "?" + list.Encode()
		}
	}
	v.Title, v.Nav, v.Data = "Withdrawals", "withdrawals", d
	c.render(w, "withdrawals", v)
	return nil
}

func (c *console) withdrawal(w http.ResponseWriter, r *http.Request, v *view) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return badRequest("That is not a withdrawal id.")
	}
	wd, err := c.d.Store.Withdrawal(r.Context(), id)
	if err != nil {
		return err
	}
	v.Title, v.Nav, v.Data = "Withdrawal "+id.String(), "withdrawals", wd
	c.render(w, "withdrawal", v)
	return nil
}

// reconData is the reconciliation page's.
type reconData struct {
	From, To string // the form's values (dates, UTC)
	AllTime  bool
	Lines    []store.ReconLine
}

// reconDefaultDays is the default period: a month of deposits reads a month of
// rows; all time, on demand, reads every deposit ever received.
const reconDefaultDays = 30

func (c *console) reconciliation(w http.ResponseWriter, r *http.Request, v *view) error {
	q := r.URL.Query()
	d := reconData{From: q.Get("from"), To: q.Get("to"), AllTime: q.Get("all") == "1"}
	var f store.ReconFilter
	if d.AllTime {
		d.From, d.To = "", ""
	} else {
		if d.From == "" && d.To == "" {
			d.From = c.d.Now().UTC().AddDate(0, 0, -reconDefaultDays).Format(time.DateOnly)
		}
		var err error
		if f.From, err = dateParam("from", d.From); err != nil {
			return err
		}
		if f.To, err = dateParam("to", d.To); err != nil {
			return err
		}
		if !f.To.IsZero() {
			f.To = f.To.AddDate(0, 0, 1) // the "to" day is included
		}
		if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
			return badRequest("The period ends before it starts.")
		}
	}
	lines, err := c.d.Store.Reconciliation(r.Context(), f)
	if err != nil {
		return err
	}
	d.Lines = lines
	v.Title, v.Nav, v.Data = "Reconciliation", "reconciliation", d
	c.render(w, "reconciliation", v)
	return nil
}

func dateParam(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Year() < 2000 || t.Year() > 9999 {
		return time.Time{}, badRequest("%s must be a date such as 2026-01-31.", name)
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}

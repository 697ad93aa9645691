package poll

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/jobs"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// ConfirmConfig tunes the confirmer. Zero values take the defaults in brackets.
type ConfirmConfig struct {
	// Batch is how many waiting deposits one round reads back [90; at most
	// Interlace's page size, 100]: a round is one list call for all of them, so
	// confirmation costs one upstream call per Batch deposits instead of one per
	// deposit, and the sweep rate does not halve. A little under a page, because
	// the window from the batch's first to its last createTime also holds
	// transfers created in the same milliseconds: at a full page those spill
	// onto a second one, and the round makes two list calls.
	Batch int
	// Lease is how long a claimed confirmation is ours before another replica may
	// take it [30s]; it must exceed a round's upstream calls.
	Lease time.Duration
	// MaxPages bounds the list pages one round reads [5]: deposits not on them
	// are read one by one, up to MaxSingle a round [20]; the rest wait for the
	// next round.
	MaxPages, MaxSingle int
	// Window widens the list window around the batch's creation times [10m]:
	// Interlace's createTime precedes our receipt, by how much is not documented.
	Window time.Duration
	// Tick is the fallback wake-up when no NOTIFY arrives [1s].
	Tick time.Duration
	// BaseDelay and MaxDelay bound the backoff of a deposit Interlace's record
	// does not confirm yet [2s, 5m].
	BaseDelay, MaxDelay time.Duration
	// Rounds is how many rounds run side by side in one process [2]: while one
	// waits for Interlace, another records what it read. Rounds claim disjoint
	// deposits.
	Rounds int
}

func (c *ConfirmConfig) defaults() {
	if c.Batch <= 0 || c.Batch > interlace.MaxTransferPageSize {
		c.Batch = 90
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Lease, 30*time.Second)
	def(&c.Window, 10*time.Minute)
	def(&c.Tick, time.Second)
	def(&c.BaseDelay, 2*time.Second)
	def(&c.MaxDelay, 5*time.Minute)
	if c.MaxPages <= 0 {
		c.MaxPages = 5
	}
	if c.MaxSingle <= 0 {
		c.MaxSingle = 20
	}
	if c.Rounds <= 0 {
		c.Rounds = 2
	}
}

// Confirmer reads back, from Interlace's records, the final deposits that
// notifications announced, before any of their money moves (contract §9). Every
// replica may run one: rounds claim disjoint deposits (SKIP LOCKED).
type Confirmer struct {
	cfg ConfirmConfig
	r   *Reader
}

// NewConfirmer builds a confirmer over r.
func NewConfirmer(cfg ConfirmConfig, r *Reader) *Confirmer {
	cfg.defaults()
	return &Confirmer{cfg: cfg, r: r}
}

// Run confirms until ctx ends: at once after a NOTIFY (a deposit became final),
// and every Tick for retries falling due; Rounds loops side by side.
func (c *Confirmer) Run(ctx context.Context) {
	wakes := make([]chan struct{}, c.cfg.Rounds)
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	heard := make(chan struct{}, 1)
	go c.r.store.Listen(ctx, store.ConfirmChannel, heard, nil)
	go func() { // every round hears every wake-up
		for {
			select {
			case <-ctx.Done():
				return
			case <-heard:
				for _, w := range wakes {
					select {
					case w <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for _, w := range wakes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, w)
		}()
	}
	wg.Wait()
}

func (c *Confirmer) loop(ctx context.Context, wake <-chan struct{}) {
	t := time.NewTicker(c.cfg.Tick)
	defer t.Stop()
	for ctx.Err() == nil {
		n, err := c.Round(ctx)
		if err != nil && ctx.Err() == nil {
			c.r.log.Warn("confirm deposits", zap.Error(err))
		}
		if err == nil && n == c.cfg.Batch {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
	}
}

// Round claims up to Batch due deposits and reads them back: one list call over
// their creation window (more pages if needed), then one read per deposit the
// list did not show. A record that is final and agrees with the deposit (wallet,
// currency, amount: compared here, in Go) confirms it in one set-based statement
// per page read (not per deposit), which creates the sweeps with the confirmed
// amount and keeps each record as the evidence. Any other record (not final, different
// figures, unusable) goes through the ingest path like a notification, whose
// rules hold the sweep or leave the deposit waiting. Deposits still waiting are
// deferred with a reason and a backoff. It returns how many it claimed.
func (c *Confirmer) Round(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// The claim runs to its end even when the process starts stopping meanwhile:
	// cut off client-side after the statement committed, it would lose the rows
	// it claimed, and they would stay claimed for the whole Lease. What it
	// claims is handed back below if the round cannot finish.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopStepTimeout)
	batch, err := c.r.store.ClaimConfirmations(cctx, c.cfg.Batch, c.cfg.Lease)
	cancel()
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	deferred := map[string]bool{} // deferred below with Interlace's answer: theirs to keep
	defer c.releaseIfStopping(ctx, batch, deferred)
	byID := make(map[string]store.Unconfirmed, len(batch))
	for _, u := range batch {
		byID[u.DepositID] = u
	}
	seen := map[string]store.Delivery{} // deposit id -> its record, classified
	settled := map[string]string{}      // deposit id of the batch -> metrics outcome
	// Each page is confirmed as soon as it is read, so a backlog's first sweeps
	// start after one list call, not after every page of the round.
	var confirmErr error
	onPage := func(recs []store.Delivery) bool {
		confirmErr = c.confirmRead(ctx, recs, byID, settled)
		return confirmErr == nil
	}
	var listErr error
	if len(batch) > 1 {
		listErr = c.list(ctx, batch, seen, onPage)
	}
	if confirmErr != nil {
		return len(batch), confirmErr
	}
	singles := 0
	var read []store.Delivery
	problem := map[string]string{}
	for _, u := range batch {
		if _, ok := seen[u.DepositID]; ok {
			continue
		}
		if singles == c.cfg.MaxSingle {
			problem[u.DepositID] = notReadThisRound
			continue
		}
		singles++
		raw, err := c.r.up.GetTransferRecord(ctx, u.DepositID)
		switch {
		case isNotFound(err):
			problem[u.DepositID] = "not in Interlace's records yet"
		case err != nil:
			problem[u.DepositID] = "reading Interlace's record: " + err.Error()
		default:
			if d, ok := c.r.delivery(raw); ok && d.Deposit.TransferID == u.DepositID {
				seen[u.DepositID] = d
				read = append(read, d)
			} else {
				problem[u.DepositID] = "Interlace's record of the transfer is not this deposit"
			}
		}
	}
	if len(read) > 0 && !onPage(read) {
		return len(batch), confirmErr
	}

	// Records of the batch that disagree (not final, other figures) go through
	// the ingest rules, like a notification.
	var other []store.Delivery
	for _, u := range batch {
		if d, ok := seen[u.DepositID]; ok && !agrees(d.Deposit, u) {
			other = append(other, d)
		}
	}
	if len(other) > 0 {
		out, err := c.r.recordDeliveries(ctx, other)
		if err != nil {
			return len(batch), err
		}
		for _, rec := range out {
			if rec.Effect == store.EffectHeld {
				settled[rec.TransferID] = "held"
			}
		}
	}
	// Only deposits nothing above settled are asked of the database (a record
	// identical to one read before changes nothing now, say).
	var ask []string
	for _, u := range batch {
		if _, ok := settled[u.DepositID]; !ok {
			ask = append(ask, u.DepositID)
		}
	}
	still := map[string]bool{}
	if len(ask) > 0 {
		var err error
		if still, err = c.r.store.Unconfirmed(ctx, ask); err != nil {
			return len(batch), err
		}
	}
	if err := ctx.Err(); err != nil {
		// Stopping: what a cancelled call "answered" is no answer to back off on.
		return len(batch), err
	}
	counts := map[string]int{}
	for _, u := range batch {
		if !still[u.DepositID] {
			o := settled[u.DepositID]
			if o == "" {
				o = "confirmed"
			}
			counts[o]++
			continue
		}
		reason := problem[u.DepositID]
		outcome := "error"
		if d, ok := seen[u.DepositID]; ok {
			reason, outcome = "Interlace's record says "+d.Deposit.UpstreamStatus, "waiting"
		} else if reason == "" && listErr != nil {
			reason = "listing Interlace's transfers: " + listErr.Error()
		} else if reason == "not in Interlace's records yet" {
			outcome = "not_found"
		}
		delay := jobs.Backoff(u.Attempts, c.cfg.BaseDelay, c.cfg.MaxDelay, 0)
		if reason == notReadThisRound {
			// Interlace said nothing against it: due again at once, no backoff.
			delay, outcome = 0, "waiting"
		}
		counts[outcome]++
		if err := c.r.store.DeferConfirmation(ctx, u.DepositID, delay, reason); err != nil {
			return len(batch), err
		}
		deferred[u.DepositID] = true
		c.r.log.Info("deposit not confirmed yet", zap.String("deposit_id", u.DepositID), zap.String("reason", reason),
			zap.Int("attempt", u.Attempts), zap.Duration("retry_in", delay))
	}
	for o, n := range counts {
		c.r.metrics.Confirmation(o, n)
	}
	return len(batch), nil
}

// confirmRead confirms, in one set-based statement, the records just read that
// agree with their deposit of the batch (compared here, in Go), and the final
// records of deposits outside the batch, which may be waiting too: the
// statement confirms those that are, with matching figures, and ignores the
// rest (their own round reads them). Confirmed deposits of the batch are marked
// in settled.
func (c *Confirmer) confirmRead(ctx context.Context, recs []store.Delivery, batch map[string]store.Unconfirmed,
	settled map[string]string) error {
	var agree []store.Confirmation
	for _, d := range recs {
		if u, ok := batch[d.Deposit.TransferID]; ok && !agrees(d.Deposit, u) {
			continue
		} else if !ok && (d.Deposit.Status != status.DepositFinal || d.Deposit.SkipReason != "") {
			continue
		}
		agree = append(agree, store.Confirmation{DepositID: d.Deposit.TransferID, WalletID: d.Deposit.WalletID,
			Currency: d.Deposit.Currency, Amount: d.Deposit.Amount, UpstreamStatus: d.Deposit.UpstreamStatus,
			ClientTransactionID: d.Deposit.ClientTransactionID, Record: d.Body})
	}
	if len(agree) == 0 {
		return nil
	}
	ids, err := c.r.store.ConfirmDeposits(ctx, agree, c.r.accountID, c.r.target)
	if err != nil {
		return err
	}
	extra := 0
	for _, id := range ids {
		if _, ok := batch[id]; ok {
			settled[id] = "confirmed"
		} else {
			extra++
		}
	}
	if extra > 0 {
		c.r.metrics.Confirmation("confirmed", extra)
	}
	return nil
}

// stopStepTimeout bounds each of the two statements a round runs whatever the
// worker's context says (its claim, and the release of a stopping round's
// claims), so that a shutdown never leaves claims behind; both are short and
// fit in the shutdown budget.
const stopStepTimeout = 5 * time.Second

// releaseIfStopping hands back, when ctx ended mid-round (graceful shutdown),
// the claims of batch the round did not settle or defer. Left alone they would
// stay claimed for the whole Lease, and a final deposit acknowledged just before
// the SIGTERM would wait that long for the next process to confirm and sweep it.
func (c *Confirmer) releaseIfStopping(ctx context.Context, batch []store.Unconfirmed, deferred map[string]bool) {
	if ctx.Err() == nil {
		return
	}
	var open []store.Unconfirmed
	for _, u := range batch {
		if !deferred[u.DepositID] {
			open = append(open, u)
		}
	}
	if len(open) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopStepTimeout)
	defer cancel()
	if err := c.r.store.ReleaseConfirmations(rctx, open); err != nil {
		c.r.log.Warn("release confirmations at shutdown: they wait for their lease", zap.Error(err),
			zap.Int("claims", len(open)), zap.Duration("lease", c.cfg.Lease))
		return
	}
	c.r.log.Info("confirmations released at shutdown", zap.Int("claims", len(open)))
}

// agrees: Interlace's record says final, with the wallet, currency and amount
// the notification gave (contract §9). Anything else is for the ingest rules.
func agrees(rec *store.DepositInput, u store.Unconfirmed) bool {
	return rec.Status == status.DepositFinal && rec.SkipReason == "" && rec.TransferID == u.DepositID &&
		rec.WalletID == u.WalletID && rec.Currency == u.Currency && rec.Amount.Equal(u.Amount)
}

const notReadThisRound = "not read yet (more deposits due than one round reads)"

// list reads the transfer list where the batch's deposits are, until every one
// was seen or MaxPages were read. Deposits whose notification carried Interlace's
// createTime are looked up in the tightest window that holds them (the list
// filters on createTime); the others in a window around their receipt, widened
// by Window. The list is newest first and the batch the oldest due deposits, so
// after page 1 (which also gives the total) it reads from the last page
// backwards: a backlog is confirmed from its old end, a couple of calls per
// hundred deposits, never one call per deposit.
func (c *Confirmer) list(ctx context.Context, batch []store.Unconfirmed, seen map[string]store.Delivery,
	onPage func([]store.Delivery) bool) error {
	want := map[string]bool{}
	var known, unknown []store.Unconfirmed
	for _, u := range batch {
		want[u.DepositID] = true
		if u.CreatedKnown {
			known = append(known, u)
		} else {
			unknown = append(unknown, u)
		}
	}
	pages := c.cfg.MaxPages
	if len(known) > 0 {
		start, end := known[0].CreatedAt, known[0].CreatedAt
		for _, u := range known {
			start, end = minTime(start, u.CreatedAt), maxTime(end, u.CreatedAt)
		}
		n, err := c.window(ctx, start, end.Add(time.Millisecond), pages, want, seen, onPage)
		if err != nil {
			return err
		}
		pages -= n
	}
	if len(unknown) > 0 && pages > 0 {
		start, end := unknown[0].ReceivedAt, unknown[0].ReceivedAt
		for _, u := range unknown {
			start, end = minTime(start, u.ReceivedAt), maxTime(end, u.ReceivedAt)
		}
		if _, err := c.window(ctx, start.Add(-c.cfg.Window), end.Add(time.Minute), pages, want, seen, onPage); err != nil {
			return err
		}
	}
	return nil
}

// window reads up to maxPages pages of [start, end) and returns how many it read.
// Every deposit record read is kept: a final one confirms its deposit too if
// that one waits for its record (several rounds' work in one page).
func (c *Confirmer) window(ctx context.Context, start, end time.Time, maxPages int, want map[string]bool,
	seen map[string]store.Delivery, onPage func([]store.Delivery) bool) (int, error) {
	if now := time.Now(); end.After(now) {
		end = now.Add(time.Millisecond)
	}
	read := func(page int) (*interlace.TransferPage, error) {
		p, err := c.r.up.ListTransfers(ctx, interlace.ListTransfersParams{
			AccountID: c.r.accountID, Start: start, End: end, Page: page, Limit: interlace.MaxTransferPageSize,
		})
		if err != nil {
			return nil, err
		}
		recs := make([]store.Delivery, 0, len(p.List))
		for _, raw := range p.List {
			if d, ok := c.r.delivery(raw); ok {
				seen[d.Deposit.TransferID] = d
				delete(want, d.Deposit.TransferID)
				recs = append(recs, d)
			}
		}
		if !onPage(recs) {
			return nil, errPageNotRecorded
		}
		return p, nil
	}
	first, err := read(1)
	if err != nil || len(want) == 0 || len(first.List) < interlace.MaxTransferPageSize {
		return 1, err
	}
	n := 1
	last := (int(first.Total) + interlace.MaxTransferPageSize - 1) / interlace.MaxTransferPageSize
	for page := last; page > 1 && n < maxPages && len(want) > 0; page-- {
		n++
		if _, err := read(page); err != nil {
			return n, err
		}
	}
	return n, nil
}

// errPageNotRecorded stops a round's reading when what it read could not be
// recorded (the database's error is the round's to report).
var errPageNotRecorded = errors.New("poll: a page read could not be recorded")

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// olderThan: the page (newest first) already reaches before t, so the next ones
// hold only older transfers (also when Interlace ignores the window filter).
func olderThan(list []json.RawMessage, t time.Time) bool {
	if len(list) == 0 {
		return true
	}
	ct := createTime(list[len(list)-1])
	return !ct.IsZero() && ct.Before(t)
}

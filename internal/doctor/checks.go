package doctor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/webhook"
	"github.com/sweeperhq/sweeper/migrations"
)

type migState struct{ applied, latest int64 }

// migrationState reads goose's bookkeeping without touching it (a doctor must not create the table).
func migrationState(ctx context.Context, pool *pgxpool.Pool) (migState, error) {
	latest, err := migrations.Latest()
	if err != nil {
		return migState{}, err
	}
	st := migState{latest: latest}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return st, err
	}
	err = pool.QueryRow(ctx, `SELECT COALESCE(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&st.applied)
	return st, err
}

// infinity lists the balances the way discovery does and says which one a sweep would credit.
func (d *run) infinity(ctx context.Context, c *interlace.Client) {
	ctx, cancel := d.timeout(ctx)
	defer cancel()
	cfg := d.cfg
	// With SWEEPER_INFINITY_WALLET_ID set the service never discovers, so a failed discovery only warns.
	level := Fail
	if cfg.InfinityWalletID != "" {
		level = Warn
	}
	wallets, err := c.ListInfinityWallets(ctx, cfg.AccountID)
	if err != nil {
		d.rep.add(level, CheckInfinity, "GET /open-api/v3/cards/wallets?objectType=0 failed: %s", upstreamFailure(err, cfg))
		return
	}
	p, err := interlace.PickInfinityWallet(wallets, cfg.TargetCurrency)
	if err != nil {
		d.rep.add(level, CheckInfinity, "account %s lists %d balance(s), none an Infinity Account balance in %s (%s); "+
			"set SWEEPER_TARGET_CURRENCY to a currency the Infinity Account holds, or INTERLACE_ACCOUNT_ID to the right account "+
			"(an Infinity Account that was never initialised lists nothing)", cfg.AccountID, p.Listed, cfg.TargetCurrency, listed(wallets))
		return
	}
	w := p.Wallet
	seen := fmt.Sprintf("would sweep into %s (%s, available %s), identified by %s=0", w.ID, w.Currency, w.Available.String(), p.By)
	if p.Others > 0 {
		seen += fmt.Sprintf("; the answer also listed %d balance(s) that are not the Infinity Account (the filter was not applied; sweeper checks every entry)", p.Others)
	}
	switch {
	case p.WalletTypeOnly != nil:
		n := *p.WalletTypeOnly
		d.rep.add(Warn, CheckInfinity, "%s; walletType=0 alone would have picked %s (objectType %s), a Budget or card balance "+
			"listed first: sweeper does not, and SWEEPER_INFINITY_WALLET_ID=%s pins the right one", seen, n.ID, objectType(n), w.ID)
	case cfg.InfinityWalletID != "" && cfg.InfinityWalletID != w.ID:
		d.rep.add(Warn, CheckInfinity, "%s, but SWEEPER_INFINITY_WALLET_ID=%s is set and sweeps go there; set SWEEPER_INFINITY_WALLET_ID=%s "+
			"(or unset it to use discovery)", seen, cfg.InfinityWalletID, w.ID)
	case cfg.InfinityWalletID != "":
		d.rep.add(OK, CheckInfinity, "%s; SWEEPER_INFINITY_WALLET_ID names the same balance", seen)
	default:
		d.rep.add(OK, CheckInfinity, "%s", seen)
	}
}

func objectType(w interlace.InfinityWallet) string {
	if w.ObjectType == nil {
		return "absent"
	}
	return fmt.Sprint(*w.ObjectType)
}

// listed summarises balances as currency/objectType/walletType, for a FAIL line.
func listed(ws []interlace.InfinityWallet) string {
	if len(ws) == 0 {
		return "the list is empty"
	}
	var parts []string
	for i, w := range ws {
		if i == 5 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s objectType %s walletType %d", w.Currency, objectType(w), w.WalletType))
	}
	return strings.Join(parts, "; ")
}

// transfers reads the first page of the transfer list the backfill poller reads (contract §9), and
// says whether its entries read as deposits.
func (d *run) transfers(ctx context.Context, c *interlace.Client) {
	ctx, cancel := d.timeout(ctx)
	defer cancel()
	cfg := d.cfg
	q := url.Values{"accountId": {cfg.AccountID}, "page": {"1"}, "limit": {"100"}}
	data, err := c.GetData(ctx, "list_transfers", "/open-api/v3/cryptoconnect/transfers", q)
	if err != nil {
		d.rep.add(Fail, CheckTransfers, "GET /open-api/v3/cryptoconnect/transfers?accountId&page=1&limit=100 failed: %s", upstreamFailure(err, cfg))
		return
	}
	items, ok := listItems(data)
	if !ok {
		d.rep.add(Fail, CheckTransfers, "answers, but not with a list (data.list or data.data): %.200s; the backfill poller "+
			"cannot read it: set SWEEPER_POLL_INTERVAL=0 and rely on webhooks until sweeper understands this shape", data)
		return
	}
	if len(items) == 0 {
		d.rep.add(OK, CheckTransfers, "answers with accountId, page and limit; no transfers on the first page yet, so whether "+
			"it carries deposits shows after the first deposit (run sweeper doctor again then)")
		return
	}
	deposits, unusable := 0, 0
	for _, it := range items {
		cl, err := webhook.ClassifyResource(string(it))
		switch {
		case err == nil && cl.Kind == webhook.KindDeposit:
			deposits++
		case err != nil:
			unusable++
		}
	}
	if deposits == 0 {
		d.rep.add(Warn, CheckTransfers, "answers with %d transfer(s) on the first page, none readable as a deposit (%d unreadable); "+
			"the backfill poller will find nothing: keep webhooks on, and report this shape", len(items), unusable)
		return
	}
	d.rep.add(OK, CheckTransfers, "answers with accountId, page and limit; %d of %d transfer(s) on the first page read as deposits", deposits, len(items))
}

// listItems finds the entries of a list answer: v3 data.list[] or v2 data.data[].
func listItems(data json.RawMessage) ([]json.RawMessage, bool) {
	var page struct {
		List *[]json.RawMessage `json:"list"`
		Data *[]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return nil, false
	}
	switch {
	case page.List != nil:
		return *page.List, true
	case page.Data != nil:
		return *page.Data, true
	}
	return nil, false
}

// The signed parts doctor tries on a refused delivery (contract §10).
const (
	partResource          = "resource"
	partBody              = "body"
	partTimestampResource = "timestamp+resource"
)

// sigMatch is what a refused delivery's Signature turned out to be.
type sigMatch struct {
	part   string // partResource, partBody or partTimestampResource
	secret string // "current" or "previous"
	hex    bool   // hex-encoded instead of Base64
}

func (m sigMatch) String() string {
	s := m.part + " with the " + m.secret + " secret"
	if m.hex {
		s += " (hex-encoded)"
	}
	return s
}

// matchSignature tries every signed part with every configured secret, in Base64 and hex.
func matchSignature(d store.RefusedDelivery, secrets map[string]string) (sigMatch, bool) {
	sig := strings.TrimSpace(d.Signature)
	var resource string
	if env, err := webhook.ParseEnvelope(d.Body); err == nil {
		resource = env.Resource
	}
	parts := []struct {
		name string
		msg  []byte
	}{{partResource, []byte(resource)}, {partBody, d.Body}, {partTimestampResource, []byte(d.Timestamp + resource)}}
	for _, name := range []string{"current", "previous"} {
		key := secrets[name]
		if key == "" {
			continue
		}
		for _, p := range parts {
			if (p.name != partBody && resource == "") || (p.name == partBody && d.Truncated()) {
				continue
			}
			if webhook.Sign([]byte(key), p.msg) == sig {
				return sigMatch{part: p.name, secret: name}, true
			}
			m := hmac.New(sha256.New, []byte(key))
			m.Write(p.msg)
			if strings.EqualFold(hex.EncodeToString(m.Sum(nil)), sig) {
				return sigMatch{part: p.name, secret: name, hex: true}, true
			}
		}
	}
	return sigMatch{}, false
}

// webhooks replays the stored refused deliveries against every signed part and secret, so that one real
// delivery tells the operator the right INTERLACE_WEBHOOK_SIGNED_PART.
func (d *run) webhooks(ctx context.Context, st *store.Store) {
	ctx, cancel := d.timeout(ctx)
	defer cancel()
	cfg := d.cfg
	refused, err := st.RefusedDeliveries(ctx)
	if err != nil {
		d.rep.add(Fail, CheckWebhooks, "cannot read the refused deliveries (%s); run sweeper migrate", errText(err))
		return
	}
	if len(refused) == 0 {
		d.rep.add(OK, CheckWebhooks, "no delivery refused with 401 is on record (the service keeps the %d newest); "+
			"after Interlace's first delivery, run sweeper doctor again if its dashboard shows failures", store.RefusedSampleSize)
		return
	}
	secrets := map[string]string{"current": cfg.WebhookSecret, "previous": cfg.WebhookSecretPrevious}
	counts := map[sigMatch]int{}
	unsigned, unmatched := 0, 0
	for _, r := range refused {
		if strings.TrimSpace(r.Signature) == "" {
			unsigned++
			continue
		}
		if m, ok := matchSignature(r, secrets); ok {
			counts[m]++
		} else {
			unmatched++
		}
	}
	n := len(refused)
	if len(counts) == 0 {
		if unmatched == 0 {
			d.rep.add(Warn, CheckWebhooks, "the %d refused deliveries on record carried no Signature header (the legacy envelope "+
				"is accepted unsigned; a v3 one must be signed): nothing to set unless Interlace's dashboard shows failed deliveries", n)
			return
		}
		d.rep.add(Fail, CheckWebhooks, "%d of %d refused deliveries match no signed part (resource, body, timestamp+resource) with "+
			"the current or previous secret (%d carried no Signature); set INTERLACE_WEBHOOK_SECRET to the webhook secret of "+
			"Interlace's dashboard (else the client secret); if it is right, these deliveries did not come from Interlace", unmatched, n, unsigned)
		return
	}
	// The verdict follows the most frequent match; ties go to the order of matches found.
	matches := make([]sigMatch, 0, len(counts))
	for m := range counts {
		matches = append(matches, m)
	}
	sort.SliceStable(matches, func(i, j int) bool { return counts[matches[i]] > counts[matches[j]] })
	best := matches[0]
	seen := fmt.Sprintf("%d of %d refused deliveries are signed over %s", counts[best], n, best)
	if others := n - counts[best]; others > 0 {
		seen += fmt.Sprintf(" (%d others: %d unmatched, %d unsigned)", others, unmatched, unsigned)
	}
	switch {
	case best.hex:
		d.rep.add(Fail, CheckWebhooks, "%s; sweeper verifies only Base64 signatures: nothing can be set yet, report this to the sweeper team", seen)
	case best.part == partTimestampResource:
		d.rep.add(Fail, CheckWebhooks, "%s; sweeper cannot verify timestamp+resource yet: nothing can be set, report this to the sweeper team", seen)
	case best.part != cfg.WebhookSignedPart:
		d.rep.add(Fail, CheckWebhooks, "%s; set INTERLACE_WEBHOOK_SIGNED_PART=%s", seen, best.part)
	default:
		d.rep.add(OK, CheckWebhooks, "%s, which the current settings accept: they were refused before the configuration changed", seen)
	}
}

// poller reports the backfill poller's last success and error (contract §9) from poll_state, which a
// later migration (issue 11) adds. Without that table there is no poller in this schema, and no line.
func (d *run) poller(ctx context.Context, pool *pgxpool.Pool) {
	ctx, cancel := d.timeout(ctx)
	defer cancel()
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('poll_state') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return
	}
	rows, err := pool.Query(ctx, `
SELECT name, last_success_at, last_error_at, COALESCE(last_error, ''), consecutive_failures
  FROM poll_state ORDER BY name`)
	if err != nil {
		d.rep.add(Warn, CheckPoller, "poll_state is unreadable (%s); run sweeper migrate", errText(err))
		return
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, lastErr string
		var success, errAt *time.Time
		var failures int
		if err := rows.Scan(&name, &success, &errAt, &lastErr, &failures); err != nil {
			d.rep.add(Warn, CheckPoller, "poll_state is unreadable (%s); run sweeper migrate", errText(err))
			return
		}
		n++
		switch {
		case errAt != nil && (success == nil || errAt.After(*success)):
			d.rep.add(Warn, CheckPoller, "%s: last success %s, then %d failure(s) in a row, the last at %s: %s; see the transfer list line",
				name, when(success), failures, when(errAt), lastErr)
		default:
			d.rep.add(OK, CheckPoller, "%s: last success %s, no failure since", name, when(success))
		}
	}
	if err := rows.Err(); err != nil {
		d.rep.add(Warn, CheckPoller, "poll_state is unreadable (%s)", errText(err))
		return
	}
	if n == 0 {
		d.rep.add(OK, CheckPoller, "the backfill poller has not run against this database yet (sweeper serve runs it every SWEEPER_POLL_INTERVAL)")
	}
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

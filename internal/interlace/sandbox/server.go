package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap"
)

const maxBodyBytes = 1 << 20

// Server is the fake Interlace. Create it with New, serve Handler(), and Close it to stop its background
// goroutines (webhook delivery and withdrawal settlement).
//
// Concurrency: all ledger state sits behind one mutex that is only ever held for in-memory work (never across
// network I/O, sleeps or JSON encoding of large values). An idempotency check and the movement it guards happen
// in the same critical section, which serialises concurrent requests for the same key: exactly one applies.
type Server struct {
	cfg    Config
	log    *zap.Logger
	rng    *randSource
	ids    snowflake
	faults atomic.Pointer[Faults]
	mux    *http.ServeMux

	authMu     sync.RWMutex
	codes      map[string]time.Time // OAuth code -> expiry; single use
	tokens     map[string]time.Time // access token -> expiry
	refreshes  map[string]time.Time // refresh token -> expiry; single use
	authIssued int

	keysMu    sync.Mutex
	keyCounts map[string]int      // idempotency key -> number of requests that carried it
	conflicts map[string]int      // idempotency key -> replays whose body differed from the first request
	answers   map[string][]string // idempotency key -> class of every answer, in order (Ledger.AnswersByIdempotencyKey)

	mu             sync.Mutex // the ledger; see the type comment
	infinity       decimal.Decimal
	created        time.Time
	wallets        map[string]*wallet
	walletOrder    []*wallet
	walletsByRef   map[string]*wallet
	lastUSDFunded  *wallet
	internals      []*internalRec // copy-on-write records: an update replaces the pointer
	internalByCTID map[string]int // index in internals
	internalByHdr  map[string]int
	trades         []*tradeRec
	tradesByRef    map[string]*tradeRec
	deposits       []*depositRec // copy-on-write records: a refund replaces the pointer
	chains         []*chainRec   // copy-on-write records: an update replaces the pointer
	chainByKey     map[string]int
	transfers      []xref // deposits and blockchain transfers in creation order (the list endpoint)
	transferByID   map[string]xref

	sched     *scheduler
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// New builds a Server and starts its background goroutines.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	s := &Server{
		cfg:            cfg,
		log:            cfg.Logger,
		rng:            newRandSource(cfg.Seed),
		codes:          map[string]time.Time{},
		tokens:         map[string]time.Time{},
		refreshes:      map[string]time.Time{},
		keyCounts:      map[string]int{},
		conflicts:      map[string]int{},
		answers:        map[string][]string{},
		infinity:       cfg.InfinityAvailable,
		created:        now,
		wallets:        map[string]*wallet{},
		walletsByRef:   map[string]*wallet{},
		internalByCTID: map[string]int{},
		internalByHdr:  map[string]int{},
		tradesByRef:    map[string]*tradeRec{},
		chainByKey:     map[string]int{},
		transferByID:   map[string]xref{},
		ctx:            ctx,
		cancel:         cancel,
	}
	s.faults.Store(&Faults{})
	master := &wallet{
		id:         cfg.MasterWalletID,
		nickname:   "Master",
		master:     true,
		createTime: now,
		balances:   map[string]decimal.Decimal{},
	}
	if !cfg.EmptyMaster {
		master.balances["USDC"] = decimal.NewFromInt(1000)
		master.balances["USDT"] = decimal.NewFromInt(1000)
	}
	s.wallets[master.id] = master
	s.walletOrder = append(s.walletOrder, master)
	s.sched = newScheduler(ctx, cfg.DeliveryWorkers)
	s.routes()
	return s
}

// Handler serves the Interlace API and the /sandbox control endpoints.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops webhook delivery and withdrawal settlement and waits for the delivery goroutines. Deliveries in
// flight are cancelled, queued ones dropped, and withdrawals still Pending stay Pending. The HTTP handler keeps
// working.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.sched.wait()
	})
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) { s.faults.Store(&f) }

// CurrentFaults returns the injected faults.
func (s *Server) CurrentFaults() Faults { return *s.faults.Load() }

func (s *Server) routes() {
	m := http.NewServeMux()
	s.oauthRoutes(m)

	s.api(m, "POST /open-api/v3/cryptoconnect/wallets", familyA, s.handleCreateWallet)
	s.api(m, "GET /open-api/v3/cryptoconnect/wallets/{id}", familyA, s.handleGetWallet)
	s.api(m, "POST /open-api/v3/cryptoconnect/wallets/{id}/addresses", familyA, s.handleCreateAddress)
	s.api(m, "GET /open-api/v3/cards/wallets", familyA, s.handleCardWallets)
	s.api(m, "POST /open-api/v3/business/transfer/internal", familyA, s.handleInternalTransfer)
	s.api(m, "GET /open-api/v3/cryptoconnect/convert/currency-pair", familyB, s.handleCurrencyPair)
	s.api(m, "POST /open-api/v3/cryptoconnect/convert/estimate-quote", familyA, s.handleEstimateQuote)
	s.api(m, "POST /open-api/v3/cryptoconnect/convert/trades", familyA, s.handleCreateTrade)
	s.api(m, "POST /open-api/v3/cryptoconnect/transfers/fee-and-quota", familyB, s.handleFeeAndQuota)
	s.api(m, "POST /open-api/v3/cryptoconnect/transfers", familyB, s.handleCreateChainTransfer)
	s.api(m, "GET /open-api/v3/cryptoconnect/transfers/{id}", familyB, s.handleGetTransfer)
	s.api(m, "GET /open-api/v3/cryptoconnect/transfers", familyB, s.handleListTransfers)

	m.HandleFunc("POST /sandbox/deposits", s.handleCreateDeposit)
	m.HandleFunc("GET /sandbox/ledger", s.handleLedger)
	m.HandleFunc("GET /sandbox/faults", s.handleGetFaults)
	m.HandleFunc("PUT /sandbox/faults", s.handlePutFaults)
	s.mux = m
}

// api registers a business endpoint: token check, then the handler, which drives faults through call.begin.
func (s *Server) api(m *http.ServeMux, pattern string, f family, h func(*call)) {
	m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := &call{s: s, w: w, r: r, fam: f}
		if !s.validToken(r.Header.Get("x-access-token")) {
			c.write(http.StatusUnauthorized, errorBody(f, &apiError{
				kind: ErrInvalid, code: codeUnauthorized, msg: "missing, invalid or expired x-access-token",
			}))
			return
		}
		h(c)
	})
}

// call is one business request in flight.
type call struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	fam  family
	drop bool // TimeoutAfterCommit rolled: apply, then hang up instead of answering

	tracked []string // keys whose answers are recorded in AnswersByIdempotencyKey (see track)
	noted   bool     // the answer's class is recorded
}

// track makes the call's answer recorded under each distinct non-empty key. Money-moving handlers call it
// before begin, so that an injected fault is recorded too.
func (c *call) track(keys ...string) {
	for i, k := range keys {
		if k != "" && !containsBefore(keys, i, k) {
			c.tracked = append(c.tracked, k)
		}
	}
}

// note records the class of the call's answer, once: the first class noted wins. Handlers note inside the
// ledger's critical section where the outcome is decided, so that concurrent requests for one key are
// recorded in the order they were decided, not in the order their answers were written. A dropped answer
// (TimeoutAfterCommit) is recorded as "dropped:<class>".
func (c *call) note(class string) {
	if c.noted || len(c.tracked) == 0 {
		return
	}
	c.noted = true
	if c.drop {
		class = AnswerDroppedPrefix + class
	}
	c.s.keysMu.Lock()
	for _, k := range c.tracked {
		c.s.answers[k] = append(c.s.answers[k], class)
	}
	c.s.keysMu.Unlock()
}

// decode reads the JSON body into v; on failure it answers with a business error and returns false.
func (c *call) decode(v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.write(http.StatusRequestEntityTooLarge, errorBody(c.fam, invalidf("request body over %d bytes", maxBodyBytes)))
			return false
		}
		c.fail(invalidf("cannot read request body: %v", err))
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.fail(invalidf("request body is not valid JSON: %v", err))
		return false
	}
	return true
}

// begin counts the request's idempotency keys, then applies the injected faults. It returns false when a fault
// already answered (or the client went away): the operation must then not be applied.
func (c *call) begin(keys ...string) bool {
	c.s.countKeys(keys)
	f := c.s.faults.Load()
	if f.LatencyMs > 0 {
		t := time.NewTimer(time.Duration(f.LatencyMs) * time.Millisecond)
		select {
		case <-t.C:
		case <-c.r.Context().Done():
			t.Stop()
			return false
		}
	}
	if f.ErrorRate > 0 && c.s.rng.float64() < f.ErrorRate {
		statuses := [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusTooManyRequests}
		st := statuses[c.s.rng.intN(len(statuses))]
		if st == http.StatusTooManyRequests {
			c.w.Header().Set("Retry-After", "1")
		}
		c.note(AnswerFault)
		c.write(st, errorBody(c.fam, &apiError{code: codeUnavailable, msg: "injected fault: " + http.StatusText(st)}))
		return false
	}
	if f.TimeoutAfterCommitRate > 0 && c.s.rng.float64() < f.TimeoutAfterCommitRate {
		c.drop = true
	}
	return true
}

func (c *call) ok(data any) {
	b, err := successBody(c.fam, data)
	if err != nil {
		c.s.log.Error("sandbox: encode response", zap.Error(err))
		c.write(http.StatusInternalServerError, errorBody(c.fam, &apiError{code: codeUnavailable, msg: "encode response"}))
		return
	}
	c.write(http.StatusOK, b)
}

// fail answers a business error: HTTP 200 with a non-success code, as Interlace does. Unless the handler
// noted another class (duplicate_error), the answer is a rejection.
func (c *call) fail(e *apiError) {
	c.note(AnswerRejected)
	c.write(http.StatusOK, errorBody(c.fam, e))
}

func (c *call) write(status int, body []byte) {
	if c.drop {
		hangUp(c.w)
		return
	}
	writeJSON(c.w, status, body)
}

// hangUp closes the connection without an answer: the client sees a dropped connection, not a status.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 or a wrapped writer that cannot hijack: aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) countKeys(keys []string) {
	if len(keys) == 0 {
		return
	}
	s.keysMu.Lock()
	for i, k := range keys {
		if k == "" || containsBefore(keys, i, k) {
			continue
		}
		s.keyCounts[k]++
	}
	s.keysMu.Unlock()
}

func (s *Server) countConflict(key string) {
	s.keysMu.Lock()
	s.conflicts[key]++
	s.keysMu.Unlock()
	s.log.Warn("sandbox: idempotency key replayed with a different request", zap.String("key", key))
}

func containsBefore(keys []string, i int, k string) bool {
	for _, x := range keys[:i] {
		if x == k {
			return true
		}
	}
	return false
}

// resolveWalletLocked maps a CryptoConnect id to a wallet: a wallet id, or the account id (or ""), which the
// guide uses to mean the account's master wallet. Caller holds s.mu.
func (s *Server) resolveWalletLocked(id string) *wallet {
	if id == s.cfg.AccountID || id == "" {
		return s.wallets[s.cfg.MasterWalletID]
	}
	return s.wallets[id]
}

func (s *Server) checkAccount(accountID string) *apiError {
	if accountID == "" {
		return invalidf("accountId is required")
	}
	if accountID != s.cfg.AccountID {
		return invalidf("accountId %q does not match the sandbox account", accountID)
	}
	return nil
}

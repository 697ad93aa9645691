package sandbox

import (
	"net/http"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap"
)

// Defaults taken from the MoR guide's examples, so that a quick start against the sandbox reproduces the guide's
// numbers.
const (
	DefaultAccountID        = "b27c8873-e400-47cd-adc1-035cfa0d5347"
	DefaultInfinityWalletID = "63b2af21-1e8c-407b-8df9-10adc05963aa"
	DefaultMasterWalletID   = "32aae8b7-4a69-474f-b7d5-337e190af878"
	// DefaultBudgetWalletID is the id of the account's Budget USD balance (cards/wallets objectType 1), listed
	// only while Faults.BudgetBalance is on. Not from the guide: any id distinct from the Infinity one.
	DefaultBudgetWalletID = "7d0c5d3e-2f4b-4c1a-9e8f-b1d9a6c4e210"
)

// SignedPart values: what the webhook Signature covers.
const (
	SignedPartResource = "resource"
	SignedPartBody     = "body"
)

// Config configures a Server. The zero value is usable: every zero field takes the default documented on it.
// Because zero means "default", a rate cannot be configured to exactly zero; use a tiny value instead.
type Config struct {
	// AccountID is the one account the sandbox serves. Default DefaultAccountID (the guide's).
	AccountID string
	// InfinityWalletID is the id of the account's Infinity Account USD balance. Default DefaultInfinityWalletID.
	InfinityWalletID string
	// InfinityAvailable is the Infinity balance at start. Default 56846.52 (the guide's).
	InfinityAvailable decimal.Decimal
	// MasterWalletID is the account's master CryptoConnect wallet. It starts with 1000 USDC and 1000 USDT so that
	// withdrawals can pay gas without a deposit first. Default DefaultMasterWalletID.
	MasterWalletID string
	// EmptyMaster starts the master wallet with nothing (env SANDBOX_FUND_MASTER=false). Default false (funded),
	// so the quick start's withdrawals can pay gas; true is the realistic profile, where a payout that converts
	// USD and then needs gas finds none it did not bring.
	EmptyMaster bool
	// BudgetWalletID is the id of the Budget balance listed while Faults.BudgetBalance is on. Default
	// DefaultBudgetWalletID.
	BudgetWalletID string
	// BudgetAvailable is the Budget balance shown by GET cards/wallets. Default 1000; it never moves.
	BudgetAvailable decimal.Decimal
	// RefundDelay is how long after a deposit's Closed notification (its first attempt, or the deposit itself
	// when no notification goes out) an injected refund happens. Default 200ms divided by TimeScale: short
	// enough that a sweep often races it, long enough that a fast sweep wins sometimes.
	RefundDelay time.Duration

	// WebhookURL receives the notifications; "" disables delivery (balances still move).
	WebhookURL string
	// WebhookSecret is the HMAC-SHA256 key of the Signature header.
	WebhookSecret string
	// SignedPart is SignedPartResource (default, the `resource` text) or SignedPartBody (the raw body).
	SignedPart string
	// TimeScale divides Interlace's webhook retry schedule (10 s … 2 h) so tests can watch retries. Default 1.
	TimeScale float64
	// DeliveryWorkers bounds concurrent webhook deliveries. Default 32: enough to keep a slow receiver busy
	// without one goroutine per notification.
	DeliveryWorkers int
	// DeliveryTimeout is the per-attempt deadline; Interlace documents 5 s. Default 5s.
	DeliveryTimeout time.Duration
	// DuplicateMaxDelay bounds how late an injected duplicate delivery may come after the original was
	// released. Default 1s.
	DuplicateMaxDelay time.Duration

	// TransferFeeRate is the fee share of an internal CryptoConnect stablecoin -> Infinity transfer. Default
	// 0.005 (the guide: 10 USDC -> fee 0.05, 9.95 USD credited).
	TransferFeeRate decimal.Decimal
	// TradeFeeRate is the fee share of a trade's rfqAmount. Default 0.005 (the guide: 10 USD -> fee 0.05).
	TradeFeeRate decimal.Decimal
	// TradeRate converts quote into base currency. Default 1.
	TradeRate decimal.Decimal
	// GasFee is the network fee of a blockchain transfer, in the transfer currency. Default 0.2 (the guide's).
	GasFee decimal.Decimal
	// WithdrawalDelay is how long a blockchain transfer stays Pending before it is Closed. Default 2s.
	WithdrawalDelay time.Duration
	// TokenTTL is the lifetime (expiresIn) of issued access tokens. Default 24h (the documented value).
	TokenTTL time.Duration
	// StaticToken, when set, is accepted as an access token without the OAuth flow (INTERLACE_ACCESS_TOKEN).
	StaticToken string

	// Token endpoint variants (contract §10), so tests can demand each one a real account may have.
	// AuthStyle is AuthStyleBoth (default; both styles served), AuthStyleV3 (the unversioned
	// /open-api/oauth/* paths answer 404) or AuthStyleLegacy (the /open-api/v3/oauth/* paths answer 404).
	AuthStyle string
	// StrictTokens is Interlace's "strict access token mode": every token call (access-token and
	// refresh-token, in either style) needs X-Timestamp (Unix seconds, at most 5 minutes off) and an
	// X-Signature made with ClientSecret (see signTokenCall); others are refused with a business error.
	StrictTokens bool
	// ClientSecret, when set, is the one client secret accepted: in the unversioned access-token body
	// and as the strict-mode signing key. Empty accepts any secret (and, in strict mode, checks only that
	// the headers are there and the timestamp is fresh).
	ClientSecret string

	// Seed seeds the random source (ids, hashes, fault and duplicate rolls); 0 seeds from the clock.
	Seed int64
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// HTTPClient delivers webhooks. Default: a client whose transport keeps DeliveryWorkers idle connections
	// per host, so a busy receiver is not hammered with new connections.
	HTTPClient *http.Client
}

// Faults are injected into the /open-api business endpoints (not OAuth, not /sandbox).
type Faults struct {
	// ErrorRate is the share of requests answered 500/502/503/429 without being applied.
	ErrorRate float64 `json:"errorRate"`
	// LatencyMs is slept before every request is handled.
	LatencyMs int `json:"latencyMs"`
	// TimeoutAfterCommitRate is the share of requests that are applied and then answered by closing the
	// connection, so the client cannot know the outcome.
	TimeoutAfterCommitRate float64 `json:"timeoutAfterCommitRate"`
	// DuplicateDeliveryRate is the share of webhook notifications delivered a second time, possibly
	// concurrently with or after the original.
	DuplicateDeliveryRate float64 `json:"duplicateDeliveryRate"`

	// The realism of contract §12. Every one is off by default.

	// DuplicateAnswer is what a repeated clientTransactionId / Idempotency-Key of an internal transfer, or
	// idempotencyKey of a blockchain transfer, gets once a transfer exists under it: DuplicateFirst ("" or
	// "first", the transfer in its current state, as Interlace documents) or DuplicateError (HTTP 200 with code
	// 100409 "duplicate clientTransactionId" in the endpoint's envelope, whatever the transfer's state).
	DuplicateAnswer string `json:"duplicateAnswer"`
	// PendingRate is the share of new internal transfers answered PENDING: nothing moves until PendingMs
	// later, when the balance is checked and the transfer becomes CLOSED (applied) or FAILED (short, nothing
	// moved). Replays before then answer PENDING again.
	PendingRate float64 `json:"pendingRate"`
	// PendingMs is how long a PENDING internal transfer waits before it is applied (0..600000).
	PendingMs int `json:"pendingMs"`
	// DropWebhookRate is the share of deposits that get no notification at all (refund included): only the
	// transfer list and GET transfers/{id} show them.
	DropWebhookRate float64 `json:"dropWebhookRate"`
	// LegacyEnvelopeRate is the share of deposits whose notifications all come in the legacy envelope
	// {"id","businessType","data":{…},"sign"} with no Signature/Timestamp headers (contract §9).
	LegacyEnvelopeRate float64 `json:"legacyEnvelopeRate"`
	// RefundAfterCloseRate is the share of deposits refunded RefundDelay after their Closed notification:
	// the wallet is debited, the deposit reads Refunded and a Refunded notification follows, if the wallet
	// still holds the amount; otherwise (already swept) nothing happens and the ledger says so.
	RefundAfterCloseRate float64 `json:"refundAfterCloseRate"`
	// BudgetBalance makes GET /open-api/v3/cards/wallets list a Budget USD balance (objectType 1, walletType
	// 0) before the Infinity one unless objectType=0 is asked for; walletType does not filter. Off by default
	// because a client that filters by walletType alone and takes the first USD entry would sweep into the
	// Budget, and the quick start discovers the Infinity balance that way.
	BudgetBalance bool `json:"budgetBalance"`
}

// DuplicateAnswer values.
const (
	DuplicateFirst = "first"
	DuplicateError = "error"
)

// maxPendingMs bounds PendingMs: ten minutes is longer than any sane client waits on one transfer.
const maxPendingMs = 600_000

// Validate checks every field's range (rates 0..1, latencyMs 0..60000, pendingMs 0..600000, duplicateAnswer "",
// "first" or "error"). PUT /sandbox/faults applies it; Go callers of SetFaults may too.
func (f Faults) Validate() error {
	for name, v := range map[string]float64{
		"errorRate":              f.ErrorRate,
		"timeoutAfterCommitRate": f.TimeoutAfterCommitRate,
		"duplicateDeliveryRate":  f.DuplicateDeliveryRate,
		"pendingRate":            f.PendingRate,
		"dropWebhookRate":        f.DropWebhookRate,
		"legacyEnvelopeRate":     f.LegacyEnvelopeRate,
		"refundAfterCloseRate":   f.RefundAfterCloseRate,
	} {
		if v < 0 || v > 1 {
			return invalidf("%s must be between 0 and 1, got %v", name, v)
		}
	}
	if f.LatencyMs < 0 || f.LatencyMs > 60_000 {
		return invalidf("latencyMs must be between 0 and 60000, got %d", f.LatencyMs)
	}
	if f.PendingMs < 0 || f.PendingMs > maxPendingMs {
		return invalidf("pendingMs must be between 0 and %d, got %d", maxPendingMs, f.PendingMs)
	}
	switch f.DuplicateAnswer {
	case "", DuplicateFirst, DuplicateError:
	default:
		return invalidf("duplicateAnswer must be %q or %q, got %q", DuplicateFirst, DuplicateError, f.DuplicateAnswer)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.AccountID == "" {
		c.AccountID = DefaultAccountID
	}
	if c.InfinityWalletID == "" {
		c.InfinityWalletID = DefaultInfinityWalletID
	}
	if c.InfinityAvailable.IsZero() {
		c.InfinityAvailable = decimal.RequireFromString("56846.52")
	}
	if c.MasterWalletID == "" {
		c.MasterWalletID = DefaultMasterWalletID
	}
	if c.BudgetWalletID == "" {
		c.BudgetWalletID = DefaultBudgetWalletID
	}
	if c.BudgetAvailable.IsZero() {
		c.BudgetAvailable = decimal.NewFromInt(1000)
	}
	if c.SignedPart == "" {
		c.SignedPart = SignedPartResource
	}
	if c.TimeScale <= 0 {
		c.TimeScale = 1
	}
	if c.RefundDelay <= 0 {
		c.RefundDelay = time.Duration(float64(200*time.Millisecond) / c.TimeScale)
	}
	if c.DeliveryWorkers <= 0 {
		c.DeliveryWorkers = 32
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = 5 * time.Second
	}
	if c.DuplicateMaxDelay <= 0 {
		c.DuplicateMaxDelay = time.Second
	}
	if c.TransferFeeRate.IsZero() {
		c.TransferFeeRate = decimal.RequireFromString("0.005")
	}
	if c.TradeFeeRate.IsZero() {
		c.TradeFeeRate = decimal.RequireFromString("0.005")
	}
	if c.TradeRate.IsZero() {
		c.TradeRate = decimal.NewFromInt(1)
	}
	if c.GasFee.IsZero() {
		c.GasFee = decimal.RequireFromString("0.2")
	}
	if c.WithdrawalDelay <= 0 {
		c.WithdrawalDelay = 2 * time.Second
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 24 * time.Hour
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = c.DeliveryWorkers
		c.HTTPClient = &http.Client{Transport: tr}
	}
	return c
}

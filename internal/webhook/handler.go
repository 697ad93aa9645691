package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/store"
)

// MaxBodyBytes is the largest delivery accepted (contract §3: 413 above 1 MiB).
const MaxBodyBytes = 1 << 20

// Recorder durably records a delivery; *store.Store and the group-commit batcher
// satisfy it. It must return only after the delivery is committed.
type Recorder interface {
	Ingest(ctx context.Context, d store.Delivery) (store.Effect, error)
}

// RefusedSink keeps a sample of deliveries refused with 401. It is called on every such refusal, a
// flood of garbage included, so it must bound its own cost; the 401 is answered whatever it does.
type RefusedSink interface {
	Refused(ctx context.Context, d store.RefusedDelivery) bool
}

// sampleRefused hands a 401 to the optional RefusedSink with the headers that say how it was signed.
func (h *Handler) sampleRefused(r *http.Request, body []byte, reason string) {
	if h.opts.Refused == nil {
		return
	}
	h.opts.Refused.Refused(r.Context(), store.RefusedDelivery{
		Reason: reason, Signature: r.Header.Get("Signature"), Timestamp: r.Header.Get("Timestamp"),
		SignatureMethod: r.Header.Get("Signature-Method"), Body: body, BodySize: len(body),
	})
}

// Options configure the handler.
type Options struct {
	Verifier *Verifier
	Recorder Recorder
	Refused  RefusedSink // optional: every delivery refused with 401 (contract §10's sample for `sweeper doctor`)
	// AccountID is the merchant account; a deposit naming another account is
	// recorded but never swept.
	AccountID string
	// TargetCurrency is what the Infinity Account is credited in.
	TargetCurrency string
	// SweepCurrencies are the deposit currencies that are swept.
	SweepCurrencies []string
	// ConfirmDeposits: no sweep until Interlace's own record agrees (contract §9).
	ConfirmDeposits bool
	// WakePoller, when set, is called after a legacy-envelope delivery is stored
	// (the in-process poller; other replicas hear the database's NOTIFY).
	WakePoller func()
	Logger     *zap.Logger
	Metrics    *metrics.Metrics
}

// Handler serves POST /webhooks/interlace.
type Handler struct {
	opts   Options
	intake *Intake
}

// NewHandler builds the webhook handler.
func NewHandler(opts Options) (*Handler, error) {
	if opts.Verifier == nil || opts.Recorder == nil || opts.AccountID == "" {
		return nil, errors.New("webhook: Verifier, Recorder and AccountID are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.TargetCurrency == "" {
		opts.TargetCurrency = "USD"
	}
	h := &Handler{opts: opts, intake: NewIntake(IntakeConfig{
		AccountID: opts.AccountID, TargetCurrency: opts.TargetCurrency,
		SweepCurrencies: opts.SweepCurrencies, ConfirmDeposits: opts.ConfirmDeposits,
	})}
	return h, nil
}

var ackBody = []byte(`{"received":true}` + "\n")

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	log := h.opts.Logger
	reject := func(status int, outcome, msg string, fields ...zap.Field) {
		h.opts.Metrics.Webhook(outcome)
		log.Warn("webhook refused", append(fields, zap.String("outcome", outcome), zap.Int("status", status),
			zap.String("remote", r.RemoteAddr), zap.Duration("duration", time.Since(start)))...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":{"code":"`+outcome+`","message":"`+msg+`"}}`+"\n")
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reject(http.StatusRequestEntityTooLarge, "too_large", "body exceeds 1 MiB")
			return
		}
		reject(http.StatusBadRequest, "bad_request", "could not read body")
		return
	}
	if h.legacy(w, r, body, start) {
		return
	}
	sig := r.Header.Get("Signature")
	if sig == "" {
		h.sampleRefused(r, body, "missing Signature header")
		reject(http.StatusUnauthorized, "bad_signature", "missing Signature header")
		return
	}

	var env *Envelope
	var keyIdx int
	if h.opts.Verifier.SignsBody() {
		// The signature covers the raw body: check it before parsing anything.
		if keyIdx, err = h.opts.Verifier.Verify(sig, body, nil); err != nil {
			h.sampleRefused(r, body, "signature does not match")
			reject(http.StatusUnauthorized, "bad_signature", "signature does not match")
			return
		}
		if env, err = ParseEnvelope(body); err != nil {
			// Signed but unparseable: kept for inspection, like any signed delivery we cannot use.
			h.record(w, r.Context(), start, store.Delivery{
				NotificationID: syntheticID(body), SignatureKey: keyIdx, Body: body,
				Outcome: store.OutcomeUnusable, Reason: err.Error(),
			})
			return
		}
	} else {
		if env, err = ParseEnvelope(body); err != nil {
			// Nothing here is signed yet, so nothing is stored.
			reject(http.StatusBadRequest, "bad_request", jsonSafe(err.Error()))
			return
		}
		if keyIdx, err = h.opts.Verifier.Verify(sig, body, env); err != nil {
			h.sampleRefused(r, body, "signature does not match")
			reject(http.StatusUnauthorized, "bad_signature", "signature does not match", zap.String("notification_id", safeID(env.ID)))
			return
		}
	}

	h.record(w, r.Context(), start, h.delivery(env, body, keyIdx))
}

// delivery classifies a verified envelope into what gets stored.
func (h *Handler) delivery(env *Envelope, body []byte, keyIdx int) store.Delivery {
	d := store.Delivery{
		NotificationID: env.ID, EventType: env.EventType, SignatureKey: keyIdx, Body: body,
		Outcome: store.OutcomeIgnored,
	}
	badID := d.NotificationID == "" || !printableID(d.NotificationID)
	if badID {
		// No usable delivery id: derive one from the bytes, so a redelivery of the
		// same bytes is still recognised as one delivery. The resource is still
		// read: a signed deposit never vanishes (contract §4).
		d.NotificationID = syntheticID(body)
	}
	d = h.intake.Delivery(d, env.Resource, store.SourceWebhook, false)
	if badID && d.Deposit == nil {
		d.Outcome, d.Reason = store.OutcomeUnusable, "missing or malformed notification id"
	} else if badID && d.Reason == "" {
		d.Reason = "missing or malformed notification id"
	}
	if d.Deposit == nil && d.Outcome == store.OutcomeIgnored {
		// Not a deposit: perhaps one of our withdrawals' transfers, applied with the delivery.
		return withdrawalDelivery(d, env.Resource)
	}
	return d
}

// record stores d and answers; it reports whether d is stored (committed now or before).
func (h *Handler) record(w http.ResponseWriter, ctx context.Context, start time.Time, d store.Delivery) bool {
	effect, err := h.opts.Recorder.Ingest(ctx, d)
	log := h.opts.Logger.With(zap.String("notification_id", safeID(d.NotificationID)),
		zap.String("event_type", safeID(d.EventType)), zap.Duration("duration", time.Since(start)))
	if d.TransferID != "" {
		log = log.With(zap.String("deposit_id", d.TransferID))
	}
	if d.Deposit != nil {
		// The id the sweep will carry upstream: one grep joins this line to the sweep's.
		log = log.With(zap.Stringer("client_transaction_id", d.Deposit.ClientTransactionID))
	}
	if err != nil {
		// Not committed: 503 makes Interlace deliver it again later.
		h.opts.Metrics.Webhook("unavailable")
		log.Error("webhook not recorded", zap.String("outcome", "unavailable"), zap.Error(err))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "10")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"could not record the delivery; retry"}}`+"\n")
		return false
	}
	outcome := d.Outcome
	if effect == store.EffectDuplicate {
		outcome = "duplicate"
	}
	h.opts.Metrics.Webhook(outcome)
	if d.Deposit != nil && (effect == store.EffectCreated || effect == store.EffectAdvanced) {
		h.opts.Metrics.Deposit(d.Deposit.Status)
	}
	if effect == store.EffectHeld || effect == store.EffectConflict {
		h.opts.Metrics.DepositConflict(string(effect))
	}
	fields := []zap.Field{zap.String("outcome", outcome), zap.String("effect", string(effect))}
	if d.Reason != "" {
		fields = append(fields, zap.String("reason", d.Reason))
	}
	if d.Outcome == store.OutcomeUnusable || effect == store.EffectConflict || effect == store.EffectHeld {
		log.Warn("webhook recorded", fields...)
	} else {
		log.Info("webhook recorded", fields...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ackBody)
	return true
}

func syntheticID(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func printableID(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// safeID keeps attacker-controlled text out of logs in a bounded, printable form.
func safeID(s string) string {
	if printableID(s) {
		return s
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s), "?")
}

func jsonSafe(s string) string {
	return strings.NewReplacer(`"`, `'`, `\`, `/`, "\n", " ").Replace(s)
}

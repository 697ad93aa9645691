package webhook

import (
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sweeperhq/sweeper/internal/store"
)

// LegacyIDPrefix namespaces the notification ids of legacy-envelope deliveries.
// They are unsigned, so whoever can reach the endpoint can choose them: without
// the prefix a forged legacy delivery could take a future v3 notification's id and
// turn the real one into a "duplicate".
const LegacyIDPrefix = "legacy:"

// legacyEnvelope is Interlace's older notification style (contract §9):
// {"id", "businessType", "data": {…object…}, "sign"}.
type legacyEnvelope struct {
	ID           string
	BusinessType string
	TransferID   string // data.id, when it reads as an id
}

// parseLegacy recognises the legacy envelope: a JSON object with a string
// `businessType` and an object `data`, and neither `eventType` nor `resource`
// (a body with those is the v3 envelope, which must be signed).
func parseLegacy(body []byte) (*legacyEnvelope, bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, false
	}
	it, ok := newObjectIter(body)
	if !ok {
		return nil, false
	}
	var id, bt, data []byte
	for key, val, ok := it.next(); ok; key, val, ok = it.next() {
		switch k := keyText(key); {
		case keyIs(k, "eventType"), keyIs(k, "resource"):
			return nil, false
		case keyIs(k, "id"):
			id = val
		case keyIs(k, "businessType"):
			bt = val
		case keyIs(k, "data"):
			data = val
		}
	}
	if kindOf(bt) != kindString || kindOf(data) != kindObject {
		return nil, false
	}
	env := &legacyEnvelope{}
	if kindOf(id) == kindString {
		env.ID = unquote(id)
	}
	if s := unquote(bt); checkEventType(s) == nil {
		env.BusinessType = s
	}
	var r rawTransfer
	dit, _ := newObjectIter(data)
	for key, val, ok := dit.next(); ok; key, val, ok = dit.next() {
		r.set(keyText(key), val)
	}
	if tid, err := idField("id", r.id, true); err == nil {
		env.TransferID = tid
	}
	return env, true
}

// legacy stores a legacy-envelope delivery unverified and answers 200 (contract
// §9). It never moves money: its only effect is to wake the poller, and only
// Interlace's own record can make it a deposit. It reports false when the body is
// not a legacy envelope.
func (h *Handler) legacy(w http.ResponseWriter, r *http.Request, body []byte, start time.Time) bool {
	env, ok := parseLegacy(body)
	if !ok {
		return false
	}
	id := env.ID
	if id == "" || !printableID(id) || len(id) > 100 {
		id = syntheticID(body)
	}
	ok = h.record(w, r.Context(), start, store.Delivery{
		NotificationID: LegacyIDPrefix + id, EventType: env.BusinessType, Body: body,
		Outcome: store.OutcomeUnverified, TransferID: env.TransferID,
	})
	if ok && h.opts.WakePoller != nil {
		h.opts.WakePoller()
	}
	return true
}

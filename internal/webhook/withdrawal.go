package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sweeperhq/sweeper/internal/store"
)

const blockchainDestType = "blockchain"

// ClassifyWithdrawal reads a resource that is not a deposit and returns the
// notice it carries about a blockchain transfer (destination.type "blockchain":
// money leaving a CryptoConnect wallet, as a payout's step 5 does), or nil when
// it is no such transfer or names nothing a withdrawal could be matched by.
//
// It is as strict as the deposit classifier, because the notice can complete or
// fail a withdrawal: valid UTF-8 JSON, no keys a decoder could confuse, the id,
// status and transaction hash strings of visible ASCII within bounds. A
// blockchain transfer failing those checks is an error wrapping ErrUnusable: the
// delivery is kept as unusable with the reason, and changes nothing.
func ClassifyWithdrawal(resource string) (*store.WithdrawalNotice, error) {
	b := []byte(resource)
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, nil // ClassifyResource already called it unusable
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, nil
	}
	var dst struct {
		Type json.RawMessage `json:"type"`
	}
	if raw, ok := top["destination"]; !ok || json.Unmarshal(raw, &dst) != nil {
		return nil, nil
	}
	var typ string
	if json.Unmarshal(dst.Type, &typ) != nil || !strings.EqualFold(strings.TrimSpace(typ), blockchainDestType) {
		return nil, nil
	}
	if err := checkDuplicates(b, 0); err != nil {
		return nil, fmt.Errorf("%w: blockchain transfer: %w", ErrUnusable, err)
	}

	n := &store.WithdrawalNotice{Resource: json.RawMessage(bytes.Clone(b))}
	var err error
	if n.TransferID, err = optionalText(top, "id", maxIDLen); err != nil {
		return nil, err
	}
	key, err := optionalText(top, "idempotencyKey", maxIDLen)
	if err != nil {
		return nil, err
	}
	// A key that is not a UUID was not sent by sweeper: nothing to match by it.
	if u, perr := uuid.Parse(key); perr == nil && len(key) == 36 {
		n.IdempotencyKey = u
	}
	if n.Status, err = optionalText(top, "status", maxStatusLen); err != nil {
		return nil, err
	}
	if n.Status == "" {
		return nil, unusablef("blockchain transfer without a status")
	}
	if n.TxHash, err = optionalText(top, "transactionHash", maxIDLen); err != nil {
		return nil, err
	}
	if n.TxHash == "" {
		if n.TxHash, err = optionalText(top, "txHash", maxIDLen); err != nil {
			return nil, err
		}
	}
	if n.TransferID == "" && n.IdempotencyKey == uuid.Nil {
		return nil, nil
	}
	return n, nil
}

// optionalText reads top[key]: absent, null and "" are ""; anything else must be
// a string of visible ASCII no longer than max (surrounding spaces trimmed).
func optionalText(top map[string]json.RawMessage, key string, max int) (string, error) {
	raw, ok := top[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", unusablef("blockchain transfer %s is not a string", key)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > max || !printableID(s) {
		return "", unusablef("blockchain transfer %s is not visible ASCII of at most %d bytes", key, max)
	}
	return s, nil
}

// withdrawalDelivery attaches the withdrawal notice a non-deposit resource
// carries, or marks the delivery unusable when it is a blockchain transfer that
// cannot be trusted.
func withdrawalDelivery(d store.Delivery, resource string) store.Delivery {
	n, err := ClassifyWithdrawal(resource)
	switch {
	case err != nil:
		d.Outcome, d.Reason = store.OutcomeUnusable, err.Error()
	case n != nil:
		d.Withdrawal, d.TransferID = n, n.TransferID
	}
	return d
}

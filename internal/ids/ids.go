// Package ids derives every idempotency key sweeper sends upstream. The keys are
// UUIDv5 (SHA-1, RFC 9562) of a stable business identifier under namespaces fixed
// here forever: the same deposit or withdrawal step yields the same key on any
// database, any replica, any day. Changing a namespace would let money move twice.
package ids

import "github.com/google/uuid"

// The namespaces are constants of the protocol; never change them.
const (
	depositNamespace    = "1b4e28ba-2fa1-5d3e-8b6f-5f1c0e7a9d21"
	withdrawalNamespace = "7c9e6679-7425-50de-944b-e07fc1f90ae7"
	walletNamespace     = "d9428888-122b-51c1-b2a3-6e1e2b4a0c55"
)

// SweepTransactionID is the clientTransactionId (and Idempotency-Key) of the
// transfer that sweeps the deposit with this Interlace transfer id.
func SweepTransactionID(depositID string) uuid.UUID {
	return uuid.NewSHA1(uuid.MustParse(depositNamespace), []byte(depositID))
}

// WithdrawalStepID is the request id of one step of a withdrawal workflow.
func WithdrawalStepID(withdrawalID uuid.UUID, step string) uuid.UUID {
	return uuid.NewSHA1(uuid.MustParse(withdrawalNamespace), []byte(withdrawalID.String()+"/"+step))
}

// WithdrawalID is the id of the withdrawal an operator's idempotency key names.
func WithdrawalID(idempotencyKey string) uuid.UUID {
	return uuid.NewSHA1(uuid.MustParse(withdrawalNamespace), []byte("withdrawal/"+idempotencyKey))
}

// WalletReferenceID is the referenceId of the CryptoConnect wallet of a user, so a
// retried provisioning request never creates a second wallet.
func WalletReferenceID(userRef string) uuid.UUID {
	return uuid.NewSHA1(uuid.MustParse(walletNamespace), []byte(userRef))
}

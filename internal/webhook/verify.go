package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// SignedPart says what the `Signature` header covers. Interlace's text does not
// say (interlace-api-facts.md §1.2); the one live integration we know of signs
// the decoded `resource` string, so that is the default.
type SignedPart string

// The signed parts NewVerifier accepts.
const (
	SignedResource SignedPart = "resource" // the JSON-decoded text of the body's `resource` field
	SignedBody     SignedPart = "body"     // the raw request body, byte for byte
)

// Sentinel errors of Verify and NewVerifier.
var (
	ErrMissingSignature = errors.New("webhook: missing Signature header")
	ErrBadSignature     = errors.New("webhook: bad signature")
	ErrNoSecret         = errors.New("webhook: no webhook secret configured")
)

// signatureLen is the length of a standard, padded Base64 SHA-256 digest:
// base64.StdEncoding.EncodedLen(sha256.Size).
const signatureLen = 44

// Verifier checks webhook signatures against one or more secrets. It is safe
// for concurrent use.
type Verifier struct {
	part SignedPart
	keys []*macPool
	// Strict: a digest has exactly one accepted encoding, so a signature cannot
	// be altered (in its padding bits) and still verify.
	enc *base64.Encoding
}

// macPool recycles HMAC states of one key: hmac.New allocates two SHA-256 states
// and derives the pads, on every webhook otherwise.
type macPool struct {
	index int // position among NewVerifier's secrets, skipped empty ones included
	pool  sync.Pool
}

type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// NewVerifier accepts the current secret first, then any previous ones still
// valid during a rotation; Verify reports the position of the one that matched
// in this argument list (0 = current, 1 = previous). Empty secrets are skipped
// (an unset "previous" variable) without shifting the positions of the others,
// but at least one must remain. An empty part means SignedResource.
func NewVerifier(part SignedPart, secrets ...[]byte) (*Verifier, error) {
	switch part {
	case "":
		part = SignedResource
	case SignedResource, SignedBody:
	default:
		return nil, fmt.Errorf("webhook: signed part %q: want %q or %q", string(part), SignedResource, SignedBody)
	}
	v := &Verifier{part: part, enc: base64.StdEncoding.Strict()}
	for i, s := range secrets {
		if len(s) == 0 {
			continue
		}
		key := append([]byte(nil), s...) // the caller may wipe its copy
		p := &macPool{index: i}
		p.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
		v.keys = append(v.keys, p)
	}
	if len(v.keys) == 0 {
		return nil, ErrNoSecret
	}
	return v, nil
}

// Part reports what the verifier expects the signature to cover.
func (v *Verifier) Part() SignedPart { return v.part }

// SignsBody reports whether the signature covers the raw body, in which case it
// can (and should) be checked before the body is parsed.
func (v *Verifier) SignsBody() bool { return v.part == SignedBody }

// Verify checks signature, the `Signature` header value (standard Base64 of
// HMAC-SHA256(secret, signed part)), against every configured secret and returns
// the index of the matching one (0 = current). The signed part is rawBody in
// SignedBody mode and env.Resource in SignedResource mode (env may be nil in
// SignedBody mode). Every key is computed and compared in constant time, and
// the index is picked without branching on the comparison, so neither the
// running time nor the control flow tells which key matched or how close a
// forgery came.
//
// In SignedResource mode an empty resource is refused: an HMAC over "" would
// vouch for nothing, and a captured one could be replayed on any envelope.
// Note that only the resource is then authenticated; the envelope's id and
// eventType are not, which is why deposits are keyed by the transfer id inside
// the resource.
func (v *Verifier) Verify(signature string, rawBody []byte, env *Envelope) (keyIndex int, err error) {
	signature = strings.Trim(signature, " \t")
	if signature == "" {
		return -1, ErrMissingSignature
	}
	if len(signature) != signatureLen {
		return -1, fmt.Errorf("%w: %d characters, want %d", ErrBadSignature, len(signature), signatureLen)
	}
	// Fixed-size arrays keep the decode on the stack.
	var in [signatureLen]byte
	var got [sha256.Size + 1]byte // DecodedLen(44) is 33
	copy(in[:], signature)
	n, err := v.enc.Decode(got[:], in[:])
	if err != nil || n != sha256.Size {
		return -1, fmt.Errorf("%w: not standard Base64 of a SHA-256 digest", ErrBadSignature)
	}

	var msg []byte
	switch v.part {
	case SignedBody:
		msg = rawBody
	default:
		if env == nil || env.Resource == "" {
			return -1, fmt.Errorf("%w: no resource to verify", ErrBadSignature)
		}
		msg = []byte(env.Resource)
	}

	match, found := -1, 0
	for _, k := range v.keys {
		st := k.pool.Get().(*macState)
		st.h.Reset()
		st.h.Write(msg)
		eq := subtle.ConstantTimeCompare(st.h.Sum(st.sum[:0]), got[:sha256.Size]) // what hmac.Equal does
		k.pool.Put(st)
		match = subtle.ConstantTimeSelect(eq&^found, k.index, match) // keep the first match
		found |= eq
	}
	if found == 0 {
		return -1, fmt.Errorf("%w: no configured secret matches", ErrBadSignature)
	}
	return match, nil
}

// Sign returns the `Signature` header value for message: standard Base64 of
// HMAC-SHA256(secret, message). For the sandbox and tests; message is the
// resource text or the raw body, whichever the receiver verifies.
func Sign(secret, message []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(message)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

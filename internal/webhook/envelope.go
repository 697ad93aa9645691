package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors of ParseEnvelope. A handler answers 400 to all of them.
var (
	ErrNotJSON           = errors.New("webhook: body is not a JSON object")
	ErrResourceNotString = errors.New("webhook: resource is not a JSON string")
	ErrBadField          = errors.New("webhook: malformed envelope field")
	// ErrDuplicateKey is also wrapped by ClassifyResource (inside ErrUnusable)
	// when the resource has duplicate keys.
	ErrDuplicateKey = errors.New("duplicate key")
)

const (
	maxEventTypeLen       = 128
	maxEnvelopeScalarSize = 256 // apiVersion, code, createTime: a few bytes in practice
)

// Envelope is the outer body of an Interlace v3 notification
// (contract.md §4). Every field is the decoded JSON text; Code and CreateTime
// keep the literal digits when they arrive as JSON numbers (the guide shows both
// `"code":"000000"` and `"code":0`).
type Envelope struct {
	ID         string // notification id: identifies a delivery
	EventType  string
	APIVersion string
	Code       string
	Message    string
	// Resource is the exact decoded string: in SignedResource mode it is the
	// signed text, and it is what ClassifyResource reads.
	Resource   string
	CreateTime string // ms epoch as sent (string or number); see CreatedAt
}

// ParseEnvelope decodes and checks the outer body. It rejects:
//   - anything but a single JSON object in valid UTF-8 (ErrNotJSON): invalid
//     UTF-8 would be silently replaced by a decoder, so the text we verify could
//     differ from the text that was signed;
//   - a `resource` that is present but not a JSON string, null included
//     (ErrResourceNotString);
//   - two top-level keys that a JSON decoder could take for the same field,
//     including case variants like "resource"/"Resource" (ErrDuplicateKey): a
//     signer and a parser that pick different copies would disagree on what was
//     signed;
//   - an object/array/boolean where a scalar field is expected, a control
//     character in eventType (it is stored in a text column, where NUL cannot
//     go), or an absurdly long apiVersion/code/createTime (ErrBadField).
//
// The id is returned as sent, even empty, huge or non-ASCII: the handler
// decides what a signed delivery without a usable id becomes (checkID is the
// rule for ids). Unknown fields are ignored, whatever their value. Field names match like
// encoding/json (case-insensitively), which the duplicate rule makes
// unambiguous.
func ParseEnvelope(body []byte) (*Envelope, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrNotJSON)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("%w: invalid JSON", ErrNotJSON)
	}
	it, ok := newObjectIter(body)
	if !ok {
		return nil, fmt.Errorf("%w: not an object", ErrNotJSON)
	}
	env := &Envelope{}
	var seen keySet
	for key, val, ok := it.next(); ok; key, val, ok = it.next() {
		k := keyText(key)
		if seen.add(k) {
			return nil, fmt.Errorf("webhook: envelope: %w %s", ErrDuplicateKey, quoteShort(string(k)))
		}
		var dst *string
		var name string
		switch {
		case keyIs(k, "resource"):
			if kindOf(val) != kindString {
				return nil, fmt.Errorf("%w: it is %s", ErrResourceNotString, kindOf(val))
			}
			env.Resource = unquote(val)
			continue
		case keyIs(k, "id"):
			dst, name = &env.ID, "id"
		case keyIs(k, "eventType"):
			dst, name = &env.EventType, "eventType"
		case keyIs(k, "apiVersion"):
			dst, name = &env.APIVersion, "apiVersion"
		case keyIs(k, "code"):
			dst, name = &env.Code, "code"
		case keyIs(k, "message"):
			dst, name = &env.Message, "message"
		case keyIs(k, "createTime"):
			dst, name = &env.CreateTime, "createTime"
		default:
			continue
		}
		s, err := scalarText(val)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadField, name, err)
		}
		if (name == "apiVersion" || name == "code" || name == "createTime") && len(s) > maxEnvelopeScalarSize {
			return nil, fmt.Errorf("%w: %s: longer than %d bytes", ErrBadField, name, maxEnvelopeScalarSize)
		}
		*dst = s
	}
	if err := checkEventType(env.EventType); err != nil {
		return nil, fmt.Errorf("%w: eventType: %w", ErrBadField, err)
	}
	return env, nil
}

// CreatedAt parses CreateTime (ms epoch, or RFC 3339). It is the zero time when
// CreateTime is empty.
func (e *Envelope) CreatedAt() (time.Time, error) {
	return parseTimestamp(e.CreateTime)
}

// scalarText gives the text of a string (decoded), a number (literal) or null
// (""). Objects, arrays and booleans are refused: they are not what any of the
// envelope's fields hold.
func scalarText(v []byte) (string, error) {
	switch k := kindOf(v); k {
	case kindString:
		return unquote(v), nil
	case kindNumber:
		return string(v), nil
	case kindNull, kindAbsent:
		return "", nil
	default:
		return "", fmt.Errorf("it is %s", k)
	}
}

// checkID accepts identifiers made of visible ASCII only (0x21..0x7E). That
// rules out, at the door, every Unicode trick that makes two different ids look
// alike (zero-width characters, bidi overrides, Cyrillic homoglyphs) and every
// byte that PostgreSQL text or a log line would choke on.
func checkID(s string, maxLen int) error {
	if s == "" {
		return errors.New("missing")
	}
	if len(s) > maxLen {
		return fmt.Errorf("longer than %d characters", maxLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%s: byte %d is not visible ASCII", quoteShort(s), i)
		}
	}
	return nil
}

// checkEventType tolerates any event name (unknown ones are stored), but not
// control characters or absurd lengths: it ends up in a text column and in logs.
func checkEventType(s string) error {
	if len(s) > maxEventTypeLen {
		return fmt.Errorf("longer than %d bytes", maxEventTypeLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("%s holds a control character", quoteShort(s))
		}
	}
	return nil
}

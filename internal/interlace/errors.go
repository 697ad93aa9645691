package interlace

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel causes carried in APIError.Err, so callers can tell the classes apart with errors.Is.
var (
	// ErrInvalidRequest: the client refused to send the request (a required field is missing). Nothing
	// reached Interlace.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrMalformedResponse: Interlace answered, but the answer could not be understood. On a 2xx the
	// outcome is unknown, so such errors are retryable.
	ErrMalformedResponse = errors.New("malformed response")
	// ErrNoToken: no access token could be obtained (OAuth endpoint down, credentials refused).
	ErrNoToken = errors.New("no access token")
)

// APIError is the one error type every Client method returns. Retryable says whether repeating the
// identical request (same idempotency key, same body) is the right reaction: it is true whenever the
// outcome is unknown or the failure is transient, and false only for definite rejections.
type APIError struct {
	Endpoint   string
	HTTPStatus int    // 0 when no HTTP answer (timeout, connection reset)
	Code       string // Interlace code ("" when none)
	Message    string
	Retryable  bool          // timeouts, network errors, 5xx, 429, 408, 409, 401 and "in progress" answers
	RetryAfter time.Duration // from the Retry-After header (seconds or HTTP date) when present
	InProgress bool          // the answer says the request was accepted and is still running (see inProgress)
	Err        error         // underlying error, returned by Unwrap
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("interlace ")
	b.WriteString(e.Endpoint)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.HTTPStatus)
	}
	if e.Code != "" {
		b.WriteString(": code ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Retryable {
		b.WriteString(" (retryable)")
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is an *APIError marked retryable. Errors of any other type are
// reported as not retryable; callers that want "unknown means retry" must decide that themselves.
func IsRetryable(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Retryable
}

// retryableStatus lists the HTTP statuses that say "not done (or not known to be done), try again".
// 401 is in the list because credential trouble must never turn a money movement into a permanent
// failure; the client has already refreshed the token once when it reports a 401.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// inProgressCodes are the business codes that mean "the first request with this idempotency key is
// still running" (contract §11: in progress is recognised from the status field or a known code). Interlace
// has not published its code for this answer (interlace-api-facts §3.3); add it here once seen.
var inProgressCodes = map[string]bool{}

// inProgressMessage is the one answer the idempotency guide documents for a concurrent repeat of the
// same key. It is matched whole (case and surrounding spaces aside), never as a substring: a rejection
// whose message merely mentions "processing" is a rejection.
const inProgressMessage = "transaction in progress"

// inProgress recognises Interlace's answer to a concurrent request with the same idempotency key: the
// first request is still running, so the outcome is not known yet.
func inProgressAnswer(code, message string) bool {
	return inProgressCodes[strings.TrimSpace(code)] || strings.EqualFold(strings.TrimSpace(message), inProgressMessage)
}

// inProgress is inProgressAnswer for answers whose code is not at hand (token calls).
func inProgress(message string) bool { return inProgressAnswer("", message) }

// IsInProgress reports an answer that says the transfer was accepted and is still being worked on.
func IsInProgress(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.InProgress
}

// maxRetryAfter bounds what a server can ask for, so that a hostile or buggy header cannot overflow a
// Duration or park a worker for years.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads both forms RFC 9110 allows: delay-seconds and an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

const redacted = "[REDACTED]"

// redact removes secrets from text that may end up in logs. Servers sometimes echo request data
// in error messages; the token or client secret must never travel that way.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// redactedError replaces an underlying error whose text contained a secret. It keeps errors.Is
// working (context.DeadlineExceeded and friends) without exposing the original text through Unwrap.
type redactedError struct {
	text  string
	cause error
}

func (r *redactedError) Error() string        { return r.text }
func (r *redactedError) Is(target error) bool { return errors.Is(r.cause, target) }

// scrub makes sure no secret appears in err's text. Only APIErrors built by this package are passed.
func scrub(err error, secrets ...string) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	ae.Message = redact(ae.Message, secrets...)
	ae.Code = redact(ae.Code, secrets...)
	if ae.Err != nil {
		if text := ae.Err.Error(); redact(text, secrets...) != text {
			ae.Err = &redactedError{text: redact(text, secrets...), cause: ae.Err}
		}
	}
	return err
}

// maxMessageLen keeps a server message (or a snippet of an HTML error page) readable in one log line.
const maxMessageLen = 512

func truncate(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// snippet turns a non-JSON body (an HTML error page from a proxy, say) into a short one-line message.
func snippet(body []byte) string {
	if len(body) > maxMessageLen*2 {
		body = body[:maxMessageLen*2]
	}
	s := strings.ToValidUTF8(string(body), "?")
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s)
}

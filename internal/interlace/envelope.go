package interlace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/shopspring/decimal"
)

// envelope is the wrapper around every Interlace answer. Two families exist side by side in v3:
// {"code":"000000","message":"success","data":…} and {"code":0,"message":"ok","data":…}.
type envelope struct {
	code     string // the code as text: a JSON string's content or a JSON number's literal
	hasCode  bool
	numeric  bool
	message  string
	data     json.RawMessage // nil when absent or null
	dataSeen bool
}

func (e envelope) success() bool {
	if !e.hasCode {
		return false
	}
	if e.numeric {
		// A number is compared by value so that 0, 0.0 and 0e0 all count; none of them is an error code.
		d, err := decimal.NewFromString(e.code)
		return err == nil && d.IsZero()
	}
	return e.code == "000000" || e.code == "0"
}

// parseEnvelope reads the wrapper without judging it. It fails only when the body is not a JSON object
// or when "code" is neither a string nor a number.
func parseEnvelope(body []byte) (envelope, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return envelope{}, fmt.Errorf("%w: body is not a JSON object: %v", ErrMalformedResponse, err)
	}
	if raw == nil {
		return envelope{}, fmt.Errorf("%w: body is JSON null", ErrMalformedResponse)
	}
	var env envelope
	if c, ok := raw["code"]; ok && !isNull(c) {
		code, numeric, err := scalarText(c)
		if err != nil {
			return envelope{}, fmt.Errorf("%w: code: %v", ErrMalformedResponse, err)
		}
		env.code, env.numeric, env.hasCode = code, numeric, true
	}
	msg, ok := raw["message"]
	if !ok {
		msg = raw["msg"] // some gateways in front of APIs use the short name
	}
	env.message = messageText(msg)
	if d, ok := raw["data"]; ok && !isNull(d) {
		env.data, env.dataSeen = d, true
	}
	return env, nil
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// scalarText returns a JSON string's content or a JSON number's literal text (never through a float,
// so long codes and ids keep every digit).
func scalarText(raw json.RawMessage) (text string, numeric bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false, fmt.Errorf("want a string or a number, got %.20s", raw)
	}
	return n.String(), true, nil
}

// messageText is liberal: a message is normally a string, but anything else is kept as its JSON text
// rather than lost.
func messageText(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return truncate(s)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err == nil {
		return truncate(buf.String())
	}
	return snippet(raw)
}

// decodeResponse turns one HTTP answer into either a decoded out (nil error) or an *APIError. It is
// pure (no I/O), which keeps the classification rules testable and fuzzable in one place.
//
// Classification, in order:
//   - body over the size limit: malformed; retryable on 2xx and on retryable statuses.
//   - 2xx: the envelope must parse, carry a success code and (when out is set) decodable data; any
//     parse or decode failure is retryable because the request may have taken effect. A non-success
//     code is a definite rejection unless it is the known "in progress" answer (inProgress).
//   - non-2xx: retryable for 401/408/409/429/5xx whatever the body says (a proxy's error page, or an
//     overloaded backend, says nothing definite about the request), or for the known "in progress"
//     answer; every other status is a definite rejection, whatever words its message contains.
func decodeResponse(endpoint string, status int, header http.Header, body []byte, now time.Time, out any) error {
	e := &APIError{Endpoint: endpoint, HTTPStatus: status, RetryAfter: parseRetryAfter(header.Get("Retry-After"), now)}
	ok2xx := status >= 200 && status < 300

	if len(body) > maxBodyBytes {
		e.Message = "response body too large"
		e.Err = fmt.Errorf("%w: body exceeds %d bytes", ErrMalformedResponse, maxBodyBytes)
		e.Retryable = ok2xx || retryableStatus(status)
		return e
	}

	env, envErr := parseEnvelope(body)
	if !ok2xx {
		if envErr == nil {
			e.Code, e.Message = env.code, env.message
			e.InProgress = inProgressAnswer(env.code, env.message)
			e.Retryable = retryableStatus(status) || e.InProgress
		} else {
			e.Message = snippet(body)
			e.Retryable = retryableStatus(status)
		}
		return e
	}

	if envErr != nil {
		e.Message = "undecodable response"
		e.Err = envErr
		e.Retryable = true
		return e
	}
	if !env.hasCode {
		e.Message = env.message
		e.Err = fmt.Errorf("%w: response has no code", ErrMalformedResponse)
		e.Retryable = true
		return e
	}
	if !env.success() {
		e.Code, e.Message = env.code, env.message
		e.InProgress = inProgressAnswer(env.code, env.message)
		e.Retryable = e.InProgress
		return e
	}
	if out == nil {
		return nil
	}
	if !env.dataSeen {
		e.Code, e.Message = env.code, "success without data"
		e.Err = fmt.Errorf("%w: response has no data", ErrMalformedResponse)
		e.Retryable = true
		return e
	}
	if err := json.Unmarshal(env.data, out); err != nil {
		e.Code, e.Message = env.code, "undecodable data"
		e.Err = fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		e.Retryable = true
		return e
	}
	if v, ok := out.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			e.Code, e.Message = env.code, "incomplete data"
			e.Err = fmt.Errorf("%w: %w", ErrMalformedResponse, err)
			e.Retryable = true
			return e
		}
	}
	return nil
}

// errMissing builds the validation error for a required response field.
func errMissing(field string) error {
	return errors.New(field + " is missing")
}

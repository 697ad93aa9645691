package withdraw

import "fmt"

// InputError is a request refused before any upstream call. Code is a stable
// machine-readable reason (missing_field, invalid_amount, invalid_address,
// unsupported_network, unsupported_currency, unknown_wallet, invalid_field); Field
// names the offending request field.
type InputError struct {
	Code    string
	Field   string
	Message string
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// Missing reports whether the error is a missing required field (HTTP 400); every
// other InputError is a well-formed but unacceptable value (HTTP 422).
func (e *InputError) Missing() bool { return e.Code == "missing_field" }

func invalid(code, field, msg string) error {
	return &InputError{Code: code, Field: field, Message: msg}
}

func missing(field string) error {
	return &InputError{Code: "missing_field", Field: field, Message: field + " is required"}
}

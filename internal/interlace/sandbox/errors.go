package sandbox

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel kinds of the errors CreateDeposit (and the handlers) return; check them with errors.Is.
var (
	ErrInvalid             = errors.New("invalid parameter")
	ErrNotFound            = errors.New("not found")
	ErrInsufficientBalance = errors.New("insufficient balance")
	ErrDuplicate           = errors.New("duplicate")
)

// Interlace business codes used by the sandbox. "010023" and "010021" are the codes reported for insufficient
// and missing balances; the others only have to be non-success codes of the same 6-digit form.
const (
	codeSuccess      = "000000"
	codeInvalid      = "010001"
	codeNotFound     = "010021"
	codeInsufficient = "010023"
	codeUnauthorized = "010401"
	codeUnavailable  = "010500"
	// codeDuplicate is what Faults.DuplicateAnswer "error" answers to a repeated key (contract §12).
	codeDuplicate = "100409"
)

// apiError is a business error: it travels as a non-success code in the endpoint's envelope.
type apiError struct {
	kind error
	code string
	msg  string
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.kind }

// numericCode is the code in the `"code": 0` envelope family (same digits, as a number).
func (e *apiError) numericCode() int {
	n, err := strconv.Atoi(e.code)
	if err != nil || n == 0 {
		return 1
	}
	return n
}

func invalidf(format string, a ...any) *apiError {
	return &apiError{kind: ErrInvalid, code: codeInvalid, msg: fmt.Sprintf(format, a...)}
}

func notFoundf(format string, a ...any) *apiError {
	return &apiError{kind: ErrNotFound, code: codeNotFound, msg: fmt.Sprintf(format, a...)}
}

func insufficientf(format string, a ...any) *apiError {
	return &apiError{kind: ErrInsufficientBalance, code: codeInsufficient, msg: fmt.Sprintf(format, a...)}
}

// duplicateErr is the answer to a repeated idempotency key under Faults.DuplicateAnswer "error". The message is
// contract §12's, on blockchain transfers too.
func duplicateErr() *apiError {
	return &apiError{kind: ErrDuplicate, code: codeDuplicate, msg: "duplicate clientTransactionId"}
}

package credit

import (
	"errors"
	"fmt"
)

// Codes name the kinds of failure that callers branch on. They are the slugs
// of the problem types the HTTP API answers with, so a code never changes once
// published.
const (
	EInvalid             = "invalid-request"
	ENotFound            = "not-found"
	EInsufficient        = "insufficient-credits"
	EConflict            = "conflict"
	ECustomerExists      = "customer-exists"
	EMetricExists        = "metric-exists"
	ENoMeteringRule      = "no-metering-rule"
	EIdempotencyReused   = "idempotency-key-reused"
	EReservationInactive = "reservation-not-active"
	EPlanExists          = "plan-exists"
	EPlanArchived        = "plan-archived"
	EOrderExists         = "order-exists"
)

// ErrOverflow reports an amount that would not fit in an int64 millicredits.
var ErrOverflow = &Error{Code: EInvalid, Message: "amount overflows the int64 range of millicredits"}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Fields gathers the invalid fields of one request, so that one error
// names them all.
type Fields []FieldError

// Add records field as invalid, for message.
func (f *Fields) Add(field, message string) { *f = append(*f, FieldError{field, message}) }

// Err is the invalid-request error naming every field recorded, with
// message, or nil when there is none.
func (f Fields) Err(message string) error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EInvalid, Message: message, Fields: f}
}

// Error is a failure with a stable code, a human message, and the details a
// client needs to act on it (invalid fields, or extra members such as the id of
// a customer that already exists).
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
	Extra   map[string]any
}

func (e *Error) Error() string {
	if len(e.Fields) == 1 {
		return fmt.Sprintf("%s: %s: %s", e.Message, e.Fields[0].Field, e.Fields[0].Message)
	}
	return e.Message
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an invalid-request error naming one field.
func Invalid(field, message string) *Error {
	return &Error{Code: EInvalid, Message: "the request is invalid", Fields: []FieldError{{field, message}}}
}

// ErrorCode returns the code of the first *Error or *InsufficientError in
// err's chain, or "" when there is none (an internal failure).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var ie *InsufficientError
	if errors.As(err, &ie) {
		return EInsufficient
	}
	return ""
}

// InsufficientError reports a debit or hold larger than the effective
// balance. Nothing was changed.
type InsufficientError struct {
	Required  int64
	Available int64
}

func (e *InsufficientError) Error() string {
	return fmt.Sprintf("insufficient credits: %d millicredits required, %d available", e.Required, e.Available)
}

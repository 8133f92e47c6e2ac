package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// The problem codes a caller is most likely to switch on; docs/api.md lists
// them all.
const (
	CodeInvalidRequest       = "invalid-request"
	CodeUnauthorized         = "unauthorized"
	CodeInsufficientCredits  = "insufficient-credits"
	CodeNotFound             = "not-found"
	CodeCustomerExists       = "customer-exists"
	CodeMetricExists         = "metric-exists"
	CodeIdempotencyKeyReused = "idempotency-key-reused"
	CodeNoMeteringRule       = "no-metering-rule"
	CodeReservationNotActive = "reservation-not-active"
	CodeRateLimited          = "rate-limited"
	CodeServiceUnavailable   = "service-unavailable"
)

// Error is an answer other than 2xx: the server's RFC 7807 problem, or what
// could be made of a body that is not one (a proxy's error page). Callers
// reach it with errors.As.
type Error struct {
	Method string // of the request, for messages
	Path   string

	Status int    // the HTTP status
	Type   string // "/problems/<code>"
	Title  string
	Detail string // the server's sentence on what went wrong
	Code   string // the problem's code: switch on this

	// Fields are the invalid fields of a 400 invalid-request.
	Fields []FieldError
	// Required and Available are a 402's cost and effective (or, for a plan
	// purchase, payable) balance in millicredits; 0 on other problems.
	Required  int64
	Available int64
	// Extra holds the problem's other members: customer_id on a 409
	// customer-exists, metric_id on metric-exists, operation_index…
	Extra map[string]json.RawMessage

	// RetryAfter is the answer's Retry-After (0 when absent).
	RetryAfter time.Duration
	// RequestID is the answer's X-Request-Id, which finds the request in
	// the server's log.
	RequestID string
	// Body is the answer's body as received.
	Body []byte
}

// FieldError names one invalid field of a 400.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error implements error: "POST /v1/usage: 402 insufficient-credits:
// insufficient credits: …".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	// One field's message is the detail already; several are listed.
	if len(e.Fields) > 1 {
		parts := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			parts[i] = f.Field + " " + f.Message
		}
		b.WriteString(" (" + strings.Join(parts, "; ") + ")")
	}
	return b.String()
}

// Temporary reports an answer worth retrying later: 429 or 503.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// ErrorCode is the problem code of err's *Error, or "" when err is not an
// answer of the server.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// standard are the problem members Error has fields for.
var standard = map[string]bool{"type": true, "title": true, "status": true, "detail": true, "code": true,
	"errors": true, "required": true, "available": true}

func newError(method, path string, res *http.Response, body []byte) *Error {
	e := &Error{Method: method, Path: path, Status: res.StatusCode, Body: body,
		RetryAfter: retryAfter(res.Header.Get("Retry-After")), RequestID: res.Header.Get("X-Request-Id")}
	var members map[string]json.RawMessage
	if json.Unmarshal(body, &members) != nil {
		e.Detail = notProblem(res.StatusCode, body)
		return e
	}
	var p struct {
		Type      string       `json:"type"`
		Title     string       `json:"title"`
		Detail    string       `json:"detail"`
		Code      string       `json:"code"`
		Errors    []FieldError `json:"errors"`
		Required  int64        `json:"required"`
		Available int64        `json:"available"`
	}
	// A member of another type than expected leaves its field empty rather
	// than losing the rest of the problem.
	_ = json.Unmarshal(body, &p)
	e.Type, e.Title, e.Detail, e.Code = p.Type, p.Title, p.Detail, p.Code
	e.Fields, e.Required, e.Available = p.Errors, p.Required, p.Available
	if e.Detail == "" && e.Title == "" {
		e.Detail = notProblem(res.StatusCode, body)
	}
	for k, v := range members {
		if !standard[k] {
			if e.Extra == nil {
				e.Extra = map[string]json.RawMessage{}
			}
			e.Extra[k] = v
		}
	}
	return e
}

// notProblem describes an answer that is not a problem: its status text and
// the start of its body, which is likely a proxy's page.
func notProblem(status int, body []byte) string {
	text := http.StatusText(status)
	body = bytes.TrimSpace(body)
	if len(body) == 0 || !utf8.Valid(body) {
		return strings.ToLower(text)
	}
	const max = 200
	s := string(body)
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return strings.ToLower(text) + ": " + strings.Join(strings.Fields(s), " ")
}

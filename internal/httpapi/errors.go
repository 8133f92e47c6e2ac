package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// Problem is an RFC 7807 problem body. Code repeats the type's slug so that
// clients can switch on a short string.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail"`
	Code      string              `json:"code"`
	Errors    []credit.FieldError `json:"errors,omitempty"`
	Required  *int64              `json:"required,omitempty"`
	Available *int64              `json:"available,omitempty"`
	Extra     map[string]any      `json:"-"`
}

// problemTypes is the one table from error codes to HTTP: the status and
// title of each problem type, and the help text of its page
// (/problems/{code}).
var problemTypes = map[string]struct {
	status int
	title  string
	help   string
}{
	credit.EInvalid: {http.StatusBadRequest, "Invalid request",
		"Something in the request itself is wrong: see the errors member for each field. Nothing was changed."},
	"unauthorized": {http.StatusUnauthorized, "Unauthorized",
		"Send a valid API key in X-API-Key (or Authorization: Bearer). Its qs_live_/qs_test_ prefix picks the environment."},
	credit.EInsufficient: {http.StatusPaymentRequired, "Insufficient credits",
		"The customer's effective balance (balance minus reservations) is below the cost; required and available say by how much. For a plan purchase only the blocks the plan may be paid from (priority up to its pay_from_max_priority) count as available. Nothing was debited."},
	credit.ENotFound: {http.StatusNotFound, "Not found",
		"The customer, metric, plan, purchase or endpoint named does not exist in this key's environment."},
	"method-not-allowed": {http.StatusMethodNotAllowed, "Method not allowed",
		"The path exists but not with this method; see allow."},
	"idempotency-key-required": {http.StatusBadRequest, "Idempotency-Key required",
		"Every POST and PATCH needs an Idempotency-Key header. Retries of one operation reuse its key."},
	credit.EIdempotencyReused: {http.StatusUnprocessableEntity, "Idempotency-Key reused",
		"This Idempotency-Key was already used for another endpoint. Use a new key per operation."},
	credit.ECustomerExists: {http.StatusConflict, "Customer exists",
		"A customer with this external_id exists; customer_id names it."},
	credit.EMetricExists: {http.StatusConflict, "Billable metric exists",
		"A billable metric with this key exists; metric_id names it."},
	credit.EPlanExists: {http.StatusConflict, "Plan exists",
		"A plan with this key exists; plan_id names it. Plans are immutable: a new price or allowance is a new plan with a new key."},
	credit.EPlanArchived: {http.StatusConflict, "Plan archived",
		"The plan is archived and can no longer be bought. Orders bought before it was archived still answer their purchase."},
	credit.EOrderExists: {http.StatusConflict, "Order exists",
		"This customer's order_id was already bought with another plan; purchase_id and plan_key name that purchase. An order id names one purchase: use a new one for another plan."},
	credit.EReservationInactive: {http.StatusConflict, "Reservation not active",
		"The reservation is no longer active; reservation_status says what it is."},
	credit.EConflict: {http.StatusConflict, "Conflict",
		"The request conflicts with the current state."},
	credit.ENoMeteringRule: {http.StatusUnprocessableEntity, "No metering rule",
		"The billable metric has no active metering rule, so its usage cannot be priced. Create one with POST /v1/metering-rules."},
	"payload-too-large": {http.StatusRequestEntityTooLarge, "Payload too large",
		"Request bodies are limited to 1 MiB."},
	"unsupported-media-type": {http.StatusUnsupportedMediaType, "Unsupported media type",
		"Request bodies are JSON: send Content-Type: application/json."},
	"rate-limited": {http.StatusTooManyRequests, "Rate limited",
		"Too many requests for this tenant and environment; retry after Retry-After seconds."},
	"service-unavailable": {http.StatusServiceUnavailable, "Service unavailable",
		"The database cannot serve now (down, unreachable, read-only or out of disk); nothing was changed unless a retry with the same Idempotency-Key says so. Retry after Retry-After seconds."},
	"internal": {http.StatusInternalServerError, "Internal server error",
		"The server failed; the request id in X-Request-Id finds it in the server's log."},
}

// newProblem returns the problem of code with detail.
func newProblem(code, detail string) Problem {
	pt, ok := problemTypes[code]
	if !ok {
		code, pt = "internal", problemTypes["internal"]
	}
	return Problem{Type: "/problems/" + code, Title: pt.title, Status: pt.status, Detail: detail, Code: code}
}

// problemOf maps an error to its problem. Anything that is not one of the
// domain's errors is an internal error with a generic message: its text may
// name tables or files and stays in the log.
func problemOf(err error) Problem {
	// A linked transaction's operation failed: its own problem, and where.
	var oe *ledger.OperationError
	if errors.As(err, &oe) {
		p := problemOf(oe.Err)
		extra := map[string]any{"operation_index": oe.Index}
		for k, v := range p.Extra {
			extra[k] = v
		}
		p.Extra = extra
		p.Detail = fmt.Sprintf("operation %d: %s", oe.Index, p.Detail)
		return p
	}
	var ie *credit.InsufficientError
	if errors.As(err, &ie) {
		p := newProblem(credit.EInsufficient, ie.Error())
		p.Required, p.Available = &ie.Required, &ie.Available
		return p
	}
	var ce *credit.Error
	if errors.As(err, &ce) {
		p := newProblem(ce.Code, ce.Message)
		if len(ce.Fields) > 0 {
			p.Errors = ce.Fields
			if len(ce.Fields) == 1 {
				p.Detail = ce.Fields[0].Field + " " + ce.Fields[0].Message
			}
		}
		p.Extra = ce.Extra
		return p
	}
	if store.Unavailable(err) {
		return newProblem("service-unavailable", "the database is unavailable; retry later with the same Idempotency-Key")
	}
	return newProblem("internal", "the server failed to handle the request; it has been logged")
}

// retryAfter is the Retry-After of a 503, in seconds: creditd reconnects by
// itself as soon as the database is back.
const retryAfter = "2"

// body returns the problem's JSON, with Extra's members beside the standard
// ones.
func (p Problem) body() ([]byte, error) {
	type plain Problem
	b, err := marshal(plain(p))
	if err != nil || len(p.Extra) == 0 {
		return b, err
	}
	extra, err := marshal(p.Extra)
	if err != nil {
		return nil, err
	}
	// Join {"type":…} and {"customer_id":…} into one object.
	return append(append(b[:len(b)-1], ','), extra[1:]...), nil
}

// writeProblem answers err as a problem and logs it at error level only
// when it is the server's fault.
func writeProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := problemOf(err)
	if p.Status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "request_id", w.Header().Get("X-Request-Id"),
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	sendProblem(w, p)
}

func sendProblem(w http.ResponseWriter, p Problem) {
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	body, err := p.body()
	if err != nil {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	writeJSON(w, p.Status, "application/problem+json", body)
}

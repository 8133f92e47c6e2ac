package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
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
// title of each problem type.
var problemTypes = map[string]struct {
	status int
	title  string
}{
	credit.EInvalid:             {http.StatusBadRequest, "Invalid request"},
	"unauthorized":              {http.StatusUnauthorized, "Unauthorized"},
	credit.EInsufficient:        {http.StatusPaymentRequired, "Insufficient credits"},
	credit.ENotFound:            {http.StatusNotFound, "Not found"},
	"method-not-allowed":        {http.StatusMethodNotAllowed, "Method not allowed"},
	"idempotency-key-required":  {http.StatusBadRequest, "Idempotency-Key required"},
	credit.EIdempotencyReused:   {http.StatusUnprocessableEntity, "Idempotency-Key reused"},
	credit.ECustomerExists:      {http.StatusConflict, "Customer exists"},
	credit.EMetricExists:        {http.StatusConflict, "Billable metric exists"},
	credit.EReservationInactive: {http.StatusConflict, "Reservation not active"},
	credit.EConflict:            {http.StatusConflict, "Conflict"},
	credit.ENoMeteringRule:      {http.StatusUnprocessableEntity, "No metering rule"},
	"payload-too-large":         {http.StatusRequestEntityTooLarge, "Payload too large"},
	"unsupported-media-type":    {http.StatusUnsupportedMediaType, "Unsupported media type"},
	"rate-limited":              {http.StatusTooManyRequests, "Rate limited"},
	"internal":                  {http.StatusInternalServerError, "Internal server error"},
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
	return newProblem("internal", "the server failed to handle the request; it has been logged")
}

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
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	sendProblem(w, p)
}

func sendProblem(w http.ResponseWriter, p Problem) {
	body, err := p.body()
	if err != nil {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	writeJSON(w, p.Status, "application/problem+json", body)
}

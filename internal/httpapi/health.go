package httpapi

import (
	"fmt"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
)

func (s *Server) handleHealth() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return encode(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

func (s *Server) handleReady() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.ready(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			return encode(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		}
		return encode(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// handleProblemPage serves the short human page each problem type URI
// points to.
func (s *Server) handleProblemPage() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		slug := r.PathValue("slug")
		pt, ok := problemTypes[slug]
		if !ok {
			return credit.Errorf(credit.ENotFound, "no problem type %q", slug)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s (HTTP %d)\n\n%s\n", pt.title, pt.status, problemHelp[slug])
		return nil
	}
}

var problemHelp = map[string]string{
	credit.EInvalid:             "Something in the request itself is wrong: see the errors member for each field. Nothing was changed.",
	"unauthorized":              "Send a valid API key in X-API-Key (or Authorization: Bearer). Its qs_live_/qs_test_ prefix picks the environment.",
	credit.EInsufficient:        "The customer's effective balance (balance minus reservations) is below the cost; required and available say by how much. Nothing was debited.",
	credit.ENotFound:            "The customer, metric or endpoint named does not exist in this key's environment.",
	"method-not-allowed":        "The path exists but not with this method; see allow.",
	"idempotency-key-required":  "Every POST and PATCH needs an Idempotency-Key header. Retries of one operation reuse its key.",
	credit.EIdempotencyReused:   "This Idempotency-Key was already used for another endpoint. Use a new key per operation.",
	credit.ECustomerExists:      "A customer with this external_id exists; customer_id names it.",
	credit.EMetricExists:        "A billable metric with this key exists; metric_id names it.",
	credit.EReservationInactive: "The reservation is no longer active; reservation_status says what it is.",
	credit.EConflict:            "The request conflicts with the current state.",
	credit.ENoMeteringRule:      "The billable metric has no active metering rule, so its usage cannot be priced. Create one with POST /v1/metering-rules.",
	"payload-too-large":         "Request bodies are limited to 1 MiB.",
	"unsupported-media-type":    "Request bodies are JSON: send Content-Type: application/json.",
	"rate-limited":              "Too many requests for this tenant and environment; retry after Retry-After seconds.",
	"internal":                  "The server failed; the request id in X-Request-Id finds it in the server's log.",
}

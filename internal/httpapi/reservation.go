package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// reservationJSON is the reservation object. A commit's answer adds what
// was committed and what was given back; so does every read of a
// reservation that is no longer active.
type reservationJSON struct {
	ID                 string          `json:"id"`
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID *string         `json:"external_customer_id"`
	BillableMetricKey  string          `json:"billable_metric_key"`
	EstimatedUnits     int64           `json:"estimated_units"`
	Amount             int64           `json:"amount"`
	Status             string          `json:"status"`
	ExpiresAt          Time            `json:"expires_at"`
	CommittedAmount    *int64          `json:"committed_amount,omitempty"`
	ReleasedAmount     *int64          `json:"released_amount,omitempty"`
	Metadata           json.RawMessage `json:"metadata"`
	CreatedAt          Time            `json:"created_at"`
}

func reservationOut(res ledger.ReservationResult) reservationJSON {
	r, c := res.Reservation, res.Customer
	out := reservationJSON{
		ID: r.ID, CustomerID: c.ID, ExternalCustomerID: nullable(c.ExternalID), BillableMetricKey: r.MetricKey,
		EstimatedUnits: r.EstimatedUnits, Amount: r.Amount, Status: r.Status, ExpiresAt: Time(r.ExpiresAt),
		Metadata: metadataOut(r.Metadata), CreatedAt: Time(r.CreatedAt),
	}
	if r.Status != store.ReservationActive {
		committed, released := r.CommittedAmount, r.ReleasedAmount
		if r.Status == store.ReservationExpired {
			released = r.Amount // read as expired before the sweeper recorded it
		}
		out.CommittedAmount, out.ReleasedAmount = &committed, &released
	}
	return out
}

type reserveRequest struct {
	CustomerID         string   `json:"customer_id"`
	ExternalCustomerID string   `json:"external_customer_id"`
	BillableMetricKey  string   `json:"billable_metric_key"`
	EstimatedUnits     *int64   `json:"estimated_units"`
	TTLSeconds         *int64   `json:"ttl_seconds"`
	Metadata           Metadata `json:"metadata"`
}

// handleReserve places a hold: 201 with the reservation, 402 when the
// effective balance cannot hold its price.
func (s *Server) handleReserve() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get("Idempotency-Key")
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req reserveRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			ref, err := bodyCustomer(req.CustomerID, req.ExternalCustomerID)
			if err != nil {
				return nil, err
			}
			if err := checkID("billable_metric_key", req.BillableMetricKey); err != nil {
				return nil, err
			}
			if req.EstimatedUnits == nil {
				return nil, credit.Invalid("estimated_units", "is required")
			}
			in := ledger.ReserveInput{Customer: ref, MetricKey: req.BillableMetricKey, EstimatedUnits: *req.EstimatedUnits,
				Metadata: json.RawMessage(req.Metadata), IdempotencyKey: key}
			if req.TTLSeconds != nil {
				if *req.TTLSeconds < 1 || *req.TTLSeconds > int64(ledger.MaxTTL/time.Second) {
					return nil, credit.Invalid("ttl_seconds", "must be between 1 and 86400")
				}
				in.TTL = time.Duration(*req.TTLSeconds) * time.Second
			}
			if err := in.Validate(); err != nil {
				return nil, err
			}
			return ledger.Reserve{In: in, Encode: encodeAs(http.StatusCreated, reservationOut)}, nil
		}, nil)
	}
}

// handleSettle commits (release false) or releases a reservation.
func (s *Server) handleSettle(release bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			if err := checkID("id", id); err != nil {
				return nil, err
			}
			var req struct {
				ActualUnits *int64 `json:"actual_units"`
			}
			if len(body) > 0 {
				if err := decode(body, &req); err != nil {
					return nil, err
				}
			}
			if release {
				req.ActualUnits = nil
			} else if req.ActualUnits != nil && *req.ActualUnits < 0 {
				return nil, credit.Invalid("actual_units", "must be an integer ≥ 0")
			}
			// Settling locks the reservation's customer: name it first.
			cust, err := s.svc.ReservationCustomer(r.Context(), scopeOf(r.Context()), id)
			if err != nil {
				return nil, err
			}
			return ledger.Settle{ID: id, CustomerID: cust, Release: release, ActualUnits: req.ActualUnits,
				Encode: encodeAs(http.StatusOK, reservationOut)}, nil
		}, nil)
	}
}

func (s *Server) handleReservationGet() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := checkID("id", id); err != nil {
			return err
		}
		res, err := s.svc.ReservationRead(r.Context(), scopeOf(r.Context()), id)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, reservationOut(res))
	}
}

var reservationStates = map[string]bool{
	store.ReservationActive: true, store.ReservationCommitted: true, store.ReservationReleased: true, store.ReservationExpired: true,
}

// handleReservationList lists reservations newest first, of one customer
// (?customer_id= or ?external_customer_id=) or of the whole environment, in
// one state (?status=) or all.
func (s *Server) handleReservationList() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		status := q.Get("status")
		if status != "" && !reservationStates[status] {
			return credit.Invalid("status", "must be one of active, committed, released, expired")
		}
		var ref *ledger.CustomerRef
		if q.Get("customer_id") != "" || q.Get("external_customer_id") != "" {
			c, err := bodyCustomer(q.Get("customer_id"), q.Get("external_customer_id"))
			if err != nil {
				return err
			}
			ref = &c
		}
		rows, err := s.svc.Reservations(r.Context(), scopeOf(r.Context()), ref, status, p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, reservationOut, func(res ledger.ReservationResult) string { return res.Reservation.ID }))
	}
}

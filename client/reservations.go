package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Reservation is a hold on a customer's credits while work runs (docs/api.md,
// "Reservations"). Status reads as the hold is now: an elapsed hold reads
// "expired" before the sweeper records it. CommittedAmount and
// ReleasedAmount are set once it is settled.
type Reservation struct {
	ID                 string          `json:"id"`
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID string          `json:"external_customer_id"`
	BillableMetricKey  string          `json:"billable_metric_key"`
	EstimatedUnits     int64           `json:"estimated_units"`
	Amount             int64           `json:"amount"` // held, in mc: the rule's price of EstimatedUnits
	Status             string          `json:"status"`
	ExpiresAt          time.Time       `json:"expires_at"`
	CommittedAmount    *int64          `json:"committed_amount"`
	ReleasedAmount     *int64          `json:"released_amount"`
	Metadata           json.RawMessage `json:"metadata"`
	CreatedAt          time.Time       `json:"created_at"`
	Raw                json.RawMessage `json:"-"`
}

// The states of a reservation.
const (
	ReservationActive    = "active"
	ReservationCommitted = "committed"
	ReservationReleased  = "released"
	ReservationExpired   = "expired"
)

// ReserveRequest holds credits (POST /v1/reserve). Exactly one of
// CustomerID and ExternalCustomerID; an unknown external id is created only
// if the hold is placed. TTLSeconds 0 means the server's default (300).
type ReserveRequest struct {
	WriteOptions
	CustomerID         string `json:"customer_id,omitempty"`
	ExternalCustomerID string `json:"external_customer_id,omitempty"`
	BillableMetricKey  string `json:"billable_metric_key"`
	EstimatedUnits     int64  `json:"estimated_units"`
	TTLSeconds         int64  `json:"ttl_seconds,omitempty"`
	Metadata           any    `json:"metadata,omitempty"`
}

// CommitRequest settles a hold (POST /v1/reserve/{id}/commit). A nil
// ActualUnits commits the estimate; 0 releases the whole hold.
type CommitRequest struct {
	WriteOptions
	ActualUnits *int64 `json:"actual_units,omitempty"`
}

// ReservationListOptions filters GET /v1/reservations: by customer (the
// zero CustomerRef lists the environment's) and by stored status.
type ReservationListOptions struct {
	Customer CustomerRef
	Status   string
	Limit    int
	Cursor   string
}

// Reserve holds the price of EstimatedUnits from the effective balance
// (201). More than the effective balance is a 402 insufficient-credits
// *Error, and nothing is held.
func (c *Client) Reserve(ctx context.Context, req ReserveRequest) (*Reservation, error) {
	return one[Reservation](ctx, c, c.write("/v1/reserve", req.WriteOptions, req))
}

// CommitReservation debits the actual cost in burn order and gives the rest
// of the hold back. A reservation that is not active is a 409
// reservation-not-active *Error whose Extra["reservation_status"] says
// what it is.
func (c *Client) CommitReservation(ctx context.Context, id string, req CommitRequest) (*Reservation, error) {
	return one[Reservation](ctx, c, c.write("/v1/reserve/"+segment(id)+"/commit", req.WriteOptions, req))
}

// ReleaseReservation gives the whole hold back; not active is a 409, as
// for CommitReservation.
func (c *Client) ReleaseReservation(ctx context.Context, id string, o WriteOptions) (*Reservation, error) {
	return one[Reservation](ctx, c, c.write("/v1/reserve/"+segment(id)+"/release", o, struct{}{}))
}

// GetReservation reads a reservation as it is now.
func (c *Client) GetReservation(ctx context.Context, id string) (*Reservation, error) {
	return one[Reservation](ctx, c, call{method: http.MethodGet, path: "/v1/reserve/" + segment(id)})
}

// Reservations reads one page of reservations, newest first.
func (c *Client) Reservations(ctx context.Context, opts ReservationListOptions) (*Page[Reservation], error) {
	q := ListOptions{Limit: opts.Limit, Cursor: opts.Cursor}.query()
	switch {
	case opts.Customer.externalID != "":
		q.Set("external_customer_id", opts.Customer.externalID)
	case opts.Customer.id != "":
		q.Set("customer_id", opts.Customer.id)
	}
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	return getPage[Reservation](ctx, c, "/v1/reservations", q)
}

func (v *Reservation) UnmarshalJSON(b []byte) error {
	type plain Reservation
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

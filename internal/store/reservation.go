package store

import (
	"context"
	"encoding/json"
	"time"
)

// The states of a reservation as stored. A hold whose ExpiresAt has passed
// while it is still stored as active reads as expired: reads never write,
// and the sweeper records it.
const (
	ReservationActive    = "active"
	ReservationCommitted = "committed"
	ReservationReleased  = "released"
	ReservationExpired   = "expired"
)

// Reservation is a hold on a customer's credits while work runs: Amount is
// held (counted in the account's Reserved) while it is active.
type Reservation struct {
	ID              string
	CustomerID      string
	MetricKey       string
	EstimatedUnits  int64
	Amount          int64 // held while active
	Status          string
	ExpiresAt       time.Time
	CommittedAmount int64 // debited at commit
	ReleasedAmount  int64 // given back at commit, release or expiry
	Metadata        json.RawMessage
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ReservationQ reads reservations, part of Q. They are written through
// WritesApply: Writes.Reservations inserts new ones, Writes.ReservationUpdates
// stores a reservation's new state (Status, CommittedAmount, ReleasedAmount,
// UpdatedAt) by its whole key (scope, customer, id).
type ReservationQ interface {
	ReservationGet(ctx context.Context, s Scope, id string) (Reservation, error)
	// ReservationsActive returns the customer's reservations stored as
	// active, elapsed or not, oldest first.
	ReservationsActive(ctx context.Context, s Scope, customerID string) ([]Reservation, error)
	// ReservationList lists newest first (After is a reservation id), of one
	// customer when customerID is set, of one stored status when status is
	// set.
	ReservationList(ctx context.Context, s Scope, customerID, status string, p Page) ([]Reservation, error)
	// ReservationExpiredCustomers returns up to limit customers that own a
	// reservation stored as active whose ExpiresAt is at or before now: the
	// sweeper's work list.
	ReservationExpiredCustomers(ctx context.Context, now time.Time, limit int) ([]CustomerKey, error)
}

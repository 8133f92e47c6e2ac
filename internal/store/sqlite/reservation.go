package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

const reservationColumns = `customer_id, id, metric_key, estimated_units, amount, status, expires_at, committed_amount,
	released_amount, metadata, created_at, updated_at`

func (c conn) ReservationGet(ctx context.Context, s store.Scope, id string) (store.Reservation, error) {
	r, err := scanReservation(c.queryRow(ctx, `SELECT `+reservationColumns+` FROM reservations
		WHERE tenant_id = ? AND env = ? AND id = ?`, s.TenantID, s.Env, id))
	if err != nil {
		return store.Reservation{}, fmt.Errorf("select reservation: %w", interpretError(err))
	}
	return r, nil
}

// ReservationsActive names status by its value, not a parameter, so that
// the partial index of active holds may serve it. (Without statistics SQLite
// prefers reservations_customer_status, which binds as much.)
func (c conn) ReservationsActive(ctx context.Context, s store.Scope, customerID string) ([]store.Reservation, error) {
	rows, err := c.query(ctx, `SELECT `+reservationColumns+` FROM reservations
		WHERE tenant_id = ? AND env = ? AND customer_id = ? AND status = 'active' ORDER BY id`,
		s.TenantID, s.Env, customerID)
	return collect(rows, err, "list active reservations", scanReservation)
}

// ReservationList has a statement per combination of its filters and the
// cursor, as PurchaseList has one per cursor: an optional condition would
// keep the index from bounding the page.
func (c conn) ReservationList(ctx context.Context, s store.Scope, customerID, status string, p store.Page) ([]store.Reservation, error) {
	where, args := `tenant_id = ? AND env = ?`, []any{s.TenantID, s.Env}
	if customerID != "" {
		where, args = where+` AND customer_id = ?`, append(args, customerID)
	}
	if status != "" {
		where, args = where+` AND status = ?`, append(args, status)
	}
	if p.After != "" {
		where, args = where+` AND id < ?`, append(args, p.After)
	}
	rows, err := c.query(ctx, `SELECT `+reservationColumns+` FROM reservations WHERE `+where+` ORDER BY id DESC LIMIT ?`,
		append(args, p.Limit)...)
	return collect(rows, err, "list reservations", scanReservation)
}

func (c conn) ReservationExpiredCustomers(ctx context.Context, now time.Time, limit int) ([]store.CustomerKey, error) {
	// The limit is on the holds, taken in expiry order from
	// reservations_expiring, and DISTINCT runs on those, as PostgreSQL's
	// does: with DISTINCT ... LIMIT over the table, as BlockExpiredCustomers
	// has it, SQLite walked reservations_active in customer order instead,
	// through every active hold (the plan test caught it). A call may return
	// fewer than limit customers while more are due; the sweeper calls again.
	rows, err := c.query(ctx, `SELECT DISTINCT tenant_id, env, customer_id FROM (
			SELECT tenant_id, env, customer_id FROM reservations
			WHERE status = 'active' AND expires_at <= ?
			ORDER BY expires_at LIMIT ?) AS due`, ms(now), limit)
	return collect(rows, err, "list expired reservations", func(sc scanner) (store.CustomerKey, error) {
		var r store.CustomerKey
		err := sc.Scan(&r.Scope.TenantID, &r.Scope.Env, &r.CustomerID)
		return r, err
	})
}

// scanReservation reads reservationColumns.
func scanReservation(r scanner) (store.Reservation, error) {
	var v store.Reservation
	var meta sql.NullString
	var expires, created, updated int64
	err := r.Scan(&v.CustomerID, &v.ID, &v.MetricKey, &v.EstimatedUnits, &v.Amount, &v.Status, &expires,
		&v.CommittedAmount, &v.ReleasedAmount, &meta, &created, &updated)
	if err != nil {
		return store.Reservation{}, err
	}
	v.ExpiresAt, v.Metadata, v.CreatedAt, v.UpdatedAt = fromMS(expires), fromNullJSON(meta), fromMS(created), fromMS(updated)
	return v, nil
}

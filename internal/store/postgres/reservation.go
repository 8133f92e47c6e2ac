package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/creditd/creditd/internal/store"
)

const reservationColumns = `customer_id, id, metric_key, estimated_units, amount, status, expires_at, committed_amount,
	released_amount, metadata, created_at, updated_at`

func (c conn) ReservationGet(ctx context.Context, s store.Scope, id string) (store.Reservation, error) {
	r, err := scanReservation(c.q.QueryRow(ctx, `SELECT `+reservationColumns+` FROM reservations
		WHERE tenant_id = $1 AND env = $2 AND id = $3`, s.TenantID, s.Env, id))
	if err != nil {
		return store.Reservation{}, fmt.Errorf("select reservation: %w", interpretError(err))
	}
	return r, nil
}

// ReservationsActive names status by its value, not a parameter: only then
// may a cached (generic) plan read the partial index of active holds.
func (c conn) ReservationsActive(ctx context.Context, s store.Scope, customerID string) ([]store.Reservation, error) {
	rows, err := c.q.Query(ctx, `SELECT `+reservationColumns+` FROM reservations
		WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND status = 'active' ORDER BY id`,
		s.TenantID, s.Env, customerID)
	return collect(rows, err, "list active reservations", scanReservation)
}

// ReservationList has a statement per combination of its filters and the
// cursor, as PurchaseList has one per cursor: an optional condition cannot
// bound the index's range in a cached (generic) plan.
func (c conn) ReservationList(ctx context.Context, s store.Scope, customerID, status string, p store.Page) ([]store.Reservation, error) {
	where, args := `tenant_id = $1 AND env = $2`, []any{s.TenantID, s.Env}
	and := func(cond string, v any) {
		args = append(args, v)
		where += ` AND ` + cond + ` $` + strconv.Itoa(len(args))
	}
	if customerID != "" {
		and(`customer_id =`, customerID)
	}
	if status != "" {
		and(`status =`, status)
	}
	if p.After != "" {
		and(`id <`, p.After)
	}
	args = append(args, p.Limit)
	rows, err := c.q.Query(ctx, `SELECT `+reservationColumns+` FROM reservations WHERE `+where+`
		ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	return collect(rows, err, "list reservations", scanReservation)
}

func (c conn) ReservationExpiredCustomers(ctx context.Context, now time.Time, limit int) ([]store.CustomerKey, error) {
	// As in BlockExpiredCustomers: the limit is on the holds, taken in expiry
	// order from reservations_expiring, and DISTINCT runs on those, so that
	// a call reads at most limit index entries instead of walking
	// reservations_active in customer order when few holds are due. A call
	// may return fewer than limit customers while more are due; the sweeper
	// calls again.
	rows, err := c.q.Query(ctx, `SELECT DISTINCT tenant_id, env, customer_id FROM (
			SELECT tenant_id, env, customer_id FROM reservations
			WHERE status = 'active' AND expires_at <= $1
			ORDER BY expires_at LIMIT $2) AS due`, ms(now), limit)
	return collect(rows, err, "list expired reservations", func(sc scanner) (store.CustomerKey, error) {
		var r store.CustomerKey
		err := sc.Scan(&r.Scope.TenantID, &r.Scope.Env, &r.CustomerID)
		return r, err
	})
}

// scanReservation reads reservationColumns.
func scanReservation(r scanner) (store.Reservation, error) {
	var v store.Reservation
	var meta *string
	var expires, created, updated time.Time
	err := r.Scan(&v.CustomerID, &v.ID, &v.MetricKey, &v.EstimatedUnits, &v.Amount, &v.Status, &expires,
		&v.CommittedAmount, &v.ReleasedAmount, &meta, &created, &updated)
	if err != nil {
		return store.Reservation{}, err
	}
	v.ExpiresAt, v.Metadata, v.CreatedAt, v.UpdatedAt = fromTS(expires), fromNullJSON(meta), fromTS(created), fromTS(updated)
	return v, nil
}

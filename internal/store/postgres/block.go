package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/creditd/creditd/internal/store"
)

const blockColumns = `id, seq, original_amount, remaining_amount, priority, expires_at, price_paid,
	source, reason, currency, external_payment_id, metadata, created_at`

func (c conn) BlockList(ctx context.Context, s store.Scope, customerID string) ([]store.Block, error) {
	rows, err := c.q.Query(ctx, `SELECT customer_id, `+blockColumns+`
		FROM blocks WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND live ORDER BY seq`,
		s.TenantID, s.Env, customerID)
	return collect(rows, err, "list blocks", scanBlock)
}

func (c conn) BlockGet(ctx context.Context, s store.Scope, customerID, id string) (store.Block, error) {
	b, err := scanBlock(c.q.QueryRow(ctx, `SELECT customer_id, `+blockColumns+`
		FROM blocks WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND id = $4`, s.TenantID, s.Env, customerID, id))
	if err != nil {
		return store.Block{}, fmt.Errorf("select block: %w", interpretError(err))
	}
	return b, nil
}

// scanBlock reads customer_id, then blockColumns.
func scanBlock(r scanner) (store.Block, error) {
	var b store.Block
	var expires pgtype.Timestamptz
	var meta *string
	var created time.Time
	err := r.Scan(&b.CustomerID, &b.ID, &b.Seq, &b.Original, &b.Remaining, &b.Priority, &expires, &b.PricePaid,
		&b.Source, &b.Reason, &b.Currency, &b.ExternalPaymentID, &meta, &created)
	if err != nil {
		return store.Block{}, err
	}
	b.ExpiresAt, b.Metadata, b.CreatedAt = fromNullTS(expires), fromNullJSON(meta), fromTS(created)
	return b, nil
}

func (c conn) BlockExpiredCustomers(ctx context.Context, now time.Time, limit int) ([]store.CustomerKey, error) {
	// The limit is on the blocks, taken in expiry order from blocks_expiring,
	// and DISTINCT runs on those: so a call reads at most limit index
	// entries. With DISTINCT ... LIMIT over the whole table, PostgreSQL may
	// walk blocks_live in customer order, filtering on the expiry, through
	// every live block when few are due (the plan test caught it). A call
	// may return fewer than limit customers while more are due; the sweeper
	// calls again.
	rows, err := c.q.Query(ctx, `SELECT DISTINCT tenant_id, env, customer_id FROM (
			SELECT tenant_id, env, customer_id FROM blocks
			WHERE live AND expires_at IS NOT NULL AND expires_at <= $1
			ORDER BY expires_at LIMIT $2) AS due`, ms(now), limit)
	return collect(rows, err, "list expired blocks", func(sc scanner) (store.CustomerKey, error) {
		var r store.CustomerKey
		err := sc.Scan(&r.Scope.TenantID, &r.Scope.Env, &r.CustomerID)
		return r, err
	})
}

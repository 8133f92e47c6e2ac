package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

const blockColumns = `id, seq, original_amount, remaining_amount, priority, expires_at, price_paid,
	source, reason, currency, external_payment_id, metadata, created_at`

func (c conn) BlockList(ctx context.Context, s store.Scope, customerID string) ([]store.Block, error) {
	rows, err := c.query(ctx, `SELECT customer_id, `+blockColumns+`
		FROM blocks WHERE tenant_id = ? AND env = ? AND customer_id = ? AND live = 1 ORDER BY seq`,
		s.TenantID, s.Env, customerID)
	return collect(rows, err, "list blocks", func(r scanner) (store.Block, error) {
		var id string
		return scanBlock(r, &id)
	})
}

func (c conn) BlockGet(ctx context.Context, s store.Scope, customerID, id string) (store.Block, error) {
	row := c.queryRow(ctx, `SELECT customer_id, `+blockColumns+`
		FROM blocks WHERE tenant_id = ? AND env = ? AND customer_id = ? AND id = ?`, s.TenantID, s.Env, customerID, id)
	var cust string
	b, err := scanBlock(row, &cust)
	if err != nil {
		return store.Block{}, fmt.Errorf("select block: %w", interpretError(err))
	}
	return b, nil
}

// scanBlock reads customer_id, then blockColumns.
func scanBlock(r scanner, customerID *string) (store.Block, error) {
	var b store.Block
	var expires sql.NullInt64
	var meta sql.NullString
	var created int64
	err := r.Scan(customerID, &b.ID, &b.Seq, &b.Original, &b.Remaining, &b.Priority, &expires, &b.PricePaid,
		&b.Source, &b.Reason, &b.Currency, &b.ExternalPaymentID, &meta, &created)
	if err != nil {
		return store.Block{}, err
	}
	b.CustomerID = *customerID
	b.ExpiresAt, b.Metadata, b.CreatedAt = fromNullMS(expires), fromNullJSON(meta), fromMS(created)
	return b, nil
}

// blockInsert inserts one block, for WritesApply.
func (c conn) blockInsert(ctx context.Context, s store.Scope, b store.Block) error {
	// live is remaining_amount > 0 (migration 00008): a block granted and
	// used up in one group is inserted dead.
	_, err := c.exec(ctx, `INSERT INTO blocks (tenant_id, env, customer_id, id, seq, original_amount, remaining_amount,
			priority, expires_at, price_paid, source, reason, currency, external_payment_id, metadata, created_at, live)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.TenantID, s.Env, b.CustomerID, b.ID, b.Seq, b.Original, b.Remaining, b.Priority, nullMS(b.ExpiresAt), b.PricePaid,
		b.Source, b.Reason, b.Currency, b.ExternalPaymentID, nullJSON(b.Metadata), ms(b.CreatedAt), b.Remaining > 0)
	if err != nil {
		return fmt.Errorf("insert block: %w", interpretError(err))
	}
	return nil
}

func (c conn) BlockExpiredCustomers(ctx context.Context, now time.Time, limit int) ([]store.CustomerKey, error) {
	rows, err := c.query(ctx, `SELECT DISTINCT tenant_id, env, customer_id FROM blocks
		WHERE live = 1 AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?`, ms(now), limit)
	return collect(rows, err, "list expired blocks", func(sc scanner) (store.CustomerKey, error) {
		var r store.CustomerKey
		err := sc.Scan(&r.Scope.TenantID, &r.Scope.Env, &r.CustomerID)
		return r, err
	})
}

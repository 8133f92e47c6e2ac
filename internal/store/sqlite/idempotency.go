package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

func (c conn) IdempotencyGet(ctx context.Context, s store.Scope, key string, since time.Time) (store.IdempotencyRecord, error) {
	r := store.IdempotencyRecord{Key: key}
	var created int64
	err := c.queryRow(ctx, `SELECT method, path, status, body, created_at FROM idempotency_keys
		WHERE tenant_id = ? AND env = ? AND key = ? AND created_at >= ?`, s.TenantID, s.Env, key, ms(since)).
		Scan(&r.Method, &r.Path, &r.Status, &r.Body, &created)
	if err != nil {
		return store.IdempotencyRecord{}, fmt.Errorf("select idempotency key: %w", interpretError(err))
	}
	r.CreatedAt = fromMS(created)
	return r, nil
}

func (c conn) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	res, err := c.exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", interpretError(err))
	}
	return res.RowsAffected()
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

func (c conn) IdempotencyGet(ctx context.Context, s store.Scope, key string, since time.Time) (store.IdempotencyRecord, error) {
	r := store.IdempotencyRecord{Key: key}
	var created time.Time
	// since is applied here, not in SQL, as in IdempotencyGetAll: so that
	// the primary key is the only way to the row.
	err := c.q.QueryRow(ctx, `SELECT method, path, status, body, created_at FROM idempotency_keys
		WHERE tenant_id = $1 AND env = $2 AND key = $3`, s.TenantID, s.Env, key).
		Scan(&r.Method, &r.Path, &r.Status, &r.Body, &created)
	if err != nil {
		return store.IdempotencyRecord{}, fmt.Errorf("select idempotency key: %w", interpretError(err))
	}
	r.CreatedAt = fromTS(created)
	if r.CreatedAt.Before(ms(since)) {
		return store.IdempotencyRecord{}, notFound("select idempotency key: lapsed")
	}
	return r, nil
}

func (c conn) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	tag, err := c.q.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", interpretError(err))
	}
	return tag.RowsAffected(), nil
}

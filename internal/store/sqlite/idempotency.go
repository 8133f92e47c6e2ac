package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// IdempotencyLock is a no-op: the IMMEDIATE transaction already serializes
// every writer of the database.
func (c conn) IdempotencyLock(ctx context.Context, s store.Scope, key string) error {
	if !c.inTx {
		return fmt.Errorf("idempotency lock of %q outside a transaction", key)
	}
	return nil
}

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

func (c conn) IdempotencyPut(ctx context.Context, s store.Scope, r store.IdempotencyRecord, since time.Time) error {
	// A record older than since has lapsed: the key is free again and its
	// new response replaces the old one. A live record is a conflict.
	res, err := c.exec(ctx, `INSERT INTO idempotency_keys (tenant_id, env, key, method, path, status, body, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, env, key) DO UPDATE SET method = excluded.method, path = excluded.path,
			status = excluded.status, body = excluded.body, created_at = excluded.created_at
		WHERE idempotency_keys.created_at < ?`,
		s.TenantID, s.Env, r.Key, r.Method, r.Path, r.Status, r.Body, ms(r.CreatedAt), ms(since))
	if err != nil {
		return fmt.Errorf("insert idempotency key: %w", interpretError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("insert idempotency key: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("insert idempotency key %q: %w", r.Key, store.ErrConflict)
	}
	return nil
}

func (c conn) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	res, err := c.exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", interpretError(err))
	}
	return res.RowsAffected()
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// IdempotencyLock takes a transaction-scoped advisory lock on the key, so that
// requests with one key serialize across every instance, even before any row
// for the key exists.
func (c conn) IdempotencyLock(ctx context.Context, s store.Scope, key string) error {
	if !c.inTx {
		return fmt.Errorf("idempotency lock of %q outside a transaction", key)
	}
	_, err := c.q.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, s.TenantID+"/"+s.Env+"/"+key)
	if err != nil {
		return fmt.Errorf("lock idempotency key: %w", interpretError(err))
	}
	return nil
}

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

func (c conn) IdempotencyPut(ctx context.Context, s store.Scope, r store.IdempotencyRecord, since time.Time) error {
	// A record older than since has lapsed: the key is free again and its
	// new response replaces the old one. A live record is a conflict.
	tag, err := c.q.Exec(ctx, `INSERT INTO idempotency_keys (tenant_id, env, key, method, path, status, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (tenant_id, env, key) DO UPDATE SET method = excluded.method, path = excluded.path,
			status = excluded.status, body = excluded.body, created_at = excluded.created_at
		WHERE idempotency_keys.created_at < $9`,
		s.TenantID, s.Env, r.Key, r.Method, r.Path, r.Status, r.Body, ms(r.CreatedAt), ms(since))
	if err != nil {
		return fmt.Errorf("insert idempotency key: %w", interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("insert idempotency key %q: %w", r.Key, store.ErrConflict)
	}
	return nil
}

func (c conn) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	tag, err := c.q.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", interpretError(err))
	}
	return tag.RowsAffected(), nil
}

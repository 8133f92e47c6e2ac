package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

func notFound(what string) error { return fmt.Errorf("%s: %w", what, store.ErrNotFound) }

func (c conn) TenantCreate(ctx context.Context, t store.Tenant) error {
	_, err := c.q.Exec(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, t.ID, t.Name, ms(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert tenant: %w", interpretError(err))
	}
	return nil
}

func (c conn) TenantGet(ctx context.Context, id string) (store.Tenant, error) {
	return c.tenant(ctx, `SELECT id, name, created_at FROM tenants WHERE id = $1`, id)
}

func (c conn) TenantFirst(ctx context.Context) (store.Tenant, error) {
	return c.tenant(ctx, `SELECT id, name, created_at FROM tenants ORDER BY created_at, id LIMIT 1`)
}

func (c conn) tenant(ctx context.Context, query string, args ...any) (store.Tenant, error) {
	var t store.Tenant
	var created time.Time
	if err := c.q.QueryRow(ctx, query, args...).Scan(&t.ID, &t.Name, &created); err != nil {
		return store.Tenant{}, fmt.Errorf("select tenant: %w", interpretError(err))
	}
	t.CreatedAt = fromTS(created)
	return t, nil
}

func (c conn) APIKeyCreate(ctx context.Context, k store.APIKey) error {
	_, err := c.q.Exec(ctx, `INSERT INTO api_keys (hash, prefix, tenant_id, env, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.Hash, k.Prefix, k.TenantID, k.Env, ms(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert api key: %w", interpretError(err))
	}
	return nil
}

func (c conn) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	var k store.APIKey
	var created time.Time
	err := c.q.QueryRow(ctx, `SELECT hash, prefix, tenant_id, env, created_at FROM api_keys WHERE hash = $1`, hash).
		Scan(&k.Hash, &k.Prefix, &k.TenantID, &k.Env, &created)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("select api key: %w", interpretError(err))
	}
	k.CreatedAt = fromTS(created)
	return k, nil
}

func (c conn) APIKeyCount(ctx context.Context) (int, error) {
	var n int
	if err := c.q.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count api keys: %w", interpretError(err))
	}
	return n, nil
}

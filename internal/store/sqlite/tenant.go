package sqlite

import (
	"context"
	"fmt"

	"github.com/creditd/creditd/internal/store"
)

func (c conn) TenantCreate(ctx context.Context, t store.Tenant) error {
	_, err := c.exec(ctx, `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`, t.ID, t.Name, ms(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert tenant: %w", interpretError(err))
	}
	return nil
}

func (c conn) TenantGet(ctx context.Context, id string) (store.Tenant, error) {
	return c.tenant(ctx, `SELECT id, name, created_at FROM tenants WHERE id = ?`, id)
}

func (c conn) TenantFirst(ctx context.Context) (store.Tenant, error) {
	return c.tenant(ctx, `SELECT id, name, created_at FROM tenants ORDER BY created_at, id LIMIT 1`)
}

func (c conn) tenant(ctx context.Context, query string, args ...any) (store.Tenant, error) {
	var t store.Tenant
	var created int64
	if err := c.queryRow(ctx, query, args...).Scan(&t.ID, &t.Name, &created); err != nil {
		return store.Tenant{}, fmt.Errorf("select tenant: %w", interpretError(err))
	}
	t.CreatedAt = fromMS(created)
	return t, nil
}

func (c conn) APIKeyCreate(ctx context.Context, k store.APIKey) error {
	_, err := c.exec(ctx, `INSERT INTO api_keys (hash, prefix, tenant_id, env, created_at) VALUES (?, ?, ?, ?, ?)`,
		k.Hash, k.Prefix, k.TenantID, k.Env, ms(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert api key: %w", interpretError(err))
	}
	return nil
}

func (c conn) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	var k store.APIKey
	var created int64
	err := c.queryRow(ctx, `SELECT hash, prefix, tenant_id, env, created_at FROM api_keys WHERE hash = ?`, hash).
		Scan(&k.Hash, &k.Prefix, &k.TenantID, &k.Env, &created)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("select api key: %w", interpretError(err))
	}
	k.CreatedAt = fromMS(created)
	return k, nil
}

func (c conn) APIKeyCount(ctx context.Context) (int, error) {
	var n int
	if err := c.queryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count api keys: %w", interpretError(err))
	}
	return n, nil
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

const customerColumns = `id, external_id, display_name, metadata, created_at, balance, reserved, lifetime_earned, version`

func (c conn) CustomerGet(ctx context.Context, s store.Scope, id string) (store.Customer, error) {
	return c.customer(ctx, `WHERE tenant_id = $1 AND env = $2 AND id = $3`, s.TenantID, s.Env, id)
}

func (c conn) CustomerByExternalID(ctx context.Context, s store.Scope, externalID string) (store.Customer, error) {
	return c.customer(ctx, `WHERE tenant_id = $1 AND env = $2 AND external_id = $3`, s.TenantID, s.Env, externalID)
}

func (c conn) customer(ctx context.Context, where string, args ...any) (store.Customer, error) {
	cu, err := scanCustomer(c.q.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers `+where, args...))
	if err != nil {
		return store.Customer{}, fmt.Errorf("select customer: %w", interpretError(err))
	}
	return cu, nil
}

func (c conn) CustomerList(ctx context.Context, s store.Scope, p store.Page) ([]store.Customer, error) {
	rows, err := c.q.Query(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE tenant_id = $1 AND env = $2 AND id > $3 ORDER BY id LIMIT $4`, s.TenantID, s.Env, p.After, p.Limit)
	return collect(rows, err, "list customers", scanCustomer)
}

type scanner interface{ Scan(dest ...any) error }

func scanCustomer(r scanner) (store.Customer, error) {
	var cu store.Customer
	var ext, meta *string
	var created time.Time
	err := r.Scan(&cu.ID, &ext, &cu.DisplayName, &meta, &created,
		&cu.Account.Balance, &cu.Account.Reserved, &cu.Account.LifetimeEarned, &cu.Account.Version)
	if err != nil {
		return store.Customer{}, err
	}
	cu.ExternalID, cu.Metadata, cu.CreatedAt = deref(ext), fromNullJSON(meta), fromTS(created)
	return cu, nil
}

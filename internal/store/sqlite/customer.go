package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/creditd/creditd/internal/store"
)

const customerColumns = `id, external_id, display_name, metadata, created_at, balance, reserved, lifetime_earned, version`

// customerInsert inserts one customer, for WritesApply.
func (c conn) customerInsert(ctx context.Context, s store.Scope, cu store.Customer) error {
	a := cu.Account
	_, err := c.exec(ctx, `INSERT INTO customers (tenant_id, env, `+customerColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.TenantID, s.Env, cu.ID, nullText(cu.ExternalID), cu.DisplayName, nullJSON(cu.Metadata), ms(cu.CreatedAt),
		a.Balance, a.Reserved, a.LifetimeEarned, a.Version)
	if err != nil {
		return fmt.Errorf("insert customer: %w", interpretError(err))
	}
	return nil
}

func (c conn) CustomerGet(ctx context.Context, s store.Scope, id string) (store.Customer, error) {
	return c.customer(ctx, `WHERE tenant_id = ? AND env = ? AND id = ?`, s.TenantID, s.Env, id)
}

func (c conn) CustomerByExternalID(ctx context.Context, s store.Scope, externalID string) (store.Customer, error) {
	return c.customer(ctx, `WHERE tenant_id = ? AND env = ? AND external_id = ?`, s.TenantID, s.Env, externalID)
}

func (c conn) customer(ctx context.Context, where string, args ...any) (store.Customer, error) {
	row := c.queryRow(ctx, `SELECT `+customerColumns+` FROM customers `+where, args...)
	cu, err := scanCustomer(row)
	if err != nil {
		return store.Customer{}, fmt.Errorf("select customer: %w", interpretError(err))
	}
	return cu, nil
}

func (c conn) CustomerList(ctx context.Context, s store.Scope, p store.Page) ([]store.Customer, error) {
	rows, err := c.query(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE tenant_id = ? AND env = ? AND id > ? ORDER BY id LIMIT ?`, s.TenantID, s.Env, p.After, p.Limit)
	return collect(rows, err, "list customers", scanCustomer)
}

type scanner interface{ Scan(dest ...any) error }

func scanCustomer(r scanner) (store.Customer, error) {
	var cu store.Customer
	var ext, meta sql.NullString
	var created int64
	err := r.Scan(&cu.ID, &ext, &cu.DisplayName, &meta, &created,
		&cu.Account.Balance, &cu.Account.Reserved, &cu.Account.LifetimeEarned, &cu.Account.Version)
	if err != nil {
		return store.Customer{}, err
	}
	cu.ExternalID, cu.Metadata, cu.CreatedAt = ext.String, fromNullJSON(meta), fromMS(created)
	return cu, nil
}

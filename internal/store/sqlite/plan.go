package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/creditd/creditd/internal/store"
)

const planColumns = `id, key, name, price, credits, priority, duration_seconds, pay_from_max_priority, metadata, active, created_at`

func (c conn) PlanCreate(ctx context.Context, s store.Scope, p store.Plan) error {
	_, err := c.exec(ctx, `INSERT INTO plans (tenant_id, env, `+planColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.TenantID, s.Env, p.ID, p.Key, p.Name, p.Price, p.Credits, p.Priority, nullSeconds(p.DurationSeconds),
		p.PayFromMaxPriority, nullJSON(p.Metadata), p.Active, ms(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert plan: %w", interpretError(err))
	}
	return nil
}

func (c conn) PlanGet(ctx context.Context, s store.Scope, key string) (store.Plan, error) {
	p, err := scanPlan(c.queryRow(ctx, `SELECT `+planColumns+` FROM plans WHERE tenant_id = ? AND env = ? AND key = ?`,
		s.TenantID, s.Env, key))
	if err != nil {
		return store.Plan{}, fmt.Errorf("select plan: %w", interpretError(err))
	}
	return p, nil
}

func (c conn) PlanList(ctx context.Context, s store.Scope, p store.Page) ([]store.Plan, error) {
	rows, err := c.query(ctx, `SELECT `+planColumns+` FROM plans
		WHERE tenant_id = ? AND env = ? AND id > ? ORDER BY id LIMIT ?`, s.TenantID, s.Env, p.After, p.Limit)
	return collect(rows, err, "list plans", scanPlan)
}

func (c conn) PlanArchive(ctx context.Context, s store.Scope, key string) error {
	res, err := c.exec(ctx, `UPDATE plans SET active = 0 WHERE tenant_id = ? AND env = ? AND key = ?`, s.TenantID, s.Env, key)
	if err != nil {
		return fmt.Errorf("archive plan: %w", interpretError(err))
	}
	if err := written(res, 1, store.ErrNotFound); err != nil {
		return fmt.Errorf("archive plan %q: %w", key, err)
	}
	return nil
}

func scanPlan(r scanner) (store.Plan, error) {
	var p store.Plan
	var duration sql.NullInt64
	var meta sql.NullString
	var created int64
	err := r.Scan(&p.ID, &p.Key, &p.Name, &p.Price, &p.Credits, &p.Priority, &duration, &p.PayFromMaxPriority,
		&meta, &p.Active, &created)
	if err != nil {
		return store.Plan{}, err
	}
	p.DurationSeconds, p.Metadata, p.CreatedAt = duration.Int64, fromNullJSON(meta), fromMS(created)
	return p, nil
}

// nullSeconds stores a plan without expiry (0 seconds) as NULL.
func nullSeconds(v int64) sql.NullInt64 {
	return sql.NullInt64{Int64: v, Valid: v != 0}
}

const purchaseColumns = `customer_id, id, plan_key, order_id, price, credits, block_id, debits, balance_after,
	effective_balance, metadata, created_at`

func (c conn) PurchaseByOrder(ctx context.Context, s store.Scope, customerID, orderID string) (store.Purchase, error) {
	return c.purchase(ctx, `WHERE tenant_id = ? AND env = ? AND customer_id = ? AND order_id = ?`,
		s.TenantID, s.Env, customerID, orderID)
}

func (c conn) PurchaseGet(ctx context.Context, s store.Scope, id string) (store.Purchase, error) {
	return c.purchase(ctx, `WHERE tenant_id = ? AND env = ? AND id = ?`, s.TenantID, s.Env, id)
}

func (c conn) purchase(ctx context.Context, where string, args ...any) (store.Purchase, error) {
	p, err := scanPurchase(c.queryRow(ctx, `SELECT `+purchaseColumns+` FROM plan_purchases `+where, args...))
	if err != nil {
		return store.Purchase{}, fmt.Errorf("select plan purchase: %w", interpretError(err))
	}
	return p, nil
}

// PurchaseList has two statements, the first page's without a cursor: no
// id sorts after every other, and an optional condition would keep the
// index from bounding the page.
func (c conn) PurchaseList(ctx context.Context, s store.Scope, customerID string, p store.Page) ([]store.Purchase, error) {
	var rows *sql.Rows
	var err error
	if p.After == "" {
		rows, err = c.query(ctx, `SELECT `+purchaseColumns+` FROM plan_purchases
			WHERE tenant_id = ? AND env = ? AND customer_id = ? ORDER BY id DESC LIMIT ?`,
			s.TenantID, s.Env, customerID, p.Limit)
	} else {
		rows, err = c.query(ctx, `SELECT `+purchaseColumns+` FROM plan_purchases
			WHERE tenant_id = ? AND env = ? AND customer_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
			s.TenantID, s.Env, customerID, p.After, p.Limit)
	}
	return collect(rows, err, "list plan purchases", scanPurchase)
}

func scanPurchase(r scanner) (store.Purchase, error) {
	var p store.Purchase
	var debits string
	var meta sql.NullString
	var created int64
	err := r.Scan(&p.CustomerID, &p.ID, &p.PlanKey, &p.OrderID, &p.Price, &p.Credits, &p.BlockID, &debits,
		&p.BalanceAfter, &p.EffectiveBalance, &meta, &created)
	if err != nil {
		return store.Purchase{}, err
	}
	if err := json.Unmarshal([]byte(debits), &p.Debits); err != nil {
		return store.Purchase{}, fmt.Errorf("plan purchase %s: decode debits: %w", p.ID, err)
	}
	p.Metadata, p.CreatedAt = fromNullJSON(meta), fromMS(created)
	return p, nil
}

// debitsJSON encodes a purchase's debits for their text column, none as an
// empty list. Encoding strings and integers cannot fail, which lets
// WritesApply build a statement's arguments without an error path.
func debitsJSON(ds []store.PurchaseDebit) string {
	if len(ds) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ds)
	return string(b)
}

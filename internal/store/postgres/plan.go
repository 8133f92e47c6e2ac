package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/store"
)

const planColumns = `id, key, name, price, credits, priority, duration_seconds, pay_from_max_priority, metadata, active, created_at`

func (c conn) PlanCreate(ctx context.Context, s store.Scope, p store.Plan) error {
	_, err := c.q.Exec(ctx, `INSERT INTO plans (tenant_id, env, `+planColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		s.TenantID, s.Env, p.ID, p.Key, p.Name, p.Price, p.Credits, p.Priority, nullSeconds(p.DurationSeconds),
		p.PayFromMaxPriority, nullJSON(p.Metadata), p.Active, ms(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert plan: %w", interpretError(err))
	}
	return nil
}

func (c conn) PlanGet(ctx context.Context, s store.Scope, key string) (store.Plan, error) {
	p, err := scanPlan(c.q.QueryRow(ctx, `SELECT `+planColumns+` FROM plans WHERE tenant_id = $1 AND env = $2 AND key = $3`,
		s.TenantID, s.Env, key))
	if err != nil {
		return store.Plan{}, fmt.Errorf("select plan: %w", interpretError(err))
	}
	return p, nil
}

func (c conn) PlanList(ctx context.Context, s store.Scope, p store.Page) ([]store.Plan, error) {
	rows, err := c.q.Query(ctx, `SELECT `+planColumns+` FROM plans
		WHERE tenant_id = $1 AND env = $2 AND id > $3 ORDER BY id LIMIT $4`, s.TenantID, s.Env, p.After, p.Limit)
	return collect(rows, err, "list plans", scanPlan)
}

func (c conn) PlanArchive(ctx context.Context, s store.Scope, key string) error {
	tag, err := c.q.Exec(ctx, `UPDATE plans SET active = false WHERE tenant_id = $1 AND env = $2 AND key = $3`, s.TenantID, s.Env, key)
	if err != nil {
		return fmt.Errorf("archive plan: %w", interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("archive plan %q: %w", key, store.ErrNotFound)
	}
	return nil
}

func scanPlan(r scanner) (store.Plan, error) {
	var p store.Plan
	var duration *int64
	var meta *string
	var created time.Time
	err := r.Scan(&p.ID, &p.Key, &p.Name, &p.Price, &p.Credits, &p.Priority, &duration, &p.PayFromMaxPriority, &meta, &p.Active, &created)
	if err != nil {
		return store.Plan{}, err
	}
	if duration != nil {
		p.DurationSeconds = *duration
	}
	p.Metadata, p.CreatedAt = fromNullJSON(meta), fromTS(created)
	return p, nil
}

// nullSeconds stores a plan without expiry (0 seconds) as NULL.
func nullSeconds(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

const purchaseColumns = `customer_id, id, plan_key, order_id, price, credits, block_id, debits, balance_after,
	effective_balance, metadata, created_at`

func (c conn) PurchaseByOrder(ctx context.Context, s store.Scope, customerID, orderID string) (store.Purchase, error) {
	return c.purchase(ctx, `WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND order_id = $4`,
		s.TenantID, s.Env, customerID, orderID)
}

func (c conn) PurchaseGet(ctx context.Context, s store.Scope, id string) (store.Purchase, error) {
	return c.purchase(ctx, `WHERE tenant_id = $1 AND env = $2 AND id = $3`, s.TenantID, s.Env, id)
}

func (c conn) purchase(ctx context.Context, where string, args ...any) (store.Purchase, error) {
	p, err := scanPurchase(c.q.QueryRow(ctx, `SELECT `+purchaseColumns+` FROM plan_purchases `+where, args...))
	if err != nil {
		return store.Purchase{}, fmt.Errorf("select plan purchase: %w", interpretError(err))
	}
	return p, nil
}

// PurchaseList has two statements, the first page's without a cursor: no
// id sorts after every other in every collation, and an optional condition
// cannot bound the index's range in a cached (generic) plan.
func (c conn) PurchaseList(ctx context.Context, s store.Scope, customerID string, p store.Page) ([]store.Purchase, error) {
	var rows pgx.Rows
	var err error
	if p.After == "" {
		rows, err = c.q.Query(ctx, `SELECT `+purchaseColumns+` FROM plan_purchases
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 ORDER BY id DESC LIMIT $4`,
			s.TenantID, s.Env, customerID, p.Limit)
	} else {
		rows, err = c.q.Query(ctx, `SELECT `+purchaseColumns+` FROM plan_purchases
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND id < $4 ORDER BY id DESC LIMIT $5`,
			s.TenantID, s.Env, customerID, p.After, p.Limit)
	}
	return collect(rows, err, "list plan purchases", scanPurchase)
}

func scanPurchase(r scanner) (store.Purchase, error) {
	var p store.Purchase
	var debits string
	var meta *string
	var created time.Time
	err := r.Scan(&p.CustomerID, &p.ID, &p.PlanKey, &p.OrderID, &p.Price, &p.Credits, &p.BlockID, &debits,
		&p.BalanceAfter, &p.EffectiveBalance, &meta, &created)
	if err != nil {
		return store.Purchase{}, err
	}
	if err := json.Unmarshal([]byte(debits), &p.Debits); err != nil {
		return store.Purchase{}, fmt.Errorf("plan purchase %s: decode debits: %w", p.ID, err)
	}
	p.Metadata, p.CreatedAt = fromNullJSON(meta), fromTS(created)
	return p, nil
}

// debitsJSON encodes a purchase's debits for their text column, none as an
// empty list. Encoding strings and integers cannot fail, which lets
// WritesApply fill its arrays without an error path.
func debitsJSON(ds []store.PurchaseDebit) string {
	if len(ds) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ds)
	return string(b)
}

package sqlite

import (
	"context"
	"fmt"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

func (c conn) MetricCreate(ctx context.Context, s store.Scope, m store.Metric) error {
	_, err := c.exec(ctx, `INSERT INTO billable_metrics (tenant_id, env, id, key, name, description, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, s.TenantID, s.Env, m.ID, m.Key, m.Name, m.Description, ms(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert metric: %w", interpretError(err))
	}
	return nil
}

func (c conn) MetricGet(ctx context.Context, s store.Scope, key string) (store.Metric, error) {
	row := c.queryRow(ctx, `SELECT id, key, name, description, created_at FROM billable_metrics
		WHERE tenant_id = ? AND env = ? AND key = ?`, s.TenantID, s.Env, key)
	m, err := scanMetric(row)
	if err != nil {
		return store.Metric{}, fmt.Errorf("select metric: %w", interpretError(err))
	}
	return m, nil
}

func (c conn) MetricList(ctx context.Context, s store.Scope, p store.Page) ([]store.Metric, error) {
	rows, err := c.query(ctx, `SELECT id, key, name, description, created_at FROM billable_metrics
		WHERE tenant_id = ? AND env = ? AND id > ? ORDER BY id LIMIT ?`, s.TenantID, s.Env, p.After, p.Limit)
	return collect(rows, err, "list metrics", scanMetric)
}

func scanMetric(r scanner) (store.Metric, error) {
	var m store.Metric
	var created int64
	if err := r.Scan(&m.ID, &m.Key, &m.Name, &m.Description, &created); err != nil {
		return store.Metric{}, err
	}
	m.CreatedAt = fromMS(created)
	return m, nil
}

func (c conn) RuleCreate(ctx context.Context, s store.Scope, r store.Rule) error {
	if _, err := c.exec(ctx, `UPDATE metering_rules SET active = 0
		WHERE tenant_id = ? AND env = ? AND metric_key = ? AND active = 1`, s.TenantID, s.Env, r.MetricKey); err != nil {
		return fmt.Errorf("deactivate rule: %w", interpretError(err))
	}
	tiers, err := store.MarshalTiers(r.Tiers)
	if err != nil {
		return fmt.Errorf("insert rule: %w", err)
	}
	_, err = c.exec(ctx, `INSERT INTO metering_rules
		(tenant_id, env, id, metric_key, cost_type, flat_cost, unit_cost, unit_size, tier_mode, tiers, active, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		s.TenantID, s.Env, r.ID, r.MetricKey, string(r.CostType), r.FlatCost, r.UnitCost, r.UnitSize, string(r.TierMode), tiers, ms(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert rule: %w", interpretError(err))
	}
	if c.cache != nil {
		c.cache.rulesChanged()
	}
	return nil
}

const ruleColumns = `id, metric_key, cost_type, flat_cost, unit_cost, unit_size, tier_mode, tiers, active, created_at`

func (c conn) RuleActive(ctx context.Context, s store.Scope, metricKey string) (store.Rule, error) {
	row := c.queryRow(ctx, `SELECT `+ruleColumns+` FROM metering_rules
		WHERE tenant_id = ? AND env = ? AND metric_key = ? AND active = 1`, s.TenantID, s.Env, metricKey)
	r, err := scanRule(row)
	if err != nil {
		return store.Rule{}, fmt.Errorf("select active rule: %w", interpretError(err))
	}
	if c.memo != nil {
		c.memo.offerRule(c.gen, s, r)
	}
	return r, nil
}

func (c conn) RuleList(ctx context.Context, s store.Scope, p store.Page) ([]store.Rule, error) {
	rows, err := c.query(ctx, `SELECT `+ruleColumns+` FROM metering_rules
		WHERE tenant_id = ? AND env = ? AND id > ? ORDER BY id LIMIT ?`, s.TenantID, s.Env, p.After, p.Limit)
	return collect(rows, err, "list rules", scanRule)
}

func scanRule(sc scanner) (store.Rule, error) {
	var r store.Rule
	var costType, tierMode string
	var tiers *string
	var created int64
	err := sc.Scan(&r.ID, &r.MetricKey, &costType, &r.FlatCost, &r.UnitCost, &r.UnitSize, &tierMode, &tiers, &r.Active, &created)
	if err != nil {
		return store.Rule{}, err
	}
	r.CostType, r.TierMode, r.CreatedAt = credit.CostType(costType), credit.TierMode(tierMode), fromMS(created)
	if r.Tiers, err = store.UnmarshalTiers(tiers); err != nil {
		return store.Rule{}, fmt.Errorf("rule %s: %w", r.ID, err)
	}
	return r, nil
}

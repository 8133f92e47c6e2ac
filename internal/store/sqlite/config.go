package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/creditd/creditd/internal/store"
)

func (c conn) ConfigGet(ctx context.Context, s store.Scope) (store.TenantConfig, error) {
	var cfg store.TenantConfig
	var threshold sql.NullInt64
	var updated int64
	err := c.queryRow(ctx, `SELECT webhook_url, webhook_secret, low_balance_threshold, updated_at FROM tenant_configs
		WHERE tenant_id = ? AND env = ?`, s.TenantID, s.Env).Scan(&cfg.WebhookURL, &cfg.WebhookSecret, &threshold, &updated)
	if err != nil {
		return store.TenantConfig{}, fmt.Errorf("select tenant config: %w", interpretError(err))
	}
	if threshold.Valid {
		cfg.LowBalanceThreshold = &threshold.Int64
	}
	cfg.UpdatedAt = fromMS(updated)
	return cfg, nil
}

func (c conn) ConfigPut(ctx context.Context, s store.Scope, cfg store.TenantConfig) error {
	var secret any
	if len(cfg.WebhookSecret) > 0 {
		secret = cfg.WebhookSecret
	}
	_, err := c.exec(ctx, `INSERT INTO tenant_configs (tenant_id, env, webhook_url, webhook_secret, low_balance_threshold, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, env) DO UPDATE SET webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret,
			low_balance_threshold = excluded.low_balance_threshold, updated_at = excluded.updated_at`,
		s.TenantID, s.Env, cfg.WebhookURL, secret, cfg.LowBalanceThreshold, ms(cfg.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put tenant config: %w", interpretError(err))
	}
	return nil
}

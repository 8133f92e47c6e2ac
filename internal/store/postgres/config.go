package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/store"
)

const configSelect = `SELECT webhook_url, webhook_secret, low_balance_threshold, updated_at FROM tenant_configs
	WHERE tenant_id = $1 AND env = $2`

func (c conn) ConfigGet(ctx context.Context, s store.Scope) (store.TenantConfig, error) {
	cfg, err := scanConfig(c.q.QueryRow(ctx, configSelect, s.TenantID, s.Env))
	if err != nil {
		return store.TenantConfig{}, fmt.Errorf("select tenant config: %w", interpretError(err))
	}
	return cfg, nil
}

// queueConfigGet queues the read of a scope's config into out; a scope
// without one is left out.
func queueConfigGet(b *pgx.Batch, s store.Scope, out map[store.Scope]store.TenantConfig) {
	b.Queue(configSelect, s.TenantID, s.Env).QueryRow(func(row pgx.Row) error {
		cfg, err := scanConfig(row)
		switch {
		case err == nil:
			out[s] = cfg
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return nil
	})
}

func scanConfig(row pgx.Row) (store.TenantConfig, error) {
	var cfg store.TenantConfig
	var updated time.Time
	if err := row.Scan(&cfg.WebhookURL, &cfg.WebhookSecret, &cfg.LowBalanceThreshold, &updated); err != nil {
		return store.TenantConfig{}, err
	}
	cfg.UpdatedAt = fromTS(updated)
	return cfg, nil
}

func (c conn) ConfigPut(ctx context.Context, s store.Scope, cfg store.TenantConfig) error {
	var secret []byte
	if len(cfg.WebhookSecret) > 0 {
		secret = cfg.WebhookSecret
	}
	_, err := c.q.Exec(ctx, `INSERT INTO tenant_configs (tenant_id, env, webhook_url, webhook_secret, low_balance_threshold, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, env) DO UPDATE SET webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret,
			low_balance_threshold = excluded.low_balance_threshold, updated_at = excluded.updated_at`,
		s.TenantID, s.Env, cfg.WebhookURL, secret, cfg.LowBalanceThreshold, ms(cfg.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put tenant config: %w", interpretError(err))
	}
	return nil
}

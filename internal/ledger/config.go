package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditd/creditd/internal/store"
)

// ConfigPatch changes some of a scope's settings; a nil field is left as it
// is. An empty WebhookURL or WebhookSecret clears it; ClearThreshold clears
// the low-balance threshold.
type ConfigPatch struct {
	WebhookURL          *string
	WebhookSecret       *[]byte
	LowBalanceThreshold *int64
	ClearThreshold      bool
}

// UpdateConfig applies a patch to the request's scope's settings. Settings
// are rare writes: they go into the database as they run, inside the
// group's transaction.
type UpdateConfig struct {
	Patch  ConfigPatch
	Encode Encoder[store.TenantConfig]
}

func (c UpdateConfig) plan(*plan) {}
func (c UpdateConfig) size() int  { return 1 }

func (c UpdateConfig) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	cfg, err := g.q.ConfigGet(ctx, req.Scope)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Response{}, false, fmt.Errorf("tenant config: %w", err)
	}
	p := c.Patch
	if p.WebhookURL != nil {
		cfg.WebhookURL = *p.WebhookURL
	}
	if p.WebhookSecret != nil {
		cfg.WebhookSecret = *p.WebhookSecret
	}
	switch {
	case p.ClearThreshold:
		cfg.LowBalanceThreshold = nil
	case p.LowBalanceThreshold != nil:
		v := *p.LowBalanceThreshold
		cfg.LowBalanceThreshold = &v
	}
	cfg.UpdatedAt = g.now
	if err := g.q.ConfigPut(ctx, req.Scope, cfg); err != nil {
		return Response{}, false, fmt.Errorf("tenant config: %w", err)
	}
	// Changes later in this group follow the new settings.
	g.setWebhookConfig(req.Scope, cfg)
	status, body, err := c.Encode(cfg)
	return Response{Status: status, Body: body}, true, err
}

// Config reads the scope's settings; a scope that never set any has none.
func (s *Service) Config(ctx context.Context, scope store.Scope) (store.TenantConfig, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cfg, err := s.store.ConfigGet(ctx, scope)
	if errors.Is(err, store.ErrNotFound) {
		return store.TenantConfig{}, nil
	}
	return cfg, err
}

// Tenant reads the tenant a key belongs to.
func (s *Service) Tenant(ctx context.Context, id string) (store.Tenant, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := s.store.TenantGet(ctx, id)
	if err != nil {
		return store.Tenant{}, notFound(err, "no tenant %q", id)
	}
	return t, nil
}

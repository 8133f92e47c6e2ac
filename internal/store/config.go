package store

import (
	"context"
	"time"
)

// TenantConfig is a tenant's settings in one environment: where its
// webhooks go and how they are signed, and the balance below which a
// customer's balance counts as low.
type TenantConfig struct {
	WebhookURL          string
	WebhookSecret       []byte // the decoded secret; empty: none, and no delivery
	LowBalanceThreshold *int64 // millicredits; nil: no balance.low events
	UpdatedAt           time.Time
}

// ConfigQ reads and writes tenant settings, part of Q. ConfigPut writes
// inside Transact only.
type ConfigQ interface {
	// ConfigGet returns the scope's settings; ErrNotFound when they were
	// never set.
	ConfigGet(ctx context.Context, s Scope) (TenantConfig, error)
	// ConfigPut replaces the scope's settings.
	ConfigPut(ctx context.Context, s Scope, c TenantConfig) error
}

package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// TenantConfig is an environment's settings (GET /v1/tenants/{id}/config).
// The webhook secret is never answered; WebhookSecretSet says whether one
// is set. LowBalanceThreshold is nil when none is set.
type TenantConfig struct {
	TenantID            string          `json:"tenant_id"`
	Environment         string          `json:"environment"`
	WebhookURL          string          `json:"webhook_url"`
	WebhookSecretSet    bool            `json:"webhook_secret_set"`
	LowBalanceThreshold *int64          `json:"low_balance_threshold"`
	UpdatedAt           time.Time       `json:"updated_at"`
	Raw                 json.RawMessage `json:"-"`
}

// ConfigPatch changes some settings (PATCH /v1/tenants/{id}/config). A nil
// member is left as it is; "" clears the URL or the secret;
// ClearLowBalanceThreshold clears the threshold.
type ConfigPatch struct {
	WriteOptions
	WebhookURL               *string
	WebhookSecret            *string // base64 of 16–64 bytes, "whsec_" prefix allowed
	LowBalanceThreshold      *int64
	ClearLowBalanceThreshold bool
}

// MarshalJSON sends only the members the patch changes.
func (p ConfigPatch) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if p.WebhookURL != nil {
		m["webhook_url"] = *p.WebhookURL
	}
	if p.WebhookSecret != nil {
		m["webhook_secret"] = *p.WebhookSecret
	}
	switch {
	case p.ClearLowBalanceThreshold:
		m["low_balance_threshold"] = nil
	case p.LowBalanceThreshold != nil:
		m["low_balance_threshold"] = *p.LowBalanceThreshold
	}
	return json.Marshal(m)
}

// Config reads the settings of the key's environment of tenantID (the
// key's own tenant; TenantMe answers its id).
func (c *Client) Config(ctx context.Context, tenantID string) (*TenantConfig, error) {
	return one[TenantConfig](ctx, c, call{method: http.MethodGet, path: "/v1/tenants/" + segment(tenantID) + "/config"})
}

// UpdateConfig applies p and answers the settings after it.
func (c *Client) UpdateConfig(ctx context.Context, tenantID string, p ConfigPatch) (*TenantConfig, error) {
	k := call{method: http.MethodPatch, path: "/v1/tenants/" + segment(tenantID) + "/config", body: p, key: keyOf(p.WriteOptions)}
	return one[TenantConfig](ctx, c, k)
}

// WebhookEvent is one event of the delivery log, with its attempts.
// NextAttemptAt is set while it is pending, DeliveredAt once delivered.
type WebhookEvent struct {
	ID            string           `json:"id"`
	Type          string           `json:"type"`
	CustomerID    string           `json:"customer_id"`
	Status        string           `json:"status"` // pending, delivered or failed
	AttemptCount  int              `json:"attempt_count"`
	NextAttemptAt *time.Time       `json:"next_attempt_at"`
	DeliveredAt   *time.Time       `json:"delivered_at"`
	CreatedAt     time.Time        `json:"created_at"`
	Payload       json.RawMessage  `json:"payload"` // the body sent
	Attempts      []WebhookAttempt `json:"attempts"`
	Raw           json.RawMessage  `json:"-"`
}

// WebhookAttempt is one delivery attempt; StatusCode is nil without an
// answer.
type WebhookAttempt struct {
	At         time.Time `json:"at"`
	StatusCode *int      `json:"status_code"`
	Error      string    `json:"error"`
	DurationMS int64     `json:"duration_ms"`
}

// WebhookEventOptions filters the delivery log.
type WebhookEventOptions struct {
	Status string // pending, delivered or failed
	Type   string
	Limit  int
	Cursor string
}

// WebhookHealth is the delivery state of the key's environment.
type WebhookHealth struct {
	Pending                 int64           `json:"pending"`
	Failed                  int64           `json:"failed"`
	DeliveredLast24h        int64           `json:"delivered_last_24h"`
	OldestPendingEventID    string          `json:"oldest_pending_event_id"`
	OldestPendingAgeSeconds *int64          `json:"oldest_pending_age_seconds"`
	NextAttemptAt           *time.Time      `json:"next_attempt_at"`
	WebhookConfigured       bool            `json:"webhook_configured"`
	Raw                     json.RawMessage `json:"-"`
}

// WebhookEvents reads one page of the delivery log, newest first.
func (c *Client) WebhookEvents(ctx context.Context, opts WebhookEventOptions) (*Page[WebhookEvent], error) {
	q := ListOptions{Limit: opts.Limit, Cursor: opts.Cursor}.query()
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	if opts.Type != "" {
		q.Set("type", opts.Type)
	}
	return getPage[WebhookEvent](ctx, c, "/v1/webhooks/events", q)
}

// WebhookEvent reads one event of the delivery log.
func (c *Client) WebhookEvent(ctx context.Context, id string) (*WebhookEvent, error) {
	return one[WebhookEvent](ctx, c, call{method: http.MethodGet, path: "/v1/webhooks/events/" + segment(id)})
}

// Redeliver sends an event again (202): pending again, with a fresh retry
// schedule, in its customer's order.
func (c *Client) Redeliver(ctx context.Context, id string, o WriteOptions) (*WebhookEvent, error) {
	return one[WebhookEvent](ctx, c, c.write("/v1/webhooks/events/"+segment(id)+"/redeliver", o, nil))
}

// WebhookHealth reads the delivery state of the key's environment.
func (c *Client) WebhookHealth(ctx context.Context) (*WebhookHealth, error) {
	return one[WebhookHealth](ctx, c, call{method: http.MethodGet, path: "/v1/webhooks/health"})
}

func (v *TenantConfig) UnmarshalJSON(b []byte) error {
	type plain TenantConfig
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *WebhookEvent) UnmarshalJSON(b []byte) error {
	type plain WebhookEvent
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *WebhookHealth) UnmarshalJSON(b []byte) error {
	type plain WebhookHealth
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

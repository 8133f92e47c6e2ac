package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	json2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// The bounds of a webhook configuration.
const (
	maxURLLen       = 2048
	minSecretBytes  = 16 // Standard Webhooks asks for 24 to 64; shorter keys are guessable
	maxSecretBytes  = 64
	secretPrefix    = "whsec_" // how Standard Webhooks libraries print a secret; accepted, not required
	configNotFound  = "no tenant %q for this key"
	thresholdField  = "low_balance_threshold"
	webhookURLField = "webhook_url"
	secretField     = "webhook_secret"
)

type tenantJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Environment string `json:"environment"`
}

// handleTenantMe answers the key's own tenant and environment.
func (s *Server) handleTenantMe() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sc := scopeOf(r.Context())
		t, err := s.svc.Tenant(r.Context(), sc.TenantID)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, tenantJSON{ID: t.ID, Name: t.Name, Environment: sc.Env})
	}
}

// configJSON is a scope's settings as answered: never the secret itself.
type configJSON struct {
	TenantID            string  `json:"tenant_id"`
	Environment         string  `json:"environment"`
	WebhookURL          *string `json:"webhook_url"`
	WebhookSecretSet    bool    `json:"webhook_secret_set"`
	LowBalanceThreshold *int64  `json:"low_balance_threshold"`
	UpdatedAt           Time    `json:"updated_at"`
}

func configOut(sc store.Scope) func(store.TenantConfig) configJSON {
	return func(c store.TenantConfig) configJSON {
		return configJSON{TenantID: sc.TenantID, Environment: sc.Env, WebhookURL: nullable(c.WebhookURL),
			WebhookSecretSet: len(c.WebhookSecret) > 0, LowBalanceThreshold: c.LowBalanceThreshold, UpdatedAt: Time(c.UpdatedAt)}
	}
}

// ownTenant checks that the path names the key's own tenant: another
// tenant's settings do not exist for this key.
func ownTenant(r *http.Request) (store.Scope, error) {
	sc := scopeOf(r.Context())
	id := r.PathValue("id")
	if err := checkID("id", id); err != nil {
		return store.Scope{}, err
	}
	if id != sc.TenantID {
		return store.Scope{}, credit.Errorf(credit.ENotFound, configNotFound, id)
	}
	return sc, nil
}

func (s *Server) handleConfigGet() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sc, err := ownTenant(r)
		if err != nil {
			return err
		}
		cfg, err := s.svc.Config(r.Context(), sc)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, configOut(sc)(cfg))
	}
}

type configRequest struct {
	// Raw values: a member left out, null and a string are three answers.
	WebhookURL          jsontext.Value `json:"webhook_url"`
	WebhookSecret       jsontext.Value `json:"webhook_secret"`
	LowBalanceThreshold jsontext.Value `json:"low_balance_threshold"`
}

// clearableString reads a member that clears with "" or null: nil when it
// was left out; ok false when it is neither a string nor null.
func clearableString(v jsontext.Value) (s *string, ok bool) {
	switch {
	case len(v) == 0:
		return nil, true
	case v.Kind() == 'n':
		return new(""), true
	case v.Kind() == '"':
		var out string
		if err := json2.Unmarshal(v, &out); err != nil {
			return nil, false
		}
		return &out, true
	}
	return nil, false
}

// handleConfigPatch changes the settings the body names, and leaves the
// others: webhook_url and webhook_secret clear with "" (or null),
// low_balance_threshold with null.
func (s *Server) handleConfigPatch() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sc, err := ownTenant(r)
		if err != nil {
			return err
		}
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req configRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			var p ledger.ConfigPatch
			var c checks
			webhookURL, okURL := clearableString(req.WebhookURL)
			webhookSecret, okSecret := clearableString(req.WebhookSecret)
			if !okURL {
				c.add(webhookURLField, "must be a string, or null to clear it")
			}
			if !okSecret {
				c.add(secretField, "must be a string, or null to clear it")
			}
			if webhookURL != nil {
				u := *webhookURL
				if u != "" {
					if msg := checkWebhookURL(u); msg != "" {
						c.add(webhookURLField, msg)
					}
				}
				p.WebhookURL = &u
			}
			if webhookSecret != nil {
				secret, msg := decodeSecret(*webhookSecret)
				if msg != "" {
					c.add(secretField, msg)
				}
				p.WebhookSecret = &secret
			}
			switch v := req.LowBalanceThreshold; {
			case len(v) == 0:
			case v.Kind() == 'n':
				p.ClearThreshold = true
			default:
				var n int64
				if err := json2.Unmarshal(v, &n); err != nil || n < 0 {
					c.add(thresholdField, "must be an integer of millicredits ≥ 0, or null")
				}
				p.LowBalanceThreshold = &n
			}
			if err := c.err(); err != nil {
				return nil, err
			}
			return ledger.UpdateConfig{Patch: p, Encode: encodeAs(http.StatusOK, configOut(sc))}, nil
		}, nil)
	}
}

// checkWebhookURL says what is wrong with a webhook URL, or "". Loopback
// and private addresses are allowed: a self-hosted app lives next door.
func checkWebhookURL(s string) string {
	if len(s) > maxURLLen || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return "must be a URL of at most 2048 characters without control characters"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http or https URL"
	}
	return ""
}

// decodeSecret decodes a webhook secret: base64, with or without the
// "whsec_" prefix Standard Webhooks prints. "" clears it.
func decodeSecret(s string) ([]byte, string) {
	if s == "" {
		return nil, ""
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
	if err != nil {
		return nil, "must be base64 (optionally prefixed whsec_)"
	}
	if len(b) < minSecretBytes || len(b) > maxSecretBytes {
		return nil, "must decode to 16 to 64 bytes"
	}
	return b, ""
}

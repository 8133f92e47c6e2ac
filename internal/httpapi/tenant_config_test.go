package httpapi_test

import (
	b64 "encoding/base64"
	"net/http"
	"testing"
)

type configResp struct {
	TenantID            string  `json:"tenant_id"`
	Environment         string  `json:"environment"`
	WebhookURL          *string `json:"webhook_url"`
	WebhookSecretSet    bool    `json:"webhook_secret_set"`
	LowBalanceThreshold *int64  `json:"low_balance_threshold"`
	WebhookSecret       *string `json:"webhook_secret"` // must never be answered
}

func TestTenantConfig(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		var me struct{ ID, Name, Environment string }
		ts.get(t, "/v1/tenants/me").want(t, http.StatusOK).decode(t, &me)
		if me.ID == "" || me.Name != "Acme" || me.Environment != "test" {
			t.Fatalf("tenants/me = %+v, want Acme in test", me)
		}
		path := "/v1/tenants/" + me.ID + "/config"

		var c configResp
		ts.get(t, path).want(t, http.StatusOK).decode(t, &c)
		if c.WebhookURL != nil || c.WebhookSecretSet || c.LowBalanceThreshold != nil || c.Environment != "test" {
			t.Errorf("config never set = %+v, want nothing", c)
		}
		secret := "whsec_" + b64.StdEncoding.EncodeToString([]byte("a secret of 24 bytes....."))
		patch := func(body any) resp { return ts.do(t, req{method: http.MethodPatch, path: path, body: body}) }
		patch(obj{"webhook_url": "http://127.0.0.1:9999/hooks", "webhook_secret": secret, "low_balance_threshold": 5000}).
			want(t, http.StatusOK).decode(t, &c)
		if c.WebhookURL == nil || *c.WebhookURL != "http://127.0.0.1:9999/hooks" || !c.WebhookSecretSet || c.WebhookSecret != nil ||
			c.LowBalanceThreshold == nil || *c.LowBalanceThreshold != 5000 {
			t.Errorf("config after PATCH = %+v", c)
		}
		// A patch changes only what it names; null clears the threshold.
		patch(obj{"low_balance_threshold": nil}).want(t, http.StatusOK).decode(t, &c)
		if c.LowBalanceThreshold != nil || !c.WebhookSecretSet || c.WebhookURL == nil {
			t.Errorf("config after clearing the threshold = %+v", c)
		}
		ts.get(t, path).want(t, http.StatusOK).decode(t, &c)
		if !c.WebhookSecretSet || c.LowBalanceThreshold != nil {
			t.Errorf("config read back = %+v", c)
		}

		// null clears the URL and the secret too.
		patch(obj{"webhook_url": nil, "webhook_secret": nil}).want(t, http.StatusOK).decode(t, &c)
		if c.WebhookURL != nil || c.WebhookSecretSet {
			t.Errorf("config after clearing URL and secret with null = %+v", c)
		}

		for _, tc := range []struct {
			body  obj
			field string
		}{
			{obj{"webhook_url": 7}, "webhook_url"},
			{obj{"webhook_secret": true}, "webhook_secret"},
			{obj{"webhook_url": "ftp://example.test/"}, "webhook_url"},
			{obj{"webhook_url": "not a url"}, "webhook_url"},
			{obj{"webhook_secret": "!!!"}, "webhook_secret"},
			{obj{"webhook_secret": b64.StdEncoding.EncodeToString([]byte("short"))}, "webhook_secret"},
			{obj{"low_balance_threshold": -1}, "low_balance_threshold"},
			{obj{"low_balance_threshold": 1.5}, "low_balance_threshold"},
		} {
			patch(tc.body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
		}
		// Another tenant's settings do not exist for this key.
		other, _ := ts.addTenant(t, "Other")
		var them struct{ ID string }
		ts.do(t, req{method: http.MethodGet, path: "/v1/tenants/me", apiKey: other}).want(t, http.StatusOK).decode(t, &them)
		ts.get(t, "/v1/tenants/"+them.ID+"/config").wantProblem(t, http.StatusNotFound, "not-found")
		patch2 := ts.do(t, req{method: http.MethodPatch, path: "/v1/tenants/" + them.ID + "/config", body: obj{"webhook_url": "http://x.test/"}})
		patch2.wantProblem(t, http.StatusNotFound, "not-found")
		// The live environment has settings of its own.
		ts.do(t, req{method: http.MethodGet, path: path, apiKey: ts.liveKey}).want(t, http.StatusOK).decode(t, &c)
		if c.Environment != "live" || c.WebhookSecretSet {
			t.Errorf("live config = %+v, want its own, empty", c)
		}
	})
}

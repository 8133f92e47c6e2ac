package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/creditd/creditd/internal/apikey"
	"github.com/creditd/creditd/internal/httpapi"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/sqlite"
)

// fuzzRoutes are the endpoints FuzzRequest picks from; {id} takes the
// fuzzed path id.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/customers"},
	{"POST", "/v1/billable-metrics"},
	{"POST", "/v1/metering-rules"},
	{"POST", "/v1/topup/grant"},
	{"POST", "/v1/customers/{id}/credits/grant"},
	{"POST", "/v1/customer-by-external-id/{id}/credits/grant"},
	{"POST", "/v1/usage"},
	{"POST", "/v1/usage/batch"},
	{"GET", "/v1/customers"},
	{"GET", "/v1/customers/{id}"},
	{"GET", "/v1/customer-by-external-id/{id}"},
	{"GET", "/v1/customers/{id}/credits"},
	{"GET", "/v1/customer-by-external-id/{id}/ledger"},
	{"GET", "/v1/customers/{id}/entitlements/m"},
	{"GET", "/v1/customer-by-external-id/u/entitlements/{id}"},
	{"GET", "/v1/billable-metrics/{id}"},
	{"GET", "/v1/billable-metrics"},
	{"GET", "/v1/metering-rules"},
}

// route returns the index in fuzzRoutes of method and path.
func route(method, path string) uint8 {
	for i, r := range fuzzRoutes {
		if r.method == method && r.path == path {
			return uint8(i)
		}
	}
	panic("no fuzz route " + method + " " + path)
}

// FuzzRequest sends arbitrary requests through the real Server over a SQLite
// store: any route, path id, query, Idempotency-Key and body. No request may
// panic or answer a 5xx; every error is a problem of a documented type; and
// whatever is accepted holds only ids and keys the API's rules allow, so
// that what SQLite took PostgreSQL would have taken too.
//
//	go test -run '^$' -fuzz '^FuzzRequest$' -fuzztime 20s ./internal/httpapi
func FuzzRequest(f *testing.F) {
	h, key := newDirectServer(f)
	codes := httpapi.ProblemCodes()
	seed := func(method, path, id, query, idem, body string) {
		f.Add(route(method, path), id, query, idem, []byte(body))
	}
	usage := `{"external_customer_id":"u","billable_metric_key":"m","units":1}`
	seed("POST", "/v1/customers", "", "", "c-1", `{"external_id":"c1","display_name":"Ada","metadata":{"plan":"pro"}}`)
	seed("POST", "/v1/customers", "", "", "c-2", `{"external_id":"a\u0000b"}`)
	seed("POST", "/v1/customers", "", "", "c-3", `{"external_id":"\ud800","External_ID":"x"}`)
	seed("POST", "/v1/customers", "", "", "c-4", `{"external_id":"c4","metadata":{"a":1,"a":2}}`)
	seed("POST", "/v1/customers", "", "", "a\x00b", `{"external_id":"c5"}`)
	seed("POST", "/v1/customers", "", "", "\xff", `{"external_id":"c6"}`)
	seed("POST", "/v1/billable-metrics", "", "", "m-1", `{"key":"m2","name":"n","description":"d\u0000"}`)
	seed("POST", "/v1/metering-rules", "", "", "r-1", `{"billable_metric_key":"m","cost_type":"tiered","tier_mode":"graduated","tiers":[{"up_to":10,"unit_cost":2},{"up_to":null,"unit_cost":1}]}`)
	seed("POST", "/v1/metering-rules", "", "", "r-2", `{"billable_metric_key":"m","cost_type":"tiered","tier_mode":"volume","tiers":[`+strings.Repeat(`{"up_to":1,"unit_cost":1},`, 100)+`{"up_to":null,"unit_cost":1}]}`)
	seed("POST", "/v1/topup/grant", "", "", "g-1", `{"external_customer_id":"u","credits":1000,"priority":5,"reason":"r","currency":"mc","metadata":{}}`)
	seed("POST", "/v1/topup/grant", "", "", "g-2", `{"external_customer_id":"u","credits":1,"credits":1000}`)
	seed("POST", "/v1/topup/grant", "", "", "g-3", `{"external_customer_id":"u","credits":1.5,"reason":"\u0000"}`)
	seed("POST", "/v1/customers/{id}/credits/grant", "u", "", "g-4", `{"credits":10,"expires_at":"2030-01-01T00:00:00Z"}`)
	seed("POST", "/v1/customer-by-external-id/{id}/credits/grant", strings.Repeat("x", 300), "", "g-5", `{"credits":10}`)
	seed("POST", "/v1/customer-by-external-id/{id}/credits/grant", "n\x00", "", "g-6", `{"credits":10}`)
	seed("POST", "/v1/usage", "", "", "u-1", usage)
	seed("POST", "/v1/usage", "", "", "u-2", `{"external_customer_id":"u","billable_metric_key":"m\u0000","units":1}`)
	seed("POST", "/v1/usage/batch", "", "", "b-1", `{"events":[`+strings.Replace(usage, "{", `{"idempotency_key":"e1",`, 1)+`,{"idempotency_key":"e\u0000"},5,{"idempotency_key":"e2","units":1,"units":2}]}`)
	seed("POST", "/v1/usage/batch", "", "", "b-2", `{"events":[],"events":null}`)
	seed("GET", "/v1/customers", "", "cursor=AA&limit=5", "", "")
	seed("GET", "/v1/customers/{id}", "\xff", "", "", "")
	seed("GET", "/v1/customer-by-external-id/{id}/ledger", "u", "type=usage&cursor=MQ", "", "")
	seed("GET", "/v1/customer-by-external-id/u/entitlements/{id}", "m", "units=3", "", "")

	f.Fuzz(func(t *testing.T, ri uint8, id, query, idem string, body []byte) {
		rt := fuzzRoutes[int(ri)%len(fuzzRoutes)]
		u, err := url.Parse(strings.ReplaceAll(rt.path, "{id}", url.PathEscape(id)))
		if err != nil {
			t.Skip()
		}
		u.RawQuery = query
		r := httptest.NewRequest(rt.method, "/", bytes.NewReader(body))
		r.URL, r.RequestURI = u, u.RequestURI()
		r.Header.Set("X-API-Key", key)
		r.Header.Set("Content-Type", "application/json")
		if idem != "" {
			r.Header["Idempotency-Key"] = []string{idem} // as sent, unchecked
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		desc := rt.method + " " + u.String()
		switch {
		case w.Code >= 500:
			t.Fatalf("%s = %d: %s", desc, w.Code, w.Body)
		case w.Code >= 400:
			var p struct{ Code string }
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || !codes[p.Code] {
				t.Fatalf("%s = %d with problem code %q, want a documented one: %s", desc, w.Code, p.Code, w.Body)
			}
		case w.Code >= 200 && w.Code < 300:
			if strings.Contains(rt.path, "{id}") && !validID(id) {
				t.Errorf("%s = %d: accepted path id %q", desc, w.Code, id)
			}
			if rt.method == "POST" && !validID(idem) {
				t.Errorf("%s = %d: accepted Idempotency-Key %q", desc, w.Code, idem)
			}
			// A replay answers the first body and does not read this one.
			if rt.method == "POST" && w.Header().Get("X-Idempotent-Replayed") == "" {
				checkAccepted(t, desc, rt.path, body, w.Body.Bytes())
			}
		}
	})
}

// TestIdempotencyKeyNUL: what Go's client refuses to send, a NUL or a DEL in
// the header, is a 400 too.
func TestIdempotencyKeyNUL(t *testing.T) {
	h, key := newDirectServer(t)
	for _, idem := range []string{"a\x00b", "\x00", "a\x7fb", "a\rb"} {
		r := httptest.NewRequest("POST", "/v1/customers", strings.NewReader(`{"external_id":"a"}`))
		r.Header.Set("X-API-Key", key)
		r.Header["Idempotency-Key"] = []string{idem}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var p struct {
			Code   string
			Errors []struct{ Field string }
		}
		json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != http.StatusBadRequest || p.Code != "invalid-request" || len(p.Errors) != 1 || p.Errors[0].Field != "Idempotency-Key" {
			t.Errorf("POST with Idempotency-Key %q = %d %s, want 400 invalid-request naming Idempotency-Key", idem, w.Code, w.Body)
		}
	}
}

// readFields are the string members each POST reads, ids apart from free
// text: checkAccepted checks those (others are ignored, unread).
var readFields = map[string]struct{ ids, text []string }{
	"/v1/customers":                                  {[]string{"external_id"}, []string{"display_name"}},
	"/v1/billable-metrics":                           {[]string{"key"}, []string{"name", "description"}},
	"/v1/metering-rules":                             {[]string{"billable_metric_key"}, nil},
	"/v1/topup/grant":                                {[]string{"customer_id", "external_customer_id"}, grantText},
	"/v1/customers/{id}/credits/grant":               {nil, grantText},
	"/v1/customer-by-external-id/{id}/credits/grant": {nil, grantText},
	"/v1/usage":                                      {[]string{"customer_id", "external_customer_id", "billable_metric_key"}, nil},
	"/v1/usage/batch":                                {nil, nil},
	"batch event":                                    {[]string{"customer_id", "external_customer_id", "billable_metric_key", "idempotency_key"}, nil},
}

var grantText = []string{"reason", "source", "currency", "external_payment_id"}

// checkAccepted fails unless every id that an accepted body of route (and
// each accepted, not duplicate, event of a batch) holds keeps the rules of
// ids, and its free text holds no NUL.
func checkAccepted(t *testing.T, desc, route string, body, answer []byte) {
	t.Helper()
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return // not JSON that encoding/json reads alike; decode judged it
	}
	check := func(route string, o map[string]any) {
		for _, f := range readFields[route].ids {
			if s, ok := o[f].(string); ok && !validID(s) {
				t.Errorf("%s accepted %s %q", desc, f, s)
			}
		}
		for _, f := range readFields[route].text {
			if s, ok := o[f].(string); ok && strings.ContainsRune(s, 0) {
				t.Errorf("%s accepted %s %q with a NUL", desc, f, s)
			}
		}
	}
	check(route, m)
	events, _ := m["events"].([]any)
	var res struct {
		Results []struct {
			Status    string
			Duplicate bool
		}
	}
	json.Unmarshal(answer, &res)
	for i, r := range res.Results {
		if i >= len(events) || r.Status != "accepted" || r.Duplicate {
			continue
		}
		if e, ok := events[i].(map[string]any); ok {
			check("batch event", e)
		}
	}
}

// validID is the rule of ids and keys, written again here as the oracle.
func validID(s string) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= 256 && !strings.ContainsFunc(s, unicode.IsControl)
}

// newDirectServer returns a Server over a fresh SQLite store, to be called
// without a network so that any bytes reach it, with the test API key of its
// tenant. The tenant has a priced metric m and a customer u with credits.
func newDirectServer(tb testing.TB) (http.Handler, string) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(tb.TempDir(), "creditd.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	tenant := store.Tenant{ID: ids.UUID(), Name: "Fuzz", CreatedAt: epoch}
	key, err := apikey.New(apikey.Test)
	if err != nil {
		tb.Fatalf("apikey.New: %v", err)
	}
	err = st.Transact(ctx, func(q store.Q) error {
		rec, err := apikey.Record(key, tenant.ID, epoch)
		if err != nil {
			return err
		}
		if err := q.TenantCreate(ctx, tenant); err != nil {
			return err
		}
		return q.APIKeyCreate(ctx, rec)
	})
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	svc := ledger.New(st, func() time.Time { return epoch })
	tb.Cleanup(svc.Close)
	h := httpapi.NewServer(svc, st, slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
	for i, body := range []string{
		`{"key":"m"}`,
		`{"billable_metric_key":"m","cost_type":"per_unit","unit_cost":1}`,
		`{"external_customer_id":"u","credits":1000000}`,
	} {
		path := []string{"/v1/billable-metrics", "/v1/metering-rules", "/v1/topup/grant"}[i]
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("X-API-Key", key)
		r.Header.Set("Idempotency-Key", "setup-"+path)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 300 {
			tb.Fatalf("setup POST %s = %d: %s", path, w.Code, w.Body)
		}
	}
	return h, key
}

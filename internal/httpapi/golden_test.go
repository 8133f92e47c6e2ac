package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	uuidPattern   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	idPattern     = regexp.MustCompile(`\b(blk|evt|txn|bm|mr|res|pln|pur|trx|whevt)_[0-9a-z]{26}\b`)
	cursorPattern = regexp.MustCompile(`"next_cursor": "[^"]*"`)
)

// normalize renders a response for its golden file: status, content type,
// replay header, and the body indented, in the server's field order, with
// ids numbered by first appearance (the same id keeps its number) and
// cursors elided. Times need no normalizing: the clock is fake.
func normalize(t *testing.T, r resp) string {
	t.Helper()
	var body bytes.Buffer
	if err := json.Indent(&body, r.body, "", "  "); err != nil {
		t.Fatalf("%s: body is not JSON: %v: %s", r.desc, err, r.body)
	}
	seen := map[string]string{}
	counts := map[string]int{}
	name := func(kind, id string) string {
		if n, ok := seen[id]; ok {
			return n
		}
		counts[kind]++
		seen[id] = fmt.Sprintf("<%s-%d>", kind, counts[kind])
		return seen[id]
	}
	s := uuidPattern.ReplaceAllStringFunc(body.String(), func(id string) string { return name("uuid", id) })
	s = idPattern.ReplaceAllStringFunc(s, func(id string) string { return name(id[:strings.IndexByte(id, '_')], id) })
	s = cursorPattern.ReplaceAllString(s, `"next_cursor": "<cursor>"`)
	head := fmt.Sprintf("%d %s\n", r.status, r.header.Get("Content-Type"))
	if v := r.header.Get("X-Idempotent-Replayed"); v != "" {
		head += "X-Idempotent-Replayed: " + v + "\n"
	}
	if v := r.header.Get("Allow"); v != "" {
		head += "Allow: " + v + "\n"
	}
	return head + s
}

// golden compares r with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name string, r resp) {
	t.Helper()
	got := normalize(t, r)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (run go test ./internal/httpapi -run TestGolden -update to create it)", r.desc, err)
	}
	if got != string(want) {
		t.Errorf("%s: response differs from %s (if intended, rerun with -update)\n--- got\n%s\n--- want\n%s", r.desc, path, got, want)
	}
}

// TestGolden pins the wire shape of every response: one quickstart-like
// scenario, each answer compared with its golden file.
func TestGolden(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		g := func(name string, r resp) { t.Helper(); golden(t, name, r) }

		g("customer_create", ts.post(t, "/v1/customers", obj{"external_id": "user_1", "display_name": "Ada", "metadata": obj{"plan": "free"}}))
		g("customer_get", ts.get(t, ext("user_1", "")))
		g("customer_list", ts.get(t, "/v1/customers?limit=1"))
		g("customer_exists", ts.post(t, "/v1/customers", obj{"external_id": "user_1"}))

		g("metric_create", ts.post(t, "/v1/billable-metrics", obj{"key": "tokens", "name": "Tokens", "description": "LLM tokens"}))
		g("metric_list", ts.get(t, "/v1/billable-metrics"))
		g("metric_exists", ts.post(t, "/v1/billable-metrics", obj{"key": "tokens"}))
		ts.post(t, "/v1/billable-metrics", obj{"key": "images"}).want(t, http.StatusCreated)
		ts.post(t, "/v1/billable-metrics", obj{"key": "unpriced"}).want(t, http.StatusCreated)
		g("rule_flat", ts.post(t, "/v1/metering-rules", obj{"billable_metric_key": "images", "cost_type": "flat", "flat_cost": 40}))
		g("rule_per_unit", ts.post(t, "/v1/metering-rules", obj{"billable_metric_key": "tokens", "cost_type": "per_unit", "unit_cost": 1, "unit_size": 1000}))
		g("rule_tiered", ts.post(t, "/v1/metering-rules", obj{"billable_metric_key": "images", "cost_type": "tiered", "tier_mode": "graduated",
			"tiers": []obj{{"up_to": 10, "unit_cost": 50}, {"up_to": nil, "unit_cost": 30, "flat_cost": 100}}}))
		g("rule_list", ts.get(t, "/v1/metering-rules"))

		g("grant_topup", ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "user_1", "credits": 10000, "price_paid": 999, "currency": "USD",
			"external_payment_id": "pi_123", "reason": "pack", "metadata": obj{"order": "o1"}}))
		g("grant_plan", ts.post(t, ext("user_1", "/credits/grant"), obj{"credits": 5000, "priority": 10, "expires_at": "2026-05-13T16:00:00+02:00", "source": "plan"}))

		g("usage", ts.postKey(t, "/v1/usage", "evt-1", obj{"external_customer_id": "user_1", "billable_metric_key": "tokens", "units": 2500}))
		g("usage_replay", ts.postKey(t, "/v1/usage", "evt-1", obj{"external_customer_id": "user_1", "billable_metric_key": "tokens", "units": 2500}))
		ts.clock.Advance(time.Minute)
		g("usage_batch", ts.postKey(t, "/v1/usage/batch", "batch-1", obj{"events": []any{
			obj{"idempotency_key": "b-1", "external_customer_id": "user_1", "billable_metric_key": "images", "units": 12},
			obj{"idempotency_key": "evt-1", "external_customer_id": "user_1", "billable_metric_key": "tokens", "units": 2500},
			obj{"idempotency_key": "b-3", "external_customer_id": "user_1", "billable_metric_key": "images", "units": 1000},
			obj{"external_customer_id": "user_1"},
		}}))
		g("usage_batch_replay", ts.postKey(t, "/v1/usage/batch", "batch-1", obj{"events": []any{}}))

		g("balance", ts.get(t, ext("user_1", "/credits")))
		g("balance_blocks", ts.get(t, ext("user_1", "/credits?include_blocks=true")))
		g("ledger", ts.get(t, ext("user_1", "/ledger")))
		g("ledger_page", ts.get(t, ext("user_1", "/ledger?limit=2&type=usage")))
		g("entitlement_allowed", ts.get(t, ext("user_1", "/entitlements/images?units=3")))
		g("entitlement_denied", ts.get(t, ext("user_1", "/entitlements/tokens?units=100000000")))

		g("problem_invalid", ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "user_1", "credits": 0, "priority": 101, "currency": "TOO-LONG-CURRENCY"}))
		g("problem_invalid_type", ts.post(t, "/v1/usage", obj{"external_customer_id": "user_1", "billable_metric_key": "tokens", "units": 1.5}))
		g("problem_insufficient", ts.post(t, "/v1/usage", obj{"external_customer_id": "user_1", "billable_metric_key": "tokens", "units": 100000000}))
		g("problem_not_found", ts.get(t, ext("nobody", "/credits")))
		g("problem_no_rule", ts.post(t, "/v1/usage", obj{"external_customer_id": "user_1", "billable_metric_key": "unpriced", "units": 1}))
		g("problem_key_reused", ts.postKey(t, "/v1/topup/grant", "evt-1", obj{"external_customer_id": "user_1", "credits": 1}))
		g("problem_key_required", ts.do(t, req{method: "POST", path: "/v1/usage", body: obj{}, idem: none}))
		g("problem_unauthorized", ts.do(t, req{method: "GET", path: "/v1/customers", apiKey: none}))
		g("problem_method", ts.do(t, req{method: "DELETE", path: "/v1/usage"}))
		g("problem_route", ts.get(t, "/v1/nope"))
		g("problem_media_type", ts.do(t, req{method: "POST", path: "/v1/usage", body: "a=b", contentType: "application/x-www-form-urlencoded"}))
		g("problem_too_large", ts.post(t, "/v1/customers", `{"display_name":"`+strings.Repeat("x", 1<<20)+`"}`))
	})
}

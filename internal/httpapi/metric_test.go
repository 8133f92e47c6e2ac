package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestMetricCreate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		m := ts.post(t, "/v1/billable-metrics", obj{"key": "chat.message", "description": "one message"}).want(t, http.StatusCreated).object(t)
		if id, _ := m["id"].(string); !strings.HasPrefix(id, "bm_") || m["key"] != "chat.message" || m["name"] != "chat.message" ||
			m["description"] != "one message" || m["created_at"] != "2026-04-13T14:00:00.000Z" {
			t.Errorf("POST /v1/billable-metrics = %v, want id bm_…, key and name chat.message, the description, created_at", m)
		}
		got := ts.get(t, "/v1/billable-metrics/chat.message").want(t, http.StatusOK).object(t)
		if got["id"] != m["id"] {
			t.Errorf("GET /v1/billable-metrics/chat.message id = %v, want %v", got["id"], m["id"])
		}
		var list listResp[map[string]any]
		ts.get(t, "/v1/billable-metrics").want(t, http.StatusOK).decode(t, &list)
		if len(list.Data) != 1 || list.Data[0]["id"] != m["id"] {
			t.Errorf("GET /v1/billable-metrics = %v, want the one metric", list.Data)
		}
		ts.get(t, "/v1/billable-metrics/nope").wantProblem(t, http.StatusNotFound, "not-found")
		ts.get(t, "/v1/billable-metrics?limit=0").wantProblem(t, http.StatusBadRequest, "invalid-request", "limit")
		ts.get(t, "/v1/metering-rules?limit=501").wantProblem(t, http.StatusBadRequest, "invalid-request", "limit")
	})
}

func TestMetricCreateInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		for _, tc := range []struct {
			name  string
			body  any
			field string
		}{
			{"missing key", obj{"name": "x"}, "key"},
			{"empty key", obj{"key": ""}, "key"},
			{"key number", obj{"key": 5}, "key"},
			{"key with a space", obj{"key": "a b"}, "key"},
			{"key with a slash", obj{"key": "a/b"}, "key"},
			{"key too long", obj{"key": strings.Repeat("k", 129)}, "key"},
			{"name number", obj{"key": "k", "name": 1}, "name"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				ts.post(t, "/v1/billable-metrics", tc.body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
				snap.unchanged(t, "POST /v1/billable-metrics "+tc.name)
			})
		}
	})
}

func TestMetricExists(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		m := ts.post(t, "/v1/billable-metrics", obj{"key": "tokens"}).want(t, http.StatusCreated).object(t)
		snap := ts.snapshot(t)
		r := ts.post(t, "/v1/billable-metrics", obj{"key": "tokens", "name": "again"})
		r.wantProblem(t, http.StatusConflict, "metric-exists")
		if p := r.object(t); p["metric_id"] != m["id"] || p["billable_metric_key"] != "tokens" {
			t.Errorf("POST /v1/billable-metrics (exists) = %s, want metric_id %v and billable_metric_key tokens", r.body, m["id"])
		}
		snap.unchanged(t, "POST /v1/billable-metrics with a taken key")
	})
}

func TestRuleCreate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", nil)
		for _, tc := range []struct {
			name string
			rule obj
			echo map[string]string // field → its JSON, as answered
		}{
			{"flat", obj{"cost_type": "flat", "flat_cost": 5}, map[string]string{"flat_cost": "5"}},
			{"per_unit", obj{"cost_type": "per_unit", "unit_cost": 2}, map[string]string{"unit_cost": "2", "unit_size": "1"}},
			{"per_unit sized", obj{"cost_type": "per_unit", "unit_cost": 1, "unit_size": 1000}, map[string]string{"unit_cost": "1", "unit_size": "1000"}},
			{"tiered", obj{"cost_type": "tiered", "tier_mode": "volume", "tiers": []obj{{"up_to": 10, "unit_cost": 2}, {"up_to": nil, "unit_cost": 1, "flat_cost": 3}}},
				map[string]string{"tier_mode": `"volume"`, "tiers": `[{"up_to":10,"unit_cost":2,"flat_cost":0},{"up_to":null,"unit_cost":1,"flat_cost":3}]`}},
		} {
			body := obj{"billable_metric_key": "m"}
			for k, v := range tc.rule {
				body[k] = v
			}
			r := ts.post(t, "/v1/metering-rules", body).want(t, http.StatusCreated)
			got := map[string]any{}
			r.decode(t, &got)
			if id, _ := got["id"].(string); !strings.HasPrefix(id, "mr_") || got["billable_metric_key"] != "m" || got["cost_type"] != tc.rule["cost_type"] || got["active"] != true {
				t.Errorf("POST /v1/metering-rules %s = %s, want id mr_…, billable_metric_key m, its cost_type, active", tc.name, r.body)
			}
			for field, want := range tc.echo {
				var w any
				if err := json.Unmarshal([]byte(want), &w); err != nil {
					t.Fatal(err)
				}
				if g := jsonOf(t, got[field]); g != jsonOf(t, w) {
					t.Errorf("POST /v1/metering-rules %s %s = %s, want %s", tc.name, field, g, want)
				}
			}
		}
	})
}

func TestRuleCreateInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", nil)
		tiers := func(ts ...obj) []obj { return ts }
		for _, tc := range []struct {
			name   string
			body   obj
			status int
			field  string
		}{
			{"missing metric key", obj{"cost_type": "flat", "flat_cost": 1}, 400, "billable_metric_key"},
			{"missing cost_type", obj{"billable_metric_key": "m"}, 400, "cost_type"},
			{"unknown cost_type", obj{"billable_metric_key": "m", "cost_type": "free"}, 400, "cost_type"},
			{"flat without flat_cost", obj{"billable_metric_key": "m", "cost_type": "flat"}, 400, "flat_cost"},
			{"negative flat_cost", obj{"billable_metric_key": "m", "cost_type": "flat", "flat_cost": -1}, 400, "flat_cost"},
			{"fractional flat_cost", obj{"billable_metric_key": "m", "cost_type": "flat", "flat_cost": 1.5}, 400, "flat_cost"},
			{"string flat_cost", obj{"billable_metric_key": "m", "cost_type": "flat", "flat_cost": "1"}, 400, "flat_cost"},
			{"overflowing flat_cost", obj{"billable_metric_key": "m", "cost_type": "flat", "flat_cost": json9223372036854775808}, 400, "flat_cost"},
			{"per_unit without unit_cost", obj{"billable_metric_key": "m", "cost_type": "per_unit"}, 400, "unit_cost"},
			{"negative unit_cost", obj{"billable_metric_key": "m", "cost_type": "per_unit", "unit_cost": -2}, 400, "unit_cost"},
			{"unit_size 0", obj{"billable_metric_key": "m", "cost_type": "per_unit", "unit_cost": 1, "unit_size": 0}, 400, "unit_size"},
			{"unit_size -1", obj{"billable_metric_key": "m", "cost_type": "per_unit", "unit_cost": 1, "unit_size": -1}, 400, "unit_size"},
			{"tiered without tier_mode", obj{"billable_metric_key": "m", "cost_type": "tiered", "tiers": tiers(obj{"up_to": nil, "unit_cost": 1})}, 400, "tier_mode"},
			{"tiered without tiers", obj{"billable_metric_key": "m", "cost_type": "tiered", "tier_mode": "graduated"}, 400, "tiers"},
			{"tiers not ascending", obj{"billable_metric_key": "m", "cost_type": "tiered", "tier_mode": "graduated",
				"tiers": tiers(obj{"up_to": 10, "unit_cost": 1}, obj{"up_to": 5, "unit_cost": 1}, obj{"up_to": nil, "unit_cost": 1})}, 400, "tiers[1].up_to"},
			{"last tier bounded", obj{"billable_metric_key": "m", "cost_type": "tiered", "tier_mode": "volume",
				"tiers": tiers(obj{"up_to": 10, "unit_cost": 1})}, 400, "tiers[0].up_to"},
			{"unbounded tier not last", obj{"billable_metric_key": "m", "cost_type": "tiered", "tier_mode": "volume",
				"tiers": tiers(obj{"up_to": nil, "unit_cost": 1}, obj{"up_to": nil, "unit_cost": 1})}, 400, "tiers[0].up_to"},
			{"negative tier cost", obj{"billable_metric_key": "m", "cost_type": "tiered", "tier_mode": "volume",
				"tiers": tiers(obj{"up_to": nil, "unit_cost": -1})}, 400, "tiers[0].unit_cost"},
			{"unknown metric", obj{"billable_metric_key": "nope", "cost_type": "flat", "flat_cost": 1}, 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				r := ts.post(t, "/v1/metering-rules", tc.body)
				if tc.status == 404 {
					r.wantProblem(t, http.StatusNotFound, "not-found")
				} else {
					r.wantProblem(t, tc.status, "invalid-request", tc.field)
				}
				snap.unchanged(t, "POST /v1/metering-rules "+tc.name)
			})
		}
	})
}

// json9223372036854775808 is 2^63, one more than the largest int64.
var json9223372036854775808 = rawJSON("9223372036854775808")

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func TestPricing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.grant(t, "u", 1_000_000, nil)
		tiers := []obj{{"up_to": 10, "unit_cost": 2}, {"up_to": 20, "unit_cost": 1, "flat_cost": 5}, {"up_to": nil, "unit_cost": 0, "flat_cost": 100}}
		for _, tc := range []struct {
			name  string
			rule  obj
			costs map[int64]int64 // units → cost
		}{
			{"flat", obj{"cost_type": "flat", "flat_cost": 5}, map[int64]int64{1: 5, 100: 5}},
			{"flat free", obj{"cost_type": "flat", "flat_cost": 0}, map[int64]int64{1: 0}},
			{"per_unit", obj{"cost_type": "per_unit", "unit_cost": 3}, map[int64]int64{1: 3, 7: 21}},
			// ⌈units × unit_cost ÷ unit_size⌉: rounding up, never undercharging.
			{"per_unit per 1000", obj{"cost_type": "per_unit", "unit_cost": 1, "unit_size": 1000}, map[int64]int64{1: 1, 999: 1, 1000: 1, 1001: 2, 2500: 3}},
			{"per_unit 7 per 3", obj{"cost_type": "per_unit", "unit_cost": 7, "unit_size": 3}, map[int64]int64{1: 3, 2: 5, 3: 7, 6: 14}},
			// Graduated: each unit at its tier's price, plus each reached tier's flat cost.
			{"graduated", obj{"cost_type": "tiered", "tier_mode": "graduated", "tiers": tiers},
				map[int64]int64{1: 2, 10: 20, 11: 26, 15: 30, 20: 35, 25: 135}},
			// Volume: every unit at the one tier the total falls in.
			{"volume", obj{"cost_type": "tiered", "tier_mode": "volume", "tiers": tiers},
				map[int64]int64{1: 2, 10: 20, 11: 16, 15: 20, 20: 25, 25: 100}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				key := strings.ReplaceAll(tc.name, " ", "_")
				ts.createMetric(t, key, tc.rule)
				for units, want := range tc.costs {
					before := ts.balance(t, "u").Balance
					var e struct {
						EstimatedCost int64 `json:"estimated_cost"`
						Allowed       bool  `json:"allowed"`
					}
					ts.get(t, fmt.Sprintf("%s?units=%d", ext("u", "/entitlements/"+key), units)).want(t, http.StatusOK).decode(t, &e)
					if e.EstimatedCost != want || !e.Allowed {
						t.Errorf("entitlement %s for %d units: estimated_cost = %d, allowed %v; want %d, allowed", key, units, e.EstimatedCost, e.Allowed, want)
					}
					var u usageResp
					ts.usage(t, "u", key, units).want(t, http.StatusOK).decode(t, &u)
					if u.EstimatedCost != want {
						t.Errorf("POST /v1/usage %s %d units: estimated_cost = %d, want %d", key, units, u.EstimatedCost, want)
					}
					if after := ts.balance(t, "u").Balance; before-after != want {
						t.Errorf("POST /v1/usage %s %d units debited %d, want %d", key, units, before-after, want)
					}
				}
			})
		}
		ts.checkLedgerSum(t, "u")
	})
}

func TestRuleSupersedes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.grant(t, "u", 1000, nil)
		ts.createMetric(t, "m", obj{"cost_type": "flat", "flat_cost": 5})
		cost := func() int64 {
			var u usageResp
			ts.usage(t, "u", "m", 1).want(t, http.StatusOK).decode(t, &u)
			return u.EstimatedCost
		}
		if got := cost(); got != 5 {
			t.Fatalf("usage under the first rule estimated_cost = %d, want 5", got)
		}
		ts.createRule(t, "m", obj{"cost_type": "per_unit", "unit_cost": 7})
		if got := cost(); got != 7 {
			t.Errorf("usage under the new rule estimated_cost = %d, want 7", got)
		}
		var rules listResp[map[string]any]
		ts.get(t, "/v1/metering-rules").want(t, http.StatusOK).decode(t, &rules)
		if len(rules.Data) != 2 || rules.Data[0]["active"] != false || rules.Data[1]["active"] != true || rules.Data[1]["cost_type"] != "per_unit" {
			t.Errorf("GET /v1/metering-rules = %v, want the flat rule inactive, then the per_unit rule active", rules.Data)
		}
	})
}

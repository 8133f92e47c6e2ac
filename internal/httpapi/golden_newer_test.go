package httpapi_test

import (
	"net/http"
	"testing"
	"time"
)

// TestGoldenNewer pins the wire shape of the resources added after the
// quickstart's: plans and purchases, reservations, linked transactions,
// tenant settings and the webhook health view, with their problems.
func TestGoldenNewer(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		g := func(name string, r resp) { t.Helper(); golden(t, name, r) }
		ts.post(t, "/v1/billable-metrics", obj{"key": "tokens"}).want(t, http.StatusCreated)
		ts.post(t, "/v1/metering-rules", obj{"billable_metric_key": "tokens", "cost_type": "per_unit", "unit_cost": 1000}).want(t, http.StatusCreated)
		ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "user_1", "credits": 10000}).want(t, http.StatusCreated)

		g("plan_create", ts.post(t, "/v1/plans", obj{"key": "pro", "name": "Pro", "price": 6000, "credits": 50000,
			"duration_seconds": 2592000, "metadata": obj{"tier": "pro"}}))
		g("plan_exists", ts.post(t, "/v1/plans", obj{"key": "pro", "name": "Pro again", "price": 1, "credits": 1}))
		g("plan_list", ts.get(t, "/v1/plans"))
		g("purchase", ts.postKey(t, ext("user_1", "/plan-purchases"), "buy-o1", obj{"plan_key": "pro", "order_id": "o1"}))
		g("purchase_replay", ts.postKey(t, ext("user_1", "/plan-purchases"), "buy-o1", obj{"plan_key": "pro", "order_id": "o1"}))
		g("purchase_duplicate", ts.post(t, ext("user_1", "/plan-purchases"), obj{"plan_key": "pro", "order_id": "o1"}))
		g("purchase_short", ts.post(t, ext("user_1", "/plan-purchases"), obj{"plan_key": "pro", "order_id": "o2"}))
		g("purchase_list", ts.get(t, ext("user_1", "/plan-purchases")))

		ts.clock.Advance(time.Minute)
		g("reserve", ts.post(t, "/v1/reserve", obj{"external_customer_id": "user_1", "billable_metric_key": "tokens",
			"estimated_units": 3, "ttl_seconds": 120, "metadata": obj{"job": "j1"}}))
		var held struct{ ID string }
		ts.post(t, "/v1/reserve", obj{"external_customer_id": "user_1", "billable_metric_key": "tokens", "estimated_units": 2}).
			want(t, http.StatusCreated).decode(t, &held)
		g("reserve_short", ts.post(t, "/v1/reserve", obj{"external_customer_id": "user_1", "billable_metric_key": "tokens", "estimated_units": 1000}))
		g("reservation_commit", ts.post(t, "/v1/reserve/"+held.ID+"/commit", obj{"actual_units": 1}))
		g("reservation_not_active", ts.post(t, "/v1/reserve/"+held.ID+"/release", nil))
		g("reservation_get", ts.get(t, "/v1/reserve/"+held.ID))
		g("reservation_list", ts.get(t, "/v1/reservations?external_customer_id=user_1"))
		g("balance_held", ts.get(t, ext("user_1", "/credits")))

		g("transaction", ts.post(t, "/v1/transactions", obj{"metadata": obj{"why": "gift"}, "operations": []obj{
			{"type": "usage", "external_customer_id": "user_1", "billable_metric_key": "tokens", "units": 1},
			{"type": "grant", "external_customer_id": "user_2", "credits": 1000, "source": "transfer"},
		}}))
		g("transaction_refused", ts.post(t, "/v1/transactions", obj{"operations": []obj{
			{"type": "grant", "external_customer_id": "user_2", "credits": 1000},
			{"type": "usage", "external_customer_id": "user_2", "billable_metric_key": "tokens", "units": 100},
		}}))

		var me struct{ ID string }
		ts.get(t, "/v1/tenants/me").want(t, http.StatusOK).decode(t, &me)
		g("config_patch", ts.do(t, req{method: http.MethodPatch, path: "/v1/tenants/" + me.ID + "/config",
			body: obj{"low_balance_threshold": 500}}))
		g("webhook_health", ts.get(t, "/v1/webhooks/health"))
	})
}

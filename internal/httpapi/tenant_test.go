package httpapi_test

import (
	"net/http"
	"testing"
	"time"
)

// TestTenantWalls: a key sees only its own tenant's environment.
func TestTenantWalls(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		otherTest, otherLive := ts.addTenant(t, "Other")
		// The test key's world: a customer with credits, a priced metric.
		ts.createMetric(t, "m", perUnit(1))
		b := ts.grant(t, "alice", 100, nil)

		for name, key := range map[string]string{"live key": ts.liveKey, "other tenant's test key": otherTest, "other tenant's live key": otherLive} {
			t.Run(name, func(t *testing.T) {
				get := func(path string) resp { return ts.do(t, req{method: "GET", path: path, apiKey: key}) }
				post := func(path string, body any) resp {
					return ts.do(t, req{method: "POST", path: path, apiKey: key, body: body})
				}
				for _, path := range []string{
					"/v1/customers/" + b.CustomerID, "/v1/customers/" + b.CustomerID + "/credits", "/v1/customers/" + b.CustomerID + "/ledger",
					"/v1/customers/alice", ext("alice", ""), ext("alice", "/credits"), ext("alice", "/ledger"),
					"/v1/billable-metrics/m", ext("alice", "/entitlements/m"),
				} {
					get(path).wantProblem(t, http.StatusNotFound, "not-found")
				}
				for _, path := range []string{"/v1/customers", "/v1/billable-metrics", "/v1/metering-rules"} {
					var l listResp[map[string]any]
					get(path).want(t, http.StatusOK).decode(t, &l)
					if len(l.Data) != 0 {
						t.Errorf("GET %s with the %s = %v, want nothing", path, name, l.Data)
					}
				}
				snap := ts.snapshot(t)
				post("/v1/customers/"+b.CustomerID+"/credits/grant", obj{"credits": 5}).wantProblem(t, http.StatusNotFound, "not-found")
				post("/v1/topup/grant", obj{"customer_id": b.CustomerID, "credits": 5}).wantProblem(t, http.StatusNotFound, "not-found")
				post("/v1/usage", obj{"customer_id": b.CustomerID, "billable_metric_key": "m", "units": 1}).wantProblem(t, http.StatusNotFound, "not-found")
				post("/v1/usage", obj{"external_customer_id": "alice", "billable_metric_key": "m", "units": 1}).wantProblem(t, http.StatusNotFound, "not-found")
				post("/v1/metering-rules", obj{"billable_metric_key": "m", "cost_type": "flat", "flat_cost": 1}).wantProblem(t, http.StatusNotFound, "not-found")
				snap.unchanged(t, "writes across the wall")

				// The same names are free here.
				var c customerResp
				post("/v1/customers", obj{"external_id": "alice"}).want(t, http.StatusCreated).decode(t, &c)
				if c.ID == b.CustomerID {
					t.Errorf("alice in another scope has the same id %s", c.ID)
				}
				post("/v1/billable-metrics", obj{"key": "m"}).want(t, http.StatusCreated)
				var bal balanceResp
				get(ext("alice", "/credits")).want(t, http.StatusOK).decode(t, &bal)
				if bal.Balance != 0 || bal.CustomerID != c.ID {
					t.Errorf("alice's balance with the %s = %+v, want 0 for %s", name, bal, c.ID)
				}
			})
		}
		if bal := ts.balance(t, "alice"); bal.Balance != 100 || bal.CustomerID != b.CustomerID {
			t.Errorf("the test key's alice = %+v, want 100 for %s", bal, b.CustomerID)
		}
		var l listResp[customerResp]
		ts.get(t, "/v1/customers").want(t, http.StatusOK).decode(t, &l)
		if len(l.Data) != 1 {
			t.Errorf("GET /v1/customers with the test key = %d customers, want 1", len(l.Data))
		}
	})
}

// TestTimes: times are accepted as RFC 3339 with any fraction and offset and
// answered in UTC with milliseconds.
func TestTimes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.clock.Advance(1234567 * time.Microsecond) // 14:00:01.234567
		for in, want := range map[string]string{
			"2026-05-01T10:00:00Z":                "2026-05-01T10:00:00.000Z",
			"2026-05-01T10:00:00.5-07:00":         "2026-05-01T17:00:00.500Z",
			"2026-05-01T10:00:00.123999999+00:00": "2026-05-01T10:00:00.123Z",
			"2026-05-02T01:30:00.1+14:00":         "2026-05-01T11:30:00.100Z",
			"2026-04-13T16:00:01.235+02:00":       "2026-04-13T14:00:01.235Z", // a millisecond ahead of the clock
		} {
			b := ts.grant(t, "u", 1, obj{"expires_at": in})
			if deref(b.ExpiresAt) != want || b.CreatedAt != "2026-04-13T14:00:01.234Z" {
				t.Errorf("grant expiring %s: expires_at %s, created_at %s; want %s and 2026-04-13T14:00:01.234Z", in, deref(b.ExpiresAt), b.CreatedAt, want)
			}
		}
		for _, e := range ts.ledger(t, "u") {
			if e.CreatedAt != "2026-04-13T14:00:01.234Z" {
				t.Errorf("ledger created_at = %s, want 2026-04-13T14:00:01.234Z", e.CreatedAt)
			}
		}
		// Answered times are enforced times: the block expiring at .235 is gone
		// once the clock reaches .235.
		ts.clock.Advance(time.Millisecond - 567*time.Microsecond + time.Microsecond) // 14:00:01.235001
		if b := ts.balance(t, "u"); b.Balance != 4 {
			t.Errorf("balance at 14:00:01.235 = %d, want 4", b.Balance)
		}
	})
}

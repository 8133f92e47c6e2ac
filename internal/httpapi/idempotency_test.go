package httpapi_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"
)

// wantReplay checks that r replays first: same status, same body (but for a
// usage answer's duplicate, which must be true), and the replay header.
func wantReplay(t *testing.T, first, r resp, usage bool) {
	t.Helper()
	if r.status != first.status {
		t.Fatalf("%s replay status = %d, want %d; body: %s", r.desc, r.status, first.status, r.body)
	}
	if got := r.header.Get("X-Idempotent-Replayed"); got != "true" {
		t.Errorf("%s X-Idempotent-Replayed = %q, want true", r.desc, got)
	}
	want := first.object(t)
	if usage {
		want["duplicate"] = true
	}
	if g, w := jsonOf(t, r.object(t)), jsonOf(t, want); g != w {
		t.Errorf("%s replay body = %s, want %s", r.desc, g, w)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		for _, tc := range []struct {
			name, path  string
			body, other obj // other: a different body sent with the same key
			usage       bool
		}{
			{"customer", "/v1/customers", obj{"external_id": "c1"}, obj{"external_id": "c2"}, false},
			{"metric", "/v1/billable-metrics", obj{"key": "k1"}, obj{"key": "k2"}, false},
			{"rule", "/v1/metering-rules", obj{"billable_metric_key": "k1", "cost_type": "flat", "flat_cost": 1}, obj{"billable_metric_key": "k1", "cost_type": "flat", "flat_cost": 2}, false},
			{"topup", "/v1/topup/grant", obj{"external_customer_id": "u", "credits": 100}, obj{"external_customer_id": "u", "credits": 999}, false},
			{"grant by external id", ext("u", "/credits/grant"), obj{"credits": 100}, obj{"credits": 5, "expires_at": at(hour)}, false},
			{"grant by id", "/v1/customers/u/credits/grant", obj{"credits": 100}, obj{"credits": 6}, false},
			{"usage", "/v1/usage", obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 10}, obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 50}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				key := "replay-" + tc.name
				first := ts.postKey(t, tc.path, key, tc.body)
				if first.status >= 300 {
					t.Fatalf("%s status = %d; body: %s", first.desc, first.status, first.body)
				}
				snap := ts.snapshot(t)
				wantReplay(t, first, ts.postKey(t, tc.path, key, tc.body), tc.usage)
				// A different body replays too: the key names the operation.
				wantReplay(t, first, ts.postKey(t, tc.path, key, tc.other), tc.usage)
				// A replay comes before the body is read: even a body that is
				// now invalid replays.
				wantReplay(t, first, ts.postKey(t, tc.path, key, "{"), tc.usage)
				wantReplay(t, first, ts.postKey(t, tc.path, key, `[1]`), tc.usage)
				wantReplay(t, first, ts.do(t, req{method: "POST", path: tc.path, idem: key}), tc.usage)
				snap.unchanged(t, "replays of "+tc.name)
			})
		}
		if b := ts.balance(t, "u"); b.Balance != 290 {
			t.Errorf("balance = %d, want 290: three grants of 100 and one usage of 10, each once", b.Balance)
		}
	})
}

func TestKeyReusedElsewhere(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.postKey(t, "/v1/topup/grant", "k", obj{"external_customer_id": "u", "credits": 100}).want(t, http.StatusCreated)
		snap := ts.snapshot(t)
		for _, tc := range []struct {
			path string
			body any
		}{
			{"/v1/usage", obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 1}},
			{"/v1/customers", obj{"external_id": "x"}},
			{ext("u", "/credits/grant"), obj{"credits": 1}},
			{"/v1/usage/batch", obj{"events": []obj{}}},
			{"/v1/usage", "{"}, // reuse is found before the body is read
		} {
			ts.postKey(t, tc.path, "k", tc.body).wantProblem(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
		}
		snap.unchanged(t, "the key reused on other paths")
		// The grant's own path still replays.
		ts.postKey(t, "/v1/topup/grant", "k", obj{"external_customer_id": "u", "credits": 100}).want(t, http.StatusCreated)
		snap.unchanged(t, "the grant's replay")
	})
}

// TestRejectionNotStored: only a response that changed something is stored.
// A retry of a rejected request with the same key runs again.
func TestRejectionNotStored(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(100))
		use := obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 1}

		ts.postKey(t, "/v1/usage", "buy-1", use).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		ts.grant(t, "u", 150, nil)
		r := ts.postKey(t, "/v1/usage", "buy-1", use).want(t, http.StatusOK)
		if r.header.Get("X-Idempotent-Replayed") != "" {
			t.Errorf("retry after a 402 was replayed, want executed")
		}
		if b := ts.balance(t, "u"); b.Balance != 50 {
			t.Errorf("balance after the retried usage = %d, want 50", b.Balance)
		}

		// 404 (unknown metric), then the metric appears.
		ts.postKey(t, "/v1/usage", "later", obj{"external_customer_id": "u", "billable_metric_key": "new", "units": 1}).wantProblem(t, http.StatusNotFound, "not-found")
		ts.createMetric(t, "new", nil)
		ts.postKey(t, "/v1/usage", "later", obj{"external_customer_id": "u", "billable_metric_key": "new", "units": 1}).wantProblem(t, http.StatusUnprocessableEntity, "no-metering-rule")
		ts.createRule(t, "new", perUnit(1))
		ts.postKey(t, "/v1/usage", "later", obj{"external_customer_id": "u", "billable_metric_key": "new", "units": 1}).want(t, http.StatusOK)

		// 409 and 400 are not stored either.
		ts.createCustomer(t, "taken")
		ts.postKey(t, "/v1/customers", "cust", obj{"external_id": "taken"}).wantProblem(t, http.StatusConflict, "customer-exists")
		ts.postKey(t, "/v1/customers", "cust", obj{"external_id": 5}).wantProblem(t, http.StatusBadRequest, "invalid-request", "external_id")
		ts.postKey(t, "/v1/customers", "cust", obj{"external_id": "free"}).want(t, http.StatusCreated)
		// And a key whose rejection was not stored is free for another path.
		ts.postKey(t, "/v1/usage", "free-key", obj{"external_customer_id": "u", "billable_metric_key": "nope", "units": 1}).wantProblem(t, http.StatusNotFound, "not-found")
		ts.postKey(t, "/v1/topup/grant", "free-key", obj{"external_customer_id": "u", "credits": 1}).want(t, http.StatusCreated)
	})
}

// TestConcurrentKey: 20 requests racing with one key debit once, and every
// one of them answers 200 with the same event.
func TestConcurrentKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 1000, nil)
		const n = 20
		var wg sync.WaitGroup
		out := make([]resp, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				out[i] = ts.postKey(t, "/v1/usage", "race", obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 7})
			})
		}
		close(start)
		wg.Wait()
		var first usageResp
		fresh := 0
		for i, r := range out {
			if r.status != http.StatusOK {
				t.Fatalf("racer %d: %s status = %d, want 200; body: %s", i, r.desc, r.status, r.body)
			}
			var u usageResp
			r.decode(t, &u)
			if first.EventID == "" {
				first = u
			}
			if u.EventID != first.EventID || u.EstimatedCost != 7 {
				t.Errorf("racer %d event = %+v, want event %s at cost 7", i, u, first.EventID)
			}
			if !u.Duplicate {
				fresh++
			}
			if u.Duplicate != (r.header.Get("X-Idempotent-Replayed") == "true") {
				t.Errorf("racer %d duplicate = %v but X-Idempotent-Replayed = %q", i, u.Duplicate, r.header.Get("X-Idempotent-Replayed"))
			}
		}
		if fresh != 1 {
			t.Errorf("%d racers executed the usage, want exactly 1", fresh)
		}
		var usage listResp[entryResp]
		ts.get(t, ext("u", "/ledger?type=usage")).want(t, http.StatusOK).decode(t, &usage)
		if len(usage.Data) != 1 || usage.Data[0].Delta != -7 {
			t.Errorf("usage ledger entries = %+v, want one debit of 7", usage.Data)
		}
		if b := ts.balance(t, "u"); b.Balance != 993 {
			t.Errorf("balance = %d, want 993", b.Balance)
		}
	})
}

// TestKeyLapses: a key is replayed for 24 hours, then the request runs again.
func TestKeyLapses(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 1000, nil)
		use := obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 5}
		first := ts.postKey(t, "/v1/usage", "daily", use).want(t, http.StatusOK)
		var a usageResp
		first.decode(t, &a)

		ts.clock.Advance(24*hour - time.Millisecond)
		wantReplay(t, first, ts.postKey(t, "/v1/usage", "daily", use), true)
		ts.clock.Advance(2 * time.Millisecond)
		r := ts.postKey(t, "/v1/usage", "daily", use).want(t, http.StatusOK)
		var b usageResp
		r.decode(t, &b)
		if r.header.Get("X-Idempotent-Replayed") != "" || b.Duplicate || b.EventID == a.EventID {
			t.Errorf("usage 24h later = %s (replayed %q), want a new event, not %s", r.body, r.header.Get("X-Idempotent-Replayed"), a.EventID)
		}
		if bal := ts.balance(t, "u"); bal.Balance != 990 {
			t.Errorf("balance = %d, want 990 (two usages of 5)", bal.Balance)
		}
		// The new record replays from now on, on its path only.
		wantReplay(t, r, ts.postKey(t, "/v1/usage", "daily", use), true)

		// A lapsed key is free for another path as well.
		ts.clock.Advance(25 * hour)
		ts.postKey(t, "/v1/topup/grant", "daily", obj{"external_customer_id": "u", "credits": 1}).want(t, http.StatusCreated)
	})
}

// TestKeyScope: keys are scoped to the tenant and environment.
func TestKeyScope(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		other, _ := ts.addTenant(t, "Other")
		body := obj{"external_customer_id": "u", "credits": 10}
		var ids [3]string
		for i, key := range []string{ts.testKey, ts.liveKey, other} {
			r := ts.do(t, req{method: "POST", path: "/v1/topup/grant", apiKey: key, idem: "shared", body: body}).want(t, http.StatusCreated)
			if r.header.Get("X-Idempotent-Replayed") != "" {
				t.Errorf("grant %d with a key used in another scope was replayed", i)
			}
			var b blockResp
			r.decode(t, &b)
			ids[i] = b.ID
		}
		if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
			t.Errorf("grants in three scopes made blocks %v, want three", ids)
		}
		r := ts.do(t, req{method: "POST", path: "/v1/topup/grant", apiKey: ts.liveKey, idem: "shared", body: body})
		if r.status != http.StatusCreated || r.header.Get("X-Idempotent-Replayed") != "true" || !bytes.Contains(r.body, []byte(ids[1])) {
			t.Errorf("live replay = %d %s, want the live block %s replayed", r.status, r.body, ids[1])
		}
	})
}

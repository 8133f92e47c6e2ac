package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
)

type batchResultResp struct {
	Index         int      `json:"index"`
	Status        string   `json:"status"`
	EventID       *string  `json:"event_id"`
	EstimatedCost *int64   `json:"estimated_cost"`
	Duplicate     bool     `json:"duplicate"`
	Error         *problem `json:"error"`
}

type batchResp struct {
	Results []batchResultResp `json:"results"`
}

// event is one batch event for customer u.
func event(key, metric string, units int64) obj {
	return obj{"idempotency_key": key, "external_customer_id": "u", "billable_metric_key": metric, "units": units}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(10))
		ts.createMetric(t, "unpriced", nil)
		ts.grant(t, "u", 100, nil)
		events := []any{
			event("e0", "m", 3), // accepted: 30
			event("e1", "m", 8), // 402: 80 > 70
			5,                   // not an object
			obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 1}, // no idempotency_key
			event("e4", "nope", 1),     // unknown metric
			event("e5", "unpriced", 1), // no rule
			event("e6", "m", 0),        // units 0
			obj{"idempotency_key": "e7", "external_customer_id": "ghost", "billable_metric_key": "m", "units": 1}, // 402, creates nothing
			event("e8", "m", 7), // accepted: the rest, 70
			event("e0", "m", 3), // duplicate of e0
		}
		r := ts.post(t, "/v1/usage/batch", obj{"events": events}).want(t, http.StatusOK)
		var b batchResp
		r.decode(t, &b)
		if len(b.Results) != len(events) {
			t.Fatalf("batch results = %d, want %d: %s", len(b.Results), len(events), r.body)
		}
		for i, want := range []struct {
			status string
			cost   int64
			http   int
			code   string
			field  string
		}{
			{"accepted", 30, 0, "", ""},
			{"rejected", 0, 402, "insufficient-credits", ""},
			{"rejected", 0, 400, "invalid-request", "event"},
			{"rejected", 0, 400, "invalid-request", "idempotency_key"},
			{"rejected", 0, 404, "not-found", ""},
			{"rejected", 0, 422, "no-metering-rule", ""},
			{"rejected", 0, 400, "invalid-request", "units"},
			{"rejected", 0, 402, "insufficient-credits", ""},
			{"accepted", 70, 0, "", ""},
			{"accepted", 30, 0, "", ""},
		} {
			got := b.Results[i]
			if got.Index != i || got.Status != want.status {
				t.Errorf("result %d = index %d, %s; want index %d, %s (%s)", i, got.Index, got.Status, i, want.status, r.body)
				continue
			}
			if want.status == "accepted" {
				if got.EventID == nil || deref(got.EstimatedCost) != want.cost || got.Error != nil {
					t.Errorf("result %d = %+v, want accepted at %d with an event id and no error", i, got, want.cost)
				}
				continue
			}
			if got.Error == nil || got.Error.Status != want.http || got.Error.Code != want.code || got.EventID != nil || got.Duplicate {
				t.Errorf("result %d error = %+v, want %d %s", i, got.Error, want.http, want.code)
				continue
			}
			if want.field != "" && (len(got.Error.Errors) == 0 || got.Error.Errors[0].Field != want.field) {
				t.Errorf("result %d errors = %+v, want field %s", i, got.Error.Errors, want.field)
			}
		}
		if p := b.Results[1].Error; p != nil && (deref(p.Required) != 80 || deref(p.Available) != 70) {
			t.Errorf("result 1 required %d, available %d; want 80 and 70", deref(p.Required), deref(p.Available))
		}
		if !b.Results[9].Duplicate || deref(b.Results[9].EventID) != deref(b.Results[0].EventID) || b.Results[0].Duplicate {
			t.Errorf("results 0 and 9 = %+v, %+v; want the second a duplicate of the first", b.Results[0], b.Results[9])
		}
		if bal := ts.balance(t, "u"); bal.Balance != 0 {
			t.Errorf("balance after the batch = %d, want 0 (30 + 70 accepted)", bal.Balance)
		}
		ts.get(t, ext("ghost", "")).wantProblem(t, http.StatusNotFound, "not-found")
		var usage listResp[entryResp]
		ts.get(t, ext("u", "/ledger?type=usage")).want(t, http.StatusOK).decode(t, &usage)
		if len(usage.Data) != 2 {
			t.Errorf("usage entries = %d, want 2", len(usage.Data))
		}
		ts.checkLedgerSum(t, "u")
	})
}

func TestBatchInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 10_000, nil)
		tooMany := make([]obj, 1001)
		for i := range tooMany {
			tooMany[i] = event(fmt.Sprint("k", i), "m", 1)
		}
		snap := ts.snapshot(t)
		for name, body := range map[string]any{
			"no events":     obj{},
			"events null":   obj{"events": nil},
			"events object": obj{"events": obj{}},
			"events string": obj{"events": "x"},
			"1001 events":   obj{"events": tooMany},
		} {
			ts.post(t, "/v1/usage/batch", body).wantProblem(t, http.StatusBadRequest, "invalid-request", "events")
			snap.unchanged(t, "a batch with "+name)
		}
		// An empty batch changes nothing and answers no results.
		var b batchResp
		ts.post(t, "/v1/usage/batch", obj{"events": []obj{}}).want(t, http.StatusOK).decode(t, &b)
		if b.Results == nil || len(b.Results) != 0 {
			t.Errorf("empty batch results = %v, want []", b.Results)
		}
		snap.unchanged(t, "an empty batch")
		// 1000 is the most allowed.
		ts.post(t, "/v1/usage/batch", obj{"events": tooMany[:1000]}).want(t, http.StatusOK).decode(t, &b)
		if len(b.Results) != 1000 || b.Results[999].Status != "accepted" {
			t.Errorf("batch of 1000: %d results, last %+v; want 1000 accepted", len(b.Results), b.Results[len(b.Results)-1])
		}
		if bal := ts.balance(t, "u"); bal.Balance != 9000 {
			t.Errorf("balance after 1000 events of 1 = %d, want 9000", bal.Balance)
		}
	})
}

// TestBatchKeys: event keys share the key space of POST /v1/usage.
func TestBatchKeys(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 1000, nil)
		var single usageResp
		ts.postKey(t, "/v1/usage", "single", obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 5}).want(t, http.StatusOK).decode(t, &single)
		ts.postKey(t, "/v1/topup/grant", "granted", obj{"external_customer_id": "u", "credits": 1}).want(t, http.StatusCreated)

		var b batchResp
		ts.post(t, "/v1/usage/batch", obj{"events": []obj{
			event("single", "m", 99),  // already a usage event: its duplicate
			event("granted", "m", 1),  // a grant's key: 422
			event("batched", "m", 10), // new
		}}).want(t, http.StatusOK).decode(t, &b)
		if r := b.Results[0]; r.Status != "accepted" || !r.Duplicate || deref(r.EventID) != single.EventID || deref(r.EstimatedCost) != 5 {
			t.Errorf("event with a used usage key = %+v, want a duplicate of %+v", r, single)
		}
		if r := b.Results[1]; r.Status != "rejected" || r.Error == nil || r.Error.Code != "idempotency-key-reused" || r.Error.Status != 422 {
			t.Errorf("event with a grant's key = %+v, want rejected 422 idempotency-key-reused", r)
		}
		if r := b.Results[2]; r.Status != "accepted" || r.Duplicate {
			t.Fatalf("new event = %+v, want accepted", r)
		}
		if bal := ts.balance(t, "u"); bal.Balance != 1001-5-10 {
			t.Errorf("balance = %d, want %d", bal.Balance, 1001-5-10)
		}
		// An event may not take the batch's own key.
		r0 := ts.postKey(t, "/v1/usage/batch", "own", obj{"events": []obj{event("own", "m", 1), event("not-own", "m", 1)}}).want(t, http.StatusOK)
		var own batchResp
		r0.decode(t, &own)
		if r := own.Results[0]; r.Status != "rejected" || r.Error == nil || r.Error.Code != "idempotency-key-reused" {
			t.Errorf("event with the batch's own key = %+v, want rejected 422 idempotency-key-reused", r)
		}
		if r := own.Results[1]; r.Status != "accepted" {
			t.Errorf("event beside it = %+v, want accepted", r)
		}
		// A batch event's key replays on POST /v1/usage.
		var u usageResp
		r := ts.postKey(t, "/v1/usage", "batched", obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 10}).want(t, http.StatusOK)
		r.decode(t, &u)
		if r.header.Get("X-Idempotent-Replayed") != "true" || !u.Duplicate || u.EventID != deref(b.Results[2].EventID) || u.EstimatedCost != 10 || u.IdempotencyKey != "batched" {
			t.Errorf("POST /v1/usage with a batch event's key = %s, want a replay of event %s", r.body, deref(b.Results[2].EventID))
		}
		// An event key used for a usage cannot be a grant's key.
		ts.postKey(t, "/v1/topup/grant", "batched", obj{"external_customer_id": "u", "credits": 1}).wantProblem(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
		if bal := ts.balance(t, "u"); bal.Balance != 985 {
			t.Errorf("balance = %d, want 985", bal.Balance)
		}
	})
}

func TestBatchReplay(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(10))
		ts.grant(t, "u", 50, nil)
		body := obj{"events": []obj{event("a", "m", 2), event("b", "m", 9)}}
		first := ts.postKey(t, "/v1/usage/batch", "batch-1", body).want(t, http.StatusOK)
		snap := ts.snapshot(t)
		for _, again := range []any{body, obj{"events": []obj{event("c", "m", 1)}}, "{"} {
			r := ts.postKey(t, "/v1/usage/batch", "batch-1", again).want(t, http.StatusOK)
			if r.header.Get("X-Idempotent-Replayed") != "true" {
				t.Errorf("batch replay X-Idempotent-Replayed = %q, want true", r.header.Get("X-Idempotent-Replayed"))
			}
			var a, b batchResp
			first.decode(t, &a)
			r.decode(t, &b)
			a.Results[0].Duplicate = true // accepted events replay as duplicates; the rejected one as it was
			if jsonOf(t, a) != jsonOf(t, b) {
				t.Errorf("batch replay = %s, want %s", jsonOf(t, b), jsonOf(t, a))
			}
		}
		snap.unchanged(t, "batch replays")
	})
}

// TestBatchNotStored: a batch in which no event was accepted changed nothing
// and is not stored: its retry runs again.
func TestBatchNotStored(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(10))
		body := obj{"events": []obj{event("a", "m", 2), event("b", "m", 3)}}
		var b batchResp
		ts.postKey(t, "/v1/usage/batch", "retry", body).want(t, http.StatusOK).decode(t, &b)
		if b.Results[0].Status != "rejected" || b.Results[1].Status != "rejected" {
			t.Fatalf("batch for a customer with nothing = %+v, want both rejected", b.Results)
		}
		ts.get(t, ext("u", "")).wantProblem(t, http.StatusNotFound, "not-found")
		ts.grant(t, "u", 100, nil)
		r := ts.postKey(t, "/v1/usage/batch", "retry", body).want(t, http.StatusOK)
		r.decode(t, &b)
		if r.header.Get("X-Idempotent-Replayed") != "" || b.Results[0].Status != "accepted" || b.Results[1].Status != "accepted" {
			t.Errorf("retry after the grant = %s (replayed %q), want both accepted, not replayed", r.body, r.header.Get("X-Idempotent-Replayed"))
		}
		if bal := ts.balance(t, "u"); bal.Balance != 50 {
			t.Errorf("balance = %d, want 50", bal.Balance)
		}
	})
}

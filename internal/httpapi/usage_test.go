package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "tokens", perUnit(2))
		ts.grant(t, "u", 100, nil)
		r := ts.postKey(t, "/v1/usage", "use-1", obj{"external_customer_id": "u", "billable_metric_key": "tokens", "units": 15, "metadata": obj{"model": "m1"}}).
			want(t, http.StatusOK)
		var u usageResp
		r.decode(t, &u)
		if !strings.HasPrefix(u.EventID, "evt_") || u.IdempotencyKey != "use-1" || u.Status != "accepted" || u.EstimatedCost != 30 || u.Duplicate {
			t.Errorf("POST /v1/usage = %s, want event evt_…, idempotency_key use-1, accepted, estimated_cost 30, duplicate false", r.body)
		}
		if r.header.Get("X-Idempotent-Replayed") != "" {
			t.Errorf("POST /v1/usage (first) X-Idempotent-Replayed = %q, want none", r.header.Get("X-Idempotent-Replayed"))
		}
		if b := ts.balance(t, "u"); b.Balance != 70 || b.EffectiveBalance != 70 {
			t.Errorf("balance after usage of 30 = %d (effective %d), want 70", b.Balance, b.EffectiveBalance)
		}
		e := ts.ledger(t, "u")
		if len(e) != 2 || e[0].Type != "usage" || e[0].Delta != -30 || e[0].BalanceAfter != 70 || deref(e[0].ReferenceType) != "usage_event" ||
			deref(e[0].ReferenceID) != u.EventID || deref(e[0].IdempotencyKey) != "use-1" || e[0].Metadata["model"] != "m1" {
			t.Errorf("ledger after usage = %+v, want newest a usage entry of -30 referencing %s with key use-1 and its metadata", e, u.EventID)
		}
		// By customer_id as well.
		ts.post(t, "/v1/usage", obj{"customer_id": e[0].CustomerID, "billable_metric_key": "tokens", "units": 1}).want(t, http.StatusOK)
		ts.checkLedgerSum(t, "u")
	})
}

func TestUsageInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 100, nil)
		id := ts.balance(t, "u").CustomerID
		for _, tc := range []struct {
			name  string
			body  obj
			field string
		}{
			{"units missing", obj{"units": drop}, "units"},
			{"units null", obj{"units": nil}, "units"},
			{"units 0", obj{"units": 0}, "units"},
			{"units negative", obj{"units": -1}, "units"},
			{"units fractional", obj{"units": 1.5}, "units"},
			{"units string", obj{"units": "3"}, "units"},
			{"units 2^63", obj{"units": json9223372036854775808}, "units"},
			{"units cost overflows", obj{"units": 1 << 62, "billable_metric_key": "double"}, "units"},
			{"metric missing", obj{"billable_metric_key": drop}, "billable_metric_key"},
			{"metric number", obj{"billable_metric_key": 5}, "billable_metric_key"},
			{"both customer ids", obj{"customer_id": id}, ""},
			{"no customer id", obj{"external_customer_id": drop}, ""},
			{"empty customer id", obj{"external_customer_id": ""}, ""},
			{"metadata array", obj{"metadata": []int{1}}, "metadata"},
			{"metadata number", obj{"metadata": 1}, "metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.name == "units cost overflows" {
					ts.createMetric(t, "double", perUnit(2))
				}
				body := obj{"external_customer_id": "u", "billable_metric_key": "m", "units": 1}
				for k, v := range tc.body {
					body[k] = v
					if v == drop {
						delete(body, k)
					}
				}
				snap := ts.snapshot(t)
				p := ts.post(t, "/v1/usage", body).wantProblem(t, http.StatusBadRequest, "invalid-request")
				if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
					t.Errorf("POST /v1/usage with %s errors = %+v, want %s named", tc.name, p.Errors, tc.field)
				}
				if tc.field == "" && (len(p.Errors) == 0 || !strings.Contains(p.Errors[0].Field, "customer_id")) {
					t.Errorf("POST /v1/usage with %s errors = %+v, want customer_id or external_customer_id named", tc.name, p.Errors)
				}
				snap.unchanged(t, "POST /v1/usage with "+tc.name)
			})
		}
	})
}

func TestUsageRefused(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "priced", perUnit(10))
		ts.createMetric(t, "unpriced", nil)
		ts.grant(t, "u", 100, nil)
		for _, tc := range []struct {
			name   string
			body   obj
			status int
			code   string
		}{
			{"unknown metric", obj{"external_customer_id": "u", "billable_metric_key": "nope", "units": 1}, 404, "not-found"},
			{"metric without a rule", obj{"external_customer_id": "u", "billable_metric_key": "unpriced", "units": 1}, 422, "no-metering-rule"},
			{"unknown customer_id", obj{"customer_id": "0190f0f0-0000-7000-8000-000000000000", "billable_metric_key": "priced", "units": 1}, 404, "not-found"},
			{"over the balance", obj{"external_customer_id": "u", "billable_metric_key": "priced", "units": 11}, 402, "insufficient-credits"},
			{"unknown customer over 0", obj{"external_customer_id": "ghost", "billable_metric_key": "priced", "units": 1}, 402, "insufficient-credits"},
			{"unknown customer, unknown metric", obj{"external_customer_id": "ghost", "billable_metric_key": "nope", "units": 1}, 404, "not-found"},
			{"unknown customer, no rule", obj{"external_customer_id": "ghost", "billable_metric_key": "unpriced", "units": 1}, 422, "no-metering-rule"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := ts.snapshot(t)
				p := ts.post(t, "/v1/usage", tc.body).wantProblem(t, tc.status, tc.code)
				if tc.status == 402 {
					avail := int64(100)
					if tc.body["external_customer_id"] == "ghost" {
						avail = 0
					}
					if deref(p.Required) != int64(10*tc.body["units"].(int)) || deref(p.Available) != avail {
						t.Errorf("POST /v1/usage %s: required %d, available %d; want %d and %d", tc.name, deref(p.Required), deref(p.Available), 10*tc.body["units"].(int), avail)
					}
				}
				snap.unchanged(t, "POST /v1/usage "+tc.name)
			})
		}
		ts.get(t, ext("ghost", "")).wantProblem(t, http.StatusNotFound, "not-found")
		if b := ts.balance(t, "u"); b.Balance != 100 {
			t.Errorf("balance after refused usage = %d, want 100", b.Balance)
		}
		// The whole effective balance can be spent, not a millicredit more.
		ts.usage(t, "u", "priced", 10).want(t, http.StatusOK)
		ts.usage(t, "u", "priced", 1).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
	})
}

// TestUsageCreatesCustomer: an accepted usage event creates its unknown
// customer, even at cost 0; a refused one creates nothing (see
// TestUsageRefused).
func TestUsageCreatesCustomer(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "free", obj{"cost_type": "flat", "flat_cost": 0})
		var u usageResp
		ts.usage(t, "newbie", "free", 3).want(t, http.StatusOK).decode(t, &u)
		if u.EstimatedCost != 0 || u.Status != "accepted" {
			t.Errorf("usage at cost 0 = %+v, want accepted at estimated_cost 0", u)
		}
		var c customerResp
		ts.get(t, ext("newbie", "")).want(t, http.StatusOK).decode(t, &c)
		if b := ts.balance(t, "newbie"); b.Balance != 0 || b.CustomerID != c.ID {
			t.Errorf("balance of newbie = %+v, want 0 for customer %s", b, c.ID)
		}
		if e := ts.ledger(t, "newbie"); len(e) != 0 {
			t.Errorf("ledger of newbie = %+v, want empty (cost 0 debits nothing)", e)
		}
		// A second event finds the customer it created.
		ts.usage(t, "newbie", "free", 1).want(t, http.StatusOK)
		var list listResp[customerResp]
		ts.get(t, "/v1/customers").want(t, http.StatusOK).decode(t, &list)
		if len(list.Data) != 1 {
			t.Errorf("GET /v1/customers = %d customers, want 1", len(list.Data))
		}
	})
}

// TestBurnOrder: higher priority first, then the soonest expiry (none
// last), then free before paid, then oldest.
func TestBurnOrder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		for _, tc := range []struct {
			name   string
			grants []obj   // each with credits 100
			order  []int   // the grants' indexes in burn order
			spend  int64   // a usage after the grants
			left   []int64 // remaining of each grant after it
		}{
			{"priority", []obj{{"priority": 0}, {"priority": 10}, {"priority": 5}}, []int{1, 2, 0}, 150, []int64{100, 0, 50}},
			{"expiry", []obj{{}, {"expires_at": at(2 * hour)}, {"expires_at": at(hour)}}, []int{2, 1, 0}, 150, []int64{100, 50, 0}},
			{"priority over expiry", []obj{{"expires_at": at(hour)}, {"priority": 1}}, []int{1, 0}, 100, []int64{100, 0}},
			{"free before paid", []obj{{"price_paid": 500, "currency": "USD"}, {}}, []int{1, 0}, 120, []int64{80, 0}},
			{"expiry over price", []obj{{"expires_at": at(2 * hour)}, {"price_paid": 1, "expires_at": at(hour)}}, []int{1, 0}, 100, []int64{100, 0}},
			{"oldest first", []obj{{"reason": "a"}, {"reason": "b"}, {"reason": "c"}}, []int{0, 1, 2}, 250, []int64{0, 0, 50}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cust := "c-" + strings.ReplaceAll(tc.name, " ", "-")
				var ids []string
				for _, g := range tc.grants {
					ids = append(ids, ts.grant(t, cust, 100, g).ID)
				}
				var got []string
				for _, b := range ts.balance(t, cust).Blocks {
					got = append(got, b.ID)
				}
				var want []string
				for _, i := range tc.order {
					want = append(want, ids[i])
				}
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("include_blocks order = %v, want %v", got, want)
				}
				var u usageResp
				ts.usage(t, cust, "m", tc.spend).want(t, http.StatusOK).decode(t, &u)
				remaining := map[string]int64{}
				for _, b := range ts.balance(t, cust).Blocks {
					remaining[b.ID] = b.RemainingAmount
				}
				for i, id := range ids {
					if remaining[id] != tc.left[i] {
						t.Errorf("after spending %d, grant %d has %d left, want %d", tc.spend, i, remaining[id], tc.left[i])
					}
				}
				// One usage entry per block touched, in burn order.
				var touched []string
				for _, e := range ts.ledger(t, cust) {
					if e.Type == "usage" && deref(e.ReferenceID) == u.EventID {
						touched = append([]string{deref(e.BlockID)}, touched...) // newest first → burn order
					}
				}
				var wantTouched []string
				for _, i := range tc.order {
					if tc.left[i] < 100 {
						wantTouched = append(wantTouched, ids[i])
					}
				}
				if strings.Join(touched, " ") != strings.Join(wantTouched, " ") {
					t.Errorf("usage ledger entries touch %v, want %v", touched, wantTouched)
				}
				ts.checkLedgerSum(t, cust)
			})
		}
	})
}

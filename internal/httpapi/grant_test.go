package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGrant(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		r := ts.post(t, "/v1/topup/grant", obj{
			"external_customer_id": "user_1", "credits": 5000, "priority": 10, "expires_at": "2026-05-01T16:30:00.123456+02:00",
			"reason": "starter pack", "price_paid": 499, "currency": "USD", "external_payment_id": "pi_1", "metadata": obj{"order": "o1"},
		}).want(t, http.StatusCreated)
		var b blockResp
		r.decode(t, &b)
		if !strings.HasPrefix(b.ID, "blk_") || !uuidRE.MatchString(b.CustomerID) || deref(b.ExternalCustomerID) != "user_1" ||
			b.OriginalAmount != 5000 || b.RemainingAmount != 5000 || b.Priority != 10 ||
			deref(b.ExpiresAt) != "2026-05-01T14:30:00.123Z" || b.Source != "topup" || deref(b.Reason) != "starter pack" ||
			b.PricePaid != 499 || deref(b.Currency) != "USD" || deref(b.ExternalPaymentID) != "pi_1" || b.Metadata["order"] != "o1" ||
			b.CreatedAt != "2026-04-13T14:00:00.000Z" {
			t.Errorf("POST /v1/topup/grant = %s; want every field echoed, times in UTC with milliseconds, source topup", r.body)
		}
		// The grant created its customer.
		var c customerResp
		ts.get(t, ext("user_1", "")).want(t, http.StatusOK).decode(t, &c)
		if c.ID != b.CustomerID {
			t.Errorf("GET customer user_1 id = %s, want the grant's customer_id %s", c.ID, b.CustomerID)
		}
		// The ledger entry references the block.
		e := ts.ledger(t, "user_1")
		if len(e) != 1 || e[0].Type != "grant" || e[0].Delta != 5000 || e[0].BalanceAfter != 5000 || deref(e[0].BlockID) != b.ID ||
			deref(e[0].ReferenceType) != "grant" || deref(e[0].ReferenceID) != b.ID || e[0].IdempotencyKey == nil {
			t.Errorf("ledger after a grant = %+v, want one grant entry of 5000 referencing grant %s", e, b.ID)
		}

		// Defaults: priority 0, no expiry, price 0, source grant on the
		// customer-scoped endpoints.
		for _, path := range []string{"/v1/customers/" + c.ID + "/credits/grant", "/v1/customers/user_1/credits/grant", ext("user_1", "/credits/grant")} {
			m := ts.post(t, path, obj{"credits": 1}).want(t, http.StatusCreated).object(t)
			if m["source"] != "grant" || m["priority"] == nil || jsonOf(t, m["priority"]) != "0" || m["expires_at"] != nil ||
				jsonOf(t, m["price_paid"]) != "0" || m["customer_id"] != c.ID {
				t.Errorf("POST %s = %v, want source grant, priority 0, expires_at null, price_paid 0 for customer %s", path, m, c.ID)
			}
		}
		if got := ts.balance(t, "user_1"); got.Balance != 5003 || got.LifetimeEarned != 5003 {
			t.Errorf("balance after 4 grants = %d (lifetime %d), want 5003", got.Balance, got.LifetimeEarned)
		}
		ts.post(t, "/v1/topup/grant", obj{"customer_id": c.ID, "credits": 1, "source": "promo"}).want(t, http.StatusCreated)
		ts.checkLedgerSum(t, "user_1")
	})
}

func TestGrantCreatesCustomer(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.post(t, ext("new:1", "/credits/grant"), obj{"credits": 10}).want(t, http.StatusCreated)
		if b := ts.balance(t, "new:1"); b.Balance != 10 {
			t.Errorf("balance of the customer a grant created = %d, want 10", b.Balance)
		}
		// A customer UUID that does not exist is 404, on both endpoints, and
		// creates nothing.
		snap := ts.snapshot(t)
		unknown := "0190f0f0-0000-7000-8000-000000000000"
		ts.post(t, "/v1/customers/"+unknown+"/credits/grant", obj{"credits": 10}).wantProblem(t, http.StatusNotFound, "not-found")
		ts.post(t, "/v1/topup/grant", obj{"customer_id": unknown, "credits": 10}).wantProblem(t, http.StatusNotFound, "not-found")
		ts.post(t, "/v1/customers/nobody/credits/grant", obj{"credits": 10}).wantProblem(t, http.StatusNotFound, "not-found")
		snap.unchanged(t, "grants to unknown customer ids")
	})
}

func TestGrantInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.grant(t, "u", 100, nil)
		for _, tc := range []struct {
			name  string
			body  obj
			field string
		}{
			{"credits missing", obj{"credits": drop}, "credits"},
			{"credits null", obj{"credits": nil}, "credits"},
			{"credits fractional", obj{"credits": 1.5}, "credits"},
			{"credits string", obj{"credits": "100"}, "credits"},
			{"credits negative", obj{"credits": -5}, "credits"},
			{"credits zero", obj{"credits": 0}, "credits"},
			{"credits 2^63", obj{"credits": json9223372036854775808}, "credits"},
			{"credits exponent", obj{"credits": rawJSON("1e3")}, "credits"},
			{"priority 101", obj{"priority": 101}, "priority"},
			{"priority -1", obj{"priority": -1}, "priority"},
			{"priority fractional", obj{"priority": 1.5}, "priority"},
			{"priority 2^63", obj{"priority": json9223372036854775808}, "priority"},
			{"expires_at past", obj{"expires_at": at(-time.Second)}, "expires_at"},
			{"expires_at now", obj{"expires_at": at(0)}, "expires_at"},
			{"expires_at date only", obj{"expires_at": "2027-01-01"}, "expires_at"},
			{"expires_at no offset", obj{"expires_at": "2027-01-01T00:00:00"}, "expires_at"},
			{"expires_at words", obj{"expires_at": "tomorrow"}, "expires_at"},
			{"expires_at number", obj{"expires_at": 1893456000}, "expires_at"},
			{"expires_at empty", obj{"expires_at": ""}, "expires_at"},
			{"currency 17 chars", obj{"currency": strings.Repeat("c", 17)}, "currency"},
			{"currency number", obj{"currency": 840}, "currency"},
			{"price_paid negative", obj{"price_paid": -1}, "price_paid"},
			{"price_paid fractional", obj{"price_paid": 4.99}, "price_paid"},
			{"price_paid string", obj{"price_paid": "499"}, "price_paid"},
			{"price_paid 2^63", obj{"price_paid": json9223372036854775808}, "price_paid"},
			{"metadata array", obj{"metadata": []int{1}}, "metadata"},
			{"metadata string", obj{"metadata": "x"}, "metadata"},
			{"reason number", obj{"reason": 1}, "reason"},
			{"source too long", obj{"source": strings.Repeat("s", 257)}, "source"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, path := range []string{"/v1/topup/grant", "/v1/customers/u/credits/grant", ext("u", "/credits/grant"), ext("other", "/credits/grant")} {
					body := obj{"credits": 10}
					if path == "/v1/topup/grant" {
						body["external_customer_id"] = "u"
					}
					for k, v := range tc.body {
						body[k] = v
						if v == drop {
							delete(body, k)
						}
					}
					snap := ts.snapshot(t)
					ts.post(t, path, body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
					snap.unchanged(t, "POST "+path+" with "+tc.name)
				}
			})
		}
		t.Run("customer ids", func(t *testing.T) {
			snap := ts.snapshot(t)
			for _, body := range []obj{
				{"credits": 10},
				{"credits": 10, "customer_id": "", "external_customer_id": ""},
				{"credits": 10, "customer_id": ts.balance(t, "u").CustomerID, "external_customer_id": "u"},
				{"credits": 10, "external_customer_id": 5},
				{"credits": 10, "external_customer_id": strings.Repeat("x", 257)},
			} {
				p := ts.post(t, "/v1/topup/grant", body).wantProblem(t, http.StatusBadRequest, "invalid-request")
				if len(p.Errors) == 0 || (p.Errors[0].Field != "customer_id" && p.Errors[0].Field != "external_customer_id") {
					t.Errorf("POST /v1/topup/grant %v errors = %+v, want customer_id or external_customer_id named", body, p.Errors)
				}
			}
			snap.unchanged(t, "grants naming no customer, or two")
		})
		t.Run("limits accepted", func(t *testing.T) {
			ts.grant(t, "u", 1, obj{"priority": 100, "currency": strings.Repeat("c", 16), "expires_at": at(time.Millisecond)})
			ts.grant(t, "u", 1, obj{"priority": 0, "currency": "mc", "price_paid": 0, "metadata": nil, "expires_at": nil})
		})
	})
}

// TestGrantOverflow: a grant that would push the balance past int64 is a 400
// naming credits, and leaves the balance as it was.
func TestGrantOverflow(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.grant(t, "u", 1<<62, nil)
		ts.grant(t, "u", 1<<62-1, nil) // the balance is now the largest int64
		snap := ts.snapshot(t)
		ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "u", "credits": 1}).wantProblem(t, http.StatusBadRequest, "invalid-request", "credits")
		snap.unchanged(t, "a grant overflowing the balance")
		if b := ts.balance(t, "u"); b.Balance != 1<<63-1 || b.EffectiveBalance != 1<<63-1 {
			t.Errorf("balance = %d (effective %d), want %d", b.Balance, b.EffectiveBalance, int64(1<<63-1))
		}
		// Spent to zero, the lifetime total still cannot grow past int64.
		ts.createMetric(t, "m", perUnit(1))
		ts.usage(t, "u", "m", 1<<63-1).want(t, http.StatusOK)
		snap = ts.snapshot(t)
		ts.post(t, ext("u", "/credits/grant"), obj{"credits": 1}).wantProblem(t, http.StatusBadRequest, "invalid-request", "credits")
		snap.unchanged(t, "a grant overflowing the lifetime total")
	})
}

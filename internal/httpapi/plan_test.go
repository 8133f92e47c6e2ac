package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type planResp struct {
	ID                 string         `json:"id"`
	Key                string         `json:"key"`
	Name               string         `json:"name"`
	Price              int64          `json:"price"`
	Credits            int64          `json:"credits"`
	Priority           int            `json:"priority"`
	DurationSeconds    *int64         `json:"duration_seconds"`
	PayFromMaxPriority int            `json:"pay_from_max_priority"`
	Metadata           map[string]any `json:"metadata"`
	Active             bool           `json:"active"`
	CreatedAt          string         `json:"created_at"`
}

type debitResp struct {
	BlockID string `json:"block_id"`
	Amount  int64  `json:"amount"`
}

type purchaseResp struct {
	ID                 string         `json:"id"`
	CustomerID         string         `json:"customer_id"`
	ExternalCustomerID *string        `json:"external_customer_id"`
	PlanKey            string         `json:"plan_key"`
	OrderID            string         `json:"order_id"`
	Price              int64          `json:"price"`
	Credits            int64          `json:"credits"`
	Block              blockResp      `json:"block"`
	Debits             []debitResp    `json:"debits"`
	BalanceAfter       int64          `json:"balance_after"`
	EffectiveBalance   int64          `json:"effective_balance"`
	Metadata           map[string]any `json:"metadata"`
	Duplicate          bool           `json:"duplicate"`
	CreatedAt          string         `json:"created_at"`
}

// createPlan creates plan key: price and credits, with extra members.
func (ts *testServer) createPlan(t *testing.T, key string, price, credits int64, extra obj) planResp {
	t.Helper()
	body := obj{"key": key, "name": "Plan " + key, "price": price, "credits": credits}
	for k, v := range extra {
		body[k] = v
	}
	var p planResp
	ts.post(t, "/v1/plans", body).want(t, http.StatusCreated).decode(t, &p)
	return p
}

// buy buys plan for order on the external-id path, with a fresh key.
func (ts *testServer) buy(t *testing.T, externalID, plan, order string) resp {
	t.Helper()
	return ts.post(t, ext(externalID, "/plan-purchases"), obj{"plan_key": plan, "order_id": order})
}

// listAll reads every page of the list at path, whose query sets the limit.
func listAll[T any](t *testing.T, ts *testServer, path string) []T {
	t.Helper()
	var all []T
	for next := path; ; {
		var page listResp[T]
		ts.get(t, next).want(t, http.StatusOK).decode(t, &page)
		all = append(all, page.Data...)
		if !page.Pagination.HasMore {
			return all
		}
		next = path + "&cursor=" + url.QueryEscape(deref(page.Pagination.NextCursor))
	}
}

func (r resp) purchase(t *testing.T) purchaseResp {
	t.Helper()
	var p purchaseResp
	r.decode(t, &p)
	return p
}

func TestPlan(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		r := ts.postKey(t, "/v1/plans", "plan-1hr", obj{"key": "1hr", "name": "One hour", "price": 100000, "credits": 50000,
			"priority": 20, "duration_seconds": 3600, "pay_from_max_priority": 5, "metadata": obj{"tier": "a"}}).want(t, http.StatusCreated)
		var p planResp
		r.decode(t, &p)
		if !strings.HasPrefix(p.ID, "pln_") || p.Key != "1hr" || p.Name != "One hour" || p.Price != 100000 || p.Credits != 50000 ||
			p.Priority != 20 || deref(p.DurationSeconds) != 3600 || p.PayFromMaxPriority != 5 || p.Metadata["tier"] != "a" ||
			!p.Active || p.CreatedAt != "2026-04-13T14:00:00.000Z" {
			t.Errorf("POST /v1/plans = %s, want every field echoed, active", r.body)
		}
		// A replay answers the stored plan; the key is taken otherwise.
		rep := ts.postKey(t, "/v1/plans", "plan-1hr", obj{"key": "1hr"}).want(t, http.StatusCreated)
		if rep.header.Get("X-Idempotent-Replayed") != "true" || !bytes.Equal(rep.body, r.body) {
			t.Errorf("replayed POST /v1/plans = %s (replayed %q), want the first answer", rep.body, rep.header.Get("X-Idempotent-Replayed"))
		}
		snap := ts.snapshot(t)
		r = ts.post(t, "/v1/plans", obj{"key": "1hr", "name": "again", "price": 1, "credits": 1})
		r.wantProblem(t, http.StatusConflict, "plan-exists")
		if m := r.object(t); m["plan_id"] != p.ID || m["plan_key"] != "1hr" {
			t.Errorf("plan-exists problem = %s, want plan_id %s and plan_key 1hr", r.body, p.ID)
		}
		snap.unchanged(t, "a plan whose key is taken")

		// Defaults: priority 10, no expiry, paid from priority 0, metadata {}.
		m := ts.post(t, "/v1/plans", obj{"key": "free", "name": "Free", "price": 0, "credits": 1, "duration_seconds": nil}).
			want(t, http.StatusCreated).object(t)
		if jsonOf(t, m["priority"]) != "10" || m["duration_seconds"] != nil || jsonOf(t, m["pay_from_max_priority"]) != "0" ||
			jsonOf(t, m["metadata"]) != "{}" || m["active"] != true {
			t.Errorf("POST /v1/plans with defaults = %v, want priority 10, duration_seconds null, pay_from_max_priority 0, metadata {}", m)
		}
		for _, k := range []string{"id", "key", "name", "price", "credits", "priority", "duration_seconds", "pay_from_max_priority", "metadata", "active", "created_at"} {
			if _, ok := m[k]; !ok {
				t.Errorf("plan object lacks %q: %v", k, m)
			}
		}

		var got planResp
		ts.get(t, "/v1/plans/1hr").want(t, http.StatusOK).decode(t, &got)
		if jsonOf(t, got) != jsonOf(t, p) {
			t.Errorf("GET /v1/plans/1hr = %+v, want %+v", got, p)
		}
		ts.get(t, "/v1/plans/nope").wantProblem(t, http.StatusNotFound, "not-found")

		// The list, in creation order, one page at a time.
		ts.createPlan(t, "third", 5, 5, nil)
		var keys []string
		for _, p := range listAll[planResp](t, ts, "/v1/plans?limit=2") {
			keys = append(keys, p.Key)
		}
		if want := []string{"1hr", "free", "third"}; !slices.Equal(keys, want) {
			t.Errorf("GET /v1/plans keys = %v, want %v", keys, want)
		}

		// Archive: 200 with active false, again the same, and it reads so.
		for range 2 {
			var a planResp
			ts.post(t, "/v1/plans/1hr/archive", nil).want(t, http.StatusOK).decode(t, &a)
			if a.Active || a.ID != p.ID || a.Price != p.Price {
				t.Errorf("POST /v1/plans/1hr/archive = %+v, want the plan with active false", a)
			}
		}
		ts.get(t, "/v1/plans/1hr").want(t, http.StatusOK).decode(t, &got)
		if got.Active {
			t.Errorf("GET /v1/plans/1hr after archive: active true")
		}
		ts.post(t, "/v1/plans/nope/archive", nil).wantProblem(t, http.StatusNotFound, "not-found")
		ts.post(t, "/v1/plans/"+strings.Repeat("k", 257)+"/archive", nil).wantProblem(t, http.StatusBadRequest, "invalid-request", "key")
		ts.get(t, "/v1/plans/"+strings.Repeat("k", 257)).wantProblem(t, http.StatusBadRequest, "invalid-request", "key")
		// Plans belong to their environment.
		ts.do(t, req{method: http.MethodGet, path: "/v1/plans/free", apiKey: ts.liveKey}).wantProblem(t, http.StatusNotFound, "not-found")
	})
}

func TestPlanInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		for _, tc := range []struct {
			name  string
			body  obj
			field string
		}{
			{"key missing", obj{"key": drop}, "key"},
			{"key 257 chars", obj{"key": strings.Repeat("k", 257)}, "key"},
			{"key 129 chars", obj{"key": strings.Repeat("k", 129)}, "key"},
			{"key space", obj{"key": "a b"}, "key"},
			{"key control", obj{"key": "a\x01b"}, "key"},
			{"name missing", obj{"name": drop}, "name"},
			{"name empty", obj{"name": ""}, "name"},
			{"name 257 chars", obj{"name": strings.Repeat("n", 257)}, "name"},
			{"name NUL", obj{"name": "a\x00b"}, "name"},
			{"price missing", obj{"price": drop}, "price"},
			{"price null", obj{"price": nil}, "price"},
			{"price negative", obj{"price": -1}, "price"},
			{"price fractional", obj{"price": 1.5}, "price"},
			{"price 2^63", obj{"price": json9223372036854775808}, "price"},
			{"credits missing", obj{"credits": drop}, "credits"},
			{"credits 0", obj{"credits": 0}, "credits"},
			{"priority -1", obj{"priority": -1}, "priority"},
			{"priority 101", obj{"priority": 101}, "priority"},
			{"priority 2^63", obj{"priority": json9223372036854775808}, "priority"},
			{"pay_from_max_priority -1", obj{"pay_from_max_priority": -1}, "pay_from_max_priority"},
			{"pay_from_max_priority 101", obj{"pay_from_max_priority": 101}, "pay_from_max_priority"},
			{"duration 0", obj{"duration_seconds": 0}, "duration_seconds"},
			{"duration 59", obj{"duration_seconds": 59}, "duration_seconds"},
			{"duration -60", obj{"duration_seconds": -60}, "duration_seconds"},
			{"duration over 10 years", obj{"duration_seconds": 315_360_001}, "duration_seconds"},
			{"metadata array", obj{"metadata": []int{1}}, "metadata"},
			{"metadata over 16 KiB", obj{"metadata": obj{"x": strings.Repeat("m", 16<<10)}}, "metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := obj{"key": "p", "name": "P", "price": 100, "credits": 10}
				for k, v := range tc.body {
					body[k] = v
					if v == drop {
						delete(body, k)
					}
				}
				snap := ts.snapshot(t)
				ts.post(t, "/v1/plans", body).wantProblem(t, http.StatusBadRequest, "invalid-request", tc.field)
				snap.unchanged(t, "POST /v1/plans with "+tc.name)
			})
		}
		t.Run("every field at once", func(t *testing.T) {
			snap := ts.snapshot(t)
			p := ts.post(t, "/v1/plans", obj{"key": "", "credits": 0, "duration_seconds": 0, "priority": 101}).
				wantProblem(t, http.StatusBadRequest, "invalid-request", "key", "name", "price", "credits", "duration_seconds", "priority")
			if len(p.Errors) != 6 {
				t.Errorf("errors = %+v, want each of the 6 fields named once", p.Errors)
			}
			ts.post(t, ext("u", "/plan-purchases"), obj{"order_id": strings.Repeat("o", 257)}).
				wantProblem(t, http.StatusBadRequest, "invalid-request", "plan_key", "order_id")
			snap.unchanged(t, "requests with many invalid fields")
		})
		t.Run("limits accepted", func(t *testing.T) {
			ts.createPlan(t, strings.Repeat("k", 128), 0, 1, obj{"name": strings.Repeat("n", 256), "priority": 0, "pay_from_max_priority": 100,
				"duration_seconds": 60})
			ts.createPlan(t, "long", 1<<62, 1<<62, obj{"priority": 100, "pay_from_max_priority": 0, "duration_seconds": 315_360_000})
		})
	})
}

func TestPurchase(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createPlan(t, "1hr", 100000, 50000, obj{"duration_seconds": 3600})
		wallet := ts.grant(t, "u", 500000, obj{"metadata": obj{"source": "wallet_recharge"}})
		r := ts.postKey(t, ext("u", "/plan-purchases"), "buy-1", obj{"plan_key": "1hr", "order_id": "o1", "metadata": obj{"cart": "c1"}}).
			want(t, http.StatusCreated)
		p := r.purchase(t)
		b := p.Block
		if !strings.HasPrefix(p.ID, "pur_") || p.CustomerID != wallet.CustomerID || deref(p.ExternalCustomerID) != "u" || p.PlanKey != "1hr" ||
			p.OrderID != "o1" || p.Price != 100000 || p.Credits != 50000 || p.BalanceAfter != 450000 || p.EffectiveBalance != 450000 ||
			p.Metadata["cart"] != "c1" || p.Duplicate || p.CreatedAt != "2026-04-13T14:00:00.000Z" {
			t.Errorf("purchase = %s; want pur_…, the plan's price and credits, balance 450000, metadata echoed, not duplicate", r.body)
		}
		if !strings.HasPrefix(b.ID, "blk_") || b.CustomerID != p.CustomerID || b.Source != "plan" || b.Priority != 10 ||
			b.OriginalAmount != 50000 || b.RemainingAmount != 50000 || deref(b.ExpiresAt) != "2026-04-13T15:00:00.000Z" ||
			b.CreatedAt != p.CreatedAt {
			t.Errorf("purchase block = %+v; want a plan block of 50000 at priority 10 expiring an hour after the purchase", b)
		}
		if !slices.Equal(p.Debits, []debitResp{{wallet.ID, 100000}}) {
			t.Errorf("purchase debits = %+v, want 100000 from the wallet %s", p.Debits, wallet.ID)
		}
		if r.header.Get("X-Idempotent-Replayed") != "" {
			t.Errorf("first purchase X-Idempotent-Replayed = %q, want none", r.header.Get("X-Idempotent-Replayed"))
		}

		// The ledger: a purchase debit and a grant, both referencing it.
		var mine []entryResp
		for _, e := range ts.ledger(t, "u") {
			if deref(e.ReferenceType) == "plan_purchase" {
				if deref(e.ReferenceID) != p.ID || deref(e.IdempotencyKey) != "buy-1" || e.Metadata["cart"] != "c1" {
					t.Errorf("ledger entry %+v, want it to reference %s with key buy-1 and show the purchase's metadata", e, p.ID)
				}
				mine = append(mine, e)
			}
		}
		slices.SortFunc(mine, func(a, b entryResp) int { return strings.Compare(a.Type, b.Type) })
		if len(mine) != 2 || mine[0].Type != "grant" || mine[0].Delta != 50000 || deref(mine[0].BlockID) != b.ID ||
			mine[1].Type != "purchase" || mine[1].Delta != -100000 || deref(mine[1].BlockID) != wallet.ID {
			t.Errorf("purchase ledger entries = %+v, want a grant of 50000 to %s and a purchase of -100000 from %s", mine, b.ID, wallet.ID)
		}

		// The replay of its key: the stored 201, now marked duplicate.
		rep := ts.postKey(t, ext("u", "/plan-purchases"), "buy-1", obj{"plan_key": "other", "order_id": "changed"}).want(t, http.StatusCreated)
		if rep.header.Get("X-Idempotent-Replayed") != "true" || !rep.purchase(t).Duplicate ||
			string(bytes.Replace(rep.body, []byte(`"duplicate":true`), []byte(`"duplicate":false`), 1)) != string(r.body) {
			t.Errorf("replayed purchase = %s (replayed %q), want the stored answer with duplicate true", rep.body, rep.header.Get("X-Idempotent-Replayed"))
		}

		// The next plan is paid from the wallet only: the unexpired plan
		// block (priority 10) burns first for usage, never for a plan.
		p2 := ts.post(t, "/v1/customers/"+p.CustomerID+"/plan-purchases", obj{"plan_key": "1hr", "order_id": "o2"}).want(t, http.StatusCreated).purchase(t)
		if !slices.Equal(p2.Debits, []debitResp{{wallet.ID, 100000}}) || p2.BalanceAfter != 400000 {
			t.Errorf("second purchase debits = %+v, balance_after %d; want 100000 from the wallet only, 400000", p2.Debits, p2.BalanceAfter)
		}
		bal := ts.balance(t, "u")
		for _, blk := range bal.Blocks {
			if blk.ID == b.ID && blk.RemainingAmount != 50000 {
				t.Errorf("first plan block remaining = %d after the second purchase, want 50000", blk.RemainingAmount)
			}
		}
		// The lenient {customer_id} path takes an external id too.
		ts.post(t, "/v1/customers/u/plan-purchases", obj{"plan_key": "1hr", "order_id": "o3"}).want(t, http.StatusCreated)

		// A plan that may be paid from plan credits takes them in burn order.
		ts.createPlan(t, "upgrade", 60000, 1000, obj{"pay_from_max_priority": 10})
		up := ts.buy(t, "u", "upgrade", "o4").want(t, http.StatusCreated).purchase(t)
		if len(up.Debits) != 2 || up.Debits[0].BlockID != b.ID || up.Debits[0].Amount != 50000 || up.Debits[1].Amount != 10000 {
			t.Errorf("upgrade debits = %+v, want 50000 from the first plan block %s then 10000 from the next", up.Debits, b.ID)
		}
		// A free plan debits nothing.
		ts.createPlan(t, "gift", 0, 7, nil)
		if g := ts.buy(t, "u", "gift", "o5").want(t, http.StatusCreated).purchase(t); g.Debits == nil || len(g.Debits) != 0 {
			t.Errorf("free plan debits = %v, want []", g.Debits)
		}
		ts.checkLedgerSum(t, "u")
	})
}

func TestPurchaseInsufficient(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createPlan(t, "big", 100000, 50000, nil)
		ts.grant(t, "u", 30000, nil)
		ts.grant(t, "u", 100000, obj{"priority": 10})
		snap := ts.snapshot(t)
		for _, path := range []string{ext("u", "/plan-purchases"), "/v1/customers/u/plan-purchases"} {
			for range 2 { // a refusal is not stored: the same key runs again
				p := ts.postKey(t, path, "short", obj{"plan_key": "big", "order_id": "o1"}).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
				if deref(p.Required) != 100000 || deref(p.Available) != 30000 {
					t.Errorf("POST %s: required %d, available %d; want 100000 and the payable 30000 (not the balance 130000)", path, deref(p.Required), deref(p.Available))
				}
			}
		}
		// An unknown external id is not created by a refused purchase.
		p := ts.buy(t, "ghost", "big", "o1").wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		if deref(p.Available) != 0 {
			t.Errorf("purchase by a new customer: available %d, want 0", deref(p.Available))
		}
		snap.unchanged(t, "refused purchases")
		ts.get(t, ext("ghost", "")).wantProblem(t, http.StatusNotFound, "not-found")

		// Unknown customers and plans.
		ts.post(t, "/v1/customers/0190f0f0-0000-7000-8000-000000000000/plan-purchases", obj{"plan_key": "big", "order_id": "o1"}).
			wantProblem(t, http.StatusNotFound, "not-found")
		ts.post(t, "/v1/customers/ghost/plan-purchases", obj{"plan_key": "big", "order_id": "o1"}).wantProblem(t, http.StatusNotFound, "not-found")
		ts.buy(t, "u", "nope", "o1").wantProblem(t, http.StatusNotFound, "not-found")
		snap.unchanged(t, "purchases for unknown customers and plans")

		// The external-id path creates its customer when the purchase goes
		// through: a free plan.
		ts.createPlan(t, "trial", 0, 5000, obj{"duration_seconds": 86400})
		np := ts.buy(t, "newbie", "trial", "t1").want(t, http.StatusCreated).purchase(t)
		if b := ts.balance(t, "newbie"); b.CustomerID != np.CustomerID || b.Balance != 5000 {
			t.Errorf("new customer's balance = %+v, want 5000 for %s", b, np.CustomerID)
		}
	})
}

func TestPurchaseInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createPlan(t, "p", 0, 1, nil)
		ts.grant(t, "u", 10, nil)
		for _, tc := range []struct {
			name  string
			body  obj
			field string
		}{
			{"plan_key missing", obj{"plan_key": drop}, "plan_key"},
			{"plan_key 257 chars", obj{"plan_key": strings.Repeat("k", 257)}, "plan_key"},
			{"order_id missing", obj{"order_id": drop}, "order_id"},
			{"order_id empty", obj{"order_id": ""}, "order_id"},
			{"order_id 257 chars", obj{"order_id": strings.Repeat("o", 257)}, "order_id"},
			{"order_id newline", obj{"order_id": "o\n1"}, "order_id"},
			{"order_id invalid UTF-8", obj{"order_id": rawJSON(`"o\ud800"`)}, "order_id"},
			{"metadata string", obj{"metadata": "x"}, "metadata"},
			{"metadata over 16 KiB", obj{"metadata": obj{"x": strings.Repeat("m", 16<<10)}}, "metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, path := range []string{ext("u", "/plan-purchases"), "/v1/customers/u/plan-purchases", ext("other", "/plan-purchases")} {
					body := obj{"plan_key": "p", "order_id": "o1"}
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
		ts.post(t, ext(strings.Repeat("x", 257), "/plan-purchases"), obj{"plan_key": "p", "order_id": "o"}).
			wantProblem(t, http.StatusBadRequest, "invalid-request", "external_id")
	})
}

// TestPurchaseRace: retries of one order racing under different
// Idempotency-Keys make one purchase; the others answer it as a duplicate.
func TestPurchaseRace(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createPlan(t, "1hr", 100000, 50000, obj{"duration_seconds": 3600})
		ts.createPlan(t, "24hr", 300000, 200000, obj{"duration_seconds": 86400})
		ts.grant(t, "u", 500000, nil)
		const n = 20
		out := race(n, func(i int) resp {
			return ts.postKey(t, ext("u", "/plan-purchases"), fmt.Sprintf("race-%d", i), obj{"plan_key": "1hr", "order_id": "order_race"})
		})
		first, ids := -1, map[string]bool{}
		for i, r := range out {
			switch r.status {
			case http.StatusCreated:
				if first >= 0 {
					t.Errorf("purchases %d and %d both answered 201", first, i)
				}
				first = i
				if r.purchase(t).Duplicate {
					t.Errorf("the 201 purchase says duplicate: %s", r.body)
				}
			case http.StatusOK:
				if !r.purchase(t).Duplicate {
					t.Errorf("purchase %d answered 200 without duplicate: %s", i, r.body)
				}
			default:
				t.Fatalf("purchase %d: %s status = %d, want 201 or 200; body: %s", i, r.desc, r.status, r.body)
			}
			ids[r.purchase(t).ID] = true
		}
		if first < 0 || len(ids) != 1 {
			t.Fatalf("racing retries: 201 from #%d, purchase ids %v; want one 201 and one purchase", first, ids)
		}
		bal := ts.balance(t, "u")
		plans := 0
		for _, b := range bal.Blocks {
			if b.Source == "plan" {
				plans++
			}
		}
		if bal.Balance != 450000 || plans != 1 {
			t.Errorf("after the race: balance %d with %d plan blocks, want 450000 and 1", bal.Balance, plans)
		}
		var debits, grants int
		for _, e := range ts.ledger(t, "u") {
			switch {
			case e.Type == "purchase":
				debits++
			case e.Type == "grant" && deref(e.ReferenceType) == "plan_purchase":
				grants++
			}
		}
		if debits != 1 || grants != 1 {
			t.Errorf("ledger after the race: %d purchase and %d plan grant entries, want 1 and 1", debits, grants)
		}
		// The winner's key replays its 201; a loser's key runs again and
		// finds the order.
		rep := ts.postKey(t, ext("u", "/plan-purchases"), fmt.Sprintf("race-%d", first), obj{"plan_key": "1hr", "order_id": "order_race"}).
			want(t, http.StatusCreated)
		if rep.header.Get("X-Idempotent-Replayed") != "true" || !rep.purchase(t).Duplicate {
			t.Errorf("replay of the winning key = %s (replayed %q), want 201 duplicate true replayed", rep.body, rep.header.Get("X-Idempotent-Replayed"))
		}
		loser := (first + 1) % n
		dup := ts.postKey(t, ext("u", "/plan-purchases"), fmt.Sprintf("race-%d", loser), obj{"plan_key": "1hr", "order_id": "order_race"}).
			want(t, http.StatusOK)
		if !dup.purchase(t).Duplicate || dup.header.Get("X-Idempotent-Replayed") != "" {
			t.Errorf("retry under a losing key = %s, want 200 duplicate, not a replay", dup.body)
		}

		// The same order id with another plan is a conflict.
		snap := ts.snapshot(t)
		r := ts.buy(t, "u", "24hr", "order_race")
		r.wantProblem(t, http.StatusConflict, "order-exists")
		if m := r.object(t); m["purchase_id"] != rep.purchase(t).ID || m["plan_key"] != "1hr" {
			t.Errorf("order-exists problem = %s, want purchase_id and plan_key 1hr", r.body)
		}
		snap.unchanged(t, "an order bought again with another plan")
		// Order ids are per customer.
		ts.grant(t, "v", 100000, nil)
		ts.buy(t, "v", "1hr", "order_race").want(t, http.StatusCreated)
	})
}

func TestPurchaseArchivedPlan(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createPlan(t, "1hr", 1000, 500, nil)
		ts.grant(t, "u", 10000, nil)
		bought := ts.buy(t, "u", "1hr", "o1").want(t, http.StatusCreated).purchase(t)
		ts.post(t, "/v1/plans/1hr/archive", nil).want(t, http.StatusOK)
		snap := ts.snapshot(t)
		ts.buy(t, "u", "1hr", "o2").wantProblem(t, http.StatusConflict, "plan-archived")
		snap.unchanged(t, "a purchase of an archived plan")
		// The order is looked up before the plan: a bought order still
		// answers its purchase.
		dup := ts.buy(t, "u", "1hr", "o1").want(t, http.StatusOK).purchase(t)
		if !dup.Duplicate || dup.ID != bought.ID {
			t.Errorf("order o1 after its plan was archived = %+v, want the purchase %s as a duplicate", dup, bought.ID)
		}
	})
}

func TestPurchaseRead(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createPlan(t, "1hr", 1000, 500, obj{"duration_seconds": 3600})
		ts.createMetric(t, "m", perUnit(1))
		c := ts.createCustomer(t, "u")
		ts.grant(t, "u", 10000, nil)
		var bought []purchaseResp
		for i := range 3 {
			bought = append(bought, ts.buy(t, "u", "1hr", fmt.Sprintf("o%d", i)).want(t, http.StatusCreated).purchase(t))
		}
		ts.usage(t, "u", "m", 200).want(t, http.StatusOK) // burns from a plan block

		var got purchaseResp
		ts.get(t, "/v1/plan-purchases/"+bought[0].ID).want(t, http.StatusOK).decode(t, &got)
		if got.ID != bought[0].ID || got.OrderID != "o0" || got.CustomerID != c.ID || deref(got.ExternalCustomerID) != "u" || got.Duplicate ||
			got.Block.ID != bought[0].Block.ID || !slices.Equal(got.Debits, bought[0].Debits) || got.BalanceAfter != bought[0].BalanceAfter {
			t.Errorf("GET /v1/plan-purchases/%s = %+v, want %+v", bought[0].ID, got, bought[0])
		}
		// The block is answered as it is now; the balances as they were.
		spent := int64(0)
		for _, id := range []string{bought[0].ID, bought[1].ID, bought[2].ID} {
			ts.get(t, "/v1/plan-purchases/"+id).want(t, http.StatusOK).decode(t, &got)
			spent += 500 - got.Block.RemainingAmount
		}
		if spent != 200 {
			t.Errorf("plan blocks read through their purchases show %d spent, want the usage's 200", spent)
		}
		ts.get(t, "/v1/plan-purchases/pur_nope").wantProblem(t, http.StatusNotFound, "not-found")
		ts.do(t, req{method: http.MethodGet, path: "/v1/plan-purchases/" + bought[0].ID, apiKey: ts.liveKey}).
			wantProblem(t, http.StatusNotFound, "not-found")

		// The customer's purchases, newest first, one page at a time, on
		// every path form.
		for _, base := range []string{"/v1/customers/" + c.ID, "/v1/customers/u", "/v1/customer-by-external-id/u"} {
			var orders []string
			for _, p := range listAll[purchaseResp](t, ts, base+"/plan-purchases?limit=2") {
				orders = append(orders, p.OrderID)
			}
			if want := []string{"o2", "o1", "o0"}; !slices.Equal(orders, want) {
				t.Errorf("GET %s/plan-purchases orders = %v, want %v", base, orders, want)
			}
		}
		var empty listResp[purchaseResp]
		other := ts.createCustomer(t, "w")
		ts.get(t, "/v1/customers/"+other.ID+"/plan-purchases").want(t, http.StatusOK).decode(t, &empty)
		if empty.Data == nil || len(empty.Data) != 0 || empty.Pagination.HasMore {
			t.Errorf("purchases of a customer without any = %+v, want an empty list", empty)
		}
		ts.get(t, ext("ghost", "/plan-purchases")).wantProblem(t, http.StatusNotFound, "not-found")
		ts.get(t, ext("u", "/plan-purchases?limit=0")).wantProblem(t, http.StatusBadRequest, "invalid-request", "limit")
	})
}

package httpapi_test

import (
	b64 "encoding/base64"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBalance(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		wallet := ts.grant(t, "u", 300, obj{"reason": "wallet"})
		plan := ts.grant(t, "u", 200, obj{"priority": 10, "expires_at": at(30 * 24 * hour), "price_paid": 999, "currency": "EUR",
			"external_payment_id": "pi_9", "metadata": obj{"plan": "pro"}, "source": "plan"})

		m := ts.get(t, ext("u", "/credits")).want(t, http.StatusOK).object(t)
		for field, want := range map[string]string{"customer_id": `"` + wallet.CustomerID + `"`, "external_customer_id": `"u"`, "balance": "500",
			"reserved_balance": "0", "effective_balance": "500", "lifetime_earned": "500", "version": "2"} {
			if got := jsonOf(t, m[field]); got != want {
				t.Errorf("GET credits %s = %s, want %s", field, got, want)
			}
		}
		if _, ok := m["blocks"]; ok {
			t.Errorf("GET credits without include_blocks has blocks: %v", m["blocks"])
		}
		for _, q := range []string{"?include_blocks=false", "?include_blocks=0"} {
			if _, ok := ts.get(t, ext("u", "/credits"+q)).want(t, http.StatusOK).object(t)["blocks"]; ok {
				t.Errorf("GET credits%s has blocks", q)
			}
		}
		for _, q := range []string{"?include_blocks=maybe", "?include_blocks=yes"} {
			ts.get(t, ext("u", "/credits"+q)).wantProblem(t, http.StatusBadRequest, "invalid-request", "include_blocks")
		}

		b := ts.balance(t, "u")
		if len(b.Blocks) != 2 {
			t.Fatalf("GET credits?include_blocks=true blocks = %+v, want 2", b.Blocks)
		}
		if !reflect.DeepEqual(b.Blocks[0], plan) || !reflect.DeepEqual(b.Blocks[1], wallet) {
			t.Errorf("blocks = %+v, want the plan block (priority 10) %+v then the wallet %+v, every field as granted", b.Blocks, plan, wallet)
		}
		// The same through the lenient /v1/customers/{external id} path, encoded.
		var lenient balanceResp
		ts.get(t, "/v1/customers/u/credits?include_blocks=true").want(t, http.StatusOK).decode(t, &lenient)
		if lenient.CustomerID != b.CustomerID || lenient.Balance != 500 || len(lenient.Blocks) != 2 {
			t.Errorf("GET /v1/customers/u/credits = %+v, want the balance of u", lenient)
		}
		// A drained block is not live and is not listed.
		ts.createMetric(t, "m", perUnit(1))
		ts.usage(t, "u", "m", 200).want(t, http.StatusOK)
		if b := ts.balance(t, "u"); len(b.Blocks) != 1 || b.Blocks[0].ID != wallet.ID {
			t.Errorf("blocks after draining the plan block = %+v, want only the wallet", b.Blocks)
		}
	})
}

func base64(s string) string { return b64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestExpiry: a block past expires_at is neither counted nor spent at once,
// before any sweep; reads write nothing; the first write records the expiry
// before its own entries.
func TestExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		trial := ts.grant(t, "u", 1000, obj{"priority": 50, "expires_at": at(hour)})
		ts.grant(t, "u", 500, nil)

		ts.clock.Advance(hour - time.Millisecond)
		if b := ts.balance(t, "u"); b.Balance != 1500 {
			t.Fatalf("balance a millisecond before expiry = %d, want 1500", b.Balance)
		}
		ts.clock.Advance(time.Millisecond) // exactly expires_at: expired
		snap := ts.snapshot(t)
		b := ts.balance(t, "u")
		if b.Balance != 500 || b.EffectiveBalance != 500 || len(b.Blocks) != 1 || b.Blocks[0].ID == trial.ID {
			t.Errorf("balance at expiry = %d (effective %d), blocks %+v; want 500 and only the wallet", b.Balance, b.EffectiveBalance, b.Blocks)
		}
		var e struct {
			Allowed      bool  `json:"allowed"`
			Balance      int64 `json:"balance"`
			BalanceAfter int64 `json:"balance_after"`
		}
		ts.get(t, ext("u", "/entitlements/m?units=501")).want(t, http.StatusOK).decode(t, &e)
		if e.Allowed || e.Balance != 500 {
			t.Errorf("entitlement for 501 at expiry = %+v, want not allowed, balance 500", e)
		}
		ts.ledger(t, "u")
		snap.unchanged(t, "reads after expiry") // reads never write, not even the expiry

		p := ts.usage(t, "u", "m", 501).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		if deref(p.Available) != 500 {
			t.Errorf("402 available = %d, want 500 (the expired block is not spendable)", deref(p.Available))
		}
		snap.unchanged(t, "a refused usage after expiry")

		var u usageResp
		ts.usage(t, "u", "m", 100).want(t, http.StatusOK).decode(t, &u)
		entries := ts.ledger(t, "u")
		types := make([]string, len(entries))
		for i, en := range entries {
			types[i] = en.Type
		}
		if strings.Join(types, ",") != "usage,expire,grant,grant" {
			t.Fatalf("ledger types newest first = %v, want usage,expire,grant,grant", types)
		}
		exp := entries[1]
		if exp.Delta != -1000 || deref(exp.BlockID) != trial.ID || exp.BalanceAfter != 500 || exp.CreatedAt != entries[0].CreatedAt ||
			entries[0].BalanceAfter != 400 {
			t.Errorf("expire entry = %+v, usage entry %+v; want -1000 on %s leaving 500, then the usage leaving 400, at one time", exp, entries[0], trial.ID)
		}
		ts.checkLedgerSum(t, "u")
		// The next write finds nothing more to expire.
		ts.usage(t, "u", "m", 1).want(t, http.StatusOK)
		if n := len(ts.ledger(t, "u")); n != 5 {
			t.Errorf("ledger after another usage = %d entries, want 5", n)
		}
	})
}

// TestExpiryOnGrant: a grant is a write too, and records due expiries first.
func TestExpiryOnGrant(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.grant(t, "u", 10, obj{"expires_at": at(time.Minute)})
		ts.clock.Advance(2 * time.Minute)
		ts.grant(t, "u", 7, nil)
		e := ts.ledger(t, "u")
		if len(e) != 3 || e[0].Type != "grant" || e[1].Type != "expire" || e[1].Delta != -10 || e[0].BalanceAfter != 7 {
			t.Errorf("ledger = %+v, want grant 7 (balance 7), expire -10, grant 10, newest first", e)
		}
		ts.checkLedgerSum(t, "u")
	})
}

func TestLedger(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "u", 100, nil)
		for i := range 4 {
			ts.clock.Advance(time.Second)
			ts.usage(t, "u", "m", int64(i+1)).want(t, http.StatusOK)
		}
		ts.grant(t, "u", 50, obj{"priority": 1})
		ts.usage(t, "u", "m", 60).want(t, http.StatusOK) // two entries: 50 from the new block, 10 from the old

		all := ts.ledger(t, "u")
		if len(all) != 8 {
			t.Fatalf("ledger = %d entries, want 8", len(all))
		}
		if all[0].BalanceAfter != ts.balance(t, "u").Balance {
			t.Errorf("newest entry balance_after = %d, want the balance %d", all[0].BalanceAfter, ts.balance(t, "u").Balance)
		}
		for i := 1; i < len(all); i++ {
			if all[i-1].CreatedAt < all[i].CreatedAt || all[i-1].ID <= all[i].ID {
				t.Errorf("ledger entries %d and %d out of order: %+v, %+v (want newest first)", i-1, i, all[i-1], all[i])
			}
			if !strings.HasPrefix(all[i].ID, "txn_") {
				t.Errorf("entry id = %q, want txn_…", all[i].ID)
			}
		}
		ts.checkLedgerSum(t, "u")

		// Pages of 3 give the same entries.
		var paged []string
		path := ext("u", "/ledger?limit=3")
		for {
			var page listResp[entryResp]
			ts.get(t, path).want(t, http.StatusOK).decode(t, &page)
			for _, e := range page.Data {
				paged = append(paged, e.ID)
			}
			if !page.Pagination.HasMore {
				break
			}
			if len(page.Data) != 3 {
				t.Fatalf("GET %s = %d entries with has_more, want 3", path, len(page.Data))
			}
			path = ext("u", "/ledger?limit=3&cursor="+url.QueryEscape(*page.Pagination.NextCursor))
		}
		var want []string
		for _, e := range all {
			want = append(want, e.ID)
		}
		if !slices.Equal(paged, want) {
			t.Errorf("ledger in pages of 3 = %v, want %v", paged, want)
		}

		// ?type= filters, and pages within the filter.
		var grants listResp[entryResp]
		ts.get(t, ext("u", "/ledger?type=grant&limit=1")).want(t, http.StatusOK).decode(t, &grants)
		if len(grants.Data) != 1 || grants.Data[0].Delta != 50 || !grants.Pagination.HasMore {
			t.Fatalf("ledger?type=grant&limit=1 = %+v, want the 50 grant and more", grants)
		}
		ts.get(t, ext("u", "/ledger?type=grant&limit=1&cursor="+url.QueryEscape(*grants.Pagination.NextCursor))).want(t, http.StatusOK).decode(t, &grants)
		if len(grants.Data) != 1 || grants.Data[0].Delta != 100 || grants.Pagination.HasMore {
			t.Errorf("ledger?type=grant second page = %+v, want the 100 grant and no more", grants)
		}
		var usage listResp[entryResp]
		ts.get(t, "/v1/customers/u/ledger?type=usage").want(t, http.StatusOK).decode(t, &usage)
		if len(usage.Data) != 6 || slices.ContainsFunc(usage.Data, func(e entryResp) bool { return e.Type != "usage" }) {
			t.Errorf("ledger?type=usage = %d entries, want 6 usage entries", len(usage.Data))
		}
		var expire listResp[entryResp]
		ts.get(t, ext("u", "/ledger?type=expire")).want(t, http.StatusOK).decode(t, &expire)
		if expire.Data == nil || len(expire.Data) != 0 {
			t.Errorf("ledger?type=expire data = %v, want []", expire.Data)
		}

		for _, q := range []string{"type=bogus", "limit=0", "limit=501", "cursor=***", "cursor=" + base64("abc")} {
			field := strings.SplitN(q, "=", 2)[0]
			ts.get(t, ext("u", "/ledger?"+q)).wantProblem(t, http.StatusBadRequest, "invalid-request", field)
		}
		ts.get(t, ext("nobody", "/ledger")).wantProblem(t, http.StatusNotFound, "not-found")
	})
}

func TestEntitlement(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(30))
		ts.createMetric(t, "unpriced", nil)
		ts.grant(t, "u", 100, nil)
		snap := ts.snapshot(t)

		m := ts.get(t, ext("u", "/entitlements/m")).want(t, http.StatusOK).object(t)
		for field, want := range map[string]string{"allowed": "true", "external_customer_id": `"u"`, "billable_metric_key": `"m"`, "units": "1",
			"balance": "100", "reserved_balance": "0", "effective_balance": "100", "estimated_cost": "30", "balance_after": "70", "overage_policy": `"block"`} {
			if got := jsonOf(t, m[field]); got != want {
				t.Errorf("entitlement %s = %s, want %s", field, got, want)
			}
		}
		if _, ok := m["subscription_status"]; ok {
			t.Errorf("entitlement has subscription_status %v, want it absent without a subscription", m["subscription_status"])
		}
		var e struct {
			Allowed       bool  `json:"allowed"`
			EstimatedCost int64 `json:"estimated_cost"`
			BalanceAfter  int64 `json:"balance_after"`
		}
		ts.get(t, ext("u", "/entitlements/m?units=4")).want(t, http.StatusOK).decode(t, &e)
		if e.Allowed || e.EstimatedCost != 120 || e.BalanceAfter != -20 {
			t.Errorf("entitlement for 4 units = %+v, want denied, cost 120, balance_after -20", e)
		}
		ts.get(t, "/v1/customers/u/entitlements/m?units=3").want(t, http.StatusOK).decode(t, &e)
		if !e.Allowed || e.BalanceAfter != 10 {
			t.Errorf("entitlement for 3 units = %+v, want allowed, balance_after 10", e)
		}

		for _, tc := range []struct {
			path   string
			status int
			code   string
			field  string
		}{
			{ext("u", "/entitlements/m?units=0"), 400, "invalid-request", "units"},
			{ext("u", "/entitlements/m?units=-1"), 400, "invalid-request", "units"},
			{ext("u", "/entitlements/m?units=1.5"), 400, "invalid-request", "units"},
			{ext("u", "/entitlements/m?units=abc"), 400, "invalid-request", "units"},
			{ext("u", "/entitlements/m?units=9223372036854775808"), 400, "invalid-request", "units"},
			{ext("u", "/entitlements/m?units=9223372036854775807"), 400, "invalid-request", "units"}, // the price overflows
			{ext("nobody", "/entitlements/m"), 404, "not-found", ""},
			{"/v1/customers/0190f0f0-0000-7000-8000-000000000000/entitlements/m", 404, "not-found", ""},
			{ext("u", "/entitlements/nope"), 404, "not-found", ""},
			{ext("u", "/entitlements/unpriced"), 422, "no-metering-rule", ""},
		} {
			if tc.field != "" {
				ts.get(t, tc.path).wantProblem(t, tc.status, tc.code, tc.field)
			} else {
				ts.get(t, tc.path).wantProblem(t, tc.status, tc.code)
			}
		}
		snap.unchanged(t, "entitlement checks") // never writes
	})
}

package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

type reservationResp struct {
	ID                 string  `json:"id"`
	CustomerID         string  `json:"customer_id"`
	ExternalCustomerID *string `json:"external_customer_id"`
	BillableMetricKey  string  `json:"billable_metric_key"`
	EstimatedUnits     int64   `json:"estimated_units"`
	Amount             int64   `json:"amount"`
	Status             string  `json:"status"`
	ExpiresAt          string  `json:"expires_at"`
	CommittedAmount    *int64  `json:"committed_amount"`
	ReleasedAmount     *int64  `json:"released_amount"`
	CreatedAt          string  `json:"created_at"`
}

func (ts *testServer) reserve(t *testing.T, ext string, units, ttl int64) resp {
	t.Helper()
	body := obj{"external_customer_id": ext, "billable_metric_key": "gen", "estimated_units": units}
	if ttl > 0 {
		body["ttl_seconds"] = ttl
	}
	return ts.post(t, "/v1/reserve", body)
}

func TestReservationsOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "gen", perUnit(100))
		ts.grant(t, "ada", 10_000, nil)

		var r reservationResp
		ts.reserve(t, "ada", 30, 0).want(t, http.StatusCreated).decode(t, &r)
		if r.Amount != 3000 || r.Status != "active" || r.EstimatedUnits != 30 || r.BillableMetricKey != "gen" ||
			r.ExpiresAt != epoch.Add(300*time.Second).UTC().Format("2006-01-02T15:04:05.000Z") || r.CommittedAmount != nil {
			t.Errorf("reservation = %+v, want 3000 held for the default 300 s", r)
		}
		if b := ts.balance(t, "ada"); b.ReservedBalance != 3000 || b.EffectiveBalance != 7000 {
			t.Errorf("balance = %+v, want 3000 held", b)
		}
		p := ts.reserve(t, "ada", 71, 0).wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		if *p.Available != 7000 {
			t.Errorf("402 available = %d, want 7000", *p.Available)
		}

		var c reservationResp
		ts.post(t, "/v1/reserve/"+r.ID+"/commit", obj{"actual_units": 10}).want(t, http.StatusOK).decode(t, &c)
		if c.Status != "committed" || *c.CommittedAmount != 1000 || *c.ReleasedAmount != 2000 {
			t.Errorf("commit = %+v, want 1000 committed, 2000 given back", c)
		}
		ts.post(t, "/v1/reserve/"+r.ID+"/commit", obj{}).wantProblem(t, http.StatusConflict, "reservation-not-active")
		got := ts.post(t, "/v1/reserve/"+r.ID+"/release", nil)
		if got.status != http.StatusConflict || !strings.Contains(string(got.body), `"reservation_status":"committed"`) {
			t.Errorf("release after commit = %d %s, want 409 with reservation_status committed", got.status, got.body)
		}
		ts.get(t, "/v1/reserve/"+r.ID).want(t, http.StatusOK).decode(t, &c)
		if c.Status != "committed" {
			t.Errorf("GET after commit: status %s", c.Status)
		}

		// A short hold lapses: out of reserved_balance at once, expired.
		var short reservationResp
		ts.reserve(t, "ada", 10, 5).want(t, http.StatusCreated).decode(t, &short)
		ts.clock.Advance(6 * time.Second)
		if b := ts.balance(t, "ada"); b.ReservedBalance != 0 || b.Balance != 9000 {
			t.Errorf("after the TTL: %+v, want nothing held", b)
		}
		ts.get(t, "/v1/reserve/"+short.ID).want(t, http.StatusOK).decode(t, &short)
		if short.Status != "expired" {
			t.Errorf("a lapsed hold reads as %s, want expired", short.Status)
		}
		got = ts.post(t, "/v1/reserve/"+short.ID+"/commit", obj{})
		if got.status != http.StatusConflict || !strings.Contains(string(got.body), `"reservation_status":"expired"`) {
			t.Errorf("commit after expiry = %d %s", got.status, got.body)
		}

		var list struct {
			Data []reservationResp `json:"data"`
		}
		ts.get(t, "/v1/reservations?external_customer_id=ada").want(t, http.StatusOK).decode(t, &list)
		if len(list.Data) != 2 || list.Data[0].ID != short.ID || list.Data[1].ID != r.ID {
			t.Errorf("list = %+v, want the two reservations, newest first", list.Data)
		}
		ts.get(t, "/v1/reservations?status=committed").want(t, http.StatusOK).decode(t, &list)
		if len(list.Data) != 1 || list.Data[0].ID != r.ID {
			t.Errorf("committed list = %+v, want the first", list.Data)
		}
		ts.get(t, "/v1/reservations?status=held").wantProblem(t, http.StatusBadRequest, "invalid-request", "status")
		ts.get(t, "/v1/reserve/res_nope").wantProblem(t, http.StatusNotFound, "not-found")
		ts.post(t, "/v1/reserve/res_nope/commit", obj{}).wantProblem(t, http.StatusNotFound, "not-found")
		ts.post(t, "/v1/reserve", obj{"external_customer_id": "ada", "billable_metric_key": "gen", "estimated_units": 1, "ttl_seconds": 86401}).
			wantProblem(t, http.StatusBadRequest, "invalid-request", "ttl_seconds")
	})
}

// Usage answers explain where their credits came from, and the entitlement
// check explains where a usage of those units would take them from.
func TestDecisionsExplainThemselves(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "gen", perUnit(100))
		plan := ts.grant(t, "ada", 500, obj{"priority": 10, "source": "plan", "expires_at": at(time.Hour)})
		wallet := ts.grant(t, "ada", 10_000, nil)

		var check struct {
			Allowed      bool             `json:"allowed"`
			BalanceAfter int64            `json:"balance_after"`
			Breakdown    []map[string]any `json:"breakdown"`
		}
		ts.get(t, ext("ada", "/entitlements/gen?units=8")).want(t, http.StatusOK).decode(t, &check)
		var u struct {
			BalanceAfter     int64            `json:"balance_after"`
			EffectiveBalance int64            `json:"effective_balance"`
			Breakdown        []map[string]any `json:"breakdown"`
		}
		ts.usage(t, "ada", "gen", 8).want(t, http.StatusOK).decode(t, &u)
		if len(u.Breakdown) != 2 || u.Breakdown[0]["block_id"] != plan.ID || u.Breakdown[0]["amount"] != 500.0 ||
			u.Breakdown[0]["priority"] != 10.0 || u.Breakdown[0]["source"] != "plan" || u.Breakdown[0]["expires_at"] == nil ||
			u.Breakdown[1]["block_id"] != wallet.ID || u.Breakdown[1]["amount"] != 300.0 || u.Breakdown[1]["source"] != "topup" {
			t.Errorf("usage breakdown = %v, want 500 from the plan block, then 300 from the wallet", u.Breakdown)
		}
		if u.BalanceAfter != 9700 || u.EffectiveBalance != 9700 {
			t.Errorf("usage balance_after %d, effective %d; want 9700", u.BalanceAfter, u.EffectiveBalance)
		}
		if !check.Allowed || check.BalanceAfter != 9700 || jsonOf(t, check.Breakdown) != jsonOf(t, u.Breakdown) {
			t.Errorf("check = %+v, want what the usage then did: %v", check, u.Breakdown)
		}
		ts.get(t, ext("ada", "/entitlements/gen?units=1000")).want(t, http.StatusOK).decode(t, &check)
		if check.Allowed || len(check.Breakdown) != 0 {
			t.Errorf("check beyond the balance = %+v, want not allowed, no breakdown", check)
		}
	})
}

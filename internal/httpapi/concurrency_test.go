package httpapi_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// race runs n requests at once and returns their answers in order.
func race(n int, do func(i int) resp) []resp {
	out := make([]resp, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = do(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// TestConcurrentFirstGrants: grants racing to create one new customer make
// one customer holding every grant.
func TestConcurrentFirstGrants(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		const n = 12
		out := race(n, func(i int) resp {
			return ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "new", "credits": 10})
		})
		ids := map[string]bool{}
		for i, r := range out {
			if r.status != http.StatusCreated {
				t.Fatalf("grant %d: %s status = %d, want 201; body: %s", i, r.desc, r.status, r.body)
			}
			var b blockResp
			r.decode(t, &b)
			ids[b.CustomerID] = true
		}
		if len(ids) != 1 {
			t.Errorf("racing first grants made customers %v, want one", ids)
		}
		if b := ts.balance(t, "new"); b.Balance != 10*n || len(b.Blocks) != n {
			t.Errorf("balance = %d in %d blocks, want %d in %d", b.Balance, len(b.Blocks), 10*n, n)
		}
		ts.checkLedgerSum(t, "new")
	})
}

// TestConcurrentUsage: usages racing for too few credits never overdraw:
// exactly as many are accepted as the balance pays for, the rest are 402.
func TestConcurrentUsage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(10))
		ts.grant(t, "u", 75, obj{"priority": 5})
		ts.grant(t, "u", 50, nil)
		const n = 20
		out := race(n, func(i int) resp { return ts.usage(t, "u", "m", 1) })
		accepted := 0
		for i, r := range out {
			switch r.status {
			case http.StatusOK:
				accepted++
			case http.StatusPaymentRequired:
			default:
				t.Errorf("usage %d: %s status = %d, want 200 or 402; body: %s", i, r.desc, r.status, r.body)
			}
		}
		if accepted != 12 {
			t.Errorf("%d usages of 10 accepted against 125, want 12", accepted)
		}
		if b := ts.balance(t, "u"); b.Balance != 5 {
			t.Errorf("balance = %d, want 5", b.Balance)
		}
		ts.checkLedgerSum(t, "u")
	})
}

// TestConcurrentBatchesNoDeadlock: batches that touch two customers in
// opposite orders take their locks in one global order, so PostgreSQL never
// has to break a deadlock between them (its deadlock counter stays 0), and
// every event lands exactly once.
func TestConcurrentBatchesNoDeadlock(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "m", perUnit(1))
		ts.grant(t, "a", 1_000_000, nil)
		ts.grant(t, "b", 1_000_000, nil)
		const n = 16
		out := race(n, func(i int) resp {
			first, second := "a", "b"
			if i%2 == 1 {
				first, second = second, first
			}
			var events []obj
			for j := range 4 {
				for _, c := range []string{first, second} {
					events = append(events, obj{"external_customer_id": c, "billable_metric_key": "m", "units": 1,
						"idempotency_key": fmt.Sprintf("ev-%d-%d-%s", i, j, c)})
				}
			}
			return ts.post(t, "/v1/usage/batch", obj{"events": events})
		})
		for i, r := range out {
			r.want(t, http.StatusOK)
			var b struct {
				Results []struct{ Status string } `json:"results"`
			}
			r.decode(t, &b)
			for j, res := range b.Results {
				if res.Status != "accepted" {
					t.Errorf("batch %d event %d status = %q, want accepted", i, j, res.Status)
				}
			}
		}
		for _, c := range []string{"a", "b"} {
			if got, want := ts.balance(t, c).Balance, int64(1_000_000-4*n); got != want {
				t.Errorf("balance of %s = %d, want %d", c, got, want)
			}
			ts.checkLedgerSum(t, c)
		}
		if ts.backend == "postgres" {
			if d := ts.deadlocks(t); d != 0 {
				t.Errorf("PostgreSQL broke %d deadlocks, want 0 (locks out of order)", d)
			}
		}
	})
}

package httpapi_test

import (
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
	ts := newTestServer(t)
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
}

// TestConcurrentUsage: usages racing for too few credits never overdraw:
// exactly as many are accepted as the balance pays for, the rest are 402.
func TestConcurrentUsage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
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
}

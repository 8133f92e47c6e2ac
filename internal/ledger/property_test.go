package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// Random sequences of grants, usages, plan purchases (new orders and
// retried ones), linked transactions, clock moves and expiry sweeps, over a few customers, keep
// every invariant of design.md (CheckInvariants) after each step, and every
// refusal is one the domain names (402, 404, 409…), never a failure.
func TestRandomOperationsKeepInvariants(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		memoHits := 0
		defer func() {
			if _, ok := f.st.(memo); ok && memoHits == 0 && !t.Failed() {
				t.Error("no check was answered from the store's memory of the accounts")
			}
		}()
		rapid.Check(t, func(rt *rapid.T) {
			// A fresh scope per run: the database is shared by the runs.
			sc := store.Scope{TenantID: "prop-" + ids.UUID(), Env: "test"}
			f.metric(t, sc, "calls", 100)
			f.createPlan(t, sc, "pro", 2000, 5000, 3600)
			f.createPlan(t, sc, "free", 0, 1000, 600)
			customers := []string{"a", "b", "c"}
			n := 0
			key := func() string { n++; return fmt.Sprintf("k%d", n) }
			var holds []string // reservation ids
			check := func(what string) {
				err := f.st.Read(context.Background(), func(q store.Q) error { return CheckInvariants(context.Background(), q, sc) })
				if err != nil {
					rt.Fatalf("after %s: %v", what, err)
				}
			}
			refused := func(what string, err error) {
				if err != nil && credit.ErrorCode(err) == "" {
					rt.Fatalf("%s failed: %v", what, err)
				}
			}
			rt.Repeat(map[string]func(*rapid.T){
				"grant": func(rt *rapid.T) {
					c := rapid.SampledFrom(customers).Draw(rt, "customer")
					in := GrantInput{Customer: CustomerRef{ExternalID: c}, AutoCreate: true, Source: "topup",
						Credits:  rapid.Int64Range(1, 5000).Draw(rt, "credits"),
						Priority: rapid.Int64Range(0, 20).Draw(rt, "priority")}
					if rapid.Bool().Draw(rt, "expires") {
						in.ExpiresAt = f.clock.Now().Add(time.Duration(rapid.IntRange(1, 120).Draw(rt, "minutes")) * time.Minute)
					}
					k := key()
					in.IdempotencyKey = k
					_, err := f.run(t, sc, k, "/v1/topup/grant", Grant{In: in, Encode: jsonOf[GrantResult](201)})
					refused("grant", err)
					check("grant")
				},
				"usage": func(rt *rapid.T) {
					c := rapid.SampledFrom(customers).Draw(rt, "customer")
					k := key()
					_, err := f.run(t, sc, k, "/v1/usage", usage(c, "calls", rapid.Int64Range(1, 40).Draw(rt, "units"), k))
					refused("usage", err)
					check("usage")
				},
				"purchase": func(rt *rapid.T) {
					c := rapid.SampledFrom(customers).Draw(rt, "customer")
					plan := rapid.SampledFrom([]string{"pro", "free", "none"}).Draw(rt, "plan")
					order := fmt.Sprintf("o%d", rapid.IntRange(1, 6).Draw(rt, "order")) // repeats: retries
					k := key()
					in := PurchaseInput{Customer: CustomerRef{ExternalID: c}, AutoCreate: true, PlanKey: plan, OrderID: order, IdempotencyKey: k}
					_, err := f.run(t, sc, k, "/v1/customers/"+c+"/plan-purchases", Purchase{In: in, Encode: jsonOf[PurchaseResult](201)})
					refused("purchase", err)
					check("purchase")
				},
				"transaction": func(rt *rapid.T) {
					var ops []Operation
					for range rapid.IntRange(1, 4).Draw(rt, "operations") {
						c := rapid.SampledFrom(customers).Draw(rt, "customer")
						if rapid.Bool().Draw(rt, "usage") {
							ops = append(ops, usageOp(c, "calls", rapid.Int64Range(1, 40).Draw(rt, "units")))
						} else {
							ops = append(ops, grantOp(c, rapid.Int64Range(1, 3000).Draw(rt, "credits")))
						}
					}
					k := key()
					enc := func(TransactionResult) (int, []byte, error) { return 201, []byte(`{}`), nil }
					_, err := f.run(t, sc, k, "/v1/transactions", LinkedTransaction{Operations: ops, Encode: enc})
					refused("transaction", err)
					check("transaction")
				},
				"reserve": func(rt *rapid.T) {
					c := rapid.SampledFrom(customers).Draw(rt, "customer")
					k := key()
					in := ReserveInput{Customer: CustomerRef{ExternalID: c}, MetricKey: "calls", IdempotencyKey: k,
						EstimatedUnits: rapid.Int64Range(1, 30).Draw(rt, "units"),
						TTL:            time.Duration(rapid.IntRange(1, 60).Draw(rt, "ttl minutes")) * time.Minute}
					enc := func(r ReservationResult) (int, []byte, error) {
						holds = append(holds, r.Reservation.ID)
						return 201, []byte(`{}`), nil
					}
					_, err := f.run(t, sc, k, "/v1/reserve", Reserve{In: in, Encode: enc})
					refused("reserve", err)
					check("reserve")
				},
				"settle": func(rt *rapid.T) {
					if len(holds) == 0 {
						rt.Skip("no hold")
					}
					id := rapid.SampledFrom(holds).Draw(rt, "hold")
					cust, err := f.svc.ReservationCustomer(context.Background(), sc, id)
					if err != nil {
						rt.Fatalf("customer of %s: %v", id, err)
					}
					cmd := Settle{ID: id, CustomerID: cust, Release: rapid.Bool().Draw(rt, "release"),
						Encode: func(ReservationResult) (int, []byte, error) { return 200, []byte(`{}`), nil }}
					if rapid.Bool().Draw(rt, "actual") {
						cmd.ActualUnits = ptr(rapid.Int64Range(0, 40).Draw(rt, "actual units"))
					}
					k := key()
					_, err = f.run(t, sc, k, "/v1/reserve/"+id+"/settle", cmd)
					refused("settle", err)
					check("settle")
				},
				"check": func(rt *rapid.T) {
					c := rapid.SampledFrom(customers).Draw(rt, "customer")
					_, hit, err := f.checkTwice(sc, CustomerRef{ExternalID: c}, "calls", rapid.Int64Range(1, 60).Draw(rt, "units"))
					refused("check", err)
					if hit {
						memoHits++
					}
				},
				"advance": func(rt *rapid.T) {
					f.clock.Add(time.Duration(rapid.IntRange(1, 90).Draw(rt, "minutes")) * time.Minute)
				},
				"sweep": func(rt *rapid.T) {
					if _, err := f.svc.SweepExpired(context.Background(), 100); err != nil {
						rt.Fatalf("sweep: %v", err)
					}
					check("sweep")
				},
			})
		})
	})
}

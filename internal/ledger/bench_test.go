package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/sqlite"
)

// BenchmarkUsage measures the service's write path alone (no HTTP): usage
// debits with unique keys from 32 goroutines, over many customers and over
// one hot customer, on each store.
//
//	go test ./internal/ledger -run '^$' -bench Usage -benchtime 20000x
func BenchmarkUsage(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, customers := range []int{1, 10000} {
			b.Run(fmt.Sprintf("%s/customers=%d", backend, customers), func(b *testing.B) {
				st, svc, exec := benchService(b, backend, customers, 1<<50)
				ctx := context.Background()
				var groups, cmds atomic.Int64
				svc.onGroup = func(size int) { groups.Add(1); cmds.Add(int64(size)) }
				var n atomic.Int64
				b.SetParallelism(16) // 32 goroutines on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						key := fmt.Sprint("u", i)
						exec(key, usage(fmt.Sprint("c", i%int64(customers)), "msg", 1, key))
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "debits/s")
				b.ReportMetric(float64(cmds.Load())/float64(max(1, groups.Load())), "cmds/group")
				b.StopTimer()
				if err := st.Read(ctx, func(q store.Q) error { return CheckInvariants(ctx, q, scope) }); err != nil {
					b.Fatalf("invariants after the run: %v", err)
				}
			})
		}
	}
}

// BenchmarkCheck measures the entitlement check alone (no HTTP), the hot
// path that gates every action: one snapshot read, no write, from 4
// goroutines over 10,000 customers, on each store.
//
//	go test ./internal/ledger -run '^$' -bench Check -benchtime 20000x
func BenchmarkCheck(b *testing.B) {
	const customers = 10000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			_, svc, _ := benchService(b, backend, customers, 1<<40)
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(2) // 4 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					e, err := svc.Check(ctx, scope, CustomerRef{ExternalID: fmt.Sprint("c", i%customers)}, "msg", 5)
					if err != nil || !e.Allowed {
						b.Fatalf("check: %+v, %v", e, err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
		})
	}
}

// benchService opens a fresh store of backend with a service over it, a
// metric "msg" of 1 mc a unit, and customers c0… each granted credits. exec
// runs a command under a key, failing the benchmark on an error.
func benchService(b *testing.B, backend string, customers int, credits int64) (store.Store, *Service, func(string, Command)) {
	b.Helper()
	var st store.Store
	var err error
	if backend == "sqlite" {
		st, err = sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	} else {
		st, err = postgres.Open(context.Background(), pgtest.NewDatabase(b))
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	svc := New(st, time.Now)
	b.Cleanup(svc.Close)
	exec := func(key string, cmd Command) {
		req := Request{Scope: scope, Key: key, Method: "POST", Path: "/x"}
		if _, err := svc.Execute(context.Background(), req, func() (Command, error) { return cmd, nil }); err != nil {
			b.Fatal(err)
		}
	}
	exec("m", CreateMetric{In: MetricInput{Key: "msg"}, Encode: jsonOf[store.Metric](201)})
	exec("r", CreateRule{MetricKey: "msg", Rule: credit.Rule{CostType: credit.CostPerUnit, UnitCost: 1, UnitSize: 1}, Encode: jsonOf[store.Rule](201)})
	for i := range customers {
		in := GrantInput{Customer: CustomerRef{ExternalID: fmt.Sprint("c", i)}, AutoCreate: true, Credits: credits, Source: "topup"}
		exec(fmt.Sprint("g", i), Grant{In: in, Encode: jsonOf[GrantResult](201)})
	}
	return st, svc, exec
}

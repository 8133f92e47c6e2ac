package ledger

// The service's own tests run the commands against both real stores
// (SQLite in a temporary directory, a throwaway PostgreSQL database), then
// check every money invariant of the scopes they wrote.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	scope = store.Scope{TenantID: "t1", Env: "test"}
	other = store.Scope{TenantID: "t2", Env: "test"}
	t0    = time.Date(2026, 4, 13, 14, 0, 0, 0, time.UTC)
)

// clock is a fake clock that tests move.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	st    store.Store
	svc   *Service
	clock *clock
	// sum answers a query of one integer straight from the database, beside
	// the store (for what the store API does not show, such as bytes kept).
	sum func(t *testing.T, query string) int64
}

// eachBackend runs fn on a fresh service over each store, named by it, and
// checks the invariants of both scopes afterwards.
func eachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	type opened struct {
		st  store.Store
		sum func(t *testing.T, query string) int64
	}
	open := map[string]func(t *testing.T) opened{
		"sqlite": func(t *testing.T) opened {
			path := filepath.Join(t.TempDir(), "creditd.db")
			db, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return opened{db, func(t *testing.T, query string) int64 {
				raw, err := sql.Open(sqlite.DriverName, path)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				var n int64
				if err := raw.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
					t.Fatalf("%s: %v", query, err)
				}
				return n
			}}
		},
		"postgres": func(t *testing.T) opened {
			url := pgtest.NewDatabase(t)
			db, err := postgres.Open(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			return opened{db, func(t *testing.T, query string) int64 {
				var n int64
				if err := db.Pool().QueryRow(t.Context(), query).Scan(&n); err != nil {
					t.Fatalf("%s: %v", query, err)
				}
				return n
			}}
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			o := open[name](t)
			st := o.st
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			f := &fixture{st: st, clock: &clock{now: t0}, sum: o.sum}
			f.svc = New(st, f.clock.Now)
			t.Cleanup(func() {
				f.svc.Close()
				for _, s := range []store.Scope{scope, other} {
					err := st.Read(context.Background(), func(q store.Q) error { return CheckInvariants(context.Background(), q, s) })
					if err != nil {
						t.Errorf("invariants of %v: %v", s, err)
					}
				}
			})
			fn(t, f)
		})
	}
}

// jsonOf is a test encoder: the result as JSON, with status.
func jsonOf[T any](status int) Encoder[T] {
	return func(v T) (int, []byte, error) {
		b, err := json.Marshal(v)
		return status, b, err
	}
}

func (f *fixture) run(t *testing.T, s store.Scope, key, path string, cmd Command) (Response, error) {
	t.Helper()
	return f.svc.Execute(t.Context(), Request{Scope: s, Key: key, Method: "POST", Path: path}, func() (Command, error) { return cmd, nil })
}

func (f *fixture) grant(t *testing.T, s store.Scope, key, ext string, credits int64) GrantResult {
	t.Helper()
	var out GrantResult
	enc := func(g GrantResult) (int, []byte, error) { out = g; return 201, []byte(`{}`), nil }
	in := GrantInput{Customer: CustomerRef{ExternalID: ext}, AutoCreate: true, Credits: credits, Source: "topup", IdempotencyKey: key}
	if _, err := f.run(t, s, key, "/v1/topup/grant", Grant{In: in, Encode: enc}); err != nil {
		t.Fatalf("grant %s: %v", key, err)
	}
	return out
}

func (f *fixture) metric(t *testing.T, s store.Scope, key string, unitCost int64) {
	t.Helper()
	if _, err := f.run(t, s, "metric-"+key, "/v1/billable-metrics", CreateMetric{In: MetricInput{Key: key}, Encode: jsonOf[store.Metric](201)}); err != nil {
		t.Fatalf("metric: %v", err)
	}
	rule := credit.Rule{CostType: credit.CostPerUnit, UnitCost: unitCost, UnitSize: 1}
	if _, err := f.run(t, s, "rule-"+key, "/v1/metering-rules", CreateRule{MetricKey: key, Rule: rule, Encode: jsonOf[store.Rule](201)}); err != nil {
		t.Fatalf("rule: %v", err)
	}
}

func usage(ext, metric string, units int64, key string) Usage {
	return Usage{
		In: UsageInput{Customer: CustomerRef{ExternalID: ext}, MetricKey: metric, Units: units, IdempotencyKey: key},
		Encode: func(r UsageResult) (int, []byte, error) {
			return 200, []byte(fmt.Sprintf(`{"event_id":%q}`, r.Event.ID)), nil
		},
	}
}

func (f *fixture) balance(t *testing.T, s store.Scope, ext string) Balance {
	t.Helper()
	b, err := f.svc.Balance(t.Context(), s, CustomerRef{ExternalID: ext})
	if err != nil {
		t.Fatalf("balance of %s: %v", ext, err)
	}
	return b
}

// hold blocks the committers until release is called, so that the commands
// submitted meanwhile meet in one group.
func (f *fixture) hold(t *testing.T) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range f.svc.committers {
		started := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.queue <- &pending{ctx: context.Background(), cmd: gateCommand{started: started, gate: gate}, result: make(chan outcome, 1)}
		}()
		<-started
	}
	return func() { close(gate); wg.Wait() }
}

// gateCommand is a command that waits for its gate: it holds its committer.
type gateCommand struct {
	started chan struct{}
	gate    chan struct{}
}

func (gateCommand) plan(*plan) {}
func (gateCommand) size() int  { return 1 }
func (c gateCommand) apply(context.Context, *group, Request) (Response, bool, error) {
	close(c.started)
	<-c.gate
	return Response{}, false, nil
}

// waitQueued waits until n commands are queued across the committers.
func (f *fixture) waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		q := 0
		for _, c := range f.svc.committers {
			q += len(c.queue)
		}
		if q >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d commands queued", n)
}

func isCode(err error, code string) bool { return credit.ErrorCode(err) == code }

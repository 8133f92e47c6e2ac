package httpapi_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/httpapi"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/sqlite"
)

// outageDeadline is the database deadline of the outage tests' servers;
// every answer during an outage must come within a few of them.
const outageDeadline = time.Second

// newOutageServer starts an API on st whose service has outageDeadline and
// whose /readyz asks the service, with one tenant, a metric and a customer
// holding 100 credits.
func newOutageServer(t *testing.T, backend string, st store.Store, logs io.Writer) *testServer {
	t.Helper()
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	ts := &testServer{backend: backend, clock: &fakeClock{now: epoch}, store: st}
	ts.testKey, ts.liveKey = ts.addTenant(t, "Acme")
	svc := ledger.New(st, ts.clock.Now, ledger.WithTimeout(outageDeadline))
	srv := httptest.NewServer(httpapi.NewServer(svc, st, slog.New(slog.NewTextHandler(logs, nil)), svc.Ready))
	t.Cleanup(func() { srv.Close(); svc.Close() })
	ts.URL = srv.URL
	ts.createMetric(t, "calls", perUnit(1000))
	ts.grant(t, "alice", 100_000, nil)
	return ts
}

// wantUnavailable checks that writes, reads and /readyz answer 503 with
// Retry-After, within a few deadlines, while the database cannot serve.
func wantUnavailable(t *testing.T, ts *testServer, phase string) {
	t.Helper()
	for _, r := range []req{
		{method: http.MethodPost, path: "/v1/usage", idem: "during-" + phase,
			body: obj{"external_customer_id": "alice", "billable_metric_key": "calls", "units": 1}},
		{method: http.MethodGet, path: ext("alice", "/credits")},
		{method: http.MethodGet, path: "/readyz", apiKey: none},
	} {
		start := time.Now()
		got := ts.do(t, r)
		took := time.Since(start)
		if got.status != http.StatusServiceUnavailable {
			t.Errorf("%s: %s = %d %s, want 503", phase, got.desc, got.status, got.body)
			continue
		}
		if got.header.Get("Retry-After") == "" {
			t.Errorf("%s: %s answered 503 without Retry-After", phase, got.desc)
		}
		if r.path != "/readyz" {
			got.wantProblem(t, http.StatusServiceUnavailable, "service-unavailable")
		}
		if took > 5*outageDeadline {
			t.Errorf("%s: %s took %v, want an answer within a few database deadlines (%v)", phase, got.desc, took, outageDeadline)
		}
	}
}

// wantRecovered waits until the usage retried with the outage's key is
// accepted, then checks it took effect once and /readyz is 200.
func wantRecovered(t *testing.T, ts *testServer, phase string, balance int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := ts.do(t, req{method: http.MethodPost, path: "/v1/usage", idem: "during-" + phase,
			body: obj{"external_customer_id": "alice", "billable_metric_key": "calls", "units": 1}})
		if r.status == http.StatusOK {
			break
		}
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("%s: after the database came back, usage = %d %s", phase, r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.do(t, req{method: http.MethodGet, path: "/readyz", apiKey: none}).want(t, http.StatusOK)
	if got := ts.balance(t, "alice").Balance; got != balance {
		t.Errorf("%s: balance after the retried usage = %d, want %d (debited once)", phase, got, balance)
	}
}

// A PostgreSQL server that is down, then one that hangs (its processes
// stopped, as a network partition looks): 503 with Retry-After within
// seconds, and creditd recovers by itself when the server is back.
func TestPostgresOutageAnswers503ThenRecovers(t *testing.T) {
	pg := pgtest.StartServer(t, pgtest.Options{Database: "creditd"})
	st, err := postgres.Open(t.Context(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := newOutageServer(t, "postgres", st, io.Discard)

	pg.Stop(t)
	wantUnavailable(t, ts, "down")
	pg.Start(t)
	wantRecovered(t, ts, "down", 99_000)

	pg.Pause(t)
	wantUnavailable(t, ts, "hung")
	pg.Resume(t)
	wantRecovered(t, ts, "hung", 98_000)
}

// SQLite's hung database is a write lock another process holds: writes
// answer 503 once the busy timeout or the deadline passes, /readyz too, and
// all is well once the lock is let go.
func TestSQLiteLockedAnswers503ThenRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creditd.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &lockedBuffer{}
	ts := newOutageServer(t, "sqlite", st, logs)

	other, err := sql.Open(sqlite.DriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, req{method: http.MethodPost, path: "/v1/usage", idem: "during-locked",
		body: obj{"external_customer_id": "alice", "billable_metric_key": "calls", "units": 1}})
	r.wantProblem(t, http.StatusServiceUnavailable, "service-unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	// The server's log line of the failure names the request, so that the
	// X-Request-Id a client reports finds it.
	id := r.header.Get("X-Request-Id")
	if line := lineWith(logs.String(), "request failed"); id == "" || !strings.Contains(line, "request_id="+id) {
		t.Errorf("log line of the failed request = %q, want request_id=%s (its X-Request-Id)", line, id)
	}
	ts.do(t, req{method: http.MethodGet, path: "/readyz", apiKey: none}).want(t, http.StatusServiceUnavailable)
	// Reads do not need the write lock.
	ts.get(t, ext("alice", "/credits")).want(t, http.StatusOK)

	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	wantRecovered(t, ts, "locked", 99_000)
}

// lineWith returns the first line of logs that contains s.
func lineWith(logs, s string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// A full disk answers 503 (and /readyz too), loses nothing, and creditd
// takes writes again once there is room. The database sits on a small
// tmpfs of its own, which needs root to mount.
func TestSQLiteFullDiskAnswers503ThenRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a file system")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small file system here (mount -t tmpfs needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	st, err := sqlite.Open(filepath.Join(dir, "creditd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := newOutageServer(t, "sqlite", st, io.Discard)
	// Ballast to free later.
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	meta := obj{"note": strings.Repeat("m", 15<<10)}
	full := false
	granted := int64(100_000)
	for i := range 400 {
		r := ts.do(t, req{method: http.MethodPost, path: "/v1/topup/grant", idem: fmt.Sprintf("fill-%d", i),
			body: obj{"external_customer_id": "alice", "credits": 1000, "metadata": meta}})
		if r.status == http.StatusCreated {
			granted += 1000
			continue
		}
		r.wantProblem(t, http.StatusServiceUnavailable, "service-unavailable")
		full = true
		break
	}
	if !full {
		t.Fatal("400 grants of 15 KiB of metadata never filled a 4 MiB file system")
	}
	ts.do(t, req{method: http.MethodGet, path: "/readyz", apiKey: none}).want(t, http.StatusServiceUnavailable)
	if got := ts.balance(t, "alice").Balance; got != granted {
		t.Errorf("balance on a full disk = %d, want %d: every grant answered 201, none other", got, granted)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	ts.post(t, "/v1/topup/grant", obj{"external_customer_id": "alice", "credits": 1000}).want(t, http.StatusCreated)
	ts.do(t, req{method: http.MethodGet, path: "/readyz", apiKey: none}).want(t, http.StatusOK)
	if got := ts.balance(t, "alice").Balance; got != granted+1000 {
		t.Errorf("balance after room was made = %d, want %d", got, granted+1000)
	}
	err = st.Read(t.Context(), func(q store.Q) error {
		for _, sc := range ts.scopes {
			if err := ledger.CheckInvariants(t.Context(), q, sc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("invariants after a full disk: %v", err)
	}
}

package httpapi_test

// The HTTP API's tests run the real handler over a real store (no mocks of
// the store), with a fake clock that tests advance instead of sleeping. Every
// test runs once per backend, as the subtests sqlite (a temporary directory)
// and postgres (a fresh database of a throwaway PostgreSQL server, which
// TestMain stops), so that both stores show the same API behaviour: go test
// -run 'TestUsage/postgres' picks one. This file holds the test server and
// the helpers every test file shares: requests, decoding, problem
// assertions, a snapshot of the database to prove that a rejected request
// changed nothing, and the money invariants checked after every test.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/apikey"
	"github.com/creditd/creditd/internal/httpapi"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/sqlite"
)

// TestMain stops the PostgreSQL server when the tests end.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends are the stores every test runs on, by subtest name.
var backends = []string{"sqlite", "postgres"}

// forEachBackend runs test once per backend, as parallel subtests named after
// the backend, each on a test server of its own. The postgres subtest skips
// when the PostgreSQL binaries are missing (pgtest).
func forEachBackend(t *testing.T, test func(t *testing.T, ts *testServer)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			test(t, newTestServer(t, b))
		})
	}
}

// epoch is where every test server's clock starts: 2026-04-13T14:00:00Z,
// read in a zone east of UTC so that anything answered in the clock's zone
// instead of UTC shows.
var epoch = time.Date(2026, 4, 13, 16, 0, 0, 0, time.FixedZone("UTC+2", 2*60*60))

// at formats epoch+d as a request time, with epoch's +02:00 offset.
func at(d time.Duration) string { return epoch.Add(d).Format(time.RFC3339Nano) }

// fakeClock is the server's clock; tests move it with Advance.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testServer is one creditd API over its own database.
type testServer struct {
	URL     string
	backend string // "sqlite" or "postgres"
	clock   *fakeClock
	store   store.Store
	dbPath  string // SQLite file, when backend is sqlite
	dbURL   string // PostgreSQL database, when backend is postgres
	testKey string // qs_test_ key of the first tenant
	liveKey string // qs_live_ key of the first tenant
	idem    atomic.Int64

	scopes    []store.Scope // every scope addTenant made keys for
	closeOnce sync.Once

	dumpOnce sync.Once
	dumpDB   *sql.DB
	dumpPG   *pgx.Conn
}

// newTestServer starts a server on backend with one tenant that has a test
// and a live key. Any error the server logs (a 500, a panic) fails the test,
// and so does a broken money invariant in any of its scopes at the end.
func newTestServer(t *testing.T, backend string) *testServer {
	t.Helper()
	ts := &testServer{backend: backend, clock: &fakeClock{now: epoch}}
	switch backend {
	case "postgres":
		ts.dbURL = pgtest.NewDatabase(t)
		st, err := postgres.Open(t.Context(), ts.dbURL)
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		ts.store = st
	case "sqlite":
		ts.dbPath = filepath.Join(t.TempDir(), "creditd.db")
		st, err := sqlite.Open(ts.dbPath)
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		ts.store = st
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	// Cleanups run last first: the server stops, then the service, then
	// this checks the invariants and closes the store.
	t.Cleanup(func() { ts.closeStore(t) })
	if err := ts.store.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	ts.testKey, ts.liveKey = ts.addTenant(t, "Acme")

	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := ledger.New(ts.store, ts.clock.Now)
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(httpapi.NewServer(svc, ts.store, log, func(context.Context) error { return nil }))
	ts.URL = srv.URL
	t.Cleanup(func() {
		srv.Close() // waits for every handler, so that the log is complete
		if ts.dumpDB != nil {
			ts.dumpDB.Close()
		}
		if ts.dumpPG != nil {
			ts.dumpPG.Close(context.Background())
		}
		if s := logs.String(); strings.Contains(s, "level=ERROR") {
			t.Errorf("the server logged errors:\n%s", s)
		}
	})
	return ts
}

// addTenant creates a tenant and returns its test and live API keys.
func (ts *testServer) addTenant(t *testing.T, name string) (testKey, liveKey string) {
	t.Helper()
	tn := store.Tenant{ID: ids.UUID(), Name: name, CreatedAt: epoch}
	var keys [2]string
	err := ts.store.Transact(t.Context(), func(q store.Q) error {
		if err := q.TenantCreate(t.Context(), tn); err != nil {
			return err
		}
		for i, env := range []string{apikey.Test, apikey.Live} {
			key, err := apikey.New(env)
			if err != nil {
				return err
			}
			rec, err := apikey.Record(key, tn.ID, epoch)
			if err != nil {
				return err
			}
			if err := q.APIKeyCreate(t.Context(), rec); err != nil {
				return err
			}
			keys[i] = key
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create tenant %q: %v", name, err)
	}
	ts.scopes = append(ts.scopes, store.Scope{TenantID: tn.ID, Env: apikey.Test}, store.Scope{TenantID: tn.ID, Env: apikey.Live})
	return keys[0], keys[1]
}

// closeStore checks the money invariants (ledger.CheckInvariants) of every
// scope the test made keys for, each in one snapshot, then closes the store.
// Calls after the first do nothing. The test's writes must be over.
func (ts *testServer) closeStore(t *testing.T) {
	t.Helper()
	ts.closeOnce.Do(func() {
		// Not t.Context: it is already cancelled when cleanups run.
		ctx := context.Background()
		for _, scope := range ts.scopes {
			err := ts.store.Read(ctx, func(q store.Q) error { return ledger.CheckInvariants(ctx, q, scope) })
			if err != nil {
				t.Errorf("money invariants of tenant %s, env %s: %v", scope.TenantID, scope.Env, err)
			}
		}
		ts.store.Close()
	})
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// none, as a req's apiKey, idem or contentType, sends no such header.
const none = "\x00none"

// req is one request. Zero fields take the usual values.
type req struct {
	method, path string
	body         any    // nil: no body; string or []byte: sent as is; else JSON-encoded
	apiKey       string // "": the test key
	idem         string // "": a fresh Idempotency-Key on POST and PATCH
	contentType  string // "": application/json when there is a body
	header       map[string]string
}

// resp is an answer, with desc ("POST /v1/usage") for failure messages.
type resp struct {
	desc   string
	status int
	header http.Header
	body   []byte
}

func (ts *testServer) do(t *testing.T, r req) resp {
	t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode request body: %v", err)
		}
		body = bytes.NewReader(j)
	}
	hr, err := http.NewRequest(r.method, ts.URL+r.path, body)
	if err != nil {
		t.Fatalf("NewRequest %s %s: %v", r.method, r.path, err)
	}
	switch r.apiKey {
	case "":
		hr.Header.Set("X-API-Key", ts.testKey)
	case none:
	default:
		hr.Header.Set("X-API-Key", r.apiKey)
	}
	switch {
	case r.idem == none:
	case r.idem != "":
		hr.Header.Set("Idempotency-Key", r.idem)
	case r.method == http.MethodPost || r.method == http.MethodPatch:
		hr.Header.Set("Idempotency-Key", fmt.Sprintf("key-%d", ts.idem.Add(1)))
	}
	switch {
	case r.contentType == none:
	case r.contentType != "":
		hr.Header.Set("Content-Type", r.contentType)
	case body != nil:
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return resp{desc: r.method + " " + r.path, status: res.StatusCode, header: res.Header, body: b}
}

func (ts *testServer) get(t *testing.T, path string) resp {
	t.Helper()
	return ts.do(t, req{method: http.MethodGet, path: path})
}

// post sends body with a fresh Idempotency-Key.
func (ts *testServer) post(t *testing.T, path string, body any) resp {
	t.Helper()
	return ts.do(t, req{method: http.MethodPost, path: path, body: body})
}

// postKey sends body with Idempotency-Key key.
func (ts *testServer) postKey(t *testing.T, path, key string, body any) resp {
	t.Helper()
	return ts.do(t, req{method: http.MethodPost, path: path, body: body, idem: key})
}

// want fails the test now unless the status is status.
func (r resp) want(t *testing.T, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s status = %d, want %d; body: %s", r.desc, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); status < 300 && ct != "application/json" {
		t.Errorf("%s Content-Type = %q, want application/json", r.desc, ct)
	}
	return r
}

// decode decodes the body into v.
func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s: decode body %s: %v", r.desc, r.body, err)
	}
}

// object decodes the body as a JSON object, numbers as json.Number.
func (r resp) object(t *testing.T) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: decode body %s: %v", r.desc, r.body, err)
	}
	return m
}

// problem is a problem+json body.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Errors    []struct{ Field, Message string }
	Required  *int64 `json:"required"`
	Available *int64 `json:"available"`
}

// wantProblem checks that r is the problem code with status, in
// application/problem+json, and that its errors name every one of fields.
func (r resp) wantProblem(t *testing.T, status int, code string, fields ...string) problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s status = %d, want %d (%s); body: %s", r.desc, r.status, status, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s Content-Type = %q, want application/problem+json", r.desc, ct)
	}
	var p problem
	r.decode(t, &p)
	if p.Code != code {
		t.Errorf("%s code = %q, want %q; body: %s", r.desc, p.Code, code, r.body)
	}
	if p.Type != "/problems/"+code || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Errorf("%s problem = %+v, want type /problems/%s, status %d, a title and a detail", r.desc, p, code, status)
	}
	for _, f := range fields {
		if !slices.ContainsFunc(p.Errors, func(e struct{ Field, Message string }) bool { return e.Field == f && e.Message != "" }) {
			t.Errorf("%s errors = %+v, want one naming field %q", r.desc, p.Errors, f)
		}
	}
	if code == "invalid-request" && len(p.Errors) == 0 {
		t.Errorf("%s: invalid-request without errors[]; body: %s", r.desc, r.body)
	}
	return p
}

// dump returns every row of every table of the database, one line each: the
// whole state, to compare before and after a request that must change nothing.
func (ts *testServer) dump(t *testing.T) string {
	t.Helper()
	if ts.backend == "postgres" {
		return ts.dumpPostgres(t)
	}
	ts.dumpOnce.Do(func() {
		db, err := sql.Open(sqlite.DriverName, "file:"+ts.dbPath+"?mode=ro")
		if err != nil {
			t.Fatalf("open database for dump: %v", err)
		}
		ts.dumpDB = db
	})
	rows, err := ts.dumpDB.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatalf("dump: %v", err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, tbl := range tables {
		// Rows are sorted as text: some tables have no rowid to order by.
		rows, err := ts.dumpDB.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var lines []string
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", tbl, err)
			}
			var line strings.Builder
			fmt.Fprintf(&line, "%s:", tbl)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&line, " %v", v)
			}
			lines = append(lines, line.String())
		}
		rows.Close()
		slices.Sort(lines)
		for _, l := range lines {
			out.WriteString(l)
			out.WriteByte('\n')
		}
	}
	return out.String()
}

// snapshot records the database so that unchanged can prove a request left
// it alone.
type snapshot struct {
	ts   *testServer
	rows string
}

func (ts *testServer) snapshot(t *testing.T) snapshot {
	t.Helper()
	return snapshot{ts, ts.dump(t)}
}

// unchanged fails the test if the database differs from the snapshot.
func (s snapshot) unchanged(t *testing.T, after string) {
	t.Helper()
	now := s.ts.dump(t)
	if now == s.rows {
		return
	}
	before := strings.Split(s.rows, "\n")
	var added []string
	for l := range strings.SplitSeq(now, "\n") {
		if !slices.Contains(before, l) {
			added = append(added, l)
		}
	}
	t.Errorf("after %s the database changed; new or changed rows:\n%s", after, strings.Join(added, "\n"))
}

// dumpPostgres is dump on PostgreSQL: every row of every table as its text
// form, in a stable order.
func (ts *testServer) dumpPostgres(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	ts.dumpOnce.Do(func() {
		conn, err := pgx.Connect(ctx, ts.dbURL)
		if err != nil {
			t.Fatalf("connect for dump: %v", err)
		}
		ts.dumpPG = conn
	})
	rows, err := ts.dumpPG.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'goose_db_version' ORDER BY table_name`)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	var out strings.Builder
	for _, tbl := range tables {
		rows, err := ts.dumpPG.Query(ctx, `SELECT r::text FROM "`+tbl+`" r ORDER BY 1`)
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		for _, l := range lines {
			fmt.Fprintf(&out, "%s: %s\n", tbl, l)
		}
	}
	return out.String()
}

// deadlocks returns how many deadlocks PostgreSQL detected in the test's
// database. The server's connections are closed first (closeStore, which
// checks the invariants then): a PostgreSQL server process reports its
// statistics when it exits, at the latest. The server takes no more requests
// after.
func (ts *testServer) deadlocks(t *testing.T) int64 {
	t.Helper()
	ts.closeStore(t)
	conn, err := pgx.Connect(t.Context(), ts.dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(t.Context(), `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		t.Fatalf("read deadlocks: %v", err)
	}
	return n
}

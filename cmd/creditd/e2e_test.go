package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// e2eScripts are the Node scripts TestE2EBuyPlan runs, relative to this
// package's directory (where go test runs): the seed's buyPlan example and
// its scenario, and the same purchase as creditd's one atomic call.
var e2eScripts = []struct{ name, path string }{
	{"seed", "../../test/e2e/buyplan.mjs"},
	{"atomic", "../../test/e2e/buyplan-atomic.mjs"},
}

// nodeRequired reports whether a missing node must fail the test rather than
// skip it: on CI, or when asked.
func nodeRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("CREDITD_TEST_REQUIRE_NODE") == "1"
}

// TestE2EBuyPlan runs the plan purchase scripts with Node against a real
// "creditd serve", each on a fresh SQLite file and on a fresh PostgreSQL
// database. The seed's three-call buyPlan: a purchase, retries with the same
// orderId (also 20 racing), a plan larger than the wallet, a refused direct
// debit, burn order of plan credits before wallet credits, and the paywall →
// recharge → retry path. The one-call purchase: plans created over the API,
// retries answering duplicate under any key (20 racing), plan credits never
// paying for the next plan, 402 with only payable credits available, the
// paywall, order-exists and archived plans.
func TestE2EBuyPlan(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			for _, script := range e2eScripts {
				t.Run(script.name, func(t *testing.T) {
					if testing.Short() {
						t.Skip("end-to-end test skipped in -short mode")
					}
					db := filepath.Join(t.TempDir(), "creditd.db")
					if backend == "postgres" {
						db = pgtest.NewDatabase(t)
					}
					testE2EScript(t, db, script.path)
				})
			}
		})
	}
}

func testE2EScript(t *testing.T, databaseURL, e2eScript string) {
	node, err := exec.LookPath("node")
	if err != nil {
		if nodeRequired() {
			t.Fatalf("node is not on PATH (needed by %s; CI=true or CREDITD_TEST_REQUIRE_NODE=1 makes it required): %v", e2eScript, err)
		}
		t.Skip("node not on PATH: skipping the buyPlan end-to-end test (set CREDITD_TEST_REQUIRE_NODE=1 to require it)")
	}
	script, err := filepath.Abs(e2eScript)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("end-to-end script: %v", err)
	}

	key := testKey(t)
	s := startServer(t, env{
		"CREDITD_ADDR":          "127.0.0.1:0",
		"CREDITD_DATABASE_URL":  databaseURL,
		"CREDITD_BOOTSTRAP_KEY": key,
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(), "API_BASE="+s.URL+"/v1", "API_KEY="+key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s\nserver log (stderr):\n%s", e2eScript, err, out, s.stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "e2e: ") || !strings.Contains(last, " 0 failed") {
		t.Fatalf("node exited 0 but did not report success:\n%s", out)
	}
	t.Log(last)
	if testing.Verbose() {
		t.Logf("node output:\n%s", out)
	}

	// Graceful shutdown: run returns nil once its context is cancelled.
	s.mustStop(t)
}

// TestPlansCLI drives "creditd plans" against the database of a running
// server, on SQLite and PostgreSQL: a plan created on the command line is
// served and sold by the API at once, invalid flags are refused in flag
// terms, the environments keep separate catalogs, and an archived plan
// reads as such.
func TestPlansCLI(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "creditd.db")
			if backend == "postgres" {
				db = pgtest.NewDatabase(t)
			}
			testPlansCLI(t, db)
		})
	}
}

func testPlansCLI(t *testing.T, databaseURL string) {
	key := testKey(t)
	e := env{"CREDITD_DATABASE_URL": databaseURL}
	if _, _, err := runCmd(t, e, "plans", "list", "--env", "test"); err == nil || !strings.Contains(err.Error(), "no tenant") {
		t.Errorf("plans list on an empty database: %v, want an error saying there is no tenant yet", err)
	}
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key))
	plans := func(args ...string) (string, error) {
		t.Helper()
		stdout, _, err := runCmd(t, e, append([]string{"plans"}, args...)...)
		return stdout, err
	}

	out, err := plans("create", "--key", "pro", "--name", "Pro plan", "--price", "1000", "--credits", "500", "--duration", "1h",
		"--pay-from-max-priority", "5", "--env", "test")
	if err != nil || !strings.Contains(out, "created plan pro (pln_") {
		t.Fatalf("plans create: %q, %v; want it created", out, err)
	}
	status, p := call(t, s, key, http.MethodGet, "/v1/plans/pro", nil)
	if status != http.StatusOK || p["name"] != "Pro plan" || p["price"] != 1000.0 || p["credits"] != 500.0 || p["priority"] != 10.0 ||
		p["duration_seconds"] != 3600.0 || p["pay_from_max_priority"] != 5.0 || p["active"] != true {
		t.Errorf("GET /v1/plans/pro after plans create = %d %v", status, p)
	}
	if _, err := plans("create", "--key", "forever", "--name", "F", "--price", "0", "--credits", "1", "--duration", "none", "--env", "test"); err != nil {
		t.Errorf("plans create --duration none: %v", err)
	}
	if status, p := call(t, s, key, http.MethodGet, "/v1/plans/forever", nil); status != http.StatusOK || p["duration_seconds"] != nil {
		t.Errorf("GET /v1/plans/forever = %d %v, want duration_seconds null", status, p)
	}
	if _, err := plans("create", "--key", "secs", "--name", "S", "--price", "1", "--credits", "1", "--duration", "86400", "--env", "live"); err != nil {
		t.Errorf("plans create --duration 86400: %v", err)
	}

	// Sold by the API at once.
	call(t, s, key, http.MethodPost, "/v1/topup/grant", map[string]any{"external_customer_id": "c1", "credits": 5000})
	status, pur := call(t, s, key, http.MethodPost, "/v1/customer-by-external-id/c1/plan-purchases", map[string]any{"plan_key": "pro", "order_id": "o1"})
	if status != http.StatusCreated || pur["price"] != 1000.0 {
		t.Errorf("buying the CLI's plan = %d %v, want 201", status, pur)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--key", "pro", "--name", "again", "--price", "1", "--credits", "1", "--env", "test"}, "already exists"},
		{[]string{"create", "--key", "x", "--name", "X", "--credits", "1", "--env", "test"}, "--price is required"},
		{[]string{"create", "--key", "x", "--name", "X", "--price", "1", "--credits", "1"}, "--env"},
		{[]string{"create", "--key", "x", "--name", "X", "--price", "1", "--credits", "1", "--duration", "30s", "--env", "test"}, "--duration"},
		{[]string{"create", "--key", "x", "--name", "X", "--price", "1", "--credits", "1", "--duration", "1.5s", "--env", "test"}, "whole number of seconds"},
		{[]string{"create", "--key", "x", "--name", "X", "--price", "1", "--credits", "1", "--duration", "soon", "--env", "test"}, "--duration"},
		{[]string{"create", "--key", "x", "--name", "X", "--price", "-1", "--credits", "1", "--priority", "101", "--env", "test"}, "--priority must be between 0 and 100"},
		{[]string{"create", "--key", "x y", "--name", "X", "--price", "1", "--credits", "0", "--env", "test"}, "--credits"},
		{[]string{"archive", "--key", "nope", "--env", "test"}, "no plan"},
		{[]string{"archive", "--env", "test"}, "--key is required"},
		{[]string{"frobnicate"}, "unknown plans command"},
		{nil, "usage"},
	} {
		if _, err := plans(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plans %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if status, _ := call(t, s, key, http.MethodGet, "/v1/plans/x", nil); status != http.StatusNotFound {
		t.Errorf("GET /v1/plans/x after refused creates = %d, want 404", status)
	}

	if _, err := plans("archive", "--key", "pro", "--env", "test"); err != nil {
		t.Errorf("plans archive: %v", err)
	}
	if status, p := call(t, s, key, http.MethodGet, "/v1/plans/pro", nil); status != http.StatusOK || p["active"] != false {
		t.Errorf("GET /v1/plans/pro after plans archive = %d %v, want active false", status, p)
	}
	out, err = plans("list", "--env", "test")
	if err != nil {
		t.Fatalf("plans list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "KEY") ||
		!strings.Contains(lines[1], "pro") || !strings.Contains(lines[1], "1h0m0s") || !strings.Contains(lines[1], "false") ||
		!strings.Contains(lines[2], "forever") || !strings.Contains(lines[2], "none") || !strings.Contains(lines[2], "true") {
		t.Errorf("plans list --env test:\n%s\nwant a header, pro (1h0m0s, archived) and forever (none, active)", out)
	}
	if out, err := plans("list", "--env", "live"); err != nil || strings.Contains(out, "pro") || !strings.Contains(out, "secs") || !strings.Contains(out, "24h0m0s") {
		t.Errorf("plans list --env live: %q, %v; want only secs", out, err)
	}
	s.mustStop(t)
}

// call sends one API request with a fresh Idempotency-Key and returns the
// status and the decoded JSON object answered.
func call(t *testing.T, s *server, key, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", fmt.Sprintf("cli-test-%d", time.Now().UnixNano()))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: decode: %v", method, path, err)
	}
	return res.StatusCode, m
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// e2eScript is the seed's buyPlan example and its scenario, relative to this
// package's directory (where go test runs).
const e2eScript = "../../test/e2e/buyplan.mjs"

// nodeRequired reports whether a missing node must fail the test rather than
// skip it: on CI, or when asked.
func nodeRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("CREDITD_TEST_REQUIRE_NODE") == "1"
}

// TestE2EBuyPlan runs the seed's plan purchase code with Node against a real
// "creditd serve", on a fresh SQLite file and on a fresh PostgreSQL database:
// a purchase, retries with the same
// orderId (also 20 racing), a plan larger than the wallet, a refused direct
// debit, burn order of plan credits before wallet credits, and the paywall →
// recharge → retry path.
func TestE2EBuyPlan(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testE2EBuyPlan(t, filepath.Join(t.TempDir(), "creditd.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("end-to-end test skipped in -short mode")
		}
		testE2EBuyPlan(t, pgtest.NewDatabase(t))
	})
}

func testE2EBuyPlan(t *testing.T, databaseURL string) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
)

// tsClientDir is the TypeScript client (clients/typescript), relative to
// this package's directory, where go test runs.
const tsClientDir = "../../clients/typescript"

// tsScripts are the TypeScript client's end-to-end scripts, test/<name>.ts
// compiled to test/<name>.js: the seed's buyPlan flow and the one-call
// purchase written with the client (the scenarios of test/e2e/buyplan.mjs
// and buyplan-atomic.mjs), and its idempotency keys and retries through a
// scripted proxy.
var tsScripts = []string{"buyplan", "buyplan-atomic", "retry"}

// TestTypeScriptClient checks clients/typescript: its node_modules match
// package-lock.json (npm ci when not), it compiles with tsc --strict (the
// compile-time checks of test/types.ts included), no `any` reaches its
// declarations, src/schema.ts is what openapi-typescript generates from
// internal/httpapi/openapi/openapi.json; then it runs the client's
// end-to-end scripts with Node against a real "creditd serve", on a fresh
// SQLite file and a fresh PostgreSQL database, as TestE2EBuyPlan runs the
// .mjs ones. Node and npm are required when CI=true or
// CREDITD_TEST_REQUIRE_NODE=1, else their absence skips the test.
func TestTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("TypeScript client test skipped in -short mode")
	}
	node := tsLookPath(t, "node")
	dir, err := filepath.Abs(tsClientDir)
	if err != nil {
		t.Fatal(err)
	}
	tsInstall(t, dir)

	// tsc --strict, emitting into a temporary directory, never the tree.
	out := t.TempDir()
	tsRun(t, dir, 3*time.Minute, node, filepath.Join(dir, "node_modules/typescript/bin/tsc"), "-p", dir, "--strict", "--outDir", out)

	t.Run("schema-current", func(t *testing.T) {
		generated := filepath.Join(t.TempDir(), "schema.ts")
		tsRun(t, dir, time.Minute, node, filepath.Join(dir, "scripts/schema.mjs"), "--out", generated)
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "src/schema.ts"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("clients/typescript/src/schema.ts is not what openapi-typescript generates from internal/httpapi/openapi/openapi.json "+
				"(first difference: %s); run: cd clients/typescript && npm run generate", firstDiff(got, want))
		}
	})

	t.Run("no-any", func(t *testing.T) {
		decls, err := filepath.Glob(filepath.Join(out, "src", "*.d.ts"))
		if err != nil || len(decls) == 0 {
			t.Fatalf("no declarations emitted in %s: %v", out, err)
		}
		comments := regexp.MustCompile(`(?s)/\*.*?\*/|(?m)^\s*//.*$`)
		anyType := regexp.MustCompile(`\bany\b`)
		for _, d := range decls {
			b, err := os.ReadFile(d)
			if err != nil {
				t.Fatal(err)
			}
			code := comments.ReplaceAllString(string(b), "")
			for i, line := range strings.Split(code, "\n") {
				if anyType.MatchString(line) {
					t.Errorf("%s: `any` in the client's declarations (line %d of the comment-free text): %s", filepath.Base(d), i+1, strings.TrimSpace(line))
				}
			}
		}
	})

	// The compiled scripts run from the temporary directory: it is an ES
	// module package whose imports resolve through the client's node_modules.
	if err := os.WriteFile(filepath.Join(out, "package.json"), []byte(`{"type": "module", "private": true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(out, "node_modules")); err != nil {
		t.Fatal(err)
	}

	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			for _, name := range tsScripts {
				t.Run(name, func(t *testing.T) {
					db := filepath.Join(t.TempDir(), "creditd.db")
					if backend == "postgres" {
						db = pgtest.NewDatabase(t)
					}
					// e2e_test.go's runner: a fresh server, API_BASE and API_KEY, "e2e: … 0 failed".
					testE2EScript(t, db, filepath.Join(out, "test", name+".js"))
				})
			}
		})
	}
}

// tsLookPath finds a program the TypeScript client's test needs: its absence
// fails the test on CI (nodeRequired), else skips it.
func tsLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if nodeRequired() {
			t.Fatalf("%s is not on PATH (needed by the TypeScript client's test; CI=true or CREDITD_TEST_REQUIRE_NODE=1 makes it required): %v", name, err)
		}
		t.Skipf("%s not on PATH: skipping the TypeScript client's test (set CREDITD_TEST_REQUIRE_NODE=1 to require it)", name)
	}
	return p
}

// tsInstall makes dir's node_modules what its package-lock.json locks,
// running npm ci only when they differ: once per checkout and lock change,
// whether .ci/run, a developer or an earlier test run installed them.
func tsInstall(t *testing.T, dir string) {
	t.Helper()
	stale, err := tsStaleModules(dir)
	if err != nil {
		t.Fatal(err)
	}
	if stale == "" {
		return
	}
	npm := tsLookPath(t, "npm")
	t.Logf("clients/typescript: %s: npm ci", stale)
	tsRun(t, dir, 5*time.Minute, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	if stale, err := tsStaleModules(dir); err != nil || stale != "" {
		t.Fatalf("clients/typescript after npm ci: %s %v", stale, err)
	}
}

// tsStaleModules says how dir's node_modules differ from package-lock.json
// (every locked package installed at its locked version), or "" when they
// do not.
func tsStaleModules(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return "", fmt.Errorf("package-lock.json: %v", err)
	}
	for path, p := range lock.Packages {
		if !strings.HasPrefix(path, "node_modules/") {
			continue // the root package
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path), "package.json"))
		if err != nil {
			return path + " is not installed", nil
		}
		var installed struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(b, &installed); err != nil || installed.Version != p.Version {
			return fmt.Sprintf("%s is %q, locked at %q", path, installed.Version, p.Version), nil
		}
	}
	return "", nil
}

// tsRun runs a command in dir and fails the test, with its output, when it
// fails.
func tsRun(t *testing.T, dir string, timeout time.Duration, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// firstDiff describes where a and b first differ, by line.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			return fmt.Sprintf("line %d is %q, generated %q", i+1, x, y)
		}
	}
	return "none"
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const benchTestCustomers = 5

// runBench runs "creditd bench --json" against s and decodes its result.
func runBench(t *testing.T, e env, s *server, args ...string) (benchResult, string, error) {
	t.Helper()
	args = append([]string{"bench", "--url", s.URL, "--customers", strconv.Itoa(benchTestCustomers),
		"--concurrency", "4", "--duration", "1s", "--warmup", "200ms", "--json"}, args...)
	stdout, stderr, err := runCmd(t, e, args...)
	var r benchResult
	if jerr := json.Unmarshal([]byte(stdout), &r); jerr != nil {
		t.Fatalf("%s: stdout is not one JSON result (%v; run returned %v):\n%s\nstderr:\n%s",
			strings.Join(args, " "), jerr, err, stdout, stderr)
	}
	return r, stderr, err
}

// balances sums the bench customers' balances.
func balances(t *testing.T, s *server, key string) int64 {
	t.Helper()
	var sum int64
	for i := range benchTestCustomers {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/customer-by-external-id/bench-"+strconv.Itoa(i)+"/credits", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var bal struct {
			Balance *int64 `json:"balance"`
		}
		err = json.NewDecoder(res.Body).Decode(&bal)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || err != nil || bal.Balance == nil {
			t.Fatalf("GET credits of bench-%d: %d, %v", i, res.StatusCode, err)
		}
		sum += *bal.Balance
	}
	return sum
}

// assertClean checks that a run measured something and saw no error.
func assertClean(t *testing.T, name string, r benchResult, err error, stderr string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: run returned %v\nstderr:\n%s", name, err, stderr)
	}
	if r.Requests <= 0 || r.OK != r.Requests {
		t.Errorf("%s: requests = %d, ok = %d; want > 0 and all ok", name, r.Requests, r.OK)
	}
	if r.Errors != 0 || len(r.ErrorsBy) != 0 || r.FirstError != "" || r.Abandoned != 0 {
		t.Errorf("%s: errors = %d %v %q, abandoned %d, want none", name, r.Errors, r.ErrorsBy, r.FirstError, r.Abandoned)
	}
	if r.RequestsPerSec <= 0 || r.P50 <= 0 || r.P50 > r.P95 || r.P95 > r.P99 || r.P99 > r.Max {
		t.Errorf("%s: req/s %.1f, latency p50 %.3f p95 %.3f p99 %.3f max %.3f ms: want positive and ordered",
			name, r.RequestsPerSec, r.P50, r.P95, r.P99, r.Max)
	}
	if !strings.Contains(stderr, "bench:    1s  requests ") {
		t.Errorf("%s: no progress line on stderr:\n%s", name, stderr)
	}
}

// TestBench runs each mode against a real server and audits the balances:
// every accepted debit costs exactly 1 mc, and rerunning the setup grants
// nothing more.
func TestBench(t *testing.T) {
	e, _ := dbEnv(t)
	key := testKey(t)
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key))
	if strings.Contains(s.stdout.String(), "pprof") {
		t.Errorf("serve started pprof without CREDITD_PPROF_ADDR:\n%s", s.stdout)
	}
	be := env{"CREDITD_API_KEY": key}
	want := int64(benchTestCustomers * benchGrant)

	r, stderr, err := runBench(t, be, s, "--mode", "usage")
	assertClean(t, "usage", r, err, stderr)
	if !strings.Contains(stderr, "setup done") {
		t.Errorf("usage: stderr does not report the setup:\n%s", stderr)
	}
	if r.Events != r.OK || r.Duplicates != 0 || r.DebitsTotal < r.Events {
		t.Errorf("usage: events %d, ok %d, duplicates %d, debits_total %d: want events = ok ≤ debits_total, no duplicates",
			r.Events, r.OK, r.Duplicates, r.DebitsTotal)
	}
	want -= r.DebitsTotal
	if got := balances(t, s, key); got != want {
		t.Fatalf("after usage: balances sum to %d, want %d (the grants less %d debits of 1 mc)", got, want, r.DebitsTotal)
	}

	r, stderr, err = runBench(t, be, s, "--mode", "batch", "--batch-size", "10")
	assertClean(t, "batch", r, err, stderr)
	if r.BatchSize != 10 || r.Events != 10*r.OK || r.EventsPerSec <= r.RequestsPerSec || r.DebitsTotal < r.Events {
		t.Errorf("batch: batch_size %d, events %d (%.0f/s) over %d ok requests (%.0f/s), debits_total %d: want 10 events per request",
			r.BatchSize, r.Events, r.EventsPerSec, r.OK, r.RequestsPerSec, r.DebitsTotal)
	}
	want -= r.DebitsTotal
	if got := balances(t, s, key); got != want {
		t.Fatalf("after batch: balances sum to %d, want %d", got, want)
	}

	r, stderr, err = runBench(t, be, s, "--mode", "check")
	assertClean(t, "check", r, err, stderr)
	if r.Events != 0 || r.DebitsTotal != 0 {
		t.Errorf("check: events %d, debits_total %d, want 0: checks never debit", r.Events, r.DebitsTotal)
	}
	if got := balances(t, s, key); got != want {
		t.Fatalf("after check: balances sum to %d, want %d", got, want)
	}

	// --rate caps the whole run, not each worker.
	r, stderr, err = runBench(t, be, s, "--mode", "check", "--setup=false", "--rate", "100")
	assertClean(t, "check --rate 100", r, err, stderr)
	if r.RequestsPerSec > 110 || r.RateLimit != 100 {
		t.Errorf("check --rate 100: %.1f req/s (rate_limit %v), want at most 100 (+10%%)", r.RequestsPerSec, r.RateLimit)
	}

	// The text report names every figure.
	stdout, stderr, err := runCmd(t, be, "bench", "--url", s.URL, "--customers", "1", "--concurrency", "2",
		"--duration", "300ms", "--warmup", "0s", "--setup=false")
	if err != nil {
		t.Fatalf("text report: %v\n%s", err, stderr)
	}
	for _, want := range []string{"mode         usage", "customers    1", "concurrency  2", "req/s", "debits/s", "p50 ", "p95 ", "p99 ", "max ", "errors       0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text report lacks %q:\n%s", want, stdout)
		}
	}
	s.mustStop(t)
}

// TestBenchEveryRequestFails: without the setup nothing is priced, every
// debit is a 404, and the run says so in its breakdown and its exit status.
func TestBenchEveryRequestFails(t *testing.T) {
	e, _ := dbEnv(t)
	key := testKey(t)
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key))
	r, _, err := runBench(t, env{"CREDITD_API_KEY": key}, s, "--setup=false")
	if err == nil || !strings.Contains(err.Error(), "every request failed") {
		t.Errorf("run returned %v, want an every-request-failed error", err)
	}
	if r.Requests == 0 || r.OK != 0 || r.Errors != r.Requests || r.ErrorsBy["404"] != r.Requests {
		t.Errorf("requests %d, ok %d, errors %d %v: want every request counted as a 404", r.Requests, r.OK, r.Errors, r.ErrorsBy)
	}
	if !strings.Contains(r.FirstError, "404") || !strings.Contains(r.FirstError, "not-found") {
		t.Errorf("first_error = %q, want the 404 problem", r.FirstError)
	}
	s.mustStop(t)
}

func TestBenchSetupFails(t *testing.T) {
	e, _ := dbEnv(t)
	key := testKey(t)
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key))
	_, _, err := runCmd(t, env{"CREDITD_API_KEY": key + "0"}, "bench", "--url", s.URL, "--duration", "1s")
	if err == nil || !strings.Contains(err.Error(), "setup") || !strings.Contains(err.Error(), "401") {
		t.Errorf("bench with an unknown key: %v, want a setup error naming the 401", err)
	}
	s.mustStop(t)
	_, _, err = runCmd(t, env{"CREDITD_API_KEY": key, "CREDITD_BENCH_URL": s.URL}, "bench", "--duration", "1s")
	if err == nil || !strings.Contains(err.Error(), "setup") {
		t.Errorf("bench against a stopped server: %v, want a setup error", err)
	}
}

func TestBenchFlags(t *testing.T) {
	ok := env{"CREDITD_API_KEY": "qs_test_0123456789abcdef"}
	for _, tc := range []struct {
		env  env
		args []string
		want string
	}{
		{env{}, nil, "--key"},
		{ok, []string{"--mode", "reserve"}, "--mode"},
		{ok, []string{"--customers", "0"}, "--customers"},
		{ok, []string{"--concurrency", "0"}, "--concurrency"},
		{ok, []string{"--batch-size", "1001"}, "--batch-size"},
		{ok, []string{"--duration", "-1s"}, "--duration"},
		{ok, []string{"--rate", "-5"}, "--rate"},
		{ok, []string{"--url", "127.0.0.1:8080"}, "--url"},
		{ok, []string{"--duration", "0", "--setup=false"}, "nothing to do"},
		{ok, []string{"extra"}, "extra"},
	} {
		_, _, err := runCmd(t, tc.env, append([]string{"bench"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
	stdout, _, err := runCmd(t, env{}, "help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"creditd bench", "CREDITD_BENCH_URL", "CREDITD_API_KEY", "CREDITD_PPROF_ADDR"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help does not mention %s", want)
		}
	}
}

var pprofRE = regexp.MustCompile(`(?m)^creditd: pprof on (http://\S+/debug/pprof/)$`)

// TestPprof: CREDITD_PPROF_ADDR serves the profiles on a port of their own,
// never on the API's, and stops with the server.
func TestPprof(t *testing.T) {
	e, _ := dbEnv(t)
	key := testKey(t)
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key, "CREDITD_PPROF_ADDR", "127.0.0.1:0"))
	m := pprofRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("serve with CREDITD_PPROF_ADDR printed no pprof address:\n%s", s.stdout)
	}
	base := m[1]
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(base + "cmdline"); code != http.StatusOK || body == "" {
		t.Errorf("GET %scmdline: %d %q, want 200 and the command line", base, code, body)
	}
	if code, body := get(base); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET %s: %d, want 200 and the profile index", base, code)
	}
	if code := s.status(t, "", "/debug/pprof/"); code != http.StatusUnauthorized && code != http.StatusNotFound {
		t.Errorf("API port GET /debug/pprof/ without a key: %d, want 401 or 404", code)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
		if code := s.status(t, key, path); code != http.StatusNotFound {
			t.Errorf("API port GET %s with a key: %d, want 404", path, code)
		}
	}
	s.mustStop(t)
	if res, err := http.Get(base + "cmdline"); err == nil {
		res.Body.Close()
		t.Errorf("pprof still answers %d after the server stopped", res.StatusCode)
	}

	_, _, err := runCmd(t, e.with("CREDITD_PPROF_ADDR", "127.0.0.1:-1"), "serve")
	if err == nil || !strings.Contains(err.Error(), "pprof") {
		t.Errorf("serve with a bad CREDITD_PPROF_ADDR: %v, want an error naming pprof", err)
	}
}

package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/creditd/creditd/internal/pgtest"
)

// TestMetrics runs a small load (grants, concurrent usage, refused and
// unrouted requests, webhooks to a receiver) through a real "creditd serve"
// on each store, scrapes /metrics without a key, parses it, and checks that
// every request was counted under its route, that group commits and webhook
// attempts were measured, and, on PostgreSQL, the pool's use.
func TestMetrics(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "creditd.db")
			if backend == "postgres" {
				db = pgtest.NewDatabase(t)
			}
			testMetrics(t, backend, db)
		})
	}
}

const (
	metricsCustomers = 4
	metricsClients   = 8
	metricsUsages    = 10 // per client
)

func testMetrics(t *testing.T, backend, databaseURL string) {
	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	key := testKey(t)
	s := startServer(t, env{"CREDITD_DATABASE_URL": databaseURL, "CREDITD_BOOTSTRAP_KEY": key})

	// /metrics is public; nothing beside it is.
	for path, want := range map[string]int{
		"/metrics":                 http.StatusOK,
		"/metricsx":                http.StatusUnauthorized,
		"/metrics/":                http.StatusUnauthorized,
		"/metrics/../v1/customers": http.StatusUnauthorized,
	} {
		if got := s.status(t, "", path); got != want {
			t.Errorf("GET %s without a key: %d, want %d", path, got, want)
		}
	}

	var me struct {
		ID string `json:"id"`
	}
	mustDo(t, s, key, http.MethodGet, "/v1/tenants/me", "", &me)
	mustDo(t, s, key, http.MethodPatch, "/v1/tenants/"+me.ID+"/config", fmt.Sprintf(`{"webhook_url":%q,"webhook_secret":%q}`,
		receiver.URL+"/hooks", base64.StdEncoding.EncodeToString([]byte("metrics-test-webhook-secret-0123"))), nil)
	mustDo(t, s, key, http.MethodPost, "/v1/billable-metrics", `{"key":"tokens","name":"Tokens"}`, nil)
	mustDo(t, s, key, http.MethodPost, "/v1/metering-rules", `{"billable_metric_key":"tokens","cost_type":"per_unit","unit_cost":1}`, nil)
	grants := map[int]int{}
	for i := range metricsCustomers {
		grants[do(t, s, key, http.MethodPost, "/v1/topup/grant",
			fmt.Sprintf(`{"external_customer_id":"m-%d","credits":100000,"source":"topup"}`, i), nil)]++
	}

	// Concurrent usage, so that commands meet in groups.
	var mu sync.Mutex
	usages := map[int]int{}
	var wg sync.WaitGroup
	for c := range metricsClients {
		wg.Go(func() {
			for range metricsUsages {
				code := do(t, s, key, http.MethodPost, "/v1/usage",
					fmt.Sprintf(`{"external_customer_id":"m-%d","billable_metric_key":"tokens","units":3}`, c%metricsCustomers), nil)
				mu.Lock()
				usages[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if do(t, s, "", http.MethodPost, "/v1/usage", `{}`, nil) != http.StatusUnauthorized {
		t.Error("POST /v1/usage without a key: want 401")
	}
	if do(t, s, key, http.MethodGet, "/v1/no-such-thing/12345", "", nil) != http.StatusNotFound {
		t.Error("GET /v1/no-such-thing/12345: want 404")
	}
	if do(t, s, key, "BREW", "/v1/usage", "", nil) != http.StatusMethodNotAllowed {
		t.Error("BREW /v1/usage: want 405")
	}

	// Requests are counted once answered, and webhooks go out in the
	// background: scrape until both show, then check everything.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(15 * time.Second); ; {
		fams = scrape(t, s)
		if sample(fams, "creditd_webhook_attempts_total", "result", "delivered") > 0 &&
			sample(fams, "creditd_http_requests_total", "route", "unmatched", "method", "other") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivered webhook or no 405 counted within 15s (receiver got %d)\nstderr:\n%s", hooks.Load(), s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for code, n := range usages {
		if got := sample(fams, "creditd_http_requests_total", "route", "POST /v1/usage", "method", "POST", "status", strconv.Itoa(code)); got != float64(n) {
			t.Errorf(`requests_total{route="POST /v1/usage",status="%d"} = %v, want %d (answers: %v)`, code, got, n, usages)
		}
	}
	if usages[http.StatusOK] != metricsClients*metricsUsages {
		t.Errorf("usage answers %v, want %d × 200", usages, metricsClients*metricsUsages)
	}
	for code, n := range grants {
		if got := sample(fams, "creditd_http_requests_total", "route", "POST /v1/topup/grant", "status", strconv.Itoa(code)); got != float64(n) {
			t.Errorf(`requests_total{route="POST /v1/topup/grant",status="%d"} = %v, want %d`, code, got, n)
		}
	}
	// 401 comes before routing, yet the refusal is counted under its route.
	if got := sample(fams, "creditd_http_requests_total", "route", "POST /v1/usage", "status", "401"); got != 1 {
		t.Errorf(`requests_total{route="POST /v1/usage",status="401"} = %v, want 1`, got)
	}
	if got := sample(fams, "creditd_http_requests_total", "route", "unmatched", "method", "GET", "status", "404"); got != 1 {
		t.Errorf(`requests_total{route="unmatched",method="GET",status="404"} = %v, want 1`, got)
	}
	if got := sample(fams, "creditd_http_requests_total", "route", "unmatched", "method", "other", "status", "405"); got != 1 {
		t.Errorf(`requests_total{route="unmatched",method="other",status="405"} = %v, want 1`, got)
	}
	sent := metricsClients*metricsUsages + 1
	if got := histCount(fams, "creditd_http_request_duration_seconds", "route", "POST /v1/usage", "method", "POST"); got != uint64(sent) {
		t.Errorf(`request_duration_seconds{route="POST /v1/usage"} count = %d, want %d`, got, sent)
	}
	// Never a raw path: every route is a pattern ("METHOD /path") or unmatched.
	for _, m := range fams["creditd_http_requests_total"].GetMetric() {
		if r := label(m, "route"); r != "unmatched" && !strings.Contains(r, " /") {
			t.Errorf("requests_total has route %q, want a mux pattern or \"unmatched\"", r)
		}
	}

	groups := histCount(fams, "creditd_commit_group_size")
	commands := int(histSum(fams, "creditd_commit_group_size"))
	if groups == 0 || commands < metricsCustomers+metricsClients*metricsUsages {
		t.Errorf("commit_group_size: %d groups of %d commands, want > 0 groups carrying every grant and usage (%d)",
			groups, commands, metricsCustomers+metricsClients*metricsUsages)
	}
	if got := histCount(fams, "creditd_commit_duration_seconds"); got != groups {
		t.Errorf("commit_duration_seconds count = %d, want one per group (%d)", got, groups)
	}
	ok, failed := sample(fams, "creditd_commit_groups_total", "result", "ok"), sample(fams, "creditd_commit_groups_total", "result", "error")
	if ok+failed != float64(groups) || failed != 0 {
		t.Errorf("commit_groups_total: ok %v, error %v; want %d ok", ok, failed, groups)
	}
	t.Logf("%s: %d commands in %d groups", backend, commands, groups)

	if got := histCount(fams, "creditd_webhook_attempt_duration_seconds"); got == 0 {
		t.Error("webhook_attempt_duration_seconds: no attempt observed")
	}
	if _, ok := fams["creditd_webhook_outbox_lag_seconds"]; !ok {
		t.Error("no creditd_webhook_outbox_lag_seconds")
	}
	// The sweeper runs a round as serve starts.
	if runs := sample(fams, "creditd_sweeper_runs_total", "result", "ok"); runs < 1 {
		t.Errorf("sweeper_runs_total{result=ok} = %v, want at least the first round", runs)
	}
	if _, ok := fams["creditd_sweeper_last_success_timestamp_seconds"]; !ok {
		t.Error("no creditd_sweeper_last_success_timestamp_seconds")
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	_, pool := fams["creditd_db_pool_max_connections"]
	switch {
	case backend == "postgres" && !pool:
		t.Error("no creditd_db_pool_* metrics on PostgreSQL")
	case backend == "postgres":
		if got := sample(fams, "creditd_db_pool_max_connections"); got != 16 {
			t.Errorf("db_pool_max_connections = %v, want 16 (the default pool)", got)
		}
		if got := sample(fams, "creditd_db_pool_acquires_total"); got == 0 {
			t.Error("db_pool_acquires_total = 0 after a load run")
		}
	case pool:
		t.Error("creditd_db_pool_* metrics on SQLite, which has no pgx pool")
	default:
		// database/sql's statistics of the three SQLite pools.
		for _, name := range []string{"sqlite_write", "sqlite_read", "sqlite_readers"} {
			if got := sample(fams, "go_sql_max_open_connections", "db_name", name); got < 1 {
				t.Errorf("go_sql_max_open_connections{db_name=%q} = %v, want the pool's bound", name, got)
			}
		}
	}
	s.mustStop(t)
}

// do sends one request (with a fresh Idempotency-Key when it has a body)
// and returns its status, decoding a JSON answer into out when out is set.
func do(t *testing.T, s *server, key, method, path, body string, out any) int {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Error(err)
		return 0
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("metrics-test-%d", idemSeq.Add(1)))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Errorf("%s %s: decode: %v", method, path, err)
		}
	}
	io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

var idemSeq atomic.Int64

// mustDo is do for the set-up's requests, which must succeed.
func mustDo(t *testing.T, s *server, key, method, path, body string, out any) {
	t.Helper()
	if code := do(t, s, key, method, path, body, out); code/100 != 2 {
		t.Fatalf("%s %s: %d, want 2xx", method, path, code)
	}
}

// scrape reads /metrics without a key and parses the text format.
func scrape(t *testing.T, s *server) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// matching returns the metrics of the family name whose labels include the
// given name-value pairs.
func matching(fams map[string]*dto.MetricFamily, name string, labels ...string) []*dto.Metric {
	var out []*dto.Metric
next:
	for _, m := range fams[name].GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			if label(m, labels[i]) != labels[i+1] {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sample sums the matching counters and gauges.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var v float64
	for _, m := range matching(fams, name, labels...) {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v
}

func histCount(fams map[string]*dto.MetricFamily, name string, labels ...string) uint64 {
	var n uint64
	for _, m := range matching(fams, name, labels...) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

func histSum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var v float64
	for _, m := range matching(fams, name, labels...) {
		v += m.GetHistogram().GetSampleSum()
	}
	return v
}

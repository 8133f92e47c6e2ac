package concurrency

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
)

// creditdBin is the creditd binary TestMain builds once for every test.
var creditdBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "creditd-concurrency-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "concurrency:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if !testing.Short() { // every test here skips in -short mode
		creditdBin = filepath.Join(dir, "creditd")
		cmd := exec.Command("go", "build", "-o", creditdBin, "github.com/creditd/creditd/cmd/creditd")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "concurrency: go build creditd: %v\n", err)
			return 1
		}
	}
	return pgtest.Main(m)
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("concurrency tests run real servers for seconds: skipped in -short mode")
	}
}

// testKey is the API key every instance of one test is bootstrapped with.
func testKey(t *testing.T) string {
	return fmt.Sprintf("qs_test_%s%d", strings.NewReplacer("/", "", "_", "").Replace(t.Name()), time.Now().UnixNano())
}

// ---------------------------------------------------------------------------
// creditd processes

// instance is one "creditd serve" process.
type instance struct {
	name    string
	base    string // http://127.0.0.1:PORT
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	stdout  *syncBuffer
	stderr  *syncBuffer // JSON logs
	exited  chan struct{}
	waitErr error
	dumped  bool // its logs were printed already
	killed  bool // stopped with SIGKILL on purpose: its exit status is no failure
}

// startInstance starts "creditd serve" on dbURL with key installed if the
// database has none, waits until /healthz answers, and stops it (SIGTERM)
// when the test ends, printing its logs if the test failed. extraEnv
// (KEY=value) comes after the defaults below and overrides them: os/exec
// keeps the last value of a key given twice.
func startInstance(t *testing.T, name, dbURL, key string, hc *http.Client, extraEnv ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, creditdBin, "serve") // the context only kills a server SIGTERM did not stop
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CREDITD_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"CREDITD_ADDR=127.0.0.1:0",
		"CREDITD_DATABASE_URL="+dbURL,
		"CREDITD_BOOTSTRAP_KEY="+key,
		"CREDITD_LOG_FORMAT=json",
		"CREDITD_SWEEP_INTERVAL=1s",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	in := &instance{name: name, cmd: cmd, cancel: cancel, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	cmd.Stdout = &lineWriter{buf: in.stdout, line: func(l string) {
		if a, ok := strings.CutPrefix(l, "creditd: listening on "); ok {
			select {
			case addrc <- a:
			default:
			}
		}
	}}
	cmd.Stderr = in.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: start %s: %v", name, creditdBin, err)
	}
	go func() { in.waitErr = cmd.Wait(); close(in.exited) }()
	t.Cleanup(func() { in.stop(t) })

	select {
	case a := <-addrc:
		in.base = strings.TrimSpace(a)
	case <-in.exited:
		t.Fatalf("%s exited before listening: %v\nstdout:\n%s\nstderr:\n%s", name, in.waitErr, in.stdout, in.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not print its address within 60 s\nstdout:\n%s\nstderr:\n%s", name, in.stdout, in.stderr)
	}
	if !strings.HasPrefix(in.base, "http://127.0.0.1:") {
		t.Fatalf("%s listens on %q, not on 127.0.0.1", name, in.base)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(in.base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /healthz did not answer 200 within 30 s (last error %v)\nstderr:\n%s", name, err, in.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s: %s (pid %d) on %s", name, in.base, cmd.Process.Pid, redact(dbURL))
	return in
}

// stop sends SIGTERM and waits for a graceful exit (killing after 20 s).
func (in *instance) stop(t *testing.T) {
	select {
	case <-in.exited:
	default:
		in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20 s of SIGTERM: killed", in.name)
			in.cancel()
			<-in.exited
		}
	}
	in.cancel()
	if in.waitErr != nil && !in.killed {
		t.Errorf("%s exited with %v", in.name, in.waitErr)
	}
	if t.Failed() && !in.dumped {
		in.dumpLogs(t, nil)
	}
}

// kill sends SIGKILL, a crash in the middle of whatever the process was
// doing, and waits until it is gone.
func (in *instance) kill(t *testing.T) {
	t.Helper()
	in.killed = true
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		select {
		case <-in.exited: // it had exited already: that is the failure
			t.Errorf("%s had exited before it was killed: %v\nstderr:\n%s", in.name, in.waitErr, in.stderr)
			return
		default:
			t.Fatalf("%s: SIGKILL: %v", in.name, err)
		}
	}
	select {
	case <-in.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still runs 20 s after SIGKILL", in.name)
	}
}

// dumpLogs prints the interesting part of an instance's JSON log: every line
// above INFO, every line naming one of reqIDs, every request answered 5xx,
// and the last lines.
func (in *instance) dumpLogs(t *testing.T, reqIDs map[string]bool) {
	in.dumped = true
	lines := strings.Split(strings.TrimRight(in.stderr.String(), "\n"), "\n")
	var out []string
	for i, l := range lines {
		var rec struct {
			Level     string `json:"level"`
			Msg       string `json:"msg"`
			Status    int    `json:"status"`
			RequestID string `json:"request_id"`
		}
		keep := i >= len(lines)-20
		if json.Unmarshal([]byte(l), &rec) != nil {
			keep = true // not JSON: a panic trace or the like
		} else if rec.Level != "INFO" || rec.Msg != "request" || rec.Status >= 500 || reqIDs[rec.RequestID] {
			keep = true
		}
		if keep {
			out = append(out, l)
		}
	}
	const max = 300
	if len(out) > max {
		out = append(out[:max/2], append([]string{fmt.Sprintf("… %d lines left out …", len(out)-max)}, out[len(out)-max/2:]...)...)
	}
	t.Logf("%s: %d log lines on stderr; the interesting ones:\n%s\nstdout:\n%s", in.name, len(lines), strings.Join(out, "\n"), in.stdout)
}

func redact(u string) string {
	if i := strings.Index(u, "?"); i >= 0 {
		return u[:i]
	}
	return u
}

// syncBuffer is a bytes.Buffer that goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lineWriter copies into buf and calls line for every complete line.
type lineWriter struct {
	buf     *syncBuffer
	line    func(string)
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// ---------------------------------------------------------------------------
// HTTP

// newHTTPClient is the client every test goroutine shares: enough idle
// connections per host for every worker, no proxy (only 127.0.0.1 is
// spoken to).
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     60 * time.Second,
		},
	}
}

// api talks to creditd with one key.
type api struct {
	hc  *http.Client
	key string
}

// reply is one HTTP answer.
type reply struct {
	status   int
	body     []byte
	replayed bool   // X-Idempotent-Replayed: true
	reqID    string // X-Request-Id
}

func (a *api) do(ctx context.Context, method, url, idemKey string, body []byte) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("X-API-Key", a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, body: b, replayed: resp.Header.Get("X-Idempotent-Replayed") == "true",
		reqID: resp.Header.Get("X-Request-Id")}, nil
}

// must sends a setup request and decodes its answer, failing the test on
// any other status than want.
func (a *api) must(t *testing.T, method, url, idemKey string, body any, want int, out any) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := a.do(ctx, method, url, idemKey, b)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, r.body, err)
		}
	}
}

// balanceJSON is GET …/credits.
type balanceJSON struct {
	CustomerID       string `json:"customer_id"`
	Balance          int64  `json:"balance"`
	ReservedBalance  int64  `json:"reserved_balance"`
	EffectiveBalance int64  `json:"effective_balance"`
	LifetimeEarned   int64  `json:"lifetime_earned"`
	Version          int64  `json:"version"`
}

// usageJSON is the answer to POST /v1/usage.
type usageJSON struct {
	EventID        string `json:"event_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Status         string `json:"status"`
	EstimatedCost  int64  `json:"estimated_cost"`
	Duplicate      bool   `json:"duplicate"`
}

// blockJSON is the part of a grant's answer the tests read.
type blockJSON struct {
	ID              string `json:"id"`
	CustomerID      string `json:"customer_id"`
	OriginalAmount  int64  `json:"original_amount"`
	RemainingAmount int64  `json:"remaining_amount"`
}

// problemJSON is an RFC 7807 body.
type problemJSON struct {
	Code      string `json:"code"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Required  *int64 `json:"required"`
	Available *int64 `json:"available"`
}

// entryJSON is one ledger entry.
type entryJSON struct {
	ID             string  `json:"id"`
	CustomerID     string  `json:"customer_id"`
	Type           string  `json:"type"`
	Delta          int64   `json:"delta"`
	BalanceAfter   int64   `json:"balance_after"`
	BlockID        *string `json:"block_id"`
	ReferenceType  *string `json:"reference_type"`
	ReferenceID    *string `json:"reference_id"`
	IdempotencyKey *string `json:"idempotency_key"`
}

// ---------------------------------------------------------------------------
// set-up shared by the tests

// metricKey is a per_unit metric at 1 mc per unit: units are millicredits.
const metricKey = "hammer_units"

// cluster is the servers of one test and the customer they all work on.
type cluster struct {
	dbURL    string // the database every instance serves
	insts    []*instance
	api      *api
	customer string // UUID
}

// postgresCluster starts n instances on one fresh PostgreSQL database, one
// after the other (the second finds the schema migrated and the key present).
func postgresCluster(t *testing.T, n int) *cluster {
	t.Helper()
	skipShort(t)
	url := pgtest.NewDatabase(t)
	return newCluster(t, url, n)
}

// sqliteCluster starts one instance on a fresh SQLite file.
func sqliteCluster(t *testing.T) *cluster {
	t.Helper()
	skipShort(t)
	return newCluster(t, filepath.Join(t.TempDir(), "creditd.db"), 1)
}

func newCluster(t *testing.T, dbURL string, n int) *cluster {
	t.Helper()
	hc := newHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	key := testKey(t)
	c := &cluster{dbURL: dbURL, api: &api{hc: hc, key: key}}
	for i := range n {
		c.insts = append(c.insts, startInstance(t, fmt.Sprintf("creditd-%d", i+1), dbURL, key, hc))
	}
	// Every instance must accept the key before the work starts.
	for _, in := range c.insts {
		c.api.must(t, http.MethodGet, in.base+"/v1/billable-metrics?limit=1", "", nil, http.StatusOK, nil)
	}
	base := c.insts[0].base
	c.api.must(t, http.MethodPost, base+"/v1/billable-metrics", "setup-metric",
		map[string]any{"key": metricKey, "name": "hammer units"}, http.StatusCreated, nil)
	c.api.must(t, http.MethodPost, base+"/v1/metering-rules", "setup-rule",
		map[string]any{"billable_metric_key": metricKey, "cost_type": "per_unit", "unit_cost": 1}, http.StatusCreated, nil)
	var cust struct {
		ID string `json:"id"`
	}
	c.api.must(t, http.MethodPost, base+"/v1/customers", "setup-customer",
		map[string]any{"external_id": "hammered", "display_name": "one hot customer"}, http.StatusCreated, &cust)
	c.customer = cust.ID
	return c
}

// balance reads the customer's balance from instance i.
func (c *cluster) balance(t *testing.T, i int) balanceJSON {
	t.Helper()
	var b balanceJSON
	c.api.must(t, http.MethodGet, c.insts[i%len(c.insts)].base+"/v1/customers/"+c.customer+"/credits", "", nil, http.StatusOK, &b)
	return b
}

// ledger reads the customer's whole ledger, newest first, 500 at a time.
func (c *cluster) ledger(t *testing.T) (entries []entryJSON, pages int) {
	t.Helper()
	cursor := ""
	for {
		url := c.insts[pages%len(c.insts)].base + "/v1/customers/" + c.customer + "/ledger?limit=500"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		var page struct {
			Data       []entryJSON `json:"data"`
			Pagination struct {
				HasMore    bool    `json:"has_more"`
				NextCursor *string `json:"next_cursor"`
			} `json:"pagination"`
		}
		c.api.must(t, http.MethodGet, url, "", nil, http.StatusOK, &page)
		pages++
		entries = append(entries, page.Data...)
		if !page.Pagination.HasMore {
			return entries, pages
		}
		if page.Pagination.NextCursor == nil || *page.Pagination.NextCursor == "" {
			t.Fatalf("ledger page %d: has_more without next_cursor", pages)
		}
		if len(page.Data) == 0 || pages > 10000 {
			t.Fatalf("ledger page %d: has_more with %d entries", pages, len(page.Data))
		}
		cursor = *page.Pagination.NextCursor
	}
}

// stopAll stops every instance (SIGTERM, a graceful exit), so that the
// database can be read directly with nothing writing to it.
func (c *cluster) stopAll(t *testing.T) {
	t.Helper()
	for _, in := range c.insts {
		in.stop(t)
	}
}

// dumpAll prints every instance's interesting log lines.
func (c *cluster) dumpAll(t *testing.T, reqIDs map[string]bool) {
	for _, in := range c.insts {
		in.dumpLogs(t, reqIDs)
	}
}

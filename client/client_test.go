package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an httptest server that answers from a script, one status per
// request (the last one repeating), and records what it was sent.
type recorder struct {
	*httptest.Server
	mu       sync.Mutex
	keys     []string // Idempotency-Key of each request
	bodies   []string
	paths    []string
	answer   func(n int, w http.ResponseWriter) // n counts from 1
	hijacked int                                // the first hijacked requests are cut off without an answer
}

func newRecorder(t *testing.T, answer func(n int, w http.ResponseWriter)) *recorder {
	r := &recorder{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
		r.bodies = append(r.bodies, string(body))
		r.paths = append(r.paths, req.URL.RequestURI())
		n := len(r.keys)
		cut := n <= r.hijacked
		r.mu.Unlock()
		if req.Header.Get("X-API-Key") != "qs_test_k" {
			t.Errorf("request %d without the API key", n)
		}
		if cut {
			// A connection that fails after the request was sent: the
			// server may have committed, the client cannot know.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		r.answer(n, w)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// seen returns copies of what the server was sent so far.
func (r *recorder) seen() (keys, bodies, paths []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...), append([]string(nil), r.bodies...), append([]string(nil), r.paths...)
}

func (r *recorder) distinctKeys() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]bool{}
	for _, k := range r.keys {
		m[k] = true
	}
	return m
}

func problem(w http.ResponseWriter, status int, code, detail string, extra string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	io.WriteString(w, `{"type":"/problems/`+code+`","title":"t","status":`+itoa(status)+`,"detail":"`+detail+`","code":"`+code+`"`+extra+`}`)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

const blockJSON = `{"id":"blk_1","customer_id":"c1","external_customer_id":"u1","original_amount":5000,"remaining_amount":5000,` +
	`"priority":0,"expires_at":null,"source":"topup","reason":null,"price_paid":0,"currency":null,"external_payment_id":null,` +
	`"metadata":{},"created_at":"2026-04-13T14:00:00.000Z"}`

func ok(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, blockJSON)
}

// fast is a client whose backoff is tiny, so that tests of retries take
// milliseconds.
func fast(url string, opts ...Option) *Client {
	return New(url, "qs_test_k", append([]Option{WithBackoff(time.Millisecond, 50*time.Millisecond)}, opts...)...)
}

func grant() GrantRequest { return GrantRequest{ExternalCustomerID: "u1", Credits: 5000} }

func TestClientRetriesReuseTheIdempotencyKey(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter) {
		if n <= 2 {
			problem(w, http.StatusServiceUnavailable, "service-unavailable", "the database is unavailable", "")
			return
		}
		ok(w)
	})
	c := fast(srv.URL)
	b, err := c.Grant(context.Background(), grant())
	if err != nil {
		t.Fatalf("Grant after two 503s: %v", err)
	}
	if b.ID != "blk_1" || b.RemainingAmount != 5000 || b.ExpiresAt != nil || b.ExternalCustomerID != "u1" {
		t.Errorf("block = %+v", b)
	}
	if string(b.Raw) != blockJSON {
		t.Errorf("Raw = %s, want the answer as sent", b.Raw)
	}
	if n := srv.count(); n != 3 {
		t.Fatalf("%d requests, want 3 (two 503s, then the 201)", n)
	}
	keys := srv.distinctKeys()
	if len(keys) != 1 || keys[""] {
		t.Fatalf("idempotency keys seen: %v, want one non-empty key for all three attempts", keys)
	}
	_, bodies, _ := srv.seen()
	for i, body := range bodies {
		if body != bodies[0] {
			t.Errorf("attempt %d sent %s, want the first attempt's body %s", i+1, body, bodies[0])
		}
	}

	// Another logical call draws another key; a key given is sent as is.
	if _, err := c.Grant(context.Background(), grant()); err != nil {
		t.Fatal(err)
	}
	g := grant()
	g.IdempotencyKey = "order-42"
	if _, err := c.Grant(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	sent, bodies, _ := srv.seen()
	second, third := sent[3], sent[4]
	if second == "" || keys[second] {
		t.Errorf("a second call reused key %q of the first", second)
	}
	if third != "order-42" {
		t.Errorf("key sent = %q, want the caller's order-42", third)
	}
	if strings.Contains(bodies[4], "order-42") || strings.Contains(bodies[4], "IdempotencyKey") {
		t.Errorf("the key leaked into the body: %s", bodies[4])
	}
}

func TestClientRetriesConnectionErrorsWithTheSameKey(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter) { ok(w) })
	srv.hijacked = 2
	_, err := fast(srv.URL).Grant(context.Background(), grant())
	if err != nil {
		t.Fatalf("Grant after two cut connections: %v", err)
	}
	if n, keys := srv.count(), srv.distinctKeys(); n != 3 || len(keys) != 1 {
		t.Fatalf("%d requests with keys %v, want 3 under one key", n, keys)
	}
}

func TestClientNoRetryOnClientErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		extra  string
	}{
		{400, "invalid-request", `,"errors":[{"field":"credits","message":"must be ≥ 1"},{"field":"priority","message":"must be 0–100"}]`},
		{401, "unauthorized", ""},
		{402, "insufficient-credits", `,"required":5000,"available":1200`},
		{404, "not-found", ""},
		{409, "customer-exists", `,"customer_id":"c9"`},
		{500, "internal", ""},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv := newRecorder(t, func(n int, w http.ResponseWriter) { problem(w, tc.status, tc.code, "the detail", tc.extra) })
			_, err := fast(srv.URL).Grant(context.Background(), grant())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Grant: %v, want an *Error", err)
			}
			if n := srv.count(); n != 1 {
				t.Errorf("%d requests, want 1: a %d is not retried", n, tc.status)
			}
			if e.Status != tc.status || e.Code != tc.code || e.Detail != "the detail" || ErrorCode(err) != tc.code {
				t.Errorf("error = %+v", e)
			}
			if !strings.Contains(err.Error(), "the detail") || !strings.Contains(err.Error(), tc.code) {
				t.Errorf("message %q lacks the detail or the code", err)
			}
			switch tc.status {
			case 400:
				if len(e.Fields) != 2 || e.Fields[0].Field != "credits" || !strings.Contains(err.Error(), "priority must be 0–100") {
					t.Errorf("400 fields = %+v, message %q", e.Fields, err)
				}
			case 402:
				if e.Required != 5000 || e.Available != 1200 {
					t.Errorf("402 required %d available %d, want 5000 and 1200", e.Required, e.Available)
				}
			case 409:
				if string(e.Extra["customer_id"]) != `"c9"` {
					t.Errorf("409 extra = %v, want customer_id", e.Extra)
				}
			}
		})
	}
}

// waits replaces c's sleep with one that records each wait and returns at
// once, so that delays of seconds are tested in microseconds.
func waits(c *Client) *[]time.Duration {
	var got []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		got = append(got, d)
		return ctx.Err()
	}
	return &got
}

func TestClientHonoursRetryAfter(t *testing.T) {
	date := time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)
	srv := newRecorder(t, func(n int, w http.ResponseWriter) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "3")
			problem(w, http.StatusTooManyRequests, "rate-limited", "slow down", "")
		case 2:
			w.Header().Set("Retry-After", date) // the HTTP-date form
			problem(w, http.StatusServiceUnavailable, "service-unavailable", "down", "")
		default:
			ok(w)
		}
	})
	c := New(srv.URL, "qs_test_k", WithBackoff(time.Millisecond, 10*time.Second))
	got := waits(c)
	if _, err := c.Grant(context.Background(), grant()); err != nil {
		t.Fatalf("Grant after a 429 and a 503: %v", err)
	}
	if len(*got) != 2 || (*got)[0] != 3*time.Second || (*got)[1] < 3*time.Second || (*got)[1] > 5*time.Second {
		t.Errorf("waited %v, want 3s (Retry-After: 3), then up to the date 5s ahead (the backoff alone is 1ms)", *got)
	}
	if n, keys := srv.count(), srv.distinctKeys(); n != 3 || len(keys) != 1 {
		t.Errorf("%d requests under keys %v, want 3 under one", n, keys)
	}

	// Without Retry-After: exponential backoff, jittered within its upper half.
	srv2 := newRecorder(t, func(n int, w http.ResponseWriter) {
		problem(w, http.StatusServiceUnavailable, "service-unavailable", "down", "")
	})
	c = New(srv2.URL, "qs_test_k", WithBackoff(100*time.Millisecond, 300*time.Millisecond), WithMaxAttempts(5))
	got = waits(c)
	c.Grant(context.Background(), grant())
	for i, ceiling := range []time.Duration{100, 200, 300, 300} {
		ceiling *= time.Millisecond
		if i >= len(*got) || (*got)[i] < ceiling/2 || (*got)[i] > ceiling {
			t.Errorf("waits %v: wait %d not within [%v, %v]", *got, i+1, ceiling/2, ceiling)
		}
	}

	// A Retry-After longer than the client waits for returns the answer.
	srv3 := newRecorder(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "120")
		problem(w, http.StatusServiceUnavailable, "service-unavailable", "down", "")
	})
	c = fast(srv3.URL)
	got = waits(c)
	_, err := c.Grant(context.Background(), grant())
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 || e.RetryAfter != 120*time.Second || !e.Temporary() {
		t.Fatalf("Grant with Retry-After 120: %v, want the 503 with its Retry-After", err)
	}
	if n := srv3.count(); n != 1 || len(*got) != 0 {
		t.Errorf("%d requests, waits %v, want 1 request and no wait", n, *got)
	}
}

// TestClientRetryAfterSleeps checks the real clock once: a 1 s Retry-After
// (the shortest a header says) is waited for.
func TestClientRetryAfterSleeps(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			problem(w, http.StatusTooManyRequests, "rate-limited", "slow down", "")
			return
		}
		ok(w)
	})
	start := time.Now()
	if _, err := fast(srv.URL, WithBackoff(time.Millisecond, 5*time.Second)).Grant(context.Background(), grant()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, want at least the Retry-After of 1s", d)
	}
}

func TestClientBoundedAttempts(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter) {
		problem(w, http.StatusServiceUnavailable, "service-unavailable", "down", "")
	})
	_, err := fast(srv.URL).Grant(context.Background(), grant())
	if ErrorCode(err) != CodeServiceUnavailable || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("Grant against a server always 503: %v", err)
	}
	if n := srv.count(); n != DefaultMaxAttempts {
		t.Errorf("%d requests, want %d", n, DefaultMaxAttempts)
	}
	_, err = fast(srv.URL, WithMaxAttempts(2)).TenantMe(context.Background())
	if n := srv.count(); n != DefaultMaxAttempts+2 || ErrorCode(err) != CodeServiceUnavailable {
		t.Errorf("WithMaxAttempts(2): %d more requests (%v), want 2", n-DefaultMaxAttempts, err)
	}
}

func TestClientContextCancelledWhileWaiting(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "service-unavailable", "down", "")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(srv.URL, "qs_test_k").Grant(ctx, grant())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Grant with a 100ms deadline: %v, want the deadline", err)
	}
	if ErrorCode(err) != CodeServiceUnavailable {
		t.Errorf("error %v does not carry the last answer", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("returned after %v, want at the deadline", d)
	}
}

func TestClientUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = fast("http://"+addr, WithMaxAttempts(3)).TenantMe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") || ErrorCode(err) != "" {
		t.Errorf("TenantMe against a closed port: %v, want a connection error after 3 attempts", err)
	}
	if _, err := New("127.0.0.1:8080", "k").TenantMe(context.Background()); err == nil || !strings.Contains(err.Error(), "http://") {
		t.Errorf("a base URL without a scheme: %v, want an error saying what a URL looks like", err)
	}
}

func TestClientBatchEventKeysSurviveRetries(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			problem(w, http.StatusServiceUnavailable, "service-unavailable", "down", "")
			return
		}
		io.WriteString(w, `{"results":[{"index":0,"status":"accepted","event_id":"evt_1","estimated_cost":1,"duplicate":false,"error":null},`+
			`{"index":1,"status":"rejected","event_id":null,"estimated_cost":null,"duplicate":false,`+
			`"error":{"type":"/problems/insufficient-credits","title":"t","status":402,"detail":"d","code":"insufficient-credits","required":9,"available":1}}]}`)
	})
	events := []UsageEvent{
		{ExternalCustomerID: "u1", BillableMetricKey: "m", Units: 1},
		{ExternalCustomerID: "u2", BillableMetricKey: "m", Units: 9, IdempotencyKey: "mine"},
	}
	res, err := fast(srv.URL).UsageBatch(context.Background(), UsageBatchRequest{WriteOptions{IdempotencyKey: "b1"}, events})
	if err != nil {
		t.Fatal(err)
	}
	_, bodies, _ := srv.seen()
	if len(bodies) != 2 || bodies[0] != bodies[1] || !strings.Contains(bodies[0], `"idempotency_key":"b1:0"`) || !strings.Contains(bodies[0], `"idempotency_key":"mine"`) {
		t.Errorf("bodies %q, want the same derived and given event keys on both attempts", bodies)
	}
	if events[0].IdempotencyKey != "" {
		t.Error("UsageBatch wrote into the caller's events")
	}
	if len(res.Results) != 2 || res.Results[1].Error == nil || res.Results[1].Error.Required != 9 || res.Results[0].EventID != "evt_1" {
		t.Errorf("results = %+v", res.Results)
	}
}

func TestClientPathsAndPaging(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter) {
		switch n {
		case 1:
			io.WriteString(w, `{"data":[{"id":"c1","external_id":null,"display_name":"","metadata":{},"created_at":"2026-04-13T14:00:00.000Z"}],"pagination":{"has_more":true,"next_cursor":"Y3Ix"}}`)
		default:
			io.WriteString(w, `{"data":[{"id":"c2","external_id":"a/b","display_name":"B","metadata":{},"created_at":"2026-04-13T14:00:00.000Z"}],"pagination":{"has_more":false,"next_cursor":null}}`)
		}
	})
	all, err := fast(srv.URL+"/v1/").AllCustomers(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ExternalID != "" || all[1].ExternalID != "a/b" {
		t.Errorf("customers = %+v", all)
	}
	keys, _, paths := srv.seen()
	if paths[0] != "/v1/customers?limit=1" || paths[1] != "/v1/customers?cursor=Y3Ix&limit=1" {
		t.Errorf("paths %v", paths)
	}
	if keys[0] != "" {
		t.Errorf("a GET carried Idempotency-Key %q", keys[0])
	}
	c := fast(srv.URL)
	c.Balance(context.Background(), ByExternalID("user42:c/7"), true)
	c.Ledger(context.Background(), ByID("c1"), LedgerOptions{Type: "usage", Limit: 2})
	c.Check(context.Background(), ByID("c1"), "tokens", 3)
	want := []string{"/v1/customer-by-external-id/user42:c%2F7/credits?include_blocks=true",
		"/v1/customers/c1/ledger?limit=2&type=usage", "/v1/customers/c1/entitlements/tokens?units=3"}
	_, _, paths = srv.seen()
	for i, w := range want {
		if got := paths[2+i]; got != w {
			t.Errorf("request %d: %s, want %s", i, got, w)
		}
	}
	if _, err := c.Balance(context.Background(), CustomerRef{}, false); err == nil {
		t.Error("Balance of no customer: nil error")
	}
}

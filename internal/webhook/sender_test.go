package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/creditd/creditd/internal/webhook"
	"github.com/creditd/creditd/internal/webhook/webhooktest"
)

// captured is one request a test server received.
type captured struct {
	header http.Header
	body   []byte
}

func captureServer(t *testing.T, status int) (*httptest.Server, <-chan captured) {
	t.Helper()
	got := make(chan captured, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- captured{r.Header.Clone(), body}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "ignored")
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// The Standard Webhooks test vector (from the library's Python tests), sent
// through Send: the signature must match the vector, a hand computation of
// the spec's formula, and the library's verification.
func TestSendSignsKnownVector(t *testing.T) {
	secret, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const (
		id      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		payload = `{"test": 2432232314}`
		vector  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	ts := time.Unix(1614265330, 0)

	srv, got := captureServer(t, http.StatusNoContent)
	a := webhook.NewSender(webhook.SenderOptions{}).Send(context.Background(), srv.URL+"/hook", secret, id, []byte(payload), ts)
	if a.Error != "" || a.StatusCode != http.StatusNoContent || a.EventID != id || !a.At.Equal(ts) || a.Duration <= 0 {
		t.Fatalf("attempt %+v, want a 204", a)
	}
	req := <-got

	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "." + payload))
	byHand := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if byHand != vector {
		t.Fatalf("hand computation %s differs from the published vector %s", byHand, vector)
	}
	for name, want := range map[string]string{
		"webhook-id":        id,
		"webhook-timestamp": "1614265330",
		"webhook-signature": vector,
		"Content-Type":      "application/json",
		"User-Agent":        "creditd-webhooks",
	} {
		if v := req.header.Get(name); v != want {
			t.Errorf("%s: %q, want %q", name, v, want)
		}
	}
	if string(req.body) != payload {
		t.Errorf("body %q, want %q", req.body, payload)
	}
	wh, _ := standardwebhooks.NewWebhookRaw(secret)
	// The vector's timestamp is years old: only the signature can be checked.
	if err := wh.VerifyIgnoringTimestamp(req.body, req.header); err != nil {
		t.Errorf("library verification: %v", err)
	}
	if err := wh.Verify(req.body, req.header); err == nil {
		t.Error("library accepted a years-old timestamp")
	}

	// And a delivery stamped now passes the library's full check.
	a = webhook.NewSender(webhook.SenderOptions{}).Send(context.Background(), srv.URL, secret, id, []byte(payload), time.Now())
	if a.Error != "" {
		t.Fatal(a.Error)
	}
	req = <-got
	if err := wh.Verify(req.body, req.header); err != nil {
		t.Errorf("library verification: %v", err)
	}
}

func TestSendToReceiver(t *testing.T) {
	rcv := webhooktest.New(t, secret)
	payload := `{"id":"whevt_1","type":"credits.granted","timestamp":"2026-01-02T03:04:05Z","data":{"customer_id":"cus_a","credits":5}}`
	a := webhook.NewSender(webhook.SenderOptions{}).Send(context.Background(), rcv.URL, secret, "whevt_1", []byte(payload), time.Now())
	if a.Error != "" || a.StatusCode != 200 {
		t.Fatalf("attempt %+v", a)
	}
	evs := rcv.EventsFor("cus_a")
	if len(evs) != 1 || evs[0].ID != "whevt_1" || evs[0].Type != "credits.granted" || string(evs[0].Data) != `{"customer_id":"cus_a","credits":5}` ||
		!evs[0].Timestamp.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("received %+v", evs)
	}

	// Signed with another secret: the receiver refuses it, as a tenant's
	// application would.
	a = webhook.NewSender(webhook.SenderOptions{}).Send(context.Background(), rcv.URL, []byte("wrong"), "whevt_1", []byte(payload), time.Now())
	if a.StatusCode != http.StatusUnauthorized || a.Error != "status 401" {
		t.Errorf("wrong secret: %+v", a)
	}
	if f := rcv.Failures(); len(f) != 1 || !strings.Contains(f[0].Reason, "no matching signature") {
		t.Errorf("failures %+v", f)
	}
	if n := rcv.Deliveries("whevt_1"); n != 1 {
		t.Errorf("%d verified deliveries, want 1", n)
	}
}

func TestSendFailures(t *testing.T) {
	var redirected atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/status/500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	mux.HandleFunc("/status/404", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, _ *http.Request) { redirected.Add(1) })
	hang := make(chan struct{})
	mux.HandleFunc("/hang", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // runs before srv.Close

	// Nothing ever listens on port 0, and Linux refuses a connection to it;
	// a port freed by closing a listener could be taken meanwhile by a
	// server of a test running in parallel.
	refused := "http://127.0.0.1:0/"

	s := webhook.NewSender(webhook.SenderOptions{})
	// Only the hanging server meets the short timeout; the others get the
	// default, which a slow machine cannot miss.
	short := webhook.NewSender(webhook.SenderOptions{Timeout: 100 * time.Millisecond})
	if a := short.Send(context.Background(), srv.URL+"/hang", []byte("k"), "whevt_1", []byte(`{}`), time.Now()); a.StatusCode != 0 || a.Error != "timeout after 100ms" {
		t.Errorf("hang: %+v", a)
	}
	for _, tc := range []struct {
		url, secret string
		status      int
		err         string
	}{
		{srv.URL + "/status/500", "k", 500, "status 500"},
		{srv.URL + "/status/404", "k", 404, "status 404"},
		{srv.URL + "/redirect", "k", 302, "status 302: redirects are not followed"},
		{refused, "k", 0, "connection refused"},
		{"ftp://example.com/", "k", 0, `unsupported url scheme "ftp"`},
		{"http://[::1", "k", 0, "invalid url"},
		{"", "k", 0, "no webhook url"},
		{srv.URL, "", 0, "no webhook secret"},
	} {
		a := s.Send(context.Background(), tc.url, []byte(tc.secret), "whevt_1", []byte(`{}`), time.Now())
		if a.StatusCode != tc.status || a.Error != tc.err {
			t.Errorf("%s: status %d, error %q; want %d, %q", tc.url, a.StatusCode, a.Error, tc.status, tc.err)
		}
	}
	if n := redirected.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a := s.Send(ctx, srv.URL+"/hang", []byte("k"), "whevt_1", []byte(`{}`), time.Now()); a.Error != "canceled" || a.StatusCode != 0 {
		t.Errorf("cancelled: %+v", a)
	}
}

func TestSendDenyPrivate(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	deny := webhook.NewSender(webhook.SenderOptions{DenyPrivate: true})
	a := deny.Send(context.Background(), srv.URL, secret, "whevt_1", []byte(`{}`), time.Now())
	if a.Error != "refused: private address 127.0.0.1" || a.StatusCode != 0 {
		t.Errorf("loopback address: %+v", a)
	}
	// A name is refused by the address it resolves to, at dial time.
	a = deny.Send(context.Background(), "http://localhost:"+port+"/", secret, "whevt_1", []byte(`{}`), time.Now())
	if !strings.HasPrefix(a.Error, "refused: private address ") || a.StatusCode != 0 {
		t.Errorf("localhost: %+v", a)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server was reached %d times", n)
	}

	// Allowed by default: self-hosted apps live next door.
	allow := webhook.NewSender(webhook.SenderOptions{})
	if a := allow.Send(context.Background(), srv.URL, secret, "whevt_1", []byte(`{}`), time.Now()); a.Error != "" || a.StatusCode != 200 {
		t.Errorf("default sender: %+v", a)
	}
}

func TestSenderTimeout(t *testing.T) {
	if d := webhook.NewSender(webhook.SenderOptions{}).Timeout(); d != 5*time.Second {
		t.Errorf("default timeout %v, want 5s", d)
	}
	if d := webhook.NewSender(webhook.SenderOptions{Timeout: time.Second}).Timeout(); d != time.Second {
		t.Errorf("timeout %v, want 1s", d)
	}
}

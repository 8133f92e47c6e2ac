// Package webhooktest is a webhook receiver for tests: an HTTP server that
// verifies every delivery's signature with the Standard Webhooks library, as
// a tenant's application would, and records what it received. It can be told
// to fail or to answer slowly.
package webhooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// maxBody is far above any event's size; a bigger body is a bug worth a 413.
const maxBody = 1 << 20

// Event is one accepted delivery: a verified request answered with a 2xx.
type Event struct {
	ID         string // the body's id, equal to the webhook-id header
	Type       string
	Timestamp  time.Time
	CustomerID string          // data.customer_id, empty when absent
	Data       json.RawMessage // the body's data, as sent
	Body       []byte
	Header     http.Header
}

// Failure is a request the receiver rejected: a bad or missing signature
// (answered 401), or a body it could not read (400, 413).
type Failure struct {
	Reason string
	Header http.Header
	Body   []byte
}

// Receiver is the test server. Its methods are safe for concurrent use.
type Receiver struct {
	// URL is the server's base URL; deliveries may go to any path.
	URL string

	server *httptest.Server
	wh     *standardwebhooks.Webhook
	closed chan struct{}
	once   sync.Once

	mu              sync.Mutex
	events          []Event
	deliveries      map[string]int
	failures        []Failure
	failNext        int
	failNextStatus  int
	failUntil       time.Time
	failUntilStatus int
	failStatus      int
	delay           time.Duration
	ignoreTimestamp bool
	changed         chan struct{} // closed and replaced whenever something is recorded
}

// New starts a receiver that expects deliveries signed with secret (the raw
// key bytes) and closes it when the test ends.
func New(tb testing.TB, secret []byte) *Receiver {
	tb.Helper()
	wh, err := standardwebhooks.NewWebhookRaw(secret)
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	r := &Receiver{
		wh:         wh,
		closed:     make(chan struct{}),
		deliveries: make(map[string]int),
		changed:    make(chan struct{}),
	}
	r.server = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.server.URL
	tb.Cleanup(r.Close)
	return r
}

// Close stops the server, cutting delayed answers short.
func (r *Receiver) Close() {
	r.once.Do(func() {
		close(r.closed)
		r.server.Close()
	})
}

// IgnoreTimestamp stops checking that webhook-timestamp is within 5 minutes
// of the real time (the signature is still checked): for senders driven by
// a test clock.
func (r *Receiver) IgnoreTimestamp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ignoreTimestamp = true
}

// FailNext answers status to the next n verified requests.
func (r *Receiver) FailNext(n, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext, r.failNextStatus = n, status
}

// FailUntil answers status to verified requests until t (real time).
func (r *Receiver) FailUntil(t time.Time, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failUntil, r.failUntilStatus = t, status
}

// Fail answers status to every verified request until Recover.
func (r *Receiver) Fail(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failStatus = status
}

// Recover undoes FailNext, FailUntil, Fail and Delay: answers are 200 again.
func (r *Receiver) Recover() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext, r.failUntil, r.failStatus, r.delay = 0, time.Time{}, 0, 0
}

// Delay holds every answer for d (or until the sender gives up), to test
// timeouts. A request the sender gave up on counts as a delivery, not as an
// accepted event.
func (r *Receiver) Delay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Events returns the accepted events in arrival order, a redelivered event
// as often as it was accepted.
func (r *Receiver) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// EventsFor returns the accepted events of one customer, in arrival order.
func (r *Receiver) EventsFor(customerID string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.CustomerID == customerID {
			out = append(out, e)
		}
	}
	return out
}

// Deliveries counts the verified requests for an event, whatever they were
// answered.
func (r *Receiver) Deliveries(eventID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deliveries[eventID]
}

// Failures returns the rejected requests, in arrival order.
func (r *Receiver) Failures() []Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.failures)
}

// Wait waits until at least n events were accepted, and returns them all.
func (r *Receiver) Wait(ctx context.Context, n int) ([]Event, error) {
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			events := slices.Clone(r.events)
			r.mu.Unlock()
			return events, nil
		}
		changed, got := r.changed, len(r.events)
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("webhooktest: %d of %d events: %w", got, n, ctx.Err())
		case <-changed:
		}
	}
}

// signal wakes Wait; r.mu is held.
func (r *Receiver) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Receiver) reject(w http.ResponseWriter, req *http.Request, body []byte, status int, reason string) {
	r.mu.Lock()
	r.failures = append(r.failures, Failure{Reason: reason, Header: req.Header.Clone(), Body: body})
	r.signal()
	r.mu.Unlock()
	http.Error(w, reason, status)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		r.reject(w, req, body, http.StatusRequestEntityTooLarge, "reading body: "+err.Error())
		return
	}
	r.mu.Lock()
	verify := r.wh.Verify
	if r.ignoreTimestamp {
		verify = r.wh.VerifyIgnoringTimestamp
	}
	r.mu.Unlock()
	if err := verify(body, req.Header); err != nil {
		r.reject(w, req, body, http.StatusUnauthorized, err.Error())
		return
	}
	var msg struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	var data struct {
		CustomerID string `json:"customer_id"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		r.reject(w, req, body, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(msg.Data) > 0 {
		if err := json.Unmarshal(msg.Data, &data); err != nil {
			r.reject(w, req, body, http.StatusBadRequest, "body data: "+err.Error())
			return
		}
	}
	if id := req.Header.Get(standardwebhooks.HeaderWebhookID); msg.ID != id {
		r.reject(w, req, body, http.StatusBadRequest, fmt.Sprintf("body id %q is not webhook-id %q", msg.ID, id))
		return
	}

	r.mu.Lock()
	r.deliveries[msg.ID]++
	status := http.StatusOK
	switch {
	case r.failNext > 0:
		r.failNext--
		status = r.failNextStatus
	case time.Now().Before(r.failUntil):
		status = r.failUntilStatus
	case r.failStatus != 0:
		status = r.failStatus
	}
	delay := r.delay
	r.signal()
	r.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return // the sender gave up: not accepted
		case <-r.closed:
			return
		}
	}
	if status >= 200 && status < 300 {
		r.mu.Lock()
		r.events = append(r.events, Event{
			ID:         msg.ID,
			Type:       msg.Type,
			Timestamp:  msg.Timestamp,
			CustomerID: data.CustomerID,
			Data:       msg.Data,
			Body:       body,
			Header:     req.Header.Clone(),
		})
		r.signal()
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

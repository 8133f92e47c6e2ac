package webhooktest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/webhook"
	"github.com/creditd/creditd/internal/webhook/webhooktest"
)

var secret = []byte("receiver-secret")

func body(id, customer string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"t","timestamp":"2026-01-02T03:04:05Z","data":{"customer_id":%q}}`, id, customer)
}

func send(s *webhook.Sender, r *webhooktest.Receiver, id, customer string, now time.Time) int {
	return s.Send(context.Background(), r.URL, secret, id, body(id, customer), now).StatusCode
}

func TestReceiverAnswers(t *testing.T) {
	r := webhooktest.New(t, secret)
	s := webhook.NewSender(webhook.SenderOptions{})
	now := time.Now()

	r.FailNext(2, http.StatusBadGateway)
	for i, want := range []int{502, 502, 200} {
		if got := send(s, r, "e1", "cus_a", now); got != want {
			t.Errorf("request %d: %d, want %d", i, got, want)
		}
	}
	r.Fail(500)
	if got := send(s, r, "e2", "cus_b", now); got != 500 {
		t.Errorf("Fail: %d", got)
	}
	r.Recover()
	r.FailUntil(time.Now().Add(time.Hour), 503)
	if got := send(s, r, "e2", "cus_b", now); got != 503 {
		t.Errorf("FailUntil: %d", got)
	}
	r.FailUntil(time.Now().Add(-time.Second), 503)
	if got := send(s, r, "e2", "cus_b", now); got != 200 {
		t.Errorf("after FailUntil: %d", got)
	}
	if got := send(s, r, "e3", "cus_a", now); got != 200 {
		t.Errorf("after Recover: %d", got)
	}

	if n := r.Deliveries("e1"); n != 3 {
		t.Errorf("e1 delivered %d times, want 3", n)
	}
	if n := r.Deliveries("e2"); n != 3 {
		t.Errorf("e2 delivered %d times, want 3", n)
	}
	var ids []string
	for _, e := range r.Events() {
		ids = append(ids, e.ID+"/"+e.CustomerID)
	}
	if got := strings.Join(ids, " "); got != "e1/cus_a e2/cus_b e3/cus_a" {
		t.Errorf("accepted %s", got)
	}
	if evs := r.EventsFor("cus_a"); len(evs) != 2 || evs[0].ID != "e1" || evs[1].ID != "e3" {
		t.Errorf("EventsFor(cus_a) = %+v", evs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if evs, err := r.Wait(ctx, 3); err != nil || len(evs) != 3 {
		t.Errorf("Wait(3) = %d events, %v", len(evs), err)
	}
	short, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := r.Wait(short, 4); err == nil {
		t.Error("Wait(4) returned without a fourth event")
	}
}

func TestReceiverRejects(t *testing.T) {
	r := webhooktest.New(t, secret)
	s := webhook.NewSender(webhook.SenderOptions{})

	// A timestamp 10 minutes off is refused, unless told otherwise.
	if got := send(s, r, "e1", "cus_a", time.Now().Add(-10*time.Minute)); got != 401 {
		t.Errorf("old timestamp: %d, want 401", got)
	}
	r.IgnoreTimestamp()
	if got := send(s, r, "e1", "cus_a", time.Now().Add(-10*time.Minute)); got != 200 {
		t.Errorf("old timestamp, ignored: %d, want 200", got)
	}
	// The body's id must be the webhook-id.
	a := s.Send(context.Background(), r.URL, secret, "e2", body("other", "cus_a"), time.Now())
	if a.StatusCode != 400 {
		t.Errorf("id mismatch: %+v", a)
	}
	a = s.Send(context.Background(), r.URL, secret, "e3", []byte(`not json`), time.Now())
	if a.StatusCode != 400 {
		t.Errorf("bad body: %+v", a)
	}
	if f := r.Failures(); len(f) != 3 {
		t.Errorf("%d failures, want 3: %+v", len(f), f)
	}
	if n := len(r.Events()); n != 1 {
		t.Errorf("%d accepted, want 1", n)
	}
}

func TestReceiverDelay(t *testing.T) {
	r := webhooktest.New(t, secret)
	r.Delay(time.Hour)
	s := webhook.NewSender(webhook.SenderOptions{Timeout: 50 * time.Millisecond})
	a := s.Send(context.Background(), r.URL, secret, "e1", body("e1", "cus_a"), time.Now())
	if a.Error != "timeout after 50ms" {
		t.Errorf("delayed: %+v", a)
	}
	// (Whether the request reached the handler before the sender gave up
	// depends on the machine's speed; it is not accepted either way.)
	if n := len(r.Events()); n != 0 {
		t.Errorf("a request the sender gave up on was accepted")
	}
	r.Recover()
	s = webhook.NewSender(webhook.SenderOptions{})
	if a := s.Send(context.Background(), r.URL, secret, "e1", body("e1", "cus_a"), time.Now()); a.StatusCode != 200 {
		t.Errorf("after Recover: %+v", a)
	}
}

package httpapi_test

// Delivery through the real dispatcher into a receiver that verifies the
// Standard Webhooks signature, and what the delivery log, redelivery and the
// health view say of it.

import (
	"bytes"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/webhook"
	"github.com/creditd/creditd/internal/webhook/webhooktest"
)

// retry is the test's retry schedule: one retry, so the second failed
// attempt fails an event for good.
const retry = 10 * time.Millisecond

// dispatcher delivers ts's outbox on ts's clock (the clock decides what is
// due and stamps attempts and signatures).
func (ts *webhookServer) dispatcher() *webhook.Dispatcher {
	return &webhook.Dispatcher{
		Outbox:   ts.svc,
		Sender:   webhook.NewSender(webhook.SenderOptions{Timeout: time.Second}),
		Schedule: webhook.Schedule{retry},
		Clock:    ts.clock.Now,
		Logger:   slog.New(slog.DiscardHandler),
	}
}

// drain runs one DrainOnce, which must make attempts attempts.
func drain(t *testing.T, d *webhook.Dispatcher, attempts int) {
	t.Helper()
	n, err := d.DrainOnce(t.Context())
	if err != nil || n != attempts {
		t.Fatalf("DrainOnce = %d attempts, %v; want %d, no error", n, err, attempts)
	}
}

// event reads one event of the log.
func (ts *webhookServer) event(t *testing.T, id string) webhookEventResp {
	t.Helper()
	var e webhookEventResp
	ts.get(t, "/v1/webhooks/events/"+id).want(t, http.StatusOK).decode(t, &e)
	return e
}

// instant parses an answered time; nil or unreadable is the zero time.
func instant(s *string) time.Time {
	t, err := time.Parse(time.RFC3339, deref(s))
	if err != nil {
		return time.Time{}
	}
	return t
}

// codes lists the status codes of an event's attempts, 0 for none.
func codes(e webhookEventResp) []int {
	out := make([]int, len(e.Attempts))
	for i, a := range e.Attempts {
		out[i] = deref(a.StatusCode)
	}
	return out
}

// checkHealth compares the health view's counts and its oldest pending event.
func checkHealth(t *testing.T, ts *webhookServer, pending, failed, delivered int64, oldest string) webhookHealthResp {
	t.Helper()
	h := ts.health(t, "")
	if h.Pending != pending || h.Failed != failed || h.DeliveredLast24h != delivered || deref(h.OldestPendingEventID) != oldest ||
		(oldest == "") != (h.OldestPendingAgeSecs == nil) || !h.WebhookConfigured {
		t.Errorf("health = %s; want pending %d, failed %d, delivered_last_24h %d, oldest pending %q (with its age), configured",
			jsonOf(t, h), pending, failed, delivered, oldest)
	}
	return h
}

func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	forEachWebhookBackend(t, func(t *testing.T, ts *webhookServer) {
		receiver := webhooktest.New(t, webhookSecret)
		receiver.IgnoreTimestamp() // signed at the test clock's time; the signature is still checked
		ts.createMetric(t, "gen", perUnit(1))
		ts.enableWebhooks(t, receiver.URL+"/hooks", nil)
		d := ts.dispatcher()

		// Three events of two customers, the oldest 90 s old.
		ts.grant(t, "ada", 1000, nil)
		ts.clock.Advance(30 * time.Second)
		ts.usage(t, "ada", "gen", 100).want(t, http.StatusOK)
		ts.grant(t, "bob", 500, nil)
		ts.clock.Advance(60 * time.Second)
		queued := ts.events(t, "")
		if len(queued) != 3 {
			t.Fatalf("log = %v, want a grant, a usage and a grant", typesOf(queued))
		}
		h := checkHealth(t, ts, 3, 0, 0, queued[0].ID)
		if deref(h.OldestPendingAgeSecs) != 90 || !instant(h.NextAttemptAt).Equal(epoch) {
			t.Errorf("health = %s, want the oldest pending 90 s old, the next attempt due at %s", jsonOf(t, h), epoch.UTC())
		}

		// Every event arrives, verified, as the log holds it, each
		// customer's in commit order.
		drain(t, d, 3)
		now := ts.clock.Now()
		got := receiver.Events()
		if len(receiver.Failures()) != 0 || len(got) != 3 {
			t.Fatalf("receiver accepted %d events, rejected %+v; want all 3, none rejected", len(got), receiver.Failures())
		}
		ada := queued[0].CustomerID
		if ids := receiver.EventsFor(ada); len(ids) != 2 || ids[0].ID != queued[0].ID || ids[1].ID != queued[1].ID {
			t.Errorf("ada's deliveries = %+v, want %s then %s", ids, queued[0].ID, queued[1].ID)
		}
		for _, ev := range queued {
			i := slices.IndexFunc(got, func(e webhooktest.Event) bool { return e.ID == ev.ID })
			if i < 0 {
				t.Errorf("event %s was not delivered", ev.ID)
				continue
			}
			e := got[i]
			if !bytes.Equal(e.Body, ev.Payload) || e.Type != ev.Type || e.CustomerID != ev.CustomerID {
				t.Errorf("delivered %s = %s, want the log's payload %s", ev.ID, e.Body, ev.Payload)
			}
			if h := e.Header; h.Get("User-Agent") != "creditd-webhooks" || h.Get("Content-Type") != "application/json" ||
				h.Get("webhook-id") != ev.ID || h.Get("webhook-timestamp") != strconv.FormatInt(now.Unix(), 10) {
				t.Errorf("delivery headers of %s = %v", ev.ID, h)
			}
		}
		for _, ev := range ts.events(t, "") {
			if ev.Status != "delivered" || ev.AttemptCount != 1 || !slices.Equal(codes(ev), []int{200}) ||
				ev.Attempts[0].Error != "" || ev.Attempts[0].DurationMS == nil || *ev.Attempts[0].DurationMS < 0 ||
				!instant(&ev.Attempts[0].At).Equal(now) || !instant(ev.DeliveredAt).Equal(now) || ev.NextAttemptAt != nil {
				t.Errorf("after delivery %s = %s; want delivered at %s with one attempt answered 200", ev.ID, jsonOf(t, ev), now.UTC())
			}
		}
		if got := ts.events(t, "&status=delivered"); !slices.Equal(idsOf(got), idsOf(queued)) {
			t.Errorf("delivered events = %v, want %v", idsOf(got), idsOf(queued))
		}
		if got := ts.events(t, "&status=pending"); len(got) != 0 {
			t.Errorf("pending events after delivery = %v, want none", idsOf(got))
		}
		if h := checkHealth(t, ts, 0, 0, 3, ""); h.NextAttemptAt != nil {
			t.Errorf("health next_attempt_at = %q with nothing pending, want null", deref(h.NextAttemptAt))
		}

		// The receiver fails the next event: the attempt is recorded, the
		// event waits for its retry, and ada's next event waits behind it.
		receiver.FailNext(1, http.StatusInternalServerError)
		ts.usage(t, "ada", "gen", 10).want(t, http.StatusOK)
		ts.usage(t, "ada", "gen", 20).want(t, http.StatusOK)
		fresh := ts.events(t, "&status=pending")
		if len(fresh) != 2 {
			t.Fatalf("pending after two usages = %v, want two events", typesOf(fresh))
		}
		first, second := fresh[0].ID, fresh[1].ID
		drain(t, d, 1)
		now = ts.clock.Now()
		failing := ts.event(t, first)
		if e := failing; e.Status != "pending" || e.AttemptCount != 1 || !slices.Equal(codes(e), []int{500}) || e.Attempts[0].Error == "" ||
			e.Attempts[0].DurationMS == nil || !instant(e.NextAttemptAt).Equal(now.Add(retry)) || e.DeliveredAt != nil {
			t.Errorf("after a 500 %s = %s; want pending, one attempt answered 500, next attempt at %s", first, jsonOf(t, e), now.Add(retry).UTC())
		}
		if e := ts.event(t, second); e.Status != "pending" || e.AttemptCount != 0 || receiver.Deliveries(second) != 0 {
			t.Errorf("ada's next event %s = %s (sent %d times); want it waiting, never sent", second, jsonOf(t, e), receiver.Deliveries(second))
		}
		h = checkHealth(t, ts, 2, 0, 3, first)
		if !instant(h.NextAttemptAt).Equal(now.Add(retry)) {
			t.Errorf("health next_attempt_at = %q, want the retry's %s", deref(h.NextAttemptAt), now.Add(retry).UTC())
		}
		drain(t, d, 0) // the retry is not due yet

		// The second failure is the last of a one-retry schedule: the event
		// fails for good, and ada's next one goes.
		ts.clock.Advance(time.Second)
		receiver.FailNext(1, http.StatusInternalServerError)
		drain(t, d, 2)
		if e := ts.event(t, first); e.Status != "failed" || e.AttemptCount != 2 || !slices.Equal(codes(e), []int{500, 500}) ||
			e.NextAttemptAt != nil || e.DeliveredAt != nil {
			t.Errorf("after a second 500 %s = %s; want failed after two attempts answered 500", first, jsonOf(t, e))
		}
		if e := ts.event(t, second); e.Status != "delivered" || !slices.Equal(codes(e), []int{200}) {
			t.Errorf("once %s failed, %s = %s; want delivered", first, second, jsonOf(t, e))
		}
		if receiver.Deliveries(first) != 2 || slices.ContainsFunc(receiver.Events(), func(e webhooktest.Event) bool { return e.ID == first }) {
			t.Errorf("receiver saw %s %d times, accepted: %v; want 2 attempts, none accepted", first, receiver.Deliveries(first), idsOfReceived(receiver))
		}
		if got := ts.events(t, "&status=failed"); !slices.Equal(idsOf(got), []string{first}) {
			t.Errorf("failed events = %v, want [%s]", idsOf(got), first)
		}
		checkHealth(t, ts, 0, 1, 4, "")

		// Redelivery queues it again, once per Idempotency-Key.
		path := "/v1/webhooks/events/" + first + "/redeliver"
		r := ts.postKey(t, path, "again-1", nil).want(t, http.StatusAccepted)
		var re webhookEventResp
		r.decode(t, &re)
		if re.ID != first || re.Status != "pending" || re.AttemptCount != 2 || !instant(re.NextAttemptAt).Equal(ts.clock.Now()) || re.Type != failing.Type ||
			!bytes.Equal(re.Payload, failing.Payload) {
			t.Errorf("redeliver = %s; want %s pending, due now, its two attempts counted, its payload unchanged", r.body, first)
		}
		replay := ts.postKey(t, path, "again-1", nil).want(t, http.StatusAccepted)
		if replay.header.Get("X-Idempotent-Replayed") != "true" || !bytes.Equal(replay.body, r.body) {
			t.Errorf("redeliver replay = %s (replayed %q), want the first answer, replayed", replay.body, replay.header.Get("X-Idempotent-Replayed"))
		}
		checkHealth(t, ts, 1, 0, 4, first)
		drain(t, d, 1)
		if n := receiver.Deliveries(first); n != 3 {
			t.Errorf("receiver saw %s %d times, want 3: one more after the redelivery", first, n)
		}
		if last := receiver.Events()[len(receiver.Events())-1]; last.ID != first || !bytes.Equal(last.Body, failing.Payload) {
			t.Errorf("last accepted = %s %s, want %s with its original body", last.ID, last.Body, first)
		}
		if e := ts.event(t, first); e.Status != "delivered" || e.AttemptCount != 3 || !slices.Equal(codes(e), []int{500, 500, 200}) {
			t.Errorf("after redelivery %s = %s; want delivered, attempts 500, 500, 200", first, jsonOf(t, e))
		}
		checkHealth(t, ts, 0, 0, 5, "")
		ts.post(t, "/v1/webhooks/events/whevt_nope/redeliver", nil).wantProblem(t, http.StatusNotFound, "not-found")
		ts.postKey(t, path, "again-1", nil).want(t, http.StatusAccepted) // still the stored answer
		checkHealth(t, ts, 0, 0, 5, "")
	})
}

func idsOfReceived(r *webhooktest.Receiver) []string {
	var out []string
	for _, e := range r.Events() {
		out = append(out, e.ID)
	}
	return out
}

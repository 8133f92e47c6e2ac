package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/webhook"
	"github.com/creditd/creditd/internal/webhook/webhooktest"
)

var (
	scope  = store.Scope{TenantID: "ten_1", Env: "test"}
	secret = []byte("0123456789abcdef0123456789abcdef")
)

// waitLimit bounds every wait for something that should happen promptly; it
// is generous because a loaded CI machine is slow, and a pass never waits it.
const waitLimit = 30 * time.Second

type fixture struct {
	ob  *memOutbox
	clk *fakeClock
	rcv *webhooktest.Receiver
	d   *webhook.Dispatcher
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ob: newMemOutbox(), clk: newFakeClock(), rcv: webhooktest.New(t, secret)}
	f.ob.setTarget(scope, f.rcv.URL+"/hooks", secret)
	f.d = &webhook.Dispatcher{
		Outbox: f.ob,
		Clock:  f.clk.Now,
		Owner:  "test-owner",
		Logger: slog.New(slog.DiscardHandler),
	}
	return f
}

func (f *fixture) drain(t *testing.T, want int) {
	t.Helper()
	n, err := f.d.DrainOnce(context.Background())
	if err != nil {
		t.Fatalf("DrainOnce: %v", err)
	}
	if n != want {
		t.Fatalf("DrainOnce made %d attempts, want %d", n, want)
	}
}

func (f *fixture) checkOrder(t *testing.T, customer string, want []string) {
	t.Helper()
	var got []string
	for _, e := range f.rcv.EventsFor(customer) {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s received %v, want %v", customer, got, want)
	}
	if v := f.ob.orderViolations(); len(v) > 0 {
		t.Errorf("order violations: %v", v)
	}
}

func TestDrainDeliversEachCustomerInOrder(t *testing.T) {
	f := newFixture(t)
	f.d.Workers, f.d.PerQueue = 2, 2 // several claims per customer, queues in parallel
	now := f.clk.Now()
	want := map[string][]string{}
	for range 5 { // interleaved, so that commit order differs from customer order
		for _, c := range []string{"cus_a", "cus_b", "cus_c"} {
			want[c] = append(want[c], f.ob.add(scope, c, 1, now)...)
		}
	}
	f.drain(t, 15)
	for c, ids := range want {
		f.checkOrder(t, c, ids)
		for _, id := range ids {
			ev := f.ob.event(id)
			if ev.Status != store.WebhookDelivered || ev.Tries != 1 || ev.Attempts != 1 || !ev.DeliveredAt.Equal(now) {
				t.Errorf("%s: %+v, want delivered at %v after one attempt", id, ev, now)
			}
			if a := f.ob.attemptsOf(id); len(a) != 1 || a[0].StatusCode != 200 || a[0].Error != "" || !a[0].At.Equal(now) {
				t.Errorf("%s attempts: %+v", id, a)
			}
		}
	}
	if n := f.ob.queueCount(); n != 0 {
		t.Errorf("%d queues left, want none", n)
	}
	if fs := f.rcv.Failures(); len(fs) > 0 {
		t.Errorf("receiver rejected: %+v", fs)
	}
}

func TestFailureStopsQueueUntilRetry(t *testing.T) {
	f := newFixture(t)
	f.d.Schedule = webhook.Schedule{time.Second, 2 * time.Second}
	t0 := f.clk.Now()
	ids := f.ob.add(scope, "cus_a", 3, t0)
	f.rcv.FailNext(1, http.StatusInternalServerError)

	f.drain(t, 1)
	ev := f.ob.event(ids[0])
	if ev.Status != store.WebhookPending || ev.Tries != 1 || ev.Attempts != 1 || !ev.NextAttemptAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("after a 500: %+v, want pending, 1 try, due at t0+1s", ev)
	}
	if a := f.ob.attemptsOf(ids[0]); len(a) != 1 || a[0].StatusCode != 500 || a[0].Error != "status 500" {
		t.Fatalf("attempt: %+v", a)
	}
	rel := f.ob.releaseCalls()
	if len(rel) != 1 || rel[0].customer != "cus_a" || rel[0].owner != "test-owner" || !rel[0].next.Equal(t0.Add(time.Second)) {
		t.Fatalf("releases %+v, want one, due at t0+1s", rel)
	}
	if n := f.rcv.Deliveries(ids[1]); n != 0 {
		t.Fatalf("a later event was sent %d times while the first waits", n)
	}

	f.drain(t, 0) // not due yet
	f.clk.Advance(time.Second)
	f.drain(t, 3)
	f.checkOrder(t, "cus_a", ids)
	if n := f.rcv.Deliveries(ids[0]); n != 2 {
		t.Errorf("first event delivered %d times, want 2", n)
	}
	if ev := f.ob.event(ids[0]); ev.Status != store.WebhookDelivered || ev.Tries != 2 || ev.Attempts != 2 {
		t.Errorf("first event: %+v", ev)
	}
}

// retryUntilFailed drains and moves the clock past every wait until the
// event has failed, and returns how many rounds made an attempt.
func (f *fixture) retryUntilFailed(t *testing.T, id string) int {
	t.Helper()
	rounds := 0
	for range 20 {
		n, err := f.d.DrainOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			rounds++
		}
		if f.ob.event(id).Status == store.WebhookFailed {
			return rounds
		}
		f.clk.Advance(6 * time.Hour)
	}
	t.Fatalf("%s never failed: %+v", id, f.ob.event(id))
	return 0
}

func TestEventFailsAfterEightAttempts(t *testing.T) {
	f := newFixture(t)
	f.rcv.IgnoreTimestamp() // the clock runs hours ahead
	f.rcv.Fail(http.StatusServiceUnavailable)
	ids := f.ob.add(scope, "cus_a", 2, f.clk.Now())

	if rounds := f.retryUntilFailed(t, ids[0]); rounds != 8 {
		t.Errorf("failed after %d rounds, want 8", rounds)
	}
	ev := f.ob.event(ids[0])
	if ev.Tries != 8 || ev.Attempts != 8 || f.rcv.Deliveries(ids[0]) != 8 || len(f.ob.attemptsOf(ids[0])) != 8 {
		t.Errorf("failed event: %+v, %d deliveries", ev, f.rcv.Deliveries(ids[0]))
	}
	// Once the first has failed, the customer's next event goes on, in the
	// same round.
	if n := f.rcv.Deliveries(ids[1]); n != 1 {
		t.Errorf("second event sent %d times, want 1", n)
	}
	if ev := f.ob.event(ids[1]); ev.Status != store.WebhookPending || ev.Tries != 1 {
		t.Errorf("second event: %+v", ev)
	}
}

func TestNoTargetCountsAgainstSchedule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		url    string
		secret []byte
	}{
		{"nothing", "", nil},
		{"no secret", "http://127.0.0.1:1/", nil},
		{"no url", "", secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.ob.setTarget(scope, tc.url, tc.secret)
			f.d.Schedule = webhook.Schedule{time.Second, time.Second}
			t0 := f.clk.Now()
			ids := f.ob.add(scope, "cus_a", 1, t0)

			f.drain(t, 1)
			a := f.ob.attemptsOf(ids[0])
			if len(a) != 1 || a[0].Error != webhook.NoTarget || a[0].StatusCode != 0 || !a[0].At.Equal(t0) {
				t.Fatalf("attempt %+v, want %q", a, webhook.NoTarget)
			}
			if ev := f.ob.event(ids[0]); ev.Status != store.WebhookPending || ev.Tries != 1 || !ev.NextAttemptAt.Equal(t0.Add(time.Second)) {
				t.Fatalf("event %+v", ev)
			}
			if rounds := f.retryUntilFailed(t, ids[0]); rounds != 2 {
				t.Errorf("failed after %d more rounds, want 2", rounds)
			}
		})
	}
}

func TestLeaseLostStopsWithoutRelease(t *testing.T) {
	f := newFixture(t)
	ids := f.ob.add(scope, "cus_a", 3, f.clk.Now())
	f.ob.steal[ids[0]] = true

	f.drain(t, 1) // the attempt was made; recording it failed
	if n := f.rcv.Deliveries(ids[0]); n != 1 {
		t.Errorf("first event sent %d times, want 1", n)
	}
	if n := f.rcv.Deliveries(ids[1]); n != 0 {
		t.Errorf("second event sent %d times after the lease was lost", n)
	}
	if rel := f.ob.releaseCalls(); len(rel) != 0 {
		t.Errorf("released %+v after the lease was lost", rel)
	}
	if ev := f.ob.event(ids[0]); ev.Status != store.WebhookPending || ev.Tries != 0 {
		t.Errorf("event changed although the attempt was not recorded: %+v", ev)
	}
}

func TestShortLeaseReleasesDueNow(t *testing.T) {
	f := newFixture(t)
	ids := f.ob.add(scope, "cus_a", 3, f.clk.Now())
	var jumped time.Time
	f.ob.afterAttempted = func(ev store.WebhookEvent) {
		if ev.ID == ids[0] {
			// 55 s of the minute's lease gone: less than the 5 s timeout
			// plus the margin is left for the next event.
			f.clk.Advance(55 * time.Second)
			jumped = f.clk.Now()
		}
	}
	f.drain(t, 3)
	rel := f.ob.releaseCalls()
	if len(rel) != 2 || !rel[0].next.Equal(jumped) {
		t.Fatalf("releases %+v, want the first due at %v (now), then the last", rel, jumped)
	}
	f.checkOrder(t, "cus_a", ids)
	if n := f.ob.claimCount(); n != 3 { // two that delivered, one that found nothing
		t.Errorf("%d claims, want 3", n)
	}
}

func runDispatcher(t *testing.T, d *webhook.Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func TestRunParallelKeepsOrder(t *testing.T) {
	f := newFixture(t)
	f.d.Workers, f.d.PerQueue, f.d.Poll = 4, 2, 10*time.Millisecond
	want := map[string][]string{}
	for i := range 8 {
		c := fmt.Sprintf("cus_%d", i)
		want[c] = f.ob.add(scope, c, 6, f.clk.Now())
	}
	stop := runDispatcher(t, f.d)
	if _, err := f.rcv.Wait(waitCtx(t), 48); err != nil {
		t.Fatal(err)
	}
	stop()
	for c, ids := range want {
		f.checkOrder(t, c, ids)
	}
	if n := len(f.rcv.Events()); n != 48 {
		t.Errorf("%d events received, want 48 (each once)", n)
	}
}

func TestNotifyWakesRun(t *testing.T) {
	f := newFixture(t)
	f.d.Poll = time.Hour // only Notify can wake it in time
	f.d.Notify()         // before Run: must not block, and merges with the next
	f.d.Notify()
	runDispatcher(t, f.d)

	// Wait for Run's claims to find nothing (the pending wake-up costs one
	// more): from then on it sleeps.
	for range 2 {
		select {
		case <-f.ob.claimed:
		case <-time.After(waitLimit):
			t.Fatal("Run never claimed")
		}
	}
	ids := f.ob.add(scope, "cus_a", 2, f.clk.Now())
	f.d.Notify()
	if _, err := f.rcv.Wait(waitCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	f.checkOrder(t, "cus_a", ids)
}

func TestRunCancelCutsAttemptShort(t *testing.T) {
	f := newFixture(t)
	f.d.Sender = webhook.NewSender(webhook.SenderOptions{Timeout: time.Hour})
	f.rcv.Delay(time.Hour)
	ids := f.ob.add(scope, "cus_a", 1, f.clk.Now())
	stop := runDispatcher(t, f.d)

	deadline := time.Now().Add(waitLimit)
	for f.rcv.Deliveries(ids[0]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event never reached the receiver")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if a := f.ob.attemptsOf(ids[0]); len(a) != 0 {
		t.Errorf("an attempt cut short by shutdown was recorded: %+v", a)
	}
	if ev := f.ob.event(ids[0]); ev.Tries != 0 || ev.Status != store.WebhookPending {
		t.Errorf("event %+v, want untouched", ev)
	}
	if rel := f.ob.releaseCalls(); len(rel) != 1 || !rel[0].next.Equal(f.clk.Now()) {
		t.Errorf("releases %+v, want one, due now", rel)
	}
}

package ledger

import (
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// testEvent is what the test encoder keeps of an event.
type testEvent struct {
	Type      string `json:"type"`
	Customer  string `json:"customer"`
	Balance   int64  `json:"balance_after"`
	Effective int64  `json:"effective_balance"`
	Amount    int64  `json:"amount,omitempty"`
}

func encodeTestEvent(ev Event) ([]byte, error) {
	out := testEvent{Type: ev.Type, Customer: ev.Customer.ExternalID, Balance: ev.Customer.Account.Balance, Effective: ev.EffectiveBalance}
	switch {
	case ev.Usage != nil:
		out.Amount = ev.Usage.Event.Cost
	case ev.Block != nil:
		out.Amount = ev.Block.Original
	case ev.Expired != nil:
		out.Amount = ev.Expired.Amount
	case ev.Reservation != nil:
		out.Amount = ev.Reservation.Amount
	}
	return json.Marshal(out)
}

// withWebhooks replaces the fixture's service by one that records events,
// counting the wake-ups it gives, and configures webhooks for scope with the
// threshold (nil: none).
func (f *fixture) withWebhooks(t *testing.T, threshold *int64) *atomic.Int64 {
	t.Helper()
	var woken atomic.Int64
	f.svc.Close()
	f.svc = New(f.st, f.clock.Now, WithWebhooks(encodeTestEvent, func() { woken.Add(1) }))
	url, secret := "http://127.0.0.1:9/hook", []byte("0123456789abcdef")
	p := ConfigPatch{WebhookURL: &url, WebhookSecret: &secret, LowBalanceThreshold: threshold}
	if _, err := f.run(t, scope, "config", "/v1/tenants/t1/config", UpdateConfig{Patch: p, Encode: jsonOf[store.TenantConfig](200)}); err != nil {
		t.Fatalf("config: %v", err)
	}
	return &woken
}

// events lists the scope's events oldest first, as the test encoder wrote them.
func (f *fixture) events(t *testing.T, s store.Scope) []testEvent {
	t.Helper()
	views, err := f.svc.WebhookEvents(t.Context(), s, "", "", store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []testEvent
	for _, v := range slices.Backward(views) {
		var e testEvent
		if err := json.Unmarshal(v.Payload, &e); err != nil {
			t.Fatalf("payload %s: %v", v.Payload, err)
		}
		if e.Type != v.Type || v.Status != store.WebhookPending {
			t.Errorf("event %s: type %s, status %s; payload says %s", v.ID, v.Type, v.Status, e.Type)
		}
		out = append(out, e)
	}
	return out
}

func typesOf(evs []testEvent) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Type)
	}
	return strings.Join(s, " ")
}

func TestNoEventsWithoutAWebhook(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.svc.Close()
		f.svc = New(f.st, f.clock.Now, WithWebhooks(encodeTestEvent, nil))
		f.grant(t, scope, "g1", "ada", 1000)
		if evs := f.events(t, scope); len(evs) != 0 {
			t.Errorf("events = %v, want none: the scope has no webhook URL and secret", evs)
		}
	})
}

// Every change tells its event, in order, with the balance it left;
// balance.low and balance.depleted fire once per crossing, and a refused
// usage tells nothing.
func TestEventsFollowTheChangesAndCrossings(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		woken := f.withWebhooks(t, new(int64(5000)))
		f.metric(t, scope, "gen", 1)
		f.grant(t, scope, "g1", "ada", 10_000)
		for i, units := range []int64{3000, 3000, 1000, 3000} {
			if _, err := f.run(t, scope, "u"+string(rune('a'+i)), "/v1/usage", usage("ada", "gen", units, "u"+string(rune('a'+i)))); err != nil {
				t.Fatalf("usage %d: %v", i, err)
			}
		}
		if _, err := f.run(t, scope, "u-402", "/v1/usage", usage("ada", "gen", 1, "u-402")); !isCode(err, credit.EInsufficient) {
			t.Fatalf("usage on an empty account: %v, want 402", err)
		}
		f.grant(t, scope, "g2", "ada", 10_000)
		if _, err := f.run(t, scope, "u-again", "/v1/usage", usage("ada", "gen", 6000, "u-again")); err != nil {
			t.Fatal(err)
		}
		evs := f.events(t, scope)
		want := "credits.granted credits.consumed credits.consumed balance.low credits.consumed credits.consumed balance.depleted " +
			"credits.granted credits.consumed balance.low"
		if got := typesOf(evs); got != want {
			t.Fatalf("events:\n got %s\nwant %s", got, want)
		}
		effective := []int64{10_000, 7000, 4000, 4000, 3000, 0, 0, 10_000, 4000, 4000}
		for i, e := range evs {
			if e.Effective != effective[i] || e.Balance != effective[i] || e.Customer != "ada" {
				t.Errorf("event %d (%s): balance %d, effective %d, customer %s; want %d for ada", i, e.Type, e.Balance, e.Effective, e.Customer, effective[i])
			}
		}
		if woken.Load() == 0 {
			t.Error("the dispatcher was never woken after events committed")
		}
	})
}

func TestEventsOfReservationsExpiriesPurchasesAndTransactions(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.withWebhooks(t, nil)
		f.metric(t, scope, "gen", 1)
		f.grant(t, scope, "g1", "ada", 10_000)
		committed, err := f.reserve(t, "r1", "ada", 1000, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		released, err := f.reserve(t, "r2", "ada", 500, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.reserve(t, "r3", "ada", 200, time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := f.settle(t, "c1", committed.ID, false, ptr(800)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.settle(t, "c2", released.ID, true, nil); err != nil {
			t.Fatal(err)
		}
		// A block that expires, and the hold of r3 lapsing: both recorded by the sweeper.
		in := GrantInput{Customer: CustomerRef{ExternalID: "ada"}, Credits: 300, Source: "promo", ExpiresAt: t0.Add(time.Hour), IdempotencyKey: "g-exp"}
		if _, err := f.run(t, scope, "g-exp", "/v1/topup/grant", Grant{In: in, Encode: jsonOf[GrantResult](201)}); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(2 * time.Hour)
		if _, err := f.svc.SweepExpired(t.Context(), 100); err != nil {
			t.Fatal(err)
		}
		f.createPlan(t, scope, "pro", 1000, 5000, 3600*24)
		if _, err := f.buy(t, scope, "p1", "ada", "pro", "order-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.transact(t, "tx1", usageOp("ada", "gen", 100), grantOp("bob", 100)); err != nil {
			t.Fatal(err)
		}
		// All or nothing: a refused transaction tells nothing.
		if _, err := f.transact(t, "tx2", grantOp("bob", 100), usageOp("ada", "gen", 1_000_000)); err == nil {
			t.Fatal("transaction beyond the balance succeeded")
		}
		got := typesOf(f.events(t, scope))
		want := "credits.granted reservation.committed reservation.released credits.granted credits.expired reservation.expired " +
			"plan.purchased credits.consumed credits.granted transaction.committed"
		if got != want {
			t.Errorf("events:\n got %s\nwant %s", got, want)
		}
	})
}

// deliverAll marks every due event delivered, through the dispatcher's
// service methods, at the service's clock.
func (f *fixture) deliverAll(t *testing.T) {
	t.Helper()
	ctx, now := t.Context(), f.clock.Now()
	queues, err := f.svc.WebhookClaim(ctx, "test", now, now.Add(time.Minute), 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		for _, ev := range q.Events {
			ev.Status, ev.Tries, ev.Attempts, ev.UpdatedAt, ev.DeliveredAt = store.WebhookDelivered, ev.Tries+1, ev.Attempts+1, now, now
			a := store.WebhookAttempt{EventID: ev.ID, At: now, StatusCode: 200, Duration: time.Millisecond}
			if err := f.svc.WebhookAttempted(ctx, q.Scope, "test", now, now.Add(time.Minute), ev, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.svc.WebhookRelease(ctx, q.Scope, q.CustomerID, "test", now); err != nil {
			t.Fatal(err)
		}
	}
}

// The purge deletes delivered events with their attempts, batch after
// batch, and leaves a pending one of the same age.
func TestPurgeWebhooksInBatches(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		f.withWebhooks(t, nil)
		for i := range 5 {
			f.grant(t, scope, "g"+string(rune('a'+i)), "ada", 100)
		}
		f.deliverAll(t)
		f.grant(t, scope, "g-pending", "ada", 100)
		count := func(status string) int {
			t.Helper()
			views, err := f.svc.WebhookEvents(ctx, scope, status, "", store.Page{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			return len(views)
		}
		if d, p := count(store.WebhookDelivered), count(store.WebhookPending); d != 5 || p != 1 {
			t.Fatalf("before the purge: %d delivered, %d pending; want 5 and 1", d, p)
		}

		if n, err := f.svc.PurgeWebhooks(ctx, 0); n != 0 || err != nil || count(store.WebhookDelivered) != 5 {
			t.Fatalf("PurgeWebhooks(retention 0) = %d, %v, leaving %d delivered; want nothing purged", n, err, count(store.WebhookDelivered))
		}
		// Ids are made from the real time: every event so far is older
		// than a cutoff just ahead of it. A limit of 2 takes three batches.
		n, err := f.svc.purgeWebhooks(ctx, time.Now().Add(time.Millisecond), 2)
		if err != nil || n != 5 {
			t.Fatalf("purgeWebhooks(limit 2) = %d, %v; want 5", n, err)
		}
		if d, p := count(store.WebhookDelivered), count(store.WebhookPending); d != 0 || p != 1 {
			t.Errorf("after the purge: %d delivered, %d pending; want 0 and 1", d, p)
		}
		if got := f.sum(t, `SELECT count(*) FROM webhook_attempts`); got != 0 {
			t.Errorf("attempts after the purge = %d, want 0", got)
		}
	})
}

package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// webhookID returns an event id made at created, as ids.New(ids.Webhook)
// would have made it then; n tells apart the ids of one millisecond. The
// suite makes its own so that ids sort by the suite's clock, which the
// health window reads.
func webhookID(created time.Time, n int) string {
	f := ids.Floor(ids.Webhook, created)
	return f[:len(f)-4] + fmt.Sprintf("%04d", n)
}

// newWebhookEvent returns an unsaved pending event of customerID, made at
// created and due then. Its payload is JSON that a re-encoding would change.
func newWebhookEvent(customerID, eventType string, created time.Time, n int) store.WebhookEvent {
	body := fmt.Sprintf(`{"type":"%s",  "n": %d, "amount": 1.50, "note": "caf\u00e9 \/ é"}`, eventType, n)
	return store.WebhookEvent{ID: webhookID(created, n), CustomerID: customerID, Type: eventType, Payload: []byte(body),
		Status: store.WebhookPending, NextAttemptAt: created, CreatedAt: created, UpdatedAt: created}
}

func webhookEventID(e store.WebhookEvent) string { return e.ID }

// emit stores events through WritesApply, in one transaction, as the
// service does.
func emit(t *testing.T, s store.Store, sc store.Scope, events ...store.WebhookEvent) {
	t.Helper()
	mustApply(t, s, &store.Writes{Scope: sc, Events: events})
}

// stored returns the events as the store has them.
func stored(t *testing.T, s store.Store, sc store.Scope, events ...store.WebhookEvent) []store.WebhookEvent {
	t.Helper()
	out := make([]store.WebhookEvent, len(events))
	for i, e := range events {
		got, err := s.WebhookGet(t.Context(), sc, e.ID)
		wantNoErr(t, "WebhookGet", err)
		out[i] = got
	}
	return out
}

// wantEvents fails the test unless events are want, in order, field by
// field.
func wantEvents(t *testing.T, call string, events []store.WebhookEvent, want ...store.WebhookEvent) {
	t.Helper()
	wantIDs(t, call, events, webhookEventID, idsOf(want, webhookEventID)...)
	for i := range events {
		wantSame(t, call, events[i], want[i])
	}
}

// dispatch runs one round of a dispatcher at now: it claims every due
// queue, gives each of its events the status outcome names ("" leaves it
// pending, after a failed attempt), and releases the queue, due again at
// next.
func dispatch(t *testing.T, s store.Store, now, next time.Time, outcome func(store.WebhookEvent) string) {
	t.Helper()
	ctx := t.Context()
	transact(t, s, func(q store.Q) error {
		queues, err := q.WebhookClaim(ctx, "dispatcher", now, now.Add(time.Minute), 100, 100)
		if err != nil {
			return err
		}
		for _, qu := range queues {
			for _, ev := range qu.Events {
				a := store.WebhookAttempt{EventID: ev.ID, At: now, StatusCode: 503, Duration: 20 * time.Millisecond}
				ev.Tries, ev.Attempts, ev.UpdatedAt, ev.NextAttemptAt = ev.Tries+1, ev.Attempts+1, now, next
				switch ev.Status = outcome(ev); ev.Status {
				case "":
					ev.Status = store.WebhookPending
				case store.WebhookDelivered:
					a.StatusCode, ev.DeliveredAt = 200, now
				}
				if err := q.WebhookAttempted(ctx, qu.Scope, "dispatcher", now, now.Add(time.Minute), ev, a); err != nil {
					return err
				}
			}
			if err := q.WebhookRelease(ctx, qu.Scope, qu.CustomerID, "dispatcher", next); err != nil {
				return err
			}
		}
		return nil
	})
}

// outcomes returns a dispatch outcome: the status of each event named,
// pending for the others.
func outcomes(status map[string]string) func(store.WebhookEvent) string {
	return func(e store.WebhookEvent) string { return status[e.ID] }
}

func testWebhook(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("WriteRead", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		other := store.Scope{TenantID: sc.TenantID, Env: "test"}
		c := store.Customer{ID: ids.UUID(), DisplayName: "Ada", CreatedAt: t0}
		d := newCustomer(t, s, sc)

		// Written beside the change that caused them, out of id order: seq
		// is the order they were given in, not their ids'.
		later, earlier := newWebhookEvent(c.ID, "customer.created", at(2*time.Second), 1), newWebhookEvent(c.ID, "credit.granted", at(time.Second), 2)
		later.Payload = []byte("{\n  \"b\": 1,\t\"a\": [1, 2.50e0],\n  \"s\": \"\\u00e9\\/\"\n}")
		mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c}, Events: []store.WebhookEvent{later, earlier}})
		theirs := newWebhookEvent(d.ID, "balance.low", at(3*time.Second), 3)
		emit(t, s, sc, theirs)

		got := stored(t, s, sc, later, earlier, theirs)
		if !(0 < got[0].Seq && got[0].Seq < got[1].Seq && got[1].Seq < got[2].Seq) {
			t.Errorf("Seq = %d, %d, %d, want increasing in the order written", got[0].Seq, got[1].Seq, got[2].Seq)
		}
		for i, want := range []store.WebhookEvent{later, earlier, theirs} {
			want.Seq = got[i].Seq
			wantSame(t, "WebhookGet", got[i], want)
			if !bytes.Equal(got[i].Payload, want.Payload) {
				t.Errorf("WebhookGet().Payload = %q, want %q byte for byte", got[i].Payload, want.Payload)
			}
		}
		transact(t, s, func(q store.Q) error {
			ev, err := q.WebhookGet(ctx, sc, theirs.ID)
			wantSame(t, "WebhookGet in a transaction", ev, got[2])
			return err
		})

		_, err := s.WebhookGet(ctx, sc, webhookID(at(time.Second), 99))
		wantErr(t, "WebhookGet(unknown)", err, store.ErrNotFound)
		for _, o := range []store.Scope{other, newScope(t, s)} {
			_, err = s.WebhookGet(ctx, o, later.ID)
			wantErr(t, "WebhookGet(another scope)", err, store.ErrNotFound)
		}

		err = apply(t, s, &store.Writes{Scope: sc, Events: []store.WebhookEvent{newWebhookEvent(d.ID, "x", at(time.Hour), 4), later}})
		wantErr(t, "WritesApply(an event id taken)", err, store.ErrConflict)
		_, err = s.WebhookGet(ctx, sc, webhookID(at(time.Hour), 4))
		wantErr(t, "WebhookGet(an event of a failed WritesApply)", err, store.ErrNotFound)
		// Ids are the scope's: another scope takes the same one.
		emit(t, s, other, later)
		ev, err := s.WebhookGet(ctx, other, later.ID)
		wantNoErr(t, "WebhookGet", err)
		if ev.CustomerID != later.CustomerID || ev.Seq <= got[2].Seq {
			t.Errorf("WebhookGet(the same id, another scope) = %+v", ev)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		a, b := newCustomer(t, s, sc), newCustomer(t, s, sc)
		var evs []store.WebhookEvent
		for i := range 8 {
			typ, cust := "credit.granted", a.ID
			if i%2 == 1 {
				typ, cust = "balance.low", b.ID
			}
			evs = append(evs, newWebhookEvent(cust, typ, at(time.Duration(i)*time.Second), i))
		}
		emit(t, s, sc, evs[:5]...)
		emit(t, s, sc, evs[5:]...)
		dispatch(t, s, at(time.Minute), at(2*time.Minute), outcomes(map[string]string{
			evs[0].ID: store.WebhookDelivered, evs[1].ID: store.WebhookDelivered, evs[4].ID: store.WebhookDelivered,
			evs[3].ID: store.WebhookFailed,
		}))
		e := stored(t, s, sc, evs...)
		if e[0].Status != store.WebhookDelivered || e[3].Status != store.WebhookFailed || e[2].Status != store.WebhookPending {
			t.Fatalf("statuses after dispatch = %s, %s, %s", e[0].Status, e[3].Status, e[2].Status)
		}

		list := func(status, typ, after string, limit int, want ...store.WebhookEvent) {
			t.Helper()
			call := fmt.Sprintf("WebhookList(%q, %q, after %q, limit %d)", status, typ, after, limit)
			got, err := s.WebhookList(ctx, sc, status, typ, store.Page{After: after, Limit: limit})
			wantNoErr(t, call, err)
			wantEvents(t, call, got, want...)
		}
		list("", "", "", 100, e[7], e[6], e[5], e[4], e[3], e[2], e[1], e[0])
		list("", "", "", 3, e[7], e[6], e[5])
		list("", "", e[5].ID, 3, e[4], e[3], e[2])
		list("", "", e[2].ID, 3, e[1], e[0])
		list("", "", e[0].ID, 3)
		list(store.WebhookPending, "", "", 100, e[7], e[6], e[5], e[2])
		list(store.WebhookDelivered, "", "", 2, e[4], e[1])
		list(store.WebhookDelivered, "", e[1].ID, 2, e[0])
		list(store.WebhookFailed, "", "", 10, e[3])
		list("", "balance.low", "", 100, e[7], e[5], e[3], e[1])
		list("", "balance.low", e[5].ID, 1, e[3])
		list(store.WebhookPending, "credit.granted", "", 100, e[6], e[2])
		list(store.WebhookDelivered, "credit.granted", e[4].ID, 100, e[0])
		list("", "no.such.type", "", 100)

		for _, o := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			got, err := s.WebhookList(ctx, o, "", "", store.Page{Limit: 100})
			wantNoErr(t, "WebhookList(another scope)", err)
			wantEvents(t, "WebhookList(another scope)", got)
			got, err = s.WebhookList(ctx, o, store.WebhookPending, "", store.Page{Limit: 100})
			wantNoErr(t, "WebhookList(another scope, pending)", err)
			wantEvents(t, "WebhookList(another scope, pending)", got)
		}
	})

	t.Run("Health", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		a, b := newCustomer(t, s, sc), newCustomer(t, s, sc)
		since := at(time.Hour)

		empty, err := s.WebhookHealth(ctx, sc, since)
		wantNoErr(t, "WebhookHealth", err)
		wantSame(t, "WebhookHealth(nothing yet)", empty, store.WebhookHealth{Since: since})

		old := newWebhookEvent(a.ID, "credit.granted", since.Add(-time.Millisecond), 1) // made just before the window
		edge := newWebhookEvent(a.ID, "credit.granted", since, 2)                       // made as it opens
		recent := newWebhookEvent(b.ID, "credit.granted", at(90*time.Minute), 3)
		failed := newWebhookEvent(a.ID, "balance.low", at(70*time.Minute), 4)
		emit(t, s, sc, old, edge, recent, failed)
		dispatch(t, s, at(2*time.Hour), at(3*time.Hour), outcomes(map[string]string{
			old.ID: store.WebhookDelivered, edge.ID: store.WebhookDelivered, recent.ID: store.WebhookDelivered,
			failed.ID: store.WebhookFailed,
		}))
		// Pending: one of a's (written later, made earlier) and one of b's.
		p1 := newWebhookEvent(b.ID, "balance.low", at(80*time.Minute), 5)
		p2 := newWebhookEvent(a.ID, "balance.low", at(30*time.Minute), 6)
		emit(t, s, sc, p1)
		emit(t, s, sc, p2)
		p2 = stored(t, s, sc, p2)[0]
		// A failed attempt each: both queues are due again at 5h.
		dispatch(t, s, at(4*time.Hour), at(5*time.Hour), outcomes(nil))
		// One more, on a queue of its own, due later than the others.
		c := newCustomer(t, s, sc)
		emit(t, s, sc, newWebhookEvent(c.ID, "credit.granted", at(6*time.Hour), 7))
		// Another scope's events and queues do not count.
		testEnv := store.Scope{TenantID: sc.TenantID, Env: "test"}
		theirs := newWebhookEvent(a.ID, "credit.granted", at(time.Minute), 8)
		emit(t, s, testEnv, theirs)

		h, err := s.WebhookHealth(ctx, sc, since)
		wantNoErr(t, "WebhookHealth", err)
		wantSame(t, "WebhookHealth", h, store.WebhookHealth{Pending: 3, Failed: 1, DeliveredSince: 2, Since: since,
			OldestPendingAt: p2.CreatedAt, OldestPendingID: p2.ID, NextAttemptAt: at(5 * time.Hour)})
		h, err = s.WebhookHealth(ctx, sc, t0)
		wantNoErr(t, "WebhookHealth", err)
		if h.DeliveredSince != 3 || !h.Since.Equal(t0) {
			t.Errorf("WebhookHealth(since t0) = %+v, want 3 delivered since t0", h)
		}
		transact(t, s, func(q store.Q) error {
			in, err := q.WebhookHealth(ctx, sc, t0)
			wantSame(t, "WebhookHealth in a transaction", in, h)
			return err
		})
		h, err = s.WebhookHealth(ctx, testEnv, since)
		wantNoErr(t, "WebhookHealth(the other environment)", err)
		wantSame(t, "WebhookHealth(the other environment)", h, store.WebhookHealth{Pending: 1, Since: since,
			OldestPendingAt: theirs.CreatedAt, OldestPendingID: theirs.ID, NextAttemptAt: theirs.NextAttemptAt})
		h, err = s.WebhookHealth(ctx, newScope(t, s), since)
		wantNoErr(t, "WebhookHealth(another tenant)", err)
		wantSame(t, "WebhookHealth(another tenant)", h, store.WebhookHealth{Since: since})
	})

	t.Run("Purge", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		testEnv := store.Scope{TenantID: sc.TenantID, Env: "test"}
		a, b := newCustomer(t, s, sc), newCustomer(t, s, sc)
		cutoff := at(time.Hour)

		d1, d2 := newWebhookEvent(a.ID, "credit.granted", at(time.Second), 1), newWebhookEvent(b.ID, "credit.granted", at(2*time.Second), 2)
		f1 := newWebhookEvent(a.ID, "balance.low", at(3*time.Second), 3)
		stillPending := newWebhookEvent(b.ID, "balance.low", at(4*time.Second), 4)
		edge := newWebhookEvent(a.ID, "credit.granted", cutoff, 5) // made as the cutoff: kept
		recent := newWebhookEvent(b.ID, "credit.granted", at(2*time.Hour), 6)
		theirs := newWebhookEvent(a.ID, "credit.granted", at(time.Second), 7)
		emit(t, s, sc, d1, d2, f1, stillPending, edge, recent)
		emit(t, s, testEnv, theirs)
		dispatch(t, s, at(3*time.Hour), at(4*time.Hour), outcomes(map[string]string{
			d1.ID: store.WebhookDelivered, d2.ID: store.WebhookDelivered, f1.ID: store.WebhookFailed,
			edge.ID: store.WebhookDelivered, recent.ID: store.WebhookDelivered, theirs.ID: store.WebhookDelivered,
		}))
		old := []store.WebhookEvent{d1, d2, f1}
		kept := []store.WebhookEvent{stillPending, edge, recent}

		purge := func(limit int) int64 {
			t.Helper()
			var n int64
			transact(t, s, func(q store.Q) error {
				var err error
				n, err = q.WebhookPurge(ctx, sc, cutoff, limit)
				return err
			})
			return n
		}
		left := func() int {
			t.Helper()
			n := 0
			for _, e := range old {
				if _, err := s.WebhookGet(ctx, sc, e.ID); err == nil {
					n++
				}
			}
			return n
		}
		if n := purge(2); n != 2 || left() != 1 {
			t.Fatalf("WebhookPurge(limit 2) = %d, leaving %d of 3 old events; want 2 deleted, 1 left", n, left())
		}
		if n := purge(10); n != 1 || left() != 0 {
			t.Fatalf("WebhookPurge(limit 10) = %d, leaving %d old events; want 1 deleted, none left", n, left())
		}
		if n := purge(10); n != 0 {
			t.Errorf("WebhookPurge(nothing old) = %d, want 0", n)
		}
		for _, e := range old {
			_, err := s.WebhookGet(ctx, sc, e.ID)
			wantErr(t, "WebhookGet(a purged event)", err, store.ErrNotFound)
		}
		attempts, err := s.WebhookAttempts(ctx, sc, append(idsOf(old, webhookEventID), idsOf(kept, webhookEventID)...))
		wantNoErr(t, "WebhookAttempts", err)
		for _, e := range old {
			if len(attempts[e.ID]) != 0 {
				t.Errorf("attempts of purged event %s = %+v, want none", e.ID, attempts[e.ID])
			}
		}
		for _, e := range kept {
			if _, err := s.WebhookGet(ctx, sc, e.ID); err != nil {
				t.Errorf("WebhookGet(%s, kept) = %v", e.ID, err)
			}
			if len(attempts[e.ID]) != 1 {
				t.Errorf("attempts of kept event %s = %d, want 1", e.ID, len(attempts[e.ID]))
			}
		}
		if got := stored(t, s, sc, stillPending)[0]; got.Status != store.WebhookPending {
			t.Errorf("status of the old pending event = %s, want pending", got.Status)
		}
		ev, err := s.WebhookGet(ctx, testEnv, theirs.ID)
		if err != nil || ev.Status != store.WebhookDelivered {
			t.Errorf("WebhookGet(another scope's old event) = %+v, %v; want it kept, delivered", ev, err)
		}
		if _, err := s.WebhookPurge(ctx, sc, at(10*time.Hour), 10); err == nil {
			t.Error("WebhookPurge() outside a transaction succeeded, want an error")
		}
	})

	t.Run("Scopes", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, other, unset := newScope(t, s), newScope(t, s), newScope(t, s)
		for _, c := range []store.Scope{sc, other} {
			cfg := store.TenantConfig{WebhookURL: "https://example.test/hooks", WebhookSecret: []byte("0123456789abcdef"), UpdatedAt: t0}
			mustTransact(t, s, func(q store.Q) error { return q.ConfigPut(ctx, c, cfg) })
		}
		got, err := s.WebhookScopes(ctx)
		wantNoErr(t, "WebhookScopes", err)
		has := func(want store.Scope) bool { return slices.Contains(got, want) }
		if !has(sc) || !has(other) || has(unset) {
			t.Errorf("WebhookScopes() = %v, want %v and %v, without %v (no settings)", got, sc, other, unset)
		}
	})
}

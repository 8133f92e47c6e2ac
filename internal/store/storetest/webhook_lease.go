package storetest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// claim runs WebhookClaim in its own transaction.
func claim(t *testing.T, s store.Store, owner string, now, until time.Time, limit, perQueue int) []store.WebhookQueue {
	t.Helper()
	var out []store.WebhookQueue
	transact(t, s, func(q store.Q) error {
		var err error
		out, err = q.WebhookClaim(t.Context(), owner, now, until, limit, perQueue)
		return err
	})
	return out
}

// wantQueues fails the test now unless queues are of the customers want,
// in order, each of scope sc and leased until until.
func wantQueues(t *testing.T, call string, queues []store.WebhookQueue, sc store.Scope, until time.Time, want ...string) {
	t.Helper()
	got := make([]string, len(queues))
	for i, q := range queues {
		got[i] = q.CustomerID
		if q.Scope != sc || !q.LeaseUntil.Equal(until) {
			t.Errorf("%s: queue of %s has scope %+v, lease until %s; want %+v, %s", call, q.CustomerID, q.Scope,
				q.LeaseUntil.Format(time.RFC3339Nano), sc, until.Format(time.RFC3339Nano))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s customers = %q, want %q", call, got, want)
	}
}

// attempted runs WebhookAttempted in a transaction that commits whatever
// the call did, so that a failed call's writes, if any, would show.
func attempted(t *testing.T, s store.Store, sc store.Scope, owner string, now, until time.Time, ev store.WebhookEvent, a store.WebhookAttempt) error {
	t.Helper()
	var err error
	transact(t, s, func(q store.Q) error {
		err = q.WebhookAttempted(t.Context(), sc, owner, now, until, ev, a)
		return nil
	})
	return err
}

// release runs WebhookRelease in its own transaction.
func release(t *testing.T, s store.Store, sc store.Scope, customerID, owner string, next time.Time) {
	t.Helper()
	transact(t, s, func(q store.Q) error { return q.WebhookRelease(t.Context(), sc, customerID, owner, next) })
}

// requeue runs WebhookRequeue in its own transaction.
func requeue(t *testing.T, s store.Store, sc store.Scope, id string, now time.Time) (store.WebhookEvent, error) {
	var ev store.WebhookEvent
	var err error
	transact(t, s, func(q store.Q) error {
		ev, err = q.WebhookRequeue(t.Context(), sc, id, now)
		return nil
	})
	return ev, err
}

// tried returns ev after an attempt at when, with the status given.
func tried(ev store.WebhookEvent, status string, when, next time.Time) store.WebhookEvent {
	ev.Status, ev.Tries, ev.Attempts, ev.UpdatedAt, ev.NextAttemptAt = status, ev.Tries+1, ev.Attempts+1, when, next
	if status == store.WebhookDelivered {
		ev.DeliveredAt = when
	}
	return ev
}

func testWebhookLease(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Claim", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		testEnv := store.Scope{TenantID: sc.TenantID, Env: "test"}
		a, b, c := newCustomer(t, s, sc), newCustomer(t, s, sc), newCustomer(t, s, sc)

		a1, a2 := newWebhookEvent(a.ID, "credit.granted", at(time.Second), 1), newWebhookEvent(a.ID, "usage.recorded", at(time.Second), 2)
		a3 := newWebhookEvent(a.ID, "balance.low", at(3*time.Second), 3)
		// b's queue is due at the earliest of its events, whatever their
		// order.
		b1, b2 := newWebhookEvent(b.ID, "credit.granted", at(2*time.Second), 4), newWebhookEvent(b.ID, "balance.low", at(2*time.Second), 5)
		b1.NextAttemptAt, b2.NextAttemptAt = at(5*time.Second), at(2*time.Second)
		c1 := newWebhookEvent(c.ID, "credit.granted", at(10*time.Minute), 6)
		emit(t, s, sc, a1, b1, c1, a2, b2)
		emit(t, s, sc, a3)
		// a's customer id in the other environment: a queue of its own.
		twin := newWebhookEvent(a.ID, "credit.granted", at(4*time.Second), 7)
		emit(t, s, testEnv, twin)
		e := stored(t, s, sc, a1, a2, a3, b1, b2, c1)
		a1, a2, a3, b1, b2, c1 = e[0], e[1], e[2], e[3], e[4], e[5]
		twin = stored(t, s, testEnv, twin)[0]

		err := s.Transact(t.Context(), func(q store.Q) error {
			_, err := q.WebhookClaim(t.Context(), "d0", at(time.Hour), at(2*time.Hour), 10, 0)
			return err
		})
		if err == nil {
			t.Error("WebhookClaim(no events per queue) succeeded, want an error")
		}
		wantQueues(t, "WebhookClaim(before anything is due)", claim(t, s, "d1", at(999*time.Millisecond), at(time.Minute), 10, 10), sc, time.Time{})
		got := claim(t, s, "d1", at(2500*time.Millisecond), at(time.Minute), 1, 2)
		wantQueues(t, "WebhookClaim(limit 1)", got, sc, at(time.Minute), a.ID)
		wantEvents(t, "WebhookClaim(2 per queue)", got[0].Events, a1, a2)
		got = claim(t, s, "d2", at(2500*time.Millisecond), at(2*time.Minute), 10, 10)
		wantQueues(t, "WebhookClaim(a leased)", got, sc, at(2*time.Minute), b.ID)
		wantEvents(t, "WebhookClaim", got[0].Events, b1, b2)
		got = claim(t, s, "d3", at(5*time.Second), at(3*time.Minute), 10, 10)
		wantQueues(t, "WebhookClaim(the other environment's)", got, testEnv, at(3*time.Minute), a.ID)
		wantEvents(t, "WebhookClaim", got[0].Events, twin)
		release(t, s, testEnv, a.ID, "d3", at(24*time.Hour))
		wantQueues(t, "WebhookClaim(all leased)", claim(t, s, "d4", at(59*time.Second), at(5*time.Minute), 10, 10), sc, time.Time{})

		// d1's lease has ended: a is anyone's again, with all its events.
		got = claim(t, s, "d4", at(time.Minute), at(6*time.Minute), 10, 10)
		wantQueues(t, "WebhookClaim(a lease ended)", got, sc, at(6*time.Minute), a.ID)
		wantEvents(t, "WebhookClaim", got[0].Events, a1, a2, a3)
		// A new event leaves a's lease alone, and c's due time: c's older
		// event goes first.
		a4 := newWebhookEvent(a.ID, "balance.low", at(2*time.Minute), 8)
		c2 := newWebhookEvent(c.ID, "balance.low", at(3*time.Minute), 9)
		emit(t, s, sc, c2, a4)
		a4, c2 = stored(t, s, sc, a4)[0], stored(t, s, sc, c2)[0]
		got = claim(t, s, "d5", at(5*time.Minute), at(7*time.Minute), 10, 10)
		wantQueues(t, "WebhookClaim(a leased, c not due)", got, sc, at(7*time.Minute), b.ID)
		got = claim(t, s, "d6", at(10*time.Minute), at(11*time.Minute), 10, 1)
		wantQueues(t, "WebhookClaim(in due order)", got, sc, at(11*time.Minute), a.ID, b.ID, c.ID)
		wantEvents(t, "WebhookClaim(a)", got[0].Events, a1)
		wantEvents(t, "WebhookClaim(c)", got[2].Events, c1)
		release(t, s, sc, c.ID, "d6", at(20*time.Minute))
		release(t, s, sc, b.ID, "d6", at(21*time.Minute))
		release(t, s, sc, a.ID, "d6", at(22*time.Minute))
		got = claim(t, s, "d7", at(30*time.Minute), at(31*time.Minute), 2, 10)
		wantQueues(t, "WebhookClaim(limit 2)", got, sc, at(31*time.Minute), c.ID, b.ID)
		wantEvents(t, "WebhookClaim(c)", got[0].Events, c1, c2)
		got = claim(t, s, "d7", at(30*time.Minute), at(31*time.Minute), 2, 10)
		wantQueues(t, "WebhookClaim(the rest)", got, sc, at(31*time.Minute), a.ID)
		wantEvents(t, "WebhookClaim(a)", got[0].Events, a1, a2, a3, a4)
	})

	t.Run("Attempted", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		a := newCustomer(t, s, sc)
		e := []store.WebhookEvent{newWebhookEvent(a.ID, "credit.granted", t0, 1), newWebhookEvent(a.ID, "balance.low", t0, 2)}
		emit(t, s, sc, e...)
		e = stored(t, s, sc, e...)
		wantQueues(t, "WebhookClaim", claim(t, s, "d1", at(time.Second), at(time.Minute), 10, 10), sc, at(time.Minute), a.ID)

		failed := tried(e[0], store.WebhookPending, at(10*time.Second), at(40*time.Second))
		att1 := store.WebhookAttempt{EventID: e[0].ID, At: at(10 * time.Second), StatusCode: 500, Duration: 1234567 * time.Microsecond}
		for _, c := range []struct {
			name       string
			sc         store.Scope
			owner      string
			now, until time.Time
		}{
			{"another owner", sc, "d2", at(10 * time.Second), at(2 * time.Minute)},
			{"the lease ended", sc, "d1", at(time.Minute + time.Millisecond), at(2 * time.Minute)},
			{"the other environment", store.Scope{TenantID: sc.TenantID, Env: "test"}, "d1", at(10 * time.Second), at(2 * time.Minute)},
			{"another tenant", newScope(t, s), "d1", at(10 * time.Second), at(2 * time.Minute)},
		} {
			err := attempted(t, s, c.sc, c.owner, c.now, c.until, failed, att1)
			wantErr(t, "WebhookAttempted("+c.name+")", err, store.ErrConflict)
		}
		// Nothing was written: not the event, not the attempt, not the lease.
		wantEvents(t, "WebhookGet after refused attempts", stored(t, s, sc, e[0]), e[0])
		found, err := s.WebhookAttempts(ctx, sc, []string{e[0].ID})
		wantNoErr(t, "WebhookAttempts", err)
		if len(found) != 0 {
			t.Errorf("WebhookAttempts after refused attempts = %+v, want none", found)
		}

		wantNoErr(t, "WebhookAttempted", attempted(t, s, sc, "d1", at(10*time.Second), at(2*time.Minute), failed, att1))
		wantEvents(t, "WebhookGet after a failed attempt", stored(t, s, sc, e[0]), failed)
		// The lease was extended: at its old end, nobody else takes a.
		wantQueues(t, "WebhookClaim(the lease extended)", claim(t, s, "d2", at(90*time.Second), at(3*time.Minute), 10, 10), sc, time.Time{})

		delivered := tried(failed, store.WebhookDelivered, at(40*time.Second), at(40*time.Second))
		att2 := store.WebhookAttempt{EventID: e[0].ID, At: at(40 * time.Second), StatusCode: 204, Duration: 80 * time.Millisecond}
		wantNoErr(t, "WebhookAttempted", attempted(t, s, sc, "d1", at(40*time.Second), at(2*time.Minute), delivered, att2))
		wantEvents(t, "WebhookGet after a delivery", stored(t, s, sc, e[0]), delivered)
		// An event that is no longer pending is not attempted again.
		err = attempted(t, s, sc, "d1", at(50*time.Second), at(2*time.Minute), tried(delivered, store.WebhookDelivered, at(50*time.Second), at(50*time.Second)), att2)
		wantErr(t, "WebhookAttempted(a delivered event)", err, store.ErrNotFound)

		gaveUp := tried(e[1], store.WebhookFailed, at(2*time.Minute), at(2*time.Minute))
		att3 := store.WebhookAttempt{EventID: e[1].ID, At: at(2 * time.Minute), Error: "dial tcp 10.0.0.7:443: connect: connection refused",
			Duration: 5 * time.Second}
		// At its very end, the lease is still held.
		wantNoErr(t, "WebhookAttempted", attempted(t, s, sc, "d1", at(2*time.Minute), at(3*time.Minute), gaveUp, att3))
		wantEvents(t, "WebhookGet after the last attempt", stored(t, s, sc, e[1]), gaveUp)

		// Asked for in chunks, with repeats and unknown ids among them.
		names := []string{e[1].ID, e[0].ID, e[1].ID}
		for i := range 70 {
			names = append(names, webhookID(at(time.Hour), i))
		}
		found, err = s.WebhookAttempts(ctx, sc, append(names, e[0].ID))
		wantNoErr(t, "WebhookAttempts", err)
		wantAttempts(t, "WebhookAttempts", found, map[string][]store.WebhookAttempt{e[0].ID: {att1, att2}, e[1].ID: {att3}})
		transact(t, s, func(q store.Q) error {
			in, err := q.WebhookAttempts(ctx, sc, []string{e[1].ID})
			wantAttempts(t, "WebhookAttempts in a transaction", in, map[string][]store.WebhookAttempt{e[1].ID: {att3}})
			return err
		})
		found, err = s.WebhookAttempts(ctx, store.Scope{TenantID: sc.TenantID, Env: "test"}, names)
		wantNoErr(t, "WebhookAttempts(another scope)", err)
		if len(found) != 0 {
			t.Errorf("WebhookAttempts(another scope) = %+v, want none", found)
		}

		// a's queue has nothing pending left, unreleased: once its lease ends
		// a claim drops it rather than lease it empty.
		wantQueues(t, "WebhookClaim(an empty queue)", claim(t, s, "d2", at(time.Hour), at(2*time.Hour), 10, 10), sc, time.Time{})
		h, err := s.WebhookHealth(ctx, sc, t0)
		wantNoErr(t, "WebhookHealth", err)
		if !h.NextAttemptAt.IsZero() {
			t.Errorf("WebhookHealth().NextAttemptAt = %s after the empty queue was claimed, want none", h.NextAttemptAt)
		}
	})

	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		a := newCustomer(t, s, sc)
		e := []store.WebhookEvent{newWebhookEvent(a.ID, "credit.granted", t0, 1), newWebhookEvent(a.ID, "balance.low", t0, 2)}
		emit(t, s, sc, e...)
		e = stored(t, s, sc, e...)
		claim(t, s, "d1", at(time.Second), at(time.Minute), 10, 10)

		// Only the owner releases, and only in the queue's scope.
		release(t, s, sc, a.ID, "d2", at(time.Second))
		release(t, s, store.Scope{TenantID: sc.TenantID, Env: "test"}, a.ID, "d1", at(time.Second))
		release(t, s, newScope(t, s), a.ID, "d1", at(time.Second))
		wantQueues(t, "WebhookClaim(after others' releases)", claim(t, s, "d3", at(59*time.Second), at(time.Hour), 10, 10), sc, time.Time{})

		delivered := tried(e[0], store.WebhookDelivered, at(2*time.Second), at(2*time.Second))
		wantNoErr(t, "WebhookAttempted", attempted(t, s, sc, "d1", at(2*time.Second), at(time.Minute), delivered,
			store.WebhookAttempt{EventID: e[0].ID, At: at(2 * time.Second), StatusCode: 200}))
		// e[1] is pending: the queue stays, due at next, leased by nobody.
		release(t, s, sc, a.ID, "d1", at(5*time.Minute))
		wantHealthNext(t, s, sc, at(5*time.Minute))
		wantQueues(t, "WebhookClaim(before next)", claim(t, s, "d2", at(4*time.Minute), at(time.Hour), 10, 10), sc, time.Time{})
		got := claim(t, s, "d2", at(5*time.Minute), at(6*time.Minute), 10, 10)
		wantQueues(t, "WebhookClaim(at next)", got, sc, at(6*time.Minute), a.ID)
		wantEvents(t, "WebhookClaim", got[0].Events, e[1])

		// d1 no longer holds the lease: its release changes nothing.
		release(t, s, sc, a.ID, "d1", at(5*time.Minute))
		wantHealthNext(t, s, sc, at(6*time.Minute))
		delivered = tried(e[1], store.WebhookDelivered, at(5*time.Minute), at(5*time.Minute))
		wantNoErr(t, "WebhookAttempted", attempted(t, s, sc, "d2", at(5*time.Minute), at(6*time.Minute), delivered,
			store.WebhookAttempt{EventID: e[1].ID, At: at(5 * time.Minute), StatusCode: 200}))
		// Nothing pending: the queue goes away.
		release(t, s, sc, a.ID, "d2", at(10*time.Minute))
		wantHealthNext(t, s, sc, time.Time{})
		wantQueues(t, "WebhookClaim(after the last release)", claim(t, s, "d3", at(24*time.Hour), at(25*time.Hour), 10, 10), sc, time.Time{})
		release(t, s, sc, a.ID, "d2", at(10*time.Minute)) // no queue: nothing to do

		// A new event makes a new queue.
		e3 := newWebhookEvent(a.ID, "credit.granted", at(time.Hour), 3)
		emit(t, s, sc, e3)
		got = claim(t, s, "d3", at(time.Hour), at(2*time.Hour), 10, 10)
		wantQueues(t, "WebhookClaim(a new event)", got, sc, at(2*time.Hour), a.ID)
		wantEvents(t, "WebhookClaim", got[0].Events, stored(t, s, sc, e3)...)
	})

	t.Run("Requeue", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		a, b := newCustomer(t, s, sc), newCustomer(t, s, sc)
		a1, b1, b2 := newWebhookEvent(a.ID, "credit.granted", t0, 1), newWebhookEvent(b.ID, "credit.granted", t0, 2), newWebhookEvent(b.ID, "balance.low", t0, 3)
		emit(t, s, sc, a1, b1, b2)
		dispatch(t, s, at(time.Second), at(3*time.Hour), outcomes(map[string]string{a1.ID: store.WebhookDelivered, b1.ID: store.WebhookDelivered}))
		// a's queue is gone; b's is due at 3h, for b2.
		e := stored(t, s, sc, a1, b1, b2)

		again, err := requeue(t, s, sc, a1.ID, at(time.Hour))
		wantNoErr(t, "WebhookRequeue", err)
		want := e[0]
		want.Status, want.Tries, want.NextAttemptAt, want.UpdatedAt = store.WebhookPending, 0, at(time.Hour), at(time.Hour)
		wantSame(t, "WebhookRequeue", again, want)
		wantEvents(t, "WebhookGet after WebhookRequeue", stored(t, s, sc, a1), want)
		if again.Attempts != 1 || !again.DeliveredAt.Equal(at(time.Second)) {
			t.Errorf("WebhookRequeue() = %+v, want its attempts and first delivery kept", again)
		}
		// b's queue, not leased, is due now.
		againB, err := requeue(t, s, sc, b1.ID, at(61*time.Minute))
		wantNoErr(t, "WebhookRequeue", err)
		got := claim(t, s, "d1", at(61*time.Minute), at(2*time.Hour), 10, 10)
		wantQueues(t, "WebhookClaim(after requeues)", got, sc, at(2*time.Hour), a.ID, b.ID)
		wantEvents(t, "WebhookClaim(a)", got[0].Events, again)
		wantEvents(t, "WebhookClaim(b)", got[1].Events, againB, e[2])

		// A leased queue is left to its owner, whose release sees the
		// event pending.
		delivered := tried(again, store.WebhookDelivered, at(62*time.Minute), at(62*time.Minute))
		wantNoErr(t, "WebhookAttempted", attempted(t, s, sc, "d1", at(62*time.Minute), at(2*time.Hour), delivered,
			store.WebhookAttempt{EventID: a1.ID, At: at(62 * time.Minute), StatusCode: 200}))
		_, err = requeue(t, s, sc, a1.ID, at(90*time.Minute))
		wantNoErr(t, "WebhookRequeue", err)
		wantQueues(t, "WebhookClaim(a leased)", claim(t, s, "d2", at(90*time.Minute), at(3*time.Hour), 10, 10), sc, time.Time{})
		release(t, s, sc, a.ID, "d1", at(100*time.Minute))
		wantQueues(t, "WebhookClaim(before next)", claim(t, s, "d2", at(99*time.Minute), at(3*time.Hour), 10, 10), sc, time.Time{})
		got = claim(t, s, "d2", at(100*time.Minute), at(3*time.Hour), 1, 10)
		wantQueues(t, "WebhookClaim(released)", got, sc, at(3*time.Hour), a.ID)
		if ev := got[0].Events; len(ev) != 1 || ev[0].Attempts != 2 || !ev[0].NextAttemptAt.Equal(at(90*time.Minute)) {
			t.Errorf("WebhookClaim() events = %+v, want a1 requeued at 90m after 2 attempts", ev)
		}

		_, err = requeue(t, s, sc, webhookID(t0, 99), at(time.Hour))
		wantErr(t, "WebhookRequeue(unknown)", err, store.ErrNotFound)
		for _, o := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			_, err = requeue(t, s, o, b2.ID, at(time.Hour))
			wantErr(t, fmt.Sprintf("WebhookRequeue(scope %+v)", o), err, store.ErrNotFound)
			h, err := s.WebhookHealth(ctx, o, t0)
			wantNoErr(t, "WebhookHealth", err)
			wantSame(t, "WebhookHealth(after a requeue from outside)", h, store.WebhookHealth{Since: t0})
		}
	})
}

// wantHealthNext fails the test unless the scope's earliest due queue is at
// next (zero: no queue).
func wantHealthNext(t *testing.T, s store.Store, sc store.Scope, next time.Time) {
	t.Helper()
	h, err := s.WebhookHealth(t.Context(), sc, t0)
	wantNoErr(t, "WebhookHealth", err)
	if !h.NextAttemptAt.Equal(next) {
		t.Errorf("WebhookHealth().NextAttemptAt = %s, want %s", h.NextAttemptAt.Format(time.RFC3339Nano), next.Format(time.RFC3339Nano))
	}
}

// wantAttempts fails the test unless got has the attempts of want's events,
// and no others, in order, field by field.
func wantAttempts(t *testing.T, call string, got, want map[string][]store.WebhookAttempt) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(got))
	if wantKeys := slices.Sorted(maps.Keys(want)); !slices.Equal(keys, wantKeys) {
		t.Fatalf("%s events = %q, want %q", call, keys, wantKeys)
	}
	for _, k := range keys {
		wantSame(t, call+"["+k+"]", got[k], want[k])
	}
}

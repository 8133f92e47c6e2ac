package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
)

// The outbox's concurrency, which the conformance suite cannot reach: it
// runs one transaction at a time, as SQLite's single writer does.

var wt0 = time.UnixMilli(1_767_225_600_000).UTC()

// webhookEvent returns an unsaved pending event of customerID, due at due.
func webhookEvent(customerID string, due time.Time) store.WebhookEvent {
	return store.WebhookEvent{ID: ids.New(ids.Webhook), CustomerID: customerID, Type: "credit.granted", Payload: []byte(`{}`),
		Status: store.WebhookPending, NextAttemptAt: due, CreatedAt: due, UpdatedAt: due}
}

func emitEvents(t *testing.T, db *postgres.DB, sc store.Scope, events ...store.WebhookEvent) {
	t.Helper()
	err := db.Transact(t.Context(), func(q store.Q) error { return q.WritesApply(t.Context(), &store.Writes{Scope: sc, Events: events}) })
	if err != nil {
		t.Fatalf("WritesApply: %v", err)
	}
}

func claimQueues(t *testing.T, db *postgres.DB, owner string, now, until time.Time) []store.WebhookQueue {
	t.Helper()
	var out []store.WebhookQueue
	err := db.Transact(t.Context(), func(q store.Q) error {
		var err error
		out, err = q.WebhookClaim(t.Context(), owner, now, until, 100, 100)
		return err
	})
	if err != nil {
		t.Fatalf("WebhookClaim: %v", err)
	}
	return out
}

// held runs fn in a transaction that stays open until the returned commit
// is called, which waits for the commit and returns its error. It returns
// once fn has run.
func held(t *testing.T, db *postgres.DB, fn func(q store.Q) error) (commit func() error) {
	t.Helper()
	ran, release, done := make(chan error, 1), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		done <- db.Transact(context.Background(), func(q store.Q) error {
			err := fn(q)
			once.Do(func() { ran <- err })
			if err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	if err := <-ran; err != nil {
		t.Fatalf("in the held transaction: %v", err)
	}
	var closeOnce sync.Once
	commit = func() error {
		closeOnce.Do(func() { close(release) })
		return <-done
	}
	t.Cleanup(func() { closeOnce.Do(func() { close(release) }) })
	return commit
}

// blocked runs fn in a transaction of its own and reports whether it is
// still waiting after a while; wait returns its error once it ends.
func blocked(db *postgres.DB, fn func(q store.Q) error) (stillWaiting bool, wait func() error) {
	done := make(chan error, 1)
	go func() { done <- db.Transact(context.Background(), fn) }()
	select {
	case err := <-done:
		return false, func() error { return err }
	case <-time.After(300 * time.Millisecond):
		return true, func() error { return <-done }
	}
}

func TestWebhookClaimSkipsLocked(t *testing.T) {
	db := open(t)
	sc := store.Scope{TenantID: ids.UUID(), Env: "live"}
	a, b := ids.UUID(), ids.UUID()
	emitEvents(t, db, sc, webhookEvent(a, wt0), webhookEvent(b, wt0.Add(time.Second)))

	var first []store.WebhookQueue
	commit := held(t, db, func(q store.Q) error {
		var err error
		first, err = q.WebhookClaim(t.Context(), "d1", wt0.Add(time.Minute), wt0.Add(time.Hour), 1, 10)
		return err
	})
	if len(first) != 1 || first[0].CustomerID != a {
		t.Fatalf("first claim = %+v, want a's queue", first)
	}
	// The first claim's transaction is still open: the second skips a's
	// locked row, rather than wait for it or lease it again.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var second []store.WebhookQueue
	err := db.Transact(ctx, func(q store.Q) error {
		var err error
		second, err = q.WebhookClaim(ctx, "d2", wt0.Add(time.Minute), wt0.Add(time.Hour), 10, 10)
		return err
	})
	if err != nil {
		t.Fatalf("second claim: %v", err)
	}
	if len(second) != 1 || second[0].CustomerID != b {
		t.Fatalf("second claim = %+v, want b's queue only", second)
	}
	if err := commit(); err != nil {
		t.Fatalf("first claim's commit: %v", err)
	}
	if again := claimQueues(t, db, "d3", wt0.Add(time.Minute), wt0.Add(time.Hour)); len(again) != 0 {
		t.Errorf("claim after both = %+v, want nothing: both are leased", again)
	}
}

func TestWebhookClaimConcurrent(t *testing.T) {
	db := open(t)
	const queues, claimers = 60, 8
	var events []store.WebhookEvent
	sc := store.Scope{TenantID: ids.UUID(), Env: "live"}
	for i := range queues {
		events = append(events, webhookEvent(ids.UUID(), wt0.Add(time.Duration(i)*time.Millisecond)))
	}
	emitEvents(t, db, sc, events...)

	var mu sync.Mutex
	var claimed []string
	var wg sync.WaitGroup
	errs := make(chan error, claimers)
	for w := range claimers {
		wg.Go(func() {
			for {
				var got []store.WebhookQueue
				err := db.Transact(t.Context(), func(q store.Q) error {
					var err error
					got, err = q.WebhookClaim(t.Context(), fmt.Sprintf("d%d", w), wt0.Add(time.Minute), wt0.Add(time.Hour), 3, 10)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, q := range got {
					claimed = append(claimed, q.CustomerID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("WebhookClaim: %v", err)
	}
	slices.Sort(claimed)
	if len(claimed) != queues || len(slices.Compact(slices.Clone(claimed))) != queues {
		t.Errorf("claimed %d queues (%d distinct), want each of the %d once", len(claimed), len(slices.Compact(slices.Clone(claimed))), queues)
	}
}

// A dispatcher that finds its queue empty must not drop it while a new
// event for the customer is being committed: Release waits for the
// WritesApply that holds the queue row, and then sees its event.
func TestWebhookReleaseWaitsForNewEvent(t *testing.T) {
	db := open(t)
	sc := store.Scope{TenantID: ids.UUID(), Env: "live"}
	a := ids.UUID()
	e1 := webhookEvent(a, wt0)
	emitEvents(t, db, sc, e1)
	if got := claimQueues(t, db, "d1", wt0, wt0.Add(time.Hour)); len(got) != 1 {
		t.Fatalf("claim = %+v, want a's queue", got)
	}
	err := db.Transact(t.Context(), func(q store.Q) error {
		ev := e1
		ev.Status, ev.Tries, ev.Attempts, ev.DeliveredAt = store.WebhookDelivered, 1, 1, wt0
		return q.WebhookAttempted(t.Context(), sc, "d1", wt0, wt0.Add(time.Hour), ev, store.WebhookAttempt{EventID: e1.ID, At: wt0, StatusCode: 200})
	})
	if err != nil {
		t.Fatalf("WebhookAttempted: %v", err)
	}

	e2 := webhookEvent(a, wt0.Add(time.Second))
	commit := held(t, db, func(q store.Q) error {
		return q.WritesApply(t.Context(), &store.Writes{Scope: sc, Events: []store.WebhookEvent{e2}})
	})
	next := wt0.Add(time.Minute)
	waiting, wait := blocked(db, func(q store.Q) error { return q.WebhookRelease(t.Context(), sc, a, "d1", next) })
	if !waiting {
		t.Errorf("WebhookRelease did not wait for the WritesApply that holds the queue (err %v)", wait())
	}
	if err := commit(); err != nil {
		t.Fatalf("WritesApply's commit: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("WebhookRelease: %v", err)
	}
	if got := claimQueues(t, db, "d2", next.Add(-time.Millisecond), wt0.Add(2*time.Hour)); len(got) != 0 {
		t.Errorf("claim before next = %+v, want nothing", got)
	}
	got := claimQueues(t, db, "d2", next, wt0.Add(2*time.Hour))
	if len(got) != 1 || len(got[0].Events) != 1 || got[0].Events[0].ID != e2.ID {
		t.Fatalf("claim at next = %+v, want a's queue with the new event", got)
	}
}

// The other order: a release that dropped the queue commits first, and the
// WritesApply that waited for it makes the queue anew.
func TestWebhookNewEventAfterRelease(t *testing.T) {
	db := open(t)
	sc := store.Scope{TenantID: ids.UUID(), Env: "live"}
	a := ids.UUID()
	e1 := webhookEvent(a, wt0)
	emitEvents(t, db, sc, e1)
	claimQueues(t, db, "d1", wt0, wt0.Add(time.Hour))
	commit := held(t, db, func(q store.Q) error {
		ev := e1
		ev.Status, ev.Tries, ev.Attempts, ev.DeliveredAt = store.WebhookDelivered, 1, 1, wt0
		err := q.WebhookAttempted(t.Context(), sc, "d1", wt0, wt0.Add(time.Hour), ev, store.WebhookAttempt{EventID: e1.ID, At: wt0, StatusCode: 200})
		return errors.Join(err, q.WebhookRelease(t.Context(), sc, a, "d1", wt0.Add(time.Minute)))
	})

	e2 := webhookEvent(a, wt0.Add(time.Second))
	waiting, wait := blocked(db, func(q store.Q) error {
		return q.WritesApply(t.Context(), &store.Writes{Scope: sc, Events: []store.WebhookEvent{e2}})
	})
	if !waiting {
		t.Errorf("WritesApply did not wait for the release that holds the queue (err %v)", wait())
	}
	if err := commit(); err != nil {
		t.Fatalf("release's commit: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("WritesApply: %v", err)
	}
	got := claimQueues(t, db, "d2", e2.NextAttemptAt, wt0.Add(2*time.Hour))
	if len(got) != 1 || len(got[0].Events) != 1 || got[0].Events[0].ID != e2.ID {
		t.Fatalf("claim = %+v, want a's queue anew, with the new event", got)
	}
}

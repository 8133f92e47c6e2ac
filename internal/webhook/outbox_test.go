package webhook_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// memOutbox is an in-memory Outbox with the store's lease semantics, for
// testing the dispatcher's logic without a database. It also checks what a
// database cannot: that every attempt is of the customer's oldest pending
// event.
type memOutbox struct {
	mu       sync.Mutex
	seq      int64
	events   map[qkey][]*store.WebhookEvent // by customer, in Seq order
	queues   map[qkey]*memQueue
	attempts []store.WebhookAttempt
	releases []memRelease // every call, whether it had an effect or not
	targets  map[store.Scope]memTarget
	// steal makes another owner take the queue just before the attempt of
	// these events is recorded, so that recording fails with ErrConflict.
	steal map[string]bool
	// afterAttempted runs after an attempt was recorded, without the lock.
	afterAttempted func(ev store.WebhookEvent)
	violations     []string
	claims         int
	claimed        chan struct{} // gets a value (if there is room) after each claim
}

type qkey struct {
	scope    store.Scope
	customer string
}

type memQueue struct {
	due        time.Time
	owner      string
	leaseUntil time.Time
}

type memRelease struct {
	customer string
	owner    string
	next     time.Time
}

type memTarget struct {
	url    string
	secret []byte
}

func newMemOutbox() *memOutbox {
	return &memOutbox{
		events:  make(map[qkey][]*store.WebhookEvent),
		queues:  make(map[qkey]*memQueue),
		targets: make(map[store.Scope]memTarget),
		steal:   make(map[string]bool),
		claimed: make(chan struct{}, 100),
	}
}

func (m *memOutbox) setTarget(s store.Scope, url string, secret []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets[s] = memTarget{url, secret}
}

// add commits n events for a customer at now and returns their ids.
func (m *memOutbox) add(s store.Scope, customer string, n int, now time.Time) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := qkey{s, customer}
	var ids []string
	for range n {
		m.seq++
		id := fmt.Sprintf("whevt_%06d", m.seq)
		payload, err := json.Marshal(map[string]any{
			"id":        id,
			"type":      "credits.granted",
			"timestamp": now.UTC().Format(time.RFC3339Nano),
			"data":      map[string]any{"customer_id": customer, "seq": m.seq},
		})
		if err != nil {
			panic(err)
		}
		m.events[k] = append(m.events[k], &store.WebhookEvent{
			ID: id, Seq: m.seq, CustomerID: customer, Type: "credits.granted", Payload: payload,
			Status: store.WebhookPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
		})
		ids = append(ids, id)
	}
	if m.queues[k] == nil {
		m.queues[k] = &memQueue{due: now}
	}
	return ids
}

func (m *memOutbox) event(id string) store.WebhookEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, evs := range m.events {
		for _, ev := range evs {
			if ev.ID == id {
				return *ev
			}
		}
	}
	panic("no event " + id)
}

func (m *memOutbox) attemptsOf(id string) []store.WebhookAttempt {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.WebhookAttempt
	for _, a := range m.attempts {
		if a.EventID == id {
			out = append(out, a)
		}
	}
	return out
}

func (m *memOutbox) releaseCalls() []memRelease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.releases)
}

func (m *memOutbox) queueCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queues)
}

func (m *memOutbox) claimCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.claims
}

func (m *memOutbox) orderViolations() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.violations)
}

func (m *memOutbox) pending(k qkey) []*store.WebhookEvent {
	var out []*store.WebhookEvent
	for _, ev := range m.events[k] {
		if ev.Status == store.WebhookPending {
			out = append(out, ev)
		}
	}
	return out
}

func (m *memOutbox) WebhookClaim(_ context.Context, owner string, now, leaseUntil time.Time, limit, perQueue int) ([]store.WebhookQueue, error) {
	m.mu.Lock()
	defer func() {
		m.claims++
		m.mu.Unlock()
		select {
		case m.claimed <- struct{}{}:
		default:
		}
	}()
	var due []qkey
	for k, q := range m.queues {
		if !q.due.After(now) && (q.owner == "" || q.leaseUntil.Before(now)) {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b qkey) int {
		return cmp.Or(m.queues[a].due.Compare(m.queues[b].due), cmp.Compare(a.customer, b.customer))
	})
	if len(due) > limit {
		due = due[:limit]
	}
	var out []store.WebhookQueue
	for _, k := range due {
		q := m.queues[k]
		q.owner, q.leaseUntil = owner, leaseUntil
		wq := store.WebhookQueue{Scope: k.scope, CustomerID: k.customer, LeaseUntil: leaseUntil}
		for _, ev := range m.pending(k) {
			if len(wq.Events) == perQueue {
				break
			}
			wq.Events = append(wq.Events, *ev)
		}
		out = append(out, wq)
	}
	return out, nil
}

func (m *memOutbox) WebhookAttempted(_ context.Context, s store.Scope, owner string, now, leaseUntil time.Time, ev store.WebhookEvent, a store.WebhookAttempt) error {
	m.mu.Lock()
	k := qkey{s, ev.CustomerID}
	q := m.queues[k]
	if q != nil && m.steal[ev.ID] {
		q.owner = "thief"
	}
	if q == nil || q.owner != owner || q.leaseUntil.Before(now) {
		m.mu.Unlock()
		return store.ErrConflict
	}
	pending := m.pending(k)
	if len(pending) == 0 || pending[0].ID != ev.ID {
		m.violations = append(m.violations, fmt.Sprintf("attempt of %s before the customer's oldest pending event", ev.ID))
	}
	for _, p := range pending {
		if p.ID == ev.ID {
			p.Status, p.Tries, p.Attempts = ev.Status, ev.Tries, ev.Attempts
			p.NextAttemptAt, p.UpdatedAt, p.DeliveredAt = ev.NextAttemptAt, ev.UpdatedAt, ev.DeliveredAt
		}
	}
	m.attempts = append(m.attempts, a)
	q.leaseUntil = leaseUntil
	hook := m.afterAttempted
	m.mu.Unlock()
	if hook != nil {
		hook(ev)
	}
	return nil
}

func (m *memOutbox) WebhookRelease(_ context.Context, s store.Scope, customerID, owner string, next time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releases = append(m.releases, memRelease{customerID, owner, next})
	k := qkey{s, customerID}
	q := m.queues[k]
	if q == nil || q.owner != owner {
		return nil
	}
	q.owner, q.leaseUntil = "", time.Time{}
	if len(m.pending(k)) == 0 {
		delete(m.queues, k)
		return nil
	}
	q.due = next
	return nil
}

func (m *memOutbox) WebhookTarget(_ context.Context, s store.Scope) (string, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.targets[s]
	return t.url, t.secret, nil
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	// Near the real time, so that receivers' timestamp checks pass while the
	// clock has not moved much.
	return &fakeClock{t: time.Now().Truncate(time.Millisecond)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

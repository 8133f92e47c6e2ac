package store

import (
	"context"
	"time"
)

// The states of a webhook event. An event is pending from the commit of the
// change that caused it until it is delivered (any 2xx) or has used up the
// retry schedule (failed). Redelivery makes it pending again.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// WebhookEvent is one event in the outbox. Events are inserted by
// WritesApply (Writes.Events), in the transaction of the change that caused
// them, so an event exists if and only if its change committed.
//
// Events of one customer are delivered one at a time, in the order they were
// committed: each customer with pending events has a queue (a row of its own,
// kept by the store) that a dispatcher leases, so that one instance at a time
// delivers a customer's events, and that a claim costs the same whatever the
// backlog.
type WebhookEvent struct {
	ID         string // whevt_…, time-ordered
	Seq        int64  // set by the store at insert: the commit order within the database
	CustomerID string
	Type       string
	// Payload is the body delivered, fixed when the change committed
	// (webhook-timestamp and the signature are made at each attempt).
	Payload []byte
	Status  string
	// Tries counts the attempts since the event was last queued (at commit
	// or by a redelivery): its position in the retry schedule.
	Tries int
	// Attempts counts every attempt, redeliveries included.
	Attempts      int
	NextAttemptAt time.Time // when a pending event is due
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeliveredAt   time.Time // zero until delivered
}

// WebhookAttempt is one delivery attempt: the answer's status code (0 when
// there was none) or the error that stopped it, and how long it took.
type WebhookAttempt struct {
	EventID    string
	At         time.Time
	StatusCode int
	Error      string
	Duration   time.Duration
}

// WebhookQueue is one customer's claimed queue: its pending events, oldest
// first, leased to one dispatcher until LeaseUntil.
type WebhookQueue struct {
	Scope      Scope
	CustomerID string
	Events     []WebhookEvent
	LeaseUntil time.Time
}

// WebhookHealth is the delivery health of one scope. Counts of pending and
// failed events are exact (both stay small in a healthy system); delivered
// events are counted over a window, so the cost does not grow with history.
type WebhookHealth struct {
	Pending         int64
	Failed          int64
	DeliveredSince  int64     // delivered at or after Since
	Since           time.Time // the window's start, as asked
	OldestPendingAt time.Time // zero when nothing is pending
	OldestPendingID string
	NextAttemptAt   time.Time // the earliest due time of a queue; zero when none
}

// WebhookQ is the outbox, part of Q. The writes (Claim, Attempted, Release,
// Requeue) run inside Transact only.
type WebhookQ interface {
	// WebhookClaim leases up to limit queues that are due (their next attempt
	// at or before now) and not leased (or whose lease ended before now), in
	// order of due time, to owner until leaseUntil, and returns each with up
	// to perQueue of its pending events, oldest (lowest Seq) first. On
	// PostgreSQL concurrent claims skip each other's queues.
	WebhookClaim(ctx context.Context, owner string, now, leaseUntil time.Time, limit, perQueue int) ([]WebhookQueue, error)
	// WebhookAttempted records an attempt of ev, a pending event of a queue
	// owner leases, and stores ev's new Status, Tries, Attempts,
	// NextAttemptAt, UpdatedAt and DeliveredAt. It extends the lease to
	// leaseUntil. It fails with ErrConflict, writing nothing, when owner no
	// longer holds the lease (it ended before now, or another owner took it).
	WebhookAttempted(ctx context.Context, s Scope, owner string, now, leaseUntil time.Time, ev WebhookEvent, a WebhookAttempt) error
	// WebhookRelease ends owner's lease of the customer's queue: the queue is
	// due again at next when the customer still has pending events, and is
	// removed when it has none. A lease owner no longer holds is left alone.
	WebhookRelease(ctx context.Context, s Scope, customerID, owner string, next time.Time) error
	// WebhookRequeue makes an event pending again (Tries 0, due at now) and
	// its customer's queue due at now: a redelivery. ErrNotFound when the
	// scope has no such event.
	WebhookRequeue(ctx context.Context, s Scope, id string, now time.Time) (WebhookEvent, error)

	WebhookGet(ctx context.Context, s Scope, id string) (WebhookEvent, error)
	// WebhookList lists newest first (After is an event id), of one status
	// and one type when they are set.
	WebhookList(ctx context.Context, s Scope, status, eventType string, p Page) ([]WebhookEvent, error)
	// WebhookAttempts returns the attempts of the events, oldest first, by
	// event id.
	WebhookAttempts(ctx context.Context, s Scope, eventIDs []string) (map[string][]WebhookAttempt, error)
	// WebhookHealth counts the scope's events (see WebhookHealth).
	WebhookHealth(ctx context.Context, s Scope, since time.Time) (WebhookHealth, error)

	// WebhookPurge deletes up to limit of the scope's delivered and failed
	// events made before before (their ids below ids.Floor(ids.Webhook,
	// before)), delivered ones first, each status oldest first, with their
	// attempts, and returns how many events it deleted. Pending events are
	// never deleted: they are still to be delivered. Inside Transact only.
	WebhookPurge(ctx context.Context, s Scope, before time.Time, limit int) (int64, error)
	// WebhookScopes lists the scopes that may have events: those with
	// settings, as events are made only for a scope with a webhook target.
	WebhookScopes(ctx context.Context) ([]Scope, error)
}

// Package ledger is creditd's service layer: the use cases (recording usage,
// granting credits, creating customers, metrics and metering rules; reading
// balances, entitlements and the ledger) as commands.
//
// A mutating request is one call, Execute, given the request's idempotency
// envelope and a command value. Below that call the service owns the whole
// write: the idempotency claim, the replay of a stored answer, the
// transaction, the locks, the use case and the stored response. Commands
// from concurrent requests are grouped by a committer (committer.go) into one
// transaction and one commit; each keeps its own result, and a rejected
// command writes nothing and rejects only itself. The money decisions are
// delegated to package credit, the rows to package store.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// IdempotencyTTL is how long a stored response is replayed.
const IdempotencyTTL = 24 * time.Hour

// Service runs the use cases against a store.
type Service struct {
	store      store.Store
	now        func() time.Time
	timeout    time.Duration
	committers []*committer
	onGroup    func(size int) // tests: sees each group's size before it runs
	observer   Observer       // WithObserver; nil: nothing measured

	encodeEvent  EventEncoder // webhook events (WithWebhooks); nil: none recorded
	notifyEvents func()
}

// DefaultTimeout is the deadline of every database call the service makes
// when WithTimeout does not set one.
const DefaultTimeout = 5 * time.Second

// Option configures a Service.
type Option func(*Service)

// WithTimeout sets the deadline of every database call: each read, each
// group's transaction. A database that does not answer in time is
// unavailable (store.Unavailable): a hung or partitioned server fails
// requests within seconds instead of holding them.
func WithTimeout(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// Observer is told how each group commit went, for metrics. A committer
// calls it on its own goroutine after each group's transaction, before the
// group's requests get their answers, so it must be quick and must not call
// the service.
type Observer interface {
	// GroupCommitted reports one group transaction: how many commands it
	// carried, how long it took (retries of lost insert races included), and
	// the error that rolled it back, nil when it committed. The reruns of a
	// failed group's commands, one at a time, are groups of one.
	GroupCommitted(size int, elapsed time.Duration, err error)
}

// WithObserver makes the committers report every group to o.
func WithObserver(o Observer) Option {
	return func(s *Service) { s.observer = o }
}

// Timeout is the deadline of every database call (WithTimeout), for the
// callers that reach the database beside the service (API key lookups).
func (s *Service) Timeout() time.Duration { return s.timeout }

// bound gives ctx the service's database deadline.
func (s *Service) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Ready reports whether the database can serve a write now (for /readyz,
// and before serving at all): a database that is down, hung, read-only or
// out of disk is store.ErrUnavailable.
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if w, ok := s.store.(interface{ Writable(context.Context) error }); ok {
		return w.Writable(ctx)
	}
	_, err := s.store.APIKeyCount(ctx)
	return err
}

// Sharded is a store that takes several write transactions at once
// (PostgreSQL): the service then runs that many committers, each for its
// own share of the customers.
type Sharded interface {
	WriteShards() int
}

// New returns a Service and starts its committers; Close stops them. now is
// the clock: it is read once per transaction and the value passed down, so
// that every row of a transaction carries the same time.
func New(st store.Store, now func() time.Time, opts ...Option) *Service {
	// A store with shards lets several writers in at once (instances, or
	// committers), whose groups wait on each other's locks: their groups
	// stay small. One writer alone (SQLite) takes bigger ones.
	shards, weight := 1, maxGroupAlone
	if sh, ok := st.(Sharded); ok {
		shards, weight = max(1, sh.WriteShards()), maxGroup
	}
	s := &Service{store: st, now: now, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	for range shards {
		c := newCommitter(s, weight)
		s.committers = append(s.committers, c)
		go c.run()
	}
	return s
}

// Close stops the committers once the commands queued before it are done.
// Execute must not be called after Close.
func (s *Service) Close() {
	for _, c := range s.committers {
		c.stop()
	}
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// notFound converts the store's ErrNotFound into a not-found error for what;
// other errors pass through.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return credit.Errorf(credit.ENotFound, format, args...)
	}
	return err
}

// CustomerRef names a customer of the request's scope by exactly one of its
// two ids.
type CustomerRef struct {
	ID         string // the customer's UUID
	ExternalID string // the tenant's own id for it
	// Lenient makes ID fall back to an external id lookup when no customer
	// has that UUID, for clients that put an external id in a
	// /v1/customers/{customer_id} path.
	Lenient bool
}

func (r CustomerRef) String() string {
	if r.ExternalID != "" {
		return fmt.Sprintf("external id %q", r.ExternalID)
	}
	return fmt.Sprintf("id %q", r.ID)
}

// findCustomer resolves ref outside a write. It returns store.ErrNotFound
// (wrapped) when no customer matches.
func findCustomer(ctx context.Context, q store.Q, s store.Scope, ref CustomerRef) (store.Customer, error) {
	if ref.ExternalID != "" {
		return q.CustomerByExternalID(ctx, s, ref.ExternalID)
	}
	c, err := q.CustomerGet(ctx, s, ref.ID)
	if errors.Is(err, store.ErrNotFound) && ref.Lenient {
		return q.CustomerByExternalID(ctx, s, ref.ID)
	}
	return c, err
}

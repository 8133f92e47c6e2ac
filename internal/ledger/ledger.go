// Package ledger holds creditd's use cases: granting credits, recording
// usage, creating customers, metrics and metering rules, and reading
// balances, entitlements and the ledger. Each write runs in one database
// transaction, together with its ledger entries and its idempotency record;
// the money decisions are delegated to package credit, the rows to package
// store.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// IdempotencyTTL is how long a stored response is replayed.
const IdempotencyTTL = 24 * time.Hour

// Service runs the use cases against a store.
type Service struct {
	store store.Store
	now   func() time.Time
	log   *slog.Logger
}

// New returns a Service. now is the clock: it is read once per transaction
// and the value passed down, so that every row of a transaction carries the
// same time.
func New(st store.Store, now func() time.Time, log *slog.Logger) *Service {
	return &Service{store: st, now: now, log: log}
}

// Now reads the service's clock.
func (s *Service) Now() time.Time { return s.now().UTC() }

// Tx is one write transaction of the use cases.
type Tx struct {
	q     store.Q
	scope store.Scope
	now   time.Time
}

// Now is the transaction's time.
func (tx *Tx) Now() time.Time { return tx.now }

// conflictAttempts bounds the runs of a transaction that keeps losing
// insert races.
const conflictAttempts = 3

// Write runs fn in one transaction for scope. The transaction commits when fn
// returns nil and rolls back otherwise, so a use case that fails leaves no
// trace. Use cases check for existing rows before inserting, so a
// store.ErrConflict here means a concurrent transaction (another instance)
// inserted the same row first — two first grants to one new customer, say:
// the transaction runs again and then finds that row.
func (s *Service) Write(ctx context.Context, scope store.Scope, fn func(tx *Tx) error) error {
	var err error
	for range conflictAttempts {
		err = s.store.Transact(ctx, func(q store.Q) error {
			return fn(&Tx{q: q, scope: scope, now: s.Now()})
		})
		if !errors.Is(err, store.ErrConflict) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// notFound converts the store's ErrNotFound into a not-found error for what;
// other errors pass through.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return credit.Errorf(credit.ENotFound, format, args...)
	}
	return err
}

// CustomerRef names a customer by exactly one of its two ids.
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

// findCustomer resolves ref. It returns store.ErrNotFound (wrapped) when no
// customer matches.
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

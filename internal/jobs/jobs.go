// Package jobs runs creditd's background work: recording expiries that fell
// due (so that the ledger shows them without waiting for the customer's next
// write), deleting idempotency records past their 24 hours, and deleting
// webhook events past their retention.
package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/creditd/creditd/internal/ledger"
)

// batch is how many customers one sweep query returns.
const batch = 100

// Sweeper records due expiries and purges lapsed idempotency records and
// old webhook events.
type Sweeper struct {
	Service  *ledger.Service
	Interval time.Duration
	Log      *slog.Logger
	// WebhookRetention is how long delivered and failed webhook events are
	// kept; 0 keeps them forever.
	WebhookRetention time.Duration
	// Observe, when set, hears the end of each round, with its first error.
	Observe func(at time.Time, err error)
}

// Run sweeps every Interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep does one round: every customer with a due expiry, then the purges.
func (s *Sweeper) Sweep(ctx context.Context) {
	err := s.sweep(ctx)
	if s.Observe != nil && ctx.Err() == nil {
		s.Observe(time.Now(), err)
	}
}

func (s *Sweeper) sweep(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := s.Service.SweepExpired(ctx, batch)
		if err != nil {
			if ctx.Err() == nil {
				s.Log.ErrorContext(ctx, "expiry sweep", "err", err)
			}
			return err
		}
		if n > 0 {
			s.Log.InfoContext(ctx, "recorded expiries", "customers", n)
		}
		if n < batch {
			break
		}
	}
	// The purges are independent: one failing does not keep the other from
	// its round. The round's error is the first.
	var first error
	n, err := s.Service.PurgeIdempotency(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "idempotency purge", "err", err)
		}
		first = err
	case n > 0:
		s.Log.InfoContext(ctx, "purged idempotency records", "count", n)
	}
	if s.WebhookRetention > 0 && ctx.Err() == nil {
		n, err := s.Service.PurgeWebhooks(ctx, s.WebhookRetention)
		if n > 0 {
			s.Log.InfoContext(ctx, "purged webhook events", "count", n)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.Log.ErrorContext(ctx, "webhook purge", "err", err)
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

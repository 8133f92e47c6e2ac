// Package jobs runs creditd's background work: recording expiries that fell
// due (so that the ledger shows them without waiting for the customer's next
// write) and deleting idempotency records past their 24 hours.
package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/creditd/creditd/internal/ledger"
)

// batch is how many customers one sweep query returns.
const batch = 100

// Sweeper records due expiries and purges lapsed idempotency records.
type Sweeper struct {
	Service  *ledger.Service
	Interval time.Duration
	Log      *slog.Logger
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

// Sweep does one round: every customer with a due expiry, then the purge.
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
	n, err := s.Service.PurgeIdempotency(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "idempotency purge", "err", err)
		}
		return err
	case n > 0:
		s.Log.InfoContext(ctx, "purged idempotency records", "count", n)
	}
	return nil
}

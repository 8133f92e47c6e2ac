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
	for ctx.Err() == nil {
		n, err := s.Service.SweepExpired(ctx, batch)
		if err != nil {
			if ctx.Err() == nil {
				s.Log.ErrorContext(ctx, "expiry sweep", "err", err)
			}
			return
		}
		if n > 0 {
			s.Log.InfoContext(ctx, "recorded expiries", "customers", n)
		}
		if n < batch {
			break
		}
	}
	if n, err := s.Service.PurgeIdempotency(ctx); err != nil {
		if ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "idempotency purge", "err", err)
		}
	} else if n > 0 {
		s.Log.InfoContext(ctx, "purged idempotency records", "count", n)
	}
}

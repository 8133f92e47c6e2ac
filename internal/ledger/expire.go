package ledger

import (
	"context"
	"fmt"
)

// Expire records the due expiries of one customer, of blocks and of holds:
// the sweeper's unit of work. Its answer's Status is 1 when it recorded any, else 0.
type Expire struct {
	CustomerID string
}

func (c Expire) plan(p *plan) { p.customer(CustomerRef{ID: c.CustomerID}) }
func (c Expire) size() int    { return 1 }

func (c Expire) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	acc := g.accounts[custKey{req.Scope, c.CustomerID}]
	if acc == nil || len(acc.ledger) == 0 {
		return Response{}, false, nil // gone, or recorded by a write before us
	}
	acc.accept(g)
	return Response{Status: 1}, false, nil
}

// SweepExpired records the expiries due at the clock's now for up to limit
// customers and returns how many customers it touched.
func (s *Service) SweepExpired(ctx context.Context, limit int) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.clock()
	refs, err := s.store.BlockExpiredCustomers(ctx, now, limit)
	if err != nil {
		return 0, err
	}
	holds, err := s.store.ReservationExpiredCustomers(ctx, now, limit)
	if err != nil {
		return 0, err
	}
	refs = append(refs, holds...)
	var total int
	for _, ref := range refs {
		resp, err := s.submit(ctx, Request{Scope: ref.Scope}, Expire{CustomerID: ref.CustomerID})
		if err != nil {
			return total, fmt.Errorf("sweep customer %s: %w", ref.CustomerID, err)
		}
		total += resp.Status
	}
	return total, nil
}

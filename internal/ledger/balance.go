package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// Balance is a customer's account as the API shows it at one instant.
type Balance struct {
	Customer       store.Customer
	Balance        int64 // spendable: live blocks only
	Reserved       int64
	Effective      int64
	LifetimeEarned int64
	Version        int64
	Blocks         []store.Block // live blocks in burn order
}

// Balance reads a customer's balance without writing: blocks that expired
// but have no expire entry yet are left out here, not recorded. The account
// row and the blocks come from one snapshot.
func (s *Service) Balance(ctx context.Context, scope store.Scope, ref CustomerRef) (Balance, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var bal Balance
	err := s.store.Read(ctx, func(q store.Q) error {
		c, err := findCustomer(ctx, q, scope, ref)
		if err != nil {
			return notFound(err, "no customer with %s", ref)
		}
		bal, err = balanceOf(ctx, q, scope, c, s.clock())
		return err
	})
	return bal, err
}

// balanceOf is a customer's balance from its blocks and holds as stored.
func balanceOf(ctx context.Context, q store.Q, scope store.Scope, c store.Customer, now time.Time) (Balance, error) {
	blocks, holds, err := accountRows(ctx, q, scope, c)
	if err != nil {
		return Balance{}, err
	}
	return balanceFrom(c, blocks, holds, now)
}

// accountRows reads a customer's live blocks and the holds stored as
// active.
func accountRows(ctx context.Context, q store.Q, scope store.Scope, c store.Customer) ([]store.Block, []store.Reservation, error) {
	blocks, err := q.BlockList(ctx, scope, c.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("blocks of customer %s: %w", c.ID, err)
	}
	var holds []store.Reservation
	if c.Account.Reserved != 0 { // no hold: no read
		if holds, err = q.ReservationsActive(ctx, scope, c.ID); err != nil {
			return nil, nil, fmt.Errorf("holds of customer %s: %w", c.ID, err)
		}
	}
	return blocks, holds, nil
}

// balanceFrom is a customer's balance from its live blocks (expired or
// not, in creation order) and the holds stored as active, by the domain's
// own burn order and live balance. A hold whose time has passed stops
// counting at once, though the account row counts it until the sweeper
// (or the customer's next write) records its expiry: reads never write.
func balanceFrom(c store.Customer, rows []store.Block, holds []store.Reservation, now time.Time) (Balance, error) {
	blocks := make([]credit.Block, len(rows))
	byID := make(map[string]store.Block, len(rows))
	for i, b := range rows {
		blocks[i], byID[b.ID] = b.Block, b
	}
	sum, err := credit.LiveBalance(blocks, now)
	if err != nil {
		return Balance{}, err
	}
	order := credit.BurnOrder(blocks, now)
	live := make([]store.Block, len(order))
	for i, b := range order {
		live[i] = byID[b.ID]
	}
	var reserved int64
	if c.Account.Reserved != 0 {
		for _, r := range holds {
			if viewStatus(r, now) == store.ReservationActive {
				if reserved, err = credit.Add(reserved, r.Amount); err != nil {
					return Balance{}, err
				}
			}
		}
	}
	return Balance{
		Customer: c, Balance: sum, Reserved: reserved, Effective: credit.Effective(sum, reserved),
		LifetimeEarned: c.Account.LifetimeEarned, Version: c.Account.Version, Blocks: live,
	}, nil
}

// Entitlement answers whether a customer can afford units of a metric now.
type Entitlement struct {
	Balance
	MetricKey     string
	Units         int64
	EstimatedCost int64
	BalanceAfter  int64 // effective balance minus the cost; negative when not allowed
	Allowed       bool
	// Breakdown is what a usage of Units would take now, block by block, in
	// burn order: the same debit, run on a copy. Empty when not allowed.
	Breakdown []BlockDebit
}

// Check prices units of metricKey for a customer and compares the cost with
// the effective balance, as RecordUsage would, without writing anything.
func (s *Service) Check(ctx context.Context, scope store.Scope, ref CustomerRef, metricKey string, units int64) (Entitlement, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := validUnits(units); err != nil {
		return Entitlement{}, err
	}
	// A lenient id may be an external id: CheckRead does not look further.
	snap, err := s.store.CheckRead(ctx, scope, ref.ID, ref.ExternalID, metricKey)
	switch {
	case err == nil && snap.Ruled:
		return entitlement(snap.Account.Customer, snap.Rule, snap.Account.Blocks, snap.Account.Holds, metricKey, units, s.clock())
	case err == nil: // no active rule: checkByRead says why
	case errors.Is(err, store.ErrNotFound) && ref.Lenient:
	case errors.Is(err, store.ErrNotFound):
		return Entitlement{}, notFound(err, "no customer with %s", ref)
	default:
		return Entitlement{}, err
	}
	return s.checkByRead(ctx, scope, ref, metricKey, units)
}

// checkByRead answers a check by the general lookups: a lenient id, a
// metric without an active rule (the error names which it is).
func (s *Service) checkByRead(ctx context.Context, scope store.Scope, ref CustomerRef, metricKey string, units int64) (Entitlement, error) {
	var e Entitlement
	err := s.store.Read(ctx, func(q store.Q) error {
		c, err := findCustomer(ctx, q, scope, ref)
		if err != nil {
			return notFound(err, "no customer with %s", ref)
		}
		rule, err := activeRule(ctx, q, scope, metricKey)
		if err != nil {
			return err
		}
		blocks, holds, err := accountRows(ctx, q, scope, c)
		if err != nil {
			return err
		}
		e, err = entitlement(c, rule, blocks, holds, metricKey, units, s.clock())
		return err
	})
	return e, err
}

// entitlement answers a check from one snapshot of the customer's blocks
// and holds and the metric's rule.
func entitlement(c store.Customer, rule store.Rule, blocks []store.Block, holds []store.Reservation, metricKey string, units int64, now time.Time) (Entitlement, error) {
	cost, err := rule.Cost(units)
	if err != nil {
		return Entitlement{}, err
	}
	bal, err := balanceFrom(c, blocks, holds, now)
	if err != nil {
		return Entitlement{}, err
	}
	after, err := credit.Sub(bal.Effective, cost)
	if err != nil {
		return Entitlement{}, err
	}
	e := Entitlement{Balance: bal, MetricKey: metricKey, Units: units, EstimatedCost: cost, BalanceAfter: after, Allowed: cost <= bal.Effective}
	// The usage's own debit, on a copy of the state it would run on.
	state := credit.State{Account: c.Account}
	state.Account.Reserved = bal.Reserved
	sources := make(map[string]string, len(bal.Blocks))
	for _, b := range bal.Blocks {
		state.Blocks = append(state.Blocks, b.Block)
		sources[b.ID] = b.Source
	}
	entries, err := state.Debit(cost, credit.EntryUsage, now)
	var ie *credit.InsufficientError
	switch {
	case errors.As(err, &ie):
		e.Allowed = false
	case err != nil:
		return Entitlement{}, err
	default:
		e.Breakdown = breakdown(entries, func(id string) (credit.Block, string) {
			b, _ := state.Lookup(id)
			return b, sources[id]
		})
	}
	return e, nil
}

// Ledger lists a customer's ledger entries newest first.
func (s *Service) Ledger(ctx context.Context, scope store.Scope, ref CustomerRef, entryType string, p store.Page) (store.Customer, []store.LedgerEntry, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var c store.Customer
	var entries []store.LedgerEntry
	err := s.store.Read(ctx, func(q store.Q) error {
		var err error
		if c, err = findCustomer(ctx, q, scope, ref); err != nil {
			return notFound(err, "no customer with %s", ref)
		}
		entries, err = q.LedgerList(ctx, scope, c.ID, entryType, p)
		return err
	})
	return c, entries, err
}

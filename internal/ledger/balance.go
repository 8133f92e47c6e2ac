package ledger

import (
	"context"
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

// balanceOf is a customer's balance from its blocks, by the domain's own
// burn order and live balance.
func balanceOf(ctx context.Context, q store.Q, scope store.Scope, c store.Customer, now time.Time) (Balance, error) {
	rows, err := q.BlockList(ctx, scope, c.ID)
	if err != nil {
		return Balance{}, fmt.Errorf("balance of customer %s: %w", c.ID, err)
	}
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
	return Balance{
		Customer: c, Balance: sum, Reserved: c.Account.Reserved, Effective: credit.Effective(sum, c.Account.Reserved),
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
}

// Check prices units of metricKey for a customer and compares the cost with
// the effective balance, as RecordUsage would, without writing anything.
func (s *Service) Check(ctx context.Context, scope store.Scope, ref CustomerRef, metricKey string, units int64) (Entitlement, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := validUnits(units); err != nil {
		return Entitlement{}, err
	}
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
		cost, err := rule.Cost(units)
		if err != nil {
			return err
		}
		bal, err := balanceOf(ctx, q, scope, c, s.clock())
		if err != nil {
			return err
		}
		after, err := credit.Sub(bal.Effective, cost)
		if err != nil {
			return err
		}
		e = Entitlement{Balance: bal, MetricKey: metricKey, Units: units, EstimatedCost: cost, BalanceAfter: after, Allowed: cost <= bal.Effective}
		return nil
	})
	return e, err
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

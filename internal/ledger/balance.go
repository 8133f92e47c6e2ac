package ledger

import (
	"context"
	"fmt"
	"slices"

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
// but have no expire entry yet are left out here, not recorded.
func (s *Service) Balance(ctx context.Context, scope store.Scope, ref CustomerRef) (Balance, error) {
	c, err := s.Customer(ctx, scope, ref)
	if err != nil {
		return Balance{}, err
	}
	return s.balanceOf(ctx, scope, c)
}

func (s *Service) balanceOf(ctx context.Context, scope store.Scope, c store.Customer) (Balance, error) {
	// One customer's rows are read outside a transaction; the account row and
	// the blocks could come from two commits, so they are read from blocks
	// alone where it matters (the balance) and from the account otherwise.
	rows, err := s.store.BlockList(ctx, scope, c.ID)
	if err != nil {
		return Balance{}, fmt.Errorf("balance of customer %s: %w", c.ID, err)
	}
	now := s.Now()
	live := make([]store.Block, 0, len(rows))
	for _, b := range rows {
		if b.Live(now) {
			live = append(live, b)
		}
	}
	slices.SortStableFunc(live, func(a, b store.Block) int { return credit.CompareBurn(a.Block, b.Block) })
	var sum int64
	for _, b := range live {
		if sum, err = credit.Add(sum, b.Remaining); err != nil {
			return Balance{}, err
		}
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
	if units < 1 {
		return Entitlement{}, credit.Invalid("units", "must be an integer ≥ 1")
	}
	c, err := s.Customer(ctx, scope, ref)
	if err != nil {
		return Entitlement{}, err
	}
	rule, err := activeRule(ctx, s.store, scope, metricKey)
	if err != nil {
		return Entitlement{}, err
	}
	cost, err := rule.Cost(units)
	if err != nil {
		return Entitlement{}, err
	}
	bal, err := s.balanceOf(ctx, scope, c)
	if err != nil {
		return Entitlement{}, err
	}
	after, err := credit.Sub(bal.Effective, cost)
	if err != nil {
		return Entitlement{}, err
	}
	return Entitlement{Balance: bal, MetricKey: metricKey, Units: units, EstimatedCost: cost, BalanceAfter: after, Allowed: cost <= bal.Effective}, nil
}

// Ledger lists a customer's ledger entries newest first.
func (s *Service) Ledger(ctx context.Context, scope store.Scope, ref CustomerRef, entryType string, p store.Page) (store.Customer, []store.LedgerEntry, error) {
	c, err := s.Customer(ctx, scope, ref)
	if err != nil {
		return store.Customer{}, nil, err
	}
	entries, err := s.store.LedgerList(ctx, scope, c.ID, entryType, p)
	if err != nil {
		return store.Customer{}, nil, err
	}
	return c, entries, nil
}

package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// CheckInvariants verifies the money invariants of every customer of scope
// (design.md, "Invariants") and returns every violation it finds, joined:
//   - the account balance is the sum of what its blocks have left (expired
//     blocks whose expire entry is not written yet included), reserved ≥ 0;
//   - no block has less than 0 or more than it was granted;
//   - the ledger's deltas sum to the balance, and each entry's
//     balance_after is the running sum at that entry;
//   - lifetime_earned is the sum of the grants.
//
// It reads a whole scope and is meant for tests and audits, not for a
// request's path. q should be one snapshot (Store.Read) while writers run.
func CheckInvariants(ctx context.Context, q store.Q, scope store.Scope) error {
	var errs []error
	p := store.Page{Limit: 500}
	for {
		customers, err := q.CustomerList(ctx, scope, p)
		if err != nil {
			return err
		}
		for _, c := range customers {
			if err := checkCustomer(ctx, q, scope, c); err != nil {
				errs = append(errs, fmt.Errorf("customer %s (%s): %w", c.ID, c.ExternalID, err))
			}
		}
		if len(customers) < p.Limit {
			return errors.Join(errs...)
		}
		p.After = customers[len(customers)-1].ID
	}
}

func checkCustomer(ctx context.Context, q store.Q, scope store.Scope, c store.Customer) error {
	var errs []error
	a := c.Account
	blocks, err := q.BlockList(ctx, scope, c.ID)
	if err != nil {
		return err
	}
	var sum int64
	for _, b := range blocks {
		if b.Remaining < 0 || b.Remaining > b.Original {
			errs = append(errs, fmt.Errorf("block %s remaining %d, original %d", b.ID, b.Remaining, b.Original))
		}
		if sum, err = credit.Add(sum, b.Remaining); err != nil {
			return err
		}
	}
	if sum != a.Balance {
		errs = append(errs, fmt.Errorf("balance %d, blocks hold %d", a.Balance, sum))
	}
	if a.Reserved < 0 {
		errs = append(errs, fmt.Errorf("reserved %d < 0", a.Reserved))
	}
	// What is held is what the active holds set aside, no more: no credit
	// is held twice, and none is held after its hold ended.
	holds, err := q.ReservationsActive(ctx, scope, c.ID)
	if err != nil {
		return err
	}
	var held int64
	for _, r := range holds {
		if held, err = credit.Add(held, r.Amount); err != nil {
			return err
		}
	}
	if held != a.Reserved {
		errs = append(errs, fmt.Errorf("reserved %d, active holds set aside %d", a.Reserved, held))
	}
	// The ledger, newest first: walk it back from the balance.
	running, earned := a.Balance, int64(0)
	p := store.Page{Limit: 500}
	for {
		entries, err := q.LedgerList(ctx, scope, c.ID, "", p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.BalanceAfter != running {
				errs = append(errs, fmt.Errorf("entry %s (%s %d): balance_after %d, running sum %d", e.ID, e.Type, e.Delta, e.BalanceAfter, running))
				running = e.BalanceAfter
			}
			running -= e.Delta
			if e.Type == credit.EntryGrant {
				earned += e.Delta
			}
		}
		if len(entries) < p.Limit {
			break
		}
		p.After = strconv.FormatInt(entries[len(entries)-1].Seq, 10)
	}
	if running != 0 {
		errs = append(errs, fmt.Errorf("ledger deltas sum to %d less than the balance %d", running, a.Balance))
	}
	if earned != a.LifetimeEarned {
		errs = append(errs, fmt.Errorf("lifetime_earned %d, grants sum to %d", a.LifetimeEarned, earned))
	}
	return errors.Join(errs...)
}

package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// account is one customer's state loaded for a write: the lock is held, the
// due expiries are already recorded.
type account struct {
	customer store.Customer
	state    credit.State
	isNew    bool // not in the database yet: created by persist
}

// lockAccount locks the customer's account, loads its blocks, and records
// every expiry that is due (the first write that touches a customer writes
// its pending expire entries, before its own change).
func (tx *Tx) lockAccount(ctx context.Context, c store.Customer) (*account, error) {
	a, err := tx.q.AccountLock(ctx, tx.scope, c.ID)
	if err != nil {
		return nil, fmt.Errorf("lock account of customer %s: %w", c.ID, err)
	}
	c.Account = a
	rows, err := tx.q.BlockList(ctx, tx.scope, c.ID)
	if err != nil {
		return nil, fmt.Errorf("load blocks of customer %s: %w", c.ID, err)
	}
	acc := &account{customer: c, state: credit.State{Account: a}}
	for _, b := range rows {
		acc.state.Blocks = append(acc.state.Blocks, b.Block)
	}
	if expired := acc.state.ExpireDue(tx.now); len(expired) > 0 {
		if err := tx.persist(ctx, acc, expired, entryRef{Type: "block"}); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// newAccount is the empty account of a customer that a grant or usage event
// is about to create; persist inserts it.
func (tx *Tx) newAccount(externalID string) *account {
	return &account{
		customer: store.Customer{ID: ids.UUID(), ExternalID: externalID, CreatedAt: tx.now},
		isNew:    true,
	}
}

// entryRef is what a group of ledger entries refers to. An empty ID means
// "the block the entry touches" (expiries).
type entryRef struct {
	Type           string
	ID             string
	IdempotencyKey string
	Metadata       json.RawMessage
}

// persist writes what one domain operation changed: the blocks its entries
// touched, the entries, and the account totals.
func (tx *Tx) persist(ctx context.Context, acc *account, entries []credit.Entry, ref entryRef) error {
	if acc.isNew {
		acc.customer.Account = acc.state.Account
		if err := tx.q.CustomerCreate(ctx, tx.scope, acc.customer); err != nil {
			return fmt.Errorf("create customer %q: %w", acc.customer.ExternalID, err)
		}
		acc.isNew = false
	}
	rows := make([]store.LedgerEntry, 0, len(entries))
	for _, e := range entries {
		if e.Type != credit.EntryGrant {
			b, ok := acc.find(e.BlockID)
			if !ok {
				return fmt.Errorf("persist %s entry: block %s is not the customer's", e.Type, e.BlockID)
			}
			if err := tx.q.BlockUpdateRemaining(ctx, tx.scope, e.BlockID, b.Remaining); err != nil {
				return fmt.Errorf("persist %s entry: %w", e.Type, err)
			}
		}
		refID := ref.ID
		if refID == "" {
			refID = e.BlockID
		}
		rows = append(rows, store.LedgerEntry{
			Entry: e, ID: ids.New(ids.Transaction), CustomerID: acc.customer.ID,
			ReferenceType: ref.Type, ReferenceID: refID, IdempotencyKey: ref.IdempotencyKey,
			Metadata: ref.Metadata, CreatedAt: tx.now,
		})
	}
	if err := tx.q.LedgerAppend(ctx, tx.scope, rows); err != nil {
		return err
	}
	acc.customer.Account = acc.state.Account
	if err := tx.q.AccountUpdate(ctx, tx.scope, acc.customer.ID, acc.state.Account); err != nil {
		return fmt.Errorf("persist account of customer %s: %w", acc.customer.ID, err)
	}
	return nil
}

func (acc *account) find(id string) (credit.Block, bool) {
	for _, b := range acc.state.Blocks {
		if b.ID == id {
			return b, true
		}
	}
	return credit.Block{}, false
}

// ExpireDue records the due expiries of one customer in its own transaction:
// the sweeper's unit of work.
func (s *Service) ExpireDue(ctx context.Context, ref store.CustomerRef) (int, error) {
	var n int
	err := s.Write(ctx, ref.Scope, func(tx *Tx) error {
		c, err := tx.q.CustomerGet(ctx, tx.scope, ref.CustomerID)
		if err != nil {
			return fmt.Errorf("expire: %w", err)
		}
		before := c.Account.Version
		acc, err := tx.lockAccount(ctx, c)
		if err != nil {
			return err
		}
		if acc.state.Account.Version != before {
			n = 1
		}
		return nil
	})
	return n, err
}

// SweepExpired records the expiries due at the clock's now for up to limit
// customers and returns how many customers it touched.
func (s *Service) SweepExpired(ctx context.Context, limit int) (int, error) {
	refs, err := s.store.BlockExpiredCustomers(ctx, s.Now(), limit)
	if err != nil {
		return 0, err
	}
	var total int
	for _, ref := range refs {
		n, err := s.ExpireDue(ctx, ref)
		if err != nil {
			return total, fmt.Errorf("sweep customer %s: %w", ref.CustomerID, err)
		}
		total += n
	}
	return total, nil
}

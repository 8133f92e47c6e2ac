package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// written is one of everything a write transaction stores.
type written struct {
	customer store.Customer
	metric   store.Metric
	rule     store.Rule
	block    store.Block
	entry    store.LedgerEntry
	event    store.UsageEvent
	record   store.IdempotencyRecord
}

func newWritten() written {
	c := store.Customer{ID: ids.UUID(), ExternalID: "user_" + ids.UUID(), CreatedAt: t0}
	return written{
		customer: c,
		metric:   store.Metric{ID: ids.New(ids.Metric), Key: "api_calls", CreatedAt: t0},
		rule: store.Rule{ID: ids.New(ids.Rule), MetricKey: "api_calls", Active: true, CreatedAt: t0,
			Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: 1}},
		block:  newBlock(c.ID, 1, 100, 100),
		entry:  newEntry(c.ID, credit.EntryGrant, 100, 100),
		event:  store.UsageEvent{ID: ids.New(ids.Event), CustomerID: c.ID, MetricKey: "api_calls", Units: 1, Cost: 1, CreatedAt: t0},
		record: newRecord(t0),
	}
}

// write stores w with q as the service does, and changes the account of the
// existing customer acct: it takes the record's key lock and the account's
// lock, creates the metric and its rule, and writes the rest through
// WritesApply.
func (w written) write(t *testing.T, q store.Q, sc store.Scope, acct string) error {
	ctx := t.Context()
	if err := q.IdempotencyLockAll(ctx, []store.IdemKey{{Scope: sc, Key: w.record.Key}}); err != nil {
		return err
	}
	rows, err := q.AccountsLoad(ctx, []store.CustomerKey{{Scope: sc, CustomerID: acct}})
	if err != nil {
		return err
	}
	if len(rows) != 1 {
		return fmt.Errorf("AccountsLoad(existing customer) = %d rows, want 1", len(rows))
	}
	return inOrder(
		func() error { return q.MetricCreate(ctx, sc, w.metric) },
		func() error { return q.RuleCreate(ctx, sc, w.rule) },
		func() error {
			return q.WritesApply(ctx, &store.Writes{
				Scope:       sc,
				Customers:   []store.Customer{w.customer},
				Accounts:    []store.AccountUpdate{{CustomerID: acct, Account: credit.Account{Balance: 5, LifetimeEarned: 5, Version: 1}}},
				Blocks:      []store.Block{w.block},
				Ledger:      []store.LedgerEntry{w.entry},
				Usage:       []store.UsageEvent{w.event},
				Idempotency: []store.IdempotencyRecord{w.record},
				Lapsed:      t0.Add(-ttl),
			})
		},
	)
}

// wantNone fails the test if anything of w, or the account change, is
// visible through q.
func (w written) wantNone(t *testing.T, q store.Q, sc store.Scope, acct string) {
	t.Helper()
	ctx := t.Context()
	_, err := q.CustomerGet(ctx, sc, w.customer.ID)
	wantErr(t, "CustomerGet after rollback", err, store.ErrNotFound)
	_, err = q.CustomerByExternalID(ctx, sc, w.customer.ExternalID)
	wantErr(t, "CustomerByExternalID after rollback", err, store.ErrNotFound)
	_, err = q.MetricGet(ctx, sc, w.metric.Key)
	wantErr(t, "MetricGet after rollback", err, store.ErrNotFound)
	_, err = q.RuleActive(ctx, sc, w.metric.Key)
	wantErr(t, "RuleActive after rollback", err, store.ErrNotFound)
	rs, err := q.RuleList(ctx, sc, store.Page{Limit: 100})
	wantNoErr(t, "RuleList", err)
	wantIDs(t, "RuleList after rollback", rs, ruleID)
	bs, err := q.BlockList(ctx, sc, w.customer.ID)
	wantNoErr(t, "BlockList", err)
	wantIDs(t, "BlockList after rollback", bs, blockID)
	es, err := q.LedgerList(ctx, sc, w.customer.ID, "", store.Page{Limit: 100})
	wantNoErr(t, "LedgerList", err)
	wantIDs(t, "LedgerList after rollback", es, entryID)
	_, err = q.IdempotencyGet(ctx, sc, w.record.Key, time.Time{})
	wantErr(t, "IdempotencyGet after rollback", err, store.ErrNotFound)
	c, err := q.CustomerGet(ctx, sc, acct)
	wantNoErr(t, "CustomerGet", err)
	wantSame(t, "CustomerGet(existing customer) account after rollback", c.Account, credit.Account{})
}

// wantAll fails the test unless all of w, and the account change, is
// visible through q.
func (w written) wantAll(t *testing.T, q store.Q, sc store.Scope, acct string) {
	t.Helper()
	ctx := t.Context()
	c, err := q.CustomerByExternalID(ctx, sc, w.customer.ExternalID)
	wantNoErr(t, "CustomerByExternalID", err)
	wantSame(t, "CustomerByExternalID", c, w.customer)
	m, err := q.MetricGet(ctx, sc, w.metric.Key)
	wantNoErr(t, "MetricGet", err)
	wantSame(t, "MetricGet", m, w.metric)
	r, err := q.RuleActive(ctx, sc, w.metric.Key)
	wantNoErr(t, "RuleActive", err)
	wantSame(t, "RuleActive", r, w.rule)
	bs, err := q.BlockList(ctx, sc, w.customer.ID)
	wantNoErr(t, "BlockList", err)
	wantIDs(t, "BlockList", bs, blockID, w.block.ID)
	es, err := q.LedgerList(ctx, sc, w.customer.ID, "", store.Page{Limit: 100})
	wantNoErr(t, "LedgerList", err)
	wantIDs(t, "LedgerList", es, entryID, w.entry.ID)
	rec, err := q.IdempotencyGet(ctx, sc, w.record.Key, time.Time{})
	wantNoErr(t, "IdempotencyGet", err)
	wantSame(t, "IdempotencyGet", rec, w.record)
	c, err = q.CustomerGet(ctx, sc, acct)
	wantNoErr(t, "CustomerGet", err)
	wantSame(t, "CustomerGet(existing customer) account", c.Account, credit.Account{Balance: 5, LifetimeEarned: 5, Version: 1})
}

func testTransact(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Commit", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		acct := newCustomer(t, s, sc).ID
		w := newWritten()
		transact(t, s, func(q store.Q) error {
			if err := w.write(t, q, sc, acct); err != nil {
				return err
			}
			w.wantAll(t, q, sc, acct) // a transaction reads its own writes
			return nil
		})
		w.wantAll(t, s, sc, acct)
		transact(t, s, func(q store.Q) error {
			w.wantAll(t, q, sc, acct)
			return nil
		})
	})

	t.Run("Rollback", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		acct := newCustomer(t, s, sc).ID
		w := newWritten()
		errBoom := errors.New("boom")
		err := s.Transact(ctx, func(q store.Q) error {
			if err := w.write(t, q, sc, acct); err != nil {
				t.Errorf("write: %v", err)
			}
			return fmt.Errorf("after writing everything: %w", errBoom)
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("Transact() error = %v, want the function's error", err)
		}
		w.wantNone(t, s, sc, acct)

		// The store is usable afterwards and the same writes now commit.
		transact(t, s, func(q store.Q) error { return w.write(t, q, sc, acct) })
		w.wantAll(t, s, sc, acct)
	})

	t.Run("RollbackOnStoreError", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		acct := newCustomer(t, s, sc).ID
		taken := newCustomer(t, s, sc)
		w := newWritten()
		err := s.Transact(ctx, func(q store.Q) error {
			if err := w.write(t, q, sc, acct); err != nil {
				t.Errorf("write: %v", err)
			}
			return q.WritesApply(ctx, &store.Writes{Scope: sc, Customers: []store.Customer{taken}})
		})
		wantErr(t, "Transact(WritesApply(customer with a taken id))", err, store.ErrConflict)
		w.wantNone(t, s, sc, acct)
	})

	t.Run("Panic", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		acct := newCustomer(t, s, sc).ID
		w := newWritten()
		func() {
			defer func() {
				if p := recover(); p != "boom" {
					t.Errorf("Transact() panicked with %v, want the function's panic", p)
				}
			}()
			s.Transact(ctx, func(q store.Q) error {
				if err := w.write(t, q, sc, acct); err != nil {
					t.Errorf("write: %v", err)
				}
				panic("boom")
			})
		}()
		w.wantNone(t, s, sc, acct)
		transact(t, s, func(q store.Q) error { return w.write(t, q, sc, acct) })
		w.wantAll(t, s, sc, acct)
	})

	// Concurrent read-modify-write of one account loses no update.
	t.Run("ConcurrentAccount", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		const workers, perWorker = 8, 50
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range perWorker {
					err := s.Transact(ctx, func(q store.Q) error {
						rows, err := q.AccountsLoad(ctx, []store.CustomerKey{{Scope: sc, CustomerID: c.ID}})
						if err != nil {
							return err
						}
						if len(rows) != 1 {
							return fmt.Errorf("AccountsLoad(one customer) = %d rows, want 1", len(rows))
						}
						a := rows[0].Customer.Account
						a.Balance++
						a.Version++
						return q.WritesApply(ctx, &store.Writes{Scope: sc, Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: a}}})
					})
					if err != nil {
						t.Errorf("Transact: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		want := credit.Account{Balance: workers * perWorker, Version: workers * perWorker}
		wantSame(t, fmt.Sprintf("account after %d×%d increments", workers, perWorker), got.Account, want)
	})
}

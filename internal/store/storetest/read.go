package storetest

import (
	"testing"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

func testRead(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Snapshot", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		ctx := t.Context()
		err := s.Read(ctx, func(q store.Q) error {
			before, err := q.CustomerGet(ctx, sc, c.ID)
			wantNoErr(t, "CustomerGet in Read", err)
			// A write commits between the two reads of one Read.
			transact(t, s, func(w store.Q) error {
				if _, err := w.AccountsLoad(ctx, []store.CustomerKey{{Scope: sc, CustomerID: c.ID}}); err != nil {
					return err
				}
				return w.WritesApply(ctx, &store.Writes{Scope: sc, Blocks: []store.Block{newBlock(c.ID, 1, 100, 100)},
					Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: credit.Account{Balance: 100, LifetimeEarned: 100, Version: 1}}}})
			})
			blocks, err := q.BlockList(ctx, sc, c.ID)
			wantNoErr(t, "BlockList in Read", err)
			if len(blocks) != 0 {
				t.Errorf("BlockList in a Read begun before a commit = %d blocks, want 0 (one snapshot)", len(blocks))
			}
			again, err := q.CustomerGet(ctx, sc, c.ID)
			wantNoErr(t, "CustomerGet in Read", err)
			wantSame(t, "second CustomerGet in one Read", again.Account, before.Account)
			return nil
		})
		wantNoErr(t, "Read", err)
		blocks, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList after Read", err)
		if len(blocks) != 1 {
			t.Errorf("BlockList after the commit = %d blocks, want 1", len(blocks))
		}
	})
	t.Run("ReadOnly", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		ctx := t.Context()
		c := store.Customer{ID: ids.UUID(), CreatedAt: t0}
		err := s.Read(ctx, func(q store.Q) error {
			return q.WritesApply(ctx, &store.Writes{Scope: sc, Customers: []store.Customer{c}})
		})
		if err == nil {
			t.Errorf("WritesApply inside Read succeeded, want an error (reads never write)")
		}
		if _, err := s.CustomerGet(ctx, sc, c.ID); err == nil {
			t.Errorf("customer written inside Read is visible, want nothing written")
		}
	})
}

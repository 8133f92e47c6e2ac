package storetest

import (
	"testing"
	"time"

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

// testCheckRead pins the entitlement check's one read: the customer by
// either key, only its live blocks and active holds, the active rule, and
// the scope's wall; asked twice, since a backend may answer the second time
// from memory.
func testCheckRead(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CheckRead", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		newMetric(t, s, sc, "api_calls")
		c := store.Customer{ID: ids.UUID(), ExternalID: "ada", DisplayName: "Ada", CreatedAt: t0}
		mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c}})

		_, err := s.CheckRead(ctx, sc, "", "nobody", "api_calls")
		wantErr(t, "CheckRead(unknown external id)", err, store.ErrNotFound)
		_, err = s.CheckRead(ctx, sc, ids.UUID(), "", "api_calls")
		wantErr(t, "CheckRead(unknown id)", err, store.ErrNotFound)
		snap, err := s.CheckRead(ctx, sc, "", "ada", "api_calls")
		wantNoErr(t, "CheckRead(no rule yet)", err)
		if snap.Ruled || snap.Account.Customer.ID != c.ID {
			t.Errorf("CheckRead before any rule = customer %q, ruled %v; want %q, not ruled", snap.Account.Customer.ID, snap.Ruled, c.ID)
		}

		rule := store.Rule{ID: ids.New(ids.Rule), MetricKey: "api_calls", Active: true, CreatedAt: t0,
			Rule: credit.Rule{CostType: credit.CostPerUnit, UnitCost: 5, UnitSize: 1}}
		transact(t, s, func(q store.Q) error { return q.RuleCreate(ctx, sc, rule) })
		live, spent, later := newBlock(c.ID, 1, 100, 60), newBlock(c.ID, 2, 50, 0), newBlock(c.ID, 3, 70, 70)
		c.Account = credit.Account{Balance: 130, LifetimeEarned: 220, Version: 1}
		mustApply(t, s, &store.Writes{Scope: sc, Blocks: []store.Block{live, spent, later},
			Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: c.Account}}})
		held, gone := newHold(c.ID, 30, at(time.Second)), newHold(c.ID, 20, at(2*time.Second))
		mustApply(t, s, reserve(sc, &c, held, gone))
		gone = settled(gone, store.ReservationReleased, 0, at(3*time.Second))
		c.Account.Reserved -= gone.Amount
		c.Account.Version++
		mustApply(t, s, &store.Writes{Scope: sc, ReservationUpdates: []store.Reservation{gone},
			Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: c.Account}}})

		// A customer of another tenant with the same external id.
		other := newScope(t, s)
		mustApply(t, s, &store.Writes{Scope: other, Customers: []store.Customer{{ID: ids.UUID(), ExternalID: "ada", CreatedAt: t0}}})

		for _, by := range []struct{ name, id, ext string }{{"external id", "", "ada"}, {"id", c.ID, ""}, {"external id again", "", "ada"}} {
			snap, err := s.CheckRead(ctx, sc, by.id, by.ext, "api_calls")
			wantNoErr(t, "CheckRead by "+by.name, err)
			if !snap.Ruled {
				t.Fatalf("CheckRead by %s: no rule, want %s", by.name, rule.ID)
			}
			wantSame(t, "CheckRead's rule by "+by.name, snap.Rule, rule)
			wantSame(t, "CheckRead's customer by "+by.name, snap.Account.Customer, c)
			wantIDs(t, "CheckRead's blocks by "+by.name, snap.Account.Blocks, blockID, live.ID, later.ID)
			wantHolds(t, "CheckRead's holds by "+by.name, snap.Account.Holds, held)
		}
		// A write and a new rule after those reads: the next read shows them,
		// whatever a backend kept from before.
		live.Remaining = 10
		c.Account.Balance, c.Account.Version = 80, c.Account.Version+1
		mustApply(t, s, &store.Writes{Scope: sc, Remaining: []store.BlockRemaining{{CustomerID: c.ID, BlockID: live.ID, Remaining: 10}},
			Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: c.Account}}})
		newer := store.Rule{ID: ids.New(ids.Rule), MetricKey: "api_calls", Active: true, CreatedAt: at(time.Minute),
			Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: 9}}
		transact(t, s, func(q store.Q) error { return q.RuleCreate(ctx, sc, newer) })
		snap, err = s.CheckRead(ctx, sc, "", "ada", "api_calls")
		wantNoErr(t, "CheckRead after a write", err)
		wantSame(t, "CheckRead's customer after a write", snap.Account.Customer, c)
		if len(snap.Account.Blocks) != 2 || snap.Account.Blocks[0].Remaining != 10 {
			t.Errorf("CheckRead's blocks after a debit = %+v, want %s with 10 left, then %s", snap.Account.Blocks, live.ID, later.ID)
		}
		wantSame(t, "CheckRead's rule after a new one", snap.Rule, newer)

		_, err = s.CheckRead(ctx, other, c.ID, "", "api_calls")
		wantErr(t, "CheckRead of a customer id from another scope", err, store.ErrNotFound)
		snap, err = s.CheckRead(ctx, other, "", "ada", "api_calls")
		wantNoErr(t, "CheckRead in the other scope", err)
		if snap.Ruled || len(snap.Account.Blocks) != 0 || snap.Account.Customer.ID == c.ID {
			t.Errorf("CheckRead in another scope sees this scope's rows: %+v", snap)
		}
	})
}

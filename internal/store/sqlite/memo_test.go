package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// The entitlement check reads the writer's memory of the committed accounts
// and of the active rules (CheckMemo). It must never answer with what the
// database no longer holds: a rule replaced, a rule a read transaction
// found in a snapshot older than a replacement, a row another connection
// changed.
func TestCheckMemoHoldsOnlyWhatIsCommitted(t *testing.T) {
	db := openPlanDB(t)
	ctx := t.Context()
	s := store.Scope{TenantID: "t", Env: "test"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	transact := func(fn func(q store.Q) error) {
		t.Helper()
		if err := db.Transact(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(id string, cost int64) store.Rule {
		return store.Rule{ID: id, MetricKey: "calls", Active: true, CreatedAt: now, Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: cost}}
	}
	setRule := func(r store.Rule) {
		t.Helper()
		transact(func(q store.Q) error { return q.RuleCreate(ctx, s, r) })
	}
	readRule := func() {
		t.Helper()
		if err := db.Read(ctx, func(q store.Q) error { _, err := q.RuleActive(ctx, s, "calls"); return err }); err != nil {
			t.Fatal(err)
		}
	}
	// memo returns the flat cost the memory answers with, or -1.
	memo := func() int64 {
		_, r, ok := db.CheckMemo(s, "", "ext-1", "calls")
		if !ok {
			return -1
		}
		return r.FlatCost
	}

	cu := store.Customer{ID: "c1", ExternalID: "ext-1", CreatedAt: now, Account: credit.Account{Balance: 100, LifetimeEarned: 100, Version: 1}}
	blk := store.Block{Block: credit.Block{ID: "blk_1", Seq: 1, Original: 100, Remaining: 100}, CustomerID: "c1", Source: "topup", CreatedAt: now}
	transact(func(q store.Q) error {
		return q.WritesApply(ctx, &store.Writes{Scope: s, Customers: []store.Customer{cu}, Blocks: []store.Block{blk}, Lapsed: now})
	})
	setRule(rule("r1", 5))
	if got := memo(); got != -1 {
		t.Fatalf("before any read of the rule, the memory answers with cost %d", got)
	}
	readRule()
	row, _, ok := db.CheckMemo(s, "", "ext-1", "calls")
	if !ok || row.Customer.ID != "c1" || len(row.Blocks) != 1 || row.Blocks[0].Remaining != 100 || memo() != 5 {
		t.Fatalf("after a read of the rule: %+v, %v, cost %d; want c1 with its block, cost 5", row, ok, memo())
	}
	if r2, _, _ := db.CheckMemo(s, "c1", "", "calls"); r2.Customer.ExternalID != "ext-1" {
		t.Errorf("by customer id: %+v", r2)
	}

	// A new rule ends the old one in memory at its commit.
	setRule(rule("r2", 7))
	if got := memo(); got != -1 {
		t.Errorf("after the rule changed, the memory answers with cost %d", got)
	}
	readRule()
	if got := memo(); got != 7 {
		t.Errorf("after a read of the new rule: cost %d, want 7", got)
	}

	// A read transaction whose snapshot began before a rule changed finds
	// the old rule: it must not be kept.
	err := db.Read(ctx, func(q store.Q) error {
		if _, err := q.CustomerGet(ctx, s, "c1"); err != nil { // the snapshot begins
			return err
		}
		setRule(rule("r3", 9))
		r, err := q.RuleActive(ctx, s, "calls")
		if err == nil && r.FlatCost != 7 {
			t.Errorf("the snapshot shows cost %d, want the old rule's 7", r.FlatCost)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := memo(); got != -1 && got != 9 {
		t.Errorf("after an old snapshot's read, the memory answers with cost %d; want none or 9", got)
	}

	// A debit rolled back leaves the memory as it was.
	err = db.Transact(ctx, func(q store.Q) error {
		if err := q.WritesApply(ctx, &store.Writes{Scope: s, Lapsed: now,
			Accounts:  []store.AccountUpdate{{CustomerID: "c1", Account: credit.Account{Balance: 40, LifetimeEarned: 100, Version: 2}}},
			Remaining: []store.BlockRemaining{{CustomerID: "c1", BlockID: "blk_1", Remaining: 40}}}); err != nil {
			return err
		}
		if row, _, ok := db.CheckMemo(s, "c1", "", "calls"); ok && row.Blocks[0].Remaining != 100 {
			t.Errorf("a write not yet committed shows: %d left", row.Blocks[0].Remaining)
		}
		return sql.ErrTxDone
	})
	if err == nil {
		t.Fatal("the transaction did not fail")
	}
	readRule()
	if row, _, ok := db.CheckMemo(s, "c1", "", "calls"); !ok || row.Blocks[0].Remaining != 100 {
		t.Errorf("after a rollback: %+v, %v; want the block whole", row, ok)
	}

	// Another connection (another process) changes the account: the memory
	// drops it at the idle writer's next probe.
	other, err := sql.Open(DriverName, db.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(context.Background(), `UPDATE blocks SET remaining_amount = 0, live = 0 WHERE id = 'blk_1'`); err != nil {
		t.Fatal(err)
	}
	db.probe()
	if row, _, ok := db.CheckMemo(s, "c1", "", "calls"); ok {
		t.Errorf("after another connection's write and a probe, the memory still answers: %+v", row)
	}
}

// Checks read the memory while the writer commits and read transactions
// offer rules (run with -race): every answer is one committed state, in
// which the account's balance equals its block's remaining credits.
func TestCheckMemoUnderConcurrentWrites(t *testing.T) {
	db := openPlanDB(t)
	ctx := t.Context()
	s := store.Scope{TenantID: "t", Env: "test"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	err := db.Transact(ctx, func(q store.Q) error {
		if err := q.RuleCreate(ctx, s, store.Rule{ID: "r1", MetricKey: "calls", Active: true, CreatedAt: now,
			Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: 1}}); err != nil {
			return err
		}
		return q.WritesApply(ctx, &store.Writes{Scope: s, Lapsed: now,
			Customers: []store.Customer{{ID: "c1", ExternalID: "ext-1", CreatedAt: now, Account: credit.Account{Balance: 1000, LifetimeEarned: 1000, Version: 1}}},
			Blocks:    []store.Block{{Block: credit.Block{ID: "blk_1", Seq: 1, Original: 1000, Remaining: 1000}, CustomerID: "c1", Source: "topup", CreatedAt: now}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan string, 4)
	for range 3 {
		go func() {
			for {
				select {
				case <-done:
					errs <- ""
					return
				default:
				}
				if _, err := db.CheckRead(ctx, s, "", "ext-1", "calls"); err != nil {
					errs <- err.Error()
					return
				}
				if row, _, ok := db.CheckMemo(s, "", "ext-1", "calls"); ok && (len(row.Blocks) != 1 || row.Blocks[0].Remaining != row.Customer.Account.Balance) {
					errs <- fmt.Sprintf("a check saw balance %d beside blocks %+v", row.Customer.Account.Balance, row.Blocks)
					return
				}
			}
		}()
	}
	for v := int64(2); v <= 200; v++ {
		left := 1000 - v
		err := db.Transact(ctx, func(q store.Q) error {
			if _, err := q.AccountsLoad(ctx, []store.CustomerKey{{Scope: s, CustomerID: "c1"}}); err != nil {
				return err
			}
			return q.WritesApply(ctx, &store.Writes{Scope: s, Lapsed: now,
				Accounts:  []store.AccountUpdate{{CustomerID: "c1", Account: credit.Account{Balance: left, LifetimeEarned: 1000, Version: v}}},
				Remaining: []store.BlockRemaining{{CustomerID: "c1", BlockID: "blk_1", Remaining: left}}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for range 3 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	if row, _, ok := db.CheckMemo(s, "", "ext-1", "calls"); !ok || row.Customer.Account.Balance != 800 {
		t.Errorf("after the writes the memory holds %+v, %v; want balance 800", row.Customer.Account, ok)
	}
}

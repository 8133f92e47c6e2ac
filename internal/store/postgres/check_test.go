package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
)

// CheckRead keeps what it read, per instance. Another instance's debit, a
// hold it places and a rule it replaces must show in this instance's next
// read at once: nothing kept is served unless the database still holds it.
func TestCheckReadSeesOtherInstances(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	openDB := func() *postgres.DB {
		db, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := openDB(), openDB()
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := store.Scope{TenantID: "t", Env: "test"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	apply := func(db *postgres.DB, w *store.Writes) {
		t.Helper()
		w.Scope, w.Lapsed = s, now
		if err := db.Transact(ctx, func(q store.Q) error { return q.WritesApply(ctx, w) }); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(db *postgres.DB, id string, cost int64) {
		t.Helper()
		r := store.Rule{ID: id, MetricKey: "calls", CreatedAt: now, Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: cost}}
		if err := db.Transact(ctx, func(q store.Q) error { return q.RuleCreate(ctx, s, r) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Transact(ctx, func(q store.Q) error {
		return q.MetricCreate(ctx, s, store.Metric{ID: "bm_1", Key: "calls", Name: "calls", CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	rule(a, "r1", 5)
	acct := credit.Account{Balance: 100, LifetimeEarned: 100, Version: 1}
	apply(a, &store.Writes{Customers: []store.Customer{{ID: "c1", ExternalID: "ada", CreatedAt: now, Account: acct}},
		Blocks: []store.Block{{Block: credit.Block{ID: "blk_1", Seq: 1, Original: 100, Remaining: 100}, CustomerID: "c1", Source: "topup", CreatedAt: now}}})

	read := func(what string) store.CheckSnapshot {
		t.Helper()
		snap, err := a.CheckRead(ctx, s, "", "ada", "calls")
		if err != nil || !snap.Ruled {
			t.Fatalf("%s: CheckRead = %+v, %v", what, snap, err)
		}
		return snap
	}
	read("first read")
	if snap := read("second read"); snap.Account.Blocks[0].Remaining != 100 || snap.Rule.FlatCost != 5 {
		t.Fatalf("second read = %+v", snap)
	}

	// The other instance debits the block.
	acct.Balance, acct.Version = 60, 2
	apply(b, &store.Writes{Accounts: []store.AccountUpdate{{CustomerID: "c1", Account: acct}},
		Remaining: []store.BlockRemaining{{CustomerID: "c1", BlockID: "blk_1", Remaining: 60}}})
	if snap := read("after a debit elsewhere"); snap.Account.Customer.Account.Balance != 60 || snap.Account.Blocks[0].Remaining != 60 {
		t.Errorf("after another instance's debit: balance %d, block %d; want 60 and 60",
			snap.Account.Customer.Account.Balance, snap.Account.Blocks[0].Remaining)
	}
	// The other instance places a hold.
	acct.Reserved, acct.Version = 30, 3
	apply(b, &store.Writes{Accounts: []store.AccountUpdate{{CustomerID: "c1", Account: acct}},
		Reservations: []store.Reservation{{ID: "res_1", CustomerID: "c1", MetricKey: "calls", EstimatedUnits: 6, Amount: 30,
			Status: store.ReservationActive, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}}})
	if snap := read("after a hold elsewhere"); len(snap.Account.Holds) != 1 || snap.Account.Customer.Account.Reserved != 30 {
		t.Errorf("after another instance's hold: %d holds, reserved %d; want 1 and 30", len(snap.Account.Holds), snap.Account.Customer.Account.Reserved)
	}
	// The other instance replaces the rule.
	rule(b, "r2", 7)
	if snap := read("after a new rule elsewhere"); snap.Rule.ID != "r2" || snap.Rule.FlatCost != 7 {
		t.Errorf("after another instance's new rule: rule %s costing %d, want r2 costing 7", snap.Rule.ID, snap.Rule.FlatCost)
	}
}

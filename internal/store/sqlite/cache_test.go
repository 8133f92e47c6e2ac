package sqlite_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
	creditdsqlite "github.com/creditd/creditd/internal/store/sqlite"
)

// The writer keeps the accounts it loaded and wrote in memory. Another
// connection (another process on the same file) changing an account must be
// seen by the next write transaction, and a rolled-back one must leave no
// trace in what the next one loads.
func TestAccountCacheFollowsTheFile(t *testing.T) {
	db, path := open(t)
	ctx := t.Context()
	s := store.Scope{TenantID: "t", Env: "test"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	cu := store.Customer{ID: "c1", ExternalID: "ext-1", CreatedAt: now, Account: credit.Account{Balance: 100, LifetimeEarned: 100, Version: 1}}
	blk := store.Block{Block: credit.Block{ID: "blk_1", Seq: 1, Original: 100, Remaining: 100}, CustomerID: "c1", Source: "topup", CreatedAt: now}
	transact := func(fn func(q store.Q) error) error { return db.Transact(ctx, fn) }
	load := func() store.AccountRow {
		t.Helper()
		var row store.AccountRow
		err := transact(func(q store.Q) error {
			ids, err := q.CustomerIDsByExternal(ctx, s, []string{"ext-1"})
			if err != nil || ids["ext-1"] != "c1" {
				t.Fatalf("CustomerIDsByExternal = %v, %v; want c1", ids, err)
			}
			rows, err := q.AccountsLoad(ctx, []store.CustomerKey{{Scope: s, CustomerID: "c1"}})
			if err != nil || len(rows) != 1 {
				t.Fatalf("AccountsLoad = %v, %v", rows, err)
			}
			row = rows[0]
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	if err := transact(func(q store.Q) error {
		return q.WritesApply(ctx, &store.Writes{Scope: s, Customers: []store.Customer{cu}, Blocks: []store.Block{blk}, Lapsed: now})
	}); err != nil {
		t.Fatal(err)
	}
	if r := load(); r.Customer.Account.Balance != 100 || len(r.Blocks) != 1 || r.Blocks[0].Remaining != 100 {
		t.Fatalf("first load = %+v", r)
	}
	// A debit that rolls back.
	err := transact(func(q store.Q) error {
		err := q.WritesApply(ctx, &store.Writes{Scope: s, Lapsed: now,
			Accounts:  []store.AccountUpdate{{CustomerID: "c1", Account: credit.Account{Balance: 40, LifetimeEarned: 100, Version: 2}}},
			Remaining: []store.BlockRemaining{{CustomerID: "c1", BlockID: "blk_1", Remaining: 40}}})
		if err != nil {
			return err
		}
		return sql.ErrTxDone // any error rolls back
	})
	if err == nil {
		t.Fatal("the transaction did not fail")
	}
	if r := load(); r.Customer.Account.Balance != 100 || r.Blocks[0].Remaining != 100 {
		t.Errorf("after a rollback: balance %d, block %d; want 100 and 100", r.Customer.Account.Balance, r.Blocks[0].Remaining)
	}
	// Another connection uses the block up.
	other, err := sql.Open(creditdsqlite.DriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `UPDATE customers SET balance = 0, version = 2 WHERE id = 'c1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, `UPDATE blocks SET remaining_amount = 0, live = 0 WHERE id = 'blk_1'`); err != nil {
		t.Fatal(err)
	}
	if r := load(); r.Customer.Account.Balance != 0 || len(r.Blocks) != 0 {
		t.Errorf("after another connection's write: balance %d, %d live blocks; want 0 and none", r.Customer.Account.Balance, len(r.Blocks))
	}
}

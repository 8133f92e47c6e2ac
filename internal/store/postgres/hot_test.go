package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// A debit that leaves a block with credits must be a heap-only (HOT)
// update: no indexed column changes (live, not remaining_amount, is in the
// partial indexes' WHERE), so PostgreSQL writes no index entries for it.
// Using the block up changes live, and is not HOT.
func TestBlockDebitIsHeapOnly(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := store.Scope{TenantID: "t", Env: "test"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	cu := store.Customer{ID: "c1", CreatedAt: now, Account: credit.Account{Balance: 100, LifetimeEarned: 100, Version: 1}}
	blk := store.Block{Block: credit.Block{ID: "blk_1", Seq: 1, Original: 100, Remaining: 100}, CustomerID: "c1", Source: "topup", CreatedAt: now}
	err := db.Transact(ctx, func(q store.Q) error {
		return q.WritesApply(ctx, &store.Writes{Scope: s, Customers: []store.Customer{cu}, Blocks: []store.Block{blk}, Lapsed: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	// One transaction: pg_stat_get_xact_* count what it did, with no wait
	// for the statistics to be flushed.
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	hot := func() (updated, heapOnly int64) {
		t.Helper()
		err := tx.QueryRow(ctx, `SELECT pg_stat_get_xact_tuples_updated('blocks'::regclass),
			pg_stat_get_xact_tuples_hot_updated('blocks'::regclass)`).Scan(&updated, &heapOnly)
		if err != nil {
			t.Fatal(err)
		}
		return updated, heapOnly
	}
	for _, rem := range []int64{90, 80, 70} {
		if _, err := tx.Exec(ctx, `UPDATE blocks SET remaining_amount = $1 WHERE tenant_id = 't' AND env = 'test' AND customer_id = 'c1' AND id = 'blk_1'`, rem); err != nil {
			t.Fatal(err)
		}
	}
	if updated, heapOnly := hot(); updated != 3 || heapOnly != 3 {
		t.Errorf("3 debits: %d updates, %d heap-only; want all 3 heap-only", updated, heapOnly)
	}
	if _, err := tx.Exec(ctx, `UPDATE blocks SET remaining_amount = 0, live = false WHERE tenant_id = 't' AND env = 'test' AND customer_id = 'c1' AND id = 'blk_1'`); err != nil {
		t.Fatal(err)
	}
	if updated, heapOnly := hot(); updated != 4 || heapOnly != 3 {
		t.Errorf("after using the block up: %d updates, %d heap-only; want 4 and 3", updated, heapOnly)
	}
}

package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestMigrateTwice(t *testing.T) {
	db := open(t)
	for i := range 2 {
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
}

func TestLedgerIsAppendOnly(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	_, err := db.Pool().Exec(ctx, `INSERT INTO ledger_entries (tenant_id, env, customer_id, id, type, delta, balance_after, created_at)
		VALUES ('t', 'test', 'c', 'txn_1', 'grant', 5, 5, now())`)
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	for _, stmt := range []string{`UPDATE ledger_entries SET delta = 6`, `DELETE FROM ledger_entries`} {
		if _, err := db.Pool().Exec(ctx, stmt); err == nil {
			t.Errorf("%s succeeded, want the append-only trigger to refuse it", stmt)
		}
	}
}

package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
	creditdsqlite "github.com/creditd/creditd/internal/store/sqlite"
	"github.com/creditd/creditd/internal/store/storetest"
)

// open opens and migrates a store on a new file in t's temporary directory,
// closed when t ends, and returns it with the file's path.
func open(t *testing.T) (*creditdsqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "creditd.db")
	db, err := creditdsqlite.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db, path
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := open(t)
		return db
	})
}

func TestMigrateTwice(t *testing.T) {
	ctx := t.Context()
	db, path := open(t)
	sc := store.Scope{TenantID: "t1", Env: "live"}
	tn := store.Tenant{ID: sc.TenantID, Name: "Acme", CreatedAt: time.UnixMilli(1_767_225_600_000).UTC()}
	err := db.Transact(ctx, func(q store.Q) error {
		if err := q.TenantCreate(ctx, tn); err != nil {
			return err
		}
		return q.WritesApply(ctx, &store.Writes{Scope: sc, Customers: []store.Customer{{ID: "c1", CreatedAt: tn.CreatedAt}}})
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate() a second time: %v", err)
	}
	// And from another handle on the same, already migrated, file.
	again, err := creditdsqlite.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer again.Close()
	if err := again.Migrate(ctx); err != nil {
		t.Fatalf("Migrate() on a reopened file: %v", err)
	}

	if _, err := again.CustomerGet(ctx, sc, "c1"); err != nil {
		t.Errorf("CustomerGet() after migrating again: %v", err)
	}
}

func TestLedgerAppendOnly(t *testing.T) {
	ctx := t.Context()
	db, path := open(t)
	sc := store.Scope{TenantID: "t1", Env: "live"}
	entry := store.LedgerEntry{
		Entry:      credit.Entry{Type: credit.EntryGrant, Delta: 100, BalanceAfter: 100},
		ID:         "txn_1",
		CustomerID: "c1",
		CreatedAt:  time.UnixMilli(1_767_225_600_000).UTC(),
	}
	err := db.Transact(ctx, func(q store.Q) error {
		return q.WritesApply(ctx, &store.Writes{Scope: sc, Ledger: []store.LedgerEntry{entry}})
	})
	if err != nil {
		t.Fatalf("WritesApply: %v", err)
	}

	raw, err := sql.Open(creditdsqlite.DriverName, "file:"+path)
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	defer raw.Close()
	for _, stmt := range []string{
		`UPDATE ledger_entries SET delta = 0 WHERE id = 'txn_1'`,
		`DELETE FROM ledger_entries WHERE id = 'txn_1'`,
	} {
		_, err := raw.ExecContext(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error = %v, want the append-only trigger's", stmt, err)
		}
	}

	got, err := db.LedgerList(ctx, sc, "c1", "", store.Page{Limit: 10})
	if err != nil {
		t.Fatalf("LedgerList: %v", err)
	}
	if len(got) != 1 || got[0].Delta != 100 {
		t.Errorf("LedgerList() = %+v, want the one entry, unchanged", got)
	}
}

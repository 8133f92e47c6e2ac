package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/jobs"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/sqlite"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestSweepRecordsExpiriesAndPurgesKeys(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 4, 13, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := ledger.New(db, clk.Now)
	t.Cleanup(svc.Close)
	scope := store.Scope{TenantID: "tenant", Env: "test"}

	var customerID string
	for i, in := range []ledger.GrantInput{
		{Credits: 5000, ExpiresAt: clk.Now().Add(time.Hour)},
		{Credits: 7000},
	} {
		in.Customer, in.AutoCreate, in.Source = ledger.CustomerRef{ExternalID: "sweep-me"}, true, "grant"
		req := ledger.Request{Scope: scope, Key: "grant-" + string(rune('a'+i)), Method: "POST", Path: "/v1/topup/grant"}
		_, err := svc.Execute(ctx, req, func() (ledger.Command, error) {
			return ledger.Grant{In: in, Encode: func(g ledger.GrantResult) (int, []byte, error) {
				customerID = g.Customer.ID
				return 201, []byte("{}"), nil
			}}, nil
		})
		if err != nil {
			t.Fatalf("grant: %v", err)
		}
	}
	sw := &jobs.Sweeper{Service: svc, Interval: time.Second, Log: log}

	sw.Sweep(ctx) // nothing due yet
	if got := entries(t, db, scope, customerID, credit.EntryExpire); len(got) != 0 {
		t.Fatalf("expire entries before expiry = %d, want 0", len(got))
	}

	clk.Add(time.Hour) // the block expires at this instant
	sw.Sweep(ctx)
	got := entries(t, db, scope, customerID, credit.EntryExpire)
	if len(got) != 1 || got[0].Delta != -5000 || got[0].BalanceAfter != 7000 {
		t.Fatalf("expire entries after expiry = %+v, want one of -5000 leaving 7000", got)
	}
	c, err := db.CustomerGet(ctx, scope, customerID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Account.Balance != 7000 {
		t.Errorf("account balance after sweep = %d, want 7000", c.Account.Balance)
	}
	sw.Sweep(ctx) // idempotent: nothing more is due
	if got := entries(t, db, scope, customerID, credit.EntryExpire); len(got) != 1 {
		t.Errorf("expire entries after a second sweep = %d, want 1", len(got))
	}

	if _, err := db.IdempotencyGet(ctx, scope, "grant-a", time.Time{}); err != nil {
		t.Fatalf("idempotency record before 24h: %v", err)
	}
	clk.Add(ledger.IdempotencyTTL)
	sw.Sweep(ctx)
	if _, err := db.IdempotencyGet(ctx, scope, "grant-a", time.Time{}); err == nil {
		t.Errorf("idempotency record still stored 24h later, want it purged")
	}
}

func entries(t *testing.T, db store.Store, scope store.Scope, customerID string, typ credit.EntryType) []store.LedgerEntry {
	t.Helper()
	got, err := db.LedgerList(context.Background(), scope, customerID, string(typ), store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

package concurrency

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/apikey"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
	"github.com/creditd/creditd/internal/store/postgres"
	"github.com/creditd/creditd/internal/store/sqlite"
)

// The money invariants (design.md, "Invariants"), checked on the database
// itself once the servers have stopped: ledger.CheckInvariants over every
// customer of the servers' tenant, in both environments, in one snapshot.

// openStore opens the database a creditd server ran on, directly, the way
// "creditd serve" reads CREDITD_DATABASE_URL: postgres://… or
// postgresql://… is PostgreSQL, anything else a SQLite path (sqlite:PATH
// too). It does not migrate: the servers did.
func openStore(t *testing.T, dbURL string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch {
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		db, err := postgres.Open(ctx, dbURL)
		if err != nil {
			t.Fatalf("open the database directly: %v", err)
		}
		return db
	default:
		db, err := sqlite.Open(strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite:"), "//"))
		if err != nil {
			t.Fatalf("open the database directly: %v", err)
		}
		return db
	}
}

// serverScopes returns the scopes a server's keys write in: its tenant (the
// first one), in both environments.
func serverScopes(ctx context.Context, q store.Q) ([]store.Scope, error) {
	ten, err := q.TenantFirst(ctx)
	if err != nil {
		return nil, fmt.Errorf("the server's tenant: %w", err)
	}
	return []store.Scope{{TenantID: ten.ID, Env: apikey.Test}, {TenantID: ten.ID, Env: apikey.Live}}, nil
}

// checkInvariantsIn runs ledger.CheckInvariants on every scope of the
// server, in q (one snapshot), and returns the number of customers it
// covered and the violations.
func checkInvariantsIn(ctx context.Context, q store.Q) (customers int, err error) {
	scopes, err := serverScopes(ctx, q)
	if err != nil {
		return 0, err
	}
	var errs []string
	for _, s := range scopes {
		if err := ledger.CheckInvariants(ctx, q, s); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", s.Env, err))
		}
		p := store.Page{Limit: 500}
		for {
			cs, err := q.CustomerList(ctx, s, p)
			if err != nil {
				return customers, err
			}
			customers += len(cs)
			if len(cs) < p.Limit {
				break
			}
			p.After = cs[len(cs)-1].ID
		}
	}
	if len(errs) > 0 {
		return customers, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return customers, nil
}

// checkInvariants opens the database at dbURL, whose servers must have
// stopped, and fails the test on any broken invariant.
func checkInvariants(t *testing.T, dbURL string) {
	t.Helper()
	st := openStore(t, dbURL)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n int
	err := st.Read(ctx, func(q store.Q) error {
		var err error
		n, err = checkInvariantsIn(ctx, q)
		return err
	})
	if err != nil {
		t.Errorf("invariants on the database after the run (ledger.CheckInvariants):\n%v", err)
		return
	}
	t.Logf("invariants hold on the database: %d customer(s) checked", n)
}

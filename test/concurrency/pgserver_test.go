package concurrency

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/pgtest"
)

// durableDB is the crash test's database on its own server.
const durableDB = "creditd_crash"

// startDurablePostgres starts a PostgreSQL server of the crash test's own
// (pgtest.StartServer with Durable) with an empty database on it (creditd
// serve migrates it). pgtest's shared server runs with fsync=off and
// synchronous_commit=off, which is fine for ordinary tests and meaningless
// for a crash test: this one runs with the durability settings of
// production (fsync, synchronous_commit, full_page_writes on), so that it
// can be crashed (an immediate stop: no checkpoint, crash recovery on the
// next start) as well as its clients. It is stopped when the test ends, also
// on failure. Without the server binaries the test is skipped, or fails
// under CREDITD_TEST_REQUIRE_POSTGRES=1.
func startDurablePostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	p := pgtest.StartServer(t, pgtest.Options{Durable: true, Database: durableDB})
	// Hold the server to what this test is for.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL())
	if err != nil {
		t.Fatalf("durable postgres: %v", err)
	}
	defer conn.Close(ctx)
	for _, setting := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var v string
		if err := conn.QueryRow(ctx, "SHOW "+setting).Scan(&v); err != nil {
			t.Fatalf("durable postgres: SHOW %s: %v", setting, err)
		}
		if v != "on" {
			t.Fatalf("durable postgres: %s = %s, want on", setting, v)
		}
	}
	return p
}

// waitIdle waits until no other session is connected to the database. A
// creditd killed with SIGKILL leaves its server sessions behind for a
// moment, and a COMMIT it had sent before dying may still be executed by
// them: the database is the crash's outcome only once they are gone.
func waitIdle(t *testing.T, p *pgtest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL())
	if err != nil {
		t.Fatalf("durable postgres: %v", err)
	}
	defer conn.Close(context.Background())
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&n)
		if err != nil {
			t.Fatalf("durable postgres: sessions left by the killed server: %v", err)
		}
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("durable postgres: %d session(s) of the killed server still there after 30 s", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

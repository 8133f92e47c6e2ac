package pgtest

import (
	"fmt"
	"os"
	"testing"
)

// Options configures a dedicated server started by StartServer.
type Options struct {
	// Durable runs the server with the durability settings of production:
	// fsync, synchronous_commit and full_page_writes on (and a synced
	// initdb), so that it can be crashed meaningfully. Without it the server
	// runs like the shared one, with all three off.
	Durable bool
	// Database, if set, is the name of an empty database created on the
	// server (not migrated); URL returns its URL.
	Database string
}

// Server is a dedicated PostgreSQL server of one test, started by
// StartServer. Like the shared server it listens only on a unix socket in
// its own directory and runs as the postgres user when we are root.
type Server struct {
	s  *server
	db string
}

// StartServer starts a dedicated server for t and creates opts.Database on
// it. The server is stopped and its directory removed when t ends, also on
// failure. Without the server binaries t is skipped, or fails under
// CREDITD_TEST_REQUIRE_POSTGRES=1.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := newServer(opts.Durable)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	})
	if err := s.initdb(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	db := opts.Database
	if db == "" {
		db = "postgres"
	} else if err := s.exec("CREATE DATABASE " + db); err != nil {
		t.Fatalf("pgtest: create database %s: %v", db, err)
	}
	return &Server{s: s, db: db}
}

// URL is the URL of Options.Database, or of the maintenance database
// "postgres" when none was asked for.
func (p *Server) URL() string { return p.s.url(p.db) }

// DatabaseURL is the URL of the named database on the server.
func (p *Server) DatabaseURL(name string) string { return p.s.url(name) }

// Start starts the stopped or crashed server (after a crash: runs its
// recovery) and waits until it accepts connections.
func (p *Server) Start(t testing.TB) {
	t.Helper()
	if err := p.s.start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Crash stops the server the way a crash does: an immediate stop kills
// every server process at once, with no checkpoint; the next Start recovers
// from the write-ahead log.
func (p *Server) Crash(t testing.TB) {
	t.Helper()
	if err := p.s.halt("immediate"); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Stop stops the server cleanly (a fast shutdown, with a checkpoint) and
// keeps its data for a later Start.
func (p *Server) Stop(t testing.TB) {
	t.Helper()
	if err := p.s.halt("fast"); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

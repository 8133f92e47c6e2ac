package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// Pause stops every process of the server (SIGSTOP) without closing a
// connection: to a client it looks like a hung server or a network
// partition. Resume lets them run again.
func (p *Server) Pause(t testing.TB) {
	t.Helper()
	// Stopped processes would not stop: let them run before the server is
	// stopped at the end of the test, whatever happens in between.
	t.Cleanup(func() { p.s.signal(syscall.SIGCONT) })
	if err := p.s.signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pgtest: pause: %v", err)
	}
}

// Resume continues the processes Pause stopped.
func (p *Server) Resume(t testing.TB) {
	t.Helper()
	if err := p.s.signal(syscall.SIGCONT); err != nil {
		t.Fatalf("pgtest: resume: %v", err)
	}
}

// signal sends sig to the postmaster and each of its children.
func (s *server) signal(sig syscall.Signal) error {
	b, err := os.ReadFile(filepath.Join(s.data(), "postmaster.pid"))
	if err != nil {
		return err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	pids := []int{pm}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name, which may hold spaces, in
		// parentheses: state, then the parent's pid.
		i := strings.LastIndexByte(string(stat), ')')
		if f := strings.Fields(string(stat[i+1:])); i > 0 && len(f) > 1 && f[1] == strconv.Itoa(pm) {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("signal %d: %w", pid, err)
		}
	}
	return nil
}

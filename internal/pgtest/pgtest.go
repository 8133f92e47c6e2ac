// Package pgtest starts a throwaway PostgreSQL server for tests: initdb and
// pg_ctl on a fresh directory, listening only on a unix socket there, with a
// migrated template database that each test copies (CREATE DATABASE …
// TEMPLATE) so that tests stay independent and fast.
//
// A test binary that uses it calls Main from its TestMain, which stops the
// server when the tests end, also on failure. When the server binaries are
// not installed, NewDatabase skips the test with a one-line message, unless
// CREDITD_TEST_REQUIRE_POSTGRES=1 (set by CI), which makes it a failure.
//
// The shared server runs with fsync=off: fine for ordinary tests, never for
// crash tests. A test that needs a server of its own, for instance to crash
// it with the durability settings of production on, starts one with
// StartServer(t, Options{Durable: true}).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/store/postgres"
)

const template = "creditd_template"

var (
	once    sync.Once
	srv     *server
	srvErr  error
	dbCount atomic.Int64
)

type server struct {
	dir    string // owns data/, the socket and the log
	bindir string
	asUser string // run server commands as this user ("" = as ourselves)
	// durable: fsync, synchronous_commit and full_page_writes on, and a
	// synced initdb; otherwise all off, for speed.
	durable bool
}

// Main runs the tests and stops the server if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the server if one was started, for a TestMain that runs the
// tests itself.
func Stop() {
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		srv = nil
	}
}

// Required reports whether a missing PostgreSQL must fail the tests.
func Required() bool { return os.Getenv("CREDITD_TEST_REQUIRE_POSTGRES") == "1" }

// NewDatabase returns the URL of a new, migrated, empty database.
func NewDatabase(t testing.TB) string {
	t.Helper()
	once.Do(func() { srv, srvErr = startShared() })
	if srvErr != nil {
		skipOrFail(t, srvErr)
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), dbCount.Add(1))
	if err := srv.exec(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, template)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return srv.url(name)
}

// skipOrFail ends the test on an error starting a server: a skip when the
// binaries are missing and they are not Required, a failure otherwise.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	var missing *missingError
	if errors.As(err, &missing) && !Required() {
		t.Skipf("pgtest: %v (set CREDITD_TEST_REQUIRE_POSTGRES=1 to fail instead)", err)
	}
	t.Fatalf("pgtest: %v", err)
}

// missingError reports that the server binaries are not installed.
type missingError struct{ what string }

func (e *missingError) Error() string { return "PostgreSQL server binaries not found: " + e.what }

func findBindir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	// Debian keeps the server binaries off PATH, and pg_config may belong to
	// the client package only.
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", &missingError{"no initdb via pg_config --bindir, /usr/lib/postgresql/*/bin or PATH"}
}

// newServer finds the binaries and makes the server's directory, owned by
// the server user. Nothing runs yet.
func newServer(durable bool) (*server, error) {
	bindir, err := findBindir()
	if err != nil {
		return nil, err
	}
	s := &server{bindir: bindir, durable: durable}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: the server runs as postgres.
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, errors.New("running as root and there is no postgres user to run the server as")
		}
		s.asUser = "postgres"
	}
	// Not t.TempDir: its parents are root-only, and the server user must
	// reach the directory. A short path keeps the socket path under its limit.
	s.dir, err = os.MkdirTemp("", "creditd-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(s.dir, 0o755); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	if s.asUser != "" {
		if out, err := exec.Command("chown", s.asUser, s.dir).CombinedOutput(); err != nil {
			os.RemoveAll(s.dir)
			return nil, fmt.Errorf("chown %s: %v: %s", s.dir, err, out)
		}
	}
	return s, nil
}

func (s *server) data() string { return filepath.Join(s.dir, "data") }

// initdb makes the cluster: synced to disk only for a durable server.
func (s *server) initdb() error {
	args := []string{"-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions"}
	if !s.durable {
		args = append(args, "--no-sync")
	}
	if out, err := s.run("initdb", args...); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	return nil
}

// start starts the server (after a crash: runs its recovery) and waits until
// it accepts connections. Only a durable server has fsync,
// synchronous_commit and full_page_writes on.
func (s *server) start() error {
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", s.dir)
	if s.durable {
		opts = fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=100", s.dir)
	}
	if out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil
}

// startShared starts the shared server and migrates its template database.
func startShared() (*server, error) {
	s, err := newServer(false)
	if err != nil {
		return nil, err
	}
	if err := s.initdb(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	if err := s.start(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	if err := s.exec(`CREATE DATABASE ` + template); err != nil {
		s.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, s.url(template))
	if err != nil {
		s.stop()
		return nil, err
	}
	err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// run runs one of the server's programs, as the server user when we are root.
func (s *server) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bindir, prog)
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *server) url(db string) string {
	q := url.Values{"host": {s.dir}, "user": {"postgres"}, "sslmode": {"disable"}}
	return "postgres:///" + db + "?" + q.Encode()
}

// exec runs one statement on the maintenance database.
func (s *server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// halt stops the server in the given pg_ctl mode and keeps its data.
// "immediate" is a crash: every server process is killed at once, with no
// checkpoint, and the next start recovers from the write-ahead log.
func (s *server) halt(mode string) error {
	if out, err := s.run("pg_ctl", "stop", "-m", mode, "-w", "-D", s.data()); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v: %s", mode, err, out)
	}
	return nil
}

// stop stops the server, if it runs, and removes its directory.
func (s *server) stop() error {
	var err error
	if _, statErr := os.Stat(filepath.Join(s.data(), "postmaster.pid")); statErr == nil {
		err = s.halt("immediate")
	}
	os.RemoveAll(s.dir)
	return err
}

package concurrency

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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/pgtest"
)

// durablePostgres is a PostgreSQL server of the crash test's own. pgtest's
// shared server runs with fsync=off and synchronous_commit=off, which is
// fine for ordinary tests and meaningless for a crash test: this one runs
// with the durability settings of production (fsync, synchronous_commit,
// full_page_writes on), so that it can be crashed (an immediate stop: no
// checkpoint, crash recovery on the next start) as well as its clients.
// Like pgtest's, it listens only on a unix socket in its own directory, runs
// as the postgres user when we are root, and is stopped when the test ends,
// also on failure.
type durablePostgres struct {
	dir    string
	bindir string
	asUser string
	dbName string
}

const durableDB = "creditd_crash"

// startDurablePostgres starts the server and creates an empty database on
// it (creditd serve migrates it). Without the server binaries the test is
// skipped, or fails under CREDITD_TEST_REQUIRE_POSTGRES=1.
func startDurablePostgres(t *testing.T) *durablePostgres {
	t.Helper()
	bindir, err := pgBindir()
	if err != nil {
		if pgtest.Required() {
			t.Fatalf("durable postgres: %v", err)
		}
		t.Skipf("durable postgres: %v (set CREDITD_TEST_REQUIRE_POSTGRES=1 to fail instead)", err)
	}
	p := &durablePostgres{bindir: bindir, dbName: durableDB}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			t.Fatal("durable postgres: running as root and there is no postgres user to run the server as")
		}
		p.asUser = "postgres"
	}
	// Not t.TempDir: its parents are root-only. A short path keeps the
	// socket's path under its limit.
	if p.dir, err = os.MkdirTemp("", "creditd-crashpg-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.destroy)
	if err := os.Chmod(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if p.asUser != "" {
		if out, err := exec.Command("chown", p.asUser, p.dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", p.dir, err, out)
		}
	}
	if out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	p.start(t)
	if err := p.exec(context.Background(), "postgres", "CREATE DATABASE "+p.dbName); err != nil {
		t.Fatalf("durable postgres: create database: %v", err)
	}
	// Hold the server to what this test is for.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url(p.dbName))
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

// pgBindir finds the server binaries as pgtest does: pg_config --bindir,
// then Debian's /usr/lib/postgresql/*/bin, then PATH.
func pgBindir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		return filepath.Dir(m[len(m)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found (no initdb via pg_config --bindir, /usr/lib/postgresql/*/bin or PATH)")
}

func (p *durablePostgres) data() string { return filepath.Join(p.dir, "data") }

// URL is the database's URL for creditd and for the direct checks.
func (p *durablePostgres) URL() string { return p.url(p.dbName) }

func (p *durablePostgres) url(db string) string {
	q := url.Values{"host": {p.dir}, "user": {"postgres"}, "sslmode": {"disable"}}
	return "postgres:///" + db + "?" + q.Encode()
}

func (p *durablePostgres) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(p.bindir, prog)
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// start starts the server (after a crash: runs its recovery) and waits
// until it accepts connections.
func (p *durablePostgres) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=100", p.dir)
	if out, err := p.run("pg_ctl", "start", "-w", "-t", "60", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		t.Fatalf("durable postgres: pg_ctl start: %v: %s\n%s", err, out, log)
	}
}

// crash stops the server the way a crash does: immediate mode kills every
// server process at once, with no checkpoint; the next start recovers from
// the write-ahead log.
func (p *durablePostgres) crash(t *testing.T) {
	t.Helper()
	if out, err := p.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", p.data()); err != nil {
		t.Fatalf("durable postgres: pg_ctl stop -m immediate: %v: %s", err, out)
	}
}

// waitIdle waits until no other session is connected to the database. A
// creditd killed with SIGKILL leaves its server sessions behind for a
// moment, and a COMMIT it had sent before dying may still be executed by
// them: the database is the crash's outcome only once they are gone.
func (p *durablePostgres) waitIdle(t *testing.T) {
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

func (p *durablePostgres) exec(ctx context.Context, db, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// destroy stops the server, if it runs, and removes its directory.
func (p *durablePostgres) destroy() {
	if _, err := os.Stat(filepath.Join(p.data(), "postmaster.pid")); err == nil {
		if out, err := p.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", p.data()); err != nil {
			fmt.Fprintf(os.Stderr, "durable postgres: pg_ctl stop: %v: %s\n", err, out)
		}
	}
	os.RemoveAll(p.dir)
}

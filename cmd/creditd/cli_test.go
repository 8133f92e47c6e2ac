package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/pgtest"
)

// env is a getenv over a fixed set of variables, so that tests never read
// the real environment's CREDITD_* settings.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// with returns a copy of e with more variables set.
func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to write
// while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a creditd serve started through run.
type server struct {
	URL    string // http://127.0.0.1:PORT
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

var listeningRE = regexp.MustCompile(`^creditd: listening on (http://\S+)$`)

// startServer runs "creditd serve" with e (CREDITD_ADDR defaults to
// 127.0.0.1:0) and returns once it is listening and /healthz answers 200.
// The server is stopped at the end of the test if the test has not stopped
// it; the test fails if run does not then return nil.
func startServer(t *testing.T, e env) *server {
	t.Helper()
	if e["CREDITD_ADDR"] == "" {
		e = e.with("CREDITD_ADDR", "127.0.0.1:0")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	go func() {
		err := run(ctx, []string{"serve"}, e.get, pw, s.stderr)
		pw.Close()
		s.done <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.stdout, line)
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr) // never block the server on its stdout
	}()
	select {
	case s.URL = <-addr:
	case err := <-s.done:
		cancel()
		t.Fatalf("creditd serve returned before listening: %v\nstdout:\n%s\nstderr:\n%s", err, s.stdout, s.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("creditd serve did not print its address within 30s\nstdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("creditd serve: run returned %v after its context was cancelled, want nil\nstderr:\n%s", err, s.stderr)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(s.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/healthz did not answer 200 within 10s (last error %v)\nstderr:\n%s", s.URL, err, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// stop cancels the server's context and returns what run returned. It may be
// called more than once.
func (s *server) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(20 * time.Second):
			s.err = errors.New("run did not return within 20s of its context being cancelled")
		}
	})
	return s.err
}

// mustStop stops the server and fails the test unless run returned nil.
func (s *server) mustStop(t *testing.T) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("graceful shutdown: run returned %v, want nil\nstderr:\n%s", err, s.stderr)
	}
}

// status answers GET path with key.
func (s *server) status(t *testing.T, key, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// assertKeyWorks checks that key authenticates against the API.
func (s *server) assertKeyWorks(t *testing.T, key string) {
	t.Helper()
	if got := s.status(t, key, "/v1/customers"); got != http.StatusOK {
		t.Errorf("GET /v1/customers with %s: %d, want 200", redact(key), got)
	}
}

// assertKeyRefused checks that key does not authenticate.
func (s *server) assertKeyRefused(t *testing.T, key string) {
	t.Helper()
	if got := s.status(t, key, "/v1/customers"); got != http.StatusUnauthorized {
		t.Errorf("GET /v1/customers with %s: %d, want 401", redact(key), got)
	}
}

func redact(key string) string {
	if len(key) > 12 {
		return key[:12] + "…"
	}
	return fmt.Sprintf("%q", key)
}

var printedKeyRE = regexp.MustCompile(`(?m)^\s+(live|test): (qs_(?:live|test)_\S+)$`)

// printedKeys returns the keys serve printed on its first start, by
// environment.
func printedKeys(stdout string) map[string]string {
	keys := map[string]string{}
	for _, m := range printedKeyRE.FindAllStringSubmatch(stdout, -1) {
		keys[m[1]] = m[2]
	}
	return keys
}

var anyKeyRE = regexp.MustCompile(`qs_(live|test)_[0-9A-Za-z]+`)

// runCmd runs one short command (not serve) and returns its output.
func runCmd(t *testing.T, e env, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, e.get, &out, &errOut)
	return out.String(), errOut.String(), err
}

// testKey returns a well-formed test key unique to the test.
func testKey(t *testing.T) string {
	sum := sha256.Sum256([]byte(t.Name() + time.Now().String()))
	return "qs_test_" + hex.EncodeToString(sum[:])[:40]
}

func dbEnv(t *testing.T) (env, string) {
	path := filepath.Join(t.TempDir(), "creditd.db")
	return env{"CREDITD_DATABASE_URL": path}, path
}

func TestRunWithoutCommand(t *testing.T) {
	_, stderr, err := runCmd(t, env{})
	if err == nil {
		t.Fatal("run with no arguments: nil error, want one")
	}
	if !strings.Contains(stderr, "Usage:") {
		t.Errorf("run with no arguments printed no usage to stderr: %q", stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	e, path := dbEnv(t)
	stdout, stderr, err := runCmd(t, e, "frobnicate")
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("run frobnicate: %v, want an unknown command error", err)
	}
	if !strings.Contains(stderr, "Usage:") {
		t.Errorf("unknown command printed no usage to stderr: %q", stderr)
	}
	if stdout != "" {
		t.Errorf("unknown command wrote to stdout: %q", stdout)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unknown command touched the database file (stat: %v)", err)
	}
}

func TestHelp(t *testing.T) {
	stdout, _, err := runCmd(t, env{}, "help")
	if err != nil {
		t.Fatalf("help: %v", err)
	}
	for _, want := range []string{"serve", "migrate", "keys create", "CREDITD_DATABASE_URL", "CREDITD_BOOTSTRAP_KEY"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help does not mention %s:\n%s", want, stdout)
		}
	}
}

func TestMigrateTwice(t *testing.T) {
	e, path := dbEnv(t)
	for i := 1; i <= 2; i++ {
		stdout, stderr, err := runCmd(t, e, "migrate")
		if err != nil {
			t.Fatalf("migrate #%d: %v\nstderr:\n%s", i, err, stderr)
		}
		if !strings.Contains(stdout, "up to date") {
			t.Errorf("migrate #%d printed %q", i, stdout)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("migrate left no database at %s: %v", path, err)
	}
	// A migrated database still serves, and bootstraps on its first serve.
	s := startServer(t, e)
	if keys := printedKeys(s.stdout.String()); len(keys) != 2 {
		t.Errorf("first serve after migrate printed keys %v, want a live and a test key", keys)
	}
	s.mustStop(t)
}

// TestPostgres runs the same commands against a PostgreSQL URL: migrate (twice),
// keys create, and a server whose printed keys work.
func TestPostgres(t *testing.T) {
	e := env{"CREDITD_DATABASE_URL": pgtest.NewDatabase(t), "CREDITD_ADDR": "127.0.0.1:0"}
	for i := 1; i <= 2; i++ {
		if _, stderr, err := runCmd(t, e, "migrate"); err != nil {
			t.Fatalf("migrate #%d on postgres: %v\nstderr:\n%s", i, err, stderr)
		}
	}
	s := startServer(t, e)
	keys := printedKeys(s.stdout.String())
	if len(keys) != 2 {
		t.Fatalf("first serve on postgres printed keys %v, want a live and a test key", keys)
	}
	for _, k := range keys {
		s.assertKeyWorks(t, k)
	}
	stdout, stderr, err := runCmd(t, e, "keys", "create", "--env", "live")
	if err != nil {
		t.Fatalf("keys create on postgres: %v\nstderr:\n%s", err, stderr)
	}
	s.assertKeyWorks(t, strings.TrimSpace(stdout))
	s.mustStop(t)
}

func TestFirstServePrintsKeysOnce(t *testing.T) {
	e, path := dbEnv(t)
	s := startServer(t, e)
	out := s.stdout.String()
	keys := printedKeys(out)
	live, test := keys["live"], keys["test"]
	if !strings.HasPrefix(live, "qs_live_") || !strings.HasPrefix(test, "qs_test_") {
		t.Fatalf("first serve on an empty database printed keys %v, want a live and a test key; stdout:\n%s", keys, out)
	}
	if n := len(anyKeyRE.FindAllString(out, -1)); n != 2 {
		t.Errorf("first serve printed %d keys, want 2:\n%s", n, out)
	}
	s.assertKeyWorks(t, live)
	s.assertKeyWorks(t, test)
	s.assertKeyRefused(t, "")
	s.assertKeyRefused(t, test+"x")
	s.assertKeyRefused(t, "qs_live_"+strings.TrimPrefix(test, "qs_test_"))
	s.mustStop(t) // the log is written out whole at exit
	if strings.Contains(s.stderr.String(), live) || strings.Contains(s.stderr.String(), test) {
		t.Error("the server logged an API key")
	}

	s = startServer(t, e)
	if got := anyKeyRE.FindAllString(s.stdout.String(), -1); len(got) != 0 {
		t.Errorf("restart printed keys again: %v", got)
	}
	s.assertKeyWorks(t, live)
	s.assertKeyWorks(t, test)
	s.mustStop(t)

	assertNotInDatabase(t, path, live, test)
}

func TestBootstrapKey(t *testing.T) {
	e, _ := dbEnv(t)
	key := testKey(t)
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key))
	if got := anyKeyRE.FindAllString(s.stdout.String(), -1); len(got) != 0 {
		t.Errorf("serve with CREDITD_BOOTSTRAP_KEY printed keys: %v", got)
	}
	s.assertKeyWorks(t, key)
	s.assertKeyRefused(t, testKey(t)+"0")
	s.mustStop(t)

	// On a database that has keys, another bootstrap key is ignored.
	other := "qs_test_" + strings.Repeat("Z", 40)
	s = startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", other))
	s.assertKeyWorks(t, key)
	s.assertKeyRefused(t, other)
	s.mustStop(t)
}

func TestBootstrapKeyLive(t *testing.T) {
	e, _ := dbEnv(t)
	key := "qs_live_" + strings.TrimPrefix(testKey(t), "qs_test_")
	s := startServer(t, e.with("CREDITD_BOOTSTRAP_KEY", key))
	s.assertKeyWorks(t, key)
	s.mustStop(t)
}

func TestInvalidBootstrapKey(t *testing.T) {
	for _, key := range []string{"not-a-key", "qs_prod_0123456789abcdef0123", "qs_test_short", "qs_test_"} {
		t.Run(key, func(t *testing.T) {
			e, _ := dbEnv(t)
			e = e.with("CREDITD_BOOTSTRAP_KEY", key, "CREDITD_ADDR", "127.0.0.1:0")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			err := run(ctx, []string{"serve"}, e.get, &stdout, &stderr)
			if err == nil {
				t.Fatalf("serve with CREDITD_BOOTSTRAP_KEY=%q: nil error, want one", key)
			}
			if !strings.Contains(err.Error(), "CREDITD_BOOTSTRAP_KEY") {
				t.Errorf("error %q does not name CREDITD_BOOTSTRAP_KEY", err)
			}
			if !strings.Contains(err.Error(), "qs_live_") && !strings.Contains(err.Error(), "16 characters") {
				t.Errorf("error %q does not say what a key looks like", err)
			}
			if strings.Contains(stdout.String(), "listening") {
				t.Errorf("serve listened despite an invalid bootstrap key: %s", stdout.String())
			}
		})
	}
}

func TestKeysCreate(t *testing.T) {
	e, path := dbEnv(t)
	// On a fresh database keys create makes the tenant; serve then
	// bootstraps nothing.
	live, stderr, err := runCmd(t, e, "keys", "create", "--env", "live")
	if err != nil {
		t.Fatalf("keys create --env live: %v\n%s", err, stderr)
	}
	live = strings.TrimSpace(live)
	if !regexp.MustCompile(`^qs_live_[0-9A-Za-z]{40}$`).MatchString(live) {
		t.Fatalf("keys create --env live printed %q, want one qs_live_ key", live)
	}
	test, _, err := runCmd(t, e, "keys", "create")
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	test = strings.TrimSpace(test)
	if !strings.HasPrefix(test, "qs_test_") {
		t.Errorf("keys create without --env printed %q, want a qs_test_ key", test)
	}

	s := startServer(t, e)
	if got := anyKeyRE.FindAllString(s.stdout.String(), -1); len(got) != 0 {
		t.Errorf("serve on a database with keys printed keys: %v", got)
	}
	s.assertKeyWorks(t, live)
	s.assertKeyWorks(t, test)

	// A key made while the server runs works at once.
	more, _, err := runCmd(t, e, "keys", "create", "--env", "live")
	if err != nil {
		t.Fatalf("keys create beside a running server: %v", err)
	}
	more = strings.TrimSpace(more)
	s.assertKeyWorks(t, more)
	s.mustStop(t)

	assertNotInDatabase(t, path, live, test, more)
}

func TestKeysCreateErrors(t *testing.T) {
	e, _ := dbEnv(t)
	for _, args := range [][]string{
		{"keys", "create", "--env", "bogus"},
		{"keys", "create", "--env", ""},
		{"keys"},
		{"keys", "delete"},
		{"keys", "create", "--nope"},
	} {
		stdout, _, err := runCmd(t, e, args...)
		if err == nil {
			t.Errorf("%s: nil error, want one", strings.Join(args, " "))
		}
		if anyKeyRE.MatchString(stdout) {
			t.Errorf("%s printed a key: %q", strings.Join(args, " "), stdout)
		}
	}
	_, _, err := runCmd(t, e, "keys", "create", "--env", "bogus")
	if err == nil || !strings.Contains(err.Error(), "--env") {
		t.Errorf("keys create --env bogus: %v, want an error naming --env", err)
	}
}

// assertNotInDatabase checks that no key occurs in plain text in the SQLite
// database or its WAL, and that their hashes do (so the right files were
// read).
func assertNotInDatabase(t *testing.T, path string, keys ...string) {
	t.Helper()
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatalf("no database at %s", path)
	}
	for _, k := range keys {
		if bytes.Contains(all, []byte(k)) {
			t.Errorf("API key %s is stored in plain text in %s", redact(k), path)
		}
		// The stored prefix (qs_test_ plus 4) is fine; the secret rest is not.
		if secret := k[len("qs_test_")+4:]; bytes.Contains(all, []byte(secret)) {
			t.Errorf("the secret part of API key %s is stored in %s", redact(k), path)
		}
		sum := sha256.Sum256([]byte(k))
		if !bytes.Contains(all, []byte(hex.EncodeToString(sum[:]))) && !bytes.Contains(all, sum[:]) {
			t.Errorf("the SHA-256 of API key %s is not in %s either: were the right files read?", redact(k), path)
		}
	}
}

func TestDatabaseURL(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, url, path string }{
		{"sqlite:PATH", "sqlite:" + filepath.Join(dir, "a.db"), filepath.Join(dir, "a.db")},
		{"sqlite://PATH", "sqlite://" + filepath.Join(dir, "b.db"), filepath.Join(dir, "b.db")},
		{"PATH", filepath.Join(dir, "c.db"), filepath.Join(dir, "c.db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testKey(t)
			s := startServer(t, env{"CREDITD_DATABASE_URL": tc.url, "CREDITD_BOOTSTRAP_KEY": key})
			s.assertKeyWorks(t, key)
			s.mustStop(t)
			if fi, err := os.Stat(tc.path); err != nil || fi.Size() == 0 {
				t.Fatalf("CREDITD_DATABASE_URL=%s left no database at %s: %v", tc.url, tc.path, err)
			}
			// The plain path names the same database: the key is there.
			s = startServer(t, env{"CREDITD_DATABASE_URL": tc.path})
			if got := anyKeyRE.FindAllString(s.stdout.String(), -1); len(got) != 0 {
				t.Errorf("the database at %s was not the one %s used: serve bootstrapped again", tc.path, tc.url)
			}
			s.assertKeyWorks(t, key)
			s.mustStop(t)
		})
	}
}

func TestServeBadConfig(t *testing.T) {
	e, _ := dbEnv(t)
	for _, tc := range []struct {
		env  env
		want string
	}{
		{e.with("CREDITD_SWEEP_INTERVAL", "soon"), "CREDITD_SWEEP_INTERVAL"},
		{e.with("CREDITD_READ_HEADER_TIMEOUT", "0s"), "CREDITD_READ_HEADER_TIMEOUT"},
		{e.with("CREDITD_READ_TIMEOUT", "soon"), "CREDITD_READ_TIMEOUT"},
		{e.with("CREDITD_WRITE_TIMEOUT", "-1s"), "CREDITD_WRITE_TIMEOUT"},
		{e.with("CREDITD_IDLE_TIMEOUT", "0"), "CREDITD_IDLE_TIMEOUT"},
		{e.with("CREDITD_SHUTDOWN_GRACE", "never"), "CREDITD_SHUTDOWN_GRACE"},
		{e.with("CREDITD_READ_TIMEOUT", "2m"), "CREDITD_WRITE_TIMEOUT"},
		{e.with("CREDITD_LOG_FORMAT", "xml"), "xml"},
		{e.with("CREDITD_ADDR", "127.0.0.1:-1"), "listen"},
	} {
		_, _, err := runCmd(t, tc.env, "serve")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve with %v: %v, want an error mentioning %q", tc.env, err, tc.want)
		}
	}
}

// TestGCTarget: serve sets the collector to 400 unless GOGC says otherwise.
func TestGCTarget(t *testing.T) {
	for _, c := range []struct {
		gogc string
		pct  int
		set  bool
	}{{"", 400, true}, {"100", 0, false}, {"off", 0, false}} {
		pct, set := gcTarget(env{"GOGC": c.gogc}.get)
		if pct != c.pct || set != c.set {
			t.Errorf("GOGC=%q: gcTarget = %d, %v; want %d, %v", c.gogc, pct, set, c.pct, c.set)
		}
	}
}

package sqlite_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/creditd/creditd/internal/store"
	creditdsqlite "github.com/creditd/creditd/internal/store/sqlite"
)

// The database holds every tenant's balances and stored answers: its file
// and its WAL are its owner's alone.
func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	db, path := open(t)
	if err := db.Writable(t.Context()); err != nil {
		t.Fatalf("Writable() on a new database: %v", err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

// A database file creditd cannot write is reported as unavailable, not
// found out by the first write: serve refuses to start on it and /readyz
// answers 503.
func TestReadOnlyDatabaseIsUnavailable(t *testing.T) {
	db, path := open(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	readOnly(t, path)

	ro, err := creditdsqlite.Open(path)
	if err != nil {
		if !store.Unavailable(err) {
			t.Fatalf("Open() of a read-only file: %v, want an unavailable database", err)
		}
		return
	}
	defer ro.Close()
	err = ro.Writable(t.Context())
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Writable() on a read-only file = %v, want store.ErrUnavailable", err)
	}
}

// readOnly makes path read-only for this process. Root writes through file
// modes, so as root the file is made immutable instead (chattr +i, undone
// when the test ends).
func readOnly(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("cannot make the file read-only as root (chattr +i: %v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
}

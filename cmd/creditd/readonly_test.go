package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A database file creditd cannot write is reported at start: serve refuses
// it, instead of starting "ready" and answering every write with an error.
func TestServeRefusesReadOnlyDatabase(t *testing.T) {
	e, path := dbEnv(t)
	if _, stderr, err := runCmd(t, e, "keys", "create", "--env", "test"); err != nil {
		t.Fatalf("keys create: %v\n%s", err, stderr)
	}
	// Root writes through file modes: make the file immutable instead.
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
			t.Skipf("cannot make the file read-only as root (chattr +i: %v: %s)", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
	} else if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runCmd(t, e.with("CREDITD_ADDR", "127.0.0.1:0"), "serve")
	if err == nil || !strings.Contains(err.Error(), "cannot take writes") {
		t.Fatalf("serve on a read-only database: %v, want a refusal saying it cannot take writes\nstderr:\n%s", err, stderr)
	}
}

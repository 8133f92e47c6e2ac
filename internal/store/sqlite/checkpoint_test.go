package sqlite

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// TestCheckpointStartsWALOver: under a steady stream of commits the WAL
// starts over (SQLite writes a new salt into its header when it does), so
// that it does not grow without end: see checkpointOnce.
func TestCheckpointStartsWALOver(t *testing.T) {
	defer func(n int) { walRestartFrames = n }(walRestartFrames)
	walRestartFrames = 64 // a few commits' worth
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "creditd.db")
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	salt := func() string {
		b := make([]byte, 24)
		f, err := os.Open(path + "-wal")
		if err != nil {
			return ""
		}
		defer f.Close()
		if _, err := io.ReadFull(f, b); err != nil {
			return ""
		}
		return string(b[16:24])
	}
	sc := store.Scope{TenantID: "ten_1", Env: "test"}
	stop := make(chan struct{})
	writes := make(chan int)
	go func() {
		n := 0
		defer func() { writes <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := store.IdempotencyRecord{Key: fmt.Sprintf("k-%d", n), Method: "POST", Path: "/v1/usage", Status: 201,
				Body: []byte(`{}`), CreatedAt: time.Now()}
			err := db.Transact(ctx, func(q store.Q) error {
				return q.WritesApply(ctx, &store.Writes{Scope: sc, Idempotency: []store.IdempotencyRecord{r}, Lapsed: time.Time{}})
			})
			if err != nil {
				t.Errorf("Transact: %v", err)
				return
			}
			n++
		}
	}()
	first, starts := salt(), 0
	deadline := time.Now().Add(10 * time.Second)
	for starts < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		db.checkpointOnce()
		if s := salt(); s != first && s != "" {
			starts++
			first = s
		}
	}
	close(stop)
	n := <-writes
	if starts < 2 {
		t.Errorf("the WAL started over %d times in 10 s of %d commits, want 2 or more", starts, n)
	}
}

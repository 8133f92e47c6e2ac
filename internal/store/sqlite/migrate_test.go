package sqlite

import (
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/creditd/creditd/internal/store"
)

// TestMigrationIdempotencyAnswers moves the stored answers out of the key's
// row (00010): a record stored before answers the same after, a new record
// takes an answer id after the moved ones, and going down puts them back.
func TestMigrationIdempotencyAnswers(t *testing.T) {
	ctx := t.Context()
	db, err := Open(filepath.Join(t.TempDir(), "creditd.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 9); err != nil {
		t.Fatalf("migrate to 9: %v", err)
	}
	sc := store.Scope{TenantID: "ten_1", Env: "test"}
	created := time.UnixMilli(1_700_000_000_000).UTC()
	old := []store.IdempotencyRecord{
		{Key: "k-b", Method: "POST", Path: "/v1/usage", Status: 201, Body: []byte(`{"b":1}`), CreatedAt: created},
		{Key: "k-a", Method: "POST", Path: "/v1/grants", Status: 200, Body: []byte(`{"a":2}`), CreatedAt: created.Add(time.Second)},
	}
	for _, r := range old {
		_, err := db.write.ExecContext(ctx, `INSERT INTO idempotency_keys (tenant_id, env, key, method, path, status, body, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sc.TenantID, sc.Env, r.Key, r.Method, r.Path, r.Status, r.Body, ms(r.CreatedAt))
		if err != nil {
			t.Fatalf("insert a record before 00010: %v", err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	check := func(when string, want ...store.IdempotencyRecord) {
		t.Helper()
		for _, w := range want {
			got, err := db.IdempotencyGet(ctx, sc, w.Key, time.Time{})
			if err != nil {
				t.Errorf("%s: IdempotencyGet(%s): %v", when, w.Key, err)
				continue
			}
			if got.Method != w.Method || got.Path != w.Path || got.Status != w.Status || string(got.Body) != string(w.Body) || !got.CreatedAt.Equal(w.CreatedAt) {
				t.Errorf("%s: IdempotencyGet(%s) = %+v, want %+v", when, w.Key, got, w)
			}
		}
	}
	check("after 00010", old...)

	fresh := store.IdempotencyRecord{Key: "k-c", Method: "POST", Path: "/v1/usage", Status: 201, Body: []byte(`{"c":3}`), CreatedAt: created.Add(time.Hour)}
	err = db.Transact(ctx, func(q store.Q) error {
		return q.WritesApply(ctx, &store.Writes{Scope: sc, Idempotency: []store.IdempotencyRecord{fresh}, Lapsed: created.Add(-time.Hour)})
	})
	if err != nil {
		t.Fatalf("WritesApply after 00010: %v", err)
	}
	check("a new record beside the moved ones", append(old, fresh)...)

	if _, err := p.Down(ctx); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	for _, w := range append(old, fresh) {
		var body string
		err := db.write.QueryRowContext(ctx, `SELECT body FROM idempotency_keys WHERE tenant_id = ? AND env = ? AND key = ?`,
			sc.TenantID, sc.Env, w.Key).Scan(&body)
		if err != nil || body != string(w.Body) {
			t.Errorf("after going down: body of %s = %q, %v; want %q", w.Key, body, err, w.Body)
		}
	}
}

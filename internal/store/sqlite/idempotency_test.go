package sqlite

import (
	"testing"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// TestIdempotencyPurgeDeletesAnswers: the purge deletes a record's answer
// with its key, so that answers do not outlive their keys.
func TestIdempotencyPurgeDeletesAnswers(t *testing.T) {
	ctx := t.Context()
	db := openPlanDB(t)
	sc := store.Scope{TenantID: "ten_1", Env: "test"}
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	var recs []store.IdempotencyRecord
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(time.Hour)} {
		recs = append(recs, store.IdempotencyRecord{Key: "k-" + string(rune('a'+i)), Method: "POST", Path: "/v1/usage",
			Status: 201, Body: []byte(`{}`), CreatedAt: at})
	}
	err := db.Transact(ctx, func(q store.Q) error {
		return q.WritesApply(ctx, &store.Writes{Scope: sc, Idempotency: recs, Lapsed: t0.Add(-time.Hour)})
	})
	if err != nil {
		t.Fatalf("WritesApply: %v", err)
	}
	var n int64
	err = db.Transact(ctx, func(q store.Q) error {
		n, err = q.IdempotencyPurge(ctx, t0.Add(30*time.Minute))
		return err
	})
	if err != nil || n != 2 {
		t.Fatalf("IdempotencyPurge = %d, %v; want 2", n, err)
	}
	var keys, answers int
	if err := db.write.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM idempotency_answers)`).
		Scan(&keys, &answers); err != nil {
		t.Fatal(err)
	}
	if keys != 1 || answers != 1 {
		t.Errorf("after the purge: %d keys and %d answers, want 1 and 1", keys, answers)
	}
	got, err := db.IdempotencyGet(ctx, sc, recs[2].Key, time.Time{})
	if err != nil || string(got.Body) != "{}" {
		t.Errorf("IdempotencyGet(the kept record) = %+v, %v", got, err)
	}
}

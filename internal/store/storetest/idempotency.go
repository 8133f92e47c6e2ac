package storetest

import (
	"testing"
	"time"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// ttl is how long the suite's idempotency records stay live.
const ttl = 24 * time.Hour

// newRecord returns an unsaved idempotency record with a fresh key, stored
// at created.
func newRecord(created time.Time) store.IdempotencyRecord {
	return store.IdempotencyRecord{
		Key:       "key-" + ids.UUID(),
		Method:    "POST",
		Path:      "/v1/usage",
		Status:    201,
		Body:      []byte(`{"id":"evt_1","cost":15}` + "\n"),
		CreatedAt: created,
	}
}

// putRecord stores r in its own transaction, replacing a record stored
// before since.
func putRecord(t *testing.T, s store.Store, sc store.Scope, r store.IdempotencyRecord, since time.Time) error {
	return s.Transact(t.Context(), func(q store.Q) error {
		if err := q.IdempotencyLock(t.Context(), sc, r.Key); err != nil {
			return err
		}
		return q.IdempotencyPut(t.Context(), sc, r, since)
	})
}

func testIdempotency(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PutGet", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		r := newRecord(at(time.Hour))
		wantNoErr(t, "IdempotencyPut", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))

		// since is inclusive: a record stored exactly at since is live.
		for _, since := range []time.Time{{}, r.CreatedAt.Add(-ttl), r.CreatedAt} {
			got, err := s.IdempotencyGet(ctx, sc, r.Key, since)
			wantNoErr(t, "IdempotencyGet", err)
			wantSame(t, "IdempotencyGet", got, r)
		}
		_, err := s.IdempotencyGet(ctx, sc, r.Key, r.CreatedAt.Add(time.Millisecond))
		wantErr(t, "IdempotencyGet(since after the record)", err, store.ErrNotFound)
		_, err = s.IdempotencyGet(ctx, sc, "key-unknown", time.Time{})
		wantErr(t, "IdempotencyGet(unknown key)", err, store.ErrNotFound)

		// Inside a transaction too.
		transact(t, s, func(q store.Q) error {
			if err := q.IdempotencyLock(ctx, sc, r.Key); err != nil {
				return err
			}
			got, err := q.IdempotencyGet(ctx, sc, r.Key, r.CreatedAt.Add(-ttl))
			if err != nil {
				return err
			}
			wantSame(t, "IdempotencyGet in a transaction", got, r)
			return nil
		})
	})

	t.Run("PutLive", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		r := newRecord(at(time.Hour))
		wantNoErr(t, "IdempotencyPut", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))

		again := r
		again.Status, again.Body, again.CreatedAt = 500, []byte(`{}`), at(2*time.Hour)
		err := putRecord(t, s, sc, again, again.CreatedAt.Add(-ttl))
		wantErr(t, "IdempotencyPut(live key)", err, store.ErrConflict)

		// since is inclusive here too: a record stored exactly at since is
		// still live, as IdempotencyGet sees it.
		err = putRecord(t, s, sc, again, r.CreatedAt)
		wantErr(t, "IdempotencyPut(key stored exactly at since)", err, store.ErrConflict)

		got, err := s.IdempotencyGet(ctx, sc, r.Key, time.Time{})
		wantNoErr(t, "IdempotencyGet", err)
		wantSame(t, "IdempotencyGet after a conflicting put", got, r)
	})

	t.Run("PutLapsed", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		r := newRecord(t0)
		wantNoErr(t, "IdempotencyPut", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))

		later := r
		later.Method, later.Path, later.Status, later.Body = "DELETE", "/v1/reservations/res_1", 200, []byte(`{"ok":true}`)
		later.CreatedAt = at(2 * ttl)
		wantNoErr(t, "IdempotencyPut(over a lapsed record)", putRecord(t, s, sc, later, later.CreatedAt.Add(-ttl)))

		got, err := s.IdempotencyGet(ctx, sc, r.Key, later.CreatedAt.Add(-ttl))
		wantNoErr(t, "IdempotencyGet", err)
		wantSame(t, "IdempotencyGet after replacing a lapsed record", got, later)
	})

	t.Run("KeyPerScope", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		r := newRecord(t0)
		wantNoErr(t, "IdempotencyPut", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))
		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			o := r
			o.Body = []byte(other.TenantID + "/" + other.Env)
			wantNoErr(t, "IdempotencyPut(same key, another scope)", putRecord(t, s, other, o, o.CreatedAt.Add(-ttl)))
			got, err := s.IdempotencyGet(ctx, other, r.Key, time.Time{})
			wantNoErr(t, "IdempotencyGet", err)
			wantSame(t, "IdempotencyGet(another scope)", got, o)
		}
		got, err := s.IdempotencyGet(ctx, sc, r.Key, time.Time{})
		wantNoErr(t, "IdempotencyGet", err)
		wantSame(t, "IdempotencyGet", got, r)
	})

	t.Run("Purge", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, other := newScope(t, s), newScope(t, s)
		old := newRecord(t0)
		older := newRecord(at(-time.Hour))
		edge := newRecord(at(2 * time.Hour)) // stored exactly at the cut-off: kept
		fresh := newRecord(at(3 * time.Hour))
		for _, r := range []store.IdempotencyRecord{old, edge, fresh} {
			wantNoErr(t, "IdempotencyPut", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))
		}
		wantNoErr(t, "IdempotencyPut", putRecord(t, s, other, older, older.CreatedAt.Add(-ttl)))

		var n int64
		transact(t, s, func(q store.Q) error {
			var err error
			n, err = q.IdempotencyPurge(ctx, edge.CreatedAt)
			return err
		})
		if n != 2 {
			t.Errorf("IdempotencyPurge() = %d, want 2", n)
		}
		_, err := s.IdempotencyGet(ctx, sc, old.Key, time.Time{})
		wantErr(t, "IdempotencyGet(purged)", err, store.ErrNotFound)
		_, err = s.IdempotencyGet(ctx, other, older.Key, time.Time{})
		wantErr(t, "IdempotencyGet(purged, another tenant's)", err, store.ErrNotFound)
		for _, r := range []store.IdempotencyRecord{edge, fresh} {
			got, err := s.IdempotencyGet(ctx, sc, r.Key, time.Time{})
			wantNoErr(t, "IdempotencyGet(kept)", err)
			wantSame(t, "IdempotencyGet(kept)", got, r)
		}

		transact(t, s, func(q store.Q) error {
			var err error
			n, err = q.IdempotencyPurge(ctx, edge.CreatedAt)
			return err
		})
		if n != 0 {
			t.Errorf("IdempotencyPurge() again = %d, want 0", n)
		}
	})
}

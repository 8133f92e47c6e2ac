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

// putRecord stores r in its own transaction, as the service does: it takes
// the key's lock, then writes the record through WritesApply, replacing a
// record stored before lapsed.
func putRecord(t *testing.T, s store.Store, sc store.Scope, r store.IdempotencyRecord, lapsed time.Time) error {
	return s.Transact(t.Context(), func(q store.Q) error {
		if err := q.IdempotencyLockAll(t.Context(), []store.IdemKey{{Scope: sc, Key: r.Key}}); err != nil {
			return err
		}
		return q.WritesApply(t.Context(), &store.Writes{Scope: sc, Idempotency: []store.IdempotencyRecord{r}, Lapsed: lapsed})
	})
}

// wantRecord fails the test unless IdempotencyGet and IdempotencyGetAll both
// find want under its key in sc, stored at or after since. It does not stop
// the test, so that it may run inside a transaction.
func wantRecord(t *testing.T, q store.Q, call string, sc store.Scope, want store.IdempotencyRecord, since time.Time) {
	t.Helper()
	got, err := q.IdempotencyGet(t.Context(), sc, want.Key, since)
	if err != nil {
		t.Errorf("IdempotencyGet%s: %v", call, err)
	} else {
		wantSame(t, "IdempotencyGet"+call, got, want)
	}
	all, err := q.IdempotencyGetAll(t.Context(), []store.IdemKey{{Scope: sc, Key: want.Key}}, since)
	switch {
	case err != nil:
		t.Errorf("IdempotencyGetAll%s: %v", call, err)
	case len(all) != 1:
		t.Errorf("IdempotencyGetAll%s = %d records, want 1", call, len(all))
	default:
		wantSame(t, "IdempotencyGetAll"+call, all[0], store.IdemRecord{Scope: sc, IdempotencyRecord: want})
	}
}

// wantNoRecord fails the test if IdempotencyGet or IdempotencyGetAll finds a
// record for key in sc stored at or after since.
func wantNoRecord(t *testing.T, q store.Q, call string, sc store.Scope, key string, since time.Time) {
	t.Helper()
	_, err := q.IdempotencyGet(t.Context(), sc, key, since)
	wantErr(t, "IdempotencyGet"+call, err, store.ErrNotFound)
	all, err := q.IdempotencyGetAll(t.Context(), []store.IdemKey{{Scope: sc, Key: key}}, since)
	if err != nil || len(all) != 0 {
		t.Errorf("IdempotencyGetAll%s = %d records, %v; want none", call, len(all), err)
	}
}

func testIdempotency(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PutGet", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		r := newRecord(at(time.Hour))
		wantNoErr(t, "WritesApply(record)", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))

		// since is inclusive: a record stored exactly at since is live.
		for _, since := range []time.Time{{}, r.CreatedAt.Add(-ttl), r.CreatedAt} {
			wantRecord(t, s, "(since "+since.Format(time.RFC3339)+")", sc, r, since)
		}
		wantNoRecord(t, s, "(since after the record)", sc, r.Key, r.CreatedAt.Add(time.Millisecond))
		wantNoRecord(t, s, "(unknown key)", sc, "key-unknown", time.Time{})

		// Inside a transaction too, under the key's lock.
		transact(t, s, func(q store.Q) error {
			if err := q.IdempotencyLockAll(ctx, []store.IdemKey{{Scope: sc, Key: r.Key}}); err != nil {
				return err
			}
			wantRecord(t, q, "(in a transaction)", sc, r, r.CreatedAt.Add(-ttl))
			return nil
		})
	})

	t.Run("PutLive", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		r := newRecord(at(time.Hour))
		wantNoErr(t, "WritesApply(record)", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))

		again := r
		again.Status, again.Body, again.CreatedAt = 500, []byte(`{}`), at(2*time.Hour)
		err := putRecord(t, s, sc, again, again.CreatedAt.Add(-ttl))
		wantErr(t, "WritesApply(record of a live key)", err, store.ErrConflict)

		// Lapsed is exclusive: a record stored exactly at Lapsed is still
		// live, as IdempotencyGet's inclusive since sees it.
		err = putRecord(t, s, sc, again, r.CreatedAt)
		wantErr(t, "WritesApply(record of a key stored exactly at Lapsed)", err, store.ErrConflict)

		wantRecord(t, s, "(after a conflicting write)", sc, r, time.Time{})
	})

	t.Run("PutLapsed", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		r := newRecord(t0)
		wantNoErr(t, "WritesApply(record)", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))

		later := r
		later.Method, later.Path, later.Status, later.Body = "DELETE", "/v1/reservations/res_1", 200, []byte(`{"ok":true}`)
		later.CreatedAt = at(2 * ttl)
		// The lapsed record is not found at the new record's since...
		wantNoRecord(t, s, "(lapsed)", sc, r.Key, later.CreatedAt.Add(-ttl))
		// ...and a new record replaces it.
		wantNoErr(t, "WritesApply(record over a lapsed one)", putRecord(t, s, sc, later, later.CreatedAt.Add(-ttl)))
		wantRecord(t, s, "(after replacing a lapsed record)", sc, later, later.CreatedAt.Add(-ttl))
		wantRecord(t, s, "(after replacing a lapsed record)", sc, later, time.Time{})
	})

	t.Run("KeyPerScope", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		r := newRecord(t0)
		wantNoErr(t, "WritesApply(record)", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))
		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			o := r
			o.Body = []byte(other.TenantID + "/" + other.Env)
			wantNoErr(t, "WritesApply(record of the same key, another scope)", putRecord(t, s, other, o, o.CreatedAt.Add(-ttl)))
			wantRecord(t, s, "(another scope)", other, o, time.Time{})
		}
		wantRecord(t, s, "", sc, r, time.Time{})
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
			wantNoErr(t, "WritesApply(record)", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))
		}
		wantNoErr(t, "WritesApply(record)", putRecord(t, s, other, older, older.CreatedAt.Add(-ttl)))

		var n int64
		transact(t, s, func(q store.Q) error {
			var err error
			n, err = q.IdempotencyPurge(ctx, edge.CreatedAt)
			return err
		})
		if n != 2 {
			t.Errorf("IdempotencyPurge() = %d, want 2", n)
		}
		wantNoRecord(t, s, "(purged)", sc, old.Key, time.Time{})
		wantNoRecord(t, s, "(purged, another tenant's)", other, older.Key, time.Time{})
		for _, r := range []store.IdempotencyRecord{edge, fresh} {
			wantRecord(t, s, "(kept)", sc, r, time.Time{})
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

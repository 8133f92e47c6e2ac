package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// An idempotency record is two rows: the key's, small and clustered on the
// key (tenant_id, env, key), which every write looks up, and its stored
// answer's, appended to idempotency_answers and read only on a replay
// (migration 00010 says why).

func (c conn) IdempotencyGet(ctx context.Context, s store.Scope, key string, since time.Time) (store.IdempotencyRecord, error) {
	r := store.IdempotencyRecord{Key: key}
	var created int64
	// No aliases: the plan test names the tables a plan reaches by the names
	// SQLite prints, an alias's.
	err := c.queryRow(ctx, `SELECT method, path, status, body, created_at
		FROM idempotency_keys JOIN idempotency_answers ON idempotency_answers.id = idempotency_keys.answer_id
		WHERE tenant_id = ? AND env = ? AND key = ? AND created_at >= ?`, s.TenantID, s.Env, key, ms(since)).
		Scan(&r.Method, &r.Path, &r.Status, &r.Body, &created)
	if err != nil {
		return store.IdempotencyRecord{}, fmt.Errorf("select idempotency key: %w", interpretError(err))
	}
	r.CreatedAt = fromMS(created)
	return r, nil
}

func (c conn) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	_, err := c.exec(ctx, `DELETE FROM idempotency_answers
		WHERE id IN (SELECT answer_id FROM idempotency_keys WHERE created_at < ?)`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency answers: %w", interpretError(err))
	}
	res, err := c.exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", interpretError(err))
	}
	return res.RowsAffected()
}

// IdempotencyGetAll reads the keys' records, lapsed ones too: a write
// transaction notes which keys it looked up and which of them a lapsed
// record holds, so that idempotencyInsert deletes those alone. A missing
// key reads no answer: the join finds no key row to start from.
func (c conn) IdempotencyGetAll(ctx context.Context, keys []store.IdemKey, since time.Time) ([]store.IdemRecord, error) {
	var out []store.IdemRecord
	seen := make(map[store.IdemKey]bool)
	scopes, m := byScope(keys, func(k store.IdemKey) store.Scope { return k.Scope }, func(k store.IdemKey) string { return k.Key })
	for _, s := range scopes {
		err := c.inList(ctx, `SELECT key, created_at, method, path, status, body
			FROM idempotency_keys JOIN idempotency_answers ON idempotency_answers.id = idempotency_keys.answer_id
			WHERE tenant_id = ? AND env = ? AND key IN (%s)`, []any{s.TenantID, s.Env}, m[s], nil,
			func(sc scanner) error {
				r := store.IdemRecord{Scope: s}
				var created int64
				if err := sc.Scan(&r.Key, &created, &r.Method, &r.Path, &r.Status, &r.Body); err != nil {
					return err
				}
				r.CreatedAt = fromMS(created)
				k := store.IdemKey{Scope: s, Key: r.Key}
				if r.CreatedAt.Before(since) {
					if c.keys != nil {
						c.keys[k] = true
					}
					return nil
				}
				if !seen[k] { // a key in two chunks comes back twice
					seen[k] = true
					out = append(out, r)
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("select idempotency keys: %w", err)
		}
	}
	if c.keys != nil {
		for _, k := range keys {
			if _, ok := c.keys[k]; !ok {
				c.keys[k] = false
			}
		}
	}
	return out, nil
}

// idempotencyInsert stores the records of w. A record older than Lapsed
// has lapsed: its key is free again, so it goes first, answer and all, and
// the insert meets no row. A live record is a conflict: the insert fails.
// No upsert: its DO UPDATE may abort halfway, which makes SQLite copy every
// page the statement touches into a statement journal. The keys this
// transaction looked up and found free need no delete.
func (c conn) idempotencyInsert(ctx context.Context, s store.Scope, w *store.Writes) error {
	if len(w.Idempotency) == 0 {
		return nil
	}
	var keys []string
	for _, r := range w.Idempotency {
		if lapsed, looked := c.keys[store.IdemKey{Scope: s, Key: r.Key}]; lapsed || !looked {
			keys = append(keys, r.Key)
		}
	}
	err := c.inListExec(ctx, `DELETE FROM idempotency_answers WHERE id IN (SELECT answer_id FROM idempotency_keys
		WHERE tenant_id = ? AND env = ? AND key IN (%s) AND created_at < ?)`, []any{s.TenantID, s.Env}, keys, []any{ms(w.Lapsed)})
	if err == nil {
		err = c.inListExec(ctx, `DELETE FROM idempotency_keys WHERE tenant_id = ? AND env = ? AND key IN (%s) AND created_at < ?`,
			[]any{s.TenantID, s.Env}, keys, []any{ms(w.Lapsed)})
	}
	if err != nil {
		return fmt.Errorf("delete lapsed idempotency keys: %w", err)
	}
	// The answers' ids are handed out here, after the last one: the write
	// lock is held, so no other writer takes them.
	var last int64
	if err := c.queryRow(ctx, `SELECT coalesce(max(id), 0) FROM idempotency_answers`).Scan(&last); err != nil {
		return fmt.Errorf("select last idempotency answer: %w", interpretError(err))
	}
	type keyed struct {
		store.IdempotencyRecord
		answer int64
	}
	rows := make([]keyed, len(w.Idempotency))
	for i, r := range w.Idempotency {
		rows[i] = keyed{r, last + 1 + int64(i)}
	}
	err = insertRows(ctx, c, `INSERT OR FAIL INTO idempotency_answers (id, method, path, status, body) VALUES `, 5, rows,
		func(r keyed) []any { return []any{r.answer, r.Method, r.Path, r.Status, r.Body} }, ``)
	if err != nil {
		return fmt.Errorf("insert idempotency answers: %w", err)
	}
	err = insertRows(ctx, c, `INSERT OR FAIL INTO idempotency_keys (tenant_id, env, key, created_at, answer_id) VALUES `, 5, rows,
		func(r keyed) []any { return []any{s.TenantID, s.Env, r.Key, ms(r.CreatedAt), r.answer} }, ``)
	if err != nil {
		return fmt.Errorf("insert idempotency keys: %w", err)
	}
	return nil
}

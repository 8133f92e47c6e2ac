package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// Replay returns the stored response for key, if one was stored in the last
// IdempotencyTTL, after taking the key's lock so that concurrent requests
// with one key run one after the other. A record made by another method or
// path is an idempotency-key-reused error: reusing a key across endpoints is a
// client bug.
func (tx *Tx) Replay(ctx context.Context, key, method, path string) (rec store.IdempotencyRecord, found bool, err error) {
	if err := tx.q.IdempotencyLock(ctx, tx.scope, key); err != nil {
		return store.IdempotencyRecord{}, false, err
	}
	rec, err = tx.q.IdempotencyGet(ctx, tx.scope, key, tx.now.Add(-IdempotencyTTL))
	if errors.Is(err, store.ErrNotFound) {
		return store.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return store.IdempotencyRecord{}, false, err
	}
	if rec.Method != method || rec.Path != path {
		return store.IdempotencyRecord{}, false, reused(key, rec)
	}
	return rec, true, nil
}

func reused(key string, rec store.IdempotencyRecord) error {
	return credit.Errorf(credit.EIdempotencyReused,
		"Idempotency-Key %q was already used for %s %s; use a new key for a different request", key, rec.Method, rec.Path)
}

// Remember stores the response of a request that changed something, in the
// same transaction as the change.
func (tx *Tx) Remember(ctx context.Context, key, method, path string, status int, body []byte) error {
	err := tx.q.IdempotencyPut(ctx, tx.scope, store.IdempotencyRecord{
		Key: key, Method: method, Path: path, Status: status, Body: body, CreatedAt: tx.now,
	}, tx.now.Add(-IdempotencyTTL))
	if err != nil {
		return fmt.Errorf("remember idempotency key: %w", err)
	}
	return nil
}

// PeekReplay is Replay outside a transaction, without the lock: the cheap
// first look that lets a retry be answered before its body is parsed. The
// transaction looks again.
func (s *Service) PeekReplay(ctx context.Context, scope store.Scope, key, method, path string) (store.IdempotencyRecord, bool, error) {
	rec, err := s.store.IdempotencyGet(ctx, scope, key, s.Now().Add(-IdempotencyTTL))
	if errors.Is(err, store.ErrNotFound) {
		return store.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return store.IdempotencyRecord{}, false, err
	}
	if rec.Method != method || rec.Path != path {
		return store.IdempotencyRecord{}, false, reused(key, rec)
	}
	return rec, true, nil
}

// PurgeIdempotency deletes the records that can no longer be replayed. It
// writes, so it runs in a transaction like every write.
func (s *Service) PurgeIdempotency(ctx context.Context) (int64, error) {
	var n int64
	err := s.store.Transact(ctx, func(q store.Q) error {
		var err error
		n, err = q.IdempotencyPurge(ctx, s.Now().Add(-IdempotencyTTL))
		return err
	})
	return n, err
}

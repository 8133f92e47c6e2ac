package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"

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

// LockInOrder takes, up front, the locks of a transaction that touches
// several keys and customers (a usage batch), in the one global order: the
// idempotency keys sorted, then the accounts sorted by customer id. Two such
// transactions then wait for each other instead of deadlocking; the use cases
// take the same locks again later, which holding them already makes free.
// Customers that do not exist yet have no lock to take.
func (tx *Tx) LockInOrder(ctx context.Context, keys []string, customers []CustomerRef) error {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if err := tx.q.IdempotencyLock(ctx, tx.scope, k); err != nil {
			return err
		}
	}
	var ids []string
	for _, ref := range customers {
		c, err := findCustomer(ctx, tx.q, tx.scope, ref)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if _, err := tx.q.AccountLock(ctx, tx.scope, id); err != nil {
			return fmt.Errorf("lock account of customer %s: %w", id, err)
		}
	}
	return nil
}

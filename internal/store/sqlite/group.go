package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// The group-commit methods run one prepared statement per row: SQLite runs
// in this process, so a statement costs no round trip, and a multi-row
// statement would do the same work per row after parsing a longer text.

// IdempotencyLockAll is a no-op: the IMMEDIATE transaction already
// serializes every writer of the database.
func (c conn) IdempotencyLockAll(ctx context.Context, keys []store.IdemKey) error {
	if !c.inTx {
		return fmt.Errorf("idempotency locks outside a transaction")
	}
	return nil
}

func (c conn) IdempotencyGetAll(ctx context.Context, keys []store.IdemKey, since time.Time) ([]store.IdemRecord, error) {
	var out []store.IdemRecord
	for _, k := range keys {
		r := store.IdemRecord{Scope: k.Scope, IdempotencyRecord: store.IdempotencyRecord{Key: k.Key}}
		var created int64
		err := c.queryRow(ctx, `SELECT method, path, status, body, created_at FROM idempotency_keys
			WHERE tenant_id = ? AND env = ? AND key = ? AND created_at >= ?`, k.Scope.TenantID, k.Scope.Env, k.Key, ms(since)).
			Scan(&r.Method, &r.Path, &r.Status, &r.Body, &created)
		if err = interpretError(err); err == store.ErrNotFound {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("select idempotency keys: %w", err)
		}
		r.CreatedAt = fromMS(created)
		out = append(out, r)
	}
	return out, nil
}

func (c conn) CustomerIDsByExternal(ctx context.Context, s store.Scope, externalIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(externalIDs))
	for _, ext := range externalIDs {
		var id string
		err := c.queryRow(ctx, `SELECT id FROM customers WHERE tenant_id = ? AND env = ? AND external_id = ?`,
			s.TenantID, s.Env, ext).Scan(&id)
		if err = interpretError(err); err == store.ErrNotFound {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("select customers by external id: %w", err)
		}
		out[ext] = id
	}
	return out, nil
}

// AccountsLoad takes no row locks: the IMMEDIATE transaction holds the
// database's single write lock.
func (c conn) AccountsLoad(ctx context.Context, refs []store.CustomerRef) ([]store.AccountRow, error) {
	out := make([]store.AccountRow, 0, len(refs))
	for _, ref := range refs {
		cu, err := c.CustomerGet(ctx, ref.Scope, ref.CustomerID)
		if err == nil {
			var blocks []store.Block
			if blocks, err = c.BlockList(ctx, ref.Scope, ref.CustomerID); err != nil {
				return nil, err
			}
			out = append(out, store.AccountRow{Scope: ref.Scope, Customer: cu, Blocks: blocks})
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}

func (c conn) WritesApply(ctx context.Context, w *store.Writes) error {
	s := w.Scope
	for _, cu := range w.Customers {
		if err := c.CustomerCreate(ctx, s, cu); err != nil {
			return err
		}
	}
	for _, a := range w.Accounts {
		if err := c.AccountUpdate(ctx, s, a.CustomerID, a.Account); err != nil {
			return err
		}
	}
	for _, b := range w.Blocks {
		if err := c.BlockInsert(ctx, s, b); err != nil {
			return err
		}
	}
	for _, r := range w.Remaining {
		res, err := c.exec(ctx, `UPDATE blocks SET remaining_amount = ?
			WHERE tenant_id = ? AND env = ? AND customer_id = ? AND id = ?`, r.Remaining, s.TenantID, s.Env, r.CustomerID, r.BlockID)
		if err != nil {
			return fmt.Errorf("update block: %w", interpretError(err))
		}
		if err := mustAffect(res, "update block "+r.BlockID); err != nil {
			return err
		}
	}
	if err := c.LedgerAppend(ctx, s, w.Ledger); err != nil {
		return err
	}
	for _, e := range w.Usage {
		if err := c.UsageEventInsert(ctx, s, e); err != nil {
			return err
		}
	}
	for _, r := range w.Idempotency {
		if err := c.IdempotencyPut(ctx, s, r, w.Lapsed); err != nil {
			return err
		}
	}
	return nil
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// entryColumns reads an entry's metadata from what it refers to, where a
// request's metadata is stored once: the usage event, the granted block, the
// plan purchase.
// Entries written before that rule kept a copy of their own, which wins.
// Each lookup binds the referenced row's whole primary key.
const entryColumns = `l.seq, l.id, l.type, l.delta, l.balance_after, l.block_id, l.reference_type, l.reference_id,
	l.idempotency_key, l.transaction_id, COALESCE(l.metadata, CASE l.reference_type
		WHEN 'usage_event' THEN (SELECT u.metadata FROM usage_events u WHERE u.tenant_id = l.tenant_id
			AND u.env = l.env AND u.customer_id = l.customer_id AND u.id = l.reference_id)
		WHEN 'grant' THEN (SELECT b.metadata FROM blocks b WHERE b.tenant_id = l.tenant_id
			AND b.env = l.env AND b.customer_id = l.customer_id AND b.id = l.reference_id)
		WHEN 'plan_purchase' THEN (SELECT p.metadata FROM plan_purchases p WHERE p.tenant_id = l.tenant_id
			AND p.env = l.env AND p.id = l.reference_id)
	END), l.created_at`

func (c conn) LedgerList(ctx context.Context, s store.Scope, customerID, entryType string, p store.Page) ([]store.LedgerEntry, error) {
	before := int64(math.MaxInt64)
	if p.After != "" {
		v, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list ledger: cursor %q: %w", p.After, store.ErrNotFound)
		}
		before = v
	}
	// Two statements, not one with "(? = '' OR type = ?)": a filter that may
	// be off cannot bind an index column, and a list of one type would read
	// the customer's whole history to find its page.
	var rows *sql.Rows
	var err error
	if entryType == "" {
		rows, err = c.query(ctx, `SELECT `+entryColumns+` FROM ledger_entries l
			WHERE l.tenant_id = ? AND l.env = ? AND l.customer_id = ? AND l.seq < ?
			ORDER BY l.seq DESC LIMIT ?`, s.TenantID, s.Env, customerID, before, p.Limit)
	} else {
		rows, err = c.query(ctx, `SELECT `+entryColumns+` FROM ledger_entries l
			WHERE l.tenant_id = ? AND l.env = ? AND l.customer_id = ? AND l.type = ? AND l.seq < ?
			ORDER BY l.seq DESC LIMIT ?`, s.TenantID, s.Env, customerID, entryType, before, p.Limit)
	}
	return collect(rows, err, "list ledger", func(r scanner) (store.LedgerEntry, error) {
		e := store.LedgerEntry{CustomerID: customerID}
		var typ string
		var meta sql.NullString
		var created int64
		err := r.Scan(&e.Seq, &e.ID, &typ, &e.Delta, &e.BalanceAfter, &e.BlockID, &e.ReferenceType, &e.ReferenceID,
			&e.IdempotencyKey, &e.TransactionID, &meta, &created)
		if err != nil {
			return store.LedgerEntry{}, err
		}
		e.Type, e.Metadata, e.CreatedAt = credit.EntryType(typ), fromNullJSON(meta), fromMS(created)
		return e, nil
	})
}

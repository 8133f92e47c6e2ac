package postgres

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

const entryColumns = `seq, id, type, delta, balance_after, block_id, reference_type, reference_id,
	idempotency_key, metadata, created_at`

func (c conn) LedgerList(ctx context.Context, s store.Scope, customerID, entryType string, p store.Page) ([]store.LedgerEntry, error) {
	before := int64(math.MaxInt64)
	if p.After != "" {
		v, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list ledger: cursor %q: %w", p.After, store.ErrNotFound)
		}
		before = v
	}
	// Two statements, not one with "($5 = '' OR type = $5)": a filter that
	// may be off cannot bind an index column in a cached (generic) plan, and
	// a list of one type would read the customer's whole history to find its
	// page.
	var rows pgx.Rows
	var err error
	if entryType == "" {
		rows, err = c.q.Query(ctx, `SELECT `+entryColumns+` FROM ledger_entries
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND seq < $4
			ORDER BY seq DESC LIMIT $5`, s.TenantID, s.Env, customerID, before, p.Limit)
	} else {
		rows, err = c.q.Query(ctx, `SELECT `+entryColumns+` FROM ledger_entries
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND type = $4 AND seq < $5
			ORDER BY seq DESC LIMIT $6`, s.TenantID, s.Env, customerID, entryType, before, p.Limit)
	}
	return collect(rows, err, "list ledger", func(r scanner) (store.LedgerEntry, error) {
		e := store.LedgerEntry{CustomerID: customerID}
		var typ string
		var meta *string
		var created time.Time
		err := r.Scan(&e.Seq, &e.ID, &typ, &e.Delta, &e.BalanceAfter, &e.BlockID, &e.ReferenceType, &e.ReferenceID,
			&e.IdempotencyKey, &meta, &created)
		if err != nil {
			return store.LedgerEntry{}, err
		}
		e.Type, e.Metadata, e.CreatedAt = credit.EntryType(typ), fromNullJSON(meta), fromTS(created)
		return e, nil
	})
}

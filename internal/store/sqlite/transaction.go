package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/creditd/creditd/internal/store"
)

func (c conn) TransactionGet(ctx context.Context, s store.Scope, id string) (store.Transaction, error) {
	t := store.Transaction{ID: id}
	var meta sql.NullString
	var created int64
	err := c.queryRow(ctx, `SELECT body, metadata, created_at FROM transactions WHERE tenant_id = ? AND env = ? AND id = ?`,
		s.TenantID, s.Env, id).Scan(&t.Body, &meta, &created)
	if err != nil {
		return store.Transaction{}, fmt.Errorf("select transaction: %w", interpretError(err))
	}
	t.Metadata, t.CreatedAt = fromNullJSON(meta), fromMS(created)
	return t, nil
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/store"
)

func (c conn) TransactionGet(ctx context.Context, s store.Scope, id string) (store.Transaction, error) {
	t := store.Transaction{ID: id}
	var meta *string
	var created time.Time
	err := c.q.QueryRow(ctx, `SELECT body, metadata, created_at FROM transactions WHERE tenant_id = $1 AND env = $2 AND id = $3`,
		s.TenantID, s.Env, id).Scan(&t.Body, &meta, &created)
	if err != nil {
		return store.Transaction{}, fmt.Errorf("select transaction: %w", interpretError(err))
	}
	t.Metadata, t.CreatedAt = fromNullJSON(meta), fromTS(created)
	return t, nil
}

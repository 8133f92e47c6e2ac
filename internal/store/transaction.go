package store

import (
	"context"
	"encoding/json"
	"time"
)

// Transaction is a committed linked transaction, kept as its answer: its
// operations' rows are the ledger entries that carry its id.
type Transaction struct {
	ID        string
	Body      []byte // the 201 answer, as sent
	Metadata  json.RawMessage
	CreatedAt time.Time
}

// TransactionQ reads linked transactions, part of Q. They are written
// through WritesApply (Writes.Transactions).
type TransactionQ interface {
	TransactionGet(ctx context.Context, s Scope, id string) (Transaction, error)
}

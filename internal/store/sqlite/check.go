package sqlite

import (
	"context"
	"errors"

	"github.com/creditd/creditd/internal/store"
)

// CheckRead answers from the writer's memory of the committed accounts when
// it holds the customer and the metric's active rule (CheckMemo): a check
// then runs no statement. Otherwise it reads them in one read transaction,
// whose rule it offers to that memory. The memory is as fresh as a read
// transaction: the writer updates it before it answers the commands of the
// group that committed. Writes by another process on the file (not a
// supported set-up) reach it at the writer's next transaction, or within
// checkpointEvery when the writer is idle (probe).
func (db *DB) CheckRead(ctx context.Context, s store.Scope, customerID, externalID, metricKey string) (store.CheckSnapshot, error) {
	if row, rule, ok := db.CheckMemo(s, customerID, externalID, metricKey); ok {
		return store.CheckSnapshot{Account: row, Rule: rule, Ruled: true}, nil
	}
	var out store.CheckSnapshot
	err := db.Read(ctx, func(q store.Q) error {
		var cu store.Customer
		var err error
		if customerID != "" {
			cu, err = q.CustomerGet(ctx, s, customerID)
		} else {
			cu, err = q.CustomerByExternalID(ctx, s, externalID)
		}
		if err != nil {
			return err
		}
		out.Account = store.AccountRow{Scope: s, Customer: cu}
		out.Rule, err = q.RuleActive(ctx, s, metricKey)
		switch {
		case err == nil:
			out.Ruled = true
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if out.Account.Blocks, err = q.BlockList(ctx, s, cu.ID); err != nil {
			return err
		}
		if cu.Account.Reserved != 0 { // reserved is the sum of the active holds: none, no read
			out.Account.Holds, err = q.ReservationsActive(ctx, s, cu.ID)
		}
		return err
	})
	return out, err
}

// CheckMemo returns what CheckRead would answer from the writer's memory
// alone, and false when it would read the database (the tests see by it
// that the memory serves).
func (db *DB) CheckMemo(s store.Scope, customerID, externalID, metricKey string) (store.AccountRow, store.Rule, bool) {
	return db.wcache.checkMemo(s, customerID, externalID, metricKey)
}

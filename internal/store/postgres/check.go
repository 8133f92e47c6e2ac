package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/store"
)

// CheckRead sends its reads as one batch, in one round trip: BEGIN a
// read-only REPEATABLE READ transaction (one snapshot), the customer, the
// rule, the blocks and the holds — the last two find the customer through
// its key in the statement itself, so that none waits for another's answer
// — and COMMIT. As a read transaction with a statement each, a check
// waited for six round trips, each a wake-up of the server's backend and
// of our goroutine.
//
// A statement that fails leaves the batch's transaction open (the server
// skips to the end of the batch): the pool then closes the connection
// instead of reusing it.
func (db *DB) CheckRead(ctx context.Context, s store.Scope, customerID, externalID, metricKey string) (store.CheckSnapshot, error) {
	by, key, owner := "id = $3", customerID, "$3"
	if customerID == "" {
		by, key = "external_id = $3", externalID
		owner = `(SELECT id FROM customers WHERE tenant_id = $1 AND env = $2 AND external_id = $3)`
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
	b.Queue(`SELECT `+customerColumns+` FROM customers WHERE tenant_id = $1 AND env = $2 AND `+by, s.TenantID, s.Env, key)
	b.Queue(`SELECT `+ruleColumns+` FROM metering_rules
		WHERE tenant_id = $1 AND env = $2 AND metric_key = $3 AND active`, s.TenantID, s.Env, metricKey)
	b.Queue(`SELECT customer_id, `+blockColumns+` FROM blocks
		WHERE tenant_id = $1 AND env = $2 AND customer_id = `+owner+` AND live ORDER BY seq`, s.TenantID, s.Env, key)
	b.Queue(`SELECT `+reservationColumns+` FROM reservations
		WHERE tenant_id = $1 AND env = $2 AND customer_id = `+owner+` AND status = 'active' ORDER BY id`, s.TenantID, s.Env, key)
	b.Queue("COMMIT")
	br := db.pool.SendBatch(ctx, b)
	out, err := checkResults(s, br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("check read: %w", interpretError(cerr))
	}
	return out, err
}

func checkResults(s store.Scope, br pgx.BatchResults) (store.CheckSnapshot, error) {
	var out store.CheckSnapshot
	if _, err := br.Exec(); err != nil {
		return out, fmt.Errorf("begin check read: %w", interpretError(err))
	}
	cu, err := scanCustomer(br.QueryRow())
	if err != nil {
		return out, fmt.Errorf("select customer: %w", interpretError(err))
	}
	out.Account = store.AccountRow{Scope: s, Customer: cu}
	out.Rule, err = scanRule(br.QueryRow())
	switch {
	case err == nil:
		out.Ruled = true
	case !errors.Is(err, pgx.ErrNoRows):
		return out, fmt.Errorf("select active rule: %w", interpretError(err))
	}
	rows, err := br.Query()
	if out.Account.Blocks, err = collect(rows, err, "list blocks", scanBlock); err != nil {
		return out, err
	}
	rows, err = br.Query()
	if out.Account.Holds, err = collect(rows, err, "list active reservations", scanReservation); err != nil {
		return out, err
	}
	if _, err := br.Exec(); err != nil {
		return out, fmt.Errorf("commit check read: %w", interpretError(err))
	}
	return out, nil
}

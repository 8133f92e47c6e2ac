package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/internal/store"
)

// CheckRead answers from what an earlier CheckRead of this instance read,
// once one statement showed it is still what the database holds: the
// customer's version, which every change of its account, blocks or holds
// bumps (one transaction writes them together), and the id of the metric's
// active rule (a rule never changes; a new one gets a new id). Other
// instances write the same database, so nothing is served without that
// statement. Otherwise, or when either differs, it reads them (readCheck)
// and keeps them for the next check.
func (db *DB) CheckRead(ctx context.Context, s store.Scope, customerID, externalID, metricKey string) (store.CheckSnapshot, error) {
	if snap, ok := db.checks.get(s, customerID, externalID, metricKey); ok {
		var version int64
		var ruleID *string
		err := db.pool.QueryRow(ctx, `SELECT c.version, (SELECT r.id FROM metering_rules r
			WHERE r.tenant_id = $1 AND r.env = $2 AND r.metric_key = $4 AND r.active) FROM customers c
			WHERE c.tenant_id = $1 AND c.env = $2 AND c.id = $3`,
			s.TenantID, s.Env, snap.Account.Customer.ID, metricKey).Scan(&version, &ruleID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return store.CheckSnapshot{}, fmt.Errorf("check read: %w", interpretError(err))
		}
		if err == nil && version == snap.Account.Customer.Account.Version && ruleID != nil && *ruleID == snap.Rule.ID {
			return snap, nil
		}
	}
	snap, err := db.readCheck(ctx, s, customerID, externalID, metricKey)
	if err == nil {
		db.checks.put(s, metricKey, snap)
	}
	return snap, err
}

// readCheck sends its reads as one batch, in one round trip: BEGIN a
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
func (db *DB) readCheck(ctx context.Context, s store.Scope, customerID, externalID, metricKey string) (store.CheckSnapshot, error) {
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

// checkCache keeps what CheckRead read, by customer and by metric. Entries
// are only a guess at the database's state: CheckRead checks each against
// it before use, so a stale or racing put costs a read, never a wrong
// answer. Customers and rules are never deleted, so an external id keeps
// its customer.
type checkCache struct {
	mu    sync.Mutex
	rows  map[checkKey]store.AccountRow
	ext   map[checkKey]string // external id → customer id
	rules map[checkKey]store.Rule
}

type checkKey struct {
	scope store.Scope
	key   string
}

// maxCheckCached bounds the accounts (and rules) kept; past it the cache
// starts over.
const maxCheckCached = 100_000

func newCheckCache() *checkCache {
	return &checkCache{rows: make(map[checkKey]store.AccountRow), ext: make(map[checkKey]string), rules: make(map[checkKey]store.Rule)}
}

func (cc *checkCache) get(s store.Scope, customerID, externalID, metricKey string) (store.CheckSnapshot, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if customerID == "" {
		id, ok := cc.ext[checkKey{s, externalID}]
		if !ok {
			return store.CheckSnapshot{}, false
		}
		customerID = id
	}
	row, ok := cc.rows[checkKey{s, customerID}]
	rule, ruled := cc.rules[checkKey{s, metricKey}]
	if !ok || !ruled {
		return store.CheckSnapshot{}, false
	}
	rule.Tiers = slices.Clone(rule.Tiers)
	return store.CheckSnapshot{Account: row.Clone(), Rule: rule, Ruled: true}, true
}

func (cc *checkCache) put(s store.Scope, metricKey string, snap store.CheckSnapshot) {
	row := snap.Account.Clone()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.rows) >= maxCheckCached || len(cc.rules) >= maxCheckCached {
		clear(cc.rows)
		clear(cc.ext)
		clear(cc.rules)
	}
	cc.rows[checkKey{s, row.Customer.ID}] = row
	if row.Customer.ExternalID != "" {
		cc.ext[checkKey{s, row.Customer.ExternalID}] = row.Customer.ID
	}
	if snap.Ruled {
		rule := snap.Rule
		rule.Tiers = slices.Clone(rule.Tiers)
		cc.rules[checkKey{s, metricKey}] = rule
	}
}

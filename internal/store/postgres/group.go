package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/creditd/creditd/internal/store"
)

// The group-commit methods answer each call in one round trip: many rows go
// to the server as arrays that a statement unnests, and the statements of one
// call travel together in one batch. A round trip, not the work per row, is
// what a group pays most for, and one statement text per kind of row keeps
// pgx's statement cache small whatever the size of the group.

// IdempotencyLockAll takes a transaction-scoped advisory lock per key, in one
// statement, in the order of their 64-bit hashes: two groups that share keys
// then wait for each other instead of deadlocking, on every instance, even
// before any row for a key exists. The locks are taken after the sort, since
// PostgreSQL evaluates a volatile function of the select list above the
// ORDER BY's sort (the plan test checks this).
func (c conn) IdempotencyLockAll(ctx context.Context, keys []store.IdemKey) error {
	if !c.inTx {
		return fmt.Errorf("idempotency locks outside a transaction")
	}
	if len(keys) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	queueIdemLock(b, keys)
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("lock idempotency keys: %w", interpretError(err))
	}
	return nil
}

func queueIdemLock(b *pgx.Batch, keys []store.IdemKey) {
	texts := make([]string, len(keys))
	for i, k := range keys {
		texts[i] = k.Scope.TenantID + "/" + k.Scope.Env + "/" + k.Key
	}
	b.Queue(`SELECT pg_advisory_xact_lock(h)
		FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k) AS hashes
		ORDER BY h`, texts)
}

func (c conn) IdempotencyGetAll(ctx context.Context, keys []store.IdemKey, since time.Time) ([]store.IdemRecord, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	// since is applied here, not in SQL: a created_at condition would let the
	// planner walk idempotency_keys_created through every tenant's recent
	// keys when its statistics say few are recent, a cost that grows with
	// traffic; the primary key finds at most one row per key either way.
	var recs []store.IdemRecord
	b := &pgx.Batch{}
	queueIdemGet(b, keys, &recs)
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("select idempotency keys: %w", interpretError(err))
	}
	return sinceFilter(recs, since), nil
}

func sinceFilter(recs []store.IdemRecord, since time.Time) []store.IdemRecord {
	return slices.DeleteFunc(recs, func(r store.IdemRecord) bool { return r.CreatedAt.Before(ms(since)) })
}

// queueIdemGet queues the reads of keys' records into *recs.
func queueIdemGet(b *pgx.Batch, keys []store.IdemKey, recs *[]store.IdemRecord) {
	scopes, names := groupByScope(keys, func(k store.IdemKey) (store.Scope, string) { return k.Scope, k.Key })
	for _, s := range scopes {
		b.Queue(`SELECT key, method, path, status, body, created_at FROM idempotency_keys
			WHERE tenant_id = $1 AND env = $2 AND key = ANY ($3::text[])`, s.TenantID, s.Env, names[s]).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				rec := store.IdemRecord{Scope: s}
				var created time.Time
				if err := rows.Scan(&rec.Key, &rec.Method, &rec.Path, &rec.Status, &rec.Body, &created); err != nil {
					return err
				}
				rec.CreatedAt = fromTS(created)
				*recs = append(*recs, rec)
			}
			return rows.Err()
		})
	}
}

func (c conn) CustomerIDsByExternal(ctx context.Context, s store.Scope, externalIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(externalIDs))
	if len(externalIDs) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	queueExternalIDs(b, s, externalIDs, out)
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("select customers by external id: %w", interpretError(err))
	}
	return out, nil
}

func queueExternalIDs(b *pgx.Batch, s store.Scope, externalIDs []string, out map[string]string) {
	b.Queue(`SELECT external_id, id FROM customers
		WHERE tenant_id = $1 AND env = $2 AND external_id = ANY ($3::text[])`, s.TenantID, s.Env, externalIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ext, id string
			if err := rows.Scan(&ext, &id); err != nil {
				return err
			}
			out[ext] = id
		}
		return rows.Err()
	})
}

// GroupPrepare sends its reads as one batch. The batch runs in order, so
// the key locks are held before their records are read, as with
// IdempotencyLockAll then IdempotencyGetAll.
func (c conn) GroupPrepare(ctx context.Context, r store.GroupReads) (store.GroupPrepared, error) {
	out := store.GroupPrepared{Configs: make(map[store.Scope]store.TenantConfig), IDs: make(map[store.Scope]map[string]string)}
	b := &pgx.Batch{}
	var recs []store.IdemRecord
	if len(r.Keys) > 0 {
		if !c.inTx {
			return out, fmt.Errorf("idempotency locks outside a transaction")
		}
		queueIdemLock(b, r.Keys)
		queueIdemGet(b, r.Keys, &recs)
	}
	for _, s := range r.Configs {
		queueConfigGet(b, s, out.Configs)
	}
	for s, exts := range r.Externals {
		out.IDs[s] = make(map[string]string, len(exts))
		if len(exts) > 0 {
			queueExternalIDs(b, s, exts, out.IDs[s])
		}
	}
	if b.Len() == 0 {
		return out, nil
	}
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return out, fmt.Errorf("group reads: %w", interpretError(err))
	}
	out.Records = sinceFilter(recs, r.Since)
	return out, nil
}

// AccountsLoad locks the customer rows in (tenant, environment, id) order,
// LockRows running above the sort (the plan test checks this), so that
// groups sharing customers queue instead of deadlocking. All its statements
// go in one batch: the blocks' and the holds' start after the customers' has
// its locks, and at READ COMMITTED they then see every block and hold
// committed by the previous holders of those locks.
func (c conn) AccountsLoad(ctx context.Context, keys []store.CustomerKey) ([]store.AccountRow, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	// Three statements per scope, the scopes in order, each binding its ids
	// with = ANY: an index led by the key then serves them whatever the
	// statistics say (see WritesApply).
	scopes, ids := groupByScope(keys, func(k store.CustomerKey) (store.Scope, string) { return k.Scope, k.CustomerID })
	var out []store.AccountRow
	index := make(map[store.CustomerKey]int, len(keys))
	b := &pgx.Batch{}
	for _, s := range scopes {
		b.Queue(`SELECT `+customerColumns+` FROM customers
			WHERE tenant_id = $1 AND env = $2 AND id = ANY ($3::text[])
			ORDER BY id
			FOR UPDATE`, s.TenantID, s.Env, ids[s]).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				cu, err := scanCustomer(rows)
				if err != nil {
					return err
				}
				index[store.CustomerKey{Scope: s, CustomerID: cu.ID}] = len(out)
				out = append(out, store.AccountRow{Scope: s, Customer: cu})
			}
			return rows.Err()
		})
	}
	for _, s := range scopes {
		b.Queue(`SELECT customer_id, `+blockColumns+` FROM blocks
			WHERE tenant_id = $1 AND env = $2 AND customer_id = ANY ($3::text[]) AND live
			ORDER BY customer_id, seq`, s.TenantID, s.Env, ids[s]).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				bl, err := scanBlock(rows)
				if err != nil {
					return err
				}
				// A block of a customer that vanished between the two
				// statements has no row; customers are never deleted.
				if i, ok := index[store.CustomerKey{Scope: s, CustomerID: bl.CustomerID}]; ok {
					out[i].Blocks = append(out[i].Blocks, bl)
				}
			}
			return rows.Err()
		})
	}
	// status by its value, not a parameter: only then may a cached (generic)
	// plan read the partial index of active holds.
	for _, s := range scopes {
		b.Queue(`SELECT `+reservationColumns+` FROM reservations
			WHERE tenant_id = $1 AND env = $2 AND customer_id = ANY ($3::text[]) AND status = 'active'
			ORDER BY customer_id, id`, s.TenantID, s.Env, ids[s]).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				r, err := scanReservation(rows)
				if err != nil {
					return err
				}
				if i, ok := index[store.CustomerKey{Scope: s, CustomerID: r.CustomerID}]; ok {
					out[i].Holds = append(out[i].Holds, r)
				}
			}
			return rows.Err()
		})
	}
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("load accounts: %w", interpretError(err))
	}
	return out, nil
}

// groupByScope splits keyed values by scope, without repeats, the scopes
// sorted (tenant, then environment) so that locks taken scope by scope keep
// one global order.
func groupByScope[T any](items []T, key func(T) (store.Scope, string)) ([]store.Scope, map[store.Scope][]string) {
	var scopes []store.Scope
	values := make(map[store.Scope][]string)
	seen := make(map[store.Scope]map[string]bool)
	for _, it := range items {
		s, v := key(it)
		if seen[s] == nil {
			seen[s] = make(map[string]bool)
			scopes = append(scopes, s)
		}
		if !seen[s][v] {
			seen[s][v] = true
			values[s] = append(values[s], v)
		}
	}
	slices.SortFunc(scopes, func(a, b store.Scope) int {
		return cmp.Or(cmp.Compare(a.TenantID, b.TenantID), cmp.Compare(a.Env, b.Env))
	})
	return scopes, values
}

// WritesApply sends everything in one batch, one round trip, in the order of
// Writes' fields: one multi-row statement per kind of inserted row, and one
// statement per updated row that binds its whole primary key. An update
// joined to unnested arrays was planned, while the table's statistics lagged
// its growth, as a walk through the whole tenant's rows (measured: 50 ms for
// 8 blocks of 10,000); a fully bound key leaves the planner one plan. A short row count fails the call, and the
// caller's rollback undoes the statements that ran after it.
func (c conn) WritesApply(ctx context.Context, w *store.Writes) error {
	s := w.Scope
	b := &pgx.Batch{}
	if n := len(w.Customers); n > 0 {
		ids, exts, names, metas := make([]string, n), make([]*string, n), make([]string, n), make([]*string, n)
		created := make([]time.Time, n)
		bal, res, earned, ver := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, cu := range w.Customers {
			ids[i], exts[i], names[i], metas[i], created[i] = cu.ID, nullText(cu.ExternalID), cu.DisplayName, nullJSON(cu.Metadata), ms(cu.CreatedAt)
			a := cu.Account
			bal[i], res[i], earned[i], ver[i] = a.Balance, a.Reserved, a.LifetimeEarned, a.Version
		}
		queueRows(b, "insert customers", n, store.ErrConflict, `INSERT INTO customers (tenant_id, env, `+customerColumns+`)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
				$8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])`,
			s.TenantID, s.Env, ids, exts, names, metas, created, bal, res, earned, ver)
	}
	if accounts := lastPerKey(w.Accounts, func(a store.AccountUpdate) string { return a.CustomerID }); len(accounts) > 0 {
		n := len(accounts)
		ids, bal, res, earned, ver := make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, a := range accounts {
			ids[i], bal[i], res[i], earned[i], ver[i] = a.CustomerID, a.Account.Balance, a.Account.Reserved, a.Account.LifetimeEarned, a.Account.Version
		}
		for i := range ids {
			queueRows(b, "update account", 1, store.ErrNotFound, `UPDATE customers
				SET balance = $4, reserved = $5, lifetime_earned = $6, version = $7
				WHERE tenant_id = $1 AND env = $2 AND id = $3`,
				s.TenantID, s.Env, ids[i], bal[i], res[i], earned[i], ver[i])
		}
	}
	if n := len(w.Blocks); n > 0 {
		cust, ids := make([]string, n), make([]string, n)
		seq, orig, rem, paid := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		prio := make([]int32, n)
		expires := make([]pgtype.Timestamptz, n)
		source, reason, currency, payment := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		metas, created := make([]*string, n), make([]time.Time, n)
		for i, bl := range w.Blocks {
			cust[i], ids[i], seq[i], orig[i], rem[i], prio[i] = bl.CustomerID, bl.ID, bl.Seq, bl.Original, bl.Remaining, int32(bl.Priority)
			expires[i], paid[i], source[i], reason[i] = nullTS(bl.ExpiresAt), bl.PricePaid, bl.Source, bl.Reason
			currency[i], payment[i], metas[i], created[i] = bl.Currency, bl.ExternalPaymentID, nullJSON(bl.Metadata), ms(bl.CreatedAt)
		}
		// live is remaining_amount > 0 (migration 00007): a block granted and
		// used up in one group is inserted dead.
		queueRows(b, "insert blocks", n, store.ErrConflict, `INSERT INTO blocks (tenant_id, env, customer_id, `+blockColumns+`, live)
			SELECT $1, $2, *, remaining_amount > 0 FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::integer[],
				$9::timestamptz[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::timestamptz[])
				AS u (customer_id, id, seq, original_amount, remaining_amount, priority, expires_at, price_paid,
					source, reason, currency, external_payment_id, metadata, created_at)`,
			s.TenantID, s.Env, cust, ids, seq, orig, rem, prio, expires, paid, source, reason, currency, payment, metas, created)
	}
	type blockKey struct{ customer, block string }
	if remaining := lastPerKey(w.Remaining, func(r store.BlockRemaining) blockKey { return blockKey{r.CustomerID, r.BlockID} }); len(remaining) > 0 {
		n := len(remaining)
		cust, ids, rem := make([]string, n), make([]string, n), make([]int64, n)
		for i, r := range remaining {
			cust[i], ids[i], rem[i] = r.CustomerID, r.BlockID, r.Remaining
		}
		// Only a block used up changes live: the update of one that keeps
		// credits touches no indexed column and stays heap-only (HOT).
		for i := range ids {
			if rem[i] > 0 {
				queueRows(b, "update block", 1, store.ErrNotFound, `UPDATE blocks SET remaining_amount = $5
					WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND id = $4`,
					s.TenantID, s.Env, cust[i], ids[i], rem[i])
				continue
			}
			queueRows(b, "use up block", 1, store.ErrNotFound, `UPDATE blocks SET remaining_amount = 0, live = false
				WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND id = $4`,
				s.TenantID, s.Env, cust[i], ids[i])
		}
	}
	if len(w.Ledger) > 0 {
		queueLedger(b, s, w.Ledger)
	}
	if n := len(w.Usage); n > 0 {
		cust, ids, metrics, keys := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		units, cost, metas, created := make([]int64, n), make([]int64, n), make([]*string, n), make([]time.Time, n)
		for i, e := range w.Usage {
			cust[i], ids[i], metrics[i], keys[i] = e.CustomerID, e.ID, e.MetricKey, e.IdempotencyKey
			units[i], cost[i], metas[i], created[i] = e.Units, e.Cost, nullJSON(e.Metadata), ms(e.CreatedAt)
		}
		queueRows(b, "insert usage events", n, store.ErrConflict, `INSERT INTO usage_events (tenant_id, env, customer_id, id,
				metric_key, units, cost, idempotency_key, metadata, created_at)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[],
				$9::text[], $10::timestamptz[])`,
			s.TenantID, s.Env, cust, ids, metrics, units, cost, keys, metas, created)
	}
	if n := len(w.Purchases); n > 0 {
		cust, ids, plans, orders, blocks := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		price, credits, after, effective := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		debits, metas, created := make([]string, n), make([]*string, n), make([]time.Time, n)
		for i, p := range w.Purchases {
			cust[i], ids[i], plans[i], orders[i], blocks[i] = p.CustomerID, p.ID, p.PlanKey, p.OrderID, p.BlockID
			price[i], credits[i], after[i], effective[i] = p.Price, p.Credits, p.BalanceAfter, p.EffectiveBalance
			debits[i], metas[i], created[i] = debitsJSON(p.Debits), nullJSON(p.Metadata), ms(p.CreatedAt)
		}
		queueRows(b, "insert plan purchases", n, store.ErrConflict, `INSERT INTO plan_purchases (tenant_id, env, `+purchaseColumns+`)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
				$9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[], $14::timestamptz[])`,
			s.TenantID, s.Env, cust, ids, plans, orders, price, credits, blocks, debits, after, effective, metas, created)
	}
	if n := len(w.Transactions); n > 0 {
		ids, bodies, metas, created := make([]string, n), make([][]byte, n), make([]*string, n), make([]time.Time, n)
		for i, t := range w.Transactions {
			ids[i], bodies[i], metas[i], created[i] = t.ID, t.Body, nullJSON(t.Metadata), ms(t.CreatedAt)
		}
		queueRows(b, "insert transactions", n, store.ErrConflict, `INSERT INTO transactions (tenant_id, env, id, body, metadata, created_at)
			SELECT $1, $2, * FROM unnest($3::text[], $4::bytea[], $5::text[], $6::timestamptz[])`,
			s.TenantID, s.Env, ids, bodies, metas, created)
	}
	if n := len(w.Reservations); n > 0 {
		cust, ids, metrics, status := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		units, amount, committed, released := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		expires, created, updated, metas := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]*string, n)
		for i, r := range w.Reservations {
			cust[i], ids[i], metrics[i], units[i], amount[i], status[i] = r.CustomerID, r.ID, r.MetricKey, r.EstimatedUnits, r.Amount, r.Status
			expires[i], committed[i], released[i], metas[i] = ms(r.ExpiresAt), r.CommittedAmount, r.ReleasedAmount, nullJSON(r.Metadata)
			created[i], updated[i] = ms(r.CreatedAt), ms(r.UpdatedAt)
		}
		queueRows(b, "insert reservations", n, store.ErrConflict, `INSERT INTO reservations (tenant_id, env, `+reservationColumns+`)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[],
				$9::timestamptz[], $10::bigint[], $11::bigint[], $12::text[], $13::timestamptz[], $14::timestamptz[])`,
			s.TenantID, s.Env, cust, ids, metrics, units, amount, status, expires, committed, released, metas, created, updated)
	}
	type reservationKey struct{ customer, id string }
	updates := lastPerKey(w.ReservationUpdates, func(r store.Reservation) reservationKey { return reservationKey{r.CustomerID, r.ID} })
	for _, r := range updates {
		queueRows(b, "update reservation", 1, store.ErrNotFound, `UPDATE reservations
			SET status = $5, committed_amount = $6, released_amount = $7, updated_at = $8
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND id = $4`,
			s.TenantID, s.Env, r.CustomerID, r.ID, r.Status, r.CommittedAmount, r.ReleasedAmount, ms(r.UpdatedAt))
	}
	if n := len(w.Idempotency); n > 0 {
		keys, methods, paths := make([]string, n), make([]string, n), make([]string, n)
		status, bodies, created := make([]int32, n), make([][]byte, n), make([]time.Time, n)
		seen := make(map[string]bool, n)
		for i, r := range w.Idempotency {
			// One statement cannot write a key twice (PostgreSQL refuses it);
			// the second record of a key meets the first, live, record.
			if seen[r.Key] {
				return fmt.Errorf("insert idempotency keys: %q twice: %w", r.Key, store.ErrConflict)
			}
			seen[r.Key] = true
			keys[i], methods[i], paths[i], status[i], bodies[i], created[i] = r.Key, r.Method, r.Path, int32(r.Status), r.Body, ms(r.CreatedAt)
		}
		// A lapsed record is replaced, a live one is left alone, and the row
		// count tells the two apart.
		queueRows(b, "insert idempotency keys", n, store.ErrConflict, `INSERT INTO idempotency_keys
				(tenant_id, env, key, method, path, status, body, created_at)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::integer[], $7::bytea[], $8::timestamptz[])
			ON CONFLICT (tenant_id, env, key) DO UPDATE SET method = excluded.method, path = excluded.path,
				status = excluded.status, body = excluded.body, created_at = excluded.created_at
			WHERE idempotency_keys.created_at < $9`,
			s.TenantID, s.Env, keys, methods, paths, status, bodies, created, ms(w.Lapsed))
	}
	if len(w.Events) > 0 {
		queueWebhookEvents(b, s, w.Events)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply writes: %w", interpretError(err))
	}
	return nil
}

// queueRows queues a statement that must write n rows, failing with short
// (wrapped, named by what) when it writes fewer.
func queueRows(b *pgx.Batch, what string, n int, short error, sql string, args ...any) {
	b.Queue(sql, args...).Exec(func(tag pgconn.CommandTag) error {
		if got := tag.RowsAffected(); got != int64(n) {
			return fmt.Errorf("%s: %d of %d rows written: %w", what, got, n, short)
		}
		return nil
	})
}

// queueLedger queues the entries' insert, in the slice's order: rows are
// inserted in the order of the sorted ordinality, so the identity that
// numbers them (Seq) follows the slice. Seq is not read back (see
// store.Writes).
func queueLedger(b *pgx.Batch, s store.Scope, entries []store.LedgerEntry) {
	n := len(entries)
	cust, ids, types, blocks := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	delta, after := make([]int64, n), make([]int64, n)
	refTypes, refIDs, keys, txs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	created := make([]time.Time, n)
	for i, e := range entries {
		cust[i], ids[i], types[i], blocks[i], delta[i], after[i] = e.CustomerID, e.ID, string(e.Type), e.BlockID, e.Delta, e.BalanceAfter
		refTypes[i], refIDs[i], keys[i], txs[i], created[i] = e.ReferenceType, e.ReferenceID, e.IdempotencyKey, e.TransactionID, ms(e.CreatedAt)
	}
	// Entries carry no metadata of their own (store.LedgerEntry): the column
	// stays NULL, and LedgerList reads it from the reference.
	queueRows(b, "append ledger entries", n, store.ErrConflict, `INSERT INTO ledger_entries (tenant_id, env, customer_id, id, type,
			delta, balance_after, block_id, reference_type, reference_id, idempotency_key, transaction_id, created_at)
		SELECT $1, $2, customer_id, id, type, delta, balance_after, block_id, reference_type, reference_id,
			idempotency_key, transaction_id, created_at
		FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[],
				$11::text[], $12::text[], $13::timestamptz[])
			WITH ORDINALITY AS u (customer_id, id, type, delta, balance_after, block_id, reference_type, reference_id,
				idempotency_key, transaction_id, created_at, ord)
		ORDER BY ord`,
		s.TenantID, s.Env, cust, ids, types, delta, after, blocks, refTypes, refIDs, keys, txs, created)
}

// lastPerKey keeps the last of the items with one key, in the order of their
// first appearance: an update statement applies a row once however often the
// arrays name it, and the last value is the one a run of single updates
// would leave.
func lastPerKey[T any, K comparable](items []T, key func(T) K) []T {
	at := make(map[K]int, len(items))
	out := make([]T, 0, len(items))
	for _, it := range items {
		k := key(it)
		if i, ok := at[k]; ok {
			out[i] = it
			continue
		}
		at[k] = len(out)
		out = append(out, it)
	}
	return out
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/creditd/creditd/internal/store"
)

// The group-commit methods read and write many rows per statement: SQLite
// runs in this process, so a statement costs no round trip, but each one
// still pays for its start, binding and driver crossing, which dominated the
// grouped write path when it ran one statement per row. Lists are cut into
// chunks of a few fixed sizes, so that a handful of prepared statements
// serve every group.

// chunk is the largest statement size that fits n rows.
func chunk(n int) int {
	for _, size := range []int{64, 16, 4} {
		if n >= size {
			return size
		}
	}
	return 1
}

// placeholders is "(?, ?), (?, ?)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// inChunks calls run once per chunk of values, with query's "IN (%s)"
// sized for the chunk and before and after as the other arguments. A short
// last chunk is padded with its first value, which changes nothing in an IN
// list.
func inChunks(query string, before []any, values []string, after []any, run func(query string, args []any) error) error {
	for len(values) > 0 {
		n := min(len(values), 64)
		size := 64
		for _, s := range []int{1, 4, 16, 64} {
			if n <= s {
				size = s
				break
			}
		}
		args := append([]any{}, before...)
		for i := range size {
			args = append(args, values[min(i, n-1)])
		}
		args = append(args, after...)
		if err := run(fmt.Sprintf(query, strings.TrimSuffix(strings.Repeat("?, ", size), ", ")), args); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}

// inList runs query once per chunk of values (see inChunks), calling row
// for each row it returns.
func (c conn) inList(ctx context.Context, query string, before []any, values []string, after []any, row func(scanner) error) error {
	return inChunks(query, before, values, after, func(query string, args []any) error {
		rows, err := c.query(ctx, query, args...)
		if err != nil {
			return interpretError(err)
		}
		for rows.Next() {
			if err := row(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return interpretError(err)
		}
		return interpretError(rows.Err())
	})
}

// inListExec runs the statement query once per chunk of values (see
// inChunks).
func (c conn) inListExec(ctx context.Context, query string, before []any, values []string, after []any) error {
	return inChunks(query, before, values, after, func(query string, args []any) error {
		_, err := c.exec(ctx, query, args...)
		return interpretError(err)
	})
}

// IdempotencyLockAll is a no-op: the IMMEDIATE transaction already
// serializes every writer of the database.
func (c conn) IdempotencyLockAll(ctx context.Context, keys []store.IdemKey) error {
	if !c.inTx {
		return fmt.Errorf("idempotency locks outside a transaction")
	}
	return nil
}

// byScope splits keyed values by scope, keeping their order.
func byScope[T any](items []T, scopeOf func(T) store.Scope, value func(T) string) ([]store.Scope, map[store.Scope][]string) {
	var scopes []store.Scope
	m := make(map[store.Scope][]string)
	for _, it := range items {
		s := scopeOf(it)
		if _, ok := m[s]; !ok {
			scopes = append(scopes, s)
		}
		m[s] = append(m[s], value(it))
	}
	return scopes, m
}

func (c conn) CustomerIDsByExternal(ctx context.Context, s store.Scope, externalIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(externalIDs))
	missing := externalIDs
	if c.cache != nil {
		missing = nil
		for _, ext := range externalIDs {
			if id, ok := c.cache.ext[cacheKey{s, ext}]; ok {
				out[ext] = id
			} else {
				missing = append(missing, ext)
			}
		}
		if len(missing) == 0 {
			return out, nil
		}
	}
	err := c.inList(ctx, `SELECT external_id, id FROM customers WHERE tenant_id = ? AND env = ? AND external_id IN (%s)`,
		[]any{s.TenantID, s.Env}, missing, nil, func(sc scanner) error {
			var ext, id string
			if err := sc.Scan(&ext, &id); err != nil {
				return err
			}
			out[ext] = id
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("select customers by external id: %w", err)
	}
	return out, nil
}

// AccountsLoad takes no row locks: the IMMEDIATE transaction holds the
// database's single write lock. Accounts the writer's cache holds come from
// it; the others are read, and staged into it.
func (c conn) AccountsLoad(ctx context.Context, keys []store.CustomerKey) ([]store.AccountRow, error) {
	if c.cache == nil {
		return c.accountsRead(ctx, keys)
	}
	var out []store.AccountRow
	var missing []store.CustomerKey
	seen := make(map[cacheKey]bool, len(keys))
	for _, k := range keys {
		ck := cacheKey{k.Scope, k.CustomerID}
		if seen[ck] {
			continue
		}
		seen[ck] = true
		if r, ok := c.cache.row(ck); ok {
			out = append(out, r)
		} else {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	read, err := c.accountsRead(ctx, missing)
	if err != nil {
		return nil, err
	}
	c.cache.loaded(read)
	return append(out, read...), nil
}

func (c conn) accountsRead(ctx context.Context, keys []store.CustomerKey) ([]store.AccountRow, error) {
	var out []store.AccountRow
	scopes, m := byScope(keys, func(r store.CustomerKey) store.Scope { return r.Scope }, func(r store.CustomerKey) string { return r.CustomerID })
	for _, s := range scopes {
		index := make(map[string]int)
		err := c.inList(ctx, `SELECT `+customerColumns+` FROM customers WHERE tenant_id = ? AND env = ? AND id IN (%s)`,
			[]any{s.TenantID, s.Env}, m[s], nil, func(sc scanner) error {
				cu, err := scanCustomer(sc)
				if err != nil {
					return err
				}
				if _, dup := index[cu.ID]; !dup {
					index[cu.ID] = len(out)
					out = append(out, store.AccountRow{Scope: s, Customer: cu})
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("load accounts: %w", err)
		}
		ids := make([]string, 0, len(index))
		for id := range index {
			ids = append(ids, id)
		}
		seen := make(map[string]bool)
		err = c.inList(ctx, `SELECT customer_id, `+blockColumns+` FROM blocks
			WHERE tenant_id = ? AND env = ? AND customer_id IN (%s) AND live = 1 ORDER BY customer_id, seq`,
			[]any{s.TenantID, s.Env}, ids, nil, func(sc scanner) error {
				var customerID string
				b, err := scanBlock(sc, &customerID)
				if err != nil {
					return err
				}
				if !seen[b.ID] {
					seen[b.ID] = true
					row := &out[index[customerID]]
					row.Blocks = append(row.Blocks, b)
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("load blocks: %w", err)
		}
		// status by its value, as in ReservationsActive.
		seen = make(map[string]bool)
		err = c.inList(ctx, `SELECT `+reservationColumns+` FROM reservations
			WHERE tenant_id = ? AND env = ? AND customer_id IN (%s) AND status = 'active' ORDER BY customer_id, id`,
			[]any{s.TenantID, s.Env}, ids, nil, func(sc scanner) error {
				r, err := scanReservation(sc)
				if err != nil {
					return err
				}
				if !seen[r.ID] {
					seen[r.ID] = true
					row := &out[index[r.CustomerID]]
					row.Holds = append(row.Holds, r)
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("load reservations: %w", err)
		}
	}
	return out, nil
}

func (c conn) WritesApply(ctx context.Context, w *store.Writes) error {
	s := w.Scope
	for _, cu := range w.Customers {
		if err := c.customerInsert(ctx, s, cu); err != nil {
			return err
		}
	}
	// Updates name each row by its whole primary key, joined to the VALUES
	// list: one index search per row, one statement per chunk.
	err := insertRows(ctx, c, `UPDATE OR FAIL customers SET balance = v.column2, reserved = v.column3,
			lifetime_earned = v.column4, version = v.column5 FROM (VALUES `, 5, w.Accounts,
		func(a store.AccountUpdate) []any {
			return []any{a.CustomerID, a.Account.Balance, a.Account.Reserved, a.Account.LifetimeEarned, a.Account.Version}
		}, `) AS v WHERE customers.tenant_id = ? AND customers.env = ? AND customers.id = v.column1`, s.TenantID, s.Env)
	if err != nil {
		return fmt.Errorf("update accounts: %w", err)
	}
	for _, b := range w.Blocks {
		if err := c.blockInsert(ctx, s, b); err != nil {
			return err
		}
	}
	// Only a block used up changes live, and so its index entries: the
	// update of one that keeps credits rewrites its row's page alone.
	var keeping, usedUp []store.BlockRemaining
	for _, r := range w.Remaining {
		if r.Remaining > 0 {
			keeping = append(keeping, r)
		} else {
			usedUp = append(usedUp, r)
		}
	}
	err = insertRows(ctx, c, `UPDATE OR FAIL blocks SET remaining_amount = v.column3 FROM (VALUES `, 3, keeping,
		func(r store.BlockRemaining) []any { return []any{r.CustomerID, r.BlockID, r.Remaining} },
		`) AS v WHERE blocks.tenant_id = ? AND blocks.env = ? AND blocks.customer_id = v.column1 AND blocks.id = v.column2`, s.TenantID, s.Env)
	if err != nil {
		return fmt.Errorf("update blocks: %w", err)
	}
	err = insertRows(ctx, c, `UPDATE OR FAIL blocks SET remaining_amount = 0, live = 0 FROM (VALUES `, 2, usedUp,
		func(r store.BlockRemaining) []any { return []any{r.CustomerID, r.BlockID} },
		`) AS v WHERE blocks.tenant_id = ? AND blocks.env = ? AND blocks.customer_id = v.column1 AND blocks.id = v.column2`, s.TenantID, s.Env)
	if err != nil {
		return fmt.Errorf("use up blocks: %w", err)
	}
	// Entries carry no metadata of their own (store.LedgerEntry): the column
	// stays NULL, and LedgerList reads it from the reference.
	err = insertRows(ctx, c, `INSERT OR FAIL INTO ledger_entries (tenant_id, env, customer_id, id, type, delta, balance_after,
			block_id, reference_type, reference_id, idempotency_key, transaction_id, created_at) VALUES `, 13, w.Ledger,
		func(e store.LedgerEntry) []any {
			return []any{s.TenantID, s.Env, e.CustomerID, e.ID, string(e.Type), e.Delta, e.BalanceAfter, e.BlockID,
				e.ReferenceType, e.ReferenceID, e.IdempotencyKey, e.TransactionID, ms(e.CreatedAt)}
		}, ``)
	if err != nil {
		return fmt.Errorf("append ledger entries: %w", err)
	}
	err = insertRows(ctx, c, `INSERT OR FAIL INTO usage_events (tenant_id, env, customer_id, id, metric_key, units, cost,
			idempotency_key, metadata, created_at) VALUES `, 10, w.Usage,
		func(e store.UsageEvent) []any {
			return []any{s.TenantID, s.Env, e.CustomerID, e.ID, e.MetricKey, e.Units, e.Cost, e.IdempotencyKey, nullJSON(e.Metadata), ms(e.CreatedAt)}
		}, "")
	if err != nil {
		return fmt.Errorf("insert usage events: %w", err)
	}
	err = insertRows(ctx, c, `INSERT OR FAIL INTO plan_purchases (tenant_id, env, `+purchaseColumns+`) VALUES `, 14, w.Purchases,
		func(p store.Purchase) []any {
			return []any{s.TenantID, s.Env, p.CustomerID, p.ID, p.PlanKey, p.OrderID, p.Price, p.Credits, p.BlockID,
				debitsJSON(p.Debits), p.BalanceAfter, p.EffectiveBalance, nullJSON(p.Metadata), ms(p.CreatedAt)}
		}, "")
	if err != nil {
		return fmt.Errorf("insert plan purchases: %w", err)
	}
	err = insertRows(ctx, c, `INSERT OR FAIL INTO transactions (tenant_id, env, id, body, metadata, created_at) VALUES `, 6, w.Transactions,
		func(t store.Transaction) []any {
			return []any{s.TenantID, s.Env, t.ID, t.Body, nullJSON(t.Metadata), ms(t.CreatedAt)}
		}, "")
	if err != nil {
		return fmt.Errorf("insert transactions: %w", err)
	}
	err = insertRows(ctx, c, `INSERT OR FAIL INTO reservations (tenant_id, env, `+reservationColumns+`) VALUES `, 14, w.Reservations,
		func(r store.Reservation) []any {
			return []any{s.TenantID, s.Env, r.CustomerID, r.ID, r.MetricKey, r.EstimatedUnits, r.Amount, r.Status, ms(r.ExpiresAt),
				r.CommittedAmount, r.ReleasedAmount, nullJSON(r.Metadata), ms(r.CreatedAt), ms(r.UpdatedAt)}
		}, "")
	if err != nil {
		return fmt.Errorf("insert reservations: %w", err)
	}
	err = insertRows(ctx, c, `UPDATE OR FAIL reservations SET status = v.column3, committed_amount = v.column4,
			released_amount = v.column5, updated_at = v.column6 FROM (VALUES `, 6, w.ReservationUpdates,
		func(r store.Reservation) []any {
			return []any{r.CustomerID, r.ID, r.Status, r.CommittedAmount, r.ReleasedAmount, ms(r.UpdatedAt)}
		}, `) AS v WHERE reservations.tenant_id = ? AND reservations.env = ? AND reservations.customer_id = v.column1
			AND reservations.id = v.column2`, s.TenantID, s.Env)
	if err != nil {
		return fmt.Errorf("update reservations: %w", err)
	}
	if err := c.idempotencyInsert(ctx, s, w); err != nil {
		return err
	}
	if err := c.webhookEventsInsert(ctx, s, w.Events); err != nil {
		return err
	}
	if c.cache != nil {
		c.cache.wrote(w)
	}
	return nil
}

// insertRows writes rows in multi-row statements of the chunk sizes, and
// fails when fewer rows were written than given: with store.ErrNotFound for
// an UPDATE (a row it names is missing from the scope), with
// store.ErrConflict for an INSERT (a live row was in the way).
func insertRows[T any](ctx context.Context, c conn, head string, cols int, rows []T, args func(T) []any, tail string, tailArgs ...any) error {
	short := store.ErrConflict
	if strings.HasPrefix(head, "UPDATE") {
		short = store.ErrNotFound
	}
	return writeRows(ctx, c, head, cols, rows, args, tail, tailArgs, short)
}

// upsertRows is insertRows for statements that may rightly write fewer rows
// than given (ON CONFLICT … DO NOTHING).
func upsertRows[T any](ctx context.Context, c conn, head string, cols int, rows []T, args func(T) []any, tail string, tailArgs ...any) error {
	return writeRows(ctx, c, head, cols, rows, args, tail, tailArgs, nil)
}

// writeRows runs the chunked statements; a nil short checks no row count.
func writeRows[T any](ctx context.Context, c conn, head string, cols int, rows []T, args func(T) []any, tail string, tailArgs []any, short error) error {
	for len(rows) > 0 {
		n := chunk(len(rows))
		a := make([]any, 0, n*cols)
		for _, r := range rows[:n] {
			a = append(a, args(r)...)
		}
		a = append(a, tailArgs...)
		res, err := c.exec(ctx, head+placeholders(n, cols)+tail, a...)
		if err != nil {
			return interpretError(err)
		}
		if short != nil {
			if err := written(res, n, short); err != nil {
				return err
			}
		}
		rows = rows[n:]
	}
	return nil
}

func written(res sql.Result, want int, short error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != int64(want) {
		return fmt.Errorf("%d of %d rows written: %w", n, want, short)
	}
	return nil
}

// GroupPrepare runs its reads one after another: SQLite answers each in the
// process, with no round trip to save.
func (c conn) GroupPrepare(ctx context.Context, r store.GroupReads) (store.GroupPrepared, error) {
	out := store.GroupPrepared{Configs: make(map[store.Scope]store.TenantConfig), IDs: make(map[store.Scope]map[string]string)}
	if len(r.Keys) > 0 {
		if err := c.IdempotencyLockAll(ctx, r.Keys); err != nil {
			return out, err
		}
		recs, err := c.IdempotencyGetAll(ctx, r.Keys, r.Since)
		if err != nil {
			return out, err
		}
		out.Records = recs
	}
	for _, s := range r.Configs {
		cfg, err := c.ConfigGet(ctx, s)
		switch {
		case err == nil:
			out.Configs[s] = cfg
		case !errors.Is(err, store.ErrNotFound):
			return out, err
		}
	}
	for s, exts := range r.Externals {
		ids, err := c.CustomerIDsByExternal(ctx, s, exts)
		if err != nil {
			return out, err
		}
		out.IDs[s] = ids
	}
	return out, nil
}

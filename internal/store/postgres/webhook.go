package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// The outbox's writes lock a customer's queue row before any of its events:
// WritesApply, WebhookAttempted, WebhookRequeue and WebhookRelease all do,
// so two of them on one customer queue behind each other, in one order,
// instead of deadlocking.

const webhookEventColumns = `seq, customer_id, id, type, payload, status, tries, attempts, next_attempt_at,
	created_at, updated_at, delivered_at`

// dueQueue is the queue row a group's events make for one customer.
type dueQueue struct {
	customerID string
	due        time.Time
}

// webhookQueuesDue returns one queue per customer of events, sorted by
// customer id, due at the earliest of its events.
func webhookQueuesDue(events []store.WebhookEvent) []dueQueue {
	due := make(map[string]time.Time, len(events))
	for _, e := range events {
		if t, ok := due[e.CustomerID]; !ok || e.NextAttemptAt.Before(t) {
			due[e.CustomerID] = e.NextAttemptAt
		}
	}
	out := make([]dueQueue, 0, len(due))
	for id, t := range due {
		out = append(out, dueQueue{id, t})
	}
	slices.SortFunc(out, func(a, b dueQueue) int { return strings.Compare(a.customerID, b.customerID) })
	return out
}

// payload keeps an empty payload apart from NULL, which the column refuses.
func payload(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}

// queueWebhookEvents queues the insert of a group's events, last in
// WritesApply, after their customers' queue rows. The queue upsert locks
// each row, in customer order, even when the row exists (a no-op update):
// a dispatcher deciding in WebhookRelease that a queue is empty then waits
// for this transaction, and sees its events. Taking the locks before the
// events' seq values, rather than after, makes seq follow the commit order
// of a customer's events even between transactions that hold no other lock
// in common.
func queueWebhookEvents(b *pgx.Batch, s store.Scope, events []store.WebhookEvent) {
	queues := webhookQueuesDue(events)
	cust, due := make([]string, len(queues)), make([]time.Time, len(queues))
	for i, q := range queues {
		cust[i], due[i] = q.customerID, ms(q.due)
	}
	b.Queue(`INSERT INTO webhook_queues (tenant_id, env, customer_id, next_attempt_at, lease_owner)
		SELECT $1, $2, customer_id, next_attempt_at, ''
		FROM unnest($3::text[], $4::timestamptz[]) WITH ORDINALITY AS u (customer_id, next_attempt_at, ord)
		ORDER BY ord
		ON CONFLICT (tenant_id, env, customer_id) DO UPDATE SET next_attempt_at = webhook_queues.next_attempt_at`,
		s.TenantID, s.Env, cust, due)

	n := len(events)
	evIDs, custs, types, status := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, tries, attempts := make([][]byte, n), make([]int32, n), make([]int32, n)
	next, created, updated, delivered := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]pgtype.Timestamptz, n)
	for i, e := range events {
		evIDs[i], custs[i], types[i], status[i], payloads[i] = e.ID, e.CustomerID, e.Type, e.Status, payload(e.Payload)
		tries[i], attempts[i], next[i], created[i], updated[i] = int32(e.Tries), int32(e.Attempts), ms(e.NextAttemptAt), ms(e.CreatedAt), ms(e.UpdatedAt)
		delivered[i] = nullTS(e.DeliveredAt)
	}
	// In the order of the sorted ordinality, so that seq follows the slice.
	queueRows(b, "insert webhook events", n, store.ErrConflict, `INSERT INTO webhook_events (tenant_id, env, id, customer_id, type,
			payload, status, tries, attempts, next_attempt_at, created_at, updated_at, delivered_at)
		SELECT $1, $2, id, customer_id, type, payload, status, tries, attempts, next_attempt_at, created_at, updated_at, delivered_at
		FROM unnest($3::text[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::integer[], $9::integer[],
				$10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[])
			WITH ORDINALITY AS u (id, customer_id, type, payload, status, tries, attempts, next_attempt_at, created_at,
				updated_at, delivered_at, ord)
		ORDER BY ord`,
		s.TenantID, s.Env, evIDs, custs, types, payloads, status, tries, attempts, next, created, updated, delivered)
}

// errNoOwner: an empty owner is that of the queues nobody leases.
var errNoOwner = errors.New("webhook lease: empty owner")

// WebhookClaim locks the due queues it takes and skips those another claim
// has locked: concurrent claims, on any instance, never lease one queue
// twice. Those locks are never waited for, so their order does not matter.
func (c conn) WebhookClaim(ctx context.Context, owner string, now, leaseUntil time.Time, limit, perQueue int) ([]store.WebhookQueue, error) {
	if owner == "" {
		return nil, errNoOwner
	}
	if perQueue < 1 {
		// It would find every queue empty, and drop it.
		return nil, fmt.Errorf("webhook claim: %d events per queue", perQueue)
	}
	if limit < 1 {
		return nil, nil
	}
	rows, err := c.q.Query(ctx, `SELECT tenant_id, env, customer_id FROM webhook_queues
		WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2
		FOR UPDATE SKIP LOCKED`, ms(now), limit)
	due, err := collect(rows, err, "select due webhook queues", func(sc scanner) (store.WebhookQueue, error) {
		q := store.WebhookQueue{LeaseUntil: ms(leaseUntil)}
		err := sc.Scan(&q.Scope.TenantID, &q.Scope.Env, &q.CustomerID)
		return q, err
	})
	if err != nil || len(due) == 0 {
		return nil, err
	}
	// One statement per queue that binds its whole key, and one per queue
	// for its events, all in one round trip. status by its value: only then
	// may a cached (generic) plan read the partial index of pending events.
	b := &pgx.Batch{}
	for i := range due {
		q := &due[i]
		queueRows(b, "lease webhook queue", 1, store.ErrNotFound, `UPDATE webhook_queues SET next_attempt_at = $4, lease_owner = $5
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3`, q.Scope.TenantID, q.Scope.Env, q.CustomerID, ms(leaseUntil), owner)
		b.Queue(`SELECT `+webhookEventColumns+` FROM webhook_events
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND status = 'pending' ORDER BY seq LIMIT $4`,
			q.Scope.TenantID, q.Scope.Env, q.CustomerID, perQueue).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				ev, err := scanWebhookEvent(rows)
				if err != nil {
					return err
				}
				q.Events = append(q.Events, ev)
			}
			return rows.Err()
		})
	}
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("lease webhook queues: %w", interpretError(err))
	}
	// A queue without pending events should not exist; one that does is
	// removed rather than leased empty.
	b = &pgx.Batch{}
	out := due[:0]
	for _, q := range due {
		if len(q.Events) > 0 {
			out = append(out, q)
			continue
		}
		b.Queue(`DELETE FROM webhook_queues WHERE tenant_id = $1 AND env = $2 AND customer_id = $3`,
			q.Scope.TenantID, q.Scope.Env, q.CustomerID)
	}
	if b.Len() > 0 {
		if err := c.q.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("delete empty webhook queues: %w", interpretError(err))
		}
	}
	return out, nil
}

// WebhookAttempted checks and extends the lease in one statement of its
// own, before it writes anything else, so that a lost lease writes nothing.
func (c conn) WebhookAttempted(ctx context.Context, s store.Scope, owner string, now, leaseUntil time.Time, ev store.WebhookEvent, a store.WebhookAttempt) error {
	if owner == "" {
		return errNoOwner
	}
	tag, err := c.q.Exec(ctx, `UPDATE webhook_queues SET next_attempt_at = $6
		WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND lease_owner = $4 AND next_attempt_at >= $5`,
		s.TenantID, s.Env, ev.CustomerID, owner, ms(now), ms(leaseUntil))
	if err != nil {
		return fmt.Errorf("extend webhook lease: %w", interpretError(err))
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("extend webhook lease of %s: not held: %w", owner, store.ErrConflict)
	}
	// One statement, so that the attempt is recorded only with its event's
	// update: a batch would run the insert even after an update that
	// matched no row.
	tag, err = c.q.Exec(ctx, `WITH ev AS (
			UPDATE webhook_events
			SET status = $4, tries = $5, attempts = $6, next_attempt_at = $7, updated_at = $8, delivered_at = $9
			WHERE tenant_id = $1 AND env = $2 AND id = $3 AND status = 'pending'
			RETURNING id)
		INSERT INTO webhook_attempts (tenant_id, env, event_id, n, at, status_code, error, duration_us)
		SELECT $1, $2, id, $6, $10, $11, $12, $13 FROM ev`,
		s.TenantID, s.Env, ev.ID, ev.Status, ev.Tries, ev.Attempts, ms(ev.NextAttemptAt), ms(ev.UpdatedAt), nullTS(ev.DeliveredAt),
		ms(a.At), a.StatusCode, a.Error, a.Duration.Microseconds())
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", interpretError(err))
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("record webhook attempt: no pending event %s: %w", ev.ID, store.ErrNotFound)
	}
	return nil
}

// WebhookRelease locks the queue row before it looks for pending events, in
// two statements: at READ COMMITTED the second one's snapshot is taken after
// the lock was granted, so it sees the events of a WritesApply it waited
// for (one statement would look with the snapshot it started with). The
// two travel in one batch, which runs them in that order.
func (c conn) WebhookRelease(ctx context.Context, s store.Scope, customerID, owner string, next time.Time) error {
	if owner == "" {
		return errNoOwner
	}
	var leaseOwner *string
	var pending bool
	b := &pgx.Batch{}
	b.Queue(`SELECT lease_owner FROM webhook_queues WHERE tenant_id = $1 AND env = $2 AND customer_id = $3
		FOR UPDATE`, s.TenantID, s.Env, customerID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&leaseOwner); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	b.Queue(`SELECT EXISTS (SELECT 1 FROM webhook_events
		WHERE tenant_id = $1 AND env = $2 AND customer_id = $3 AND status = 'pending')`, s.TenantID, s.Env, customerID).
		QueryRow(func(row pgx.Row) error { return row.Scan(&pending) })
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("lock webhook queue: %w", interpretError(err))
	}
	if leaseOwner == nil || *leaseOwner != owner {
		return nil
	}
	var err error
	if pending {
		_, err = c.q.Exec(ctx, `UPDATE webhook_queues SET next_attempt_at = $4, lease_owner = ''
			WHERE tenant_id = $1 AND env = $2 AND customer_id = $3`, s.TenantID, s.Env, customerID, ms(next))
	} else {
		_, err = c.q.Exec(ctx, `DELETE FROM webhook_queues WHERE tenant_id = $1 AND env = $2 AND customer_id = $3`,
			s.TenantID, s.Env, customerID)
	}
	if err != nil {
		return fmt.Errorf("release webhook queue: %w", interpretError(err))
	}
	return nil
}

// WebhookRequeue locks the queue before the event, as every outbox write
// does: it reads the event first for its customer only, and returns the row
// as its update left it. A leased queue is left alone: its owner's release
// sees the event pending again.
func (c conn) WebhookRequeue(ctx context.Context, s store.Scope, id string, now time.Time) (store.WebhookEvent, error) {
	ev, err := c.WebhookGet(ctx, s, id)
	if err != nil {
		return store.WebhookEvent{}, err
	}
	found := false
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO webhook_queues (tenant_id, env, customer_id, next_attempt_at, lease_owner)
		VALUES ($1, $2, $3, $4, '')
		ON CONFLICT (tenant_id, env, customer_id) DO UPDATE
			SET next_attempt_at = LEAST(webhook_queues.next_attempt_at, excluded.next_attempt_at)
			WHERE webhook_queues.lease_owner = ''`, s.TenantID, s.Env, ev.CustomerID, ms(now))
	b.Queue(`UPDATE webhook_events SET status = 'pending', tries = 0, next_attempt_at = $4, updated_at = $4
		WHERE tenant_id = $1 AND env = $2 AND id = $3
		RETURNING `+webhookEventColumns, s.TenantID, s.Env, id, ms(now)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			if ev, err = scanWebhookEvent(rows); err != nil {
				return err
			}
			found = true
		}
		return rows.Err()
	})
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return store.WebhookEvent{}, fmt.Errorf("requeue webhook event: %w", interpretError(err))
	}
	if !found {
		return store.WebhookEvent{}, fmt.Errorf("requeue webhook event: %w", store.ErrNotFound)
	}
	return ev, nil
}

func (c conn) WebhookGet(ctx context.Context, s store.Scope, id string) (store.WebhookEvent, error) {
	ev, err := scanWebhookEvent(c.q.QueryRow(ctx, `SELECT `+webhookEventColumns+` FROM webhook_events
		WHERE tenant_id = $1 AND env = $2 AND id = $3`, s.TenantID, s.Env, id))
	if err != nil {
		return store.WebhookEvent{}, fmt.Errorf("select webhook event: %w", interpretError(err))
	}
	return ev, nil
}

// WebhookList has a statement per combination of its filters and the
// cursor, as ReservationList: an optional condition cannot bound the index's
// range in a cached (generic) plan.
func (c conn) WebhookList(ctx context.Context, s store.Scope, status, eventType string, p store.Page) ([]store.WebhookEvent, error) {
	where, args := `tenant_id = $1 AND env = $2`, []any{s.TenantID, s.Env}
	and := func(cond string, v any) {
		args = append(args, v)
		where += ` AND ` + cond + ` $` + strconv.Itoa(len(args))
	}
	if status != "" {
		and(`status =`, status)
	}
	if eventType != "" {
		and(`type =`, eventType)
	}
	if p.After != "" {
		and(`id <`, p.After)
	}
	args = append(args, p.Limit)
	rows, err := c.q.Query(ctx, `SELECT `+webhookEventColumns+` FROM webhook_events WHERE `+where+`
		ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	return collect(rows, err, "list webhook events", scanWebhookEvent)
}

func (c conn) WebhookAttempts(ctx context.Context, s store.Scope, eventIDs []string) (map[string][]store.WebhookAttempt, error) {
	out := make(map[string][]store.WebhookAttempt)
	if len(eventIDs) == 0 {
		return out, nil
	}
	rows, err := c.q.Query(ctx, `SELECT event_id, at, status_code, error, duration_us FROM webhook_attempts
		WHERE tenant_id = $1 AND env = $2 AND event_id = ANY ($3::text[]) ORDER BY event_id, n`, s.TenantID, s.Env, eventIDs)
	attempts, err := collect(rows, err, "select webhook attempts", func(sc scanner) (store.WebhookAttempt, error) {
		var a store.WebhookAttempt
		var at time.Time
		var us int64
		err := sc.Scan(&a.EventID, &at, &a.StatusCode, &a.Error, &us)
		a.At, a.Duration = fromTS(at), time.Duration(us)*time.Microsecond
		return a, err
	})
	if err != nil {
		return nil, err
	}
	for _, a := range attempts {
		out[a.EventID] = append(out[a.EventID], a)
	}
	return out, nil
}

// WebhookHealth names status by a parameter, so that one statement counts
// both the pending and the failed events. Its statements go in one batch.
func (c conn) WebhookHealth(ctx context.Context, s store.Scope, since time.Time) (store.WebhookHealth, error) {
	h := store.WebhookHealth{Since: since}
	const count = `SELECT count(*) FROM webhook_events WHERE tenant_id = $1 AND env = $2 AND status = $3`
	b := &pgx.Batch{}
	b.Queue(count, s.TenantID, s.Env, store.WebhookPending).QueryRow(func(row pgx.Row) error { return row.Scan(&h.Pending) })
	b.Queue(count, s.TenantID, s.Env, store.WebhookFailed).QueryRow(func(row pgx.Row) error { return row.Scan(&h.Failed) })
	b.Queue(`SELECT count(*) FROM webhook_events WHERE tenant_id = $1 AND env = $2 AND status = $3 AND id >= $4`,
		s.TenantID, s.Env, store.WebhookDelivered, ids.Floor(ids.Webhook, since)).
		QueryRow(func(row pgx.Row) error { return row.Scan(&h.DeliveredSince) })
	b.Queue(`SELECT id, created_at FROM webhook_events WHERE tenant_id = $1 AND env = $2 AND status = $3
		ORDER BY id LIMIT 1`, s.TenantID, s.Env, store.WebhookPending).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var created time.Time
			if err := rows.Scan(&h.OldestPendingID, &created); err != nil {
				return err
			}
			h.OldestPendingAt = fromTS(created)
		}
		return rows.Err()
	})
	b.Queue(`SELECT next_attempt_at FROM webhook_queues WHERE tenant_id = $1 AND env = $2
		ORDER BY next_attempt_at LIMIT 1`, s.TenantID, s.Env).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var next time.Time
			if err := rows.Scan(&next); err != nil {
				return err
			}
			h.NextAttemptAt = fromTS(next)
		}
		return rows.Err()
	})
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return store.WebhookHealth{}, fmt.Errorf("webhook health: %w", interpretError(err))
	}
	return h, nil
}

// WebhookPurge selects the ids to delete with one statement per status, so
// that each is a range of the (tenant_id, env, status, id) index bounded by
// its LIMIT, however many events are kept. The delete checks the status
// again: a redelivery that committed after the select made the event
// pending, and READ COMMITTED rechecks the condition on the row it waited
// for. Attempts go only with the events deleted; a pending event's attempts
// are written with its update, which the delete's row lock orders.
func (c conn) WebhookPurge(ctx context.Context, s store.Scope, before time.Time, limit int) (int64, error) {
	if !c.inTx {
		return 0, fmt.Errorf("webhook purge outside a transaction")
	}
	floor := ids.Floor(ids.Webhook, before)
	var purge []string
	for _, status := range []string{store.WebhookDelivered, store.WebhookFailed} {
		if len(purge) >= limit {
			break
		}
		rows, err := c.q.Query(ctx, `SELECT id FROM webhook_events WHERE tenant_id = $1 AND env = $2 AND status = $3 AND id < $4
			ORDER BY id LIMIT $5`, s.TenantID, s.Env, status, floor, limit-len(purge))
		got, err := collect(rows, err, "select webhook events to purge", func(sc scanner) (string, error) {
			var id string
			err := sc.Scan(&id)
			return id, err
		})
		if err != nil {
			return 0, err
		}
		purge = append(purge, got...)
	}
	if len(purge) == 0 {
		return 0, nil
	}
	rows, err := c.q.Query(ctx, `DELETE FROM webhook_events WHERE tenant_id = $1 AND env = $2 AND id = ANY ($3::text[])
		AND status <> 'pending' RETURNING id`, s.TenantID, s.Env, purge)
	deleted, err := collect(rows, err, "purge webhook events", func(sc scanner) (string, error) {
		var id string
		err := sc.Scan(&id)
		return id, err
	})
	if err != nil || len(deleted) == 0 {
		return 0, err
	}
	_, err = c.q.Exec(ctx, `DELETE FROM webhook_attempts WHERE tenant_id = $1 AND env = $2 AND event_id = ANY ($3::text[])`,
		s.TenantID, s.Env, deleted)
	if err != nil {
		return 0, fmt.Errorf("purge webhook attempts: %w", interpretError(err))
	}
	return int64(len(deleted)), nil
}

// WebhookScopes reads every row of tenant_configs: one per configured scope.
func (c conn) WebhookScopes(ctx context.Context) ([]store.Scope, error) {
	rows, err := c.q.Query(ctx, `SELECT tenant_id, env FROM tenant_configs ORDER BY tenant_id, env`)
	return collect(rows, err, "select webhook scopes", func(sc scanner) (store.Scope, error) {
		var s store.Scope
		err := sc.Scan(&s.TenantID, &s.Env)
		return s, err
	})
}

// scanWebhookEvent reads webhookEventColumns.
func scanWebhookEvent(r scanner) (store.WebhookEvent, error) {
	var e store.WebhookEvent
	var next, created, updated time.Time
	var delivered pgtype.Timestamptz
	err := r.Scan(&e.Seq, &e.CustomerID, &e.ID, &e.Type, &e.Payload, &e.Status, &e.Tries, &e.Attempts, &next,
		&created, &updated, &delivered)
	if err != nil {
		return store.WebhookEvent{}, err
	}
	e.NextAttemptAt, e.CreatedAt, e.UpdatedAt, e.DeliveredAt = fromTS(next), fromTS(created), fromTS(updated), fromNullTS(delivered)
	return e, nil
}

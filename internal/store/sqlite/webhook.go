package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// The outbox's writes take no row locks: the IMMEDIATE transaction holds the
// database's single write lock, so a claim, an attempt, a release and the
// insert of a new event never interleave.

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

// webhookEventsInsert writes a group's events, last in WritesApply. The
// queues go first, in the order PostgreSQL's store needs (see its
// WritesApply); here the order changes nothing. An existing queue keeps its
// due time and its lease: its events are older, and go first.
func (c conn) webhookEventsInsert(ctx context.Context, s store.Scope, events []store.WebhookEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := upsertRows(ctx, c, `INSERT OR FAIL INTO webhook_queues (tenant_id, env, customer_id, next_attempt_at, lease_owner) VALUES `, 5,
		webhookQueuesDue(events), func(q dueQueue) []any { return []any{s.TenantID, s.Env, q.customerID, ms(q.due), ""} },
		` ON CONFLICT (tenant_id, env, customer_id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("insert webhook queues: %w", err)
	}
	// One multi-row statement inserts its rows in order, so seq (the rowid)
	// follows the slice.
	err = insertRows(ctx, c, `INSERT OR FAIL INTO webhook_events (tenant_id, env, id, customer_id, type, payload, status, tries, attempts,
			next_attempt_at, created_at, updated_at, delivered_at) VALUES `, 13, events,
		func(e store.WebhookEvent) []any {
			return []any{s.TenantID, s.Env, e.ID, e.CustomerID, e.Type, payload(e.Payload), e.Status, e.Tries, e.Attempts,
				ms(e.NextAttemptAt), ms(e.CreatedAt), ms(e.UpdatedAt), nullMS(e.DeliveredAt)}
		}, "")
	if err != nil {
		return fmt.Errorf("insert webhook events: %w", err)
	}
	return nil
}

// errNoOwner: an empty owner is that of the queues nobody leases.
var errNoOwner = errors.New("webhook lease: empty owner")

// claimed is one queue a claim leases.
type claimed struct {
	store.Scope
	customerID string
}

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
	rows, err := c.query(ctx, `SELECT tenant_id, env, customer_id FROM webhook_queues
		WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`, ms(now), limit)
	due, err := collect(rows, err, "select due webhook queues", func(sc scanner) (claimed, error) {
		var q claimed
		err := sc.Scan(&q.TenantID, &q.Env, &q.customerID)
		return q, err
	})
	if err != nil || len(due) == 0 {
		return nil, err
	}
	err = insertRows(ctx, c, `UPDATE OR FAIL webhook_queues SET next_attempt_at = v.column4, lease_owner = v.column5 FROM (VALUES `, 5, due,
		func(q claimed) []any { return []any{q.TenantID, q.Env, q.customerID, ms(leaseUntil), owner} },
		`) AS v WHERE webhook_queues.tenant_id = v.column1 AND webhook_queues.env = v.column2
			AND webhook_queues.customer_id = v.column3`)
	if err != nil {
		return nil, fmt.Errorf("lease webhook queues: %w", err)
	}
	out := make([]store.WebhookQueue, 0, len(due))
	for _, q := range due {
		// status by its value: only then may the partial index of pending
		// events serve the statement.
		rows, err := c.query(ctx, `SELECT `+webhookEventColumns+` FROM webhook_events
			WHERE tenant_id = ? AND env = ? AND customer_id = ? AND status = 'pending' ORDER BY seq LIMIT ?`,
			q.TenantID, q.Env, q.customerID, perQueue)
		events, err := collect(rows, err, "select pending webhook events", scanWebhookEvent)
		if err != nil {
			return nil, err
		}
		if len(events) == 0 {
			if err := c.webhookQueueDelete(ctx, q.Scope, q.customerID); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, store.WebhookQueue{Scope: q.Scope, CustomerID: q.customerID, Events: events, LeaseUntil: fromMS(ms(leaseUntil))})
	}
	return out, nil
}

func (c conn) webhookQueueDelete(ctx context.Context, s store.Scope, customerID string) error {
	_, err := c.exec(ctx, `DELETE FROM webhook_queues WHERE tenant_id = ? AND env = ? AND customer_id = ?`, s.TenantID, s.Env, customerID)
	if err != nil {
		return fmt.Errorf("delete webhook queue: %w", interpretError(err))
	}
	return nil
}

// WebhookAttempted checks and extends the lease in one statement, before it
// writes anything else, so that a lost lease writes nothing.
func (c conn) WebhookAttempted(ctx context.Context, s store.Scope, owner string, now, leaseUntil time.Time, ev store.WebhookEvent, a store.WebhookAttempt) error {
	if owner == "" {
		return errNoOwner
	}
	res, err := c.exec(ctx, `UPDATE webhook_queues SET next_attempt_at = ?
		WHERE tenant_id = ? AND env = ? AND customer_id = ? AND lease_owner = ? AND next_attempt_at >= ?`,
		ms(leaseUntil), s.TenantID, s.Env, ev.CustomerID, owner, ms(now))
	if err != nil {
		return fmt.Errorf("extend webhook lease: %w", interpretError(err))
	}
	if err := written(res, 1, store.ErrConflict); err != nil {
		return fmt.Errorf("extend webhook lease of %s: %w", owner, err)
	}
	res, err = c.exec(ctx, `UPDATE webhook_events SET status = ?, tries = ?, attempts = ?, next_attempt_at = ?, updated_at = ?,
			delivered_at = ?
		WHERE tenant_id = ? AND env = ? AND id = ? AND status = 'pending'`,
		ev.Status, ev.Tries, ev.Attempts, ms(ev.NextAttemptAt), ms(ev.UpdatedAt), nullMS(ev.DeliveredAt), s.TenantID, s.Env, ev.ID)
	if err != nil {
		return fmt.Errorf("update webhook event: %w", interpretError(err))
	}
	if err := written(res, 1, store.ErrNotFound); err != nil {
		return fmt.Errorf("update webhook event: %w", err)
	}
	_, err = c.exec(ctx, `INSERT INTO webhook_attempts (tenant_id, env, event_id, n, at, status_code, error, duration_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.TenantID, s.Env, ev.ID, ev.Attempts, ms(a.At), a.StatusCode, a.Error, a.Duration.Microseconds())
	if err != nil {
		return fmt.Errorf("insert webhook attempt: %w", interpretError(err))
	}
	return nil
}

func (c conn) WebhookRelease(ctx context.Context, s store.Scope, customerID, owner string, next time.Time) error {
	if owner == "" {
		return errNoOwner
	}
	var leaseOwner string
	err := c.queryRow(ctx, `SELECT lease_owner FROM webhook_queues WHERE tenant_id = ? AND env = ? AND customer_id = ?`,
		s.TenantID, s.Env, customerID).Scan(&leaseOwner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("select webhook queue: %w", interpretError(err))
	}
	if leaseOwner != owner {
		return nil
	}
	var pending bool
	err = c.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_events
		WHERE tenant_id = ? AND env = ? AND customer_id = ? AND status = 'pending')`, s.TenantID, s.Env, customerID).Scan(&pending)
	if err != nil {
		return fmt.Errorf("select pending webhook events: %w", interpretError(err))
	}
	if !pending {
		return c.webhookQueueDelete(ctx, s, customerID)
	}
	_, err = c.exec(ctx, `UPDATE webhook_queues SET next_attempt_at = ?, lease_owner = ''
		WHERE tenant_id = ? AND env = ? AND customer_id = ?`, ms(next), s.TenantID, s.Env, customerID)
	if err != nil {
		return fmt.Errorf("release webhook queue: %w", interpretError(err))
	}
	return nil
}

// WebhookRequeue leaves a leased queue alone: its owner's release sees the
// event pending again.
func (c conn) WebhookRequeue(ctx context.Context, s store.Scope, id string, now time.Time) (store.WebhookEvent, error) {
	ev, err := c.WebhookGet(ctx, s, id)
	if err != nil {
		return store.WebhookEvent{}, err
	}
	_, err = c.exec(ctx, `INSERT INTO webhook_queues (tenant_id, env, customer_id, next_attempt_at, lease_owner)
		VALUES (?, ?, ?, ?, '')
		ON CONFLICT (tenant_id, env, customer_id) DO UPDATE SET next_attempt_at = min(webhook_queues.next_attempt_at, excluded.next_attempt_at)
		WHERE webhook_queues.lease_owner = ''`, s.TenantID, s.Env, ev.CustomerID, ms(now))
	if err != nil {
		return store.WebhookEvent{}, fmt.Errorf("queue webhook event: %w", interpretError(err))
	}
	_, err = c.exec(ctx, `UPDATE webhook_events SET status = 'pending', tries = 0, next_attempt_at = ?, updated_at = ?
		WHERE tenant_id = ? AND env = ? AND id = ?`, ms(now), ms(now), s.TenantID, s.Env, id)
	if err != nil {
		return store.WebhookEvent{}, fmt.Errorf("requeue webhook event: %w", interpretError(err))
	}
	ev.Status, ev.Tries, ev.NextAttemptAt, ev.UpdatedAt = store.WebhookPending, 0, fromMS(ms(now)), fromMS(ms(now))
	return ev, nil
}

func (c conn) WebhookGet(ctx context.Context, s store.Scope, id string) (store.WebhookEvent, error) {
	ev, err := scanWebhookEvent(c.queryRow(ctx, `SELECT `+webhookEventColumns+` FROM webhook_events
		WHERE tenant_id = ? AND env = ? AND id = ?`, s.TenantID, s.Env, id))
	if err != nil {
		return store.WebhookEvent{}, fmt.Errorf("select webhook event: %w", interpretError(err))
	}
	return ev, nil
}

// WebhookList has a statement per combination of its filters and the
// cursor, as ReservationList: an optional condition would keep the index
// from bounding the page.
func (c conn) WebhookList(ctx context.Context, s store.Scope, status, eventType string, p store.Page) ([]store.WebhookEvent, error) {
	where, args := `tenant_id = ? AND env = ?`, []any{s.TenantID, s.Env}
	if status != "" {
		where, args = where+` AND status = ?`, append(args, status)
	}
	if eventType != "" {
		where, args = where+` AND type = ?`, append(args, eventType)
	}
	if p.After != "" {
		where, args = where+` AND id < ?`, append(args, p.After)
	}
	rows, err := c.query(ctx, `SELECT `+webhookEventColumns+` FROM webhook_events WHERE `+where+` ORDER BY id DESC LIMIT ?`,
		append(args, p.Limit)...)
	return collect(rows, err, "list webhook events", scanWebhookEvent)
}

func (c conn) WebhookAttempts(ctx context.Context, s store.Scope, eventIDs []string) (map[string][]store.WebhookAttempt, error) {
	out := make(map[string][]store.WebhookAttempt)
	// Without repeats: an id in two chunks would have its attempts twice.
	eventIDs = slices.Compact(slices.Sorted(slices.Values(eventIDs)))
	err := c.inList(ctx, `SELECT event_id, at, status_code, error, duration_us FROM webhook_attempts
		WHERE tenant_id = ? AND env = ? AND event_id IN (%s) ORDER BY event_id, n`, []any{s.TenantID, s.Env}, eventIDs, nil,
		func(sc scanner) error {
			var a store.WebhookAttempt
			var at, us int64
			if err := sc.Scan(&a.EventID, &at, &a.StatusCode, &a.Error, &us); err != nil {
				return err
			}
			a.At, a.Duration = fromMS(at), time.Duration(us)*time.Microsecond
			out[a.EventID] = append(out[a.EventID], a)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("select webhook attempts: %w", err)
	}
	return out, nil
}

// WebhookHealth names status by a parameter, so that one statement counts
// both the pending and the failed events.
func (c conn) WebhookHealth(ctx context.Context, s store.Scope, since time.Time) (store.WebhookHealth, error) {
	h := store.WebhookHealth{Since: since}
	const count = `SELECT count(*) FROM webhook_events WHERE tenant_id = ? AND env = ? AND status = ?`
	if err := c.queryRow(ctx, count, s.TenantID, s.Env, store.WebhookPending).Scan(&h.Pending); err != nil {
		return h, fmt.Errorf("count pending webhook events: %w", interpretError(err))
	}
	if err := c.queryRow(ctx, count, s.TenantID, s.Env, store.WebhookFailed).Scan(&h.Failed); err != nil {
		return h, fmt.Errorf("count failed webhook events: %w", interpretError(err))
	}
	err := c.queryRow(ctx, `SELECT count(*) FROM webhook_events WHERE tenant_id = ? AND env = ? AND status = ? AND id >= ?`,
		s.TenantID, s.Env, store.WebhookDelivered, ids.Floor(ids.Webhook, since)).Scan(&h.DeliveredSince)
	if err != nil {
		return h, fmt.Errorf("count delivered webhook events: %w", interpretError(err))
	}
	var created int64
	err = c.queryRow(ctx, `SELECT id, created_at FROM webhook_events WHERE tenant_id = ? AND env = ? AND status = ?
		ORDER BY id LIMIT 1`, s.TenantID, s.Env, store.WebhookPending).Scan(&h.OldestPendingID, &created)
	switch {
	case err == nil:
		h.OldestPendingAt = fromMS(created)
	case !errors.Is(err, sql.ErrNoRows):
		return h, fmt.Errorf("select oldest pending webhook event: %w", interpretError(err))
	}
	var next int64
	err = c.queryRow(ctx, `SELECT next_attempt_at FROM webhook_queues WHERE tenant_id = ? AND env = ?
		ORDER BY next_attempt_at LIMIT 1`, s.TenantID, s.Env).Scan(&next)
	switch {
	case err == nil:
		h.NextAttemptAt = fromMS(next)
	case !errors.Is(err, sql.ErrNoRows):
		return h, fmt.Errorf("select next webhook attempt: %w", interpretError(err))
	}
	return h, nil
}

// WebhookPurge selects the ids to delete with one statement per status, so
// that each is a range of the (tenant_id, env, status, id) index bounded by
// its LIMIT, however many events are kept. A seq freed by the purge of the
// newest event may be handed out again: seq only orders the events that
// exist together, and every event left is older.
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
		rows, err := c.query(ctx, `SELECT id FROM webhook_events WHERE tenant_id = ? AND env = ? AND status = ? AND id < ?
			ORDER BY id LIMIT ?`, s.TenantID, s.Env, status, floor, limit-len(purge))
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
	err := c.inList(ctx, `DELETE FROM webhook_attempts WHERE tenant_id = ? AND env = ? AND event_id IN (%s)`,
		[]any{s.TenantID, s.Env}, purge, nil, func(scanner) error { return nil })
	if err != nil {
		return 0, fmt.Errorf("purge webhook attempts: %w", err)
	}
	// RETURNING counts the rows: inList runs its statements as queries.
	var n int64
	err = c.inList(ctx, `DELETE FROM webhook_events WHERE tenant_id = ? AND env = ? AND id IN (%s) RETURNING id`,
		[]any{s.TenantID, s.Env}, purge, nil, func(scanner) error { n++; return nil })
	if err != nil {
		return 0, fmt.Errorf("purge webhook events: %w", err)
	}
	return n, nil
}

// WebhookScopes reads every row of tenant_configs: one per configured scope.
func (c conn) WebhookScopes(ctx context.Context) ([]store.Scope, error) {
	rows, err := c.query(ctx, `SELECT tenant_id, env FROM tenant_configs ORDER BY tenant_id, env`)
	return collect(rows, err, "select webhook scopes", func(sc scanner) (store.Scope, error) {
		var s store.Scope
		err := sc.Scan(&s.TenantID, &s.Env)
		return s, err
	})
}

// scanWebhookEvent reads webhookEventColumns.
func scanWebhookEvent(r scanner) (store.WebhookEvent, error) {
	var e store.WebhookEvent
	var next, created, updated int64
	var delivered sql.NullInt64
	err := r.Scan(&e.Seq, &e.CustomerID, &e.ID, &e.Type, &e.Payload, &e.Status, &e.Tries, &e.Attempts, &next,
		&created, &updated, &delivered)
	if err != nil {
		return store.WebhookEvent{}, err
	}
	e.NextAttemptAt, e.CreatedAt, e.UpdatedAt, e.DeliveredAt = fromMS(next), fromMS(created), fromMS(updated), fromNullMS(delivered)
	return e, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache prepares each statement once on one held connection: the
// writer, or a reader. SQLite parses an unprepared statement anew on every
// call, which was a fifth of the CPU of a debit before statements were
// cached. Reads outside a transaction, on the read pool, are not prepared:
// database/sql would need a free connection to prepare on, which a reader
// holding one may wait for.
type stmtCache struct {
	db *sql.Conn
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.Conn) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s, nil
	}
	// Not the caller's context: the statement outlives the request that
	// first used it.
	s, err := c.db.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", interpretError(err))
	}
	c.m[query] = s
	return s, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m = nil
}

// traceQuery, when set (by this package's tests), sees every statement the
// store runs with its arguments: the query-plan test explains each.
var traceQuery func(query string, args []any)

// stmt returns the held connection's prepared statement for query; nil on
// the read pool, which runs statements unprepared.
func (c conn) stmt(ctx context.Context, query string, args []any) (*sql.Stmt, error) {
	if traceQuery != nil {
		traceQuery(query, args)
	}
	if c.stmts == nil {
		return nil, nil
	}
	return c.stmts.get(ctx, query)
}

// uncancelled checks ctx once and returns it without its cancellation.
// database/sql and the driver each start a goroutine per statement to watch a
// context that can be cancelled, two goroutines and their wake-ups for a
// lookup of microseconds: that scheduling was a fifth of the server's CPU on
// the entitlement check and the cause of its latency tail. A SQLite
// statement here is bounded (key-bound index searches, pages of at most a
// few hundred rows) and a lock wait ends at busy_timeout, so a deadline is
// honoured between statements rather than inside one.
func uncancelled(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := uncancelled(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.stmt(ctx, query, args)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.q.ExecContext(ctx, query, args...)
	}
	return s.ExecContext(ctx, args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := uncancelled(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.stmt(ctx, query, args)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.q.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) scanner {
	ctx, err := uncancelled(ctx)
	if err != nil {
		return errRow{err}
	}
	s, err := c.stmt(ctx, query, args)
	if err != nil {
		return errRow{err}
	}
	if s == nil {
		return c.q.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// errRow is a row whose query failed before it ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

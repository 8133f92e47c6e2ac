// Package postgres is creditd's production store: PostgreSQL through pgx,
// for any number of stateless creditd instances sharing one database.
//
// Write transactions run at READ COMMITTED and serialize where it matters
// with locks taken in one order. A group commit's transaction first takes
// the advisory locks of all its idempotency keys, in one statement, sorted by
// their hashes (IdempotencyLockAll); then it locks all its customers' account
// rows, in one statement, with SELECT … FOR UPDATE in (tenant, environment,
// id) order (AccountsLoad). Two groups that share keys or customers thus
// queue behind each other instead of deadlocking, and every statement after
// the account locks sees the rows committed before them, so no update is
// lost. A transaction that loses a race the database reports as retryable (a
// deadlock, a serialization failure) is run again, up to maxAttempts times. A
// unique violation is returned as store.ErrConflict: the use case decides.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/creditd/creditd/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// maxAttempts bounds the runs of one transaction that keeps losing races.
const maxAttempts = 10

// DB is a store.Store on a PostgreSQL database.
type DB struct {
	conn
	pool   *pgxpool.Pool
	checks *checkCache // CheckRead's accounts and rules, each checked against the database before use
}

var _ store.Store = (*DB)(nil)

// Open connects to the database the URL names (postgres://…). It does not
// migrate; call Migrate.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultPoolSize
	}
	// A server that does not answer must not hold a request: without
	// connect_timeout in the URL, pgx would wait for the operating system.
	if !strings.Contains(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if traceQuery != nil {
		cfg.ConnConfig.Tracer = tracer{traceQuery}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return &DB{conn: conn{q: pool}, pool: pool, checks: newCheckCache()}, nil
}

// defaultConnectTimeout bounds connecting when the URL sets no
// connect_timeout.
const defaultConnectTimeout = 5 * time.Second

// Writable reports whether the database takes writes now: it answers, and
// it is not a read-only server (a standby, or default_transaction_read_only).
// Its errors are store.ErrUnavailable.
func (db *DB) Writable(ctx context.Context) error {
	var readOnly string
	if err := db.pool.QueryRow(ctx, "SHOW transaction_read_only").Scan(&readOnly); err != nil {
		return fmt.Errorf("%w: postgres: %w", store.ErrUnavailable, err)
	}
	if readOnly == "on" {
		return fmt.Errorf("%w: postgres: the server is read-only", store.ErrUnavailable)
	}
	return nil
}

func init() { store.RegisterUnavailable(unavailable) }

// unavailable reports the errors of a server that cannot serve now rather
// than of a request: no connection, a connection lost or timed out, a server
// shutting down, starting up or out of resources (disk full), a read-only
// server.
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),                           // insufficient resources: disk full, out of memory, too many connections
			strings.HasPrefix(pe.Code, "58"),                           // system error: I/O
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin or crash shutdown, cannot connect now
			pe.Code == "25006": // read_only_sql_transaction
			return true
		}
	}
	return false
}

// Pool returns the connection pool, for tests and tools.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Migrate applies the embedded migrations that have not run yet. goose takes
// an advisory lock, so instances starting together migrate once.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	sqldb := stdlib.OpenDBFromPool(db.pool)
	defer sqldb.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqldb, fsys, goose.WithSessionLocker(newLocker()))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Transact runs fn in one READ COMMITTED transaction, again when it loses a
// race (see the package comment).
func (db *DB) Transact(ctx context.Context, fn func(store.Q) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = db.transactOnce(ctx, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		// A short, growing pause lets the winner of the race commit.
		time.Sleep(time.Duration(attempt*attempt) * time.Millisecond)
	}
	return fmt.Errorf("postgres: gave up after %d attempts: %w", maxAttempts, err)
}

func (db *DB) transactOnce(ctx context.Context, fn func(store.Q) error) (err error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", interpretError(err))
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(conn{q: tx, inTx: true}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", interpretError(err))
	}
	return nil
}

// Read runs fn in one REPEATABLE READ, read-only transaction: every query in
// it sees the same snapshot, so a balance and its account row agree.
func (db *DB) Read(ctx context.Context, fn func(store.Q) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin read: %w", interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(conn{q: tx})
}

// errRetry marks an error after which the transaction is run again.
var errRetry = errors.New("transaction lost a race")

func retryable(err error) bool {
	return errors.Is(err, errRetry)
}

// querier is what the pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// conn implements store.Q on the pool (reads) or a transaction.
type conn struct {
	q    querier
	inTx bool
}

// interpretError turns driver errors into the store's, by SQLSTATE.
func interpretError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("%w: %v", errRetry, err)
		}
	}
	return err
}

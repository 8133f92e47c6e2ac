// Package sqlite is creditd's embedded store: one SQLite file on disk, in WAL
// mode, through the pure-Go driver modernc.org/sqlite (no cgo: the binary
// cross-compiles and building needs no C toolchain). Built with -tags mattn
// it runs on the cgo driver github.com/mattn/go-sqlite3 instead; on the
// grouped write path the two were measured within 20% of each other,
// modernc ahead (docs/architecture.md has the figures), so the pure-Go one
// is the default.
//
// Limits, plainly: SQLite has one writer. Every write transaction starts with
// BEGIN IMMEDIATE on one dedicated connection, so writes are serialized
// inside this process, and a busy timeout waits for a writer in another
// process. Reads run concurrently on their own connections and see the last
// committed state. One process per database file is the supported set-up; run
// several instances against PostgreSQL instead.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/creditd/creditd/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store on one SQLite file.
type DB struct {
	conn
	path  string
	write *sql.DB
	read  *sql.DB
	// writer is the one connection every write transaction runs on, with its
	// prepared statements; wmu hands it to one transaction at a time.
	wmu    sync.Mutex
	writer *sql.Conn
	wstmts *stmtCache
	wcache *accountCache // the accounts as committed, for the writer (cache.go)

	// readers run the read transactions (Read), each with its statements.
	readers  chan *reader
	readPool *sql.DB

	stop, stopped chan struct{} // the checkpointer's
	closing       atomic.Bool
}

// writerCacheSize is the writer's page cache, in KiB when negative: SQLite's
// 2 MiB default made a write path spread over 10,000 customers read most of
// its pages back from the operating system. Readers keep the default, since a
// reader empties its whole cache whenever it sees that the writer committed.
const writerCacheSize = "-65536"

// busyTimeoutMS is how long a statement waits for a lock held by another
// process before failing as unavailable (503): a few seconds, as every
// database call's deadline.
const busyTimeoutMS = "5000"

// checkpointEvery is how often the WAL is copied back into the database. A
// page written many times between two checkpoints is copied once; at 1,500
// debits/s over 10,000 customers, p99 was 10–28 ms with 1 s against 22–26 ms
// with 100 ms (three runs each, creditd bench --rate 1500).
const checkpointEvery = time.Second

// checkpoint copies committed WAL frames into the database file in the
// background, on its own connection, every checkpointEvery. See
// checkpointOnce.
func (db *DB) checkpoint() {
	defer close(db.stopped)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			db.probe()
			db.checkpointOnce()
		}
	}
}

// checkpointResidue bounds the frames the locked pass of a checkpoint
// copies (about a mebibyte), so that the writer waits for little more than
// the fsync of the database file.
const checkpointResidue = 256

// walRestartFrames is the WAL's length (256 Ki frames, 1 GiB of 4 KiB
// pages) past which a round ends with a locked pass, to start the WAL over.
// Not sooner, and with no fsync of our own: the locked pass waits for the
// fsync of the pages the passes before it copied, and forcing flushes of
// the database file (every 64 Ki frames, an fsync just before the locked
// pass, the writeback started each second) made the commits' own fsyncs
// wait behind them: p99 at 2,800 debits/s after a batch load was 38–48 ms,
// against 16–22 ms without a forced start-over and 21 ms with this bound
// (BENCHMARKS.md).
// Between loads, a pass beside the writer catches up by itself and SQLite
// starts the WAL over at the next write, as it always did.
var walRestartFrames = 1 << 18 // a variable for the tests

// checkpointOnce copies the WAL into the database. A PASSIVE checkpoint
// never blocks the writer or the readers: it copies what no reader still
// needs. But the WAL starts over only once a checkpoint has copied all of
// it, and under a steady stream of commits no pass does: the writer appends
// while it copies. The WAL then grew without end (3 GiB within half a minute
// of load, measured), and finding a page in it costs more the longer it is.
// So once the WAL is longer than walRestartFrames, passes run beside the
// writer until one sees few frames come in since the last; then a last pass
// holds the writer's lock: it copies the residue while no group commits,
// and the next write transaction starts the WAL over (unless a reader still
// reads from it; the next round tries again).
func (db *DB) checkpointOnce() {
	last := -1
	for range 5 {
		frames, left, err := db.walCheckpoint()
		if err != nil || frames < walRestartFrames {
			return
		}
		if left <= checkpointResidue && last >= 0 && frames-last <= checkpointResidue {
			db.wmu.Lock()
			defer db.wmu.Unlock()
			db.walCheckpoint()
			return
		}
		last = frames
	}
}

// walCheckpoint runs one PASSIVE checkpoint and returns the frames the WAL
// held when it ran and those it left uncopied.
func (db *DB) walCheckpoint() (frames, left int, err error) {
	var busy, copied int
	err = db.write.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, frames - copied, err
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path. It does not
// migrate; call Migrate.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if err := create(path); err != nil {
		return nil, err
	}
	// The pragmas run on every new connection: WAL lets readers run beside the
	// writer, synchronous=FULL makes every commit durable before we answer,
	// and foreign keys are off by default in SQLite.
	dsn := "file:" + path + "?" + dsnParams(false).Encode()
	write, err := sql.Open(DriverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Two connections: the writer, held for good, and one for migrations.
	write.SetMaxOpenConns(2)
	write.SetConnMaxLifetime(0)
	writer, err := write.Conn(context.Background())
	if err == nil {
		// The writer never checkpoints: copying the WAL back into the
		// database (and its fsync) would run inside a commit, on the path of
		// every request in that group. The checkpointer does it beside.
		_, err = writer.ExecContext(context.Background(), "PRAGMA wal_autocheckpoint = 0")
	}
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Readers take no lock at BEGIN: a read transaction is a snapshot from
	// its first read on, and never blocks the writer.
	read, err := sql.Open(DriverName, "file:"+path+"?"+dsnParams(true).Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(max(4, runtime.NumCPU()))
	db := &DB{conn: conn{q: read}, path: path, write: write, read: read, writer: writer, wstmts: newStmtCache(writer), wcache: newAccountCache(), stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := db.openReaders(path, max(4, runtime.NumCPU())); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	go db.checkpoint()
	return db, nil
}

// reader is a connection held for read transactions, with its prepared
// statements: SQLite parses an unprepared statement anew on every call, and
// a read such as the entitlement check (four statements) spent a third of
// its CPU in the parser.
type reader struct {
	conn  *sql.Conn
	stmts *stmtCache
}

// openReaders opens n readers on a pool of their own: the read pool keeps
// serving the reads outside a transaction.
func (db *DB) openReaders(path string, n int) error {
	pool, err := sql.Open(DriverName, "file:"+path+"?"+dsnParams(true).Encode())
	if err != nil {
		return err
	}
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	pool.SetConnMaxLifetime(0)
	db.readPool, db.readers = pool, make(chan *reader, n)
	for range n {
		c, err := pool.Conn(context.Background())
		if err != nil {
			pool.Close()
			return err
		}
		db.readers <- &reader{conn: c, stmts: newStmtCache(c)}
	}
	return nil
}

// create makes a missing database file readable by its owner only: it holds
// every tenant's balances and stored answers. SQLite gives its WAL and
// shared-memory files the database file's permissions.
func create(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return f.Close()
}

// minFree is the free disk space below which the database counts as full:
// a group commit appends to the WAL, a checkpoint copies into the file.
const minFree = 1 << 20

// Writable reports whether the database can take a write now: it takes the
// write lock and lets it go (a read-only file or a lock another process
// holds fails here), and checks the disk for room. Its errors are
// store.ErrUnavailable.
func (db *DB) Writable(ctx context.Context) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if _, err := db.writer.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("%w: sqlite: cannot take the write lock: %w", store.ErrUnavailable, err)
	}
	// BEGIN succeeds on a file opened read-only; a write statement does not,
	// even one that matches no row.
	_, err := db.writer.ExecContext(ctx, "UPDATE tenants SET name = name WHERE 0")
	db.rollback(ctx)
	if err != nil {
		return fmt.Errorf("%w: sqlite: cannot write: %w", store.ErrUnavailable, err)
	}
	if free, ok := freeBytes(filepath.Dir(db.path)); ok && free < minFree {
		return fmt.Errorf("%w: sqlite: the disk of %s is full", store.ErrUnavailable, db.path)
	}
	return nil
}

// Migrate applies the embedded migrations that have not run yet.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, fsys)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Pools names the store's connection pools, for their statistics
// (database/sql's DBStats: open, in use, idle, waits): "write" (the writer
// and the checkpointer), "read" (reads outside a transaction) and "readers"
// (the held read transactions).
func (db *DB) Pools() map[string]*sql.DB {
	return map[string]*sql.DB{"write": db.write, "read": db.read, "readers": db.readPool}
}

// Close closes both connection pools. Closing again does nothing.
func (db *DB) Close() error {
	if !db.closing.CompareAndSwap(false, true) {
		return nil
	}
	close(db.stop)
	<-db.stopped
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.wstmts.close()
	var errs []error
	for range cap(db.readers) {
		r := <-db.readers // waits for reads in flight
		r.stmts.close()
		errs = append(errs, r.conn.Close())
	}
	return errors.Join(append(errs, db.readPool.Close(), db.writer.Close(), db.write.Close(), db.read.Close())...)
}

// Transact runs fn in one IMMEDIATE transaction on the writer connection:
// it takes the write lock at BEGIN, so a transaction never fails half-way for
// lack of it. The transaction is driven with plain BEGIN and COMMIT
// statements, so that the statements prepared on the writer serve every
// transaction.
func (db *DB) Transact(ctx context.Context, fn func(store.Q) error) (err error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if _, err := db.writer.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: begin: %w", interpretError(err))
	}
	defer func() {
		if p := recover(); p != nil {
			db.wcache.abandon(true)
			db.rollback(ctx)
			panic(p)
		}
		if err != nil {
			db.rollback(ctx)
		}
	}()
	c := conn{q: db.writer, inTx: true, stmts: db.wstmts, cache: db.wcache, keys: make(map[store.IdemKey]bool)}
	if err := db.wcache.begin(ctx, c); err != nil {
		return fmt.Errorf("sqlite: %w", interpretError(err))
	}
	if err := fn(c); err != nil {
		db.wcache.abandon(false)
		return err
	}
	if _, err := db.writer.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		db.wcache.abandon(true)
		return fmt.Errorf("sqlite: commit: %w", interpretError(err))
	}
	db.wcache.commit()
	return nil
}

// rollback ends a failed transaction. SQLite may have rolled it back itself
// (after some errors it does), so "no transaction is active" is no failure.
func (db *DB) rollback(ctx context.Context) {
	db.writer.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
}

// Read runs fn in one read-only transaction: every query in it sees the same
// committed snapshot (WAL), so a balance and its account row agree. It runs
// on a held reader, driven with plain BEGIN and ROLLBACK statements like the
// writer, so that the reader's prepared statements serve every read.
func (db *DB) Read(ctx context.Context, fn func(store.Q) error) error {
	var r *reader
	select {
	case r = <-db.readers:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: wait for a reader: %w", ctx.Err())
	}
	defer func() { db.readers <- r }()
	c := conn{q: r.conn, stmts: r.stmts, memo: db.wcache, gen: db.wcache.generation()}
	if _, err := c.exec(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("sqlite: begin read: %w", interpretError(err))
	}
	// A read transaction changes nothing: it ends the same either way.
	defer c.exec(context.WithoutCancel(ctx), "ROLLBACK")
	return fn(c)
}

// probe drops the writer's memory if another connection wrote the file
// since the writer's last transaction. Under load the writer's next
// transaction does it anyway; probe does not wait for the writer.
func (db *DB) probe() {
	if !db.wmu.TryLock() {
		return
	}
	defer db.wmu.Unlock()
	var v int64
	if err := db.writer.QueryRowContext(context.Background(), "PRAGMA data_version").Scan(&v); err != nil {
		db.wcache.abandon(true)
		return
	}
	db.wcache.follow(v)
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn implements store.Q on a pool (reads) or a transaction.
type conn struct {
	q     querier
	inTx  bool          // a write transaction, on the writer connection
	stmts *stmtCache    // the writer's statements; nil on the read pool
	cache *accountCache // the writer's accounts; nil outside a write transaction
	// memo is the writer's cache again, in a read transaction (Read), with
	// its generation as of before the transaction's snapshot: the rules
	// the transaction reads are offered to it.
	memo *accountCache
	gen  uint64
	// keys are the idempotency keys this write transaction looked up, each
	// with whether a lapsed record holds it; nil outside one.
	keys map[store.IdemKey]bool
}

// interpretError turns driver errors into the store's, by code.
func interpretError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if uniqueViolation(err) {
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	}
	return err
}

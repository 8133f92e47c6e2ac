//go:build mattn

package sqlite

import (
	"errors"
	"net/url"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/creditd/creditd/internal/store"
)

// DriverName is the database/sql driver the store registers and uses.
const DriverName = "sqlite3"

// dsnParams are the settings of every connection: WAL lets readers run
// beside the writer, synchronous=FULL makes every commit durable before we
// answer, and foreign keys are off by default in SQLite. Readers take no
// lock at BEGIN and cannot write.
func dsnParams(readOnly bool) url.Values {
	p := url.Values{}
	p.Set("_journal_mode", "WAL")
	p.Set("_synchronous", "FULL")
	p.Set("_busy_timeout", busyTimeoutMS)
	p.Set("_foreign_keys", "on")
	if readOnly {
		p.Set("_query_only", "on")
	} else {
		p.Set("_txlock", "immediate")
		p.Set("_cache_size", writerCacheSize)
	}
	return p
}

func init() { store.RegisterUnavailable(unavailable) }

// unavailable reports the errors of a database that cannot serve now rather
// than of a request: locked past busy_timeout by another process, read-only,
// out of disk or memory, failing I/O, gone.
func unavailable(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrReadonly, sqlite3.ErrFull,
		sqlite3.ErrIoErr, sqlite3.ErrCantOpen, sqlite3.ErrNomem, sqlite3.ErrProtocol:
		return true
	}
	return false
}

func uniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

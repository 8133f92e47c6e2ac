//go:build !mattn

package sqlite

import (
	"errors"
	"net/url"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/creditd/creditd/internal/store"
)

// DriverName is the database/sql driver the store registers and uses.
const DriverName = "sqlite"

// dsnParams are the settings of every connection: WAL lets readers run
// beside the writer, synchronous=FULL makes every commit durable before we
// answer, and foreign keys are off by default in SQLite. Readers take no
// lock at BEGIN and cannot write.
func dsnParams(readOnly bool) url.Values {
	p := url.Values{}
	for _, pragma := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(" + busyTimeoutMS + ")", "foreign_keys(ON)"} {
		p.Add("_pragma", pragma)
	}
	if readOnly {
		p.Add("_pragma", "query_only(ON)")
	} else {
		p.Set("_txlock", "immediate")
		p.Add("_pragma", "cache_size("+writerCacheSize+")")
	}
	return p
}

func init() { store.RegisterUnavailable(unavailable) }

// unavailable reports the errors of a database that cannot serve now rather
// than of a request: locked past busy_timeout by another process, read-only,
// out of disk or memory, failing I/O, gone.
func unavailable(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}

func uniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) &&
		(se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

//go:build !mattn

package sqlite

import (
	"errors"
	"net/url"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DriverName is the database/sql driver the store registers and uses.
const DriverName = "sqlite"

// dsnParams are the settings of every connection: WAL lets readers run
// beside the writer, synchronous=FULL makes every commit durable before we
// answer, and foreign keys are off by default in SQLite. Readers take no
// lock at BEGIN and cannot write.
func dsnParams(readOnly bool) url.Values {
	p := url.Values{}
	for _, pragma := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)"} {
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

func uniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) &&
		(se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

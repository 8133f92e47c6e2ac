//go:build mattn

package sqlite

import (
	"errors"
	"net/url"

	sqlite3 "github.com/mattn/go-sqlite3"
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
	p.Set("_busy_timeout", "10000")
	p.Set("_foreign_keys", "on")
	if readOnly {
		p.Set("_query_only", "on")
	} else {
		p.Set("_txlock", "immediate")
		p.Set("_cache_size", writerCacheSize)
	}
	return p
}

func uniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3/lock"
)

// Times are kept at millisecond precision, as the API answers them and as
// the SQLite store keeps them, so both backends read back the same value.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func fromTS(t time.Time) time.Time { return t.UTC() }

// nullTS stores a zero time (no expiry) as NULL.
func nullTS(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: ms(t), Valid: true}
}

func fromNullTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// nullText stores an empty string as NULL, for columns where NULL means
// absent (an optional external id must not collide with another absent one).
func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullJSON(m json.RawMessage) *string {
	if len(m) == 0 {
		return nil
	}
	s := string(m)
	return &s
}

func fromNullJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func newLocker() lock.SessionLocker {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		panic("postgres: goose session locker: " + err.Error()) // only bad options fail
	}
	return l
}

var _ querier = (*pgxpool.Pool)(nil)

// collect reads every row of a query, converting each with scan; what names
// the query in errors. It takes the query's error too, so that a list method
// is one query and one collect.
func collect[T any](rows pgx.Rows, err error, what string, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, interpretError(err))
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, interpretError(err))
	}
	return out, nil
}

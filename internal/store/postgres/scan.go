package postgres

import (
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

func mustAffect(tag pgconn.CommandTag, what string) error {
	if tag.RowsAffected() == 0 {
		return notFound(what)
	}
	return nil
}

func newLocker() lock.SessionLocker {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		panic("postgres: goose session locker: " + err.Error()) // only bad options fail
	}
	return l
}

var _ querier = (*pgxpool.Pool)(nil)

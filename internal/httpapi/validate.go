package httpapi

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/creditd/creditd/internal/credit"
)

// The limits on what a client may send. Lengths are in characters (Unicode
// code points), as clients count them; metadata is measured in bytes of its
// JSON as sent, which is what is stored. A value past a limit is a 400 naming
// its field, whether it comes in the body, the path or a header.
const (
	maxIDLen       = 256      // ids and keys: external ids, path ids, metric keys, idempotency keys
	maxNameLen     = 256      // name, display_name
	maxTextLen     = 1024     // description, reason
	maxMetadataLen = 16 << 10 // metadata
	maxTiers       = 100      // tiers of one metering rule
)

// checks gathers a request's invalid fields, so that one 400 names them
// all, with the wire's own checks of ids and text.
type checks struct{ credit.Fields }

func (c *checks) add(field, message string) { c.Add(field, message) }

// id checks an id or key. Ids are matched, stored and sent back in paths and
// headers, so they are valid UTF-8 without control characters: PostgreSQL
// cannot store NUL or invalid UTF-8, and SQLite would store what PostgreSQL
// refuses, making the backends disagree. An empty id passes; whether one is
// required is the caller's rule.
func (c *checks) id(field, v string) {
	switch {
	case !utf8.ValidString(v):
		c.add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(v) > maxIDLen:
		c.add(field, fmt.Sprintf("must be at most %d characters", maxIDLen))
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		c.add(field, "must not contain control characters")
	}
}

// text checks free text, which may hold newlines and tabs but never NUL or
// invalid UTF-8 (PostgreSQL cannot store them), and at most limit characters.
// A limit of 0 leaves the length to package ledger, which has one for the
// field.
func (c *checks) text(field, v string, limit int) {
	switch {
	case !utf8.ValidString(v):
		c.add(field, "must be valid UTF-8")
	case limit > 0 && utf8.RuneCountInString(v) > limit:
		c.add(field, fmt.Sprintf("must be at most %d characters", limit))
	case strings.IndexByte(v, 0) >= 0:
		c.add(field, "must not contain NUL characters")
	}
}

// err returns the invalid-request error naming every field found, or nil.
func (c checks) err() error { return c.Err("the request is invalid") }

// checkID is checks.id for one value alone: a path id or a header.
func checkID(field, v string) error {
	var c checks
	c.id(field, v)
	return c.err()
}

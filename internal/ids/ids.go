// Package ids makes the identifiers creditd hands out: UUIDv7 for customers
// and tenants, and prefixed, time-ordered ids (blk_…, evt_…, txn_…) for
// everything else, so that sorting ids sorts by creation.
package ids

import (
	"encoding/base32"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Lower-case Crockford base32 keeps byte order when compared as strings.
var enc = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// The prefixes of the API's object ids.
const (
	Block       = "blk_"
	Event       = "evt_"
	Transaction = "txn_"
	Metric      = "bm_"
	Rule        = "mr_"
	Reservation = "res_"
	Plan        = "pln_"
	Purchase    = "pur_"
	LinkedTx    = "trx_"
	Webhook     = "whevt_"
)

// UUID returns a new UUIDv7 string. google/uuid keeps v7 values monotonic
// within a process, so two ids made in one millisecond still sort in order.
func UUID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// New returns prefix followed by 26 base32 characters of a new UUIDv7.
func New(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	return prefix + enc.EncodeToString(u[:])
}

// IsUUID reports whether s is a UUID in its canonical 36-character form.
func IsUUID(s string) bool {
	if len(s) != 36 || strings.Count(s, "-") != 4 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// Floor returns the smallest id New(prefix) can make at t or later: ids sort
// by creation time, so "id >= Floor(prefix, t)" selects those made since t.
func Floor(prefix string, t time.Time) string {
	var u uuid.UUID
	ms := uint64(max(t.UnixMilli(), 0))
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return prefix + enc.EncodeToString(u[:])
}

package credit

import (
	"cmp"
	"slices"
	"time"
)

// Block is one grant of credits: what is left of it, and the terms that decide
// when it burns and when it lapses.
type Block struct {
	ID        string
	Original  int64     // millicredits granted
	Remaining int64     // millicredits left; 0 ≤ Remaining ≤ Original
	Priority  int       // higher burns first
	ExpiresAt time.Time // zero: never expires
	PricePaid int64     // minor units of the grant's currency; 0 means free
	Seq       int64     // creation order within the customer, ascending
}

// Expired reports whether b has lapsed at now. A block expires at the instant
// of its ExpiresAt: from then on it is never counted nor spent.
func (b Block) Expired(now time.Time) bool {
	return !b.ExpiresAt.IsZero() && !now.Before(b.ExpiresAt)
}

// Live reports whether b can be spent at now.
func (b Block) Live(now time.Time) bool {
	return b.Remaining > 0 && !b.Expired(now)
}

// CompareBurn orders two blocks by the burn order: higher priority first, then
// the earlier expiry (no expiry last), then free before paid, then older
// first, then by id. It returns a negative number when a burns before b.
func CompareBurn(a, b Block) int {
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	switch {
	case a.ExpiresAt.IsZero() && !b.ExpiresAt.IsZero():
		return 1
	case !a.ExpiresAt.IsZero() && b.ExpiresAt.IsZero():
		return -1
	case !a.ExpiresAt.Equal(b.ExpiresAt):
		return a.ExpiresAt.Compare(b.ExpiresAt)
	}
	if aFree, bFree := a.PricePaid == 0, b.PricePaid == 0; aFree != bFree {
		if aFree {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// BurnOrder returns the blocks live at now, sorted in the order they are spent.
// The input is not modified.
func BurnOrder(blocks []Block, now time.Time) []Block {
	live := make([]Block, 0, len(blocks))
	for _, b := range blocks {
		if b.Live(now) {
			live = append(live, b)
		}
	}
	slices.SortStableFunc(live, CompareBurn)
	return live
}

// LiveBalance sums what is spendable at now. It cannot overflow when every
// write kept the account balance (which also counts not-yet-recorded
// expiries) inside int64, but it checks anyway.
func LiveBalance(blocks []Block, now time.Time) (int64, error) {
	var sum int64
	for _, b := range blocks {
		if !b.Live(now) {
			continue
		}
		var err error
		if sum, err = Add(sum, b.Remaining); err != nil {
			return 0, err
		}
	}
	return sum, nil
}

// Effective is the balance minus what reservations hold, never below zero.
func Effective(balance, reserved int64) int64 {
	if reserved >= balance {
		return 0
	}
	return balance - reserved
}

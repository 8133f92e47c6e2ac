package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/creditd/creditd/internal/store"
)

// accountCache keeps, in the writer's memory, the accounts as committed:
// each customer's row, live blocks and active holds, and external ids.
// Loading them was a sixth of a group's time on the grouped write path
// (three statements per group), and the writer is the only connection
// that changes them — unless another process writes the file, which
// PRAGMA data_version tells at the start of every write transaction: the
// cache is then dropped whole.
//
// Only the transaction holding the writer (DB.wmu) touches it. Everything a
// transaction learns — rows it loaded, rows it wrote — is staged and lands
// in the cache only when its COMMIT succeeded; a rollback drops the stage.
type accountCache struct {
	version int64 // data_version when the cache was last known to hold the file's state
	valid   bool
	rows    map[cacheKey]store.AccountRow
	ext     map[cacheKey]string // external id → customer id
	staged  []func()
	// dirty are the accounts the transaction in progress wrote: it reads
	// them back from the database, which shows it its own writes.
	dirty map[cacheKey]bool
}

type cacheKey struct {
	scope store.Scope
	id    string
}

// maxCachedAccounts bounds the cache's memory (an account with a few blocks
// is about a kilobyte): past it, the cache starts over.
const maxCachedAccounts = 100_000

func newAccountCache() *accountCache {
	return &accountCache{rows: make(map[cacheKey]store.AccountRow), ext: make(map[cacheKey]string), dirty: make(map[cacheKey]bool)}
}

// begin checks, inside a new write transaction, that nobody else changed
// the file since the cache last matched it.
func (ac *accountCache) begin(ctx context.Context, c conn) error {
	ac.staged = ac.staged[:0]
	clear(ac.dirty)
	var v int64
	if err := c.queryRow(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return fmt.Errorf("data_version: %w", err)
	}
	if !ac.valid || v != ac.version {
		clear(ac.rows)
		clear(ac.ext)
		ac.version, ac.valid = v, true
	}
	return nil
}

// commit applies what the committed transaction staged.
func (ac *accountCache) commit() {
	for _, f := range ac.staged {
		f()
	}
	ac.staged = ac.staged[:0]
	if len(ac.rows) > maxCachedAccounts || len(ac.ext) > maxCachedAccounts {
		clear(ac.rows)
		clear(ac.ext)
	}
}

// abandon forgets the stage of a transaction that did not commit. When the
// outcome of a COMMIT is unknown, the whole cache goes.
func (ac *accountCache) abandon(unknown bool) {
	ac.staged = ac.staged[:0]
	if unknown {
		ac.valid = false
	}
}

func (ac *accountCache) stage(f func()) { ac.staged = append(ac.staged, f) }

// row returns a copy of a cached account: the caller may change it. An
// account the transaction wrote is not served from the cache.
func (ac *accountCache) row(k cacheKey) (store.AccountRow, bool) {
	r, ok := ac.rows[k]
	if !ok || ac.dirty[k] {
		return r, false
	}
	r.Blocks, r.Holds = slices.Clone(r.Blocks), slices.Clone(r.Holds)
	return r, true
}

// loaded stages rows read from the database.
func (ac *accountCache) loaded(rows []store.AccountRow) {
	for _, r := range rows {
		r.Blocks, r.Holds = slices.Clone(r.Blocks), slices.Clone(r.Holds)
		ac.stage(func() {
			ac.rows[cacheKey{r.Scope, r.Customer.ID}] = r
			if r.Customer.ExternalID != "" {
				ac.ext[cacheKey{r.Scope, r.Customer.ExternalID}] = r.Customer.ID
			}
		})
	}
}

// wrote stages the effect of WritesApply on the cached accounts: the same
// rules the statements follow (a block or hold stays while it is live).
// Accounts not cached are left to be loaded.
func (ac *accountCache) wrote(w *store.Writes) {
	s := w.Scope
	for _, cu := range w.Customers {
		ac.dirty[cacheKey{s, cu.ID}] = true
	}
	for _, a := range w.Accounts {
		ac.dirty[cacheKey{s, a.CustomerID}] = true
	}
	for _, b := range w.Blocks {
		ac.dirty[cacheKey{s, b.CustomerID}] = true
	}
	for _, r := range w.Remaining {
		ac.dirty[cacheKey{s, r.CustomerID}] = true
	}
	for _, h := range append(slices.Clip(w.Reservations), w.ReservationUpdates...) {
		ac.dirty[cacheKey{s, h.CustomerID}] = true
	}
	ac.stage(func() {
		for _, cu := range w.Customers {
			ac.rows[cacheKey{s, cu.ID}] = store.AccountRow{Scope: s, Customer: cu}
			if cu.ExternalID != "" {
				ac.ext[cacheKey{s, cu.ExternalID}] = cu.ID
			}
		}
		update := func(customerID string, f func(r *store.AccountRow)) {
			k := cacheKey{s, customerID}
			if r, ok := ac.rows[k]; ok {
				f(&r)
				ac.rows[k] = r
			}
		}
		for _, a := range w.Accounts {
			update(a.CustomerID, func(r *store.AccountRow) { r.Customer.Account = a.Account })
		}
		// Loads answer blocks in seq order and holds in id order, as the
		// statements do.
		for _, b := range w.Blocks {
			if b.Remaining > 0 {
				update(b.CustomerID, func(r *store.AccountRow) {
					r.Blocks = append(r.Blocks, b)
					slices.SortStableFunc(r.Blocks, func(x, y store.Block) int { return cmp.Compare(x.Seq, y.Seq) })
				})
			}
		}
		for _, rem := range w.Remaining {
			update(rem.CustomerID, func(r *store.AccountRow) {
				i := slices.IndexFunc(r.Blocks, func(b store.Block) bool { return b.ID == rem.BlockID })
				switch {
				case i < 0:
				case rem.Remaining > 0:
					r.Blocks[i].Remaining = rem.Remaining
				default:
					r.Blocks = slices.Delete(r.Blocks, i, i+1)
				}
			})
		}
		for _, h := range w.Reservations {
			if h.Status == store.ReservationActive {
				update(h.CustomerID, func(r *store.AccountRow) {
					r.Holds = append(r.Holds, h)
					slices.SortStableFunc(r.Holds, func(x, y store.Reservation) int { return cmp.Compare(x.ID, y.ID) })
				})
			}
		}
		for _, h := range w.ReservationUpdates {
			update(h.CustomerID, func(r *store.AccountRow) {
				i := slices.IndexFunc(r.Holds, func(o store.Reservation) bool { return o.ID == h.ID })
				switch {
				case i < 0:
				case h.Status == store.ReservationActive:
					r.Holds[i].Status, r.Holds[i].CommittedAmount, r.Holds[i].ReleasedAmount = h.Status, h.CommittedAmount, h.ReleasedAmount
					r.Holds[i].UpdatedAt = h.UpdatedAt
				default:
					r.Holds = slices.Delete(r.Holds, i, i+1)
				}
			})
		}
	})
}

package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

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
// Only the transaction holding the writer (DB.wmu) changes the accounts.
// Everything a transaction learns — rows it loaded, rows it wrote — is
// staged and lands in the cache only when its COMMIT succeeded; a rollback
// drops the stage. So the cache holds committed state only, and the
// entitlement check reads it too (CheckMemo): mu orders those reads against
// the writer's changes, which it takes only to apply a stage.
type accountCache struct {
	mu      sync.RWMutex
	version int64 // data_version when the cache was last known to hold the file's state
	valid   bool
	rows    map[cacheKey]store.AccountRow
	ext     map[cacheKey]string // external id → customer id
	staged  []func()
	// rules are the active metering rules that read transactions found
	// (offerRule). gen counts the changes that may make one of them stale:
	// a rule written, or the cache dropped.
	rules map[cacheKey]store.Rule // by metric key
	gen   uint64
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
	return &accountCache{rows: make(map[cacheKey]store.AccountRow), ext: make(map[cacheKey]string), dirty: make(map[cacheKey]bool),
		rules: make(map[cacheKey]store.Rule)}
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
	ac.follow(v)
	return nil
}

// follow drops the cache when the file's data_version is not the one it
// matched: another connection committed since.
func (ac *accountCache) follow(version int64) {
	if ac.valid && version == ac.version {
		return
	}
	ac.mu.Lock()
	defer ac.mu.Unlock()
	ac.dropLocked()
	ac.version, ac.valid = version, true
}

func (ac *accountCache) dropLocked() {
	clear(ac.rows)
	clear(ac.ext)
	clear(ac.rules)
	ac.gen++
}

// commit applies what the committed transaction staged.
func (ac *accountCache) commit() {
	if len(ac.staged) == 0 {
		return
	}
	ac.mu.Lock()
	defer ac.mu.Unlock()
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
		ac.mu.Lock()
		defer ac.mu.Unlock()
		ac.dropLocked()
		ac.valid = false
	}
}

// rulesChanged stages, in a transaction that writes a metering rule, the
// end of the rules the cache holds.
func (ac *accountCache) rulesChanged() {
	ac.stage(func() {
		clear(ac.rules)
		ac.gen++
	})
}

// generation is read before a read transaction's snapshot begins; see
// offerRule.
func (ac *accountCache) generation() uint64 {
	ac.mu.RLock()
	defer ac.mu.RUnlock()
	return ac.gen
}

// maxCachedRules bounds the rules kept: past it, they start over.
const maxCachedRules = 10_000

// offerRule keeps an active rule that a read transaction found, unless a
// rule changed (or the cache was dropped) since gen was read, before the
// transaction's snapshot: the rule could then be older than the one
// committed. A rule read later than a change is only dropped with it.
func (ac *accountCache) offerRule(gen uint64, s store.Scope, r store.Rule) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if !ac.valid || gen != ac.gen {
		return
	}
	if len(ac.rules) >= maxCachedRules {
		clear(ac.rules)
	}
	ac.rules[cacheKey{s, r.MetricKey}] = r
}

// checkMemo returns, as of one committed state, a customer's account
// (named by id, or by external id when id is "") and the active rule of a
// metric, when the cache holds both.
func (ac *accountCache) checkMemo(s store.Scope, customerID, externalID, metricKey string) (store.AccountRow, store.Rule, bool) {
	ac.mu.RLock()
	defer ac.mu.RUnlock()
	if !ac.valid {
		return store.AccountRow{}, store.Rule{}, false
	}
	if customerID == "" {
		id, ok := ac.ext[cacheKey{s, externalID}]
		if !ok {
			return store.AccountRow{}, store.Rule{}, false
		}
		customerID = id
	}
	r, ok := ac.rows[cacheKey{s, customerID}]
	rule, ruled := ac.rules[cacheKey{s, metricKey}]
	if !ok || !ruled {
		return store.AccountRow{}, store.Rule{}, false
	}
	rule.Tiers = slices.Clone(rule.Tiers)
	return r.Clone(), rule, true
}

func (ac *accountCache) stage(f func()) { ac.staged = append(ac.staged, f) }

// row returns a copy of a cached account: the caller may change it. An
// account the transaction wrote is not served from the cache.
func (ac *accountCache) row(k cacheKey) (store.AccountRow, bool) {
	r, ok := ac.rows[k]
	if !ok || ac.dirty[k] {
		return r, false
	}
	return r.Clone(), true
}

// loaded stages rows read from the database.
func (ac *accountCache) loaded(rows []store.AccountRow) {
	for _, r := range rows {
		r = r.Clone()
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

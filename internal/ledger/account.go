package ledger

import (
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// account is one customer's state inside a group: locked, loaded once, and
// changed in memory by the group's commands, with the rows those changes
// will write.
type account struct {
	scope    store.Scope
	customer store.Customer
	state    credit.State
	isNew    bool // not in the database yet: created by the first write
	changed  bool // an accepted command changed it: flush writes it

	ledger    []store.LedgerEntry
	newBlocks []store.Block
	blocks    map[string]bool // ids of loaded blocks whose remaining changed
	usage     []store.UsageEvent
	purchases []store.Purchase
	sources   map[string]string // the loaded blocks' sources, for explanations

	// notices are the changes webhooks tell about (webhook.go), from
	// startEffective, the effective balance as loaded.
	notices        []notice
	startEffective int64

	holds    []store.Reservation // loaded active holds, and those placed in this group
	newHolds map[string]bool     // placed in this group: inserted
	settled  map[string]bool     // loaded, and no longer active: updated
}

// newAccount is the empty account of a customer that a grant or usage event
// is about to create.
func newAccount(scope store.Scope, externalID string, now time.Time) *account {
	return &account{
		scope:    scope,
		customer: store.Customer{ID: ids.UUID(), ExternalID: externalID, CreatedAt: now},
		isNew:    true,
		newHolds: make(map[string]bool), settled: make(map[string]bool),
	}
}

// entryRef is what a group of ledger entries refers to. An empty ID means
// "the block the entry touches" (expiries). It carries no metadata: a
// request's metadata is stored once, on what the entries refer to (the
// usage event, the block), and the ledger shows it from there. Copied into
// every entry, 16 KiB of metadata on a usage that spans 100 blocks would
// store 1.6 MB.
type entryRef struct {
	Type           string
	ID             string
	IdempotencyKey string
}

// stage records the ledger entries of one domain operation and the blocks
// they touched. Staged rows of an account no command changed are never
// written (due expiries found at load).
func (acc *account) stage(g *group, entries []credit.Entry, ref entryRef) {
	for _, e := range entries {
		// A hold's entries (reserve, release, a hold's expiry) touch no block.
		if e.Type != credit.EntryGrant && e.BlockID != "" {
			if acc.blocks == nil {
				acc.blocks = make(map[string]bool)
			}
			acc.blocks[e.BlockID] = true
		}
		refID := ref.ID
		if refID == "" {
			refID = e.BlockID
		}
		acc.ledger = append(acc.ledger, store.LedgerEntry{
			Entry: e, ID: ids.New(ids.Transaction), CustomerID: acc.customer.ID,
			ReferenceType: ref.Type, ReferenceID: refID, IdempotencyKey: ref.IdempotencyKey,
			CreatedAt: g.now,
		})
	}
}

// accept marks the account changed by an accepted command.
func (acc *account) accept(g *group) {
	if !acc.changed {
		acc.changed = true
		g.touched = append(g.touched, acc)
	}
	acc.customer.Account = acc.state.Account
}

// writes adds the account's rows to w. A block granted in this group is
// inserted with what is left of it now; a loaded block is updated by its
// whole key.
func (acc *account) writes(w *store.Writes) {
	remaining := make(map[string]int64, len(acc.state.Blocks))
	for _, b := range acc.state.Blocks {
		remaining[b.ID] = b.Remaining
	}
	if acc.isNew {
		w.Customers = append(w.Customers, acc.customer)
	} else {
		w.Accounts = append(w.Accounts, store.AccountUpdate{CustomerID: acc.customer.ID, Account: acc.state.Account})
	}
	fresh := make(map[string]bool, len(acc.newBlocks))
	for _, b := range acc.newBlocks {
		b.Remaining = remaining[b.ID]
		fresh[b.ID] = true
		w.Blocks = append(w.Blocks, b)
	}
	for id := range acc.blocks {
		if !fresh[id] {
			w.Remaining = append(w.Remaining, store.BlockRemaining{CustomerID: acc.customer.ID, BlockID: id, Remaining: remaining[id]})
		}
	}
	w.Ledger = append(w.Ledger, acc.ledger...)
	w.Usage = append(w.Usage, acc.usage...)
	w.Purchases = append(w.Purchases, acc.purchases...)
	for _, r := range acc.holds {
		switch {
		case acc.newHolds[r.ID]:
			w.Reservations = append(w.Reservations, r)
		case acc.settled[r.ID]:
			w.ReservationUpdates = append(w.ReservationUpdates, r)
		}
	}
}

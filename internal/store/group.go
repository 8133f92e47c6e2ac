package store

import (
	"context"
	"slices"
	"time"

	"github.com/creditd/creditd/internal/credit"
)

// The methods in this file serve group commit: one transaction that carries
// the commands of many requests. They take and return many rows at once, so
// that a backend can answer each in one statement (PostgreSQL) or one
// prepared statement per row without a round trip (SQLite), and they take the
// scope per row or per call, since one group may hold several tenants'
// commands.

// IdemKey is one idempotency key of one scope.
type IdemKey struct {
	Scope Scope
	Key   string
}

// AccountRow is one customer loaded for a write: its row, with the account
// totals, and its blocks that have credits left (expired or not), in creation
// order.
type AccountRow struct {
	Scope    Scope
	Customer Customer
	Blocks   []Block
	Holds    []Reservation // the reservations stored as active, elapsed or not, oldest first
}

// Clone returns r with blocks and holds of its own, for a cache to keep or
// hand out while the original changes.
func (r AccountRow) Clone() AccountRow {
	r.Blocks, r.Holds = slices.Clone(r.Blocks), slices.Clone(r.Holds)
	return r
}

// AccountUpdate is an account's new totals.
type AccountUpdate struct {
	CustomerID string
	Account    credit.Account
}

// BlockRemaining is a block's new remaining amount. The block is named by
// its whole key, so that the update finds it through the primary key.
type BlockRemaining struct {
	CustomerID string
	BlockID    string
	Remaining  int64
}

// Writes is everything a group changes in one scope, in the order the rows
// must be written: customers before their blocks, blocks before the entries
// that name them. WritesApply does not set the entries' Seq: the ledger is
// read back, numbered, through LedgerList.
type Writes struct {
	Scope     Scope
	Customers []Customer // new customers, with their first totals
	Accounts  []AccountUpdate
	Blocks    []Block // new blocks
	Remaining []BlockRemaining
	Ledger    []LedgerEntry
	Usage     []UsageEvent
	Purchases []Purchase // written after the blocks they grant
	// Transactions are the linked transactions committed, whose entries
	// name them in TransactionID.
	Transactions []Transaction
	// Reservations are new holds; ReservationUpdates the new state of
	// stored ones (see ReservationQ).
	Reservations       []Reservation
	ReservationUpdates []Reservation
	Idempotency        []IdempotencyRecord
	// Events are webhook events, pending, in the order they happened; each
	// makes its customer's queue exist (see WebhookQ).
	Events []WebhookEvent
	// Lapsed is the creation time before which a stored idempotency record
	// has lapsed: a new record for its key replaces it.
	Lapsed time.Time
}

// Empty reports whether w writes nothing.
func (w *Writes) Empty() bool {
	return len(w.Customers) == 0 && len(w.Accounts) == 0 && len(w.Blocks) == 0 && len(w.Remaining) == 0 &&
		len(w.Ledger) == 0 && len(w.Usage) == 0 && len(w.Purchases) == 0 && len(w.Transactions) == 0 && len(w.Reservations) == 0 &&
		len(w.ReservationUpdates) == 0 && len(w.Idempotency) == 0 && len(w.Events) == 0
}

// GroupReads is what GroupPrepare reads.
type GroupReads struct {
	Keys      []IdemKey
	Since     time.Time
	Configs   []Scope
	Externals map[Scope][]string
}

// GroupPrepared is what GroupPrepare found: records as IdempotencyGetAll
// returns them, the configs stored (a scope without one is left out), and
// per scope the customer ids of the external ids found.
type GroupPrepared struct {
	Records []IdemRecord
	Configs map[Scope]TenantConfig
	IDs     map[Scope]map[string]string
}

// GroupQ is what a group commit needs of a transaction, beyond Q.
type GroupQ interface {
	// IdempotencyLockAll takes the locks of keys, held until the transaction
	// ends, so that the transactions that use one key serialize, across
	// processes where the backend has several writers, even before a record
	// for the key exists. It takes them in one global order, whatever the
	// order of keys, so that groups that share keys wait for each other
	// instead of deadlocking. It fails outside a transaction.
	IdempotencyLockAll(ctx context.Context, keys []IdemKey) error
	// IdempotencyGetAll returns the records stored at or after since for
	// keys, in any order; keys without one are left out.
	IdempotencyGetAll(ctx context.Context, keys []IdemKey, since time.Time) ([]IdemRecord, error)
	// GroupPrepare does, in this order and in one round trip where the
	// backend can send them together, what a group reads before it loads
	// its accounts: IdempotencyLockAll and IdempotencyGetAll of r.Keys,
	// ConfigGet of each of r.Configs, CustomerIDsByExternal of each scope's
	// r.Externals.
	GroupPrepare(ctx context.Context, r GroupReads) (GroupPrepared, error)
	// CustomerIDsByExternal maps the external ids of one scope to customer
	// ids; unknown external ids are left out.
	CustomerIDsByExternal(ctx context.Context, s Scope, externalIDs []string) (map[string]string, error)
	// AccountsLoad locks the accounts of keys, in one global order (scope,
	// then customer id) whatever the order of keys, and returns them with
	// their blocks that have credits left and their reservations stored as
	// active. Unknown customers are left out.
	AccountsLoad(ctx context.Context, keys []CustomerKey) ([]AccountRow, error)
	// WritesApply writes w, in as few statements as the backend allows. It
	// fails with ErrConflict when a new row's key (or a new customer's
	// external id) is taken, or an idempotency record for one of w's keys is
	// live (stored at or after Lapsed), and with ErrNotFound when an account
	// or block it updates is not in w's scope. A failed call may have written
	// some of w: its transaction must roll back.
	WritesApply(ctx context.Context, w *Writes) error
}

// IdemRecord is an idempotency record with its scope.
type IdemRecord struct {
	Scope Scope
	IdempotencyRecord
}

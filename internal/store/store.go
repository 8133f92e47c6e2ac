// Package store is the seam between creditd's service and its database: one
// interface, Q, with thin noun-first methods that run a query and convert its
// rows (GroupQ, in group.go, the ones that take many rows at once for group
// commit), and Store, which adds transactions. A customer's rows (its
// account, blocks, ledger entries and usage events) and idempotency records
// are written through one method only, GroupQ's WritesApply. Backends (store/sqlite,
// store/postgres) implement it and must pass the conformance suite in
// store/storetest. Stores decide nothing about money: the rules live in
// package credit and the use cases in package ledger.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/creditd/creditd/internal/credit"
)

// Errors every backend translates its own into, by error code, never by text.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict with an existing row")
)

// Scope is the wall around a tenant's data in one environment. Every query
// that reads or writes a tenant's rows takes it.
type Scope struct {
	TenantID string
	Env      string // "live" or "test"
}

// Tenant is one user of a creditd server.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// APIKey is a key as stored: only its SHA-256 hash, never the key itself.
type APIKey struct {
	Hash      string // hex SHA-256 of the full key
	Prefix    string // the first characters of the key, to tell keys apart in listings
	TenantID  string
	Env       string
	CreatedAt time.Time
}

// Customer is a tenant's customer and its account totals.
type Customer struct {
	ID          string
	ExternalID  string
	DisplayName string
	Metadata    json.RawMessage
	CreatedAt   time.Time
	Account     credit.Account
}

// Block is a credit block with the fields the API shows beside its money.
type Block struct {
	credit.Block
	CustomerID        string
	Source            string
	Reason            string
	Currency          string
	ExternalPaymentID string
	Metadata          json.RawMessage
	CreatedAt         time.Time
}

// Metric is a billable metric.
type Metric struct {
	ID          string
	Key         string
	Name        string
	Description string
	CreatedAt   time.Time
}

// Rule is a metering rule: the price of one metric. At most one rule per
// metric is active.
type Rule struct {
	credit.Rule
	ID        string
	MetricKey string
	Active    bool
	CreatedAt time.Time
}

// LedgerEntry is one appended ledger line. Seq is assigned by the store when
// the entry is written and orders entries; it is read back through
// LedgerList (WritesApply leaves it unset). Entries are never updated or
// deleted. Metadata is read only: LedgerList fills it from the entry's
// reference (the usage event's, the granted block's), where the request
// stored it once; WritesApply does not write it.
type LedgerEntry struct {
	credit.Entry
	Seq            int64
	ID             string
	CustomerID     string
	ReferenceType  string
	ReferenceID    string
	IdempotencyKey string
	TransactionID  string // the linked transaction ("trx_…") the entry is part of, if any
	Metadata       json.RawMessage
	CreatedAt      time.Time
}

// UsageEvent is one accepted usage event.
type UsageEvent struct {
	ID             string
	CustomerID     string
	MetricKey      string
	Units          int64
	Cost           int64
	IdempotencyKey string
	Metadata       json.RawMessage
	CreatedAt      time.Time
}

// IdempotencyRecord is the stored response of a request that changed
// something, replayed to every later request with the same key.
type IdempotencyRecord struct {
	Key       string
	Method    string
	Path      string
	Status    int
	Body      []byte
	CreatedAt time.Time
}

// Page asks for at most Limit rows after the row with the cursor After ("":
// from the start), in the list's own order.
type Page struct {
	After string
	Limit int
}

// CustomerKey names one customer of one scope: the key of its row. (Package
// ledger's CustomerRef is another thing: a reference, by id or external id,
// that a request makes to a customer of its scope.)
type CustomerKey struct {
	Scope      Scope
	CustomerID string
}

// Q is every query. A Store runs them outside a transaction; the Q handed to
// Transact's function runs them inside one. Writes go through Transact only:
// outside it a store may be read-only (SQLite's read pool is). Beside
// WritesApply, the writes are of rows that belong to no customer: tenants,
// API keys, metrics and rules, and the purge of lapsed idempotency records.
type Q interface {
	TenantCreate(ctx context.Context, t Tenant) error
	TenantGet(ctx context.Context, id string) (Tenant, error)
	// TenantFirst returns the oldest tenant: a self-hosted server's own.
	TenantFirst(ctx context.Context) (Tenant, error)

	APIKeyCreate(ctx context.Context, k APIKey) error
	APIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	APIKeyCount(ctx context.Context) (int, error)

	CustomerGet(ctx context.Context, s Scope, id string) (Customer, error)
	CustomerByExternalID(ctx context.Context, s Scope, externalID string) (Customer, error)
	// CustomerList lists in creation order; After is a customer id.
	CustomerList(ctx context.Context, s Scope, p Page) ([]Customer, error)

	// MetricCreate fails with ErrConflict when the key is taken.
	MetricCreate(ctx context.Context, s Scope, m Metric) error
	MetricGet(ctx context.Context, s Scope, key string) (Metric, error)
	// MetricList lists in creation order; After is a metric id.
	MetricList(ctx context.Context, s Scope, p Page) ([]Metric, error)
	// RuleCreate deactivates the metric's active rule, if any, and inserts r
	// as the active one.
	RuleCreate(ctx context.Context, s Scope, r Rule) error
	RuleActive(ctx context.Context, s Scope, metricKey string) (Rule, error)
	// RuleList lists in creation order; After is a rule id.
	RuleList(ctx context.Context, s Scope, p Page) ([]Rule, error)

	// BlockList returns the customer's blocks with credits left, expired or
	// not, in creation order.
	BlockList(ctx context.Context, s Scope, customerID string) ([]Block, error)
	// BlockGet returns one block, whatever is left of it.
	BlockGet(ctx context.Context, s Scope, customerID, id string) (Block, error)
	// BlockExpiredCustomers returns up to limit customers that own a block
	// expired at now with credits left: the sweeper's work list.
	BlockExpiredCustomers(ctx context.Context, now time.Time, limit int) ([]CustomerKey, error)

	// LedgerList lists a customer's entries newest first; After is a Seq in
	// decimal. entryType "" lists every type.
	LedgerList(ctx context.Context, s Scope, customerID, entryType string, p Page) ([]LedgerEntry, error)

	// IdempotencyGet returns the record for key stored at or after since.
	IdempotencyGet(ctx context.Context, s Scope, key string, since time.Time) (IdempotencyRecord, error)
	// IdempotencyPurge deletes records stored before before.
	IdempotencyPurge(ctx context.Context, before time.Time) (int64, error)

	PlanQ
	TransactionQ
	ReservationQ
	ConfigQ
	WebhookQ
	GroupQ
}

// CheckSnapshot is what Store.CheckRead reads.
type CheckSnapshot struct {
	Account AccountRow
	Rule    Rule
	Ruled   bool // the metric has an active rule
}

// Store is a database: Q outside a transaction, and Transact for writes.
type Store interface {
	Q
	// Transact runs fn in one transaction, committing when fn returns nil and
	// rolling back otherwise. fn may be run more than once when the database
	// asks for a retry, so it must not have effects outside the transaction.
	Transact(ctx context.Context, fn func(q Q) error) error
	// Read runs fn in one read-only transaction whose queries all see one
	// committed snapshot, for reads that combine several rows (an account
	// and its blocks).
	Read(ctx context.Context, fn func(q Q) error) error
	// CheckRead reads, from one committed snapshot, what an entitlement
	// check needs: the customer (by id, or by external id when customerID
	// is ""), its live blocks in creation order, its holds stored as
	// active in id order, and the metric's active rule when it has one
	// (Ruled). It fails with ErrNotFound when no such customer exists. It
	// is the hot read path: a backend answers it as cheaply as it can.
	CheckRead(ctx context.Context, s Scope, customerID, externalID, metricKey string) (CheckSnapshot, error)
	// Migrate brings the schema up to date.
	Migrate(ctx context.Context) error
	Close() error
}

package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// UsageInput is one usage event.
type UsageInput struct {
	Customer       CustomerRef
	MetricKey      string
	Units          int64
	Metadata       json.RawMessage
	IdempotencyKey string
}

// UsageResult is an accepted usage event.
type UsageResult struct {
	Event    store.UsageEvent
	Customer store.Customer
	Entries  []credit.Entry
}

// RecordUsage prices a usage event with its metric's active rule and debits
// the cost from the customer's live blocks in burn order. A cost above the
// effective balance is an *credit.InsufficientError and writes nothing
// customer-visible: no event, no debit, not even the customer an unknown
// external id would have created.
func (tx *Tx) RecordUsage(ctx context.Context, in UsageInput) (UsageResult, error) {
	if in.Units < 1 {
		return UsageResult{}, credit.Invalid("units", "must be an integer ≥ 1")
	}
	if in.MetricKey == "" {
		return UsageResult{}, credit.Invalid("billable_metric_key", "is required")
	}
	rule, err := activeRule(ctx, tx.q, tx.scope, in.MetricKey)
	if err != nil {
		return UsageResult{}, err
	}
	cost, err := rule.Cost(in.Units)
	if err != nil {
		return UsageResult{}, err
	}
	acc, err := tx.accountFor(ctx, in.Customer, true)
	if err != nil {
		return UsageResult{}, err
	}
	entries, err := acc.state.Debit(cost, credit.EntryUsage, tx.now)
	if err != nil {
		return UsageResult{}, err
	}
	ev := store.UsageEvent{
		ID: ids.New(ids.Event), CustomerID: acc.customer.ID, MetricKey: in.MetricKey, Units: in.Units, Cost: cost,
		IdempotencyKey: in.IdempotencyKey, Metadata: in.Metadata, CreatedAt: tx.now,
	}
	ref := entryRef{Type: "usage_event", ID: ev.ID, IdempotencyKey: in.IdempotencyKey, Metadata: in.Metadata}
	if err := tx.persist(ctx, acc, entries, ref); err != nil {
		return UsageResult{}, err
	}
	if err := tx.q.UsageEventInsert(ctx, tx.scope, ev); err != nil {
		return UsageResult{}, fmt.Errorf("record usage: %w", err)
	}
	return UsageResult{Event: ev, Customer: acc.customer, Entries: entries}, nil
}

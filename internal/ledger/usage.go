package ledger

import (
	"context"
	"encoding/json"

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

// Validate checks the event's own fields.
func (in UsageInput) Validate() error {
	if in.MetricKey == "" {
		return credit.Invalid("billable_metric_key", "is required")
	}
	return validUnits(in.Units)
}

// validUnits is the one check of a usage's units, wherever they come from.
func validUnits(units int64) error {
	if units < 1 {
		return credit.Invalid("units", "must be an integer ≥ 1")
	}
	return nil
}

// UsageResult is an accepted usage event.
type UsageResult struct {
	Event    store.UsageEvent
	Customer store.Customer
	Entries  []credit.Entry
	// Breakdown explains the debit: the blocks it took from, in burn order.
	Breakdown []BlockDebit
	// EffectiveBalance is what is left to spend right after the debit.
	EffectiveBalance int64
}

// Usage records a usage event: it prices the event with its metric's active
// rule and debits the cost from the customer's live blocks in burn order. A
// cost above the effective balance is an *credit.InsufficientError and
// writes nothing: no event, no debit, not even the customer an unknown
// external id would have created.
type Usage struct {
	In     UsageInput
	Encode Encoder[UsageResult]
}

func (c Usage) plan(p *plan) { p.customer(c.In.Customer) }
func (c Usage) size() int    { return 1 }

func (c Usage) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	res, err := g.recordUsage(ctx, req.Scope, c.In)
	if err != nil {
		return Response{}, false, err
	}
	status, body, err := c.Encode(res)
	return Response{Status: status, Body: body}, true, err
}

func (g *group) recordUsage(ctx context.Context, scope store.Scope, in UsageInput) (UsageResult, error) {
	if err := in.Validate(); err != nil {
		return UsageResult{}, err
	}
	rule, err := g.rule(ctx, scope, in.MetricKey)
	if err != nil {
		return UsageResult{}, err
	}
	cost, err := rule.Cost(in.Units)
	if err != nil {
		return UsageResult{}, err
	}
	acc, err := g.account(scope, in.Customer, true)
	if err != nil {
		return UsageResult{}, err
	}
	entries, err := acc.state.Debit(cost, credit.EntryUsage, g.now)
	if err != nil {
		return UsageResult{}, err
	}
	ev := store.UsageEvent{
		ID: ids.New(ids.Event), CustomerID: acc.customer.ID, MetricKey: in.MetricKey, Units: in.Units, Cost: cost,
		IdempotencyKey: in.IdempotencyKey, Metadata: in.Metadata, CreatedAt: g.now,
	}
	acc.stage(g, entries, entryRef{Type: "usage_event", ID: ev.ID, IdempotencyKey: in.IdempotencyKey})
	acc.usage = append(acc.usage, ev)
	acc.accept(g)
	live, err := credit.LiveBalance(acc.state.Blocks, g.now)
	if err != nil {
		return UsageResult{}, err
	}
	res := UsageResult{Event: ev, Customer: acc.customer, Entries: entries, Breakdown: breakdown(entries, acc.blockInfo),
		EffectiveBalance: credit.Effective(live, acc.state.Account.Reserved)}
	consumed := res
	acc.note(g, &Event{Type: EventCreditsConsumed, Usage: &consumed})
	return res, nil
}

// BatchEvent is one event of a usage batch: In, under its IdempotencyKey.
// Malformed rejects the event before anything (no usable key); Invalid
// rejects it unless its key was used before, since a replay ignores the
// body.
type BatchEvent struct {
	In        UsageInput
	Malformed error
	Invalid   error
}

// BatchResult is the fate of one batch event: accepted (Result), a
// duplicate of an event recorded before (Stored holds that event's stored
// answer), or rejected (Err).
type BatchResult struct {
	Result    UsageResult
	Duplicate bool
	Stored    []byte
	Err       error
}

// UsageBatch records many usage events in one command. Each event has its
// own idempotency key, stored under EventMethod and EventPath as if it had
// been sent alone, and its own fate: a rejected event rejects only itself.
type UsageBatch struct {
	Events      []BatchEvent
	EventMethod string
	EventPath   string
	EncodeEvent Encoder[UsageResult]   // an accepted event's answer, stored under its key
	Encode      Encoder[[]BatchResult] // the batch's answer
}

func (c UsageBatch) plan(p *plan) {
	for _, ev := range c.Events {
		if ev.Malformed == nil {
			p.key(ev.In.IdempotencyKey)
		}
		if ev.Malformed == nil && ev.Invalid == nil {
			p.customer(ev.In.Customer)
		}
	}
}

func (c UsageBatch) size() int { return max(1, len(c.Events)) }

func (c UsageBatch) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	results := make([]BatchResult, len(c.Events))
	changed := false
	for i, ev := range c.Events {
		r, err := c.event(ctx, g, req, ev)
		if err != nil && credit.ErrorCode(err) == "" {
			return Response{}, false, err // the database failed: the whole group rolls back
		}
		r.Err = err
		results[i] = r
		changed = changed || (err == nil && !r.Duplicate)
	}
	status, body, err := c.Encode(results)
	return Response{Status: status, Body: body}, changed, err
}

func (c UsageBatch) event(ctx context.Context, g *group, req Request, ev BatchEvent) (BatchResult, error) {
	if ev.Malformed != nil {
		return BatchResult{}, ev.Malformed
	}
	key := ev.In.IdempotencyKey
	if key == req.Key {
		// The batch stores its own answer under req.Key when it commits: an
		// event may not take the key of another request, this one included.
		return BatchResult{}, credit.Errorf(credit.EIdempotencyReused,
			"idempotency_key %q is the batch's own Idempotency-Key; give each event a key of its own", key)
	}
	evReq := Request{Scope: req.Scope, Key: key, Method: c.EventMethod, Path: c.EventPath}
	if rec, ok := g.records[idemKey{req.Scope, key}]; ok {
		resp, _, err := replayOf(evReq, rec)
		return BatchResult{Duplicate: true, Stored: resp.Body}, err
	}
	if ev.Invalid != nil {
		return BatchResult{}, ev.Invalid
	}
	res, err := g.recordUsage(ctx, req.Scope, ev.In)
	if err != nil {
		return BatchResult{}, err
	}
	status, body, err := c.EncodeEvent(res)
	if err != nil {
		return BatchResult{}, err
	}
	g.remember(req.Scope, store.IdempotencyRecord{Key: key, Method: c.EventMethod, Path: c.EventPath, Status: status, Body: body})
	return BatchResult{Result: res}, nil
}

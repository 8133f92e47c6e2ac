package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// MaxPriority is the highest block priority a grant may set.
const MaxPriority = 100

// GrantInput is a grant of credits to one customer.
type GrantInput struct {
	Customer CustomerRef
	// AutoCreate creates the customer named by Customer.ExternalID when it
	// does not exist.
	AutoCreate        bool
	Credits           int64
	Priority          int64
	ExpiresAt         time.Time // zero: never
	Source            string
	Reason            string
	PricePaid         int64
	Currency          string
	ExternalPaymentID string
	Metadata          json.RawMessage
	IdempotencyKey    string
}

// Validate checks the grant's own fields at now.
func (in GrantInput) Validate(now time.Time) error {
	var fields credit.Fields
	if in.Credits < 1 {
		fields.Add("credits", "must be a positive integer of millicredits")
	}
	if in.Priority < 0 || in.Priority > MaxPriority {
		fields.Add("priority", fmt.Sprintf("must be between 0 and %d", MaxPriority))
	}
	if !in.ExpiresAt.IsZero() && !in.ExpiresAt.After(now) {
		fields.Add("expires_at", "must be in the future")
	}
	if in.PricePaid < 0 {
		fields.Add("price_paid", "must not be negative")
	}
	if utf8.RuneCountInString(in.Currency) > 16 {
		fields.Add("currency", "must be at most 16 characters")
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{{"source", in.Source, 256}, {"reason", in.Reason, 1024}, {"external_payment_id", in.ExternalPaymentID, 256}} {
		if utf8.RuneCountInString(f.value) > f.max {
			fields.Add(f.name, fmt.Sprintf("must be at most %d characters", f.max))
		}
	}
	return fields.Err("the grant is invalid")
}

// GrantResult is a granted block and its customer.
type GrantResult struct {
	Block    store.Block
	Customer store.Customer
}

// Grant adds a credit block to a customer, creating the customer first when
// AutoCreate allows it.
type Grant struct {
	In     GrantInput
	Encode Encoder[GrantResult]
}

func (c Grant) plan(p *plan) { p.customer(c.In.Customer) }
func (c Grant) size() int    { return 1 }

func (c Grant) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	res, err := g.grant(req.Scope, c.In)
	if err != nil {
		return Response{}, false, err
	}
	status, body, err := c.Encode(res)
	return Response{Status: status, Body: body}, true, err
}

func (g *group) grant(scope store.Scope, in GrantInput) (GrantResult, error) {
	if err := in.Validate(g.now); err != nil {
		return GrantResult{}, err
	}
	acc, err := g.account(scope, in.Customer, in.AutoCreate)
	if err != nil {
		return GrantResult{}, err
	}
	b := store.Block{
		Block: credit.Block{
			ID: ids.New(ids.Block), Original: in.Credits, Remaining: in.Credits, Priority: int(in.Priority),
			ExpiresAt: in.ExpiresAt, PricePaid: in.PricePaid, Seq: acc.state.Account.Version + 1,
		},
		CustomerID: acc.customer.ID, Source: in.Source, Reason: in.Reason, Currency: in.Currency,
		ExternalPaymentID: in.ExternalPaymentID, Metadata: in.Metadata, CreatedAt: g.now,
	}
	entry, err := acc.state.Grant(b.Block)
	if err != nil {
		return GrantResult{}, err
	}
	acc.newBlocks = append(acc.newBlocks, b)
	acc.stage(g, []credit.Entry{entry}, entryRef{Type: "grant", ID: b.ID, IdempotencyKey: in.IdempotencyKey})
	acc.accept(g)
	granted := b
	acc.note(g, &Event{Type: EventCreditsGranted, Block: &granted})
	return GrantResult{Block: b, Customer: acc.customer}, nil
}

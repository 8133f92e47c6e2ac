package ledger

import (
	"context"
	"encoding/json"
	"errors"
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
	var fields []credit.FieldError
	bad := func(f, m string) { fields = append(fields, credit.FieldError{Field: f, Message: m}) }
	if in.Credits < 1 {
		bad("credits", "must be a positive integer of millicredits")
	}
	if in.Priority < 0 || in.Priority > MaxPriority {
		bad("priority", fmt.Sprintf("must be between 0 and %d", MaxPriority))
	}
	if !in.ExpiresAt.IsZero() && !in.ExpiresAt.After(now) {
		bad("expires_at", "must be in the future")
	}
	if in.PricePaid < 0 {
		bad("price_paid", "must not be negative")
	}
	if utf8.RuneCountInString(in.Currency) > 16 {
		bad("currency", "must be at most 16 characters")
	}
	for f, v := range map[string]string{"source": in.Source, "reason": in.Reason, "external_payment_id": in.ExternalPaymentID} {
		if utf8.RuneCountInString(v) > 256 {
			bad(f, "must be at most 256 characters")
		}
	}
	if len(fields) > 0 {
		return &credit.Error{Code: credit.EInvalid, Message: "the grant is invalid", Fields: fields}
	}
	return nil
}

// Grant adds a credit block to a customer, creating the customer first when
// AutoCreate allows it.
func (tx *Tx) Grant(ctx context.Context, in GrantInput) (store.Block, store.Customer, error) {
	if err := in.Validate(tx.now); err != nil {
		return store.Block{}, store.Customer{}, err
	}
	acc, err := tx.accountFor(ctx, in.Customer, in.AutoCreate)
	if err != nil {
		return store.Block{}, store.Customer{}, err
	}
	b := store.Block{
		Block: credit.Block{
			ID: ids.New(ids.Block), Original: in.Credits, Remaining: in.Credits, Priority: int(in.Priority),
			ExpiresAt: in.ExpiresAt, PricePaid: in.PricePaid, Seq: acc.state.Account.Version + 1,
		},
		CustomerID: acc.customer.ID, Source: in.Source, Reason: in.Reason, Currency: in.Currency,
		ExternalPaymentID: in.ExternalPaymentID, Metadata: in.Metadata, CreatedAt: tx.now,
	}
	entry, err := acc.state.Grant(b.Block)
	if err != nil {
		return store.Block{}, store.Customer{}, err
	}
	if acc.isNew {
		// The block's row references its customer: create the customer first.
		if err := tx.persist(ctx, acc, nil, entryRef{}); err != nil {
			return store.Block{}, store.Customer{}, err
		}
	}
	if err := tx.q.BlockInsert(ctx, tx.scope, b); err != nil {
		return store.Block{}, store.Customer{}, fmt.Errorf("grant: %w", err)
	}
	ref := entryRef{Type: "grant", ID: b.ID, IdempotencyKey: in.IdempotencyKey, Metadata: in.Metadata}
	if err := tx.persist(ctx, acc, []credit.Entry{entry}, ref); err != nil {
		return store.Block{}, store.Customer{}, err
	}
	return b, acc.customer, nil
}

// accountFor resolves ref and locks its account. An unknown customer named
// by external id is a new, empty account when create is true (persist then
// inserts it); otherwise it is not-found.
func (tx *Tx) accountFor(ctx context.Context, ref CustomerRef, create bool) (*account, error) {
	c, err := findCustomer(ctx, tx.q, tx.scope, ref)
	switch {
	case err == nil:
		return tx.lockAccount(ctx, c)
	case errors.Is(err, store.ErrNotFound) && create && ref.ExternalID != "":
		return tx.newAccount(ref.ExternalID), nil
	default:
		return nil, notFound(err, "no customer with %s", ref)
	}
}

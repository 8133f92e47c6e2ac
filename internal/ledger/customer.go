package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// CustomerInput is a customer to create.
type CustomerInput struct {
	ExternalID  string
	DisplayName string
	Metadata    json.RawMessage
}

// CreateCustomer creates a customer with an empty account. An external id
// that is taken is a customer-exists conflict naming the existing customer.
func (tx *Tx) CreateCustomer(ctx context.Context, in CustomerInput) (store.Customer, error) {
	if in.ExternalID != "" {
		existing, err := tx.q.CustomerByExternalID(ctx, tx.scope, in.ExternalID)
		if err == nil {
			return store.Customer{}, customerExists(existing)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Customer{}, fmt.Errorf("create customer: %w", err)
		}
	}
	c := store.Customer{ID: ids.UUID(), ExternalID: in.ExternalID, DisplayName: in.DisplayName, Metadata: in.Metadata, CreatedAt: tx.now}
	if err := tx.q.CustomerCreate(ctx, tx.scope, c); err != nil {
		return store.Customer{}, fmt.Errorf("create customer: %w", err)
	}
	return c, nil
}

func customerExists(c store.Customer) error {
	e := credit.Errorf(credit.ECustomerExists, "a customer with external_id %q already exists", c.ExternalID)
	e.Extra = map[string]any{"customer_id": c.ID, "external_id": c.ExternalID}
	return e
}

// Customer reads one customer.
func (s *Service) Customer(ctx context.Context, scope store.Scope, ref CustomerRef) (store.Customer, error) {
	c, err := findCustomer(ctx, s.store, scope, ref)
	if err != nil {
		return store.Customer{}, notFound(err, "no customer with %s", ref)
	}
	return c, nil
}

// Customers lists customers in creation order.
func (s *Service) Customers(ctx context.Context, scope store.Scope, p store.Page) ([]store.Customer, error) {
	return s.store.CustomerList(ctx, scope, p)
}

package ledger

import (
	"context"
	"encoding/json"

	"github.com/creditd/creditd/internal/credit"
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
type CreateCustomer struct {
	In     CustomerInput
	Encode Encoder[store.Customer]
}

func (c CreateCustomer) plan(p *plan) {
	if c.In.ExternalID != "" {
		p.customer(CustomerRef{ExternalID: c.In.ExternalID})
	}
}

func (c CreateCustomer) size() int { return 1 }

func (c CreateCustomer) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	var acc *account
	if c.In.ExternalID != "" {
		var err error
		acc, err = g.account(req.Scope, CustomerRef{ExternalID: c.In.ExternalID}, true)
		if err != nil {
			return Response{}, false, err
		}
		if !acc.isNew || acc.changed {
			return Response{}, false, customerExists(acc.customer)
		}
	} else {
		acc = newAccount(req.Scope, "", g.now)
	}
	acc.customer.DisplayName, acc.customer.Metadata = c.In.DisplayName, c.In.Metadata
	acc.accept(g)
	status, body, err := c.Encode(acc.customer)
	return Response{Status: status, Body: body}, true, err
}

func customerExists(c store.Customer) error {
	e := credit.Errorf(credit.ECustomerExists, "a customer with external_id %q already exists", c.ExternalID)
	e.Extra = map[string]any{"customer_id": c.ID, "external_id": c.ExternalID}
	return e
}

// Customer reads one customer.
func (s *Service) Customer(ctx context.Context, scope store.Scope, ref CustomerRef) (store.Customer, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c, err := findCustomer(ctx, s.store, scope, ref)
	if err != nil {
		return store.Customer{}, notFound(err, "no customer with %s", ref)
	}
	return c, nil
}

// Customers lists customers in creation order.
func (s *Service) Customers(ctx context.Context, scope store.Scope, p store.Page) ([]store.Customer, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.store.CustomerList(ctx, scope, p)
}

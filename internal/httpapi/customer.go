package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// addressing is where an endpoint takes its customer from.
type addressing int

const (
	fromBody     addressing = iota // customer_id or external_customer_id in the body
	byID                           // /v1/customers/{customer_id}/…
	byExternalID                   // /v1/customer-by-external-id/{external_id}/…
)

// pathCustomer names the customer of a path. A {customer_id} that is not a
// known UUID is looked up as an external id (the seed's client sends one).
// The id is held to the rules of ids in a body, under the path parameter's
// name.
func pathCustomer(r *http.Request, a addressing) (ledger.CustomerRef, error) {
	if a == byExternalID {
		id := r.PathValue("external_id")
		return ledger.CustomerRef{ExternalID: id}, checkID("external_id", id)
	}
	id := r.PathValue("customer_id")
	return ledger.CustomerRef{ID: id, Lenient: true}, checkID("customer_id", id)
}

// bodyCustomer names the customer of a body: exactly one of the two ids.
func bodyCustomer(id, externalID string) (ledger.CustomerRef, error) {
	switch {
	case id != "" && externalID != "":
		return ledger.CustomerRef{}, credit.Invalid("customer_id", "give either customer_id or external_customer_id, not both")
	case id == "" && externalID == "":
		return ledger.CustomerRef{}, credit.Invalid("external_customer_id", "customer_id or external_customer_id is required")
	}
	var c checks
	c.id("customer_id", id)
	c.id("external_customer_id", externalID)
	return ledger.CustomerRef{ID: id, ExternalID: externalID}, c.err()
}

// customerJSON is the customer object.
type customerJSON struct {
	ID          string          `json:"id"`
	ExternalID  *string         `json:"external_id"`
	DisplayName string          `json:"display_name"`
	Metadata    json.RawMessage `json:"metadata"`
	CreatedAt   Time            `json:"created_at"`
}

func customerOut(c store.Customer) customerJSON {
	return customerJSON{ID: c.ID, ExternalID: nullable(c.ExternalID), DisplayName: c.DisplayName, Metadata: metadataOut(c.Metadata), CreatedAt: Time(c.CreatedAt)}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type customerRequest struct {
	ExternalID  string   `json:"external_id"`
	DisplayName string   `json:"display_name"`
	Metadata    Metadata `json:"metadata"`
}

func (s *Server) handleCustomerCreate() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req customerRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			var c checks
			c.id("external_id", req.ExternalID)
			c.text("display_name", req.DisplayName, maxNameLen)
			if err := c.err(); err != nil {
				return nil, err
			}
			in := ledger.CustomerInput{ExternalID: req.ExternalID, DisplayName: req.DisplayName, Metadata: json.RawMessage(req.Metadata)}
			return ledger.CreateCustomer{In: in, Encode: encodeAs(http.StatusCreated, customerOut)}, nil
		}, nil)
	}
}

func (s *Server) handleCustomerGet(a addressing) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ref, err := pathCustomer(r, a)
		if err != nil {
			return err
		}
		c, err := s.svc.Customer(r.Context(), scopeOf(r.Context()), ref)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, customerOut(c))
	}
}

func (s *Server) handleCustomerList() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		rows, err := s.svc.Customers(r.Context(), scopeOf(r.Context()), p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, customerOut, func(c store.Customer) string { return c.ID }))
	}
}

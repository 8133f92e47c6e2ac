package ledger

import (
	"testing"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// A customer path segment is an id first and an external id second, so no
// customer may take another customer's id as its external id: the path
// would name two customers. Creating one, explicitly or by a grant or usage
// that auto-creates, is a conflict and writes nothing.
func TestExternalIDThatIsAnotherCustomersIDIsRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "calls", 0) // usage of cost 0 would create its customer
		first := f.grant(t, scope, "g1", "alice", 1000).Customer
		taken := first.ID

		create := CreateCustomer{In: CustomerInput{ExternalID: taken}, Encode: jsonOf[store.Customer](201)}
		_, err := f.run(t, scope, "c1", "/v1/customers", create)
		if !isCode(err, credit.EConflict) {
			t.Errorf("create a customer with external_id = another's id: err = %v, want %s", err, credit.EConflict)
		}
		in := GrantInput{Customer: CustomerRef{ExternalID: taken}, AutoCreate: true, Credits: 5000, Source: "topup", IdempotencyKey: "g2"}
		_, err = f.run(t, scope, "g2", "/v1/topup/grant", Grant{In: in, Encode: jsonOf[GrantResult](201)})
		if !isCode(err, credit.EConflict) {
			t.Errorf("grant to external_customer_id = another's id: err = %v, want %s", err, credit.EConflict)
		}
		_, err = f.run(t, scope, "u1", "/v1/usage", usage(taken, "calls", 1, "u1"))
		if !isCode(err, credit.EConflict) {
			t.Errorf("usage for external_customer_id = another's id: err = %v, want %s", err, credit.EConflict)
		}

		// Nothing was created, and the id still names the first customer,
		// as an id and through the lenient path lookup.
		if _, err := f.st.CustomerByExternalID(t.Context(), scope, taken); err == nil {
			t.Errorf("a customer with external id %s exists after the refusals", taken)
		}
		got, err := f.svc.Customer(t.Context(), scope, CustomerRef{ID: taken, Lenient: true})
		if err != nil || got.ID != taken {
			t.Errorf("customer %s by the path lookup = %+v, %v; want the first customer", taken, got, err)
		}
		if b := f.balance(t, scope, "alice").Balance; b != 1000 {
			t.Errorf("alice's balance = %d, want 1000 (untouched)", b)
		}

		// An external id shaped like an id that no customer has is fine.
		free := "019d6258-07ba-7418-83be-58f5fde53e4e"
		if _, err := f.run(t, scope, "c2", "/v1/customers", CreateCustomer{In: CustomerInput{ExternalID: free}, Encode: jsonOf[store.Customer](201)}); err != nil {
			t.Errorf("create a customer with a UUID-shaped external id no customer has: %v", err)
		}
	})
}

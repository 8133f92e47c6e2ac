package httpapi_test

import (
	"net/http"
	"testing"
)

// /v1/customers/{customer_id} takes an id, then an external id. A customer
// whose external id is another customer's id would make that path name two
// customers, so creating one is refused (409 conflict) however it is asked
// for, and the path keeps naming the customer with that id.
func TestExternalIDEqualToAnotherCustomersIDIsAConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		first := ts.createCustomer(t, "alice")
		ts.createMetric(t, "calls", perUnit(0))

		ts.post(t, "/v1/customers", obj{"external_id": first.ID}).wantProblem(t, http.StatusConflict, "conflict")
		ts.post(t, "/v1/topup/grant", obj{"external_customer_id": first.ID, "credits": 5}).
			wantProblem(t, http.StatusConflict, "conflict")
		ts.post(t, ext(first.ID, "/credits/grant"), obj{"credits": 5}).wantProblem(t, http.StatusConflict, "conflict")
		ts.post(t, "/v1/usage", obj{"external_customer_id": first.ID, "billable_metric_key": "calls", "units": 1}).
			wantProblem(t, http.StatusConflict, "conflict")
		ts.get(t, ext(first.ID, "")).wantProblem(t, http.StatusNotFound, "not-found")

		// The path names the customer with that id, and only it.
		ts.post(t, "/v1/customers/"+first.ID+"/credits/grant", obj{"credits": 7}).want(t, http.StatusCreated)
		if got := ts.balance(t, "alice").Balance; got != 7 {
			t.Errorf("alice's balance = %d, want 7: the grant through her id reached her", got)
		}
	})
}

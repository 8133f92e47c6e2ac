package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

type transactionResp struct {
	ID      string           `json:"id"`
	Results []map[string]any `json:"results"`
}

func transfer(from, to string, amount int64) obj {
	return obj{"operations": []obj{
		{"type": "usage", "external_customer_id": from, "billable_metric_key": "transfer", "units": amount},
		{"type": "grant", "external_customer_id": to, "credits": amount, "reason": "transfer from " + from},
	}, "metadata": obj{"why": "gift"}}
}

// A transfer between two customers is a usage on one and a grant on the
// other, in one linked transaction.
func TestLinkedTransactionTransfer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "transfer", perUnit(1))
		ts.grant(t, "ada", 1000, nil)

		r := ts.postKey(t, "/v1/transactions", "tx-1", transfer("ada", "bob", 400)).want(t, http.StatusCreated)
		var tx transactionResp
		r.decode(t, &tx)
		if len(tx.ID) < 4 || tx.ID[:4] != "trx_" || len(tx.Results) != 2 {
			t.Fatalf("transaction = %s, want trx_… with two results", r.body)
		}
		if tx.Results[0]["index"] != 0.0 || tx.Results[0]["type"] != "usage" || tx.Results[0]["estimated_cost"] != 400.0 {
			t.Errorf("first result = %v, want the usage's answer with index 0", tx.Results[0])
		}
		if tx.Results[1]["index"] != 1.0 || tx.Results[1]["type"] != "grant" || tx.Results[1]["original_amount"] != 400.0 || tx.Results[1]["source"] != "topup" {
			t.Errorf("second result = %v, want the grant's block with index 1", tx.Results[1])
		}
		if a, b := ts.balance(t, "ada").Balance, ts.balance(t, "bob").Balance; a != 600 || b != 400 {
			t.Errorf("balances = %d, %d; want 600, 400", a, b)
		}
		for _, who := range []string{"ada", "bob"} {
			es := ts.ledger(t, who)
			if len(es) == 0 || es[0].TransactionID == nil || *es[0].TransactionID != tx.ID {
				t.Errorf("%s's newest ledger entry = %+v, want transaction_id %s", who, es[0], tx.ID)
			}
		}
		got := ts.get(t, "/v1/transactions/"+tx.ID).want(t, http.StatusOK)
		var again transactionResp
		got.decode(t, &again)
		if again.ID != tx.ID || len(again.Results) != 2 {
			t.Errorf("GET the transaction = %s, want its answer", got.body)
		}
		replay := ts.postKey(t, "/v1/transactions", "tx-1", transfer("ada", "bob", 400)).want(t, http.StatusCreated)
		if replay.header.Get("X-Idempotent-Replayed") != "true" {
			t.Errorf("the same key again was not a replay")
		}
		if a := ts.balance(t, "ada").Balance; a != 600 {
			t.Errorf("ada's balance after the replay = %d, want 600", a)
		}
		ts.get(t, "/v1/transactions/trx_nope").wantProblem(t, http.StatusNotFound, "not-found")
	})
}

// The first operation that fails fails the whole, with its own problem and
// its index, and nothing of the others is written.
func TestLinkedTransactionAllOrNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testServer) {
		ts.createMetric(t, "transfer", perUnit(1))
		ts.grant(t, "ada", 1000, nil)
		ops := func(last obj) obj {
			return obj{"operations": []obj{
				{"type": "usage", "external_customer_id": "ada", "billable_metric_key": "transfer", "units": 300},
				{"type": "grant", "external_customer_id": "carol", "credits": 300},
				last,
			}}
		}
		index := func(r resp) any {
			var m map[string]any
			json.Unmarshal(r.body, &m)
			return m["operation_index"]
		}
		r := ts.post(t, "/v1/transactions", ops(obj{"type": "usage", "external_customer_id": "ada", "billable_metric_key": "transfer", "units": 5000}))
		p := r.wantProblem(t, http.StatusPaymentRequired, "insufficient-credits")
		if index(r) != 2.0 || p.Available == nil || *p.Available != 700 {
			t.Errorf("402 = %s, want operation_index 2 and 700 available after the first operation", r.body)
		}
		r = ts.post(t, "/v1/transactions", ops(obj{"type": "usage", "external_customer_id": "ada", "billable_metric_key": "nope", "units": 1}))
		r.wantProblem(t, http.StatusNotFound, "not-found")
		if index(r) != 2.0 {
			t.Errorf("404 = %s, want operation_index 2", r.body)
		}
		r = ts.post(t, "/v1/transactions", ops(obj{"type": "grant", "external_customer_id": "carol", "credits": "many"}))
		r.wantProblem(t, http.StatusBadRequest, "invalid-request", "credits")
		if index(r) != 2.0 {
			t.Errorf("400 = %s, want operation_index 2", r.body)
		}
		ts.post(t, "/v1/transactions", ops(obj{"type": "refund"})).wantProblem(t, http.StatusBadRequest, "invalid-request", "type")
		ts.post(t, "/v1/transactions", obj{"operations": []obj{}}).wantProblem(t, http.StatusBadRequest, "invalid-request", "operations")

		if a := ts.balance(t, "ada").Balance; a != 1000 {
			t.Errorf("ada's balance = %d, want 1000: nothing of a refused transaction", a)
		}
		ts.get(t, ext("carol", "")).wantProblem(t, http.StatusNotFound, "not-found")
	})
}

package ledger

import (
	"errors"
	"testing"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

func usageOp(ext, metric string, units int64) Operation {
	return Operation{Type: "usage", Usage: UsageInput{Customer: CustomerRef{ExternalID: ext}, MetricKey: metric, Units: units}}
}

func grantOp(ext string, credits int64) Operation {
	return Operation{Type: "grant", Grant: GrantInput{Customer: CustomerRef{ExternalID: ext}, AutoCreate: true, Credits: credits, Source: "topup"}}
}

func (f *fixture) transact(t *testing.T, key string, ops ...Operation) (TransactionResult, error) {
	t.Helper()
	var out TransactionResult
	enc := func(r TransactionResult) (int, []byte, error) {
		out = r
		return 201, []byte(`{"id":"` + r.ID + `"}`), nil
	}
	_, err := f.run(t, scope, key, "/v1/transactions", LinkedTransaction{Operations: ops, Encode: enc})
	return out, err
}

// A transfer: a usage on one customer and a grant on another, in one
// transaction; its entries carry its id, and its answer can be read back.
func TestLinkedTransactionAppliesAllInOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "transfer", 1)
		f.grant(t, scope, "g1", "ada", 1000)

		res, err := f.transact(t, "t1", usageOp("ada", "transfer", 400), grantOp("bob", 400))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Results) != 2 || res.Results[0].Usage.Event.Cost != 400 || res.Results[1].Grant.Block.Original != 400 {
			t.Fatalf("results = %+v, want the usage then the grant", res.Results)
		}
		if a, b := f.balance(t, scope, "ada").Balance, f.balance(t, scope, "bob").Balance; a != 600 || b != 400 {
			t.Errorf("balances after the transfer = %d, %d; want 600, 400", a, b)
		}
		for _, who := range []string{"ada", "bob"} {
			_, entries, err := f.svc.Ledger(t.Context(), scope, CustomerRef{ExternalID: who}, "", store.Page{Limit: 1})
			if err != nil || len(entries) != 1 || entries[0].TransactionID != res.ID {
				t.Errorf("%s's last entry = %+v, %v; want it part of %s", who, entries, err, res.ID)
			}
		}
		stored, err := f.svc.Transaction(t.Context(), scope, res.ID)
		if err != nil || string(stored.Body) != `{"id":"`+res.ID+`"}` {
			t.Errorf("Transaction(%s) = %+v, %v; want its stored answer", res.ID, stored, err)
		}
		if _, err := f.svc.Transaction(t.Context(), other, res.ID); !isCode(err, credit.ENotFound) {
			t.Errorf("another tenant reads the transaction: %v, want not-found", err)
		}
	})
}

// The third operation is refused: nothing of the first two is written,
// not even the customer the second would have created.
func TestLinkedTransactionIsAllOrNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "transfer", 1)
		f.grant(t, scope, "g1", "ada", 1000)
		for _, tc := range []struct {
			name string
			last Operation
			code string
		}{
			{"402", usageOp("ada", "transfer", 5000), credit.EInsufficient},
			{"404", usageOp("ada", "unknown-metric", 1), credit.ENotFound},
		} {
			_, err := f.transact(t, "t-"+tc.name, usageOp("ada", "transfer", 300), grantOp("carol", 300), tc.last)
			var oe *OperationError
			if !errors.As(err, &oe) || oe.Index != 2 || !isCode(err, tc.code) {
				t.Fatalf("%s: err = %v, want the third operation's %s", tc.name, err, tc.code)
			}
			if b := f.balance(t, scope, "ada").Balance; b != 1000 {
				t.Errorf("%s: ada's balance = %d, want 1000: the first operation is undone", tc.name, b)
			}
			if _, err := f.st.CustomerByExternalID(t.Context(), scope, "carol"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: carol exists after a refused transaction: %v", tc.name, err)
			}
		}
		// The same key, once the transaction can pass, runs it: refusals are
		// not stored.
		if _, err := f.transact(t, "t-402", usageOp("ada", "transfer", 300), grantOp("carol", 300)); err != nil {
			t.Fatal(err)
		}
		if a, c := f.balance(t, scope, "ada").Balance, f.balance(t, scope, "carol").Balance; a != 700 || c != 300 {
			t.Errorf("balances = %d, %d; want 700, 300", a, c)
		}
	})
}

// A refused transaction in a group leaves the group's other commands, on
// the same customers, as they would be alone.
func TestRefusedTransactionInAGroupUndoesOnlyItself(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "transfer", 1)
		f.grant(t, scope, "g1", "ada", 1000)
		enc := func(TransactionResult) (int, []byte, error) { return 201, []byte(`{}`), nil }
		reqs := []Request{
			{Scope: scope, Key: "u1", Method: "POST", Path: "/v1/usage"},
			{Scope: scope, Key: "t1", Method: "POST", Path: "/v1/transactions"},
			{Scope: scope, Key: "u2", Method: "POST", Path: "/v1/usage"},
		}
		cmds := []Command{
			usage("ada", "transfer", 100, "u1"),
			LinkedTransaction{Operations: []Operation{usageOp("ada", "transfer", 200), grantOp("dan", 50), usageOp("ada", "transfer", 10_000)}, Encode: enc},
			usage("ada", "transfer", 100, "u2"),
		}
		outs := f.submitAll(t, reqs, cmds)
		if outs[0].err != nil || outs[2].err != nil || !isCode(outs[1].err, credit.EInsufficient) {
			t.Fatalf("outcomes = %+v, want the usages accepted and the transaction refused", outs)
		}
		if b := f.balance(t, scope, "ada").Balance; b != 800 {
			t.Errorf("ada's balance = %d, want 800: two usages of 100, nothing of the transaction", b)
		}
		if _, err := f.st.CustomerByExternalID(t.Context(), scope, "dan"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("dan exists after a refused transaction: %v", err)
		}
	})
}

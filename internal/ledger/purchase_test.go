package ledger

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

func (f *fixture) createPlan(t *testing.T, s store.Scope, key string, price, credits, duration int64) {
	t.Helper()
	in := PlanInput{Key: key, Name: key, Price: price, Credits: credits, DurationSeconds: duration}
	if _, err := f.run(t, s, "plan-"+key, "/v1/plans", CreatePlan{In: in, Encode: jsonOf[store.Plan](201)}); err != nil {
		t.Fatalf("create plan %s: %v", key, err)
	}
}

// buy orders plan for the customer named by its external id under key,
// and returns what the encoder saw.
func (f *fixture) buy(t *testing.T, s store.Scope, key, ext, plan, order string) (PurchaseResult, error) {
	t.Helper()
	var out PurchaseResult
	enc := func(r PurchaseResult) (int, []byte, error) {
		out = r
		if r.Duplicate {
			return 200, []byte(`{"duplicate":true}`), nil
		}
		return 201, []byte(`{"duplicate":false}`), nil
	}
	in := PurchaseInput{Customer: CustomerRef{ExternalID: ext}, AutoCreate: true, PlanKey: plan, OrderID: order, IdempotencyKey: key}
	_, err := f.run(t, s, key, "/v1/customers/"+ext+"/plan-purchases", Purchase{In: in, Encode: enc})
	return out, err
}

func TestPurchaseDebitsPayableCreditsAndGrantsThePlan(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.createPlan(t, scope, "pro", 3000, 9000, 30*24*3600)
		f.grant(t, scope, "w1", "ada", 5000) // the wallet, priority 0

		first, err := f.buy(t, scope, "k1", "ada", "pro", "order-1")
		if err != nil {
			t.Fatal(err)
		}
		p := first.Purchase
		if p.Price != 3000 || p.Credits != 9000 || len(p.Debits) != 1 || p.Debits[0].Amount != 3000 {
			t.Errorf("purchase = %+v, want 3000 debited from the wallet and 9000 granted", p)
		}
		if first.Block.Source != "plan" || first.Block.Priority != DefaultPlanPriority ||
			!first.Block.ExpiresAt.Equal(t0.Add(30*24*time.Hour)) || first.Block.Original != 9000 {
			t.Errorf("plan block = %+v, want source plan, priority 10, expiring 30 days after the purchase", first.Block)
		}
		if p.BalanceAfter != 11000 || p.EffectiveBalance != 11000 {
			t.Errorf("balance after = %d (effective %d), want 11000", p.BalanceAfter, p.EffectiveBalance)
		}

		// The 9,000 plan credits must not pay for the next plan: 2,000 of
		// wallet credits are all that is payable.
		_, err = f.buy(t, scope, "k2", "ada", "pro", "order-2")
		var ie *credit.InsufficientError
		if !errors.As(err, &ie) || ie.Required != 3000 || ie.Available != 2000 {
			t.Fatalf("second purchase with 2000 payable: %v, want 402 with available 2000", err)
		}
		if b := f.balance(t, scope, "ada").Balance; b != 11000 {
			t.Errorf("balance after a refused purchase = %d, want 11000 (nothing written)", b)
		}

		_, entries, err := f.svc.Ledger(t.Context(), scope, CustomerRef{ExternalID: "ada"}, "", store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range entries {
			if e.ReferenceType == "plan_purchase" && e.ReferenceID == p.ID {
				kinds = append(kinds, string(e.Type))
			}
		}
		if fmt.Sprint(kinds) != "[grant purchase]" {
			t.Errorf("ledger entries of the purchase, newest first = %v, want [grant purchase]", kinds)
		}
	})
}

func TestPurchaseOrderIsItsIdentity(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.createPlan(t, scope, "pro", 1000, 5000, 0)
		f.createPlan(t, scope, "max", 2000, 9000, 0)
		f.grant(t, scope, "w1", "ada", 10_000)

		first, err := f.buy(t, scope, "k1", "ada", "pro", "o1")
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.buy(t, scope, "k2", "ada", "pro", "o1")
		if err != nil || !again.Duplicate || again.Purchase.ID != first.Purchase.ID || again.Block.ID != first.Block.ID {
			t.Fatalf("the same order under another key = %+v, %v; want the first purchase, duplicate", again, err)
		}
		if _, err := f.buy(t, scope, "k3", "ada", "max", "o1"); !isCode(err, credit.EOrderExists) {
			t.Errorf("the same order id with another plan: %v, want %s", err, credit.EOrderExists)
		}
		if _, err := f.run(t, scope, "arch", "/v1/plans/pro/archive", ArchivePlan{Key: "pro", Encode: jsonOf[store.Plan](200)}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.buy(t, scope, "k4", "ada", "pro", "o2"); !isCode(err, credit.EPlanArchived) {
			t.Errorf("a new order of an archived plan: %v, want %s", err, credit.EPlanArchived)
		}
		// The order comes before the plan: bought before the archive, it
		// still answers.
		if again, err := f.buy(t, scope, "k5", "ada", "pro", "o1"); err != nil || !again.Duplicate {
			t.Errorf("a bought order of an archived plan = %+v, %v; want its purchase, duplicate", again, err)
		}
		if b := f.balance(t, scope, "ada").Balance; b != 10_000-1000+5000 {
			t.Errorf("balance = %d, want one purchase: %d", b, 10_000-1000+5000)
		}
	})
}

// Racing retries of one order under different keys, in one group: one
// purchase, one debit, one block; every other answer is that purchase.
func TestRacingRetriesOfOneOrderBuyOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.createPlan(t, scope, "pro", 1000, 5000, 3600)
		f.grant(t, scope, "w1", "ada", 10_000)

		var reqs []Request
		var cmds []Command
		for i := range 20 {
			key := fmt.Sprintf("retry-%d", i)
			in := PurchaseInput{Customer: CustomerRef{ExternalID: "ada"}, PlanKey: "pro", OrderID: "o1", IdempotencyKey: key}
			reqs = append(reqs, Request{Scope: scope, Key: key, Method: "POST", Path: "/v1/customers/ada/plan-purchases"})
			cmds = append(cmds, Purchase{In: in, Encode: jsonOf[PurchaseResult](201)})
		}
		outs := f.submitAll(t, reqs, cmds)
		for i, o := range outs {
			if o.err != nil {
				t.Errorf("retry %d: %v", i, o.err)
			}
		}
		if b := f.balance(t, scope, "ada"); b.Balance != 10_000-1000+5000 || len(b.Blocks) != 2 {
			t.Errorf("after 20 racing retries: balance %d with %d blocks, want one purchase (14000, 2 blocks)", b.Balance, len(b.Blocks))
		}
		_, list, err := f.svc.Purchases(t.Context(), scope, CustomerRef{ExternalID: "ada"}, store.Page{Limit: 50})
		if err != nil || len(list) != 1 {
			t.Errorf("purchases = %d, %v; want 1", len(list), err)
		}
	})
}

// A refused purchase by an unknown external id creates nothing, not even
// the customer; a free plan creates it.
func TestRefusedPurchaseCreatesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.createPlan(t, scope, "pro", 1000, 5000, 0)
		f.createPlan(t, scope, "trial", 0, 2000, 7*24*3600)
		if _, err := f.buy(t, scope, "k1", "newcomer", "pro", "o1"); !isCode(err, credit.EInsufficient) {
			t.Fatalf("purchase with no credits: %v, want 402", err)
		}
		if _, err := f.st.CustomerByExternalID(t.Context(), scope, "newcomer"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a customer exists after a refused purchase: %v", err)
		}
		if _, err := f.buy(t, scope, "k2", "newcomer", "trial", "o2"); err != nil {
			t.Fatalf("free trial: %v", err)
		}
		if b := f.balance(t, scope, "newcomer").Balance; b != 2000 {
			t.Errorf("balance after the free trial = %d, want 2000", b)
		}
		if _, err := f.buy(t, scope, "k3", "newcomer", "nope", "o3"); !isCode(err, credit.ENotFound) {
			t.Errorf("unknown plan: %v, want not-found", err)
		}
	})
}

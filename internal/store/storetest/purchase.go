package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

func planID(p store.Plan) string         { return p.ID }
func purchaseID(p store.Purchase) string { return p.ID }

// newPlan returns an unsaved active plan of key, with a fresh id, created at
// created: 500 mc for 300 mc, that never expire.
func newPlan(key string, created time.Time) store.Plan {
	return store.Plan{ID: ids.New(ids.Plan), Key: key, Name: key, Price: 300, Credits: 500, Priority: 10,
		Active: true, CreatedAt: created}
}

// createPlan stores p in its own transaction.
func createPlan(t *testing.T, s store.Store, sc store.Scope, p store.Plan) {
	t.Helper()
	transact(t, s, func(q store.Q) error { return q.PlanCreate(t.Context(), sc, p) })
}

func testPlan(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		pro := store.Plan{ID: ids.New(ids.Plan), Key: "pro", Name: "Pro", Price: 0, Credits: 250_000, Priority: 0,
			DurationSeconds: 30 * 24 * 3600, PayFromMaxPriority: 5, Metadata: json.RawMessage(`{"tier": "pro", "seats": [1, 2]}`),
			Active: true, CreatedAt: at(1234 * time.Millisecond)}
		forever := newPlan("forever", at(2*time.Second)) // no expiry, no metadata
		forever.Priority = 100
		createPlan(t, s, sc, pro)
		createPlan(t, s, sc, forever)

		for _, want := range []store.Plan{pro, forever} {
			got, err := s.PlanGet(ctx, sc, want.Key)
			wantNoErr(t, "PlanGet", err)
			wantSame(t, "PlanGet", got, want)
		}
		_, err := s.PlanGet(ctx, sc, "basic")
		wantErr(t, "PlanGet(unknown)", err, store.ErrNotFound)
	})

	t.Run("KeyUniquePerScope", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		first := newPlan("pro", t0)
		createPlan(t, s, sc, first)
		again := newPlan("pro", at(time.Second))
		again.Price = 900
		err := s.Transact(ctx, func(q store.Q) error { return q.PlanCreate(ctx, sc, again) })
		wantErr(t, "PlanCreate(key taken)", err, store.ErrConflict)
		got, err := s.PlanGet(ctx, sc, "pro")
		wantNoErr(t, "PlanGet", err)
		wantSame(t, "PlanGet after a conflicting create", got, first)

		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			p := newPlan("pro", t0)
			err := s.Transact(ctx, func(q store.Q) error { return q.PlanCreate(ctx, other, p) })
			wantNoErr(t, "PlanCreate(key of another scope)", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		ps := make([]store.Plan, 3)
		for i, key := range []string{"starter", "pro", "enterprise"} {
			ps[i] = newPlan(key, at(time.Duration(i)*time.Second))
		}
		for _, i := range []int{2, 0, 1} {
			createPlan(t, s, sc, ps[i])
		}

		all, err := s.PlanList(ctx, sc, store.Page{Limit: 100})
		wantNoErr(t, "PlanList", err)
		wantIDs(t, "PlanList(all)", all, planID, ps[0].ID, ps[1].ID, ps[2].ID)
		for i := range all {
			wantSame(t, "PlanList", all[i], ps[i])
		}
		page, err := s.PlanList(ctx, sc, store.Page{Limit: 2})
		wantNoErr(t, "PlanList", err)
		wantIDs(t, "PlanList(limit 2)", page, planID, ps[0].ID, ps[1].ID)
		page, err = s.PlanList(ctx, sc, store.Page{After: ps[1].ID, Limit: 2})
		wantNoErr(t, "PlanList", err)
		wantIDs(t, "PlanList(after the second, limit 2)", page, planID, ps[2].ID)
	})

	t.Run("Archive", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		pro, basic := newPlan("pro", t0), newPlan("basic", t0)
		createPlan(t, s, sc, pro)
		createPlan(t, s, sc, basic)

		transact(t, s, func(q store.Q) error { return q.PlanArchive(ctx, sc, "pro") })
		pro.Active = false
		got, err := s.PlanGet(ctx, sc, "pro")
		wantNoErr(t, "PlanGet", err)
		wantSame(t, "PlanGet after PlanArchive", got, pro)
		got, err = s.PlanGet(ctx, sc, "basic")
		wantNoErr(t, "PlanGet", err)
		wantSame(t, "PlanGet of another plan after PlanArchive", got, basic)
		// Archiving an archived plan finds it and changes nothing.
		transact(t, s, func(q store.Q) error { return q.PlanArchive(ctx, sc, "pro") })

		err = s.Transact(ctx, func(q store.Q) error { return q.PlanArchive(ctx, sc, "enterprise") })
		wantErr(t, "PlanArchive(unknown)", err, store.ErrNotFound)
		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			err := s.Transact(ctx, func(q store.Q) error { return q.PlanArchive(ctx, other, "basic") })
			wantErr(t, "PlanArchive(plan of another scope)", err, store.ErrNotFound)
		}
		got, err = s.PlanGet(ctx, sc, "basic")
		wantNoErr(t, "PlanGet", err)
		wantSame(t, "PlanGet after archiving from another scope", got, basic)
	})
}

// purchase is one bought order and what buying it writes, as the service
// writes it: the plan's block, the price taken from the payer, the ledger
// entries naming the purchase and the account's new totals.
type purchase struct {
	store.Purchase
	block   store.Block
	writes  *store.Writes
	account credit.Account
}

// newPurchase returns customerID's unsaved purchase of order at created:
// 500 mc that expire in 30 days, in a block numbered seq, for price taken
// from payer (which it updates), on an account whose totals were account.
func newPurchase(sc store.Scope, customerID, order string, seq, price int64, payer *store.Block, account credit.Account, created time.Time) purchase {
	const credits = 500
	p := store.Purchase{ID: ids.New(ids.Purchase), CustomerID: customerID, PlanKey: "pro", OrderID: order,
		Price: price, Credits: credits, CreatedAt: created}
	b := newBlock(customerID, seq, credits, credits)
	b.Priority, b.ExpiresAt, b.Source, b.CreatedAt = 10, created.Add(30*24*time.Hour), "plan", created
	p.BlockID = b.ID

	w := &store.Writes{Scope: sc, Blocks: []store.Block{b}, Lapsed: created.Add(-ttl)}
	account.Balance -= price
	if price > 0 {
		payer.Remaining -= price
		p.Debits = []store.PurchaseDebit{{BlockID: payer.ID, Amount: price}}
		w.Remaining = append(w.Remaining, store.BlockRemaining{CustomerID: customerID, BlockID: payer.ID, Remaining: payer.Remaining})
		debit := newEntry(customerID, credit.EntryPurchase, -price, account.Balance)
		debit.BlockID, debit.ReferenceType, debit.ReferenceID, debit.CreatedAt = payer.ID, "plan_purchase", p.ID, created
		w.Ledger = append(w.Ledger, debit)
	}
	account.Balance += credits
	account.LifetimeEarned += credits
	account.Version++
	grant := newEntry(customerID, credit.EntryGrant, credits, account.Balance)
	grant.BlockID, grant.ReferenceType, grant.ReferenceID, grant.CreatedAt = b.ID, "plan_purchase", p.ID, created
	w.Ledger = append(w.Ledger, grant)
	w.Accounts = []store.AccountUpdate{{CustomerID: customerID, Account: account}}
	p.BalanceAfter, p.EffectiveBalance = account.Balance, account.Balance-account.Reserved
	w.Purchases = []store.Purchase{p}
	return purchase{Purchase: p, block: b, writes: w, account: account}
}

// wallet stores a customer of sc with one free block of 1,000 mc and the
// account that says so.
func wallet(t *testing.T, s store.Store, sc store.Scope) (store.Customer, store.Block) {
	t.Helper()
	c := store.Customer{ID: ids.UUID(), CreatedAt: t0, Account: credit.Account{Balance: 1000, LifetimeEarned: 1000}}
	b := newBlock(c.ID, 1, 1000, 1000)
	mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c}, Blocks: []store.Block{b}})
	return c, b
}

func testPurchase(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("WriteRead", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, payer := wallet(t, s, sc)
		other, otherPayer := wallet(t, s, sc)

		p1 := newPurchase(sc, c.ID, "order-1", 2, 300, &payer, c.Account, at(time.Second))
		mustApply(t, s, p1.writes)
		p2 := newPurchase(sc, c.ID, "order-2", 3, 300, &payer, p1.account, at(2*time.Second))
		p2.Metadata = json.RawMessage(`{"campaign": "spring", "n": [1, 2]}`)
		p2.writes.Purchases[0].Metadata = p2.Metadata
		mustApply(t, s, p2.writes)
		free := newPurchase(sc, c.ID, "order-3", 4, 0, &payer, p2.account, at(3*time.Second)) // no debits
		mustApply(t, s, free.writes)
		// Another customer's order may have the same id.
		q1 := newPurchase(sc, other.ID, "order-1", 2, 300, &otherPayer, other.Account, at(4*time.Second))
		mustApply(t, s, q1.writes)

		for _, want := range []purchase{p1, p2, free, q1} {
			got, err := s.PurchaseByOrder(ctx, sc, want.CustomerID, want.OrderID)
			wantNoErr(t, "PurchaseByOrder", err)
			wantSame(t, "PurchaseByOrder", got, want.Purchase)
			got, err = s.PurchaseGet(ctx, sc, want.ID)
			wantNoErr(t, "PurchaseGet", err)
			wantSame(t, "PurchaseGet", got, want.Purchase)
		}
		_, err := s.PurchaseByOrder(ctx, sc, c.ID, "order-9")
		wantErr(t, "PurchaseByOrder(unknown order)", err, store.ErrNotFound)
		_, err = s.PurchaseByOrder(ctx, sc, ids.UUID(), "order-1")
		wantErr(t, "PurchaseByOrder(unknown customer)", err, store.ErrNotFound)
		_, err = s.PurchaseGet(ctx, sc, ids.New(ids.Purchase))
		wantErr(t, "PurchaseGet(unknown)", err, store.ErrNotFound)

		all, err := s.PurchaseList(ctx, sc, c.ID, store.Page{Limit: 100})
		wantNoErr(t, "PurchaseList", err)
		wantIDs(t, "PurchaseList(all)", all, purchaseID, free.ID, p2.ID, p1.ID)
		for i, want := range []purchase{free, p2, p1} {
			wantSame(t, "PurchaseList", all[i], want.Purchase)
		}
		page, err := s.PurchaseList(ctx, sc, c.ID, store.Page{Limit: 2})
		wantNoErr(t, "PurchaseList", err)
		wantIDs(t, "PurchaseList(limit 2)", page, purchaseID, free.ID, p2.ID)
		page, err = s.PurchaseList(ctx, sc, c.ID, store.Page{After: p2.ID, Limit: 2})
		wantNoErr(t, "PurchaseList", err)
		wantIDs(t, "PurchaseList(after the second, limit 2)", page, purchaseID, p1.ID)
		page, err = s.PurchaseList(ctx, sc, c.ID, store.Page{After: p1.ID, Limit: 2})
		wantNoErr(t, "PurchaseList", err)
		wantIDs(t, "PurchaseList(after the last)", page, purchaseID)
		page, err = s.PurchaseList(ctx, sc, other.ID, store.Page{Limit: 100})
		wantNoErr(t, "PurchaseList", err)
		wantIDs(t, "PurchaseList(another customer)", page, purchaseID, q1.ID)

		// The purchase's rows were written with it.
		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet after the purchases", got.Account, free.account)
		bs, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList after the purchases", bs, blockID, payer.ID, p1.block.ID, p2.block.ID, free.block.ID)
		wantSame(t, "BlockList", bs[0], payer)
		wantSame(t, "BlockList", bs[1], p1.block)
		es, err := s.LedgerList(ctx, sc, c.ID, "", store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList after the purchases", es, entryID, free.writes.Ledger[0].ID,
			p2.writes.Ledger[1].ID, p2.writes.Ledger[0].ID, p1.writes.Ledger[1].ID, p1.writes.Ledger[0].ID)
		es, err = s.LedgerList(ctx, sc, c.ID, string(credit.EntryPurchase), store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList(purchase entries)", es, entryID, p2.writes.Ledger[0].ID, p1.writes.Ledger[0].ID)
	})

	t.Run("OrderTaken", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, payer := wallet(t, s, sc)
		first := newPurchase(sc, c.ID, "order-1", 2, 300, &payer, c.Account, at(time.Second))
		first.writes.Idempotency = []store.IdempotencyRecord{newRecord(at(time.Second))}
		mustApply(t, s, first.writes)
		bought := payer

		// The same order again, with everything a second purchase writes: the
		// write fails whole, and the transaction leaves nothing of it.
		again := newPurchase(sc, c.ID, "order-1", 3, 300, &payer, first.account, at(2*time.Second))
		rec := newRecord(at(2 * time.Second))
		again.writes.Idempotency = []store.IdempotencyRecord{rec}
		wantErr(t, "WritesApply(order bought before)", apply(t, s, again.writes), store.ErrConflict)

		_, err := s.PurchaseGet(ctx, sc, again.ID)
		wantErr(t, "PurchaseGet(purchase of a failed write)", err, store.ErrNotFound)
		got, err := s.PurchaseByOrder(ctx, sc, c.ID, "order-1")
		wantNoErr(t, "PurchaseByOrder", err)
		wantSame(t, "PurchaseByOrder after a conflicting write", got, first.Purchase)
		cu, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet after a conflicting write", cu.Account, first.account)
		bs, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList after a conflicting write", bs, blockID, bought.ID, first.block.ID)
		wantSame(t, "BlockList after a conflicting write", bs[0], bought)
		es, err := s.LedgerList(ctx, sc, c.ID, "", store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList after a conflicting write", es, entryID, first.writes.Ledger[1].ID, first.writes.Ledger[0].ID)
		wantNoRecord(t, s, "(key of a failed write)", sc, rec.Key, time.Time{})

		// A purchase whose id is taken, and one order twice in one write.
		payer = bought
		taken := newPurchase(sc, c.ID, "order-2", 3, 300, &payer, first.account, at(3*time.Second))
		taken.writes.Purchases[0].ID = first.ID
		wantErr(t, "WritesApply(purchase id taken)", apply(t, s, taken.writes), store.ErrConflict)
		payer = bought
		twice := newPurchase(sc, c.ID, "order-3", 3, 300, &payer, first.account, at(3*time.Second))
		dup := twice.Purchase
		dup.ID = ids.New(ids.Purchase)
		twice.writes.Purchases = append(twice.writes.Purchases, dup)
		wantErr(t, "WritesApply(one order twice)", apply(t, s, twice.writes), store.ErrConflict)
		_, err = s.PurchaseByOrder(ctx, sc, c.ID, "order-3")
		wantErr(t, "PurchaseByOrder(order of a failed write)", err, store.ErrNotFound)
	})

	// More purchases than one statement of a backend may take, in pages.
	t.Run("Many", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		const n, limit = 70, 30
		w := &store.Writes{Scope: sc}
		for i := range n {
			w.Purchases = append(w.Purchases, store.Purchase{ID: ids.New(ids.Purchase), CustomerID: c.ID, PlanKey: "pro",
				OrderID: fmt.Sprintf("order-%d", i), Credits: 1, BlockID: ids.New(ids.Block), CreatedAt: t0})
		}
		mustApply(t, s, w)
		var got []store.Purchase
		for p := (store.Page{Limit: limit}); ; {
			page, err := s.PurchaseList(ctx, sc, c.ID, p)
			wantNoErr(t, "PurchaseList", err)
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			p.After = page[len(page)-1].ID
		}
		if len(got) != n {
			t.Fatalf("PurchaseList() pages hold %d purchases, want %d", len(got), n)
		}
		for i, p := range got { // newest first: the last of the slice first
			wantSame(t, fmt.Sprintf("PurchaseList()[%d]", i), p, w.Purchases[n-1-i])
		}
	})

	t.Run("Wall", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		plan := newPlan("pro", t0)
		createPlan(t, s, sc, plan)
		c, payer := wallet(t, s, sc)
		p := newPurchase(sc, c.ID, "order-1", 2, 300, &payer, c.Account, at(time.Second))
		mustApply(t, s, p.writes)

		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			t.Logf("from %+v", other)
			_, err := s.PlanGet(ctx, other, plan.Key)
			wantErr(t, "PlanGet", err, store.ErrNotFound)
			ps, err := s.PlanList(ctx, other, store.Page{Limit: 100})
			wantNoErr(t, "PlanList", err)
			wantIDs(t, "PlanList", ps, planID)
			_, err = s.PurchaseByOrder(ctx, other, c.ID, p.OrderID)
			wantErr(t, "PurchaseByOrder", err, store.ErrNotFound)
			_, err = s.PurchaseGet(ctx, other, p.ID)
			wantErr(t, "PurchaseGet", err, store.ErrNotFound)
			list, err := s.PurchaseList(ctx, other, c.ID, store.Page{Limit: 100})
			wantNoErr(t, "PurchaseList", err)
			wantIDs(t, "PurchaseList", list, purchaseID)

			// The plan's id and key, and the purchase's id and order, are
			// free elsewhere.
			createPlan(t, s, other, plan)
			twin := c
			twin.Account = credit.Account{}
			mustApply(t, s, &store.Writes{Scope: other, Customers: []store.Customer{twin}, Purchases: []store.Purchase{p.Purchase}})
		}

		got, err := s.PurchaseGet(ctx, sc, p.ID)
		wantNoErr(t, "PurchaseGet", err)
		wantSame(t, "PurchaseGet", got, p.Purchase)
		gotPlan, err := s.PlanGet(ctx, sc, plan.Key)
		wantNoErr(t, "PlanGet", err)
		wantSame(t, "PlanGet", gotPlan, plan)
	})
}

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

func testCustomer(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		want := store.Customer{
			ID:          ids.UUID(),
			ExternalID:  "user_42",
			DisplayName: "Ada Lovelace",
			Metadata:    json.RawMessage(`{"plan": "pro", "seats": 3}`),
			CreatedAt:   at(1500 * time.Millisecond),
			Account:     credit.Account{Balance: 1500, Reserved: 200, LifetimeEarned: 3000, Version: 7},
		}
		mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{want}})

		got, err := s.CustomerGet(ctx, sc, want.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet", got, want)

		got, err = s.CustomerByExternalID(ctx, sc, want.ExternalID)
		wantNoErr(t, "CustomerByExternalID", err)
		wantSame(t, "CustomerByExternalID", got, want)
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		newCustomer(t, s, sc)
		_, err := s.CustomerGet(ctx, sc, ids.UUID())
		wantErr(t, "CustomerGet(unknown)", err, store.ErrNotFound)
		_, err = s.CustomerByExternalID(ctx, sc, "nobody")
		wantErr(t, "CustomerByExternalID(unknown)", err, store.ErrNotFound)
	})

	t.Run("DuplicateID", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		again := c
		again.DisplayName, again.Account = "Grace", credit.Account{Balance: 1}
		err := apply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{again}})
		wantErr(t, "WritesApply(customer with a taken id)", err, store.ErrConflict)
		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet after a conflicting write", got, c)
	})

	t.Run("ExternalIDUniquePerScope", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		create := func(sc store.Scope) (store.Customer, error) {
			c := store.Customer{ID: ids.UUID(), ExternalID: "user_42", CreatedAt: t0}
			return c, apply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c}})
		}
		first, err := create(sc)
		wantNoErr(t, "WritesApply(new customer)", err)

		_, err = create(sc)
		wantErr(t, "WritesApply(customer with an external id taken in its scope)", err, store.ErrConflict)

		// The same external id is free in the tenant's other environment and
		// in another tenant.
		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			c, err := create(other)
			wantNoErr(t, "WritesApply(customer with the external id of another scope)", err)
			got, err := s.CustomerByExternalID(ctx, other, "user_42")
			wantNoErr(t, "CustomerByExternalID", err)
			if got.ID != c.ID {
				t.Errorf("CustomerByExternalID(%+v) id = %s, want %s", other, got.ID, c.ID)
			}
		}
		got, err := s.CustomerByExternalID(ctx, sc, "user_42")
		wantNoErr(t, "CustomerByExternalID", err)
		if got.ID != first.ID {
			t.Errorf("CustomerByExternalID(%+v) id = %s, want %s", sc, got.ID, first.ID)
		}
	})

	t.Run("NoExternalID", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		// An absent external id collides with nothing and is never found.
		a, b := newCustomer(t, s, sc), newCustomer(t, s, sc)
		for _, c := range []store.Customer{a, b} {
			got, err := s.CustomerGet(ctx, sc, c.ID)
			wantNoErr(t, "CustomerGet", err)
			wantSame(t, "CustomerGet", got, c)
		}
		_, err := s.CustomerByExternalID(ctx, sc, "")
		wantErr(t, `CustomerByExternalID("")`, err, store.ErrNotFound)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		// Ids and creation times ascend together; the rows go in out of
		// order so that a list that forgets to sort shows it.
		cs := make([]store.Customer, 5)
		for i := range cs {
			cs[i] = store.Customer{ID: ids.UUID(), CreatedAt: at(time.Duration(i) * time.Second)}
		}
		for _, i := range []int{3, 0, 4, 1, 2} {
			mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{cs[i]}})
		}
		newCustomer(t, s, newScope(t, s)) // another tenant's, never listed

		all, err := s.CustomerList(ctx, sc, store.Page{Limit: 100})
		wantNoErr(t, "CustomerList", err)
		wantIDs(t, "CustomerList(all)", all, customerID, cs[0].ID, cs[1].ID, cs[2].ID, cs[3].ID, cs[4].ID)
		for i := range all {
			wantSame(t, "CustomerList", all[i], cs[i])
		}

		pages := [][]string{{cs[0].ID, cs[1].ID}, {cs[2].ID, cs[3].ID}, {cs[4].ID}, {}}
		after := ""
		for _, want := range pages {
			got, err := s.CustomerList(ctx, sc, store.Page{After: after, Limit: 2})
			wantNoErr(t, "CustomerList", err)
			wantIDs(t, "CustomerList(after "+after+", limit 2)", got, customerID, want...)
			if len(got) > 0 {
				after = got[len(got)-1].ID
			}
		}
	})
}

func testAccount(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("LoadUpdate", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		other := newCustomer(t, s, sc)
		want := credit.Account{Balance: 900, Reserved: 100, LifetimeEarned: 1000, Version: 1}
		load := func(q store.Q) (credit.Account, error) {
			rows, err := q.AccountsLoad(ctx, []store.CustomerKey{{Scope: sc, CustomerID: c.ID}})
			if err != nil {
				return credit.Account{}, err
			}
			if len(rows) != 1 {
				return credit.Account{}, fmt.Errorf("AccountsLoad(one customer) = %d rows, want 1", len(rows))
			}
			return rows[0].Customer.Account, nil
		}
		transact(t, s, func(q store.Q) error {
			a, err := load(q)
			if err != nil {
				return err
			}
			wantSame(t, "AccountsLoad of a new customer", a, credit.Account{})
			err = q.WritesApply(ctx, &store.Writes{Scope: sc, Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: want}}})
			if err != nil {
				return err
			}
			// A transaction reads its own writes.
			a, err = load(q)
			if err != nil {
				return err
			}
			wantSame(t, "AccountsLoad after WritesApply", a, want)
			return nil
		})

		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet after WritesApply", got.Account, want)
		got, err = s.CustomerGet(ctx, sc, other.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet of another customer", got.Account, credit.Account{})
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		unknown := ids.UUID()
		transact(t, s, func(q store.Q) error {
			rows, err := q.AccountsLoad(ctx, []store.CustomerKey{{Scope: sc, CustomerID: unknown}})
			if len(rows) != 0 {
				t.Errorf("AccountsLoad(unknown) = %d rows, want none", len(rows))
			}
			return err
		})
		err := apply(t, s, &store.Writes{Scope: sc, Accounts: []store.AccountUpdate{{CustomerID: unknown, Account: credit.Account{Balance: 1}}}})
		wantErr(t, "WritesApply(unknown account)", err, store.ErrNotFound)
		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet after a failed update", got, c)
	})
}

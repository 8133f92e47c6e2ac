package storetest

import (
	"encoding/json"
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
		transact(t, s, func(q store.Q) error { return q.CustomerCreate(ctx, sc, want) })

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
		err := s.Transact(ctx, func(q store.Q) error { return q.CustomerCreate(ctx, sc, c) })
		wantErr(t, "CustomerCreate(same id)", err, store.ErrConflict)
	})

	t.Run("ExternalIDUniquePerScope", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		create := func(sc store.Scope) (store.Customer, error) {
			c := store.Customer{ID: ids.UUID(), ExternalID: "user_42", CreatedAt: t0}
			return c, s.Transact(ctx, func(q store.Q) error { return q.CustomerCreate(ctx, sc, c) })
		}
		first, err := create(sc)
		wantNoErr(t, "CustomerCreate", err)

		_, err = create(sc)
		wantErr(t, "CustomerCreate(external id taken in its scope)", err, store.ErrConflict)

		// The same external id is free in the tenant's other environment and
		// in another tenant.
		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			c, err := create(other)
			wantNoErr(t, "CustomerCreate(external id of another scope)", err)
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
			transact(t, s, func(q store.Q) error { return q.CustomerCreate(ctx, sc, cs[i]) })
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
	t.Run("LockUpdate", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		other := newCustomer(t, s, sc)
		want := credit.Account{Balance: 900, Reserved: 100, LifetimeEarned: 1000, Version: 1}
		transact(t, s, func(q store.Q) error {
			a, err := q.AccountLock(ctx, sc, c.ID)
			if err != nil {
				return err
			}
			wantSame(t, "AccountLock of a new customer", a, credit.Account{})
			if err := q.AccountUpdate(ctx, sc, c.ID, want); err != nil {
				return err
			}
			// A transaction reads its own writes.
			a, err = q.AccountLock(ctx, sc, c.ID)
			if err != nil {
				return err
			}
			wantSame(t, "AccountLock after AccountUpdate", a, want)
			return nil
		})

		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet after AccountUpdate", got.Account, want)
		got, err = s.CustomerGet(ctx, sc, other.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet of another customer", got.Account, credit.Account{})
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		newCustomer(t, s, sc)
		err := s.Transact(ctx, func(q store.Q) error {
			_, err := q.AccountLock(ctx, sc, ids.UUID())
			return err
		})
		wantErr(t, "AccountLock(unknown)", err, store.ErrNotFound)
		err = s.Transact(ctx, func(q store.Q) error {
			return q.AccountUpdate(ctx, sc, ids.UUID(), credit.Account{Balance: 1})
		})
		wantErr(t, "AccountUpdate(unknown)", err, store.ErrNotFound)
	})
}

package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

func reservationID(r store.Reservation) string { return r.ID }

// newHold returns an unsaved active hold of amount on customerID, created
// at created and expiring five minutes later. Holds made one after another
// have ids in creation order.
func newHold(customerID string, amount int64, created time.Time) store.Reservation {
	return store.Reservation{ID: ids.New(ids.Reservation), CustomerID: customerID, MetricKey: "api_calls",
		EstimatedUnits: amount / 10, Amount: amount, Status: store.ReservationActive, ExpiresAt: created.Add(5 * time.Minute),
		CreatedAt: created, UpdatedAt: created}
}

// settled returns r as stored once it left the active state at when:
// committed of it debited, the rest given back.
func settled(r store.Reservation, status string, committed int64, when time.Time) store.Reservation {
	r.Status, r.CommittedAmount, r.ReleasedAmount, r.UpdatedAt = status, committed, r.Amount-committed, when
	return r
}

// reserve returns the writes that store holds of c, as the service writes
// them: the holds and the account's new totals, which it sets in c.Account.
func reserve(sc store.Scope, c *store.Customer, holds ...store.Reservation) *store.Writes {
	for _, h := range holds {
		if h.Status == store.ReservationActive {
			c.Account.Reserved += h.Amount
		}
	}
	c.Account.Version++
	return &store.Writes{Scope: sc, Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: c.Account}}, Reservations: holds}
}

// wantHolds fails the test unless holds are want, in order, field by field.
func wantHolds(t *testing.T, call string, holds []store.Reservation, want ...store.Reservation) {
	t.Helper()
	wantIDs(t, call, holds, reservationID, idsOf(want, reservationID)...)
	for i := range holds {
		wantSame(t, call, holds[i], want[i])
	}
}

// wantAccount fails the test unless c's stored account totals are want.
func wantAccount(t *testing.T, s store.Store, call string, sc store.Scope, c store.Customer) {
	t.Helper()
	got, err := s.CustomerGet(t.Context(), sc, c.ID)
	wantNoErr(t, "CustomerGet", err)
	wantSame(t, call, got.Account, c.Account)
}

// loadHolds returns the holds AccountsLoad gives each of keys, by refKey.
func loadHolds(t *testing.T, s store.Store, keys ...store.CustomerKey) map[string][]store.Reservation {
	t.Helper()
	out := make(map[string][]store.Reservation)
	transact(t, s, func(q store.Q) error {
		rows, err := q.AccountsLoad(t.Context(), keys)
		for _, r := range rows {
			out[refKey(r.Scope, r.Customer.ID)] = r.Holds
		}
		return err
	})
	return out
}

func testReservation(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("WriteRead", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, _ := wallet(t, s, sc)
		other, _ := wallet(t, s, sc)

		first := newHold(c.ID, 50, at(time.Second))
		first.Metadata = json.RawMessage(`{"job": "render", "pages": [1, 2]}`)
		second := newHold(c.ID, 70, at(2*time.Second))
		done := settled(newHold(c.ID, 50, at(3*time.Second)), store.ReservationCommitted, 30, at(4*time.Second))
		freed := settled(newHold(c.ID, 20, at(4*time.Second)), store.ReservationReleased, 0, at(5*time.Second))
		lapsed := settled(newHold(c.ID, 10, at(5*time.Second)), store.ReservationExpired, 0, at(time.Hour))
		late := newHold(c.ID, 90, at(6*time.Second))
		late.ExpiresAt = at(-time.Hour) // elapsed but stored as active: still loaded, the caller decides
		theirs := newHold(other.ID, 40, at(7*time.Second))
		// Inserted out of id order, beside another customer's.
		mustApply(t, s, reserve(sc, &c, late, done, first, freed, lapsed, second))
		mustApply(t, s, reserve(sc, &other, theirs))
		wantAccount(t, s, "CustomerGet after the holds", sc, c)

		for _, want := range []store.Reservation{first, second, done, freed, lapsed, late, theirs} {
			got, err := s.ReservationGet(ctx, sc, want.ID)
			wantNoErr(t, "ReservationGet", err)
			wantSame(t, "ReservationGet", got, want)
		}
		_, err := s.ReservationGet(ctx, sc, ids.New(ids.Reservation))
		wantErr(t, "ReservationGet(unknown)", err, store.ErrNotFound)

		active, err := s.ReservationsActive(ctx, sc, c.ID)
		wantNoErr(t, "ReservationsActive", err)
		wantHolds(t, "ReservationsActive", active, first, second, late)
		transact(t, s, func(q store.Q) error {
			active, err := q.ReservationsActive(ctx, sc, other.ID)
			wantHolds(t, "ReservationsActive(another customer) in a transaction", active, theirs)
			return err
		})
		active, err = s.ReservationsActive(ctx, sc, ids.UUID())
		wantNoErr(t, "ReservationsActive", err)
		wantHolds(t, "ReservationsActive(unknown customer)", active)
	})

	t.Run("AccountsLoad", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc, sc2 := newScope(t, s), newScope(t, s)
		a, _ := wallet(t, s, sc)
		bare, _ := wallet(t, s, sc) // settled holds only
		neighbour, _ := wallet(t, s, sc)
		twin := store.Customer{ID: a.ID, CreatedAt: t0} // a's id in another tenant
		mustApply(t, s, &store.Writes{Scope: sc2, Customers: []store.Customer{twin}})

		h1, h2 := newHold(a.ID, 10, at(time.Second)), newHold(a.ID, 20, at(2*time.Second))
		h3 := newHold(a.ID, 30, at(3*time.Second))
		h3.ExpiresAt = at(-time.Minute)
		done := settled(newHold(a.ID, 40, at(4*time.Second)), store.ReservationCommitted, 40, at(5*time.Second))
		freed := settled(newHold(a.ID, 50, at(5*time.Second)), store.ReservationReleased, 0, at(6*time.Second))
		lapsed := settled(newHold(a.ID, 60, at(6*time.Second)), store.ReservationExpired, 0, at(7*time.Second))
		mustApply(t, s, reserve(sc, &a, lapsed, h3, freed, h1, done, h2))
		mustApply(t, s, reserve(sc, &bare, settled(newHold(bare.ID, 5, t0), store.ReservationReleased, 0, t0)))
		theirs := newHold(neighbour.ID, 15, at(2*time.Second))
		mustApply(t, s, reserve(sc, &neighbour, theirs))
		twinHold := newHold(twin.ID, 7, t0)
		mustApply(t, s, reserve(sc2, &twin, twinHold))

		got := loadHolds(t, s, store.CustomerKey{Scope: sc2, CustomerID: a.ID}, store.CustomerKey{Scope: sc, CustomerID: bare.ID},
			store.CustomerKey{Scope: sc, CustomerID: a.ID}, store.CustomerKey{Scope: sc, CustomerID: neighbour.ID})
		wantHolds(t, "AccountsLoad() holds", got[refKey(sc, a.ID)], h1, h2, h3)
		wantHolds(t, "AccountsLoad() holds of a customer with settled ones only", got[refKey(sc, bare.ID)])
		wantHolds(t, "AccountsLoad() holds of another customer", got[refKey(sc, neighbour.ID)], theirs)
		wantHolds(t, "AccountsLoad() holds in another tenant", got[refKey(sc2, a.ID)], twinHold)
		got = loadHolds(t, s, store.CustomerKey{Scope: sc, CustomerID: bare.ID})
		wantHolds(t, "AccountsLoad(one customer without active holds) holds", got[refKey(sc, bare.ID)])
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, _ := wallet(t, s, sc)
		h1, h2 := newHold(c.ID, 50, at(time.Second)), newHold(c.ID, 60, at(2*time.Second))
		h3, h4 := newHold(c.ID, 70, at(3*time.Second)), newHold(c.ID, 80, at(4*time.Second))
		mustApply(t, s, reserve(sc, &c, h1, h2, h3, h4))

		now := at(time.Minute)
		h1 = settled(h1, store.ReservationCommitted, 35, now)
		h2 = settled(h2, store.ReservationReleased, 0, now)
		h3 = settled(h3, store.ReservationExpired, 0, now)
		c.Account.Balance -= 35
		c.Account.Reserved -= 50 + 60 + 70
		c.Account.Version++
		mustApply(t, s, &store.Writes{Scope: sc, Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: c.Account}},
			ReservationUpdates: []store.Reservation{h2, h1, h3}})
		wantAccount(t, s, "CustomerGet after settling holds", sc, c)
		for _, want := range []store.Reservation{h1, h2, h3, h4} {
			got, err := s.ReservationGet(ctx, sc, want.ID)
			wantNoErr(t, "ReservationGet", err)
			wantSame(t, "ReservationGet after an update", got, want)
		}
		active, err := s.ReservationsActive(ctx, sc, c.ID)
		wantNoErr(t, "ReservationsActive", err)
		wantHolds(t, "ReservationsActive after settling holds", active, h4)
		wantHolds(t, "AccountsLoad() holds after settling holds", loadHolds(t, s, store.CustomerKey{Scope: sc, CustomerID: c.ID})[refKey(sc, c.ID)], h4)
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, _ := wallet(t, s, sc)
		other, _ := wallet(t, s, sc)
		held := newHold(c.ID, 50, at(time.Second))
		mustApply(t, s, reserve(sc, &c, held))
		theirs := newHold(other.ID, 10, at(2*time.Second))
		mustApply(t, s, reserve(sc, &other, theirs))
		before := c

		// Each write carries everything a reserve and a commit write; it fails
		// whole, and the transaction leaves nothing of it.
		failed := func(call string, target error, edit func(w *store.Writes)) {
			t.Helper()
			c := before
			fresh := newHold(c.ID, 20, at(time.Minute))
			w := reserve(sc, &c, fresh)
			w.ReservationUpdates = []store.Reservation{settled(held, store.ReservationCommitted, 50, at(time.Minute))}
			rec := newRecord(at(time.Minute))
			w.Idempotency, w.Lapsed = []store.IdempotencyRecord{rec}, at(time.Minute).Add(-ttl)
			edit(w)
			wantErr(t, call, apply(t, s, w), target)
			for _, r := range w.Reservations {
				if r.ID != held.ID && r.ID != theirs.ID {
					_, err := s.ReservationGet(ctx, sc, r.ID)
					wantErr(t, "ReservationGet(hold of a failed write)", err, store.ErrNotFound)
				}
			}
			wantNoRecord(t, s, "(key of a failed write)", sc, rec.Key, time.Time{})
		}
		failed("WritesApply(update of an unknown hold)", store.ErrNotFound, func(w *store.Writes) {
			w.ReservationUpdates = append(w.ReservationUpdates, settled(newHold(c.ID, 5, t0), store.ReservationReleased, 0, t0))
		})
		failed("WritesApply(update naming another customer's hold)", store.ErrNotFound, func(w *store.Writes) {
			wrong := settled(theirs, store.ReservationReleased, 0, at(time.Minute))
			wrong.CustomerID = c.ID
			w.ReservationUpdates = append(w.ReservationUpdates, wrong)
		})
		failed("WritesApply(hold id taken)", store.ErrConflict, func(w *store.Writes) {
			again := newHold(c.ID, 5, at(time.Minute))
			again.ID = held.ID
			w.Reservations = append(w.Reservations, again)
		})
		failed("WritesApply(hold id taken by another customer)", store.ErrConflict, func(w *store.Writes) {
			again := newHold(c.ID, 5, at(time.Minute))
			again.ID = theirs.ID
			w.Reservations = append(w.Reservations, again)
		})
		failed("WritesApply(one hold twice)", store.ErrConflict, func(w *store.Writes) {
			w.Reservations = append(w.Reservations, w.Reservations[0])
		})

		wantAccount(t, s, "CustomerGet after failed writes", sc, before)
		for _, want := range []store.Reservation{held, theirs} {
			got, err := s.ReservationGet(ctx, sc, want.ID)
			wantNoErr(t, "ReservationGet", err)
			wantSame(t, "ReservationGet after failed writes", got, want)
		}
		active, err := s.ReservationsActive(ctx, sc, c.ID)
		wantNoErr(t, "ReservationsActive", err)
		wantHolds(t, "ReservationsActive after failed writes", active, held)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, _ := wallet(t, s, sc)
		other, _ := wallet(t, s, sc)
		committed := func(r store.Reservation) store.Reservation {
			return settled(r, store.ReservationCommitted, r.Amount, r.CreatedAt.Add(time.Second))
		}
		// Made in this order, so that their ids sort so, the two customers'
		// interleaved.
		c1 := committed(newHold(c.ID, 10, at(1*time.Second)))
		o1 := newHold(other.ID, 10, at(2*time.Second))
		c2 := newHold(c.ID, 20, at(3*time.Second))
		c3 := committed(newHold(c.ID, 30, at(4*time.Second)))
		o2 := committed(newHold(other.ID, 20, at(5*time.Second)))
		c4 := settled(newHold(c.ID, 40, at(6*time.Second)), store.ReservationReleased, 0, at(7*time.Second))
		c5 := newHold(c.ID, 50, at(7*time.Second))
		mustApply(t, s, reserve(sc, &c, c4, c1, c5, c3, c2))
		mustApply(t, s, reserve(sc, &other, o2, o1))

		list := func(customerID, status string, after string, limit int, want ...store.Reservation) {
			t.Helper()
			got, err := s.ReservationList(ctx, sc, customerID, status, store.Page{After: after, Limit: limit})
			wantNoErr(t, "ReservationList", err)
			call := fmt.Sprintf("ReservationList(customer %q, status %q, after %q, limit %d)", customerID, status, after, limit)
			wantHolds(t, call, got, want...)
		}
		list(c.ID, "", "", 100, c5, c4, c3, c2, c1)
		list(c.ID, "", "", 2, c5, c4)
		list(c.ID, "", c4.ID, 2, c3, c2)
		list(c.ID, "", c2.ID, 2, c1)
		list(c.ID, "", c1.ID, 2)
		list(c.ID, store.ReservationCommitted, "", 100, c3, c1)
		list(c.ID, store.ReservationCommitted, "", 1, c3)
		list(c.ID, store.ReservationCommitted, c3.ID, 1, c1)
		list(c.ID, store.ReservationActive, "", 100, c5, c2)
		list(c.ID, store.ReservationExpired, "", 100)
		list(other.ID, "", "", 100, o2, o1)
		list(ids.UUID(), "", "", 100)

		// Across the scope's customers.
		list("", "", "", 100, c5, c4, o2, c3, c2, o1, c1)
		list("", "", "", 3, c5, c4, o2)
		list("", "", o2.ID, 3, c3, c2, o1)
		list("", "", o1.ID, 3, c1)
		list("", store.ReservationCommitted, "", 100, o2, c3, c1)
		list("", store.ReservationCommitted, "", 2, o2, c3)
		list("", store.ReservationCommitted, c3.ID, 2, c1)
		list("", store.ReservationActive, "", 100, c5, c2, o1)
	})

	// More holds than one statement of a backend may take, inserted, loaded,
	// settled and listed in pages.
	t.Run("Many", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, _ := wallet(t, s, sc)
		const n, limit = 70, 30
		holds := make([]store.Reservation, n)
		for i := range holds {
			holds[i] = newHold(c.ID, 10, at(time.Duration(i)*time.Millisecond))
		}
		mustApply(t, s, reserve(sc, &c, holds...))
		wantHolds(t, "AccountsLoad() holds", loadHolds(t, s, store.CustomerKey{Scope: sc, CustomerID: c.ID})[refKey(sc, c.ID)], holds...)

		var updates, active []store.Reservation
		for i := range holds {
			if i%3 == 0 {
				active = append(active, holds[i])
				continue
			}
			holds[i] = settled(holds[i], store.ReservationCommitted, 4, at(time.Minute))
			updates = append(updates, holds[i])
		}
		mustApply(t, s, &store.Writes{Scope: sc, ReservationUpdates: updates})
		got, err := s.ReservationsActive(ctx, sc, c.ID)
		wantNoErr(t, "ReservationsActive", err)
		wantHolds(t, "ReservationsActive after settling two thirds", got, active...)

		var listed []store.Reservation
		for p := (store.Page{Limit: limit}); ; {
			page, err := s.ReservationList(ctx, sc, c.ID, "", p)
			wantNoErr(t, "ReservationList", err)
			listed = append(listed, page...)
			if len(page) < limit {
				break
			}
			p.After = page[len(page)-1].ID
		}
		slices.Reverse(listed) // newest first
		wantHolds(t, "ReservationList() pages, reversed", listed, holds...)
	})

	t.Run("ExpiredCustomers", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := at(time.Hour)
		expiring := func(c store.Customer, status string, expires time.Time) store.Reservation {
			h := newHold(c.ID, 10, t0)
			h.Status, h.ExpiresAt = status, expires
			return h
		}
		hold := func(sc store.Scope, c store.Customer, h ...store.Reservation) { mustApply(t, s, reserve(sc, &c, h...)) }

		sc, sc2 := newScope(t, s), newScope(t, s)
		past, _ := wallet(t, s, sc)       // two active holds elapsed before now
		exact, _ := wallet(t, s, sc)      // an active hold expiring exactly at now
		done, _ := wallet(t, s, sc)       // elapsed holds already settled
		later, _ := wallet(t, s, sc)      // an active hold expiring after now
		elsewhere, _ := wallet(t, s, sc2) // another tenant's, elapsed
		hold(sc, past, expiring(past, store.ReservationActive, now.Add(-time.Minute)),
			expiring(past, store.ReservationActive, now.Add(-time.Millisecond)))
		hold(sc, exact, expiring(exact, store.ReservationActive, now))
		hold(sc, done, expiring(done, store.ReservationCommitted, now.Add(-time.Minute)),
			expiring(done, store.ReservationReleased, now.Add(-time.Minute)), expiring(done, store.ReservationExpired, now.Add(-time.Minute)))
		hold(sc, later, expiring(later, store.ReservationActive, now.Add(time.Millisecond)))
		hold(sc2, elsewhere, expiring(elsewhere, store.ReservationActive, now.Add(-30*time.Minute)))

		keys := func(rs []store.CustomerKey) []string {
			out := make([]string, len(rs))
			for i, r := range rs {
				out[i] = refKey(r.Scope, r.CustomerID)
			}
			slices.Sort(out)
			return out
		}
		want := keys([]store.CustomerKey{{Scope: sc, CustomerID: past.ID}, {Scope: sc, CustomerID: exact.ID},
			{Scope: sc2, CustomerID: elsewhere.ID}})
		got, err := s.ReservationExpiredCustomers(ctx, now, 100)
		wantNoErr(t, "ReservationExpiredCustomers", err)
		if g := keys(got); !slices.Equal(g, want) {
			t.Errorf("ReservationExpiredCustomers(now, 100) =\n\t%s\nwant\n\t%s", strings.Join(g, "\n\t"), strings.Join(want, "\n\t"))
		}

		got, err = s.ReservationExpiredCustomers(ctx, now, 2)
		wantNoErr(t, "ReservationExpiredCustomers", err)
		if len(got) != 2 {
			t.Errorf("ReservationExpiredCustomers(now, 2) = %d customers, want 2", len(got))
		}
		for _, k := range keys(got) {
			if !slices.Contains(want, k) {
				t.Errorf("ReservationExpiredCustomers(now, 2) returned %s, which has no elapsed active hold", k)
			}
		}

		got, err = s.ReservationExpiredCustomers(ctx, t0, 100)
		wantNoErr(t, "ReservationExpiredCustomers", err)
		if len(got) != 0 {
			t.Errorf("ReservationExpiredCustomers(before any hold elapses) = %+v, want none", got)
		}
	})

	t.Run("Wall", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, _ := wallet(t, s, sc)
		h := newHold(c.ID, 50, at(time.Second))
		mustApply(t, s, reserve(sc, &c, h))

		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			t.Logf("from %+v", other)
			_, err := s.ReservationGet(ctx, other, h.ID)
			wantErr(t, "ReservationGet", err, store.ErrNotFound)
			active, err := s.ReservationsActive(ctx, other, c.ID)
			wantNoErr(t, "ReservationsActive", err)
			wantHolds(t, "ReservationsActive", active)
			for _, customerID := range []string{c.ID, ""} {
				list, err := s.ReservationList(ctx, other, customerID, "", store.Page{Limit: 100})
				wantNoErr(t, "ReservationList", err)
				wantHolds(t, "ReservationList", list)
			}
			err = apply(t, s, &store.Writes{Scope: other,
				ReservationUpdates: []store.Reservation{settled(h, store.ReservationReleased, 0, at(time.Minute))}})
			wantErr(t, "WritesApply(update of a hold)", err, store.ErrNotFound)

			// The customer's and the hold's ids are free elsewhere.
			twin := store.Customer{ID: c.ID, CreatedAt: t0}
			mustApply(t, s, &store.Writes{Scope: other, Customers: []store.Customer{twin}})
			mustApply(t, s, reserve(other, &twin, h))
		}

		got, err := s.ReservationGet(ctx, sc, h.ID)
		wantNoErr(t, "ReservationGet", err)
		wantSame(t, "ReservationGet", got, h)
		list, err := s.ReservationList(ctx, sc, "", "", store.Page{Limit: 100})
		wantNoErr(t, "ReservationList", err)
		wantHolds(t, "ReservationList", list, h)
		wantAccount(t, s, "CustomerGet", sc, c)
	})
}

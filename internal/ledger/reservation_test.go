package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

func (f *fixture) reserve(t *testing.T, key, ext string, units int64, ttl time.Duration) (store.Reservation, error) {
	t.Helper()
	var out ReservationResult
	enc := func(r ReservationResult) (int, []byte, error) { out = r; return 201, []byte(`{}`), nil }
	in := ReserveInput{Customer: CustomerRef{ExternalID: ext}, MetricKey: "gen", EstimatedUnits: units, TTL: ttl, IdempotencyKey: key}
	_, err := f.run(t, scope, key, "/v1/reserve", Reserve{In: in, Encode: enc})
	return out.Reservation, err
}

// settle commits (actual: nil for the estimate) or releases reservation id.
func (f *fixture) settle(t *testing.T, key, id string, release bool, actual *int64) (store.Reservation, error) {
	t.Helper()
	cust, err := f.svc.ReservationCustomer(t.Context(), scope, id)
	if err != nil {
		return store.Reservation{}, err
	}
	var out ReservationResult
	enc := func(r ReservationResult) (int, []byte, error) { out = r; return 200, []byte(`{}`), nil }
	_, err = f.run(t, scope, key, "/v1/reserve/"+id+"/settle", Settle{ID: id, CustomerID: cust, Release: release, ActualUnits: actual, Encode: enc})
	return out.Reservation, err
}

func ptr(v int64) *int64 { return &v }

func wantNotActive(t *testing.T, what string, err error, status string) {
	t.Helper()
	var ce *credit.Error
	if !errors.As(err, &ce) || ce.Code != credit.EReservationInactive || ce.Extra["reservation_status"] != status {
		t.Errorf("%s: %v, want %s with reservation_status %s", what, err, credit.EReservationInactive, status)
	}
}

func TestReservationLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "gen", 100)
		f.grant(t, scope, "g1", "ada", 10_000)

		if _, err := f.reserve(t, "r0", "ada", 101, 0); !isCode(err, credit.EInsufficient) {
			t.Errorf("reserve beyond the effective balance: %v, want 402", err)
		}
		r1, err := f.reserve(t, "r1", "ada", 30, time.Minute) // holds 3,000
		if err != nil || r1.Amount != 3000 || r1.Status != store.ReservationActive {
			t.Fatalf("reserve = %+v, %v", r1, err)
		}
		if b := f.balance(t, scope, "ada"); b.Reserved != 3000 || b.Effective != 7000 || b.Balance != 10_000 {
			t.Errorf("after the hold: %+v, want 3000 held of 10000", b)
		}
		// Held credits cannot be spent.
		if _, err := f.run(t, scope, "u1", "/v1/usage", usage("ada", "gen", 71, "u1")); !isCode(err, credit.EInsufficient) {
			t.Errorf("usage of 7100 with 7000 free: %v, want 402", err)
		}

		// A partial commit debits the actual cost and gives the rest back.
		got, err := f.settle(t, "c1", r1.ID, false, ptr(10))
		if err != nil || got.Status != store.ReservationCommitted || got.CommittedAmount != 1000 || got.ReleasedAmount != 2000 {
			t.Fatalf("commit of 10 of 30 units = %+v, %v", got, err)
		}
		if b := f.balance(t, scope, "ada"); b.Reserved != 0 || b.Balance != 9000 {
			t.Errorf("after the commit: %+v, want 9000 and nothing held", b)
		}
		_, err = f.settle(t, "c2", r1.ID, false, nil)
		wantNotActive(t, "commit twice", err, store.ReservationCommitted)
		_, err = f.settle(t, "x1", r1.ID, true, nil)
		wantNotActive(t, "release after commit", err, store.ReservationCommitted)

		// Release, twice.
		r2, err := f.reserve(t, "r2", "ada", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.settle(t, "x2", r2.ID, true, nil); err != nil || got.Status != store.ReservationReleased || got.ReleasedAmount != 1000 {
			t.Errorf("release = %+v, %v", got, err)
		}
		_, err = f.settle(t, "x3", r2.ID, true, nil)
		wantNotActive(t, "release twice", err, store.ReservationReleased)

		// Above the hold: charged when the effective balance plus the hold
		// covers it; else 402 and the hold stays.
		r3, err := f.reserve(t, "r3", "ada", 10, time.Minute) // holds 1,000 of 9,000
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.settle(t, "c3", r3.ID, false, ptr(91)); !isCode(err, credit.EInsufficient) {
			t.Errorf("commit of 9100 with 9000 in all: %v, want 402", err)
		}
		if b := f.balance(t, scope, "ada"); b.Reserved != 1000 {
			t.Errorf("after a refused commit: %d held, want the hold still there (1000)", b.Reserved)
		}
		if got, err := f.settle(t, "c4", r3.ID, false, ptr(90)); err != nil || got.CommittedAmount != 9000 || got.ReleasedAmount != 0 {
			t.Errorf("commit of 9000 above a 1000 hold, 9000 in all = %+v, %v", got, err)
		}
		// A commit of 0 units gives the whole hold back.
		f.grant(t, scope, "g2", "ada", 5000)
		r4, _ := f.reserve(t, "r4", "ada", 20, time.Minute)
		if got, err := f.settle(t, "c5", r4.ID, false, ptr(0)); err != nil || got.CommittedAmount != 0 || got.ReleasedAmount != 2000 {
			t.Errorf("commit of 0 units = %+v, %v", got, err)
		}
		if b := f.balance(t, scope, "ada"); b.Balance != 5000 || b.Reserved != 0 {
			t.Errorf("final balance %+v, want 5000 and nothing held", b)
		}
	})
}

// A hold whose time passes stops counting at once, reads as expired, cannot
// be committed, and is recorded as expired by the sweeper.
func TestReservationExpiry(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "gen", 100)
		f.grant(t, scope, "g1", "ada", 10_000)
		r, err := f.reserve(t, "r1", "ada", 50, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Add(31 * time.Second)
		if b := f.balance(t, scope, "ada"); b.Reserved != 0 || b.Effective != 10_000 {
			t.Errorf("after the TTL: %+v, want nothing held at once", b)
		}
		if got, err := f.svc.ReservationRead(t.Context(), scope, r.ID); err != nil || got.Reservation.Status != store.ReservationExpired {
			t.Errorf("read after the TTL = %+v, %v; want expired", got.Reservation, err)
		}
		_, err = f.settle(t, "c1", r.ID, false, nil)
		wantNotActive(t, "commit after expiry", err, store.ReservationExpired)
		if _, err := f.svc.SweepExpired(t.Context(), 100); err != nil {
			t.Fatal(err)
		}
		stored, err := f.st.ReservationGet(t.Context(), scope, r.ID)
		if err != nil || stored.Status != store.ReservationExpired || stored.ReleasedAmount != 5000 {
			t.Errorf("stored after the sweep = %+v, %v; want expired, 5000 given back", stored, err)
		}
		c, _ := f.st.CustomerByExternalID(t.Context(), scope, "ada")
		if c.Account.Reserved != 0 {
			t.Errorf("account row holds %d after the sweep, want 0", c.Account.Reserved)
		}
	})
}

package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// The bounds of a reservation's time to live.
const (
	DefaultTTL = 300 * time.Second
	MaxTTL     = 86_400 * time.Second
)

// ReserveInput is a hold to place: the price of EstimatedUnits of a metric,
// held for TTL.
type ReserveInput struct {
	Customer       CustomerRef
	MetricKey      string
	EstimatedUnits int64
	TTL            time.Duration // 0: DefaultTTL
	Metadata       json.RawMessage
	IdempotencyKey string
}

// Validate checks the hold's own fields.
func (in ReserveInput) Validate() error {
	var fields credit.Fields
	if in.MetricKey == "" {
		fields.Add("billable_metric_key", "is required")
	}
	if in.EstimatedUnits < 1 {
		fields.Add("estimated_units", "must be an integer ≥ 1")
	}
	if in.TTL < 0 || in.TTL > MaxTTL || (in.TTL != 0 && in.TTL < time.Second) {
		fields.Add("ttl_seconds", "must be between 1 and 86400")
	}
	return fields.Err("the reservation is invalid")
}

// ReservationResult is a reservation with its customer.
type ReservationResult struct {
	Reservation store.Reservation
	Customer    store.Customer
}

// Reserve holds the price of the estimated units: held credits count in
// reserved_balance, and nothing else may spend them until the hold is
// committed, released or lapses. A price above the effective balance is an
// *credit.InsufficientError and writes nothing.
type Reserve struct {
	In     ReserveInput
	Encode Encoder[ReservationResult]
}

func (c Reserve) plan(p *plan) { p.customer(c.In.Customer) }
func (c Reserve) size() int    { return 1 }

func (c Reserve) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	in := c.In
	if err := in.Validate(); err != nil {
		return Response{}, false, err
	}
	rule, err := g.rule(ctx, req.Scope, in.MetricKey)
	if err != nil {
		return Response{}, false, err
	}
	amount, err := rule.Cost(in.EstimatedUnits)
	if err != nil {
		return Response{}, false, err
	}
	acc, err := g.account(req.Scope, in.Customer, true)
	if err != nil {
		return Response{}, false, err
	}
	if err := acc.state.Hold(amount, g.now); err != nil {
		return Response{}, false, err
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	r := store.Reservation{
		ID: ids.New(ids.Reservation), CustomerID: acc.customer.ID, MetricKey: in.MetricKey, EstimatedUnits: in.EstimatedUnits,
		Amount: amount, Status: store.ReservationActive, ExpiresAt: g.now.Add(ttl), Metadata: in.Metadata,
		CreatedAt: g.now, UpdatedAt: g.now,
	}
	acc.holds = append(acc.holds, r)
	acc.newHolds[r.ID] = true
	acc.stage(g, []credit.Entry{{Type: credit.EntryReserve, BalanceAfter: acc.state.Account.Balance}},
		entryRef{Type: "reservation", ID: r.ID, IdempotencyKey: in.IdempotencyKey})
	acc.accept(g)
	acc.note(g, nil) // no event of its own, but it lowers the effective balance
	status, body, err := c.Encode(ReservationResult{Reservation: r, Customer: acc.customer})
	return Response{Status: status, Body: body}, true, err
}

// Settle ends an active hold: a commit (Release false) debits the price of
// ActualUnits (nil: the estimate) from the live blocks in burn order and
// gives back the rest of the hold; a release gives back all of it. A hold
// that is not active is a reservation-not-active conflict naming its state.
// A commit above the hold is charged if the effective balance plus this
// hold covers it; if not, it is an *credit.InsufficientError and the hold
// stays active.
type Settle struct {
	ID          string
	CustomerID  string // the reservation's customer, read before: it is locked with the group
	Release     bool
	ActualUnits *int64
	Encode      Encoder[ReservationResult]
}

func (c Settle) plan(p *plan) { p.customer(CustomerRef{ID: c.CustomerID}) }
func (c Settle) size() int    { return 1 }

func (c Settle) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	if c.ActualUnits != nil && *c.ActualUnits < 0 {
		return Response{}, false, credit.Invalid("actual_units", "must be an integer ≥ 0")
	}
	acc, err := g.account(req.Scope, CustomerRef{ID: c.CustomerID}, false)
	if err != nil {
		return Response{}, false, notFound(err, "no reservation %q", c.ID)
	}
	i := acc.hold(c.ID)
	if i < 0 {
		return Response{}, false, g.notActive(ctx, req.Scope, acc, c.ID)
	}
	r := acc.holds[i]
	state := acc.state.Clone()
	state.Unhold(r.Amount)
	var entries []credit.Entry
	if !c.Release {
		units := r.EstimatedUnits
		if c.ActualUnits != nil {
			units = *c.ActualUnits
		}
		cost := int64(0)
		if units > 0 {
			rule, err := g.rule(ctx, req.Scope, r.MetricKey)
			if err != nil {
				return Response{}, false, err
			}
			if cost, err = rule.Cost(units); err != nil {
				return Response{}, false, err
			}
		}
		if entries, err = state.Debit(cost, credit.EntryCommit, g.now); err != nil {
			return Response{}, false, err
		}
		r.Status, r.CommittedAmount, r.ReleasedAmount = store.ReservationCommitted, cost, max(0, r.Amount-cost)
	} else {
		r.Status, r.ReleasedAmount = store.ReservationReleased, r.Amount
	}
	r.UpdatedAt = g.now
	acc.state = state
	if r.ReleasedAmount > 0 || c.Release {
		entries = append(entries, credit.Entry{Type: credit.EntryRelease, BalanceAfter: state.Account.Balance})
	}
	acc.settle(i, r)
	acc.stage(g, entries, entryRef{Type: "reservation", ID: r.ID, IdempotencyKey: req.Key})
	acc.accept(g)
	settled, typ := r, EventReservationReleased
	if r.Status == store.ReservationCommitted {
		typ = EventReservationCommitted
	}
	acc.note(g, &Event{Type: typ, Reservation: &settled})
	status, body, err := c.Encode(ReservationResult{Reservation: r, Customer: acc.customer})
	return Response{Status: status, Body: body}, true, err
}

// notActive is the conflict of settling a hold that is not active, naming
// the state it is in: as this group left it (settled by a command before in
// the group, not written yet), else as stored.
func (g *group) notActive(ctx context.Context, scope store.Scope, acc *account, id string) error {
	var r store.Reservation
	found := false
	for _, h := range acc.holds {
		if h.ID == id {
			r, found = h, true
		}
	}
	if !found {
		var err error
		r, err = g.q.ReservationGet(ctx, scope, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && r.CustomerID != acc.customer.ID) {
			return credit.Errorf(credit.ENotFound, "no reservation %q", id)
		}
		if err != nil {
			return fmt.Errorf("reservation %s: %w", id, err)
		}
	}
	status := viewStatus(r, g.now)
	e := credit.Errorf(credit.EReservationInactive, "reservation %s is %s, not active", id, status)
	e.Extra = map[string]any{"reservation_status": status}
	return e
}

// hold returns the index of the active hold id among the account's, or -1.
func (acc *account) hold(id string) int {
	for i, r := range acc.holds {
		if r.ID == id && r.Status == store.ReservationActive {
			return i
		}
	}
	return -1
}

// settle records hold i's new state: written as an update, or with the new
// row when the hold was placed in this group.
func (acc *account) settle(i int, r store.Reservation) {
	acc.holds[i] = r
	if !acc.newHolds[r.ID] {
		acc.settled[r.ID] = true
	}
}

// expireHolds ends, at load, the account's holds whose time has passed: their
// credits are free again. Like due block expiries, the change is written only
// with a change of the account's.
func (acc *account) expireHolds(g *group) {
	for i, r := range acc.holds {
		if r.Status != store.ReservationActive || r.ExpiresAt.After(g.now) {
			continue
		}
		acc.state.Unhold(r.Amount)
		r.Status, r.ReleasedAmount, r.UpdatedAt = store.ReservationExpired, r.Amount, g.now
		acc.settle(i, r)
		acc.stage(g, []credit.Entry{{Type: credit.EntryExpire, BalanceAfter: acc.state.Account.Balance}},
			entryRef{Type: "reservation", ID: r.ID})
		expired := r
		acc.note(g, &Event{Type: EventReservationExpired, Reservation: &expired})
	}
}

// viewStatus is the state a reservation reads as at now: a hold whose time
// has passed is expired at once, before the sweeper records it.
func viewStatus(r store.Reservation, now time.Time) string {
	if r.Status == store.ReservationActive && !r.ExpiresAt.After(now) {
		return store.ReservationExpired
	}
	return r.Status
}

// ReservationRead reads one reservation as it stands now.
func (s *Service) ReservationRead(ctx context.Context, scope store.Scope, id string) (ReservationResult, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var res ReservationResult
	err := s.store.Read(ctx, func(q store.Q) error {
		r, err := q.ReservationGet(ctx, scope, id)
		if err != nil {
			return notFound(err, "no reservation %q", id)
		}
		c, err := q.CustomerGet(ctx, scope, r.CustomerID)
		if err != nil {
			return fmt.Errorf("customer of reservation %s: %w", id, err)
		}
		r.Status = viewStatus(r, s.clock())
		res = ReservationResult{Reservation: r, Customer: c}
		return nil
	})
	return res, err
}

// Reservations lists reservations newest first, of one customer when ref
// names one, in one stored state when status is set. Each reads as its
// state now: a hold whose time has passed is expired at once, though the
// filter sees it as stored (active) until the sweeper records it, within
// its interval. Filtering on the stored state keeps pages exact.
func (s *Service) Reservations(ctx context.Context, scope store.Scope, ref *CustomerRef, status string, p store.Page) ([]ReservationResult, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.clock()
	var out []ReservationResult
	err := s.store.Read(ctx, func(q store.Q) error {
		customerID := ""
		customers := map[string]store.Customer{}
		if ref != nil {
			c, err := findCustomer(ctx, q, scope, *ref)
			if err != nil {
				return notFound(err, "no customer with %s", *ref)
			}
			customerID, customers[c.ID] = c.ID, c
		}
		list, err := q.ReservationList(ctx, scope, customerID, status, p)
		if err != nil {
			return err
		}
		for _, r := range list {
			r.Status = viewStatus(r, now)
			c, ok := customers[r.CustomerID]
			if !ok {
				if c, err = q.CustomerGet(ctx, scope, r.CustomerID); err != nil {
					return fmt.Errorf("customer of reservation %s: %w", r.ID, err)
				}
				customers[c.ID] = c
			}
			out = append(out, ReservationResult{Reservation: r, Customer: c})
		}
		return nil
	})
	return out, err
}

// ReservationCustomer returns the customer a reservation holds credits of:
// settling one locks that customer, so the HTTP layer names it first.
func (s *Service) ReservationCustomer(ctx context.Context, scope store.Scope, id string) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	r, err := s.store.ReservationGet(ctx, scope, id)
	if err != nil {
		return "", notFound(err, "no reservation %q", id)
	}
	return r.CustomerID, nil
}

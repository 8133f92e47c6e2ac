package concurrency

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// The reservation tests.
//
// The hammer: 64 clients on one customer for CREDITD_RESERVE_SECONDS (3 s
// by default), across every instance of the cluster. Each loop reserves a
// random number of units (the clients together ask about twice the wallet,
// so many reserves are refused with 402), then settles the hold: a commit of
// the estimate, of less, of nothing or of more (which may be refused with
// 402, the hold staying active, and is then released), a release, or a
// commit and a release sent at once to two instances (exactly one may win).
// Some loops settle a second time (409 reservation-not-active naming the
// state), repeat a settle's key (its stored answer), or read the
// reservation back. Sampled balance reads check that holds never exceed the
// balance; when the balance is under the wallet a client grants more, so
// that refusals keep coming from holds, not from an empty wallet. At the
// end: balance = wallet + Σ granted − Σ committed, nothing held, every
// stored reservation as its client settled it, and the invariants.
//
// The expiry: holds whose TTL passes while creditd is down read as expired
// at the first request after the restart and are recorded by the sweeper;
// a hold whose TTL passes while creditd runs, before any sweep, reads as
// expired although nothing recorded it (reads never write).

const (
	rsvClients     = 64
	rsvMaxOps      = 50_000 // per client: the loop is bounded in count as well as in time
	defaultRsvS    = 3.0
	rsvWallet      = 64_000        // mc: the first grant, and the level under which clients grant more
	rsvMaxEstimate = 4000          // units, 1 mc each: 64 holds of 2000 on average are twice the wallet
	rsvRefill      = rsvWallet / 4 // mc per refill grant
	rsvTTL         = 300           // s: no hold of the hammer lapses
	rsvCustomerExt = "hammered"    // newCluster's customer
)

func TestReservationHammerPostgresTwoInstances(t *testing.T) {
	c := postgresCluster(t, 2)
	runReservationHammer(t, c)
}

func TestReservationHammerSQLite(t *testing.T) {
	c := sqliteCluster(t)
	runReservationHammer(t, c)
}

// reservationDuration is how long the clients run: CREDITD_RESERVE_SECONDS,
// or 3 s (1 s under -short, though every test here skips then).
func reservationDuration(t *testing.T) time.Duration {
	s := os.Getenv("CREDITD_RESERVE_SECONDS")
	if s == "" {
		if testing.Short() {
			return time.Second
		}
		return time.Duration(defaultRsvS * float64(time.Second))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 3600 {
		t.Fatalf("CREDITD_RESERVE_SECONDS=%q: want a number of seconds in (0, 3600]", s)
	}
	return time.Duration(v * float64(time.Second))
}

// rsvJSON is a reservation as the API answers it.
type rsvJSON struct {
	ID                 string         `json:"id"`
	CustomerID         string         `json:"customer_id"`
	ExternalCustomerID *string        `json:"external_customer_id"`
	BillableMetricKey  string         `json:"billable_metric_key"`
	EstimatedUnits     int64          `json:"estimated_units"`
	Amount             int64          `json:"amount"`
	Status             string         `json:"status"`
	ExpiresAt          time.Time      `json:"expires_at"`
	CreatedAt          time.Time      `json:"created_at"`
	CommittedAmount    *int64         `json:"committed_amount"`
	ReleasedAmount     *int64         `json:"released_amount"`
	Metadata           map[string]any `json:"metadata"`
}

// rsvProblemJSON is a problem body with a 409's reservation_status.
type rsvProblemJSON struct {
	problemJSON
	ReservationStatus string `json:"reservation_status"`
}

// rsvListJSON is a page of GET /v1/reservations.
type rsvListJSON struct {
	Data       []rsvJSON `json:"data"`
	Pagination struct {
		HasMore bool `json:"has_more"`
	} `json:"pagination"`
}

// rsvRecord is one hold the hammer placed (answered 201) and how its client
// settled it.
type rsvRecord struct {
	id        string
	estimate  int64
	amount    int64
	status    string // committed or released; "" while active
	committed int64
	released  int64
	by        string // the request that settled it
}

// rsvHammer is one run of the reservation hammer.
type rsvHammer struct {
	t        *testing.T
	c        *cluster
	deadline time.Time

	failMu   sync.Mutex
	failures []string
	failIDs  map[string]bool

	granted atomic.Int64 // Σ credits of the refill grants answered 201

	requests, held, refused, commits, commit402, releases, races, conflicts,
	replays, gets, reads, grants, retries atomic.Int64
}

func (h *rsvHammer) fail(reqID, format string, args ...any) {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if reqID != "" {
		h.failIDs[reqID] = true
	}
	if len(h.failures) < 100 {
		h.failures = append(h.failures, fmt.Sprintf(format, args...))
	} else if len(h.failures) == 100 {
		h.failures = append(h.failures, "… more failures left out")
	}
}

func runReservationHammer(t *testing.T, c *cluster) {
	d := reservationDuration(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("reservation hammer: %d clients, %s, %d instance(s), seed %d", rsvClients, d, len(c.insts), seed)
	c.api.must(t, http.MethodPost, c.insts[0].base+"/v1/topup/grant", "setup-wallet",
		map[string]any{"customer_id": c.customer, "credits": rsvWallet}, http.StatusCreated, nil)

	h := &rsvHammer{t: t, c: c, failIDs: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	t0 := time.Now()
	h.deadline = t0.Add(d)
	recs := make([][]*rsvRecord, rsvClients)
	var wg sync.WaitGroup
	for i := range rsvClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = h.client(ctx, i, rand.New(rand.NewPCG(seed, uint64(i))))
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	t.Logf("reservation hammer: %d requests in %s (%.0f/s): %d holds placed, %d refused (402); %d commits (%d refused above the hold), "+
		"%d releases, %d commit/release races, %d conflicts (409), %d replays, %d reservation reads, %d balance reads, %d refill grants, %d transport retries",
		h.requests.Load(), elapsed.Round(time.Millisecond), float64(h.requests.Load())/elapsed.Seconds(),
		h.held.Load(), h.refused.Load(), h.commits.Load(), h.commit402.Load(), h.releases.Load(), h.races.Load(),
		h.conflicts.Load(), h.replays.Load(), h.gets.Load(), h.reads.Load(), h.grants.Load(), h.retries.Load())

	var all []*rsvRecord
	var committed int64
	for _, rs := range recs {
		for _, r := range rs {
			all = append(all, r)
			if r.status == "" {
				h.fail("", "reservation %s (%d mc) was never settled by its client", r.id, r.amount)
			}
			committed += r.committed
		}
	}
	granted := h.granted.Load()
	want := rsvWallet + granted - committed
	t.Logf("reservation hammer: %d holds, Σ committed %d mc, Σ granted %d mc after the wallet of %d: balance should be %d",
		len(all), committed, granted, rsvWallet, want)
	if h.refused.Load() == 0 || h.held.Load() == 0 || h.commits.Load() == 0 || h.releases.Load() == 0 || h.conflicts.Load() == 0 {
		h.fail("", "the hammer did not exercise every outcome: %d holds, %d refused, %d commits, %d releases, %d conflicts",
			h.held.Load(), h.refused.Load(), h.commits.Load(), h.releases.Load(), h.conflicts.Load())
	}

	// Every hold is settled: nothing is held, from every instance.
	for i := range c.insts {
		b := c.balance(t, i)
		if b.Balance != want || b.ReservedBalance != 0 || b.EffectiveBalance != want || b.LifetimeEarned != rsvWallet+granted {
			h.fail("", "%s: balance %+v after every hold was settled; want balance = effective = %d + %d − %d = %d, reserved 0, lifetime_earned %d",
				c.insts[i].name, b, rsvWallet, granted, committed, want, rsvWallet+granted)
		}
		var active rsvListJSON
		c.api.must(t, http.MethodGet, c.insts[i].base+"/v1/reservations?status=active&limit=10&customer_id="+c.customer, "", nil, http.StatusOK, &active)
		if len(active.Data) > 0 {
			h.fail("", "%s: %d reservation(s) still stored active after every hold was settled, the first %s", c.insts[i].name, len(active.Data), active.Data[0].ID)
		}
	}

	// The database itself, with every server stopped.
	c.stopAll(t)
	h.checkStored(all, want)

	if len(h.failures) > 0 {
		for _, f := range h.failures {
			t.Error(f)
		}
		c.dumpAll(t, h.failIDs)
	}
}

// checkStored compares the stored reservations and account with what the
// clients were answered, and runs the invariants.
func (h *rsvHammer) checkStored(all []*rsvRecord, wantBalance int64) {
	t, c := h.t, h.c
	st := openStore(t, c.dbURL)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := st.Read(ctx, func(q store.Q) error {
		scopes, err := serverScopes(ctx, q)
		if err != nil {
			return err
		}
		sc := scopes[0] // the test key's environment
		for _, r := range all {
			s, err := q.ReservationGet(ctx, sc, r.id)
			if err != nil {
				h.fail("", "stored reservation %s: %v", r.id, err)
				continue
			}
			if s.CustomerID != c.customer || s.EstimatedUnits != r.estimate || s.Amount != r.amount || s.Status != r.status ||
				s.CommittedAmount != r.committed || s.ReleasedAmount != r.released {
				h.fail("", "stored reservation %s: customer %s, %d units, amount %d, %s, committed %d, released %d; "+
					"its client was answered %d units, amount %d, %s, committed %d, released %d (by %s)",
					r.id, s.CustomerID, s.EstimatedUnits, s.Amount, s.Status, s.CommittedAmount, s.ReleasedAmount,
					r.estimate, r.amount, r.status, r.committed, r.released, r.by)
			}
		}
		// No refused reserve left a row: the customer has exactly the holds answered 201.
		n := 0
		p := store.Page{Limit: 500}
		for {
			list, err := q.ReservationList(ctx, sc, c.customer, "", p)
			if err != nil {
				return err
			}
			n += len(list)
			if len(list) < p.Limit {
				break
			}
			p.After = list[len(list)-1].ID
		}
		if n != len(all) {
			h.fail("", "%d reservations stored for the customer, %d answered 201", n, len(all))
		}
		cust, err := q.CustomerGet(ctx, sc, c.customer)
		if err != nil {
			return err
		}
		if cust.Account.Balance != wantBalance || cust.Account.Reserved != 0 {
			h.fail("", "stored account: balance %d, reserved %d; want %d and 0", cust.Account.Balance, cust.Account.Reserved, wantBalance)
		}
		customers, err := checkInvariantsIn(ctx, q)
		if err != nil {
			h.fail("", "invariants on the database after the run (ledger.CheckInvariants):\n%v", err)
		} else {
			t.Logf("invariants hold on the database: %d customer(s) checked", customers)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// post sends a mutation, retrying it under the same key when no answer
// came (the key's stored answer, or its first execution, tells its fate).
func (h *rsvHammer) post(ctx context.Context, inst *instance, path, key string, body any) (reply, bool) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			h.retries.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
		h.requests.Add(1)
		rep, err := h.c.api.do(ctx, http.MethodPost, inst.base+path, key, b)
		if err != nil {
			last = err
			continue
		}
		if rep.status >= 500 {
			h.fail(rep.reqID, "%s: POST %s (key %s, request %s): status %d: %s", inst.name, path, key, rep.reqID, rep.status, rep.body)
			return rep, false
		}
		return rep, true
	}
	h.fail("", "%s: POST %s (key %s): no answer in 3 tries: %v", inst.name, path, key, last)
	return reply{}, false
}

// client is one of the 64 workers; it returns the holds it placed.
func (h *rsvHammer) client(ctx context.Context, id int, rng *rand.Rand) []*rsvRecord {
	var recs []*rsvRecord
	seq := 0
	key := func(what string) string {
		seq++
		return fmt.Sprintf("rsv-c%d-%d-%s", id, seq, what)
	}
	insts := h.c.insts
	for i := 0; i < rsvMaxOps && time.Now().Before(h.deadline) && ctx.Err() == nil; i++ {
		inst, other := insts[(id+i)%len(insts)], insts[(id+i+1)%len(insts)]
		if rng.IntN(100) < 15 {
			h.read(ctx, inst, key)
		}
		est := 1 + rng.Int64N(rsvMaxEstimate)
		k := key("reserve")
		rep, ok := h.post(ctx, inst, "/v1/reserve", k, map[string]any{
			"customer_id": h.c.customer, "billable_metric_key": metricKey, "estimated_units": est,
			"ttl_seconds": rsvTTL, "metadata": map[string]any{"key": k},
		})
		if !ok {
			continue
		}
		what := fmt.Sprintf("%s: reserve %s (%d units), request %s", inst.name, k, est, rep.reqID)
		switch rep.status {
		case http.StatusCreated:
			var res rsvJSON
			if err := json.Unmarshal(rep.body, &res); err != nil {
				h.fail(rep.reqID, "%s: %v: %s", what, err, rep.body)
				continue
			}
			if !strings.HasPrefix(res.ID, "res_") || res.CustomerID != h.c.customer || res.ExternalCustomerID == nil ||
				*res.ExternalCustomerID != rsvCustomerExt || res.BillableMetricKey != metricKey || res.EstimatedUnits != est ||
				res.Amount != est || res.Status != "active" || res.ExpiresAt.Sub(res.CreatedAt) != rsvTTL*time.Second ||
				res.Metadata["key"] != k || res.CommittedAmount != nil || res.ReleasedAmount != nil {
				h.fail(rep.reqID, "%s: the answer is not this hold (amount %d, active, %d s): %s", what, est, rsvTTL, rep.body)
				continue
			}
			h.held.Add(1)
			r := &rsvRecord{id: res.ID, estimate: est, amount: res.Amount}
			recs = append(recs, r)
			h.settle(ctx, r, inst, other, rng, key)
		case http.StatusPaymentRequired:
			h.refused.Add(1)
			h.check402(rep, what, est, 0)
		default:
			h.fail(rep.reqID, "%s: status %d: %s", what, rep.status, rep.body)
		}
	}
	return recs
}

// check402 checks an insufficient-credits answer to a request that needed
// required: available is short of it, and at least atLeast.
func (h *rsvHammer) check402(rep reply, what string, required, atLeast int64) {
	var p problemJSON
	if err := json.Unmarshal(rep.body, &p); err != nil || p.Code != "insufficient-credits" || p.Status != http.StatusPaymentRequired {
		h.fail(rep.reqID, "%s: bad 402 (%v): %s", what, err, rep.body)
		return
	}
	if p.Required == nil || *p.Required != required || p.Available == nil || *p.Available >= required || *p.Available < atLeast {
		h.fail(rep.reqID, "%s: 402 with impossible required/available (want required %d, %d ≤ available < %d): %s",
			what, required, atLeast, required, rep.body)
	}
	if rep.replayed {
		h.fail(rep.reqID, "%s: a 402 was replayed: %s", what, rep.body)
	}
}

// settleResult is one settle request and its answer.
type settleResult struct {
	release bool
	cost    int64 // of a commit: the price of its units
	key     string
	inst    *instance
	body    []byte
	rep     reply
	ok      bool
}

func (s settleResult) path(r *rsvRecord) string {
	if s.release {
		return "/v1/reserve/" + r.id + "/release"
	}
	return "/v1/reserve/" + r.id + "/commit"
}

func (s settleResult) what(r *rsvRecord) string {
	op := "release"
	if !s.release {
		op = fmt.Sprintf("commit of %d", s.cost)
	}
	return fmt.Sprintf("%s: %s of %s (hold %d), key %s, request %s", s.inst.name, op, r.id, r.amount, s.key, s.rep.reqID)
}

// send sends a settle; body nil sends none.
func (h *rsvHammer) send(ctx context.Context, r *rsvRecord, s settleResult) settleResult {
	var body any
	if s.body != nil {
		body = json.RawMessage(s.body)
	}
	s.rep, s.ok = h.post(ctx, s.inst, s.path(r), s.key, body)
	return s
}

// commitBody picks a commit's actual units: the estimate (actual_units left
// out), 0, fewer, or more than the estimate.
func commitBody(r *rsvRecord, rng *rand.Rand, onlyWithin bool) (body []byte, cost int64) {
	var units int64
	switch q := rng.IntN(100); {
	case q < 25:
		if rng.IntN(2) == 0 {
			return nil, r.estimate
		}
		return []byte(`{}`), r.estimate
	case q < 35:
		units = 0
	case q < 75 || onlyWithin:
		units = rng.Int64N(r.estimate + 1)
	default:
		units = r.estimate + 1 + rng.Int64N(r.estimate)
	}
	body, _ = json.Marshal(map[string]any{"actual_units": units})
	return body, units // 1 mc per unit
}

// accepted checks a settle answered 200 and records it on r; it reports
// whether the answer was well-formed.
func (h *rsvHammer) accepted(r *rsvRecord, s settleResult) bool {
	var res rsvJSON
	what := s.what(r)
	if err := json.Unmarshal(s.rep.body, &res); err != nil {
		h.fail(s.rep.reqID, "%s: %v: %s", what, err, s.rep.body)
		return false
	}
	wantStatus, wantC, wantR := "released", int64(0), r.amount
	if !s.release {
		wantStatus, wantC, wantR = "committed", s.cost, max(0, r.amount-s.cost)
	}
	if res.ID != r.id || res.Amount != r.amount || res.Status != wantStatus || res.CommittedAmount == nil || res.ReleasedAmount == nil ||
		*res.CommittedAmount != wantC || *res.ReleasedAmount != wantR {
		h.fail(s.rep.reqID, "%s: answer is not this settle (want %s, committed_amount %d, released_amount %d): %s",
			what, wantStatus, wantC, wantR, s.rep.body)
		return false
	}
	if r.status != "" {
		h.fail(s.rep.reqID, "%s: settled a second time (it was %s by %s): %s", what, r.status, r.by, s.rep.body)
		return false
	}
	r.status, r.committed, r.released, r.by = wantStatus, wantC, wantR, s.key+" on "+s.inst.name+" ("+s.rep.reqID+")"
	if s.release {
		h.releases.Add(1)
	} else {
		h.commits.Add(1)
	}
	return true
}

// conflict checks a 409 reservation-not-active naming r's state.
func (h *rsvHammer) conflict(r *rsvRecord, s settleResult) {
	var p rsvProblemJSON
	what := s.what(r)
	if err := json.Unmarshal(s.rep.body, &p); err != nil || p.Code != "reservation-not-active" || p.Status != http.StatusConflict {
		h.fail(s.rep.reqID, "%s: bad 409 (%v): %s", what, err, s.rep.body)
		return
	}
	if p.ReservationStatus != r.status {
		h.fail(s.rep.reqID, "%s: 409 names reservation_status %q; it was %s by %s: %s", what, p.ReservationStatus, r.status, r.by, s.rep.body)
	}
	h.conflicts.Add(1)
}

// settle ends the hold r one way or another, then sometimes tries again.
func (h *rsvHammer) settle(ctx context.Context, r *rsvRecord, inst, other *instance, rng *rand.Rand, key func(string) string) {
	var won settleResult
	switch p := rng.IntN(100); {
	case p < 15:
		// A commit (within the hold, so never refused) and a release at
		// once, to two instances (their transactions race on the database)
		// or to one (they may share a write group): exactly one wins.
		h.races.Add(1)
		body, cost := commitBody(r, rng, true)
		cm := settleResult{cost: cost, key: key("commit"), inst: inst, body: body}
		rl := settleResult{release: true, key: key("release"), inst: anyInst(h, rng)}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); cm = h.send(ctx, r, cm) }()
		go func() { defer wg.Done(); rl = h.send(ctx, r, rl) }()
		wg.Wait()
		if !cm.ok || !rl.ok {
			return
		}
		switch {
		case cm.rep.status == http.StatusOK && rl.rep.status == http.StatusConflict:
			if h.accepted(r, cm) {
				h.conflict(r, rl)
			}
			won = cm
		case rl.rep.status == http.StatusOK && cm.rep.status == http.StatusConflict:
			if h.accepted(r, rl) {
				h.conflict(r, cm)
			}
			won = rl
		default:
			h.fail(cm.rep.reqID, "a commit and a release of %s at once: want one 200 and one 409; got %d (%s) and %d (%s): %s | %s",
				r.id, cm.rep.status, cm.what(r), rl.rep.status, rl.what(r), cm.rep.body, rl.rep.body)
			h.fail(rl.rep.reqID, "(the release of %s above, request %s)", r.id, rl.rep.reqID)
			return
		}
	case p < 45:
		won = h.send(ctx, r, settleResult{release: true, key: key("release"), inst: other})
		if !won.ok {
			return
		}
		if won.rep.status != http.StatusOK {
			h.fail(won.rep.reqID, "%s: status %d: %s", won.what(r), won.rep.status, won.rep.body)
			return
		}
		h.accepted(r, won)
	default:
		body, cost := commitBody(r, rng, false)
		won = h.send(ctx, r, settleResult{cost: cost, key: key("commit"), inst: other, body: body})
		if !won.ok {
			return
		}
		switch won.rep.status {
		case http.StatusOK:
			h.accepted(r, won)
		case http.StatusPaymentRequired:
			if cost <= r.amount {
				h.fail(won.rep.reqID, "%s: 402 for a commit within the hold: %s", won.what(r), won.rep.body)
				return
			}
			// More than the hold, and the rest of the balance cannot pay:
			// the hold stays active, and what is available counts it.
			h.commit402.Add(1)
			h.check402(won.rep, won.what(r), cost, r.amount)
			won = h.send(ctx, r, settleResult{release: true, key: key("release"), inst: inst})
			if !won.ok {
				return
			}
			if won.rep.status != http.StatusOK {
				h.fail(won.rep.reqID, "%s, after a commit refused with 402 (the hold stays active): status %d: %s",
					won.what(r), won.rep.status, won.rep.body)
				return
			}
			h.accepted(r, won)
		default:
			h.fail(won.rep.reqID, "%s: status %d: %s", won.what(r), won.rep.status, won.rep.body)
			return
		}
	}
	if r.status == "" {
		return // a check failed above
	}
	if rng.IntN(100) < 20 {
		// Settling again, with a new key: the hold is no longer active.
		again := settleResult{release: rng.IntN(2) == 0, key: key("again"), inst: anyInst(h, rng)}
		if !again.release {
			again.body, again.cost = commitBody(r, rng, false)
		}
		if again = h.send(ctx, r, again); again.ok {
			if again.rep.status == http.StatusConflict {
				h.conflict(r, again)
			} else {
				h.fail(again.rep.reqID, "%s, already %s by %s: status %d, want 409 reservation-not-active: %s",
					again.what(r), r.status, r.by, again.rep.status, again.rep.body)
			}
		}
	}
	if rng.IntN(100) < 10 {
		// The winning key again, anywhere: its stored answer, replayed.
		rep := won
		rep.inst = anyInst(h, rng)
		if rep = h.send(ctx, r, rep); rep.ok {
			if rep.rep.status != http.StatusOK || !rep.rep.replayed || string(rep.rep.body) != string(won.rep.body) {
				h.fail(rep.rep.reqID, "%s, sent again: status %d, replayed %v, want the stored 200 replayed:\n%s\nfirst answer:\n%s",
					rep.what(r), rep.rep.status, rep.rep.replayed, rep.rep.body, won.rep.body)
			} else {
				h.replays.Add(1)
			}
		}
	}
	if rng.IntN(100) < 10 {
		in := anyInst(h, rng)
		h.gets.Add(1)
		h.requests.Add(1)
		rep, err := h.c.api.do(ctx, http.MethodGet, in.base+"/v1/reserve/"+r.id, "", nil)
		if err != nil {
			h.fail("", "%s: GET /v1/reserve/%s: %v", in.name, r.id, err)
			return
		}
		var res rsvJSON
		if rep.status != http.StatusOK || json.Unmarshal(rep.body, &res) != nil || res.Status != r.status ||
			res.CommittedAmount == nil || *res.CommittedAmount != r.committed || res.ReleasedAmount == nil || *res.ReleasedAmount != r.released {
			h.fail(rep.reqID, "%s: GET /v1/reserve/%s (request %s): status %d, want %s with committed %d, released %d: %s",
				in.name, r.id, rep.reqID, rep.status, r.status, r.committed, r.released, rep.body)
		}
	}
}

// anyInst picks an instance at random.
func anyInst(h *rsvHammer, rng *rand.Rand) *instance { return h.c.insts[rng.IntN(len(h.c.insts))] }

// read samples the balance: holds never exceed it, and nothing is below 0.
// Under the wallet, it grants more.
func (h *rsvHammer) read(ctx context.Context, inst *instance, key func(string) string) {
	h.requests.Add(1)
	h.reads.Add(1)
	rep, err := h.c.api.do(ctx, http.MethodGet, inst.base+"/v1/customer-by-external-id/"+rsvCustomerExt+"/credits", "", nil)
	if err != nil {
		h.fail("", "%s: GET credits: %v", inst.name, err)
		return
	}
	var b balanceJSON
	if rep.status != http.StatusOK || json.Unmarshal(rep.body, &b) != nil {
		h.fail(rep.reqID, "%s: GET credits (request %s): status %d: %s", inst.name, rep.reqID, rep.status, rep.body)
		return
	}
	switch {
	case b.Balance < 0 || b.ReservedBalance < 0 || b.EffectiveBalance < 0:
		h.fail(rep.reqID, "%s: GET credits (request %s): below zero: %s", inst.name, rep.reqID, rep.body)
	case b.ReservedBalance > b.Balance:
		// No block expires here: every hold was placed within the
		// effective balance and every commit paid within it, so what is
		// held never exceeds what there is.
		h.fail(rep.reqID, "%s: GET credits (request %s): over-held: reserved_balance %d > balance %d: %s",
			inst.name, rep.reqID, b.ReservedBalance, b.Balance, rep.body)
	case b.EffectiveBalance != b.Balance-b.ReservedBalance:
		h.fail(rep.reqID, "%s: GET credits (request %s): effective_balance %d ≠ balance %d − reserved_balance %d: %s",
			inst.name, rep.reqID, b.EffectiveBalance, b.Balance, b.ReservedBalance, rep.body)
	case b.LifetimeEarned < b.Balance:
		h.fail(rep.reqID, "%s: GET credits (request %s): balance above lifetime_earned, a torn read: %s", inst.name, rep.reqID, rep.body)
	}
	if b.Balance >= rsvWallet {
		return
	}
	k := key("grant")
	g, ok := h.post(ctx, inst, "/v1/topup/grant", k, map[string]any{"customer_id": h.c.customer, "credits": rsvRefill, "source": "topup"})
	if !ok {
		return
	}
	var blk blockJSON
	if g.status != http.StatusCreated || json.Unmarshal(g.body, &blk) != nil || blk.OriginalAmount != rsvRefill {
		h.fail(g.reqID, "%s: grant %s of %d (request %s): status %d: %s", inst.name, k, rsvRefill, g.reqID, g.status, g.body)
		return
	}
	h.grants.Add(1)
	h.granted.Add(rsvRefill)
}

// ---------------------------------------------------------------------------
// expiry

func TestReservationExpiresWhileDownSQLite(t *testing.T) {
	c := sqliteCluster(t)
	runReservationExpiry(t, c)
}

func TestReservationExpiresWhileDownPostgres(t *testing.T) {
	c := postgresCluster(t, 1)
	runReservationExpiry(t, c)
}

// expiryRun is the expiry test's client.
type expiryRun struct {
	t *testing.T
	c *cluster
}

func (e expiryRun) reserve(in *instance, ref map[string]any, units, ttl int64, idem string) rsvJSON {
	e.t.Helper()
	body := map[string]any{"billable_metric_key": metricKey, "estimated_units": units, "ttl_seconds": ttl}
	for k, v := range ref {
		body[k] = v
	}
	var r rsvJSON
	e.c.api.must(e.t, http.MethodPost, in.base+"/v1/reserve", idem, body, http.StatusCreated, &r)
	if r.Amount != units || r.Status != "active" || r.ExpiresAt.Sub(r.CreatedAt) != time.Duration(ttl)*time.Second {
		e.t.Fatalf("reserve %d units for %d s: %+v", units, ttl, r)
	}
	return r
}

// balance reads GET /v1/customer-by-external-id/{ext}/credits and checks it.
func (e expiryRun) balance(in *instance, ext string, balance, reserved int64, when string) {
	e.t.Helper()
	var b balanceJSON
	e.c.api.must(e.t, http.MethodGet, in.base+"/v1/customer-by-external-id/"+ext+"/credits", "", nil, http.StatusOK, &b)
	if b.Balance != balance || b.ReservedBalance != reserved || b.EffectiveBalance != balance-reserved {
		e.t.Errorf("%s: %s: balance %d, reserved_balance %d, effective_balance %d; want %d, %d, %d",
			when, ext, b.Balance, b.ReservedBalance, b.EffectiveBalance, balance, reserved, balance-reserved)
	}
}

// reads checks GET /v1/reserve/{id}: its status, and once it has ended, what
// it committed and gave back.
func (e expiryRun) reads(in *instance, r rsvJSON, status string, when string) {
	e.t.Helper()
	var got rsvJSON
	e.c.api.must(e.t, http.MethodGet, in.base+"/v1/reserve/"+r.ID, "", nil, http.StatusOK, &got)
	ok := got.Status == status && got.Amount == r.Amount
	if status == "active" {
		ok = ok && got.CommittedAmount == nil && got.ReleasedAmount == nil
	} else {
		ok = ok && got.CommittedAmount != nil && *got.CommittedAmount == 0 && got.ReleasedAmount != nil && *got.ReleasedAmount == r.Amount
	}
	if !ok {
		e.t.Errorf("%s: GET /v1/reserve/%s: %+v; want %s (amount %d, nothing committed, all of it released once ended)", when, r.ID, got, status, r.Amount)
	}
}

// listed returns the customer's reservations stored in status (the filter
// reads the stored state), as they read now.
func (e expiryRun) listed(in *instance, ext, status string) map[string]rsvJSON {
	e.t.Helper()
	var page rsvListJSON
	e.c.api.must(e.t, http.MethodGet, in.base+"/v1/reservations?limit=500&external_customer_id="+url.QueryEscape(ext)+"&status="+status,
		"", nil, http.StatusOK, &page)
	out := map[string]rsvJSON{}
	for _, r := range page.Data {
		out[r.ID] = r
	}
	return out
}

// conflict settles r and expects 409 reservation-not-active naming status.
func (e expiryRun) conflict(in *instance, r rsvJSON, op, idem, status string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := e.c.api.do(ctx, http.MethodPost, in.base+"/v1/reserve/"+r.ID+"/"+op, idem, nil)
	if err != nil {
		e.t.Fatalf("POST /v1/reserve/%s/%s: %v", r.ID, op, err)
	}
	var p rsvProblemJSON
	if rep.status != http.StatusConflict || json.Unmarshal(rep.body, &p) != nil || p.Code != "reservation-not-active" || p.ReservationStatus != status {
		e.t.Errorf("POST /v1/reserve/%s/%s of a lapsed hold (request %s): status %d, want 409 reservation-not-active with reservation_status %q: %s",
			r.ID, op, rep.reqID, rep.status, status, rep.body)
	}
}

// stored checks reservations and accounts on the database, whose servers
// must have stopped, and the invariants.
func (e expiryRun) stored(when string, holds map[string]rsvJSON, status map[string]string, reserved map[string]int64) {
	e.t.Helper()
	t := e.t
	st := openStore(t, e.c.dbURL)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := st.Read(ctx, func(q store.Q) error {
		scopes, err := serverScopes(ctx, q)
		if err != nil {
			return err
		}
		sc := scopes[0]
		for name, r := range holds {
			s, err := q.ReservationGet(ctx, sc, r.ID)
			if err != nil {
				return fmt.Errorf("reservation %s (%s): %w", name, r.ID, err)
			}
			want := status[name]
			released := int64(0)
			if want == store.ReservationExpired {
				released = r.Amount
			}
			if s.Status != want || s.CommittedAmount != 0 || s.ReleasedAmount != released {
				t.Errorf("%s: stored reservation %s (%s): %s, committed %d, released %d; want %s, 0, %d",
					when, name, r.ID, s.Status, s.CommittedAmount, s.ReleasedAmount, want, released)
			}
		}
		for ext, want := range reserved {
			c, err := q.CustomerByExternalID(ctx, sc, ext)
			if err != nil {
				return fmt.Errorf("customer %s: %w", ext, err)
			}
			if c.Account.Reserved != want {
				t.Errorf("%s: customer %s: stored account reserved %d, want %d", when, ext, c.Account.Reserved, want)
			}
		}
		if n, err := checkInvariantsIn(ctx, q); err != nil {
			t.Errorf("%s: invariants on the database (ledger.CheckInvariants):\n%v", when, err)
		} else {
			t.Logf("%s: invariants hold on the database: %d customer(s) checked", when, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sleepPast sleeps until just after the latest of ts (server and test share
// the clock).
func sleepPast(ts ...time.Time) {
	var last time.Time
	for _, t := range ts {
		if t.After(last) {
			last = t
		}
	}
	time.Sleep(time.Until(last) + 200*time.Millisecond)
}

func runReservationExpiry(t *testing.T, c *cluster) {
	e := expiryRun{t: t, c: c}
	hc, key := c.api.hc, c.api.key
	const (
		extX = rsvCustomerExt // a lapsing hold beside a long one
		extY = "lapsed"       // only lapsing holds, and no write after them
	)
	in := c.insts[0]
	c.api.must(t, http.MethodPost, in.base+"/v1/topup/grant", "setup-x", map[string]any{"customer_id": c.customer, "credits": 10_000}, http.StatusCreated, nil)
	c.api.must(t, http.MethodPost, in.base+"/v1/topup/grant", "setup-y", map[string]any{"external_customer_id": extY, "credits": 5_000}, http.StatusCreated, nil)
	placed := time.Now()
	s1 := e.reserve(in, map[string]any{"customer_id": c.customer}, 1000, 2, "hold-s1")
	long := e.reserve(in, map[string]any{"customer_id": c.customer}, 2500, 600, "hold-long")
	s2 := e.reserve(in, map[string]any{"external_customer_id": extY}, 3000, 2, "hold-s2")
	if time.Since(placed) < 1500*time.Millisecond { // the holds have not lapsed yet: all count
		e.balance(in, extX, 10_000, 3500, "before the kill")
		e.balance(in, extY, 5_000, 3000, "before the kill")
	}
	// The TTLs pass while no creditd runs.
	in.kill(t)
	sleepPast(s1.ExpiresAt, s2.ExpiresAt)
	down := time.Now()
	in = startInstance(t, "creditd-2", c.dbURL, key, hc)
	t.Logf("restarted %s after the TTLs passed", time.Since(down).Round(time.Millisecond))

	// At once: the lapsed holds are out of reserved_balance and read as
	// expired, whether or not the sweeper got to them yet.
	e.balance(in, extY, 5_000, 0, "first request after the restart")
	e.balance(in, extX, 10_000, 2500, "after the restart")
	e.reads(in, s1, "expired", "after the restart")
	e.reads(in, s2, "expired", "after the restart")
	e.reads(in, long, "active", "after the restart")
	if r, ok := e.listed(in, extY, "")[s2.ID]; !ok || r.Status != "expired" {
		t.Errorf("after the restart: GET /v1/reservations?external_customer_id=%s lists %s as %+v (listed %v), want expired", extY, s2.ID, r, ok)
	}
	e.conflict(in, s1, "commit", "late-commit-s1", "expired")
	e.conflict(in, s1, "release", "late-release-s1", "expired")

	// Within a few sweep intervals (1 s here) the sweeper records them:
	// the status filter reads the stored state.
	sweepStart := time.Now()
	for {
		x, y := e.listed(in, extX, "expired"), e.listed(in, extY, "expired")
		if _, ok := x[s1.ID]; ok {
			if _, ok := y[s2.ID]; ok {
				break
			}
		}
		if time.Since(sweepStart) > 10*time.Second {
			t.Fatalf("the lapsed holds are not stored as expired 10 s after the restart (CREDITD_SWEEP_INTERVAL=1s)")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the sweeper recorded the lapsed holds within %s of the first check", time.Since(sweepStart).Round(time.Millisecond))
	e.balance(in, extY, 5_000, 0, "after the sweep")
	e.balance(in, extX, 10_000, 2500, "after the sweep")
	in.stop(t)
	holds := map[string]rsvJSON{"s1": s1, "s2": s2, "long": long}
	e.stored("after the sweep", holds,
		map[string]string{"s1": store.ReservationExpired, "s2": store.ReservationExpired, "long": store.ReservationActive},
		map[string]int64{extX: 2500, extY: 0})

	// A hold that lapses while creditd runs, with no sweep due for an hour
	// (the start's sweep found nothing due): it reads as expired at once,
	// and nothing is written, so the database still holds it active.
	in = startInstance(t, "creditd-3", c.dbURL, key, hc, "CREDITD_SWEEP_INTERVAL=1h")
	s3 := e.reserve(in, map[string]any{"external_customer_id": extY}, 1000, 1, "hold-s3")
	sleepPast(s3.ExpiresAt)
	e.balance(in, extY, 5_000, 0, "a hold lapsed, no sweep")
	e.reads(in, s3, "expired", "a hold lapsed, no sweep")
	if r, ok := e.listed(in, extY, "active")[s3.ID]; !ok || r.Status != "expired" {
		t.Errorf("a hold lapsed, no sweep: GET /v1/reservations?status=active lists %s as %+v (listed %v): want it listed (stored active) and read as expired",
			s3.ID, r, ok)
	}
	in.stop(t)
	if strings.Contains(in.stderr.String(), "recorded expiries") {
		t.Logf("creditd-3 logged a sweep that recorded expiries: the database check below may see s3 recorded")
	}
	holds["s3"] = s3
	e.stored("a hold lapsed, no sweep", holds,
		map[string]string{"s1": store.ReservationExpired, "s2": store.ReservationExpired, "long": store.ReservationActive, "s3": store.ReservationActive},
		map[string]int64{extX: 2500, extY: 1000})
}

package concurrency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/pgtest"
	"github.com/creditd/creditd/internal/store"
)

// The crash test: a real "creditd serve" under grouped load is killed with
// SIGKILL at a random moment, and restarted on the same database.
//
// 32 clients send debits (POST /v1/usage), grants (POST /v1/topup/grant) and
// usage batches (POST /v1/usage/batch) for 50 customers, every request and
// every batched event under a key of its own, and record every answer.
// After a random 0.5–2 s the server is killed. Then, on the database
// itself (no server running):
//
//	(a) every debit, grant or batched event answered as accepted is in the
//	    ledger, as exactly the effect that was answered (its event or block);
//	(b) every one answered as refused (402, or a rejected batch event) has
//	    no entry; one without an answer (in flight, or sent to the dead
//	    server) may have taken effect or not, but wholly: its entries are
//	    one complete effect, or none;
//	(d) ledger.CheckInvariants holds in one snapshot.
//
// (c) The server is restarted and every unanswered request is sent again
// with its key and body: one that took effect before the crash must be
// answered by its replay (with the same event or block), one that did not
// must run now. A sample of the answered ones is sent again too and must replay.
// Then every key has one known fate, and after a graceful stop the
// database must hold exactly those effects — each accepted key's once, the
// refused ones' never — with every balance equal to the grants minus the
// accepted debits, and the invariants (d) again.
//
// Three rounds per backend, on one database whose state carries over. On
// PostgreSQL the server is crash-tested with its durability settings on
// (see startDurablePostgres), and in the second round the database server is
// crashed too, right after creditd: what was acknowledged must survive its
// recovery.

const (
	crashClients    = 32
	crashCustomers  = 50
	crashRounds     = 3
	crashSetupGrant = 2000 // mc per customer at the start of every round
	crashMaxGrant   = 1000
	crashMaxDebit   = 400
	crashMaxBatch   = 6 // events
	crashResends    = 64
	crashMinKill    = 500 * time.Millisecond
	crashMaxKill    = 2 * time.Second
)

func TestCrashSQLite(t *testing.T) {
	skipShort(t)
	runCrash(t, filepath.Join(t.TempDir(), "creditd.db"), nil)
}

func TestCrashPostgres(t *testing.T) {
	skipShort(t)
	pg := startDurablePostgres(t)
	runCrash(t, pg.URL(), pg)
}

// fate is what the test knows of one effect key.
type fate int

const (
	fateUnknown  fate = iota // sent, no answer
	fateAccepted             // answered 2xx / "accepted"
	fateRefused              // answered 402 / "rejected" (insufficient credits)
)

func (f fate) String() string {
	switch f {
	case fateAccepted:
		return "accepted"
	case fateRefused:
		return "refused"
	}
	return "unknown"
}

// effect is one key that may change a balance: a grant, a debit or one
// event of a batch.
type effect struct {
	key    string
	kind   opKind // opGrant or opDebit
	cust   int
	amount int64
	round  int

	fate fate
	id   string // the block (grant) or usage event (debit) of an accepted key

	// Right after the crash, for a key without an answer:
	atCrash  bool   // it had entries in the ledger
	crashRef string // their block or event
}

func (e *effect) String() string {
	return fmt.Sprintf("%s %s (%d mc, %s)", e.kind, e.key, e.amount, custExt(e.cust))
}

// crashReq is one HTTP request: a grant or debit (one effect) or a batch
// (one effect per event).
type crashReq struct {
	key     string
	path    string
	body    []byte
	batch   bool
	effects []*effect
}

type crashRun struct {
	t     *testing.T
	dbURL string
	pg    *pgtest.Server
	key   string
	api   *api
	in    *instance
	round int
	rng   *rand.Rand

	mu      sync.Mutex
	effects map[string]*effect
	nInst   int

	failMu   sync.Mutex
	failures int
}

func (cr *crashRun) fail(format string, args ...any) {
	cr.failMu.Lock()
	defer cr.failMu.Unlock()
	cr.failures++
	if cr.failures <= 100 {
		cr.t.Errorf(format, args...)
	} else if cr.failures == 101 {
		cr.t.Error("… more failures left out")
	}
}

func custExt(i int) string { return fmt.Sprintf("crash-cust-%02d", i) }

func runCrash(t *testing.T, dbURL string, pg *pgtest.Server) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("crash test: %d rounds, %d clients, %d customers, seed %d", crashRounds, crashClients, crashCustomers, seed)
	hc := newHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	key := testKey(t)
	cr := &crashRun{t: t, dbURL: dbURL, pg: pg, key: key, api: &api{hc: hc, key: key},
		rng: rand.New(rand.NewPCG(seed, 0)), effects: map[string]*effect{}}

	cr.start()
	base := cr.in.base
	cr.api.must(t, http.MethodPost, base+"/v1/billable-metrics", "crash-setup-metric",
		map[string]any{"key": metricKey, "name": "crash units"}, http.StatusCreated, nil)
	cr.api.must(t, http.MethodPost, base+"/v1/metering-rules", "crash-setup-rule",
		map[string]any{"billable_metric_key": metricKey, "cost_type": "per_unit", "unit_cost": 1}, http.StatusCreated, nil)

	for r := 1; r <= crashRounds && !t.Failed(); r++ {
		cr.round = r
		if r > 1 {
			cr.start()
		}
		cr.setupGrants()
		unanswered, answered := cr.load(seed)
		cr.checkDatabase(false)
		cr.start()
		cr.retry(unanswered, answered)
		cr.checkBalances()
		// Connections the client dialed but never used would hold up the
		// graceful stop for 5 s (net/http waits that long for a first request).
		cr.api.hc.CloseIdleConnections()
		cr.in.stop(t)
		cr.checkDatabase(true)
	}
}

// start starts a server on the database.
func (cr *crashRun) start() {
	cr.nInst++
	cr.in = startInstance(cr.t, fmt.Sprintf("creditd-r%d-%d", cr.round, cr.nInst), cr.dbURL, cr.key, cr.api.hc)
}

// setupGrants gives every customer crashSetupGrant mc (creating it in the
// first round).
func (cr *crashRun) setupGrants() {
	var wg sync.WaitGroup
	for i := range crashCustomers {
		req := cr.newGrant(fmt.Sprintf("crash-setup-r%d-%02d", cr.round, i), i, crashSetupGrant)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := cr.api.do(ctx, http.MethodPost, cr.in.base+req.path, req.key, req.body)
			if err != nil {
				cr.fail("round %d: setup grant %s: %v", cr.round, req.key, err)
				return
			}
			if rep.status != http.StatusCreated {
				cr.fail("round %d: setup grant %s: status %d: %s", cr.round, req.key, rep.status, rep.body)
				return
			}
			cr.record(req, rep, phaseLoad)
		}()
	}
	wg.Wait()
	if cr.t.Failed() {
		cr.t.FailNow()
	}
}

func (cr *crashRun) newEffect(key string, kind opKind, cust int, amount int64) *effect {
	e := &effect{key: key, kind: kind, cust: cust, amount: amount, round: cr.round}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.effects[key] != nil {
		panic("crash test: key used twice: " + key)
	}
	cr.effects[key] = e
	return e
}

func (cr *crashRun) newGrant(key string, cust int, amount int64) *crashReq {
	e := cr.newEffect(key, opGrant, cust, amount)
	body, _ := json.Marshal(map[string]any{"external_customer_id": custExt(cust), "credits": amount, "source": "topup",
		"metadata": map[string]any{"key": key}})
	return &crashReq{key: key, path: "/v1/topup/grant", body: body, effects: []*effect{e}}
}

func (cr *crashRun) newDebit(key string, cust int, amount int64) *crashReq {
	e := cr.newEffect(key, opDebit, cust, amount)
	body, _ := json.Marshal(map[string]any{"external_customer_id": custExt(cust), "billable_metric_key": metricKey,
		"units": amount, "metadata": map[string]any{"key": key}})
	return &crashReq{key: key, path: "/v1/usage", body: body, effects: []*effect{e}}
}

func (cr *crashRun) newBatch(key string, rng *rand.Rand) *crashReq {
	req := &crashReq{key: key, path: "/v1/usage/batch", batch: true}
	var events []map[string]any
	for j := range 2 + rng.IntN(crashMaxBatch-1) {
		ek := fmt.Sprintf("%s-e%d", key, j)
		e := cr.newEffect(ek, opDebit, rng.IntN(crashCustomers), 1+rng.Int64N(crashMaxDebit))
		req.effects = append(req.effects, e)
		events = append(events, map[string]any{"external_customer_id": custExt(e.cust), "billable_metric_key": metricKey,
			"units": e.amount, "idempotency_key": ek})
	}
	req.body, _ = json.Marshal(map[string]any{"events": events})
	return req
}

// load runs the clients until the server is killed, and returns the
// requests that got no answer and those that got one.
func (cr *crashRun) load(seed uint64) (unanswered, answered []*crashReq) {
	t := cr.t
	in := cr.in
	var stop atomic.Bool
	var sent, ok2xx, refused atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	for c := range crashClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(cr.round*1000+c+1)))
			for seq := 1; !stop.Load(); seq++ {
				key := fmt.Sprintf("crash-r%d-c%d-%d", cr.round, c, seq)
				var req *crashReq
				switch p := rng.IntN(100); {
				case p < 15:
					req = cr.newGrant(key, rng.IntN(crashCustomers), 1+rng.Int64N(crashMaxGrant))
				case p < 30:
					req = cr.newBatch(key, rng)
				default:
					req = cr.newDebit(key, rng.IntN(crashCustomers), 1+rng.Int64N(crashMaxDebit))
				}
				sent.Add(1)
				rep, err := cr.api.do(ctx, http.MethodPost, in.base+req.path, req.key, req.body)
				if err != nil {
					// The server is gone (or going): this request may or may
					// not have taken effect. This client stops.
					mu.Lock()
					unanswered = append(unanswered, req)
					mu.Unlock()
					return
				}
				if cr.record(req, rep, phaseLoad) {
					if rep.status/100 == 2 {
						ok2xx.Add(1)
					} else {
						refused.Add(1)
					}
					mu.Lock()
					answered = append(answered, req)
					mu.Unlock()
				} else {
					mu.Lock()
					unanswered = append(unanswered, req) // an unexpected answer: its fate is open
					mu.Unlock()
				}
			}
		}()
	}
	wait := crashMinKill + time.Duration(cr.rng.Int64N(int64(crashMaxKill-crashMinKill)))
	time.Sleep(wait)
	atKill := sent.Load()
	in.kill(t)
	killedAt := time.Since(t0)
	if cr.pg != nil {
		waitIdle(t, cr.pg)
		if cr.round == 2 {
			// The database server crashes too, right after creditd.
			cr.pg.Crash(t)
			cr.pg.Start(t)
			t.Logf("round %d: PostgreSQL crashed (immediate stop) and recovered", cr.round)
		}
	}
	stop.Store(true)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("round %d: the clients did not stop", cr.round)
	}
	sort.Slice(unanswered, func(i, j int) bool { return unanswered[i].key < unanswered[j].key })
	var fates [3]int
	for _, e := range cr.effects {
		if e.round == cr.round && !strings.HasPrefix(e.key, "crash-setup-") {
			fates[e.fate]++
		}
	}
	t.Logf("round %d: killed %s after %s with %d requests sent (%.0f/s): %d answered 2xx, %d 402, %d without an answer; "+
		"effects (batch events included): %d accepted, %d refused, %d unknown",
		cr.round, in.name, killedAt.Round(time.Millisecond), atKill, float64(atKill)/killedAt.Seconds(), ok2xx.Load(), refused.Load(), len(unanswered),
		fates[fateAccepted], fates[fateRefused], fates[fateUnknown])
	if ok2xx.Load() == 0 {
		cr.fail("round %d: no request was accepted before the kill: the load did not run", cr.round)
	}
	return unanswered, answered
}

type phase int

const (
	phaseLoad   phase = iota // the first answer to a key
	phaseRetry               // a key without an answer, sent again after the restart
	phaseResend              // an answered key, sent again after the restart
)

// record reads an answer to req and settles its effects. It returns false
// for an answer that settles nothing (unexpected status or body), after
// failing the test.
func (cr *crashRun) record(req *crashReq, rep reply, ph phase) bool {
	what := fmt.Sprintf("round %d: POST %s %s (request %s)", cr.round, req.path, req.key, rep.reqID)
	if req.batch {
		if rep.status != http.StatusOK {
			cr.fail("%s: status %d: %s", what, rep.status, rep.body)
			return false
		}
		var b struct {
			Results []struct {
				Index         int          `json:"index"`
				Status        string       `json:"status"`
				EventID       *string      `json:"event_id"`
				EstimatedCost *int64       `json:"estimated_cost"`
				Duplicate     bool         `json:"duplicate"`
				Error         *problemJSON `json:"error"`
			} `json:"results"`
		}
		if err := json.Unmarshal(rep.body, &b); err != nil || len(b.Results) != len(req.effects) {
			cr.fail("%s: bad batch answer for %d events (%v): %s", what, len(req.effects), err, rep.body)
			return false
		}
		for i, res := range b.Results {
			e := req.effects[i]
			switch {
			case res.Index != i:
				cr.fail("%s: result %d has index %d: %s", what, i, res.Index, rep.body)
			case res.Status == "accepted" && res.EventID != nil && res.EstimatedCost != nil && *res.EstimatedCost == e.amount:
				cr.settle(e, what, fateAccepted, *res.EventID, res.Duplicate, ph)
			case res.Status == "rejected" && res.Error != nil && res.Error.Code == "insufficient-credits":
				cr.settle(e, what, fateRefused, "", res.Duplicate, ph)
			default:
				cr.fail("%s: event %d (%s): unexpected result: %s", what, i, e, rep.body)
			}
		}
		if ph == phaseResend && !rep.replayed {
			cr.fail("%s: an answered batch sent again was not replayed (X-Idempotent-Replayed): %s", what, rep.body)
		}
		return true
	}
	e := req.effects[0]
	switch {
	case e.kind == opGrant && rep.status == http.StatusCreated:
		var b blockJSON
		if err := json.Unmarshal(rep.body, &b); err != nil || b.ID == "" || b.OriginalAmount != e.amount {
			cr.fail("%s: bad grant answer for %s (%v): %s", what, e, err, rep.body)
			return false
		}
		cr.settle(e, what, fateAccepted, b.ID, rep.replayed, ph)
	case e.kind == opDebit && rep.status == http.StatusOK:
		var u usageJSON
		if err := json.Unmarshal(rep.body, &u); err != nil || u.EventID == "" || u.EstimatedCost != e.amount || u.IdempotencyKey != e.key {
			cr.fail("%s: bad usage answer for %s (%v): %s", what, e, err, rep.body)
			return false
		}
		if u.Duplicate != rep.replayed {
			cr.fail("%s: duplicate=%v but X-Idempotent-Replayed=%v: %s", what, u.Duplicate, rep.replayed, rep.body)
		}
		cr.settle(e, what, fateAccepted, u.EventID, rep.replayed, ph)
	case e.kind == opDebit && rep.status == http.StatusPaymentRequired:
		var p problemJSON
		if err := json.Unmarshal(rep.body, &p); err != nil || p.Code != "insufficient-credits" {
			cr.fail("%s: bad 402 for %s (%v): %s", what, e, err, rep.body)
			return false
		}
		if rep.replayed {
			cr.fail("%s: a 402 was replayed (only 2xx are stored): %s", what, rep.body)
		}
		cr.settle(e, what, fateRefused, "", false, ph)
	default:
		cr.fail("%s: %s: unexpected status %d: %s", what, e, rep.status, rep.body)
		return false
	}
	return true
}

// settle records one effect's answer and holds it to what is known.
func (cr *crashRun) settle(e *effect, what string, f fate, id string, replayed bool, ph phase) {
	switch ph {
	case phaseLoad:
		if e.fate != fateUnknown {
			cr.fail("%s: %s answered twice", what, e)
		}
	case phaseRetry:
		switch {
		case e.fate != fateUnknown:
			cr.fail("%s: %s had an answer already (%s)", what, e, e.fate)
		case e.atCrash && (f != fateAccepted || id != e.crashRef || !replayed):
			cr.fail("%s: %s took effect before the crash (%s in the ledger), but its retry got %s %s (replayed=%v), want the replay of %s",
				what, e, e.crashRef, f, id, replayed, e.crashRef)
		case !e.atCrash && f == fateAccepted && replayed:
			cr.fail("%s: %s had no ledger entry after the crash, but its retry was answered by a replay of %s: a stored answer without its effect",
				what, e, id)
		}
	case phaseResend:
		if e.fate != f || e.id != id || (f == fateAccepted && !replayed) {
			cr.fail("%s: %s was answered %s %s before the crash; sent again after it: %s %s (replayed=%v)",
				what, e, e.fate, e.id, f, id, replayed)
		}
		return
	}
	e.fate, e.id = f, id
}

// retry sends every unanswered request again, all at once, on the restarted
// server, and a sample of the answered ones.
func (cr *crashRun) retry(unanswered, answered []*crashReq) {
	var resend []*crashReq
	for _, i := range cr.rng.Perm(len(answered)) {
		req := answered[i]
		ok := false // only requests whose answer was stored: an accepted effect
		for _, e := range req.effects {
			ok = ok || e.fate == fateAccepted
		}
		if ok {
			resend = append(resend, req)
		}
		if len(resend) == crashResends {
			break
		}
	}
	var wg sync.WaitGroup
	send := func(req *crashReq, ph phase) {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rep, err := cr.api.do(ctx, http.MethodPost, cr.in.base+req.path, req.key, req.body)
		if err != nil {
			cr.fail("round %d: retry of %s after the restart: %v", cr.round, req.key, err)
			return
		}
		cr.record(req, rep, ph)
	}
	for _, req := range unanswered {
		wg.Add(1)
		go send(req, phaseRetry)
	}
	for _, req := range resend {
		wg.Add(1)
		go send(req, phaseResend)
	}
	wg.Wait()
	var atCrash, effects int
	for _, req := range unanswered {
		for _, e := range req.effects {
			effects++
			if e.atCrash {
				atCrash++
			}
		}
	}
	cr.t.Logf("round %d: retried %d unanswered requests (%d effects, %d of them in the ledger after the crash), resent %d answered ones",
		cr.round, len(unanswered), effects, atCrash, len(resend))
}

// expected returns each customer's balance and lifetime_earned from the
// known fates.
func (cr *crashRun) expected() (balance, earned [crashCustomers]int64) {
	for _, e := range cr.effects {
		if e.fate != fateAccepted {
			continue
		}
		if e.kind == opGrant {
			balance[e.cust] += e.amount
			earned[e.cust] += e.amount
		} else {
			balance[e.cust] -= e.amount
		}
	}
	return balance, earned
}

// checkBalances asks the restarted server for every balance.
func (cr *crashRun) checkBalances() {
	balance, earned := cr.expected()
	for i := range crashCustomers {
		var b balanceJSON
		cr.api.must(cr.t, http.MethodGet, cr.in.base+"/v1/customer-by-external-id/"+custExt(i)+"/credits", "", nil, http.StatusOK, &b)
		if b.Balance != balance[i] || b.LifetimeEarned != earned[i] || b.ReservedBalance != 0 || b.EffectiveBalance != b.Balance {
			cr.fail("round %d: %s: the server answers %+v; the answers say balance %d, lifetime_earned %d",
				cr.round, custExt(i), b, balance[i], earned[i])
		}
	}
}

// checkDatabase reads the database directly, with no server running: right
// after the crash (final false), or after the retries and a graceful stop
// (final true).
func (cr *crashRun) checkDatabase(final bool) {
	t := cr.t
	when := fmt.Sprintf("round %d, after the crash", cr.round)
	if final {
		when = fmt.Sprintf("round %d, after the retries", cr.round)
	}
	st := openStore(t, cr.dbURL)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	byKey := map[string][]store.LedgerEntry{}
	var accounts [crashCustomers]*credit.Account
	var ids [crashCustomers]string
	var invErr error
	var nEntries int
	err := st.Read(ctx, func(q store.Q) error {
		byKey = map[string][]store.LedgerEntry{}
		_, invErr = checkInvariantsIn(ctx, q)
		scopes, err := serverScopes(ctx, q)
		if err != nil {
			return err
		}
		scope := scopes[0] // the test key's
		for i := range crashCustomers {
			c, err := q.CustomerByExternalID(ctx, scope, custExt(i))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			a := c.Account
			accounts[i], ids[i] = &a, c.ID
			p := store.Page{Limit: 500}
			for {
				es, err := q.LedgerList(ctx, scope, c.ID, "", p)
				if err != nil {
					return err
				}
				for _, e := range es {
					byKey[e.IdempotencyKey] = append(byKey[e.IdempotencyKey], e)
				}
				nEntries += len(es)
				if len(es) < p.Limit {
					break
				}
				p.After = fmt.Sprint(es[len(es)-1].Seq)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: read the database: %v", when, err)
	}
	if invErr != nil {
		cr.fail("%s: invariants (ledger.CheckInvariants):\n%v", when, invErr)
	} else {
		t.Logf("%s: invariants hold; %d ledger entries under %d keys", when, nEntries, len(byKey))
	}

	// Every entry belongs to a key the test sent, and is one whole effect.
	for key, es := range byKey {
		e := cr.effects[key]
		if e == nil {
			cr.fail("%s: %d ledger entries under key %q, which the test never sent: %s", when, len(es), key, describeEntries(es))
			continue
		}
		ref, problem := wholeEffect(e, ids[e.cust], es)
		if problem != "" {
			cr.fail("%s: %s: %s: %s", when, e, problem, describeEntries(es))
			continue
		}
		switch e.fate {
		case fateAccepted:
			if ref != e.id {
				cr.fail("%s: %s was answered with %s, but the ledger has %s", when, e, e.id, ref)
			}
		case fateRefused:
			cr.fail("%s: %s was refused (402), but the ledger has it: %s", when, e, describeEntries(es))
		case fateUnknown:
			if final {
				cr.fail("%s: %s is in the ledger but still has no answer", when, e)
			} else {
				e.atCrash, e.crashRef = true, ref
			}
		}
	}
	// Every accepted key is there; after the retries every key has a fate.
	lost := 0
	for _, e := range cr.effects {
		if len(byKey[e.key]) > 0 {
			continue
		}
		switch {
		case e.fate == fateAccepted:
			lost++
			if lost <= 20 {
				cr.fail("%s: %s was answered as accepted (%s), but has no ledger entry", when, e, e.id)
			}
		case e.fate == fateUnknown && final:
			cr.fail("%s: %s still has no answer after its retry", when, e)
		}
	}
	if lost > 20 {
		cr.fail("%s: %d accepted keys in all have no ledger entry", when, lost)
	}
	if !final {
		return
	}
	balance, earned := cr.expected()
	for i := range crashCustomers {
		a := accounts[i]
		if a == nil {
			cr.fail("%s: customer %s is missing", when, custExt(i))
			continue
		}
		if a.Balance != balance[i] || a.LifetimeEarned != earned[i] || a.Reserved != 0 {
			cr.fail("%s: %s: account %+v; the answers say balance %d, lifetime_earned %d", when, custExt(i), *a, balance[i], earned[i])
		}
	}
}

// wholeEffect checks that es, the entries under e's key, are one complete
// effect of e, and returns its block (grant) or event (debit).
func wholeEffect(e *effect, customerID string, es []store.LedgerEntry) (ref, problem string) {
	ref = es[0].ReferenceID
	var sum int64
	blocks := map[string]bool{}
	for _, x := range es {
		switch {
		case x.CustomerID != customerID:
			return "", "an entry of another customer"
		case x.ReferenceID != ref:
			return "", "entries of two effects (one key took effect twice)"
		case blocks[x.BlockID]:
			return "", "two entries for one block"
		}
		blocks[x.BlockID] = true
		sum += x.Delta
		if e.kind == opGrant && (x.Type != credit.EntryGrant || x.ReferenceType != "grant" || x.BlockID != ref) {
			return "", "not one grant entry for its block"
		}
		if e.kind == opDebit && (x.Type != credit.EntryUsage || x.ReferenceType != "usage_event" || x.Delta >= 0) {
			return "", "not usage entries of one event"
		}
	}
	if e.kind == opGrant && (len(es) != 1 || sum != e.amount) {
		return "", fmt.Sprintf("want one grant entry of %d", e.amount)
	}
	if e.kind == opDebit && sum != -e.amount {
		return "", fmt.Sprintf("usage entries sum to %d, want %d (a partial effect)", sum, -e.amount)
	}
	return ref, ""
}

func describeEntries(es []store.LedgerEntry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%s %s %+d block %s ref %s/%s", e.ID, e.Type, e.Delta, e.BlockID, e.ReferenceType, e.ReferenceID))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

package concurrency

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The hammer: 64 clients on one customer for CREDITD_HAMMER_SECONDS (10 s
// by default), sending debits (POST /v1/usage), grants (POST
// /v1/topup/grant), balance reads, retries of their own earlier keys (same
// body), and new keys sent by two clients at once. Debits ask on average
// twice what grants bring, so the balance hovers near zero and both 200s and
// 402s happen. Afterwards every key's answers, the balance and the whole
// ledger are checked against what the clients recorded.

const (
	hammerClients   = 64
	hammerMaxOps    = 50_000 // per client: the loop is bounded in count as well as in time
	defaultHammerS  = 10.0
	maxGrant        = 1000 // mc
	maxDebit        = 2000 // mc (units at unit_cost 1)
	recentRetryKeys = 32   // a retry picks one of the client's last keys
)

func TestHammerPostgresTwoInstances(t *testing.T) {
	c := postgresCluster(t, 2)
	runHammer(t, c)
}

func TestHammerSQLite(t *testing.T) {
	c := sqliteCluster(t)
	runHammer(t, c)
}

func hammerDuration(t *testing.T) time.Duration {
	s := os.Getenv("CREDITD_HAMMER_SECONDS")
	if s == "" {
		return time.Duration(defaultHammerS * float64(time.Second))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 3600 {
		t.Fatalf("CREDITD_HAMMER_SECONDS=%q: want a number of seconds in (0, 3600]", s)
	}
	return time.Duration(v * float64(time.Second))
}

type opKind int

const (
	opGrant opKind = iota
	opDebit
	opRead
)

func (k opKind) String() string {
	switch k {
	case opGrant:
		return "grant"
	case opDebit:
		return "debit"
	}
	return "read"
}

// keyRecord is everything sent and received under one idempotency key.
type keyRecord struct {
	key    string
	kind   opKind
	amount int64
	path   string
	body   []byte

	mu  sync.Mutex
	obs []observation
}

// observation is one answer to a request with the key.
type observation struct {
	status     int
	id         string // event_id (debit) or block id (grant) of a 2xx
	replayed   bool
	start, end time.Duration // since the hammer started
	inst       string
	reqID      string
}

func (r *keyRecord) add(o observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
}

// dupJob is a new key that a second client sends at the same time as its
// creator.
type dupJob struct {
	rec    *keyRecord
	picked chan struct{}
}

type hammer struct {
	t        *testing.T
	c        *cluster
	t0       time.Time
	deadline time.Time
	dup      chan *dupJob

	mu   sync.Mutex
	keys map[string]*keyRecord

	failMu   sync.Mutex
	failures []string
	failIDs  map[string]bool // request ids of answers that failed a check

	requests, s5xx, s2xx, s402, replays, reads, retries, dupSends atomic.Int64
}

func (h *hammer) fail(reqID, format string, args ...any) {
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

func (h *hammer) newRecord(kind opKind, key string, rng *rand.Rand) *keyRecord {
	r := &keyRecord{key: key, kind: kind}
	switch kind {
	case opGrant:
		r.amount = 1 + rng.Int64N(maxGrant)
		r.path = "/v1/topup/grant"
		r.body, _ = json.Marshal(map[string]any{"customer_id": h.c.customer, "credits": r.amount, "source": "topup",
			"metadata": map[string]any{"key": key}})
	case opDebit:
		r.amount = 1 + rng.Int64N(maxDebit)
		r.path = "/v1/usage"
		r.body, _ = json.Marshal(map[string]any{"customer_id": h.c.customer, "billable_metric_key": metricKey,
			"units": r.amount, "metadata": map[string]any{"key": key}})
	}
	h.mu.Lock()
	h.keys[key] = r
	h.mu.Unlock()
	return r
}

func runHammer(t *testing.T, c *cluster) {
	d := hammerDuration(t)
	h := &hammer{t: t, c: c, keys: map[string]*keyRecord{}, failIDs: map[string]bool{}, dup: make(chan *dupJob, hammerClients)}
	seed := uint64(time.Now().UnixNano())
	t.Logf("hammer: %d clients, %s, %d instance(s), seed %d", hammerClients, d, len(c.insts), seed)

	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	h.t0 = time.Now()
	h.deadline = h.t0.Add(d)
	var wg sync.WaitGroup
	for i := range hammerClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.client(ctx, i, rand.New(rand.NewPCG(seed, uint64(i))))
		}()
	}
	wg.Wait()
	elapsed := time.Since(h.t0)
	t.Logf("hammer: %d requests in %s (%.0f/s): %d 2xx (%d replayed), %d 402, %d 5xx; %d reads, %d retries, %d concurrent duplicate sends",
		h.requests.Load(), elapsed.Round(time.Millisecond), float64(h.requests.Load())/elapsed.Seconds(),
		h.s2xx.Load(), h.replays.Load(), h.s402.Load(), h.s5xx.Load(), h.reads.Load(), h.retries.Load(), h.dupSends.Load())

	h.verify()

	// The database itself, with every server stopped.
	c.stopAll(t)
	checkInvariants(t, c.dbURL)

	if len(h.failures) > 0 {
		for _, f := range h.failures {
			t.Error(f)
		}
		c.dumpAll(t, h.failIDs)
	}
}

// client is one of the 64 workers. It alternates across the instances.
func (h *hammer) client(ctx context.Context, id int, rng *rand.Rand) {
	var own []*keyRecord
	seq := 0
	newKey := func(kind opKind) *keyRecord {
		seq++
		r := h.newRecord(kind, fmt.Sprintf("%s-c%d-%d", kind, id, seq), rng)
		own = append(own, r)
		return r
	}
	randomKind := func() opKind {
		if rng.IntN(2) == 0 {
			return opGrant
		}
		return opDebit
	}
	for i := 0; i < hammerMaxOps && time.Now().Before(h.deadline) && ctx.Err() == nil; i++ {
		inst := h.c.insts[(id+i)%len(h.c.insts)]
		select {
		case j := <-h.dup: // another client's new key: send it too, now
			close(j.picked)
			h.dupSends.Add(1)
			h.send(ctx, j.rec, inst)
			continue
		default:
		}
		switch p := rng.IntN(100); {
		case p < 12 && len(own) > 0:
			r := own[max(0, len(own)-recentRetryKeys)+rng.IntN(min(len(own), recentRetryKeys))]
			h.retries.Add(1)
			h.send(ctx, r, inst)
		case p < 20:
			j := &dupJob{rec: newKey(randomKind()), picked: make(chan struct{})}
			select {
			case h.dup <- j:
				select { // give the other client a moment to pick it up
				case <-j.picked:
				case <-time.After(20 * time.Millisecond):
				}
			default:
			}
			h.send(ctx, j.rec, inst)
		case p < 28:
			h.read(ctx, inst)
		case p < 64:
			h.send(ctx, newKey(opDebit), inst)
		default:
			h.send(ctx, newKey(opGrant), inst)
		}
	}
}

func (h *hammer) read(ctx context.Context, inst *instance) {
	h.requests.Add(1)
	h.reads.Add(1)
	rep, err := h.c.api.do(ctx, http.MethodGet, inst.base+"/v1/customers/"+h.c.customer+"/credits", "", nil)
	if err != nil {
		h.fail("", "%s: GET credits: %v", inst.name, err)
		return
	}
	if rep.status >= 500 {
		h.s5xx.Add(1)
	}
	if rep.status != http.StatusOK {
		h.fail(rep.reqID, "%s: GET credits: status %d (request %s): %s", inst.name, rep.status, rep.reqID, rep.body)
		return
	}
	var b balanceJSON
	if err := json.Unmarshal(rep.body, &b); err != nil {
		h.fail(rep.reqID, "%s: GET credits: %v: %s", inst.name, err, rep.body)
		return
	}
	switch {
	case b.Balance < 0 || b.ReservedBalance != 0 || b.EffectiveBalance != b.Balance:
		h.fail(rep.reqID, "%s: GET credits (request %s): impossible balance (no holds, no expiries here): %s", inst.name, rep.reqID, rep.body)
	case b.LifetimeEarned < b.Balance:
		// No state of the account has more credits than were ever granted:
		// the answer mixes two commits (balance from a newer one).
		h.fail(rep.reqID, "%s: GET credits (request %s): balance %d above lifetime_earned %d, a torn read: %s",
			inst.name, rep.reqID, b.Balance, b.LifetimeEarned, rep.body)
	}
}

func (h *hammer) send(ctx context.Context, r *keyRecord, inst *instance) {
	h.requests.Add(1)
	start := time.Since(h.t0)
	rep, err := h.c.api.do(ctx, http.MethodPost, inst.base+r.path, r.key, r.body)
	end := time.Since(h.t0)
	if err != nil {
		h.fail("", "%s: %s %s: %v", inst.name, r.kind, r.key, err)
		return
	}
	o := observation{status: rep.status, replayed: rep.replayed, start: start, end: end, inst: inst.name, reqID: rep.reqID}
	what := fmt.Sprintf("%s: %s %s (%d mc), request %s", inst.name, r.kind, r.key, r.amount, rep.reqID)
	switch {
	case rep.status >= 500:
		h.s5xx.Add(1)
		h.fail(rep.reqID, "%s: status %d: %s", what, rep.status, rep.body)
	case rep.status == http.StatusCreated && r.kind == opGrant:
		h.s2xx.Add(1)
		var b blockJSON
		if err := json.Unmarshal(rep.body, &b); err != nil || b.ID == "" {
			h.fail(rep.reqID, "%s: bad grant answer (%v): %s", what, err, rep.body)
			break
		}
		if b.OriginalAmount != r.amount || b.CustomerID != h.c.customer {
			h.fail(rep.reqID, "%s: answer is not this grant: %s", what, rep.body)
		}
		o.id = b.ID
	case rep.status == http.StatusOK && r.kind == opDebit:
		h.s2xx.Add(1)
		var u usageJSON
		if err := json.Unmarshal(rep.body, &u); err != nil || u.EventID == "" {
			h.fail(rep.reqID, "%s: bad usage answer (%v): %s", what, err, rep.body)
			break
		}
		if u.EstimatedCost != r.amount || u.IdempotencyKey != r.key || u.Status != "accepted" {
			h.fail(rep.reqID, "%s: answer is not this event: %s", what, rep.body)
		}
		if u.Duplicate != rep.replayed {
			h.fail(rep.reqID, "%s: duplicate=%v but X-Idempotent-Replayed=%v: %s", what, u.Duplicate, rep.replayed, rep.body)
		}
		o.id = u.EventID
	case rep.status == http.StatusPaymentRequired && r.kind == opDebit:
		h.s402.Add(1)
		var p problemJSON
		if err := json.Unmarshal(rep.body, &p); err != nil || p.Code != "insufficient-credits" {
			h.fail(rep.reqID, "%s: bad 402 (%v): %s", what, err, rep.body)
		} else if p.Required == nil || *p.Required != r.amount || p.Available == nil || *p.Available >= r.amount || *p.Available < 0 {
			h.fail(rep.reqID, "%s: 402 with impossible required/available: %s", what, rep.body)
		}
		if rep.replayed {
			h.fail(rep.reqID, "%s: a 402 was replayed (only 2xx are stored): %s", what, rep.body)
		}
	default:
		h.fail(rep.reqID, "%s: unexpected status %d: %s", what, rep.status, rep.body)
	}
	if rep.replayed {
		h.replays.Add(1)
	}
	r.add(o)
}

// verify checks, after the hammer: one effect per key, the balance against
// the clients' own records, and the ledger against both.
func (h *hammer) verify() {
	t, c := h.t, h.c
	var granted, debited int64
	effects := map[string]string{} // key → its block or event id, for keys with an effect
	var nGrants, nDebits, n402Only, multi int
	for _, r := range h.keys {
		if len(r.obs) > 1 {
			multi++
		}
		var first *observation // the 2xx that executed
		id := ""
		for i := range r.obs {
			o := &r.obs[i]
			if o.status/100 != 2 || o.id == "" {
				continue
			}
			if id == "" {
				id = o.id
			} else if o.id != id {
				h.fail(o.reqID, "key %s (%s): two effects: answers carry %s and %s (requests %s)", r.key, r.kind, id, o.id, reqIDs(r.obs))
			}
			if !o.replayed {
				if first != nil {
					h.fail(o.reqID, "key %s (%s): executed twice (two answers without X-Idempotent-Replayed; requests %s)", r.key, r.kind, reqIDs(r.obs))
				}
				first = o
			}
		}
		if id == "" {
			if len(r.obs) > 0 {
				n402Only++
			}
			continue
		}
		if first == nil {
			h.fail("", "key %s (%s): only replayed answers, none that executed (requests %s)", r.key, r.kind, reqIDs(r.obs))
		} else {
			// An answer to a request sent after the effect was answered must be its replay.
			for _, o := range r.obs {
				if o.start > first.end && (o.status/100 != 2 || !o.replayed) {
					h.fail(o.reqID, "key %s (%s): request %s sent %s after the effect was answered got %d (replayed=%v), want the replay",
						r.key, r.kind, o.reqID, o.start-first.end, o.status, o.replayed)
				}
			}
		}
		effects[r.key] = id
		switch r.kind {
		case opGrant:
			granted += r.amount
			nGrants++
		case opDebit:
			debited += r.amount
			nDebits++
		}
	}
	t.Logf("hammer: %d keys (%d sent more than once); effects: %d grants = %d mc, %d debits = %d mc; %d debit keys only ever refused",
		len(h.keys), multi, nGrants, granted, nDebits, debited, n402Only)
	if h.s402.Load() == 0 || nDebits == 0 {
		h.fail("", "the hammer did not exercise both outcomes of a debit: %d accepted, %d answered 402", nDebits, h.s402.Load())
	}
	if h.replays.Load() == 0 {
		h.fail("", "the hammer saw no replay: retries were not exercised")
	}
	if debited > granted {
		h.fail("", "accepted debits (%d mc) exceed grants (%d mc)", debited, granted)
	}

	// The balance, from every instance.
	for i := range c.insts {
		b := c.balance(t, i)
		if b.Balance != granted-debited || b.EffectiveBalance != b.Balance || b.ReservedBalance != 0 || b.LifetimeEarned != granted {
			h.fail("", "%s: balance %+v; the clients' records say balance = %d − %d = %d, lifetime_earned = %d",
				c.insts[i].name, b, granted, debited, granted-debited, granted)
		}
	}
	bal := c.balance(t, 0)

	// The ledger: Σ delta = balance, every entry is one of our effects, each
	// key's entries are one effect, balance_after chains.
	entries, pages := c.ledger(t)
	t.Logf("ledger: %d entries in %d pages", len(entries), pages)
	var sum int64
	seen := map[string]bool{}
	perKey := map[string][]entryJSON{}
	for i := len(entries) - 1; i >= 0; i-- { // oldest first
		e := entries[i]
		if seen[e.ID] {
			h.fail("", "ledger: entry %s listed twice (paging)", e.ID)
			continue
		}
		seen[e.ID] = true
		sum += e.Delta
		if e.BalanceAfter != sum {
			h.fail("", "ledger: entry %s (%s %d, key %s) has balance_after %d, but the entries up to it sum to %d",
				e.ID, e.Type, e.Delta, str(e.IdempotencyKey), e.BalanceAfter, sum)
		}
		if e.IdempotencyKey == nil {
			h.fail("", "ledger: entry %s (%s %d) has no idempotency_key", e.ID, e.Type, e.Delta)
			continue
		}
		perKey[*e.IdempotencyKey] = append(perKey[*e.IdempotencyKey], e)
	}
	if sum != bal.Balance {
		h.fail("", "ledger: Σ delta = %d over %d entries, balance = %d", sum, len(entries), bal.Balance)
	}
	for key, es := range perKey {
		r := h.keys[key]
		id, ok := effects[key]
		switch {
		case r == nil:
			h.fail("", "ledger: %d entries under key %q, which no client sent", len(es), key)
		case !ok:
			h.fail("", "ledger: %d entries under key %s (%s %d mc), which no client saw accepted: %s", len(es), key, r.kind, r.amount, describe(es))
		case r.kind == opGrant:
			e := es[0]
			if len(es) != 1 || e.Type != "grant" || e.Delta != r.amount || str(e.BlockID) != id || str(e.ReferenceID) != id || str(e.ReferenceType) != "grant" {
				h.fail("", "ledger: grant %s (%d mc, block %s) has entries %s, want one grant entry of %d for the block", key, r.amount, id, describe(es), r.amount)
			}
		case r.kind == opDebit:
			var total int64
			blocks := map[string]bool{}
			good := true
			for _, e := range es {
				total += e.Delta
				good = good && e.Type == "usage" && e.Delta < 0 && str(e.ReferenceID) == id && str(e.ReferenceType) == "usage_event" && !blocks[str(e.BlockID)]
				blocks[str(e.BlockID)] = true
			}
			if !good || total != -r.amount {
				h.fail("", "ledger: debit %s (%d mc, event %s) has entries %s, want usage entries of event %s summing to %d, one per block",
					key, r.amount, id, describe(es), id, -r.amount)
			}
		}
	}
	for key := range effects {
		if len(perKey[key]) == 0 {
			r := h.keys[key]
			h.fail("", "ledger: accepted %s %s (%d mc, %s) has no ledger entry", r.kind, key, r.amount, effects[key])
		}
	}
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func describe(es []entryJSON) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%s %s %+d block %s ref %s", e.ID, e.Type, e.Delta, str(e.BlockID), str(e.ReferenceID)))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func reqIDs(obs []observation) string {
	var parts []string
	for _, o := range obs {
		parts = append(parts, fmt.Sprintf("%s@%s %d replayed=%v [%s, %s]", o.reqID, o.inst, o.status, o.replayed, o.start, o.end))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

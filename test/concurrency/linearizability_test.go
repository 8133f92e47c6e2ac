package concurrency

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability check (spec: "check a bounded history … with
// porcupine; the 64-client hammer checks the invariants only"). 8 clients ×
// 300 operations on one customer record every invocation and response, and
// porcupine searches for a sequential order, consistent with real time, in
// which a single balance explains every answer:
//
//	grant(a)  → 201, balance += a
//	debit(a)  → 200 and balance −= a if a ≤ balance, else 402 and no change
//	read      → the balance (GET …/credits; no expiries, no holds: balance = effective balance)
//
// Some keys are sent more than once (a client retrying its own earlier key,
// or two clients sending a new key at once); the model tracks those keys, so
// that a key that took effect must be answered by its replay
// (X-Idempotent-Replayed) and one that did not must execute.
//
// The same history is then checked once more with reads also held to
// lifetime_earned (Σ grants), which GET …/credits answers next to the
// balance: one answer must show one state of the account.
//
// The history is small enough that the search ends in well under a second;
// its timeout (linCheckTimeout) is only a guard. Illegal fails the test and
// writes porcupine's visualization; Unknown (the search timed out) fails it
// too, since a history this size that cannot be decided in a minute is
// itself a sign that something is wrong, and a pass must mean "proved".

const (
	linClients      = 8
	linOpsPerClient = 300
	linMaxSlots     = 256 // keys that may be sent more than once
	linCheckTimeout = time.Minute
	linMaxGrant     = 1000
	linMaxDebit     = 1500
)

func TestLinearizablePostgresTwoInstances(t *testing.T) {
	c := postgresCluster(t, 2)
	runLinearizability(t, c)
}

func TestLinearizableSQLite(t *testing.T) {
	c := sqliteCluster(t)
	runLinearizability(t, c)
}

// linInput is one operation as invoked.
type linInput struct {
	Kind   opKind
	Amount int64
	Key    string
	Slot   int // ≥ 0 for keys that may be sent more than once, else -1
}

// linOutput is its answer.
type linOutput struct {
	Status   int
	Replayed bool
	Balance  int64 // reads
	Lifetime int64 // reads: lifetime_earned
	ID       string
	ReqID    string
	Inst     string
}

// linState is the model's state: the balance and which multi-use keys took effect.
type linState struct {
	Balance  int64
	Lifetime int64 // Σ grants
	Applied  [linMaxSlots / 64]uint64
}

func (s linState) applied(slot int) bool { return slot >= 0 && s.Applied[slot/64]&(1<<(slot%64)) != 0 }

func (s linState) apply(slot int) linState {
	if slot >= 0 {
		s.Applied[slot/64] |= 1 << (slot % 64)
	}
	return s
}

// balanceModel is the model the spec asks for: reads answer the balance.
var balanceModel = accountModel(false)

// fullModel also holds reads to lifetime_earned (= Σ grants): a read must
// show one state of the account, not a balance from one commit and the
// account row from another.
var fullModel = accountModel(true)

func accountModel(lifetime bool) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return linState{} },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(linState), input.(linInput), output.(linOutput)
			switch in.Kind {
			case opRead:
				return out.Status == http.StatusOK && out.Balance == s.Balance && (!lifetime || out.Lifetime == s.Lifetime), s
			case opGrant:
				if s.applied(in.Slot) {
					return out.Status == http.StatusCreated && out.Replayed, s
				}
				if out.Status != http.StatusCreated || out.Replayed {
					return false, s
				}
				s.Balance += in.Amount
				s.Lifetime += in.Amount
				return true, s.apply(in.Slot)
			case opDebit:
				if s.applied(in.Slot) {
					return out.Status == http.StatusOK && out.Replayed, s
				}
				if in.Amount > s.Balance {
					return out.Status == http.StatusPaymentRequired && !out.Replayed, s
				}
				if out.Status != http.StatusOK || out.Replayed {
					return false, s
				}
				s.Balance -= in.Amount
				return true, s.apply(in.Slot)
			}
			return false, s
		},
		Hash: func(state any) uint64 {
			s := state.(linState)
			h := uint64(s.Balance)*0x9e3779b97f4a7c15 ^ uint64(s.Lifetime)
			for _, w := range s.Applied {
				h = (h ^ w) * 0x100000001b3
			}
			return h
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			switch in.Kind {
			case opRead:
				return fmt.Sprintf("read → %d, lifetime %d (%s@%s)", out.Balance, out.Lifetime, out.ReqID, out.Inst)
			default:
				r := ""
				if out.Replayed {
					r = " replayed"
				}
				return fmt.Sprintf("%s(%d) %s → %d%s %s (%s@%s)", in.Kind, in.Amount, in.Key, out.Status, r, out.ID, out.ReqID, out.Inst)
			}
		},
		DescribeState: func(state any) string {
			s := state.(linState)
			return fmt.Sprintf("balance %d, lifetime %d", s.Balance, s.Lifetime)
		},
	}
}

type linRecorder struct {
	t      *testing.T
	c      *cluster
	t0     time.Time
	slots  atomic.Int64
	dup    chan *linJob
	mu     sync.Mutex
	ops    []porcupine.Operation
	errs   []string
	errIDs map[string]bool
}

// linJob is a new key that a second client sends at the same time.
type linJob struct {
	in     linInput
	body   []byte
	picked chan struct{}
}

func (l *linRecorder) fail(reqID, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if reqID != "" {
		l.errIDs[reqID] = true
	}
	if len(l.errs) < 50 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

func runLinearizability(t *testing.T, c *cluster) {
	seed := uint64(time.Now().UnixNano())
	l := &linRecorder{t: t, c: c, dup: make(chan *linJob, linClients), errIDs: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l.t0 = time.Now()
	var wg sync.WaitGroup
	for i := range linClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.client(ctx, i, rand.New(rand.NewPCG(seed, uint64(i))))
		}()
	}
	wg.Wait()
	took := time.Since(l.t0)
	// The history is complete: the servers can go, and the database itself
	// must hold every invariant whatever porcupine finds.
	c.stopAll(t)
	checkInvariants(t, c.dbURL)
	if len(l.errs) > 0 {
		for _, e := range l.errs {
			t.Error(e)
		}
		c.dumpAll(t, l.errIDs)
		t.FailNow()
	}

	counts := map[string]int{}
	for _, op := range l.ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		k := fmt.Sprintf("%s %d", in.Kind, out.Status)
		if out.Replayed {
			k += " replayed"
		}
		counts[k]++
	}
	t.Logf("history: %d operations by %d clients in %s (seed %d): %v", len(l.ops), linClients, took.Round(time.Millisecond), seed, counts)
	if counts["debit 200"] == 0 || counts["debit 402"] == 0 {
		t.Errorf("the history does not hold both outcomes of a debit: %v", counts)
	}

	if !l.check("balance", balanceModel, seed) {
		c.dumpAll(t, nil)
		t.FailNow()
	}
	if !l.check("balance and lifetime_earned", fullModel, seed) {
		c.dumpAll(t, nil)
		t.FailNow()
	}
}

// check runs porcupine on the history with model and reports whether it was
// proved linearizable; otherwise it has failed the test and written the
// visualization.
func (l *linRecorder) check(what string, model porcupine.Model, seed uint64) bool {
	t := l.t
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, l.ops, linCheckTimeout)
	t.Logf("porcupine (%s): %s in %s", what, res, time.Since(start).Round(time.Millisecond))
	if res == porcupine.Ok {
		return true
	}
	if dir, err := os.MkdirTemp("", "creditd-linearizability-"); err == nil {
		path := filepath.Join(dir, "history.html")
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Logf("porcupine's visualization of the history: %s", path)
		}
		if b, err := json.Marshal(l.ops); err == nil && os.WriteFile(filepath.Join(dir, "history.json"), b, 0o644) == nil {
			t.Logf("the raw history: %s", filepath.Join(dir, "history.json"))
		}
	}
	if res == porcupine.Unknown {
		t.Errorf("porcupine could not decide within %s whether the history of %d operations is linearizable for the %s", linCheckTimeout, len(l.ops), what)
		return false
	}
	t.Errorf("the history of %d operations is not linearizable for the %s (seed %d)", len(l.ops), what, seed)
	return false
}

func (l *linRecorder) client(ctx context.Context, id int, rng *rand.Rand) {
	type sent struct {
		in   linInput
		body []byte
	}
	var retryable []sent
	newSlot := func() int {
		if n := l.slots.Add(1) - 1; n < linMaxSlots {
			return int(n)
		}
		return -1
	}
	newOp := func(kind opKind, slot int, seq int) (linInput, []byte) {
		in := linInput{Kind: kind, Key: fmt.Sprintf("lin-%s-c%d-%d", kind, id, seq), Slot: slot}
		var body map[string]any
		if kind == opGrant {
			in.Amount = 1 + rng.Int64N(linMaxGrant)
			body = map[string]any{"customer_id": l.c.customer, "credits": in.Amount}
		} else {
			in.Amount = 1 + rng.Int64N(linMaxDebit)
			body = map[string]any{"customer_id": l.c.customer, "billable_metric_key": metricKey, "units": in.Amount}
		}
		b, _ := json.Marshal(body)
		return in, b
	}
	for i := range linOpsPerClient {
		if ctx.Err() != nil {
			return
		}
		inst := l.c.insts[(id+i)%len(l.c.insts)]
		select {
		case j := <-l.dup:
			close(j.picked)
			l.do(ctx, id, inst, j.in, j.body)
			continue
		default:
		}
		kind := opDebit
		if rng.IntN(2) == 0 {
			kind = opGrant
		}
		switch p := rng.IntN(100); {
		case p < 8 && len(retryable) > 0:
			s := retryable[rng.IntN(len(retryable))]
			l.do(ctx, id, inst, s.in, s.body)
		case p < 14:
			slot := newSlot()
			in, body := newOp(kind, slot, i)
			if slot < 0 {
				l.do(ctx, id, inst, in, body)
				break
			}
			j := &linJob{in: in, body: body, picked: make(chan struct{})}
			select {
			case l.dup <- j:
				select {
				case <-j.picked:
				case <-time.After(20 * time.Millisecond):
				}
			default:
			}
			l.do(ctx, id, inst, in, body)
		case p < 34:
			l.do(ctx, id, inst, linInput{Kind: opRead, Slot: -1}, nil)
		default:
			slot := -1
			if rng.IntN(4) == 0 { // may be retried later
				slot = newSlot()
			}
			in, body := newOp(kind, slot, i)
			l.do(ctx, id, inst, in, body)
			if slot >= 0 {
				retryable = append(retryable, sent{in, body})
			}
		}
	}
}

// do sends one operation and records it.
func (l *linRecorder) do(ctx context.Context, client int, inst *instance, in linInput, body []byte) {
	method, url := http.MethodPost, inst.base
	switch in.Kind {
	case opRead:
		method, url = http.MethodGet, url+"/v1/customers/"+l.c.customer+"/credits"
	case opGrant:
		url += "/v1/topup/grant"
	case opDebit:
		url += "/v1/usage"
	}
	call := time.Since(l.t0).Nanoseconds()
	rep, err := l.c.api.do(ctx, method, url, in.Key, body)
	ret := time.Since(l.t0).Nanoseconds()
	if err != nil {
		// An operation without an answer could have taken effect or not; we
		// expect none on loopback, so it is a failure rather than a
		// nondeterministic step.
		l.fail("", "%s: %s %s: %v", inst.name, in.Kind, in.Key, err)
		return
	}
	out := linOutput{Status: rep.status, Replayed: rep.replayed, ReqID: rep.reqID, Inst: inst.name}
	ok := false
	switch {
	case in.Kind == opRead && rep.status == http.StatusOK:
		var b balanceJSON
		ok = json.Unmarshal(rep.body, &b) == nil && b.EffectiveBalance == b.Balance && b.ReservedBalance == 0
		out.Balance, out.Lifetime = b.Balance, b.LifetimeEarned
	case in.Kind == opGrant && rep.status == http.StatusCreated:
		var b blockJSON
		ok = json.Unmarshal(rep.body, &b) == nil && b.OriginalAmount == in.Amount
		out.ID = b.ID
	case in.Kind == opDebit && rep.status == http.StatusOK:
		var u usageJSON
		ok = json.Unmarshal(rep.body, &u) == nil && u.EstimatedCost == in.Amount && u.Duplicate == rep.replayed
		out.ID = u.EventID
	case in.Kind == opDebit && rep.status == http.StatusPaymentRequired:
		var p problemJSON
		ok = json.Unmarshal(rep.body, &p) == nil && p.Code == "insufficient-credits"
	}
	if !ok {
		l.fail(rep.reqID, "%s: %s %s (%d mc), request %s: unexpected answer %d: %s", inst.name, in.Kind, in.Key, in.Amount, rep.reqID, rep.status, rep.body)
		return
	}
	l.mu.Lock()
	l.ops = append(l.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	l.mu.Unlock()
}

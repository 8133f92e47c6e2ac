package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// submitAll runs cmds concurrently while the committers are held, so that
// they meet in one group, and returns their outcomes in order.
func (f *fixture) submitAll(t *testing.T, reqs []Request, cmds []Command) []outcome {
	t.Helper()
	release := f.hold(t)
	outs := make([]outcome, len(cmds))
	var wg sync.WaitGroup
	for i := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := f.svc.Execute(context.Background(), reqs[i], func() (Command, error) { return cmds[i], nil })
			outs[i] = outcome{resp, err}
		}()
	}
	f.waitQueued(t, len(cmds))
	release()
	wg.Wait()
	return outs
}

func TestGroupRejectsOnlyTheCommandThatCannotPay(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "msg", 1000)
		f.grant(t, scope, "g1", "hot", 15_000)
		var sizes []int
		var mu sync.Mutex
		f.svc.onGroup = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
		var reqs []Request
		var cmds []Command
		for i := range 20 {
			key := "u" + string(rune('a'+i))
			reqs = append(reqs, Request{Scope: scope, Key: key, Method: "POST", Path: "/v1/usage"})
			cmds = append(cmds, usage("hot", "msg", 1, key))
		}
		outs := f.submitAll(t, reqs, cmds)
		f.svc.onGroup = nil
		accepted, refused := 0, 0
		for _, o := range outs {
			switch {
			case o.err == nil:
				accepted++
			case isCode(o.err, credit.EInsufficient):
				refused++
			default:
				t.Errorf("usage: %v", o.err)
			}
		}
		if accepted != 15 || refused != 5 {
			t.Errorf("accepted %d, refused %d; want 15 and 5", accepted, refused)
		}
		if b := f.balance(t, scope, "hot"); b.Balance != 0 {
			t.Errorf("balance = %d, want 0", b.Balance)
		}
		big := 0
		for _, n := range sizes {
			big = max(big, n)
		}
		if big < 20 {
			t.Errorf("largest group %d commands (groups %v), want the 20 held ones together", big, sizes)
		}
	})
}

func TestRacingRetriesOfOneKeyTakeEffectOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "msg", 1000)
		f.grant(t, scope, "g1", "c1", 50_000)
		var reqs []Request
		var cmds []Command
		for range 10 {
			reqs = append(reqs, Request{Scope: scope, Key: "same", Method: "POST", Path: "/v1/usage"})
			cmds = append(cmds, usage("c1", "msg", 3, "same"))
		}
		outs := f.submitAll(t, reqs, cmds)
		fresh := 0
		for _, o := range outs {
			if o.err != nil {
				t.Fatalf("usage: %v", o.err)
			}
			if !o.resp.Replayed {
				fresh++
			}
			if string(o.resp.Body) != string(outs[0].resp.Body) {
				t.Errorf("answers differ: %s and %s", o.resp.Body, outs[0].resp.Body)
			}
		}
		if fresh != 1 {
			t.Errorf("%d requests executed, want 1", fresh)
		}
		if b := f.balance(t, scope, "c1"); b.Balance != 47_000 {
			t.Errorf("balance = %d, want 47000", b.Balance)
		}
	})
}

func TestKeyReusedOnAnotherPathIsRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.grant(t, scope, "k", "c1", 1000)
		_, err := f.run(t, scope, "k", "/v1/usage", usage("c1", "msg", 1, "k"))
		if !isCode(err, credit.EIdempotencyReused) {
			t.Fatalf("err = %v, want %s", err, credit.EIdempotencyReused)
		}
		// Keys are scoped: another tenant may use the same one.
		f.grant(t, other, "k", "c1", 500)
		if b := f.balance(t, other, "c1"); b.Balance != 500 {
			t.Errorf("other tenant's balance = %d, want 500", b.Balance)
		}
	})
}

func TestReplayComesBeforeTheBodysErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.grant(t, scope, "k", "c1", 1000)
		bad := errors.New("a body that does not parse")
		resp, err := f.svc.Execute(t.Context(), Request{Scope: scope, Key: "k", Method: "POST", Path: "/v1/topup/grant"},
			func() (Command, error) { return nil, bad })
		if err != nil || !resp.Replayed || resp.Status != 201 {
			t.Errorf("retry with a bad body = %+v, %v; want the stored 201 replayed", resp, err)
		}
		_, err = f.svc.Execute(t.Context(), Request{Scope: scope, Key: "new", Method: "POST", Path: "/v1/topup/grant"},
			func() (Command, error) { return nil, bad })
		if !errors.Is(err, bad) {
			t.Errorf("new key with a bad body: err = %v, want the body's error", err)
		}
	})
}

func TestRefusedUsageCreatesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "msg", 1000)
		_, err := f.run(t, scope, "u1", "/v1/usage", usage("nobody", "msg", 1, "u1"))
		var ie *credit.InsufficientError
		if !errors.As(err, &ie) || ie.Required != 1000 || ie.Available != 0 {
			t.Fatalf("err = %v, want insufficient credits (1000 required, 0 available)", err)
		}
		if _, err := f.svc.Customer(t.Context(), scope, CustomerRef{ExternalID: "nobody"}); !isCode(err, credit.ENotFound) {
			t.Errorf("customer after a refused usage: err = %v, want not found", err)
		}
		// The refusal was not stored: the same key runs again once funded.
		f.grant(t, scope, "g", "nobody", 1000)
		if _, err := f.run(t, scope, "u1", "/v1/usage", usage("nobody", "msg", 1, "u1")); err != nil {
			t.Errorf("retry after funding: %v", err)
		}
	})
}

func TestConcurrentFirstGrantsMakeOneCustomer(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		var reqs []Request
		var cmds []Command
		var n atomic.Int64
		for i := range 10 {
			key := "g" + string(rune('a'+i))
			reqs = append(reqs, Request{Scope: scope, Key: key, Method: "POST", Path: "/v1/topup/grant"})
			in := GrantInput{Customer: CustomerRef{ExternalID: "new"}, AutoCreate: true, Credits: 100, Source: "topup"}
			cmds = append(cmds, Grant{In: in, Encode: func(GrantResult) (int, []byte, error) { n.Add(1); return 201, []byte(`{}`), nil }})
		}
		for _, o := range f.submitAll(t, reqs, cmds) {
			if o.err != nil {
				t.Fatalf("grant: %v", o.err)
			}
		}
		if b := f.balance(t, scope, "new"); b.Balance != 1000 || b.LifetimeEarned != 1000 || len(b.Blocks) != 10 {
			t.Errorf("balance %d, earned %d, %d blocks; want 1000, 1000, 10", b.Balance, b.LifetimeEarned, len(b.Blocks))
		}
		list, err := f.svc.Customers(t.Context(), scope, store.Page{Limit: 10})
		if err != nil || len(list) != 1 {
			t.Errorf("customers = %d (%v), want 1", len(list), err)
		}
	})
}

func TestBatchEventsHaveTheirOwnFate(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.metric(t, scope, "msg", 1000)
		f.grant(t, scope, "g", "c1", 2_000)
		if _, err := f.run(t, scope, "before", "/v1/usage", usage("c1", "msg", 1, "before")); err != nil {
			t.Fatal(err)
		}
		ev := func(ext string, units int64, key string) BatchEvent {
			return BatchEvent{In: UsageInput{Customer: CustomerRef{ExternalID: ext}, MetricKey: "msg", Units: units, IdempotencyKey: key}}
		}
		var got []BatchResult
		batch := UsageBatch{
			Events: []BatchEvent{
				ev("c1", 1, "e1"),     // accepted: 1000 of the 1000 left
				ev("c1", 1, "e2"),     // 402: nothing left
				ev("c1", 1, "before"), // a duplicate of the earlier single usage
				ev("c1", 1, "e1"),     // a duplicate of this batch's first event
				{Malformed: credit.Invalid("event", "is not an object")},
				ev("c1", 1, "batch"), // the batch's own key
				{In: UsageInput{IdempotencyKey: "before"}, Invalid: credit.Invalid("units", "is required")}, // a replay ignores the body
			},
			EventMethod: "POST", EventPath: "/v1/usage",
			EncodeEvent: usage("", "", 0, "").Encode,
			Encode:      func(r []BatchResult) (int, []byte, error) { got = r; return 200, []byte(`{}`), nil },
		}
		if _, err := f.run(t, scope, "batch", "/v1/usage/batch", batch); err != nil {
			t.Fatal(err)
		}
		want := []string{"", credit.EInsufficient, "dup", "dup", credit.EInvalid, credit.EIdempotencyReused, "dup"}
		for i, w := range want {
			r := got[i]
			var have string
			switch {
			case r.Err != nil:
				have = credit.ErrorCode(r.Err)
			case r.Duplicate:
				have = "dup"
			}
			if have != w {
				t.Errorf("event %d: %q (%v), want %q", i, have, r.Err, w)
			}
		}
		if b := f.balance(t, scope, "c1"); b.Balance != 0 {
			t.Errorf("balance = %d, want 0", b.Balance)
		}
	})
}

func TestSweepRecordsDueExpiries(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		in := GrantInput{Customer: CustomerRef{ExternalID: "c1"}, AutoCreate: true, Credits: 700, Source: "promo", ExpiresAt: t0.Add(time.Hour)}
		if _, err := f.run(t, scope, "g", "/v1/topup/grant", Grant{In: in, Encode: jsonOf[GrantResult](201)}); err != nil {
			t.Fatal(err)
		}
		f.grant(t, scope, "g2", "c1", 300)
		if n, err := f.svc.SweepExpired(t.Context(), 10); err != nil || n != 0 {
			t.Fatalf("sweep before expiry = %d, %v; want 0", n, err)
		}
		f.clock.Add(time.Hour)
		if b := f.balance(t, scope, "c1"); b.Balance != 300 {
			t.Errorf("balance at expiry = %d, want 300 (expired credits never count)", b.Balance)
		}
		if n, err := f.svc.SweepExpired(t.Context(), 10); err != nil || n != 1 {
			t.Fatalf("sweep at expiry = %d, %v; want 1", n, err)
		}
		_, entries, err := f.svc.Ledger(t.Context(), scope, CustomerRef{ExternalID: "c1"}, string(credit.EntryExpire), store.Page{Limit: 10})
		if err != nil || len(entries) != 1 || entries[0].Delta != -700 {
			t.Errorf("expire entries = %+v, %v; want one of -700", entries, err)
		}
	})
}

func TestCommandGivenUpBeforeItRunsDoesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		release := f.hold(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			in := GrantInput{Customer: CustomerRef{ExternalID: "c1"}, AutoCreate: true, Credits: 5, Source: "topup"}
			_, err := f.svc.Execute(ctx, Request{Scope: scope, Key: "g", Method: "POST", Path: "/v1/topup/grant"},
				func() (Command, error) { return Grant{In: in, Encode: jsonOf[GrantResult](201)}, nil })
			done <- err
		}()
		f.waitQueued(t, 1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		release()
		f.grant(t, scope, "after", "c2", 1) // a command after it: the committer has passed it
		if _, err := f.svc.Customer(t.Context(), scope, CustomerRef{ExternalID: "c1"}); !isCode(err, credit.ENotFound) {
			t.Errorf("customer of the given-up grant: err = %v, want not found", err)
		}
	})
}

// weighted is a command that weighs n (as a batch of n events does) and
// changes nothing.
type weighted struct{ n int }

func (weighted) plan(*plan)  {}
func (w weighted) size() int { return w.n }
func (weighted) apply(context.Context, *group, Request) (Response, bool, error) {
	return Response{Status: 200, Body: []byte(`{}`)}, false, nil
}

// A group stops taking commands once it weighs its committer's bound:
// maxGroupAlone where one committer writes, maxGroup where several share the
// database.
func TestGroupsStopAtTheirWeight(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		var sizes []int
		var mu sync.Mutex
		f.svc.onGroup = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
		var reqs []Request
		var cmds []Command
		for i := range 12 {
			reqs = append(reqs, Request{Scope: scope, Key: fmt.Sprintf("w%d", i), Method: "POST", Path: "/v1/usage/batch"})
			cmds = append(cmds, weighted{1000})
		}
		for _, o := range f.submitAll(t, reqs, cmds) {
			if o.err != nil {
				t.Fatalf("weighted command: %v", o.err)
			}
		}
		f.svc.onGroup = nil
		bound := maxGroupAlone
		if _, ok := f.st.(Sharded); ok {
			bound = maxGroup
		}
		// A group takes a command while it weighs less than the bound.
		want := min(12, (bound-1)/1000+1)
		largest := 0
		for _, n := range sizes {
			largest = max(largest, n)
		}
		if largest != want {
			t.Errorf("groups of %v commands of weight 1000 (bound %d), want the largest to hold %d", sizes, bound, want)
		}
	})
}

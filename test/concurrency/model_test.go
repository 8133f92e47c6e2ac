package concurrency

import (
	"net/http"
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestBalanceModel checks the checker: hand-made histories that are and are
// not linearizable get the verdict they deserve.
func TestBalanceModel(t *testing.T) {
	grant := func(amount int64, key string, slot int) linInput {
		return linInput{Kind: opGrant, Amount: amount, Key: key, Slot: slot}
	}
	debit := func(amount int64, key string, slot int) linInput {
		return linInput{Kind: opDebit, Amount: amount, Key: key, Slot: slot}
	}
	read := linInput{Kind: opRead, Slot: -1}
	ok := func(status int) linOutput { return linOutput{Status: status} }
	replayed := func(status int) linOutput { return linOutput{Status: status, Replayed: true} }
	bal := func(b, lifetime int64) linOutput {
		return linOutput{Status: http.StatusOK, Balance: b, Lifetime: lifetime}
	}
	op := func(client int, in linInput, call int64, out linOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	cases := []struct {
		name      string
		history   []porcupine.Operation
		balanceOK bool
		fullOK    bool
	}{
		{"sequential", []porcupine.Operation{
			op(0, grant(100, "g1", -1), 0, ok(201), 1),
			op(0, debit(150, "d1", -1), 2, ok(402), 3),
			op(0, debit(60, "d2", -1), 4, ok(200), 5),
			op(0, read, 6, bal(40, 100), 7),
		}, true, true},
		{"debit accepted before any grant", []porcupine.Operation{
			op(0, debit(50, "d1", -1), 0, ok(200), 1),
			op(0, grant(100, "g1", -1), 2, ok(201), 3),
		}, false, false},
		{"concurrent grant explains the debit", []porcupine.Operation{
			op(0, debit(50, "d1", -1), 0, ok(200), 10),
			op(1, grant(100, "g1", -1), 2, ok(201), 3),
		}, true, true},
		{"402 although the balance sufficed", []porcupine.Operation{
			op(0, grant(100, "g1", -1), 0, ok(201), 1),
			op(0, debit(50, "d1", -1), 2, ok(402), 3),
		}, false, false},
		{"stale read", []porcupine.Operation{
			op(0, grant(100, "g1", -1), 0, ok(201), 1),
			op(1, read, 2, bal(0, 0), 3),
		}, false, false},
		{"retry replays", []porcupine.Operation{
			op(0, grant(100, "g1", 0), 0, ok(201), 1),
			op(0, grant(100, "g1", 0), 2, replayed(201), 3),
			op(0, read, 4, bal(100, 100), 5),
		}, true, true},
		{"retry executed twice", []porcupine.Operation{
			op(0, grant(100, "g1", 0), 0, ok(201), 1),
			op(0, grant(100, "g1", 0), 2, ok(201), 3),
		}, false, false},
		{"replay before any effect", []porcupine.Operation{
			op(0, debit(10, "d1", 0), 0, replayed(200), 1),
			op(1, grant(100, "g1", -1), 2, ok(201), 3),
			op(1, debit(10, "d1", 0), 4, ok(200), 5),
		}, false, false},
		{"refused, then retried after a grant", []porcupine.Operation{
			op(0, debit(10, "d1", 0), 0, ok(402), 1),
			op(1, grant(100, "g1", -1), 2, ok(201), 3),
			op(0, debit(10, "d1", 0), 4, ok(200), 5),
			op(0, read, 6, bal(90, 100), 7),
		}, true, true},
		{"torn read: balance of one state, lifetime_earned of an older one", []porcupine.Operation{
			op(0, grant(100, "g1", -1), 0, ok(201), 1),
			op(0, grant(50, "g2", -1), 2, ok(201), 5),
			op(1, read, 3, bal(150, 100), 4),
		}, true, false},
	}
	for _, c := range cases {
		if got := porcupine.CheckOperations(balanceModel, c.history); got != c.balanceOK {
			t.Errorf("%s: balance model says %v, want %v", c.name, got, c.balanceOK)
		}
		if got := porcupine.CheckOperations(fullModel, c.history); got != c.fullOK {
			t.Errorf("%s: full model says %v, want %v", c.name, got, c.fullOK)
		}
	}
}

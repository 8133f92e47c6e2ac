package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// MaxOperations bounds a linked transaction.
const MaxOperations = 100

// Operation is one step of a linked transaction: a usage or a grant, with
// that endpoint's body. Invalid holds what was wrong with the body itself,
// found while decoding; it fails the transaction at this step.
type Operation struct {
	Type    string // "usage" or "grant"
	Usage   UsageInput
	Grant   GrantInput
	Invalid error
}

// OperationResult is one operation's result: Usage for a usage, Grant for a
// grant.
type OperationResult struct {
	Type  string
	Usage UsageResult
	Grant GrantResult
}

// TransactionResult is a committed linked transaction.
type TransactionResult struct {
	ID        string
	Results   []OperationResult
	Metadata  json.RawMessage
	CreatedAt time.Time
}

// OperationError is the failure of one operation of a linked transaction:
// Err (a 402, a 404…) at Index. Nothing of the transaction was written.
type OperationError struct {
	Index int
	Err   error
}

func (e *OperationError) Error() string { return fmt.Sprintf("operation %d: %v", e.Index, e.Err) }
func (e *OperationError) Unwrap() error { return e.Err }

// LinkedTransaction applies its operations in order, all or nothing: the
// first that fails fails the whole, and none of them is written. A transfer
// between two customers is a usage on one and a grant on the other. Its
// ledger entries carry the transaction's id, and its answer is stored under
// its id for GET /v1/transactions/{id} as well as under its key.
type LinkedTransaction struct {
	Operations []Operation
	Metadata   json.RawMessage
	Encode     Encoder[TransactionResult]
}

func (c LinkedTransaction) plan(p *plan) {
	for _, op := range c.Operations {
		switch op.Type {
		case "usage":
			p.customer(op.Usage.Customer)
		case "grant":
			p.customer(op.Grant.Customer)
		}
	}
}

func (c LinkedTransaction) size() int { return max(1, len(c.Operations)) }

func (c LinkedTransaction) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	if len(c.Operations) == 0 || len(c.Operations) > MaxOperations {
		return Response{}, false, credit.Invalid("operations", fmt.Sprintf("must hold 1 to %d operations", MaxOperations))
	}
	res := TransactionResult{ID: ids.New(ids.LinkedTx), Metadata: c.Metadata, CreatedAt: g.now}
	sp := g.savepoint()
	for i, op := range c.Operations {
		r, err := g.operation(ctx, req, op)
		if err != nil {
			sp.rollback()
			if credit.ErrorCode(err) == "" {
				return Response{}, false, err // the database failed: the whole group rolls back
			}
			return Response{}, false, &OperationError{Index: i, Err: err}
		}
		res.Results = append(res.Results, r)
	}
	sp.tag(res.ID)
	status, body, err := c.Encode(res)
	if err != nil {
		return Response{}, false, err
	}
	tx := store.Transaction{ID: res.ID, Body: body, Metadata: c.Metadata, CreatedAt: g.now}
	g.transactions[req.Scope] = append(g.transactions[req.Scope], tx)
	// One event for the whole, in the queue of the first operation's
	// customer, after the events of the operations themselves.
	if acc := g.operationAccount(req.Scope, c.Operations[0]); acc != nil {
		acc.note(g, &Event{Type: EventTransactionCommitted, Transaction: &tx})
	}
	return Response{Status: status, Body: body}, true, nil
}

// operationAccount is the account an applied operation changed.
func (g *group) operationAccount(scope store.Scope, op Operation) *account {
	ref := op.Usage.Customer
	if op.Type == "grant" {
		ref = op.Grant.Customer
	}
	acc, err := g.account(scope, ref, false)
	if err != nil {
		return nil
	}
	return acc
}

func (g *group) operation(ctx context.Context, req Request, op Operation) (OperationResult, error) {
	if op.Invalid != nil {
		return OperationResult{}, op.Invalid
	}
	switch op.Type {
	case "usage":
		in := op.Usage
		in.IdempotencyKey = req.Key
		r, err := g.recordUsage(ctx, req.Scope, in)
		return OperationResult{Type: op.Type, Usage: r}, err
	case "grant":
		in := op.Grant
		in.IdempotencyKey = req.Key
		r, err := g.grant(req.Scope, in)
		return OperationResult{Type: op.Type, Grant: r}, err
	}
	return OperationResult{}, credit.Invalid("type", `must be "usage" or "grant"`)
}

// savepoint is the group's state before a linked transaction, to go back
// to when one of its operations fails. Commands only append to an
// account's rows and to the group's list of changed accounts, so lengths
// are enough for those; the money state is copied.
type savepoint struct {
	g        *group
	touched  int
	accounts map[*account]accountMark
}

type accountMark struct {
	customer  store.Customer
	state     credit.State
	changed   bool
	ledger    int
	notices   int
	newBlocks int
	usage     int
	purchases int
	blocks    map[string]bool
}

func (g *group) savepoint() *savepoint {
	sp := &savepoint{g: g, touched: len(g.touched), accounts: make(map[*account]accountMark)}
	for _, acc := range g.accounts {
		sp.accounts[acc] = accountMark{
			customer: acc.customer, state: acc.state.Clone(), changed: acc.changed,
			ledger: len(acc.ledger), notices: len(acc.notices), newBlocks: len(acc.newBlocks), usage: len(acc.usage), purchases: len(acc.purchases),
			blocks: maps.Clone(acc.blocks),
		}
	}
	return sp
}

// rollback undoes every change made since the savepoint. An account created
// since (an auto-created customer) goes back to untouched: it is not
// written unless a later command changes it.
func (sp *savepoint) rollback() {
	for _, acc := range sp.g.touched[sp.touched:] {
		if _, ok := sp.accounts[acc]; !ok {
			*acc = account{scope: acc.scope, customer: acc.customer, isNew: acc.isNew,
				newHolds: make(map[string]bool), settled: make(map[string]bool)}
			acc.customer.Account = credit.Account{}
		}
	}
	sp.g.touched = sp.g.touched[:sp.touched]
	for acc, m := range sp.accounts {
		acc.customer, acc.state, acc.changed, acc.blocks = m.customer, m.state, m.changed, m.blocks
		acc.ledger, acc.newBlocks = acc.ledger[:m.ledger], acc.newBlocks[:m.newBlocks]
		acc.notices = acc.notices[:m.notices]
		acc.usage, acc.purchases = acc.usage[:m.usage], acc.purchases[:m.purchases]
	}
}

// tag marks the ledger entries written since the savepoint as part of the
// linked transaction id.
func (sp *savepoint) tag(id string) {
	for _, acc := range sp.g.touched {
		from := 0
		if m, ok := sp.accounts[acc]; ok {
			from = m.ledger
		}
		for i := from; i < len(acc.ledger); i++ {
			acc.ledger[i].TransactionID = id
		}
	}
}

// Transaction reads a committed linked transaction: its stored answer.
func (s *Service) Transaction(ctx context.Context, scope store.Scope, id string) (store.Transaction, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := s.store.TransactionGet(ctx, scope, id)
	if err != nil {
		return store.Transaction{}, notFound(err, "no transaction %q", id)
	}
	return t, nil
}

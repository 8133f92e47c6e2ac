package ledger

import (
	"context"
	"errors"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

// Request is the idempotency envelope of one mutating request: its scope,
// and the key, method and path its answer is stored under.
type Request struct {
	Scope  store.Scope
	Key    string // the Idempotency-Key; "" for background work, never stored
	Method string
	Path   string
}

// Response is a mutation's answer as stored for replay.
type Response struct {
	Status int
	Body   []byte
	// Replayed marks the stored answer to an earlier request with the same
	// key: this request changed nothing.
	Replayed bool
}

// Encoder turns a command's result into the answer stored for its
// Idempotency-Key. The HTTP layer supplies it: the wire format is its own.
type Encoder[T any] func(T) (status int, body []byte, err error)

// Command is one use case's input, ready to run: a value of one of this
// package's command types (Usage, Grant, UsageBatch, CreateCustomer,
// CreateMetric, CreateRule, Expire).
type Command interface {
	// plan names what the command touches, so that the group can take its
	// locks and load its rows up front, in one order.
	plan(p *plan)
	// apply runs the command against the group's state. A rejection (an
	// error) leaves that state as it was. changed reports whether the
	// answer is to be stored for replay.
	apply(ctx context.Context, g *group, req Request) (resp Response, changed bool, err error)
	// size is the command's weight in a group (a batch counts its events).
	size() int
}

// Execute runs one mutating request. prepare decodes and validates the
// request's body into its command. A stored answer for the request's key is
// replayed without running anything; a key used before on another method or
// path is an idempotency-key-reused error. The replay check comes before the
// body's validation, so that a retry whose body changed (the seed's client
// recomputes expires_at on every retry) still gets its first answer.
func (s *Service) Execute(ctx context.Context, req Request, prepare func() (Command, error)) (Response, error) {
	cmd, err := prepare()
	if err != nil {
		// The body is invalid: a stored answer still wins. Looking only now
		// keeps a read off the path of every valid request; the committer
		// looks again, under the key's lock, before it executes.
		if rec, found, perr := s.peek(ctx, req); perr != nil || found {
			return rec, perr
		}
		return Response{}, err
	}
	return s.submit(ctx, req, cmd)
}

// peek finds a stored answer for req's key without taking its lock.
func (s *Service) peek(ctx context.Context, req Request) (Response, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if req.Key == "" {
		return Response{}, false, nil
	}
	rec, err := s.store.IdempotencyGet(ctx, req.Scope, req.Key, s.clock().Add(-IdempotencyTTL))
	if errors.Is(err, store.ErrNotFound) {
		return Response{}, false, nil
	}
	if err != nil {
		return Response{}, false, err
	}
	return replayOf(req, rec)
}

// replayOf answers req from the record stored under its key.
func replayOf(req Request, rec store.IdempotencyRecord) (Response, bool, error) {
	if rec.Method != req.Method || rec.Path != req.Path {
		return Response{}, false, credit.Errorf(credit.EIdempotencyReused,
			"Idempotency-Key %q was already used for %s %s; use a new key for a different request", req.Key, rec.Method, rec.Path)
	}
	return Response{Status: rec.Status, Body: rec.Body, Replayed: true}, true, nil
}

// PurgeIdempotency deletes the records that can no longer be replayed.
func (s *Service) PurgeIdempotency(ctx context.Context) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.store.Transact(ctx, func(q store.Q) error {
		var err error
		n, err = q.IdempotencyPurge(ctx, s.clock().Add(-IdempotencyTTL))
		return err
	})
	return n, err
}

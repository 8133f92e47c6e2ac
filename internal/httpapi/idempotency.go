package httpapi

import (
	"context"
	"io"
	"net/http"

	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// result is what a mutation answers. Only a result that Changed something is
// stored for replay: a rejection changed nothing, so its retry runs again.
type result struct {
	Status  int
	Body    any
	Changed bool
}

// mutation is a validated request, ready to run inside the transaction.
type mutation func(ctx context.Context, tx *ledger.Tx) (result, error)

// idempotent runs a mutating request under its Idempotency-Key: a stored
// response is replayed before the body is even read; otherwise prepare
// decodes and validates the body, and the mutation runs in one transaction
// that looks up the key again under its lock, executes, and stores the
// response with the change. rewrite, if not nil, adjusts a replayed body.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, prepare func(body []byte) (mutation, error), rewrite func([]byte) []byte) error {
	ctx, scope := r.Context(), scopeOf(r.Context())
	key, method, path := r.Header.Get("Idempotency-Key"), r.Method, r.URL.Path
	rec, found, err := s.svc.PeekReplay(ctx, scope, key, method, path)
	if err != nil {
		return err
	}
	if found {
		return replay(w, rec, rewrite)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	m, err := prepare(body)
	if err != nil {
		return err
	}
	var out store.IdempotencyRecord
	err = s.svc.Write(ctx, scope, func(tx *ledger.Tx) error {
		var replayed bool
		if out, replayed, err = tx.Replay(ctx, key, method, path); err != nil || replayed {
			return err
		}
		res, err := m(ctx, tx)
		if err != nil {
			return err
		}
		b, err := marshal(res.Body)
		if err != nil {
			return err
		}
		out = store.IdempotencyRecord{Status: res.Status, Body: b}
		if res.Changed && res.Status < 300 {
			return tx.Remember(ctx, key, method, path, res.Status, b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !out.CreatedAt.IsZero() {
		return replay(w, out, rewrite)
	}
	writeJSON(w, out.Status, "application/json", out.Body)
	return nil
}

func replay(w http.ResponseWriter, rec store.IdempotencyRecord, rewrite func([]byte) []byte) error {
	body := rec.Body
	if rewrite != nil {
		body = rewrite(body)
	}
	w.Header().Set("X-Idempotent-Replayed", "true")
	writeJSON(w, rec.Status, "application/json", body)
	return nil
}

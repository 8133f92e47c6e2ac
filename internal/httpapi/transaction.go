package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
)

type transactionRequest struct {
	Operations []jsontext.Value `json:"operations"`
	Metadata   Metadata         `json:"metadata"`
}

// transactionJSON is a linked transaction's answer: each result is the
// answer its operation's endpoint gives, with its index and type first.
type transactionJSON struct {
	ID        string            `json:"id"`
	Results   []json.RawMessage `json:"results"`
	Metadata  json.RawMessage   `json:"metadata"`
	CreatedAt Time              `json:"created_at"`
}

// handleTransaction applies a linked transaction: operations in order, all
// or nothing, under one Idempotency-Key. An operation's own fault (a bad
// body, a 402, a 404) fails the request with its problem and its
// operation_index.
func (s *Server) handleTransaction() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get("Idempotency-Key")
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req transactionRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			if len(req.Operations) == 0 || len(req.Operations) > ledger.MaxOperations {
				return nil, credit.Invalid("operations", fmt.Sprintf("is required: an array of 1 to %d operations", ledger.MaxOperations))
			}
			ops := make([]ledger.Operation, len(req.Operations))
			for i, raw := range req.Operations {
				ops[i] = operation(raw, key)
			}
			return ledger.LinkedTransaction{Operations: ops, Metadata: json.RawMessage(req.Metadata), Encode: encodeTransaction}, nil
		}, nil)
	}
}

// operation decodes one operation: a usage or a grant with that endpoint's
// body, its customer in the body. What is wrong with it fails the
// transaction at its index.
func operation(raw jsontext.Value, key string) ledger.Operation {
	var head struct {
		Type string `json:"type"`
	}
	if err := decode(raw, &head); err != nil {
		return ledger.Operation{Invalid: err}
	}
	op := ledger.Operation{Type: head.Type}
	switch head.Type {
	case "usage":
		var req usageRequest
		if err := decode(raw, &req); err != nil {
			op.Invalid = err
			return op
		}
		op.Usage, op.Invalid = req.input(key)
	case "grant":
		req := grantRequest{ExpiresAt: Timestamp{field: "expires_at"}}
		if err := decode(raw, &req); err != nil {
			op.Invalid = err
			return op
		}
		in, err := req.input("topup", key)
		if err == nil {
			in.Customer, err = bodyCustomer(req.CustomerID, req.ExternalCustomerID)
		}
		in.AutoCreate = true
		op.Grant, op.Invalid = in, err
	default:
		op.Invalid = credit.Invalid("type", `must be "usage" or "grant"`)
	}
	return op
}

func encodeTransaction(t ledger.TransactionResult) (int, []byte, error) {
	out := transactionJSON{ID: t.ID, Results: make([]json.RawMessage, len(t.Results)), Metadata: metadataOut(t.Metadata), CreatedAt: Time(t.CreatedAt)}
	for i, r := range t.Results {
		var one any
		switch r.Type {
		case "usage":
			one = usageOut(r.Usage)
		case "grant":
			one = grantOut(r.Grant)
		}
		b, err := marshal(one)
		if err != nil {
			return 0, nil, err
		}
		head, err := marshal(struct {
			Index int    `json:"index"`
			Type  string `json:"type"`
		}{i, r.Type})
		if err != nil {
			return 0, nil, err
		}
		// {"index":…,"type":…} and the endpoint's answer as one object.
		out.Results[i] = append(append(head[:len(head)-1], ','), b[1:]...)
	}
	b, err := marshal(out)
	return http.StatusCreated, b, err
}

// handleTransactionGet answers a committed linked transaction as it was
// answered.
func (s *Server) handleTransactionGet() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := checkID("id", id); err != nil {
			return err
		}
		t, err := s.svc.Transaction(r.Context(), scopeOf(r.Context()), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, "application/json", t.Body)
		return nil
	}
}

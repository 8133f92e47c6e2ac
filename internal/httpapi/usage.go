package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
)

// usagePath is where usage events live in the idempotency key space: a
// batch event's key is stored as if it had been sent to POST /v1/usage, so
// that the two endpoints see each other's events as duplicates.
const usagePath = "/v1/usage"

type usageRequest struct {
	CustomerID         string   `json:"customer_id"`
	ExternalCustomerID string   `json:"external_customer_id"`
	BillableMetricKey  string   `json:"billable_metric_key"`
	Units              *int64   `json:"units"`
	Metadata           Metadata `json:"metadata"`
	IdempotencyKey     string   `json:"idempotency_key"` // batch events only
}

func (req usageRequest) input(key string) (ledger.UsageInput, error) {
	ref, err := bodyCustomer(req.CustomerID, req.ExternalCustomerID)
	if err != nil {
		return ledger.UsageInput{}, err
	}
	if req.BillableMetricKey == "" {
		return ledger.UsageInput{}, credit.Invalid("billable_metric_key", "is required")
	}
	if req.Units == nil {
		return ledger.UsageInput{}, credit.Invalid("units", "is required")
	}
	if *req.Units < 1 {
		return ledger.UsageInput{}, credit.Invalid("units", "must be an integer ≥ 1")
	}
	return ledger.UsageInput{Customer: ref, MetricKey: req.BillableMetricKey, Units: *req.Units,
		Metadata: json.RawMessage(req.Metadata), IdempotencyKey: key}, nil
}

// usageJSON is the answer to one usage event.
type usageJSON struct {
	EventID        string `json:"event_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Status         string `json:"status"`
	EstimatedCost  int64  `json:"estimated_cost"`
	Duplicate      bool   `json:"duplicate"`
}

func usageOut(res ledger.UsageResult) usageJSON {
	return usageJSON{EventID: res.Event.ID, IdempotencyKey: res.Event.IdempotencyKey, Status: "accepted", EstimatedCost: res.Event.Cost}
}

// markDuplicate rewrites a stored usage answer for its replay.
func markDuplicate(body []byte) []byte {
	var u usageJSON
	if err := json.Unmarshal(body, &u); err != nil {
		return body
	}
	u.Duplicate = true
	b, err := json.Marshal(u)
	if err != nil {
		return body
	}
	return b
}

func (s *Server) handleUsage() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get("Idempotency-Key")
		return s.idempotent(w, r, func(body []byte) (mutation, error) {
			var req usageRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			in, err := req.input(key)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *ledger.Tx) (result, error) {
				res, err := tx.RecordUsage(ctx, in)
				return result{http.StatusOK, usageOut(res), true}, err
			}, nil
		}, markDuplicate)
	}
}

// maxBatch is the most events one batch may carry.
const maxBatch = 1000

type batchRequest struct {
	Events []json.RawMessage `json:"events"`
}

type batchResult struct {
	Index         int      `json:"index"`
	Status        string   `json:"status"`
	EventID       *string  `json:"event_id"`
	EstimatedCost *int64   `json:"estimated_cost"`
	Duplicate     bool     `json:"duplicate"`
	Error         *Problem `json:"error"`
}

type batchJSON struct {
	Results []batchResult `json:"results"`
}

// handleUsageBatch records many events in one transaction. Each event has
// its own idempotency key and its own fate: a rejected event (400, 402, 404,
// 422) rejects only itself.
func (s *Server) handleUsageBatch() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		batchKey := r.Header.Get("Idempotency-Key")
		return s.idempotent(w, r, func(body []byte) (mutation, error) {
			var req batchRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			if req.Events == nil {
				return nil, credit.Invalid("events", "is required: an array of usage events")
			}
			if len(req.Events) > maxBatch {
				return nil, credit.Invalid("events", "may hold at most 1000 events")
			}
			keys, customers := batchLocks(req.Events, batchKey)
			return func(ctx context.Context, tx *ledger.Tx) (result, error) {
				if err := tx.LockInOrder(ctx, keys, customers); err != nil {
					return result{}, err
				}
				out := batchJSON{Results: make([]batchResult, len(req.Events))}
				changed := false
				for i, raw := range req.Events {
					res, err := s.batchEvent(ctx, tx, raw, batchKey)
					if err != nil && credit.ErrorCode(err) == "" {
						return result{}, err // the database failed: the whole batch rolls back
					}
					res.Index = i
					if err != nil {
						p := problemOf(err)
						res.Status, res.Error = "rejected", &p
					}
					changed = changed || (res.Status == "accepted" && !res.Duplicate)
					out.Results[i] = res
				}
				return result{http.StatusOK, out, changed}, nil
			}, nil
		}, markBatchDuplicate)
	}
}

// batchLocks lists the idempotency keys and customers a batch's events name,
// for LockInOrder. Events that do not parse are skipped: they are rejected
// later without touching anything.
func batchLocks(events []json.RawMessage, batchKey string) (keys []string, customers []ledger.CustomerRef) {
	for _, raw := range events {
		var ev usageRequest
		if json.Unmarshal(raw, &ev) != nil {
			continue
		}
		if ev.IdempotencyKey != "" && ev.IdempotencyKey != batchKey {
			keys = append(keys, ev.IdempotencyKey)
		}
		if (ev.CustomerID == "") != (ev.ExternalCustomerID == "") {
			customers = append(customers, ledger.CustomerRef{ID: ev.CustomerID, ExternalID: ev.ExternalCustomerID})
		}
	}
	return keys, customers
}

// batchEvent records one event of a batch whose own Idempotency-Key is
// batchKey.
func (s *Server) batchEvent(ctx context.Context, tx *ledger.Tx, raw json.RawMessage, batchKey string) (batchResult, error) {
	var req usageRequest
	if err := decode(raw, &req); err != nil {
		var ce *credit.Error
		if errors.As(err, &ce) && len(ce.Fields) == 1 && ce.Fields[0].Field == "body" {
			ce.Fields[0].Field = "event"
		}
		return batchResult{}, err
	}
	if req.IdempotencyKey == "" {
		return batchResult{}, credit.Invalid("idempotency_key", "is required on every batch event")
	}
	if len(req.IdempotencyKey) > maxKeyLen {
		return batchResult{}, credit.Invalid("idempotency_key", "must be at most 255 characters")
	}
	if req.IdempotencyKey == batchKey {
		// The batch stores its own response under batchKey when it commits:
		// an event may not take the key of another request, this one included.
		return batchResult{}, credit.Errorf(credit.EIdempotencyReused,
			"idempotency_key %q is the batch's own Idempotency-Key; give each event a key of its own", batchKey)
	}
	rec, found, err := tx.Replay(ctx, req.IdempotencyKey, http.MethodPost, usagePath)
	if err != nil {
		return batchResult{}, err
	}
	if found {
		var u usageJSON
		if err := json.Unmarshal(rec.Body, &u); err != nil {
			return batchResult{}, err
		}
		return batchResult{Status: "accepted", EventID: &u.EventID, EstimatedCost: &u.EstimatedCost, Duplicate: true}, nil
	}
	in, err := req.input(req.IdempotencyKey)
	if err != nil {
		return batchResult{}, err
	}
	res, err := tx.RecordUsage(ctx, in)
	if err != nil {
		return batchResult{}, err
	}
	body, err := marshal(usageOut(res))
	if err != nil {
		return batchResult{}, err
	}
	if err := tx.Remember(ctx, req.IdempotencyKey, http.MethodPost, usagePath, http.StatusOK, body); err != nil {
		return batchResult{}, err
	}
	return batchResult{Status: "accepted", EventID: &res.Event.ID, EstimatedCost: &res.Event.Cost}, nil
}

// markBatchDuplicate marks every accepted event of a replayed batch as a
// duplicate, as a replayed single event is.
func markBatchDuplicate(body []byte) []byte {
	var b batchJSON
	if err := json.Unmarshal(body, &b); err != nil {
		return body
	}
	for i := range b.Results {
		if b.Results[i].Status == "accepted" {
			b.Results[i].Duplicate = true
		}
	}
	out, err := json.Marshal(b)
	if err != nil {
		return body
	}
	return out
}

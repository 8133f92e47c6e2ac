package httpapi

import (
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
	if req.Units == nil {
		return ledger.UsageInput{}, credit.Invalid("units", "is required")
	}
	in := ledger.UsageInput{Customer: ref, MetricKey: req.BillableMetricKey, Units: *req.Units,
		Metadata: json.RawMessage(req.Metadata), IdempotencyKey: key}
	return in, in.Validate()
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
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req usageRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			in, err := req.input(key)
			if err != nil {
				return nil, err
			}
			return ledger.Usage{In: in, Encode: encodeAs(http.StatusOK, usageOut)}, nil
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

// handleUsageBatch records many events with one service call. Each event
// has its own idempotency key and its own fate: a rejected event (400, 402,
// 404, 422) rejects only itself.
func (s *Server) handleUsageBatch() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
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
			events := make([]ledger.BatchEvent, len(req.Events))
			for i, raw := range req.Events {
				events[i] = batchEvent(raw)
			}
			return ledger.UsageBatch{
				Events: events, EventMethod: http.MethodPost, EventPath: usagePath,
				EncodeEvent: encodeAs(http.StatusOK, usageOut), Encode: encodeAs(http.StatusOK, batchOut),
			}, nil
		}, markBatchDuplicate)
	}
}

// batchEvent decodes one event of a batch. An event that is not an object or
// has no usable key is rejected before anything; any other fault of its
// body counts only if its key was not used before (a replay ignores the
// body).
func batchEvent(raw json.RawMessage) ledger.BatchEvent {
	var req usageRequest
	if err := decode(raw, &req); err != nil {
		var ce *credit.Error
		if errors.As(err, &ce) && len(ce.Fields) == 1 && ce.Fields[0].Field == "body" {
			ce.Fields[0].Field = "event"
		}
		return ledger.BatchEvent{Malformed: err}
	}
	if req.IdempotencyKey == "" {
		return ledger.BatchEvent{Malformed: credit.Invalid("idempotency_key", "is required on every batch event")}
	}
	if len(req.IdempotencyKey) > maxKeyLen {
		return ledger.BatchEvent{Malformed: credit.Invalid("idempotency_key", "must be at most 255 characters")}
	}
	in, err := req.input(req.IdempotencyKey)
	in.IdempotencyKey = req.IdempotencyKey
	return ledger.BatchEvent{In: in, Invalid: err}
}

func batchOut(results []ledger.BatchResult) batchJSON {
	out := batchJSON{Results: make([]batchResult, len(results))}
	for i, res := range results {
		r := batchResult{Index: i}
		switch {
		case res.Err != nil:
			p := problemOf(res.Err)
			r.Status, r.Error = "rejected", &p
		case res.Duplicate:
			var u usageJSON
			if err := json.Unmarshal(res.Stored, &u); err == nil {
				r.EventID, r.EstimatedCost = &u.EventID, &u.EstimatedCost
			}
			r.Status, r.Duplicate = "accepted", true
		default:
			r.Status, r.EventID, r.EstimatedCost = "accepted", &res.Result.Event.ID, &res.Result.Event.Cost
		}
		out.Results[i] = r
	}
	return out
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

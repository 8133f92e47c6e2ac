package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	json2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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
	if err := checkID("billable_metric_key", req.BillableMetricKey); err != nil {
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
	// BalanceAfter is the account's balance right after the debit, as in
	// the ledger (the entitlement check's is the effective balance after a
	// would-be debit).
	BalanceAfter     int64            `json:"balance_after"`
	EffectiveBalance int64            `json:"effective_balance"`
	Breakdown        []blockDebitJSON `json:"breakdown"`
	Duplicate        bool             `json:"duplicate"`
}

// blockDebitJSON is one block's share of a debit: which credits paid, and what
// put them first in the burn order.
type blockDebitJSON struct {
	BlockID   string `json:"block_id"`
	Amount    int64  `json:"amount"`
	Priority  int    `json:"priority"`
	ExpiresAt Time   `json:"expires_at"`
	Source    string `json:"source"`
}

func breakdownOut(ds []ledger.BlockDebit) []blockDebitJSON {
	out := make([]blockDebitJSON, len(ds))
	for i, d := range ds {
		out[i] = blockDebitJSON{BlockID: d.BlockID, Amount: d.Amount, Priority: d.Priority, ExpiresAt: Time(d.ExpiresAt), Source: d.Source}
	}
	return out
}

func usageOut(res ledger.UsageResult) usageJSON {
	return usageJSON{EventID: res.Event.ID, IdempotencyKey: res.Event.IdempotencyKey, Status: "accepted",
		EstimatedCost: res.Event.Cost, BalanceAfter: res.Customer.Account.Balance, EffectiveBalance: res.EffectiveBalance,
		Breakdown: breakdownOut(res.Breakdown)}
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
			raws, err := batchEvents(body)
			if err != nil {
				return nil, err
			}
			if len(raws) > maxBatch {
				return nil, credit.Invalid("events", fmt.Sprintf("may hold at most %d events", maxBatch))
			}
			events := make([]ledger.BatchEvent, len(raws))
			for i, raw := range raws {
				events[i] = batchEvent(raw)
			}
			return ledger.UsageBatch{
				Events: events, EventMethod: http.MethodPost, EventPath: usagePath,
				EncodeEvent: encodeAs(http.StatusOK, usageOut), Encode: encodeAs(http.StatusOK, batchOut),
			}, nil
		}, markBatchDuplicate)
	}
}

// batchEvents returns the events of a batch body, each still raw. The body
// is held to decode's rules everywhere but inside the events, where a
// repeated name or a lone surrogate is left for batchEvent to reject with
// its event alone: only a missing or malformed events array fails the whole
// batch.
func batchEvents(body []byte) ([]jsontext.Value, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	// checkJSON found one well-formed object, so reading it cannot fail.
	d := jsontext.NewDecoder(bytes.NewReader(body), lenient...)
	d.ReadToken()
	var events jsontext.Value
	seen := map[string]bool{}
	for d.PeekKind() == '"' {
		quoted, _ := d.ReadValue()
		name, err := jsontext.AppendUnquote(nil, quoted)
		if err != nil {
			return nil, credit.Invalid("body", "member names must be valid Unicode: "+err.Error())
		}
		v, _ := d.ReadValue()
		field := fieldOf(jsontext.Pointer("").AppendToken(string(name)))
		if seen[string(name)] {
			return nil, credit.Invalid(field, "appears more than once in its object")
		}
		seen[string(name)] = true
		if string(name) == "events" {
			events = v.Clone() // v lives only until the next read
		} else if !v.IsValid() {
			return nil, credit.Invalid(field, "holds a repeated name or a lone surrogate escape")
		}
	}
	var raws []jsontext.Value
	if len(events) > 0 {
		if err := json2.Unmarshal(events, &raws, lenient...); err != nil {
			return nil, credit.Invalid("events", "must be an array of usage events")
		}
	}
	if raws == nil {
		return nil, credit.Invalid("events", "is required: an array of usage events")
	}
	return raws, nil
}

// batchEvent decodes one event of a batch. An event that is not an object or
// has no usable key is rejected before anything; any other fault of its
// body counts only if its key was not used before (a replay ignores the
// body).
func batchEvent(raw jsontext.Value) ledger.BatchEvent {
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
	if err := checkID("idempotency_key", req.IdempotencyKey); err != nil {
		return ledger.BatchEvent{Malformed: err}
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

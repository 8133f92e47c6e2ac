package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The API's objects, as the tests read them.

type customerResp struct {
	ID          string         `json:"id"`
	ExternalID  *string        `json:"external_id"`
	DisplayName string         `json:"display_name"`
	Metadata    map[string]any `json:"metadata"`
	CreatedAt   string         `json:"created_at"`
}

type blockResp struct {
	ID                 string         `json:"id"`
	CustomerID         string         `json:"customer_id"`
	ExternalCustomerID *string        `json:"external_customer_id"`
	OriginalAmount     int64          `json:"original_amount"`
	RemainingAmount    int64          `json:"remaining_amount"`
	Priority           int            `json:"priority"`
	ExpiresAt          *string        `json:"expires_at"`
	Source             string         `json:"source"`
	Reason             *string        `json:"reason"`
	PricePaid          int64          `json:"price_paid"`
	Currency           *string        `json:"currency"`
	ExternalPaymentID  *string        `json:"external_payment_id"`
	Metadata           map[string]any `json:"metadata"`
	CreatedAt          string         `json:"created_at"`
}

type balanceResp struct {
	CustomerID         string      `json:"customer_id"`
	ExternalCustomerID *string     `json:"external_customer_id"`
	Balance            int64       `json:"balance"`
	ReservedBalance    int64       `json:"reserved_balance"`
	EffectiveBalance   int64       `json:"effective_balance"`
	LifetimeEarned     int64       `json:"lifetime_earned"`
	Version            int64       `json:"version"`
	Blocks             []blockResp `json:"blocks"`
}

type usageResp struct {
	EventID        string `json:"event_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Status         string `json:"status"`
	EstimatedCost  int64  `json:"estimated_cost"`
	Duplicate      bool   `json:"duplicate"`
}

type entryResp struct {
	ID             string         `json:"id"`
	CustomerID     string         `json:"customer_id"`
	Type           string         `json:"type"`
	Delta          int64          `json:"delta"`
	BalanceAfter   int64          `json:"balance_after"`
	BlockID        *string        `json:"block_id"`
	ReferenceType  *string        `json:"reference_type"`
	ReferenceID    *string        `json:"reference_id"`
	IdempotencyKey *string        `json:"idempotency_key"`
	TransactionID  *string        `json:"transaction_id"`
	Metadata       map[string]any `json:"metadata"`
	CreatedAt      string         `json:"created_at"`
}

type pagination struct {
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

type listResp[T any] struct {
	Data       []T        `json:"data"`
	Pagination pagination `json:"pagination"`
}

// obj is a JSON object to send.
type obj = map[string]any

// ext returns the path of an external id's resource under
// /v1/customer-by-external-id, escaped.
func ext(externalID, rest string) string {
	return "/v1/customer-by-external-id/" + url.PathEscape(externalID) + rest
}

func (ts *testServer) createCustomer(t *testing.T, externalID string) customerResp {
	t.Helper()
	var c customerResp
	ts.post(t, "/v1/customers", obj{"external_id": externalID}).want(t, http.StatusCreated).decode(t, &c)
	return c
}

// createMetric creates a billable metric key with a rule (nil: none).
func (ts *testServer) createMetric(t *testing.T, key string, rule obj) {
	t.Helper()
	ts.post(t, "/v1/billable-metrics", obj{"key": key}).want(t, http.StatusCreated)
	if rule != nil {
		ts.createRule(t, key, rule)
	}
}

func (ts *testServer) createRule(t *testing.T, key string, rule obj) {
	t.Helper()
	body := obj{"billable_metric_key": key}
	for k, v := range rule {
		body[k] = v
	}
	ts.post(t, "/v1/metering-rules", body).want(t, http.StatusCreated)
}

// perUnit is a per_unit rule of cost mc per unit: units are the price.
func perUnit(cost int64) obj { return obj{"cost_type": "per_unit", "unit_cost": cost} }

// grant tops up externalID with credits; extra adds fields to the body.
func (ts *testServer) grant(t *testing.T, externalID string, credits int64, extra obj) blockResp {
	t.Helper()
	body := obj{"external_customer_id": externalID, "credits": credits}
	for k, v := range extra {
		body[k] = v
	}
	var b blockResp
	ts.post(t, "/v1/topup/grant", body).want(t, http.StatusCreated).decode(t, &b)
	return b
}

// usage sends one usage event for externalID.
func (ts *testServer) usage(t *testing.T, externalID, metric string, units int64) resp {
	t.Helper()
	return ts.post(t, "/v1/usage", obj{"external_customer_id": externalID, "billable_metric_key": metric, "units": units})
}

// balance reads externalID's balance with its blocks.
func (ts *testServer) balance(t *testing.T, externalID string) balanceResp {
	t.Helper()
	var b balanceResp
	ts.get(t, ext(externalID, "/credits?include_blocks=true")).want(t, http.StatusOK).decode(t, &b)
	return b
}

// ledger reads externalID's whole ledger, newest first, one page at a time.
func (ts *testServer) ledger(t *testing.T, externalID string) []entryResp {
	t.Helper()
	var all []entryResp
	path := ext(externalID, "/ledger?limit=500")
	for {
		var page listResp[entryResp]
		ts.get(t, path).want(t, http.StatusOK).decode(t, &page)
		all = append(all, page.Data...)
		if !page.Pagination.HasMore {
			return all
		}
		path = ext(externalID, "/ledger?limit=500&cursor="+url.QueryEscape(*page.Pagination.NextCursor))
	}
}

// checkLedgerSum fails unless the ledger's deltas add up to the balance.
func (ts *testServer) checkLedgerSum(t *testing.T, externalID string) {
	t.Helper()
	var sum int64
	for _, e := range ts.ledger(t, externalID) {
		sum += e.Delta
	}
	if b := ts.balance(t, externalID); sum != b.Balance {
		t.Errorf("customer %q: Σ ledger delta = %d, balance = %d", externalID, sum, b.Balance)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// jsonOf returns v's JSON.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %v: %v", v, err)
	}
	return string(b)
}

// drop, as a value in a test table's body, removes the field.
var drop = &struct{ name string }{"drop"}

const hour = time.Hour

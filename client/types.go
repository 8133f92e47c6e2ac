package client

import (
	"encoding/json"
	"time"
)

// The types below mirror the API's JSON (docs/api.md). Amounts are int64
// millicredits (1 credit = 1,000 mc). A string the API answers as null is ""
// here; a time it answers as null (a block that never expires) is nil.
//
// Every answer type has Raw: the object exactly as the server answered it,
// for callers that pass the API's JSON on (creditd's CLI prints it for
// --json). It is set when the value is decoded and not updated when a field
// changes.

// Customer is the customer object.
type Customer struct {
	ID          string          `json:"id"`
	ExternalID  string          `json:"external_id"`
	DisplayName string          `json:"display_name"`
	Metadata    json.RawMessage `json:"metadata"`
	CreatedAt   time.Time       `json:"created_at"`
	Raw         json.RawMessage `json:"-"`
}

// CustomerRequest creates a customer (POST /v1/customers).
type CustomerRequest struct {
	WriteOptions
	ExternalID  string `json:"external_id,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Metadata    any    `json:"metadata,omitempty"` // a JSON object: a map, a struct or json.RawMessage
}

// Metric is a billable metric.
type Metric struct {
	ID          string          `json:"id"`
	Key         string          `json:"key"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	CreatedAt   time.Time       `json:"created_at"`
	Raw         json.RawMessage `json:"-"`
}

// MetricRequest creates a billable metric (POST /v1/billable-metrics).
type MetricRequest struct {
	WriteOptions
	Key         string `json:"key"`
	Name        string `json:"name,omitempty"` // the key when empty
	Description string `json:"description,omitempty"`
}

// Cost types of a metering rule.
const (
	CostFlat    = "flat"
	CostPerUnit = "per_unit"
	CostTiered  = "tiered"
)

// Tier is one tier of a tiered rule; UpTo is inclusive, nil on the last.
type Tier struct {
	UpTo     *int64 `json:"up_to"`
	UnitCost int64  `json:"unit_cost"`
	FlatCost int64  `json:"flat_cost,omitempty"`
}

// RuleRequest creates a metering rule (POST /v1/metering-rules), which
// supersedes the metric's active rule. Each cost type reads its own fields:
// flat FlatCost; per_unit UnitCost and UnitSize (default 1), cost =
// ⌈units × unit_cost ÷ unit_size⌉; tiered TierMode (graduated or volume)
// and Tiers.
type RuleRequest struct {
	WriteOptions
	BillableMetricKey string `json:"billable_metric_key"`
	CostType          string `json:"cost_type"`
	FlatCost          *int64 `json:"flat_cost,omitempty"`
	UnitCost          *int64 `json:"unit_cost,omitempty"`
	UnitSize          *int64 `json:"unit_size,omitempty"`
	TierMode          string `json:"tier_mode,omitempty"`
	Tiers             []Tier `json:"tiers,omitempty"`
}

// Rule is a metering rule; only the fields of its cost type are set.
type Rule struct {
	ID                string          `json:"id"`
	BillableMetricKey string          `json:"billable_metric_key"`
	CostType          string          `json:"cost_type"`
	FlatCost          *int64          `json:"flat_cost,omitempty"`
	UnitCost          *int64          `json:"unit_cost,omitempty"`
	UnitSize          *int64          `json:"unit_size,omitempty"`
	TierMode          string          `json:"tier_mode,omitempty"`
	Tiers             []Tier          `json:"tiers,omitempty"`
	Active            bool            `json:"active"`
	CreatedAt         time.Time       `json:"created_at"`
	Raw               json.RawMessage `json:"-"`
}

// GrantRequest grants a credit block (POST /v1/topup/grant). Exactly one of
// CustomerID and ExternalCustomerID; an unknown external id is created.
type GrantRequest struct {
	WriteOptions
	CustomerID         string     `json:"customer_id,omitempty"`
	ExternalCustomerID string     `json:"external_customer_id,omitempty"`
	Credits            int64      `json:"credits"`            // millicredits, ≥ 1
	Priority           int        `json:"priority,omitempty"` // 0–100; higher burns first
	ExpiresAt          *time.Time `json:"expires_at,omitempty"`
	Source             string     `json:"source,omitempty"` // "topup" when empty
	Reason             string     `json:"reason,omitempty"`
	PricePaid          int64      `json:"price_paid,omitempty"` // minor units of Currency
	Currency           string     `json:"currency,omitempty"`
	ExternalPaymentID  string     `json:"external_payment_id,omitempty"`
	Metadata           any        `json:"metadata,omitempty"`
}

// Block is a credit block.
type Block struct {
	ID                 string          `json:"id"`
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID string          `json:"external_customer_id"`
	OriginalAmount     int64           `json:"original_amount"`
	RemainingAmount    int64           `json:"remaining_amount"`
	Priority           int             `json:"priority"`
	ExpiresAt          *time.Time      `json:"expires_at"` // nil: never expires
	Source             string          `json:"source"`
	Reason             string          `json:"reason"`
	PricePaid          int64           `json:"price_paid"`
	Currency           string          `json:"currency"`
	ExternalPaymentID  string          `json:"external_payment_id"`
	Metadata           json.RawMessage `json:"metadata"`
	CreatedAt          time.Time       `json:"created_at"`
	Raw                json.RawMessage `json:"-"`
}

// Balance is a customer's balance; Blocks (live blocks in burn order) only
// when asked for.
type Balance struct {
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID string          `json:"external_customer_id"`
	Balance            int64           `json:"balance"`
	ReservedBalance    int64           `json:"reserved_balance"`
	EffectiveBalance   int64           `json:"effective_balance"`
	LifetimeEarned     int64           `json:"lifetime_earned"`
	Version            int64           `json:"version"`
	Blocks             []Block         `json:"blocks,omitempty"`
	Raw                json.RawMessage `json:"-"`
}

// LedgerEntry is one entry of a customer's ledger.
type LedgerEntry struct {
	ID             string          `json:"id"`
	CustomerID     string          `json:"customer_id"`
	Type           string          `json:"type"` // grant, usage, purchase, expire, reserve, commit, release, adjustment
	Delta          int64           `json:"delta"`
	BalanceAfter   int64           `json:"balance_after"`
	BlockID        string          `json:"block_id"`
	ReferenceType  string          `json:"reference_type"`
	ReferenceID    string          `json:"reference_id"`
	IdempotencyKey string          `json:"idempotency_key"`
	TransactionID  string          `json:"transaction_id"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      time.Time       `json:"created_at"`
	Raw            json.RawMessage `json:"-"`
}

// UsageRequest records one usage event (POST /v1/usage). Exactly one of
// CustomerID and ExternalCustomerID; an unknown external id is created when
// the event is accepted.
type UsageRequest struct {
	WriteOptions
	CustomerID         string `json:"customer_id,omitempty"`
	ExternalCustomerID string `json:"external_customer_id,omitempty"`
	BillableMetricKey  string `json:"billable_metric_key"`
	Units              int64  `json:"units"`
	Metadata           any    `json:"metadata,omitempty"`
}

// BlockDebit is one block's share of a debit.
type BlockDebit struct {
	BlockID   string     `json:"block_id"`
	Amount    int64      `json:"amount"`
	Priority  int        `json:"priority"`
	ExpiresAt *time.Time `json:"expires_at"`
	Source    string     `json:"source"`
}

// UsageResult is the answer to a usage event. Duplicate is true when the
// key had been used before and this is that event's stored answer.
type UsageResult struct {
	EventID          string          `json:"event_id"`
	IdempotencyKey   string          `json:"idempotency_key"`
	Status           string          `json:"status"`
	EstimatedCost    int64           `json:"estimated_cost"`
	BalanceAfter     int64           `json:"balance_after"`
	EffectiveBalance int64           `json:"effective_balance"`
	Breakdown        []BlockDebit    `json:"breakdown"`
	Duplicate        bool            `json:"duplicate"`
	Raw              json.RawMessage `json:"-"`
}

// UsageEvent is one event of a batch. An empty IdempotencyKey is derived
// from the batch's key and the event's index, so that a retry of the batch
// sends the same event keys.
type UsageEvent struct {
	IdempotencyKey     string `json:"idempotency_key"`
	CustomerID         string `json:"customer_id,omitempty"`
	ExternalCustomerID string `json:"external_customer_id,omitempty"`
	BillableMetricKey  string `json:"billable_metric_key"`
	Units              int64  `json:"units"`
	Metadata           any    `json:"metadata,omitempty"`
}

// UsageBatchRequest records up to 1,000 events in one request (POST
// /v1/usage/batch); each event is accepted or rejected alone.
type UsageBatchRequest struct {
	WriteOptions
	Events []UsageEvent `json:"events"`
}

// Problem is a problem inside an answer: a rejected batch event's.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	Code      string       `json:"code"`
	Errors    []FieldError `json:"errors,omitempty"`
	Required  int64        `json:"required,omitempty"`
	Available int64        `json:"available,omitempty"`
}

// BatchEventResult is one event's fate, in input order.
type BatchEventResult struct {
	Index         int      `json:"index"`
	Status        string   `json:"status"` // accepted or rejected
	EventID       string   `json:"event_id"`
	EstimatedCost int64    `json:"estimated_cost"`
	Duplicate     bool     `json:"duplicate"`
	Error         *Problem `json:"error"`
}

// UsageBatchResult is the answer to a batch.
type UsageBatchResult struct {
	Results []BatchEventResult `json:"results"`
	Raw     json.RawMessage    `json:"-"`
}

// Entitlement is the answer of an entitlement check: could the customer
// afford Units of the metric now? BalanceAfter is negative when not.
type Entitlement struct {
	Allowed            bool            `json:"allowed"`
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID string          `json:"external_customer_id"`
	BillableMetricKey  string          `json:"billable_metric_key"`
	Units              int64           `json:"units"`
	Balance            int64           `json:"balance"`
	ReservedBalance    int64           `json:"reserved_balance"`
	EffectiveBalance   int64           `json:"effective_balance"`
	EstimatedCost      int64           `json:"estimated_cost"`
	BalanceAfter       int64           `json:"balance_after"`
	OveragePolicy      string          `json:"overage_policy"`
	Breakdown          []BlockDebit    `json:"breakdown"`
	Raw                json.RawMessage `json:"-"`
}

// Tenant is the key's tenant and environment (test or live).
type Tenant struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Environment string          `json:"environment"`
	Raw         json.RawMessage `json:"-"`
}

// Pagination is a list's paging part: pass NextCursor as the next page's
// Cursor while HasMore.
type Pagination struct {
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor"`
}

// Page is one page of a list; Raw is the whole page as answered.
type Page[T any] struct {
	Data       []T             `json:"data"`
	Pagination Pagination      `json:"pagination"`
	Raw        json.RawMessage `json:"-"`
}

// ListOptions pages a list: Limit 1–500 (0: the server's 50), Cursor from
// the page before ("" for the first).
type ListOptions struct {
	Limit  int
	Cursor string
}

// LedgerOptions pages a ledger, newest entry first, and Type keeps one type
// of entry ("" for all).
type LedgerOptions struct {
	Type   string
	Limit  int
	Cursor string
}

// UnmarshalJSON implementations keep the object as answered in Raw; the
// alias types decode the fields without recursing.

func (v *Customer) UnmarshalJSON(b []byte) error {
	type plain Customer
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *Metric) UnmarshalJSON(b []byte) error {
	type plain Metric
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *Rule) UnmarshalJSON(b []byte) error {
	type plain Rule
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *Block) UnmarshalJSON(b []byte) error {
	type plain Block
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *Balance) UnmarshalJSON(b []byte) error {
	type plain Balance
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *LedgerEntry) UnmarshalJSON(b []byte) error {
	type plain LedgerEntry
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *UsageResult) UnmarshalJSON(b []byte) error {
	type plain UsageResult
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *UsageBatchResult) UnmarshalJSON(b []byte) error {
	type plain UsageBatchResult
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *Entitlement) UnmarshalJSON(b []byte) error {
	type plain Entitlement
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *Tenant) UnmarshalJSON(b []byte) error {
	type plain Tenant
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func decodeRaw(b []byte, fields any, raw *json.RawMessage) error {
	if err := json.Unmarshal(b, fields); err != nil {
		return err
	}
	// b belongs to the decoder's buffer only for this call.
	*raw = append(json.RawMessage(nil), b...)
	return nil
}

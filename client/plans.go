package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Plan is a plan of the catalog: a price in mc for credits granted as one
// block (docs/api.md, "Plans and purchases"). DurationSeconds is nil for
// credits that never expire.
type Plan struct {
	ID                 string          `json:"id"`
	Key                string          `json:"key"`
	Name               string          `json:"name"`
	Price              int64           `json:"price"`
	Credits            int64           `json:"credits"`
	Priority           int             `json:"priority"`
	DurationSeconds    *int64          `json:"duration_seconds"`
	PayFromMaxPriority int             `json:"pay_from_max_priority"`
	Metadata           json.RawMessage `json:"metadata"`
	Active             bool            `json:"active"`
	CreatedAt          time.Time       `json:"created_at"`
	Raw                json.RawMessage `json:"-"`
}

// PlanRequest creates a plan (POST /v1/plans). Price and Credits are
// required (a free plan says Price 0); Priority nil is 10, DurationSeconds
// nil never expires, PayFromMaxPriority nil is 0.
type PlanRequest struct {
	WriteOptions
	Key                string `json:"key"`
	Name               string `json:"name"`
	Price              int64  `json:"price"`
	Credits            int64  `json:"credits"`
	Priority           *int   `json:"priority,omitempty"`
	DurationSeconds    *int64 `json:"duration_seconds,omitempty"`
	PayFromMaxPriority *int   `json:"pay_from_max_priority,omitempty"`
	Metadata           any    `json:"metadata,omitempty"`
}

// PlanDebit is one block a purchase was paid from.
type PlanDebit struct {
	BlockID string `json:"block_id"`
	Amount  int64  `json:"amount"`
}

// Purchase is a plan bought: the price debited (Debits, in burn order) and
// the plan's credits granted (Block), in one transaction. Duplicate says the
// order had been bought before: nothing was written this time.
type Purchase struct {
	ID                 string          `json:"id"`
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID string          `json:"external_customer_id"`
	PlanKey            string          `json:"plan_key"`
	OrderID            string          `json:"order_id"`
	Price              int64           `json:"price"`
	Credits            int64           `json:"credits"`
	Block              Block           `json:"block"`
	Debits             []PlanDebit     `json:"debits"`
	BalanceAfter       int64           `json:"balance_after"`
	EffectiveBalance   int64           `json:"effective_balance"`
	Metadata           json.RawMessage `json:"metadata"`
	Duplicate          bool            `json:"duplicate"`
	CreatedAt          time.Time       `json:"created_at"`
	Raw                json.RawMessage `json:"-"`
}

// PurchaseRequest buys a plan for an order. The order id is the purchase's
// identity: the same order again answers the stored purchase (Duplicate).
type PurchaseRequest struct {
	WriteOptions
	PlanKey  string `json:"plan_key"`
	OrderID  string `json:"order_id"`
	Metadata any    `json:"metadata,omitempty"`
}

// Problem codes of plans and purchases.
const (
	CodePlanExists   = "plan-exists"
	CodePlanArchived = "plan-archived"
	CodeOrderExists  = "order-exists"
)

// CreatePlan adds a plan to the catalog (201). A key taken is a 409
// plan-exists *Error.
func (c *Client) CreatePlan(ctx context.Context, req PlanRequest) (*Plan, error) {
	return one[Plan](ctx, c, c.write("/v1/plans", req.WriteOptions, req))
}

// GetPlan reads a plan by its key, archived or not.
func (c *Client) GetPlan(ctx context.Context, key string) (*Plan, error) {
	return one[Plan](ctx, c, call{method: http.MethodGet, path: "/v1/plans/" + segment(key)})
}

// Plans reads one page of the catalog, in creation order.
func (c *Client) Plans(ctx context.Context, opts ListOptions) (*Page[Plan], error) {
	return getPage[Plan](ctx, c, "/v1/plans", opts.query())
}

// ArchivePlan takes a plan out of sale; it stays readable.
func (c *Client) ArchivePlan(ctx context.Context, key string, o WriteOptions) (*Plan, error) {
	return one[Plan](ctx, c, c.write("/v1/plans/"+segment(key)+"/archive", o, struct{}{}))
}

// Purchase buys a plan for the customer: the price is debited from its
// payable blocks and the plan's credits granted, or, short of payable
// credits, a 402 insufficient-credits *Error and nothing is written. Named
// by external id, an unknown customer is created when the purchase goes
// through; named by id, it must exist.
func (c *Client) Purchase(ctx context.Context, ref CustomerRef, req PurchaseRequest) (*Purchase, error) {
	path, err := ref.path()
	if err != nil {
		return nil, err
	}
	return one[Purchase](ctx, c, c.write(path+"/plan-purchases", req.WriteOptions, req))
}

// GetPurchase reads a purchase; its block as it is now.
func (c *Client) GetPurchase(ctx context.Context, id string) (*Purchase, error) {
	return one[Purchase](ctx, c, call{method: http.MethodGet, path: "/v1/plan-purchases/" + segment(id)})
}

// Purchases reads one page of a customer's purchases, newest first.
func (c *Client) Purchases(ctx context.Context, ref CustomerRef, opts ListOptions) (*Page[Purchase], error) {
	path, err := ref.path()
	if err != nil {
		return nil, err
	}
	return getPage[Purchase](ctx, c, path+"/plan-purchases", opts.query())
}

func (v *Plan) UnmarshalJSON(b []byte) error {
	type plain Plan
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

func (v *Purchase) UnmarshalJSON(b []byte) error {
	type plain Purchase
	return decodeRaw(b, (*plain)(v), &v.Raw)
}

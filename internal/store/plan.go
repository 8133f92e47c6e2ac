package store

import (
	"context"
	"encoding/json"
	"time"
)

// Plan is a plan of the tenant's catalog. Plans are immutable but for
// Active: a new price is a new plan.
type Plan struct {
	ID              string
	Key             string
	Name            string
	Price           int64 // millicredits debited from payable blocks
	Credits         int64 // millicredits of the plan's block
	Priority        int
	DurationSeconds int64 // the block's life from the purchase; 0: it never expires
	// PayFromMaxPriority is the highest block priority that may pay for the
	// plan: plan credits (priority 10) never pay for a plan by default.
	PayFromMaxPriority int
	Metadata           json.RawMessage
	Active             bool
	CreatedAt          time.Time
}

// PurchaseDebit is one block's share of a purchase's price.
type PurchaseDebit struct {
	BlockID string `json:"block_id"`
	Amount  int64  `json:"amount"`
}

// Purchase is one bought order: the price debited and the plan block
// granted, in one transaction. (customer, OrderID) is unique.
type Purchase struct {
	ID               string
	CustomerID       string
	PlanKey          string
	OrderID          string
	Price            int64
	Credits          int64
	BlockID          string
	Debits           []PurchaseDebit
	BalanceAfter     int64
	EffectiveBalance int64
	Metadata         json.RawMessage
	CreatedAt        time.Time
}

// PlanQ is the plan catalog and the purchases, part of Q. Plans are written
// inside Transact; purchases through WritesApply (Writes.Purchases), with
// the rest of their customer's rows.
type PlanQ interface {
	// PlanCreate fails with ErrConflict when the key is taken.
	PlanCreate(ctx context.Context, s Scope, p Plan) error
	PlanGet(ctx context.Context, s Scope, key string) (Plan, error)
	// PlanList lists in creation order; After is a plan id.
	PlanList(ctx context.Context, s Scope, p Page) ([]Plan, error)
	// PlanArchive sets the plan inactive; ErrNotFound for an unknown key.
	PlanArchive(ctx context.Context, s Scope, key string) error

	// PurchaseByOrder finds the customer's purchase of orderID.
	PurchaseByOrder(ctx context.Context, s Scope, customerID, orderID string) (Purchase, error)
	PurchaseGet(ctx context.Context, s Scope, id string) (Purchase, error)
	// PurchaseList lists a customer's purchases newest first; After is a
	// purchase id.
	PurchaseList(ctx context.Context, s Scope, customerID string, p Page) ([]Purchase, error)
}

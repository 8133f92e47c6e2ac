package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// PurchaseInput is an order of a plan by a customer.
type PurchaseInput struct {
	Customer CustomerRef
	// AutoCreate lets an unknown external id become a customer, as a grant
	// on the customer-by-external-id path does. It is written only if the
	// purchase is (a plan of price 0): a 402 creates nothing.
	AutoCreate     bool
	PlanKey        string
	OrderID        string
	Metadata       json.RawMessage
	IdempotencyKey string
}

// Validate checks the order's own fields.
func (in PurchaseInput) Validate() error {
	var fields credit.Fields
	if in.PlanKey == "" {
		fields.Add("plan_key", "is required")
	}
	if in.OrderID == "" {
		fields.Add("order_id", "is required: it is the purchase's identity, so that a retry never buys twice")
	}
	return fields.Err("the purchase is invalid")
}

// PurchaseResult is a purchase with its customer and the block it granted.
// Duplicate marks an order bought before: nothing was changed.
type PurchaseResult struct {
	Purchase  store.Purchase
	Customer  store.Customer
	Block     store.Block
	Duplicate bool
}

// Purchase buys a plan in one transaction: it debits the plan's price from
// the customer's payable blocks only (priority ≤ the plan's
// pay_from_max_priority, in burn order among them) and grants the plan's
// block, expiring duration_seconds after the purchase. The customer and the
// order id are the purchase's identity: the same order again answers the
// purchase made before (Duplicate), under any Idempotency-Key, so racing
// retries make one purchase. Not enough payable credits is an
// *credit.InsufficientError whose Available counts only payable credits,
// and writes nothing, not even the customer.
type Purchase struct {
	In     PurchaseInput
	Encode Encoder[PurchaseResult]
}

func (c Purchase) plan(p *plan) { p.customer(c.In.Customer) }
func (c Purchase) size() int    { return 1 }

type orderKey struct {
	scope    store.Scope
	customer string
	order    string
}

func (c Purchase) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	res, changed, err := g.purchase(ctx, req.Scope, c.In)
	if err != nil {
		return Response{}, false, err
	}
	status, body, err := c.Encode(res)
	return Response{Status: status, Body: body}, changed, err
}

func (g *group) purchase(ctx context.Context, scope store.Scope, in PurchaseInput) (PurchaseResult, bool, error) {
	if err := in.Validate(); err != nil {
		return PurchaseResult{}, false, err
	}
	acc, err := g.account(scope, in.Customer, in.AutoCreate)
	if err != nil {
		return PurchaseResult{}, false, err
	}
	// The order before the plan: a bought order answers its purchase even
	// after its plan was archived. The account's lock, held since the
	// group's load, keeps another purchase of this order out until commit.
	if prev, found, err := g.order(ctx, scope, acc, in.OrderID); err != nil {
		return PurchaseResult{}, false, err
	} else if found {
		if prev.PlanKey != in.PlanKey {
			e := credit.Errorf(credit.EOrderExists, "order %q was bought with plan %q; an order id names one purchase", in.OrderID, prev.PlanKey)
			e.Extra = map[string]any{"purchase_id": prev.ID, "plan_key": prev.PlanKey}
			return PurchaseResult{}, false, e
		}
		blk, err := g.purchasedBlock(ctx, scope, acc, prev)
		if err != nil {
			return PurchaseResult{}, false, err
		}
		return PurchaseResult{Purchase: prev, Customer: acc.customer, Block: blk, Duplicate: true}, false, nil
	}
	p, err := g.catalogPlan(ctx, scope, in.PlanKey)
	if err != nil {
		return PurchaseResult{}, false, err
	}
	if !p.Active {
		return PurchaseResult{}, false, credit.Errorf(credit.EPlanArchived, "plan %q is archived and can no longer be bought", p.Key)
	}

	// Tentatively on a copy: the grant can fail after the debit succeeded
	// (an overflowing balance), and a refused purchase changes nothing.
	state := acc.state.Clone()
	debits, err := state.DebitPayable(p.Price, p.PayFromMaxPriority, credit.EntryPurchase, g.now)
	if err != nil {
		return PurchaseResult{}, false, err
	}
	pur := store.Purchase{
		ID: ids.New(ids.Purchase), CustomerID: acc.customer.ID, PlanKey: p.Key, OrderID: in.OrderID,
		Price: p.Price, Credits: p.Credits, Metadata: in.Metadata, CreatedAt: g.now,
	}
	blk := store.Block{
		Block: credit.Block{
			ID: ids.New(ids.Block), Seq: state.Account.Version + 1, Original: p.Credits, Remaining: p.Credits, Priority: p.Priority,
		},
		CustomerID: acc.customer.ID, Source: "plan", CreatedAt: g.now,
	}
	if p.DurationSeconds > 0 {
		// Computed once, here: a retry never moves it.
		blk.ExpiresAt = g.now.Add(time.Duration(p.DurationSeconds) * time.Second)
	}
	granted, err := state.Grant(blk.Block)
	if err != nil {
		return PurchaseResult{}, false, err
	}
	acc.state = state
	for _, d := range debits {
		pur.Debits = append(pur.Debits, store.PurchaseDebit{BlockID: d.BlockID, Amount: -d.Delta})
	}
	pur.BlockID = blk.ID
	pur.BalanceAfter = state.Account.Balance
	live, err := credit.LiveBalance(state.Blocks, g.now)
	if err != nil {
		return PurchaseResult{}, false, err
	}
	pur.EffectiveBalance = credit.Effective(live, state.Account.Reserved)

	ref := entryRef{Type: "plan_purchase", ID: pur.ID, IdempotencyKey: in.IdempotencyKey}
	acc.stage(g, append(debits, granted), ref)
	acc.newBlocks = append(acc.newBlocks, blk)
	acc.purchases = append(acc.purchases, pur)
	g.orders[orderKey{scope, acc.customer.ID, in.OrderID}] = pur
	acc.accept(g)
	bought, block := pur, blk
	acc.note(g, &Event{Type: EventPlanPurchased, Purchase: &bought, Block: &block})
	return PurchaseResult{Purchase: pur, Customer: acc.customer, Block: blk}, true, nil
}

// order finds the account's purchase of orderID: made earlier in this group,
// or stored.
func (g *group) order(ctx context.Context, scope store.Scope, acc *account, orderID string) (store.Purchase, bool, error) {
	if p, ok := g.orders[orderKey{scope, acc.customer.ID, orderID}]; ok {
		return p, true, nil
	}
	if acc.isNew {
		return store.Purchase{}, false, nil
	}
	p, err := g.q.PurchaseByOrder(ctx, scope, acc.customer.ID, orderID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Purchase{}, false, nil
	}
	if err != nil {
		return store.Purchase{}, false, fmt.Errorf("find order %q: %w", orderID, err)
	}
	return p, true, nil
}

// purchasedBlock is the block a purchase granted, as it is now.
func (g *group) purchasedBlock(ctx context.Context, scope store.Scope, acc *account, p store.Purchase) (store.Block, error) {
	for _, b := range acc.newBlocks {
		if b.ID == p.BlockID {
			return b, nil
		}
	}
	b, err := g.q.BlockGet(ctx, scope, acc.customer.ID, p.BlockID)
	if err != nil {
		return store.Block{}, fmt.Errorf("block of purchase %s: %w", p.ID, err)
	}
	if cur, ok := acc.state.Lookup(p.BlockID); ok {
		b.Block = cur // as spent or expired so far in this group
	}
	return b, nil
}

// PurchaseRead is a stored purchase with its customer and block.
func (s *Service) PurchaseRead(ctx context.Context, scope store.Scope, id string) (PurchaseResult, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var res PurchaseResult
	err := s.store.Read(ctx, func(q store.Q) error {
		p, err := q.PurchaseGet(ctx, scope, id)
		if err != nil {
			return notFound(err, "no plan purchase %q", id)
		}
		c, err := q.CustomerGet(ctx, scope, p.CustomerID)
		if err != nil {
			return fmt.Errorf("customer of purchase %s: %w", id, err)
		}
		b, err := q.BlockGet(ctx, scope, p.CustomerID, p.BlockID)
		if err != nil {
			return fmt.Errorf("block of purchase %s: %w", id, err)
		}
		res = PurchaseResult{Purchase: p, Customer: c, Block: b}
		return nil
	})
	return res, err
}

// Purchases lists a customer's purchases newest first, each with its block.
func (s *Service) Purchases(ctx context.Context, scope store.Scope, ref CustomerRef, p store.Page) (store.Customer, []PurchaseResult, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var c store.Customer
	var out []PurchaseResult
	err := s.store.Read(ctx, func(q store.Q) error {
		var err error
		c, err = findCustomer(ctx, q, scope, ref)
		if err != nil {
			return notFound(err, "no customer with %s", ref)
		}
		list, err := q.PurchaseList(ctx, scope, c.ID, p)
		if err != nil {
			return err
		}
		for _, pur := range list {
			b, err := q.BlockGet(ctx, scope, c.ID, pur.BlockID)
			if err != nil {
				return fmt.Errorf("block of purchase %s: %w", pur.ID, err)
			}
			out = append(out, PurchaseResult{Purchase: pur, Customer: c, Block: b})
		}
		return nil
	})
	return c, out, err
}

package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/creditd/creditd/internal/ledger"
)

// debitJSON is one block's share of a purchase's price.
type debitJSON struct {
	BlockID string `json:"block_id"`
	Amount  int64  `json:"amount"`
}

// purchaseJSON is the plan purchase object. balance_after and
// effective_balance are the customer's right after the purchase, as stored
// with it; block is the granted block as it is when answered.
type purchaseJSON struct {
	ID                 string          `json:"id"`
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID *string         `json:"external_customer_id"`
	PlanKey            string          `json:"plan_key"`
	OrderID            string          `json:"order_id"`
	Price              int64           `json:"price"`
	Credits            int64           `json:"credits"`
	Block              blockJSON       `json:"block"`
	Debits             []debitJSON     `json:"debits"`
	BalanceAfter       int64           `json:"balance_after"`
	EffectiveBalance   int64           `json:"effective_balance"`
	Metadata           json.RawMessage `json:"metadata"`
	Duplicate          bool            `json:"duplicate"`
	CreatedAt          Time            `json:"created_at"`
}

func purchaseOut(res ledger.PurchaseResult) purchaseJSON {
	p, c := res.Purchase, res.Customer
	out := purchaseJSON{
		ID: p.ID, CustomerID: c.ID, ExternalCustomerID: nullable(c.ExternalID), PlanKey: p.PlanKey, OrderID: p.OrderID,
		Price: p.Price, Credits: p.Credits, Block: blockOut(res.Block, c), Debits: make([]debitJSON, 0, len(p.Debits)),
		BalanceAfter: p.BalanceAfter, EffectiveBalance: p.EffectiveBalance, Metadata: metadataOut(p.Metadata),
		Duplicate: res.Duplicate, CreatedAt: Time(p.CreatedAt),
	}
	for _, d := range p.Debits {
		out.Debits = append(out.Debits, debitJSON(d))
	}
	return out
}

// encodePurchase answers a new purchase 201 and an order bought before 200:
// the second changed nothing, and a client retrying one order under new
// Idempotency-Keys must still tell "bought now" from "bought already".
func encodePurchase(res ledger.PurchaseResult) (int, []byte, error) {
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	b, err := marshal(purchaseOut(res))
	return status, b, err
}

type purchaseRequest struct {
	PlanKey  string   `json:"plan_key"`
	OrderID  string   `json:"order_id"`
	Metadata Metadata `json:"metadata"`
}

// handlePurchase buys a plan for the path's customer. Only the external-id
// form may create its customer, as with grants; a {customer_id} that is not
// a known UUID is looked up as an external id.
func (s *Server) handlePurchase(a addressing) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req purchaseRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			ref, err := pathCustomer(r, a)
			if err != nil {
				return nil, err
			}
			in := ledger.PurchaseInput{
				Customer: ref, AutoCreate: a == byExternalID, PlanKey: req.PlanKey, OrderID: req.OrderID,
				Metadata: json.RawMessage(req.Metadata), IdempotencyKey: r.Header.Get("Idempotency-Key"),
			}
			var c checks
			c.id("plan_key", req.PlanKey)
			c.id("order_id", req.OrderID)
			if err := c.merge(in.Validate()); err != nil {
				return nil, err
			}
			if err := c.err(); err != nil {
				return nil, err
			}
			return ledger.Purchase{In: in, Encode: encodePurchase}, nil
		}, markDuplicate)
	}
}

func (s *Server) handlePurchaseGet() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := checkID("id", id); err != nil {
			return err
		}
		res, err := s.svc.PurchaseRead(r.Context(), scopeOf(r.Context()), id)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, purchaseOut(res))
	}
}

// handlePurchaseList lists a customer's purchases, newest first.
func (s *Server) handlePurchaseList(a addressing) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		ref, err := pathCustomer(r, a)
		if err != nil {
			return err
		}
		_, rows, err := s.svc.Purchases(r.Context(), scopeOf(r.Context()), ref, p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, purchaseOut, func(res ledger.PurchaseResult) string { return res.Purchase.ID }))
	}
}

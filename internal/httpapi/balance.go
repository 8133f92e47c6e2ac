package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

type balanceJSON struct {
	CustomerID         string      `json:"customer_id"`
	ExternalCustomerID *string     `json:"external_customer_id"`
	Balance            int64       `json:"balance"`
	ReservedBalance    int64       `json:"reserved_balance"`
	EffectiveBalance   int64       `json:"effective_balance"`
	LifetimeEarned     int64       `json:"lifetime_earned"`
	Version            int64       `json:"version"`
	Blocks             []blockJSON `json:"blocks,omitempty"`
}

func (s *Server) handleBalance(a addressing) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		include := false
		if v := r.URL.Query().Get("include_blocks"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return credit.Invalid("include_blocks", "must be true or false")
			}
			include = b
		}
		ref, err := pathCustomer(r, a)
		if err != nil {
			return err
		}
		bal, err := s.svc.Balance(r.Context(), scopeOf(r.Context()), ref)
		if err != nil {
			return err
		}
		c := bal.Customer
		out := balanceJSON{
			CustomerID: c.ID, ExternalCustomerID: nullable(c.ExternalID), Balance: bal.Balance, ReservedBalance: bal.Reserved,
			EffectiveBalance: bal.Effective, LifetimeEarned: bal.LifetimeEarned, Version: bal.Version,
		}
		if include {
			out.Blocks = make([]blockJSON, 0, len(bal.Blocks))
			for _, b := range bal.Blocks {
				out.Blocks = append(out.Blocks, blockOut(b, c))
			}
		}
		return encode(w, http.StatusOK, out)
	}
}

type entitlementJSON struct {
	Allowed            bool    `json:"allowed"`
	CustomerID         string  `json:"customer_id"`
	ExternalCustomerID *string `json:"external_customer_id"`
	BillableMetricKey  string  `json:"billable_metric_key"`
	Units              int64   `json:"units"`
	Balance            int64   `json:"balance"`
	ReservedBalance    int64   `json:"reserved_balance"`
	EffectiveBalance   int64   `json:"effective_balance"`
	EstimatedCost      int64   `json:"estimated_cost"`
	BalanceAfter       int64   `json:"balance_after"`
	OveragePolicy      string  `json:"overage_policy"`
	// Breakdown is what a usage of these units would take now, block by
	// block: the usage's own debit, run on a copy.
	Breakdown []blockDebitJSON `json:"breakdown"`
}

func (s *Server) handleEntitlement(a addressing) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		units := int64(1)
		if v := r.URL.Query().Get("units"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return credit.Invalid("units", "must be an integer ≥ 1")
			}
			units = n
		}
		ref, err := pathCustomer(r, a)
		if err != nil {
			return err
		}
		key := r.PathValue("key")
		if err := checkID("key", key); err != nil {
			return err
		}
		e, err := s.svc.Check(r.Context(), scopeOf(r.Context()), ref, key, units)
		if err != nil {
			return err
		}
		c := e.Customer
		return encode(w, http.StatusOK, entitlementJSON{
			Allowed: e.Allowed, CustomerID: c.ID, ExternalCustomerID: nullable(c.ExternalID), BillableMetricKey: e.MetricKey,
			Units: e.Units, Balance: e.Balance.Balance, ReservedBalance: e.Reserved, EffectiveBalance: e.Effective,
			EstimatedCost: e.EstimatedCost, BalanceAfter: e.BalanceAfter, OveragePolicy: "block",
			Breakdown: breakdownOut(e.Breakdown),
		})
	}
}

type entryJSON struct {
	ID             string          `json:"id"`
	CustomerID     string          `json:"customer_id"`
	Type           string          `json:"type"`
	Delta          int64           `json:"delta"`
	BalanceAfter   int64           `json:"balance_after"`
	BlockID        *string         `json:"block_id"`
	ReferenceType  *string         `json:"reference_type"`
	ReferenceID    *string         `json:"reference_id"`
	IdempotencyKey *string         `json:"idempotency_key"`
	TransactionID  *string         `json:"transaction_id"` // the linked transaction the entry is part of
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      Time            `json:"created_at"`
}

var entryTypes = map[string]bool{
	string(credit.EntryGrant): true, string(credit.EntryUsage): true, string(credit.EntryReserve): true,
	string(credit.EntryCommit): true, string(credit.EntryRelease): true, string(credit.EntryExpire): true,
	string(credit.EntryAdjustment): true, string(credit.EntryPurchase): true,
}

func (s *Server) handleLedger(a addressing) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		typ := r.URL.Query().Get("type")
		if typ != "" && !entryTypes[typ] {
			return credit.Invalid("type", "must be one of grant, usage, reserve, commit, release, expire, adjustment, purchase")
		}
		if _, err := strconv.ParseInt(p.After, 10, 64); p.After != "" && err != nil {
			return credit.Invalid("cursor", "is not a cursor this API returned")
		}
		ref, err := pathCustomer(r, a)
		if err != nil {
			return err
		}
		_, rows, err := s.svc.Ledger(r.Context(), scopeOf(r.Context()), ref, typ, p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, entryOut, func(e store.LedgerEntry) string { return strconv.FormatInt(e.Seq, 10) }))
	}
}

func entryOut(e store.LedgerEntry) entryJSON {
	return entryJSON{
		ID: e.ID, CustomerID: e.CustomerID, Type: string(e.Type), Delta: e.Delta, BalanceAfter: e.BalanceAfter,
		BlockID: nullable(e.BlockID), ReferenceType: nullable(e.ReferenceType), ReferenceID: nullable(e.ReferenceID),
		IdempotencyKey: nullable(e.IdempotencyKey), TransactionID: nullable(e.TransactionID),
		Metadata: metadataOut(e.Metadata), CreatedAt: Time(e.CreatedAt),
	}
}

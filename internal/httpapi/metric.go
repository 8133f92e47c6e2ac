package httpapi

import (
	"fmt"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

type metricJSON struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   Time   `json:"created_at"`
}

func metricOut(m store.Metric) metricJSON {
	return metricJSON{ID: m.ID, Key: m.Key, Name: m.Name, Description: m.Description, CreatedAt: Time(m.CreatedAt)}
}

type metricRequest struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (s *Server) handleMetricCreate() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req metricRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			if req.Key == "" {
				return nil, credit.Invalid("key", "is required")
			}
			var c checks
			c.id("key", req.Key)
			c.text("name", req.Name, maxNameLen)
			c.text("description", req.Description, maxTextLen)
			if err := c.err(); err != nil {
				return nil, err
			}
			return ledger.CreateMetric{In: ledger.MetricInput(req), Encode: encodeAs(http.StatusCreated, metricOut)}, nil
		}, nil)
	}
}

func (s *Server) handleMetricGet() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.PathValue("key")
		if err := checkID("key", key); err != nil {
			return err
		}
		m, err := s.svc.Metric(r.Context(), scopeOf(r.Context()), key)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, metricOut(m))
	}
}

func (s *Server) handleMetricList() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		rows, err := s.svc.Metrics(r.Context(), scopeOf(r.Context()), p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, metricOut, func(m store.Metric) string { return m.ID }))
	}
}

type tierJSON struct {
	UpTo     *int64 `json:"up_to"`
	UnitCost int64  `json:"unit_cost"`
	FlatCost int64  `json:"flat_cost"`
}

// ruleJSON is a metering rule; each cost type echoes its own fields.
type ruleJSON struct {
	ID                string     `json:"id"`
	BillableMetricKey string     `json:"billable_metric_key"`
	CostType          string     `json:"cost_type"`
	FlatCost          *int64     `json:"flat_cost,omitempty"`
	UnitCost          *int64     `json:"unit_cost,omitempty"`
	UnitSize          *int64     `json:"unit_size,omitempty"`
	TierMode          string     `json:"tier_mode,omitempty"`
	Tiers             []tierJSON `json:"tiers,omitempty"`
	Active            bool       `json:"active"`
	CreatedAt         Time       `json:"created_at"`
}

func ruleOut(r store.Rule) ruleJSON {
	out := ruleJSON{ID: r.ID, BillableMetricKey: r.MetricKey, CostType: string(r.CostType), Active: r.Active, CreatedAt: Time(r.CreatedAt)}
	switch r.CostType {
	case credit.CostFlat:
		out.FlatCost = &r.FlatCost
	case credit.CostPerUnit:
		out.UnitCost, out.UnitSize = &r.UnitCost, &r.UnitSize
	case credit.CostTiered:
		out.TierMode = string(r.TierMode)
		for _, t := range r.Tiers {
			out.Tiers = append(out.Tiers, tierJSON(t))
		}
	}
	return out
}

type ruleRequest struct {
	BillableMetricKey string     `json:"billable_metric_key"`
	CostType          string     `json:"cost_type"`
	FlatCost          *int64     `json:"flat_cost"`
	UnitCost          *int64     `json:"unit_cost"`
	UnitSize          *int64     `json:"unit_size"`
	TierMode          string     `json:"tier_mode"`
	Tiers             []tierJSON `json:"tiers"`
}

func (req ruleRequest) rule() (credit.Rule, error) {
	if req.BillableMetricKey == "" {
		return credit.Rule{}, credit.Invalid("billable_metric_key", "is required")
	}
	if err := checkID("billable_metric_key", req.BillableMetricKey); err != nil {
		return credit.Rule{}, err
	}
	// Pricing walks the tiers on every usage event; a long list would make
	// each event slow, and no price needs more.
	if len(req.Tiers) > maxTiers {
		return credit.Rule{}, credit.Invalid("tiers", fmt.Sprintf("may hold at most %d tiers", maxTiers))
	}
	rule := credit.Rule{CostType: credit.CostType(req.CostType), TierMode: credit.TierMode(req.TierMode)}
	switch rule.CostType {
	case credit.CostFlat:
		if req.FlatCost == nil {
			return credit.Rule{}, credit.Invalid("flat_cost", "is required for cost_type flat")
		}
		rule.FlatCost = *req.FlatCost
	case credit.CostPerUnit:
		if req.UnitCost == nil {
			return credit.Rule{}, credit.Invalid("unit_cost", "is required for cost_type per_unit")
		}
		rule.UnitCost, rule.UnitSize = *req.UnitCost, 1
		if req.UnitSize != nil {
			if *req.UnitSize < 1 {
				return credit.Rule{}, credit.Invalid("unit_size", "must be an integer ≥ 1")
			}
			rule.UnitSize = *req.UnitSize
		}
	case credit.CostTiered:
		for _, t := range req.Tiers {
			rule.Tiers = append(rule.Tiers, credit.Tier(t))
		}
	}
	return rule, rule.Validate()
}

func (s *Server) handleRuleCreate() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req ruleRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			rule, err := req.rule()
			if err != nil {
				return nil, err
			}
			return ledger.CreateRule{MetricKey: req.BillableMetricKey, Rule: rule, Encode: encodeAs(http.StatusCreated, ruleOut)}, nil
		}, nil)
	}
}

func (s *Server) handleRuleList() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		rows, err := s.svc.Rules(r.Context(), scopeOf(r.Context()), p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, ruleOut, func(r store.Rule) string { return r.ID }))
	}
}

package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// The plan catalog's bounds.
const (
	// DefaultPlanPriority is a plan block's priority unless the plan sets
	// one: plan credits burn before the wallet (priority 0) for usage.
	DefaultPlanPriority = 10
	// MinPlanDuration and MaxPlanDuration bound a plan's duration_seconds.
	MinPlanDuration = 60
	MaxPlanDuration = 315_360_000 // 10 years
)

// PlanInput is a plan to create. Priority and PayFromMaxPriority are
// pointers so that "absent" takes the default.
type PlanInput struct {
	Key                string
	Name               string
	Price              int64
	Credits            int64
	Priority           *int
	DurationSeconds    int64 // 0: the plan's credits never expire
	PayFromMaxPriority *int
	Metadata           json.RawMessage
}

// Validate checks the plan's own fields.
func (in PlanInput) Validate() error {
	var fields credit.Fields
	if !metricKey.MatchString(in.Key) {
		fields.Add("key", "must be 1 to 128 letters, digits, '_', '.', ':' or '-'")
	}
	if in.Name == "" {
		fields.Add("name", "is required")
	}
	if in.Price < 0 {
		fields.Add("price", "must be an integer of millicredits ≥ 0")
	}
	if in.Credits < 1 {
		fields.Add("credits", "must be a positive integer of millicredits")
	}
	if in.Priority != nil && (*in.Priority < 0 || *in.Priority > MaxPriority) {
		fields.Add("priority", fmt.Sprintf("must be between 0 and %d", MaxPriority))
	}
	if in.PayFromMaxPriority != nil && (*in.PayFromMaxPriority < 0 || *in.PayFromMaxPriority > MaxPriority) {
		fields.Add("pay_from_max_priority", fmt.Sprintf("must be between 0 and %d", MaxPriority))
	}
	if in.DurationSeconds != 0 && (in.DurationSeconds < MinPlanDuration || in.DurationSeconds > MaxPlanDuration) {
		fields.Add("duration_seconds", fmt.Sprintf("must be between %d and %d seconds, or null for credits that never expire", MinPlanDuration, MaxPlanDuration))
	}
	return fields.Err("the plan is invalid")
}

// CreatePlan adds a plan to the catalog. A key that exists is a plan-exists
// conflict: plans are immutable, and a new price is a new plan.
type CreatePlan struct {
	In     PlanInput
	Encode Encoder[store.Plan]
}

func (c CreatePlan) plan(*plan) {}
func (c CreatePlan) size() int  { return 1 }

func (c CreatePlan) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	in := c.In
	if err := in.Validate(); err != nil {
		return Response{}, false, err
	}
	if existing, err := g.q.PlanGet(ctx, req.Scope, in.Key); err == nil {
		e := credit.Errorf(credit.EPlanExists, "a plan with key %q already exists; plans are immutable, create one with a new key", in.Key)
		e.Extra = map[string]any{"plan_id": existing.ID, "plan_key": existing.Key}
		return Response{}, false, e
	} else if !errors.Is(err, store.ErrNotFound) {
		return Response{}, false, fmt.Errorf("create plan: %w", err)
	}
	p := store.Plan{
		ID: ids.New(ids.Plan), Key: in.Key, Name: in.Name, Price: in.Price, Credits: in.Credits,
		Priority: DefaultPlanPriority, DurationSeconds: in.DurationSeconds, Metadata: in.Metadata,
		Active: true, CreatedAt: g.now,
	}
	if in.Priority != nil {
		p.Priority = *in.Priority
	}
	if in.PayFromMaxPriority != nil {
		p.PayFromMaxPriority = *in.PayFromMaxPriority
	}
	if err := g.q.PlanCreate(ctx, req.Scope, p); err != nil {
		return Response{}, false, fmt.Errorf("create plan: %w", err)
	}
	g.plans[planKey{req.Scope, p.Key}] = p
	status, body, err := c.Encode(p)
	return Response{Status: status, Body: body}, true, err
}

// ArchivePlan takes a plan out of sale: it can no longer be bought, and
// orders bought before still answer their purchase.
type ArchivePlan struct {
	Key    string
	Encode Encoder[store.Plan]
}

func (c ArchivePlan) plan(*plan) {}
func (c ArchivePlan) size() int  { return 1 }

func (c ArchivePlan) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	p, err := g.catalogPlan(ctx, req.Scope, c.Key)
	if err != nil {
		return Response{}, false, err
	}
	if p.Active {
		if err := g.q.PlanArchive(ctx, req.Scope, c.Key); err != nil {
			return Response{}, false, fmt.Errorf("archive plan: %w", err)
		}
		p.Active = false
		g.plans[planKey{req.Scope, p.Key}] = p
	}
	status, body, err := c.Encode(p)
	return Response{Status: status, Body: body}, true, err
}

type planKey struct {
	scope store.Scope
	key   string
}

// catalogPlan finds a plan of the catalog, once per group; not-found when the key
// names none.
func (g *group) catalogPlan(ctx context.Context, scope store.Scope, key string) (store.Plan, error) {
	if p, ok := g.plans[planKey{scope, key}]; ok {
		return p, nil
	}
	p, err := g.q.PlanGet(ctx, scope, key)
	if err != nil {
		return store.Plan{}, notFound(err, "no plan with key %q", key)
	}
	g.plans[planKey{scope, key}] = p
	return p, nil
}

// Plan reads one plan by key.
func (s *Service) Plan(ctx context.Context, scope store.Scope, key string) (store.Plan, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	p, err := s.store.PlanGet(ctx, scope, key)
	if err != nil {
		return store.Plan{}, notFound(err, "no plan with key %q", key)
	}
	return p, nil
}

// Plans lists the catalog in creation order, archived plans included.
func (s *Service) Plans(ctx context.Context, scope store.Scope, p store.Page) ([]store.Plan, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.store.PlanList(ctx, scope, p)
}

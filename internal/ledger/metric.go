package ledger

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// metricKey is what a metric key may look like: it travels in URL paths.
var metricKey = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// MetricInput is a billable metric to create.
type MetricInput struct {
	Key         string
	Name        string
	Description string
}

// CreateMetric creates a billable metric. A key that exists is a
// metric-exists conflict. Metrics and rules are rare writes: they go into
// the database as they run, inside the group's transaction.
type CreateMetric struct {
	In     MetricInput
	Encode Encoder[store.Metric]
}

func (c CreateMetric) plan(*plan) {}
func (c CreateMetric) size() int  { return 1 }

func (c CreateMetric) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	in := c.In
	if !metricKey.MatchString(in.Key) {
		return Response{}, false, credit.Invalid("key", "must be 1 to 128 letters, digits, '_', '.', ':' or '-'")
	}
	if existing, err := g.q.MetricGet(ctx, req.Scope, in.Key); err == nil {
		e := credit.Errorf(credit.EMetricExists, "a billable metric with key %q already exists", in.Key)
		e.Extra = map[string]any{"metric_id": existing.ID, "billable_metric_key": existing.Key}
		return Response{}, false, e
	} else if !errors.Is(err, store.ErrNotFound) {
		return Response{}, false, fmt.Errorf("create metric: %w", err)
	}
	name := in.Name
	if name == "" {
		name = in.Key
	}
	m := store.Metric{ID: ids.New(ids.Metric), Key: in.Key, Name: name, Description: in.Description, CreatedAt: g.now}
	if err := g.q.MetricCreate(ctx, req.Scope, m); err != nil {
		return Response{}, false, fmt.Errorf("create metric: %w", err)
	}
	status, body, err := c.Encode(m)
	return Response{Status: status, Body: body}, true, err
}

// Metric reads one billable metric by key.
func (s *Service) Metric(ctx context.Context, scope store.Scope, key string) (store.Metric, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	m, err := s.store.MetricGet(ctx, scope, key)
	if err != nil {
		return store.Metric{}, notFound(err, "no billable metric with key %q", key)
	}
	return m, nil
}

// Metrics lists billable metrics in creation order.
func (s *Service) Metrics(ctx context.Context, scope store.Scope, p store.Page) ([]store.Metric, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.store.MetricList(ctx, scope, p)
}

// CreateRule makes Rule the active metering rule of its metric, superseding
// the previous one.
type CreateRule struct {
	MetricKey string
	Rule      credit.Rule
	Encode    Encoder[store.Rule]
}

func (c CreateRule) plan(*plan) {}
func (c CreateRule) size() int  { return 1 }

func (c CreateRule) apply(ctx context.Context, g *group, req Request) (Response, bool, error) {
	rule := c.Rule
	if rule.CostType == credit.CostPerUnit && rule.UnitSize == 0 {
		rule.UnitSize = 1
	}
	if err := rule.Validate(); err != nil {
		return Response{}, false, err
	}
	if _, err := g.q.MetricGet(ctx, req.Scope, c.MetricKey); err != nil {
		return Response{}, false, notFound(err, "no billable metric with key %q", c.MetricKey)
	}
	r := store.Rule{Rule: rule, ID: ids.New(ids.Rule), MetricKey: c.MetricKey, Active: true, CreatedAt: g.now}
	if err := g.q.RuleCreate(ctx, req.Scope, r); err != nil {
		return Response{}, false, fmt.Errorf("create metering rule: %w", err)
	}
	// Later commands of the group price with the new rule.
	delete(g.rules, ruleKey{req.Scope, c.MetricKey})
	status, body, err := c.Encode(r)
	return Response{Status: status, Body: body}, true, err
}

// Rules lists metering rules in creation order, superseded ones included.
func (s *Service) Rules(ctx context.Context, scope store.Scope, p store.Page) ([]store.Rule, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.store.RuleList(ctx, scope, p)
}

// activeRule finds the price of metricKey: 404 for an unknown metric, 422
// for a metric without an active rule.
func activeRule(ctx context.Context, q store.Q, scope store.Scope, metricKey string) (store.Rule, error) {
	r, err := q.RuleActive(ctx, scope, metricKey)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Rule{}, err
	}
	if _, err := q.MetricGet(ctx, scope, metricKey); err != nil {
		return store.Rule{}, notFound(err, "no billable metric with key %q", metricKey)
	}
	return store.Rule{}, credit.Errorf(credit.ENoMeteringRule, "billable metric %q has no active metering rule, so its usage cannot be priced", metricKey)
}

package storetest

import (
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

func testMetric(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		want := store.Metric{ID: ids.New(ids.Metric), Key: "api_calls", Name: "API calls",
			Description: "Requests to the public API", CreatedAt: at(42 * time.Millisecond)}
		transact(t, s, func(q store.Q) error { return q.MetricCreate(ctx, sc, want) })

		got, err := s.MetricGet(ctx, sc, "api_calls")
		wantNoErr(t, "MetricGet", err)
		wantSame(t, "MetricGet", got, want)

		_, err = s.MetricGet(ctx, sc, "tokens")
		wantErr(t, "MetricGet(unknown)", err, store.ErrNotFound)
	})

	t.Run("KeyUniquePerScope", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		newMetric(t, s, sc, "api_calls")
		m := store.Metric{ID: ids.New(ids.Metric), Key: "api_calls", CreatedAt: t0}
		err := s.Transact(ctx, func(q store.Q) error { return q.MetricCreate(ctx, sc, m) })
		wantErr(t, "MetricCreate(key taken)", err, store.ErrConflict)

		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			m := store.Metric{ID: ids.New(ids.Metric), Key: "api_calls", CreatedAt: t0}
			err := s.Transact(ctx, func(q store.Q) error { return q.MetricCreate(ctx, other, m) })
			wantNoErr(t, "MetricCreate(key of another scope)", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		ms := make([]store.Metric, 3)
		for i, key := range []string{"api_calls", "storage", "tokens"} {
			ms[i] = store.Metric{ID: ids.New(ids.Metric), Key: key, CreatedAt: at(time.Duration(i) * time.Second)}
		}
		for _, i := range []int{2, 0, 1} {
			transact(t, s, func(q store.Q) error { return q.MetricCreate(ctx, sc, ms[i]) })
		}

		all, err := s.MetricList(ctx, sc, store.Page{Limit: 100})
		wantNoErr(t, "MetricList", err)
		wantIDs(t, "MetricList(all)", all, metricID, ms[0].ID, ms[1].ID, ms[2].ID)
		for i := range all {
			wantSame(t, "MetricList", all[i], ms[i])
		}
		page, err := s.MetricList(ctx, sc, store.Page{Limit: 2})
		wantNoErr(t, "MetricList", err)
		wantIDs(t, "MetricList(limit 2)", page, metricID, ms[0].ID, ms[1].ID)
		page, err = s.MetricList(ctx, sc, store.Page{After: ms[1].ID, Limit: 2})
		wantNoErr(t, "MetricList", err)
		wantIDs(t, "MetricList(after the second, limit 2)", page, metricID, ms[2].ID)
	})
}

func testRule(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Supersede", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		newMetric(t, s, sc, "api_calls")
		newMetric(t, s, sc, "storage")
		create := func(r store.Rule) store.Rule {
			t.Helper()
			transact(t, s, func(q store.Q) error { return q.RuleCreate(ctx, sc, r) })
			r.Active = true
			return r
		}

		_, err := s.RuleActive(ctx, sc, "api_calls")
		wantErr(t, "RuleActive(metric without a rule)", err, store.ErrNotFound)

		old := create(store.Rule{ID: ids.New(ids.Rule), MetricKey: "api_calls", CreatedAt: at(time.Second),
			Rule: credit.Rule{CostType: credit.CostPerUnit, UnitCost: 5, UnitSize: 1000}})
		storage := create(store.Rule{ID: ids.New(ids.Rule), MetricKey: "storage", CreatedAt: at(2 * time.Second),
			Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: 250}})
		got, err := s.RuleActive(ctx, sc, "api_calls")
		wantNoErr(t, "RuleActive", err)
		wantSame(t, "RuleActive", got, old)

		upTo := int64(100)
		newer := create(store.Rule{ID: ids.New(ids.Rule), MetricKey: "api_calls", CreatedAt: at(3 * time.Second),
			Rule: credit.Rule{CostType: credit.CostTiered, TierMode: credit.TierGraduated, Tiers: []credit.Tier{
				{UpTo: &upTo, UnitCost: 10},
				{UpTo: nil, UnitCost: 5, FlatCost: 50}, // the last tier has no upper bound
			}}})
		got, err = s.RuleActive(ctx, sc, "api_calls")
		wantNoErr(t, "RuleActive", err)
		wantSame(t, "RuleActive after a newer rule", got, newer)
		got, err = s.RuleActive(ctx, sc, "storage")
		wantNoErr(t, "RuleActive", err)
		wantSame(t, "RuleActive of another metric", got, storage)

		old.Active = false
		all, err := s.RuleList(ctx, sc, store.Page{Limit: 100})
		wantNoErr(t, "RuleList", err)
		wantIDs(t, "RuleList(all)", all, ruleID, old.ID, storage.ID, newer.ID)
		for i, want := range []store.Rule{old, storage, newer} {
			wantSame(t, "RuleList", all[i], want)
		}
		page, err := s.RuleList(ctx, sc, store.Page{After: old.ID, Limit: 1})
		wantNoErr(t, "RuleList", err)
		wantIDs(t, "RuleList(after the first, limit 1)", page, ruleID, storage.ID)
	})
}

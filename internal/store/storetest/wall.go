package storetest

import (
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// testWall checks the wall between scopes: one scope's rows are invisible
// and untouchable from the tenant's other environment and from another
// tenant, even to a caller that knows their ids.
func testWall(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("OtherScope", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)

		c := store.Customer{ID: ids.UUID(), ExternalID: "user_42", CreatedAt: t0,
			Account: credit.Account{Balance: 100, LifetimeEarned: 100}}
		m := store.Metric{ID: ids.New(ids.Metric), Key: "api_calls", CreatedAt: t0}
		r := store.Rule{ID: ids.New(ids.Rule), MetricKey: m.Key, Active: true, CreatedAt: t0,
			Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: 1}}
		b := newBlock(c.ID, 1, 100, 100)
		b.ExpiresAt = at(-time.Hour)
		e := newEntry(c.ID, credit.EntryGrant, 100, 100)
		rec := newRecord(t0)
		ev := store.UsageEvent{ID: ids.New(ids.Event), CustomerID: c.ID, MetricKey: m.Key, Units: 1, Cost: 1, CreatedAt: t0}
		transact(t, s, func(q store.Q) error {
			return inOrder(
				func() error { return q.MetricCreate(ctx, sc, m) },
				func() error { return q.RuleCreate(ctx, sc, r) },
				func() error {
					return q.WritesApply(ctx, &store.Writes{Scope: sc, Customers: []store.Customer{c}, Blocks: []store.Block{b},
						Ledger: []store.LedgerEntry{e}, Usage: []store.UsageEvent{ev}, Idempotency: []store.IdempotencyRecord{rec},
						Lapsed: t0.Add(-ttl)})
				},
			)
		})

		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			t.Logf("from %+v", other)
			_, err := s.CustomerGet(ctx, other, c.ID)
			wantErr(t, "CustomerGet", err, store.ErrNotFound)
			_, err = s.CustomerByExternalID(ctx, other, c.ExternalID)
			wantErr(t, "CustomerByExternalID", err, store.ErrNotFound)
			found, err := s.CustomerIDsByExternal(ctx, other, []string{c.ExternalID})
			wantNoErr(t, "CustomerIDsByExternal", err)
			if len(found) != 0 {
				t.Errorf("CustomerIDsByExternal() = %v, want nothing", found)
			}
			cs, err := s.CustomerList(ctx, other, store.Page{Limit: 100})
			wantNoErr(t, "CustomerList", err)
			wantIDs(t, "CustomerList", cs, customerID)

			_, err = s.MetricGet(ctx, other, m.Key)
			wantErr(t, "MetricGet", err, store.ErrNotFound)
			ms, err := s.MetricList(ctx, other, store.Page{Limit: 100})
			wantNoErr(t, "MetricList", err)
			wantIDs(t, "MetricList", ms, metricID)
			_, err = s.RuleActive(ctx, other, m.Key)
			wantErr(t, "RuleActive", err, store.ErrNotFound)
			rs, err := s.RuleList(ctx, other, store.Page{Limit: 100})
			wantNoErr(t, "RuleList", err)
			wantIDs(t, "RuleList", rs, ruleID)

			bs, err := s.BlockList(ctx, other, c.ID)
			wantNoErr(t, "BlockList", err)
			wantIDs(t, "BlockList", bs, blockID)
			es, err := s.LedgerList(ctx, other, c.ID, "", store.Page{Limit: 100})
			wantNoErr(t, "LedgerList", err)
			wantIDs(t, "LedgerList", es, entryID)
			wantNoRecord(t, s, "", other, rec.Key, time.Time{})

			transact(t, s, func(q store.Q) error {
				rows, err := q.AccountsLoad(ctx, []store.CustomerKey{{Scope: other, CustomerID: c.ID}})
				if len(rows) != 0 {
					t.Errorf("AccountsLoad() = %d rows, want none", len(rows))
				}
				return err
			})
			err = apply(t, s, &store.Writes{Scope: other, Accounts: []store.AccountUpdate{{CustomerID: c.ID}}})
			wantErr(t, "WritesApply(account)", err, store.ErrNotFound)
			err = apply(t, s, &store.Writes{Scope: other, Remaining: []store.BlockRemaining{{CustomerID: c.ID, BlockID: b.ID}}})
			wantErr(t, "WritesApply(block's remaining)", err, store.ErrNotFound)
			// The customer's id and external id, its block's and usage
			// event's ids and the idempotency key are free elsewhere: new rows
			// of one scope never meet another's. (A ledger entry's id is
			// unique across scopes.)
			twin := c
			twin.Account = credit.Account{}
			mustApply(t, s, &store.Writes{Scope: other, Customers: []store.Customer{twin}, Blocks: []store.Block{b},
				Usage: []store.UsageEvent{ev}, Idempotency: []store.IdempotencyRecord{rec}, Lapsed: t0.Add(-ttl)})
			// A rule for the same metric key elsewhere supersedes nothing here.
			transact(t, s, func(q store.Q) error {
				return q.RuleCreate(ctx, other, store.Rule{ID: ids.New(ids.Rule), MetricKey: m.Key, CreatedAt: t0,
					Rule: credit.Rule{CostType: credit.CostFlat, FlatCost: 2}})
			})
		}

		// Everything is still there, unchanged, in its own scope.
		gotC, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet", gotC, c)
		gotR, err := s.RuleActive(ctx, sc, m.Key)
		wantNoErr(t, "RuleActive", err)
		wantSame(t, "RuleActive", gotR, r)
		bs, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList", bs, blockID, b.ID)
		wantSame(t, "BlockList", bs[0], b)
		es, err := s.LedgerList(ctx, sc, c.ID, "", store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList", es, entryID, e.ID)
		wantRecord(t, s, "", sc, rec, time.Time{})
	})
}

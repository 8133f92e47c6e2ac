package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// The entitlement check answers what a usage of the same units does next:
// allowed or not, its cost, the effective balance after it, and the blocks
// it takes, in order — over random blocks (priorities, expiries, holds
// aside) and clock moves.
func TestEntitlementPredictsTheNextUsage(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		rapid.Check(t, func(rt *rapid.T) {
			sc := store.Scope{TenantID: "ent-" + ids.UUID(), Env: "test"}
			f.metric(t, sc, "calls", 10)
			n := 0
			for range rapid.IntRange(0, 6).Draw(rt, "grants") {
				n++
				in := GrantInput{Customer: CustomerRef{ExternalID: "c"}, AutoCreate: true, Source: rapid.SampledFrom([]string{"topup", "plan", "promo"}).Draw(rt, "source"),
					Credits: rapid.Int64Range(1, 500).Draw(rt, "credits"), Priority: rapid.Int64Range(0, 3).Draw(rt, "priority")}
				if rapid.Bool().Draw(rt, "expires") {
					in.ExpiresAt = f.clock.Now().Add(time.Duration(rapid.IntRange(1, 30).Draw(rt, "minutes")) * time.Minute)
				}
				key := fmt.Sprintf("g%d", n)
				in.IdempotencyKey = key
				if _, err := f.run(t, sc, key, "/v1/topup/grant", Grant{In: in, Encode: jsonOf[GrantResult](201)}); err != nil {
					rt.Fatalf("grant: %v", err)
				}
			}
			f.clock.Add(time.Duration(rapid.IntRange(0, 20).Draw(rt, "advance")) * time.Minute)
			for i := range 3 {
				units := rapid.Int64Range(1, 60).Draw(rt, "units")
				ent, _, err := f.checkTwice(sc, CustomerRef{ExternalID: "c"}, "calls", units)
				if errors.Is(err, store.ErrNotFound) || isCode(err, credit.ENotFound) {
					return // no grant made the customer
				}
				if err != nil {
					rt.Fatalf("check: %v", err)
				}
				var res UsageResult
				u := usage("c", "calls", units, fmt.Sprintf("u%d", i))
				u.Encode = func(r UsageResult) (int, []byte, error) { res = r; return 200, []byte(`{}`), nil }
				_, err = f.run(t, sc, fmt.Sprintf("u%d", i), "/v1/usage", u)
				var ie *credit.InsufficientError
				switch {
				case errors.As(err, &ie):
					if ent.Allowed || ie.Available != ent.Effective || ie.Required != ent.EstimatedCost || len(ent.Breakdown) != 0 {
						rt.Fatalf("check %+v, then the usage was refused: %v", ent, err)
					}
				case err != nil:
					rt.Fatalf("usage: %v", err)
				default:
					if !ent.Allowed || ent.EstimatedCost != res.Event.Cost || ent.BalanceAfter != res.EffectiveBalance ||
						!reflect.DeepEqual(ent.Breakdown, res.Breakdown) {
						rt.Fatalf("check said allowed %v, cost %d, balance after %d, breakdown %+v;\\nthe usage took cost %d, left %d, breakdown %+v",
							ent.Allowed, ent.EstimatedCost, ent.BalanceAfter, ent.Breakdown, res.Event.Cost, res.EffectiveBalance, res.Breakdown)
					}
				}
			}
		})
	})
}

// memo is a store that keeps the committed accounts in memory (SQLite's
// writer does) and says whether a check would be answered from it.
type memo interface {
	CheckMemo(s store.Scope, customerID, externalID, metricKey string) (store.AccountRow, store.Rule, bool)
}

// checkTwice answers a check by the general read transaction and by the
// service's hot path (the store's CheckRead: a batch on PostgreSQL, the
// writer's memory or a read on SQLite), and fails when the two answers
// differ. It returns whether the store's memory held what the check needs.
func (f *fixture) checkTwice(sc store.Scope, ref CustomerRef, metricKey string, units int64) (Entitlement, bool, error) {
	ctx := context.Background()
	want, werr := f.svc.checkByRead(ctx, sc, ref, metricKey, units)
	hit := false
	if m, ok := f.st.(memo); ok {
		_, _, hit = m.CheckMemo(sc, ref.ID, ref.ExternalID, metricKey)
	}
	got, gerr := f.svc.Check(ctx, sc, ref, metricKey, units)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
		return got, hit, fmt.Errorf("check of %d %s for %s (from memory: %v) = %+v, %v;\nby a read transaction: %+v, %v", units, metricKey, ref, hit, got, gerr, want, werr)
	}
	return got, hit, werr
}

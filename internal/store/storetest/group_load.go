package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// refKey names a row of one scope in failure messages and maps.
func refKey(sc store.Scope, id string) string { return sc.TenantID + "/" + sc.Env + "/" + id }

// testGroupRead checks the group-commit methods that read and lock.
func testGroupRead(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("AccountsLoad", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, sc2 := newScope(t, s), newScope(t, s)
		scTest := store.Scope{TenantID: sc.TenantID, Env: "test"}

		a := store.Customer{ID: ids.UUID(), ExternalID: "user_a", DisplayName: "A", CreatedAt: t0,
			Account: credit.Account{Balance: 300, LifetimeEarned: 900, Version: 4}}
		bare := newCustomer(t, s, sc) // no blocks
		// Another tenant's customer with a's id: the wall must keep them apart.
		twin := store.Customer{ID: a.ID, DisplayName: "twin", CreatedAt: t0, Account: credit.Account{Balance: 7}}
		transact(t, s, func(q store.Q) error {
			return inOrder(
				func() error { return q.WritesApply(ctx, &store.Writes{Scope: sc, Customers: []store.Customer{a}}) },
				func() error { return q.WritesApply(ctx, &store.Writes{Scope: sc2, Customers: []store.Customer{twin}}) },
			)
		})
		first, second := newBlock(a.ID, 1, 100, 100), newBlock(a.ID, 2, 100, 50)
		spent := newBlock(a.ID, 3, 100, 0)
		expired := newBlock(a.ID, 4, 100, 150) // still loaded: the caller decides
		expired.Original, expired.ExpiresAt = 200, at(-time.Hour)
		insertBlocks(t, s, sc, expired, spent, second, first)
		twinBlock := newBlock(twin.ID, 1, 7, 7)
		insertBlocks(t, s, sc2, twinBlock)

		keys := []store.CustomerKey{
			{Scope: sc, CustomerID: bare.ID},
			{Scope: sc2, CustomerID: a.ID},
			{Scope: sc, CustomerID: ids.UUID()}, // unknown
			{Scope: scTest, CustomerID: a.ID},   // a, asked for in the wrong environment
			{Scope: sc, CustomerID: a.ID},
			{Scope: sc2, CustomerID: bare.ID},      // bare, asked for in the wrong tenant
			{Scope: sc, CustomerID: a.ID},          // twice
			{Scope: sc, CustomerID: "'; --"},       // nothing is spliced into SQL
			{Scope: store.Scope{}, CustomerID: ""}, // no scope at all
		}
		want := map[string]store.AccountRow{
			refKey(sc, a.ID):     {Scope: sc, Customer: a, Blocks: []store.Block{first, second, expired}},
			refKey(sc, bare.ID):  {Scope: sc, Customer: bare},
			refKey(sc2, twin.ID): {Scope: sc2, Customer: twin, Blocks: []store.Block{twinBlock}},
		}
		transact(t, s, func(q store.Q) error {
			rows, err := q.AccountsLoad(ctx, keys)
			if err != nil {
				return err
			}
			if len(rows) != len(want) {
				t.Errorf("AccountsLoad() = %d rows, want %d", len(rows), len(want))
			}
			for _, got := range rows {
				k := refKey(got.Scope, got.Customer.ID)
				w, ok := want[k]
				if !ok {
					t.Errorf("AccountsLoad() returned %s, which it was not asked for in that scope", k)
					continue
				}
				wantSame(t, "AccountsLoad() customer "+k, got.Customer, w.Customer)
				wantIDs(t, "AccountsLoad() blocks of "+k, got.Blocks, blockID, idsOf(w.Blocks, blockID)...)
				for i := range got.Blocks {
					wantSame(t, "AccountsLoad() block", got.Blocks[i], w.Blocks[i])
				}
				delete(want, k)
			}
			for k := range want {
				t.Errorf("AccountsLoad() left out %s", k)
			}

			rows, err = q.AccountsLoad(ctx, nil)
			if err != nil {
				return err
			}
			if len(rows) != 0 {
				t.Errorf("AccountsLoad(nothing) = %d rows, want none", len(rows))
			}
			return nil
		})
	})

	// Groups that load overlapping accounts, named in different orders, wait
	// for each other: no update is lost and none gives up.
	t.Run("AccountsLoadConcurrent", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, sc2 := newScope(t, s), newScope(t, s)
		keys := []store.CustomerKey{
			{Scope: sc, CustomerID: newCustomer(t, s, sc).ID},
			{Scope: sc, CustomerID: newCustomer(t, s, sc).ID},
			{Scope: sc2, CustomerID: newCustomer(t, s, sc2).ID},
		}
		const workers, perWorker = 8, 20
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range perWorker {
					mine := append([]store.CustomerKey(nil), keys...)
					rand.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
					err := s.Transact(ctx, func(q store.Q) error {
						rows, err := q.AccountsLoad(ctx, mine)
						if err != nil {
							return err
						}
						for _, r := range rows {
							r.Customer.Account.Balance++
							w := &store.Writes{Scope: r.Scope, Accounts: []store.AccountUpdate{{CustomerID: r.Customer.ID, Account: r.Customer.Account}}}
							if err := q.WritesApply(ctx, w); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						t.Errorf("Transact: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, k := range keys {
			c, err := s.CustomerGet(ctx, k.Scope, k.CustomerID)
			wantNoErr(t, "CustomerGet", err)
			if c.Account.Balance != workers*perWorker {
				t.Errorf("balance after %d×%d increments = %d", workers, perWorker, c.Account.Balance)
			}
		}
	})

	t.Run("IdempotencyGetAll", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, sc2 := newScope(t, s), newScope(t, s)
		scTest := store.Scope{TenantID: sc.TenantID, Env: "test"}
		old, fresh := newRecord(t0), newRecord(at(2*time.Hour))
		mirror := old // old's key in another tenant, stored later
		mirror.Body, mirror.CreatedAt = []byte(`{"mirror":true}`), at(3*time.Hour)
		for _, p := range []struct {
			sc store.Scope
			r  store.IdempotencyRecord
		}{{sc, old}, {sc, fresh}, {sc2, mirror}} {
			wantNoErr(t, "WritesApply(record)", putRecord(t, s, p.sc, p.r, p.r.CreatedAt.Add(-ttl)))
		}
		keys := []store.IdemKey{
			{Scope: sc, Key: old.Key},
			{Scope: sc, Key: fresh.Key},
			{Scope: sc, Key: "key-unknown"},
			{Scope: sc2, Key: old.Key},
			{Scope: sc2, Key: fresh.Key}, // fresh is sc's only
			{Scope: scTest, Key: old.Key},
			{Scope: sc, Key: fresh.Key}, // twice
		}
		check := func(q store.Q, since time.Time, want ...store.IdemRecord) {
			t.Helper()
			got, err := q.IdempotencyGetAll(ctx, keys, since)
			wantNoErr(t, "IdempotencyGetAll", err)
			wantMap := make(map[string]store.IdemRecord)
			for _, r := range want {
				wantMap[refKey(r.Scope, r.Key)] = r
			}
			if len(got) != len(want) {
				t.Errorf("IdempotencyGetAll(since %s) = %d records, want %d", since.Format(time.RFC3339), len(got), len(want))
			}
			for _, r := range got {
				w, ok := wantMap[refKey(r.Scope, r.Key)]
				if !ok {
					t.Errorf("IdempotencyGetAll(since %s) returned %s", since.Format(time.RFC3339), refKey(r.Scope, r.Key))
					continue
				}
				wantSame(t, "IdempotencyGetAll", r, w)
			}
		}
		all := []store.IdemRecord{{Scope: sc, IdempotencyRecord: old}, {Scope: sc, IdempotencyRecord: fresh},
			{Scope: sc2, IdempotencyRecord: mirror}}
		check(s, time.Time{}, all...)
		check(s, t0, all...) // since is inclusive
		check(s, at(2*time.Hour), all[1:]...)
		check(s, at(3*time.Hour), all[2])
		check(s, at(4*time.Hour))
		transact(t, s, func(q store.Q) error {
			check(q, at(2*time.Hour), all[1:]...)
			got, err := q.IdempotencyGetAll(ctx, nil, time.Time{})
			if len(got) != 0 {
				t.Errorf("IdempotencyGetAll(no keys) = %d records, want none", len(got))
			}
			return err
		})
	})

	t.Run("IdempotencyLockAll", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, sc2 := newScope(t, s), newScope(t, s)
		if err := s.IdempotencyLockAll(ctx, []store.IdemKey{{Scope: sc, Key: "k"}}); err == nil {
			t.Error("IdempotencyLockAll() outside a transaction succeeded, want an error")
		}
		transact(t, s, func(q store.Q) error {
			return inOrder(
				func() error { return q.IdempotencyLockAll(ctx, nil) },
				func() error {
					return q.IdempotencyLockAll(ctx, []store.IdemKey{{Scope: sc, Key: "b"}, {Scope: sc2, Key: "a"},
						{Scope: sc, Key: "a"}, {Scope: sc, Key: "b"}})
				},
				func() error { return q.IdempotencyLockAll(ctx, []store.IdemKey{{Scope: sc, Key: "a"}}) }, // held already: no wait
			)
		})

		// The locks exclude each other, in any order and whether a call takes
		// one key or many: a counter read without a row lock, then written,
		// loses no increment.
		c := newCustomer(t, s, sc)
		shared := []store.IdemKey{{Scope: sc, Key: "shared"}, {Scope: sc2, Key: "x"}, {Scope: sc, Key: "y"}}
		const workers, perWorker = 8, 20
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					mine := append([]store.IdemKey{{Scope: sc, Key: fmt.Sprintf("own-%d-%d", w, i)}}, shared...)
					rand.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
					err := s.Transact(ctx, func(q store.Q) error {
						var err error
						if w%4 == 0 {
							err = q.IdempotencyLockAll(ctx, []store.IdemKey{{Scope: sc, Key: "shared"}})
						} else {
							err = q.IdempotencyLockAll(ctx, mine)
						}
						if err != nil {
							return err
						}
						cu, err := q.CustomerGet(ctx, sc, c.ID)
						if err != nil {
							return err
						}
						cu.Account.Balance++
						return q.WritesApply(ctx, &store.Writes{Scope: sc,
							Accounts: []store.AccountUpdate{{CustomerID: c.ID, Account: cu.Account}}})
					})
					if err != nil {
						t.Errorf("Transact: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		if got.Account.Balance != workers*perWorker {
			t.Errorf("balance after %d×%d increments under the key locks = %d", workers, perWorker, got.Account.Balance)
		}
	})

	t.Run("CustomerIDsByExternal", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, sc2 := newScope(t, s), newScope(t, s)
		scTest := store.Scope{TenantID: sc.TenantID, Env: "test"}
		create := func(sc store.Scope, ext string) string {
			c := store.Customer{ID: ids.UUID(), ExternalID: ext, CreatedAt: t0}
			mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c}})
			return c.ID
		}
		u1, u2 := create(sc, "u1"), create(sc, "u2")
		create(sc, "")
		elsewhere := create(sc2, "u1")
		create(scTest, "u2")
		create(scTest, "u3")

		for _, c := range []struct {
			sc   store.Scope
			ext  []string
			want map[string]string
		}{
			{sc, []string{"u1", "u2", "u3", "u1", ""}, map[string]string{"u1": u1, "u2": u2}},
			{sc2, []string{"u1", "u2"}, map[string]string{"u1": elsewhere}},
			{sc, nil, map[string]string{}},
		} {
			got, err := s.CustomerIDsByExternal(ctx, c.sc, c.ext)
			wantNoErr(t, "CustomerIDsByExternal", err)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("CustomerIDsByExternal(%s, %q) = %v, want %v", refKey(c.sc, ""), c.ext, got, c.want)
			}
		}
	})
}

// testGroupPrepare pins GroupPrepare to what its four reads answer one by
// one, across scopes, inside a transaction.
func testGroupPrepare(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("GroupPrepare", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, sc2 := newScope(t, s), newScope(t, s)
		old, fresh := newRecord(t0), newRecord(at(2*time.Hour))
		for _, r := range []store.IdempotencyRecord{old, fresh} {
			wantNoErr(t, "WritesApply(record)", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))
		}
		cfg := store.TenantConfig{WebhookURL: "https://example.test/hooks", WebhookSecret: []byte("0123456789abcdef0123"), UpdatedAt: t0}
		mustTransact(t, s, func(q store.Q) error { return q.ConfigPut(ctx, sc, cfg) })
		c1 := store.Customer{ID: ids.UUID(), ExternalID: "u1", CreatedAt: t0}
		c2 := store.Customer{ID: ids.UUID(), ExternalID: "u1", CreatedAt: t0}
		mustApply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c1}})
		mustApply(t, s, &store.Writes{Scope: sc2, Customers: []store.Customer{c2}})

		reads := store.GroupReads{
			Keys:      []store.IdemKey{{Scope: sc, Key: old.Key}, {Scope: sc, Key: fresh.Key}, {Scope: sc2, Key: old.Key}},
			Since:     at(time.Hour),
			Configs:   []store.Scope{sc, sc2},
			Externals: map[store.Scope][]string{sc: {"u1", "u9"}, sc2: {"u1"}},
		}
		transact(t, s, func(q store.Q) error {
			got, err := q.GroupPrepare(ctx, reads)
			wantNoErr(t, "GroupPrepare", err)
			if len(got.Records) != 1 {
				t.Fatalf("GroupPrepare's records = %+v, want %s's fresh one only", got.Records, refKey(sc, fresh.Key))
			}
			wantSame(t, "GroupPrepare's record", got.Records[0], store.IdemRecord{Scope: sc, IdempotencyRecord: fresh})
			if c, ok := got.Configs[sc]; !ok {
				t.Errorf("GroupPrepare found no config for %v", sc)
			} else {
				wantSame(t, "GroupPrepare's config", c, cfg)
			}
			if _, ok := got.Configs[sc2]; ok {
				t.Errorf("GroupPrepare found a config for %v, which has none", sc2)
			}
			want := map[store.Scope]map[string]string{sc: {"u1": c1.ID}, sc2: {"u1": c2.ID}}
			if fmt.Sprint(got.IDs[sc]) != fmt.Sprint(want[sc]) || fmt.Sprint(got.IDs[sc2]) != fmt.Sprint(want[sc2]) {
				t.Errorf("GroupPrepare's ids = %v, want %v", got.IDs, want)
			}
			none, err := q.GroupPrepare(ctx, store.GroupReads{})
			if err != nil || len(none.Records) != 0 || len(none.Configs) != 0 || len(none.IDs) != 0 {
				t.Errorf("GroupPrepare(nothing) = %+v, %v; want nothing", none, err)
			}
			return nil
		})
	})
}

// idsOf returns the rows' ids, in order.
func idsOf[T any](rows []T, id func(T) string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = id(r)
	}
	return out
}

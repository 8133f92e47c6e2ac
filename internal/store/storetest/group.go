package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// testWritesApply checks that WritesApply stores every kind of row at once,
// read back through the read methods, and fails with the store's errors.
// (The cases of each area, in its own file, write through it too.)
func testWritesApply(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		old := newCustomer(t, s, sc)
		b1, b2 := newBlock(old.ID, 1, 1000, 1000), newBlock(old.ID, 2, 500, 500)
		insertBlocks(t, s, sc, b1, b2)

		c1 := store.Customer{ID: ids.UUID(), ExternalID: "user_" + ids.UUID(), DisplayName: "Ada",
			Metadata: json.RawMessage(`{"plan": "pro"}`), CreatedAt: at(time.Second),
			Account: credit.Account{Balance: 700, Reserved: 50, LifetimeEarned: 750, Version: 2}}
		c2 := store.Customer{ID: ids.UUID(), CreatedAt: at(2 * time.Second)} // no external id, no metadata
		paid := newBlock(c1.ID, 1, 750, 700)
		paid.Priority, paid.ExpiresAt, paid.PricePaid = 3, at(30*24*time.Hour), 999
		paid.Source, paid.Reason, paid.Currency, paid.ExternalPaymentID = "purchase", "top-up", "usd", "pi_1"
		paid.Metadata = json.RawMessage(`{"campaign": "spring"}`)
		free := newBlock(c1.ID, 2, 50, 50)
		grant := newEntry(c1.ID, credit.EntryGrant, 750, 750)
		grant.ReferenceType, grant.ReferenceID, grant.IdempotencyKey = "grant", paid.ID, "key-1"
		// An entry's own metadata is not written: it reads its reference's.
		grant.Metadata = json.RawMessage(`{"by": {"id": 7}}`)
		used := newEntry(old.ID, credit.EntryUsage, -750, 750)
		burn := newEntry(c1.ID, credit.EntryUsage, -50, 700)
		ev := store.UsageEvent{ID: ids.New(ids.Event), CustomerID: old.ID, MetricKey: "api_calls", Units: 3, Cost: 750,
			IdempotencyKey: "key-2", Metadata: json.RawMessage(`{"endpoint": "/v1/chat"}`), CreatedAt: t0}
		r1, r2 := newRecord(t0), newRecord(at(time.Minute))
		oldAccount := credit.Account{Balance: 750, LifetimeEarned: 1500, Version: 3}
		w := &store.Writes{
			Scope:       sc,
			Customers:   []store.Customer{c1, c2},
			Accounts:    []store.AccountUpdate{{CustomerID: old.ID, Account: oldAccount}},
			Blocks:      []store.Block{paid, free},
			Remaining:   []store.BlockRemaining{{CustomerID: old.ID, BlockID: b1.ID, Remaining: 250}, {CustomerID: old.ID, BlockID: b2.ID}},
			Ledger:      []store.LedgerEntry{grant, used, burn},
			Usage:       []store.UsageEvent{ev},
			Idempotency: []store.IdempotencyRecord{r1, r2},
			Lapsed:      t0.Add(-ttl),
		}
		if w.Empty() {
			t.Fatal("Writes.Empty() = true for writes with rows")
		}
		wantNoErr(t, "WritesApply", apply(t, s, w))

		for _, want := range []store.Customer{c1, c2, {ID: old.ID, DisplayName: old.DisplayName, CreatedAt: old.CreatedAt, Account: oldAccount}} {
			got, err := s.CustomerGet(ctx, sc, want.ID)
			wantNoErr(t, "CustomerGet", err)
			wantSame(t, "CustomerGet after WritesApply", got, want)
		}
		got, err := s.CustomerByExternalID(ctx, sc, c1.ExternalID)
		wantNoErr(t, "CustomerByExternalID", err)
		wantSame(t, "CustomerByExternalID after WritesApply", got, c1)

		bs, err := s.BlockList(ctx, sc, c1.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList(new customer)", bs, blockID, paid.ID, free.ID)
		wantSame(t, "BlockList", bs[0], paid)
		wantSame(t, "BlockList", bs[1], free)
		bs, err = s.BlockList(ctx, sc, old.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList(updated blocks)", bs, blockID, b1.ID) // b2 is spent
		b1.Remaining = 250
		wantSame(t, "BlockList", bs[0], b1)

		mine, err := s.LedgerList(ctx, sc, c1.ID, "", store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList(new customer)", mine, entryID, burn.ID, grant.ID)
		theirs, err := s.LedgerList(ctx, sc, old.ID, "", store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList(old customer)", theirs, entryID, used.ID)
		// The store numbers the entries in the slice's order.
		if !(mine[1].Seq < theirs[0].Seq && theirs[0].Seq < mine[0].Seq) {
			t.Errorf("ledger Seq = %d, %d, %d in the slice's order, want increasing", mine[1].Seq, theirs[0].Seq, mine[0].Seq)
		}
		grant.Seq, burn.Seq = mine[1].Seq, mine[0].Seq
		grant.Metadata = paid.Metadata
		wantSame(t, "LedgerList", mine[1], grant)
		wantSame(t, "LedgerList", mine[0], burn)

		// The usage event is there: its id is taken.
		err = apply(t, s, &store.Writes{Scope: sc, Usage: []store.UsageEvent{ev}})
		wantErr(t, "WritesApply(usage event with an id written before)", err, store.ErrConflict)

		for _, r := range []store.IdempotencyRecord{r1, r2} {
			got, err := s.IdempotencyGet(ctx, sc, r.Key, time.Time{})
			wantNoErr(t, "IdempotencyGet", err)
			wantSame(t, "IdempotencyGet after WritesApply", got, r)
		}

		// Nothing leaked into another scope.
		for _, other := range []store.Scope{{TenantID: sc.TenantID, Env: "test"}, newScope(t, s)} {
			_, err := s.CustomerGet(ctx, other, c1.ID)
			wantErr(t, "CustomerGet(another scope)", err, store.ErrNotFound)
			bs, err := s.BlockList(ctx, other, c1.ID)
			wantNoErr(t, "BlockList", err)
			wantIDs(t, "BlockList(another scope)", bs, blockID)
			_, err = s.IdempotencyGet(ctx, other, r1.Key, time.Time{})
			wantErr(t, "IdempotencyGet(another scope)", err, store.ErrNotFound)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		w := &store.Writes{Scope: newScope(t, s)}
		if !w.Empty() {
			t.Error("Writes.Empty() = false for writes without rows")
		}
		wantNoErr(t, "WritesApply(nothing)", apply(t, s, w))
	})

	// More rows than one statement of a backend may take, in uneven numbers.
	t.Run("Many", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		const customers, blocks, entries = 67, 70, 150
		w := &store.Writes{Scope: sc, Lapsed: t0.Add(-ttl)}
		for i := range customers {
			c := store.Customer{ID: ids.UUID(), ExternalID: fmt.Sprintf("user_%d", i), CreatedAt: t0}
			w.Customers = append(w.Customers, c)
			w.Idempotency = append(w.Idempotency, newRecord(t0))
		}
		owner := w.Customers[0].ID
		for i := range blocks {
			w.Blocks = append(w.Blocks, newBlock(owner, int64(i+1), 10, 10))
		}
		for i := range entries {
			w.Ledger = append(w.Ledger, newEntry(owner, credit.EntryGrant, 1, int64(i+1)))
		}
		wantNoErr(t, "WritesApply", apply(t, s, w))

		byExt := make([]string, customers)
		for i := range byExt {
			byExt[i] = fmt.Sprintf("user_%d", i)
		}
		m, err := s.CustomerIDsByExternal(ctx, sc, byExt)
		wantNoErr(t, "CustomerIDsByExternal", err)
		if len(m) != customers {
			t.Errorf("CustomerIDsByExternal() found %d customers, want %d", len(m), customers)
		}
		bs, err := s.BlockList(ctx, sc, owner)
		wantNoErr(t, "BlockList", err)
		if len(bs) != blocks {
			t.Errorf("BlockList() = %d blocks, want %d", len(bs), blocks)
		}
		es, err := s.LedgerList(ctx, sc, owner, "", store.Page{Limit: 1000})
		wantNoErr(t, "LedgerList", err)
		if len(es) != entries {
			t.Fatalf("LedgerList() = %d entries, want %d", len(es), entries)
		}
		for i, e := range es { // newest first: the last of the slice first
			if want := w.Ledger[entries-1-i].ID; e.ID != want {
				t.Fatalf("LedgerList()[%d] = %s, want %s: entries out of the slice's order", i, e.ID, want)
			}
		}
		recs, err := s.IdempotencyGetAll(ctx, idemKeys(sc, w.Idempotency...), time.Time{})
		wantNoErr(t, "IdempotencyGetAll", err)
		if len(recs) != customers {
			t.Errorf("IdempotencyGetAll() = %d records, want %d", len(recs), customers)
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		lapsed, live, lapsedToo := newRecord(t0), newRecord(at(ttl)), newRecord(t0)
		for _, r := range []store.IdempotencyRecord{lapsed, live, lapsedToo} {
			wantNoErr(t, "WritesApply(record)", putRecord(t, s, sc, r, r.CreatedAt.Add(-ttl)))
		}
		now := at(ttl + time.Hour) // lapsed was stored more than ttl ago, live less

		again := newRecord(now)
		again.Key, again.Status, again.Body = lapsed.Key, 200, []byte(`{"again":true}`)
		wantNoErr(t, "WritesApply(over a lapsed record)",
			apply(t, s, &store.Writes{Scope: sc, Idempotency: []store.IdempotencyRecord{again}, Lapsed: now.Add(-ttl)}))
		got, err := s.IdempotencyGet(ctx, sc, lapsed.Key, time.Time{})
		wantNoErr(t, "IdempotencyGet", err)
		wantSame(t, "IdempotencyGet after replacing a lapsed record", got, again)

		// As a group does: the keys are looked up first, in the transaction
		// that writes them. A lapsed record is not answered, and its key is
		// taken over; a free key is written.
		free := newRecord(now)
		lapsedToo.CreatedAt, lapsedToo.Body = now, []byte(`{"lapsed":"too"}`)
		err = s.Transact(ctx, func(q store.Q) error {
			keys := idemKeys(sc, lapsedToo, free)
			if err := q.IdempotencyLockAll(ctx, keys); err != nil {
				return err
			}
			recs, err := q.IdempotencyGetAll(ctx, keys, now.Add(-ttl))
			if err != nil {
				return err
			}
			if len(recs) != 0 {
				t.Errorf("IdempotencyGetAll(lapsed and free keys) = %d records, want 0", len(recs))
			}
			return q.WritesApply(ctx, &store.Writes{Scope: sc, Idempotency: []store.IdempotencyRecord{lapsedToo, free}, Lapsed: now.Add(-ttl)})
		})
		wantNoErr(t, "WritesApply(after looking the keys up)", err)
		for _, want := range []store.IdempotencyRecord{lapsedToo, free} {
			got, err := s.IdempotencyGet(ctx, sc, want.Key, time.Time{})
			wantNoErr(t, "IdempotencyGet", err)
			wantSame(t, "IdempotencyGet after a looked-up write", got, want)
		}

		// A live key fails the whole write, and the transaction leaves nothing.
		c := store.Customer{ID: ids.UUID(), CreatedAt: now}
		clash := newRecord(now)
		clash.Key = live.Key
		fresh := newRecord(now)
		err = apply(t, s, &store.Writes{Scope: sc, Customers: []store.Customer{c},
			Idempotency: []store.IdempotencyRecord{fresh, clash}, Lapsed: now.Add(-ttl)})
		wantErr(t, "WritesApply(live key)", err, store.ErrConflict)
		got, err = s.IdempotencyGet(ctx, sc, live.Key, time.Time{})
		wantNoErr(t, "IdempotencyGet", err)
		wantSame(t, "IdempotencyGet after a conflicting write", got, live)
		_, err = s.IdempotencyGet(ctx, sc, fresh.Key, time.Time{})
		wantErr(t, "IdempotencyGet(key of a failed write)", err, store.ErrNotFound)
		_, err = s.CustomerGet(ctx, sc, c.ID)
		wantErr(t, "CustomerGet(customer of a failed write)", err, store.ErrNotFound)

		// One key twice in one write: the second meets the first.
		twice := newRecord(now)
		err = apply(t, s, &store.Writes{Scope: sc, Idempotency: []store.IdempotencyRecord{twice, twice}, Lapsed: now.Add(-ttl)})
		wantErr(t, "WritesApply(one key twice)", err, store.ErrConflict)
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, other := newCustomer(t, s, sc), newCustomer(t, s, sc)
		b := newBlock(c.ID, 1, 100, 100)
		insertBlocks(t, s, sc, b)
		elsewhere := newCustomer(t, s, newScope(t, s))
		for name, w := range map[string]*store.Writes{
			"unknown block": {Scope: sc, Remaining: []store.BlockRemaining{
				{CustomerID: c.ID, BlockID: b.ID, Remaining: 50}, {CustomerID: c.ID, BlockID: ids.New(ids.Block), Remaining: 1}}},
			"block of another customer": {Scope: sc, Remaining: []store.BlockRemaining{{CustomerID: other.ID, BlockID: b.ID}}},
			"block of another scope": {Scope: store.Scope{TenantID: sc.TenantID, Env: "test"},
				Remaining: []store.BlockRemaining{{CustomerID: c.ID, BlockID: b.ID}}},
			"unknown account": {Scope: sc, Accounts: []store.AccountUpdate{
				{CustomerID: c.ID, Account: credit.Account{Balance: 9}}, {CustomerID: ids.UUID(), Account: credit.Account{Balance: 1}}}},
			"account of another scope": {Scope: sc, Accounts: []store.AccountUpdate{{CustomerID: elsewhere.ID}}},
		} {
			wantErr(t, "WritesApply("+name+")", apply(t, s, w), store.ErrNotFound)
		}
		got, err := s.CustomerGet(ctx, sc, c.ID)
		wantNoErr(t, "CustomerGet", err)
		wantSame(t, "CustomerGet after failed writes", got, c)
		bs, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList after failed writes", bs, blockID, b.ID)
		wantSame(t, "BlockList after failed writes", bs[0], b)
	})

	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		b := newBlock(c.ID, 1, 100, 100)
		insertBlocks(t, s, sc, b)
		e := appendEntries(t, s, sc, newEntry(c.ID, credit.EntryGrant, 100, 100))[0]
		for name, w := range map[string]*store.Writes{
			"customer":     {Scope: sc, Customers: []store.Customer{c}},
			"block":        {Scope: sc, Blocks: []store.Block{b}},
			"ledger entry": {Scope: sc, Ledger: []store.LedgerEntry{e}},
		} {
			wantErr(t, "WritesApply(existing "+name+")", apply(t, s, w), store.ErrConflict)
		}
	})
}

// idemKeys names records' keys in sc.
func idemKeys(sc store.Scope, rs ...store.IdempotencyRecord) []store.IdemKey {
	out := make([]store.IdemKey, len(rs))
	for i, r := range rs {
		out[i] = store.IdemKey{Scope: sc, Key: r.Key}
	}
	return out
}

package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// newBlock returns an unsaved free block of customerID, created at t0, that
// never expires.
func newBlock(customerID string, seq, original, remaining int64) store.Block {
	return store.Block{
		Block:      credit.Block{ID: ids.New(ids.Block), Seq: seq, Original: original, Remaining: remaining},
		CustomerID: customerID,
		Source:     "grant",
		CreatedAt:  t0,
	}
}

// insertBlocks stores bs in one transaction.
func insertBlocks(t *testing.T, s store.Store, sc store.Scope, bs ...store.Block) {
	t.Helper()
	mustApply(t, s, &store.Writes{Scope: sc, Blocks: bs})
}

func testBlock(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("InsertList", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		other := newCustomer(t, s, sc)

		paid := store.Block{
			Block: credit.Block{ID: ids.New(ids.Block), Seq: 1, Original: 10_000, Remaining: 7_000, Priority: 2,
				ExpiresAt: at(30 * 24 * time.Hour), PricePaid: 999},
			CustomerID:        c.ID,
			Source:            "purchase",
			Reason:            "top-up",
			Currency:          "usd",
			ExternalPaymentID: "pi_3Nx",
			Metadata:          json.RawMessage(`{"campaign": "spring", "n": [1, 2]}`),
			CreatedAt:         at(1234 * time.Millisecond),
		}
		free := newBlock(c.ID, 2, 500, 500) // no expiry, no metadata
		free.CreatedAt = at(2 * time.Second)
		expired := newBlock(c.ID, 3, 300, 100) // expired, credits left: still listed
		expired.ExpiresAt = at(-time.Hour)
		spent := newBlock(c.ID, 4, 800, 0) // nothing left: never listed
		// Inserted out of seq order, and beside another customer's block.
		insertBlocks(t, s, sc, expired, spent, newBlock(other.ID, 1, 50, 50), paid, free)

		got, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList", got, blockID, paid.ID, free.ID, expired.ID)
		for i, want := range []store.Block{paid, free, expired} {
			wantSame(t, "BlockList", got[i], want)
		}
		if !got[1].ExpiresAt.IsZero() {
			t.Errorf("BlockList() ExpiresAt of a block without expiry = %v, want the zero time", got[1].ExpiresAt)
		}

		got, err = s.BlockList(ctx, sc, ids.UUID())
		wantNoErr(t, "BlockList", err)
		if len(got) != 0 {
			t.Errorf("BlockList(unknown customer) = %d blocks, want none", len(got))
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		b := newBlock(c.ID, 1, 100, 100)
		insertBlocks(t, s, sc, b)
		again := b
		again.Remaining, again.Source = 1, "purchase"
		err := apply(t, s, &store.Writes{Scope: sc, Blocks: []store.Block{again}})
		wantErr(t, "WritesApply(block with a taken id)", err, store.ErrConflict)
		got, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList after a conflicting write", got, blockID, b.ID)
		wantSame(t, "BlockList after a conflicting write", got[0], b)
	})

	t.Run("UpdateRemaining", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		a, b := newBlock(c.ID, 1, 1000, 1000), newBlock(c.ID, 2, 1000, 1000)
		insertBlocks(t, s, sc, a, b)

		mustApply(t, s, &store.Writes{Scope: sc, Remaining: []store.BlockRemaining{
			{CustomerID: c.ID, BlockID: a.ID, Remaining: 250}, {CustomerID: c.ID, BlockID: b.ID, Remaining: 0}}})
		got, err := s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList after spending the second block", got, blockID, a.ID)
		a.Remaining = 250
		wantSame(t, "BlockList", got[0], a)

		err = apply(t, s, &store.Writes{Scope: sc, Remaining: []store.BlockRemaining{
			{CustomerID: c.ID, BlockID: ids.New(ids.Block), Remaining: 1}}})
		wantErr(t, "WritesApply(unknown block)", err, store.ErrNotFound)
		got, err = s.BlockList(ctx, sc, c.ID)
		wantNoErr(t, "BlockList", err)
		wantIDs(t, "BlockList after a failed update", got, blockID, a.ID)
		wantSame(t, "BlockList after a failed update", got[0], a)
	})

	t.Run("ExpiredCustomers", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		now := at(time.Hour)
		expiring := func(c store.Customer, seq, remaining int64, expires time.Time) store.Block {
			b := newBlock(c.ID, seq, 100, remaining)
			b.ExpiresAt = expires
			return b
		}

		sc, sc2 := newScope(t, s), newScope(t, s)
		past := newCustomer(t, s, sc)       // two blocks expired before now
		exact := newCustomer(t, s, sc)      // a block expiring exactly at now
		spent := newCustomer(t, s, sc)      // an expired block with nothing left
		future := newCustomer(t, s, sc)     // a block expiring after now
		forever := newCustomer(t, s, sc)    // a block without expiry
		elsewhere := newCustomer(t, s, sc2) // another tenant's, expired
		insertBlocks(t, s, sc,
			expiring(past, 1, 40, now.Add(-time.Minute)),
			expiring(past, 2, 60, now.Add(-time.Millisecond)),
			expiring(exact, 1, 100, now),
			expiring(spent, 1, 0, now.Add(-time.Minute)),
			expiring(future, 1, 100, now.Add(time.Millisecond)),
			expiring(forever, 1, 100, time.Time{}),
		)
		insertBlocks(t, s, sc2, expiring(elsewhere, 1, 10, now.Add(-30*time.Minute)))

		key := func(r store.CustomerKey) string {
			return r.Scope.TenantID + "/" + r.Scope.Env + "/" + r.CustomerID
		}
		got, err := s.BlockExpiredCustomers(ctx, now, 100)
		wantNoErr(t, "BlockExpiredCustomers", err)
		gotKeys := make([]string, len(got))
		for i, r := range got {
			gotKeys[i] = key(r)
		}
		slices.Sort(gotKeys)
		wantKeys := []string{
			key(store.CustomerKey{Scope: sc, CustomerID: past.ID}),
			key(store.CustomerKey{Scope: sc, CustomerID: exact.ID}),
			key(store.CustomerKey{Scope: sc2, CustomerID: elsewhere.ID}),
		}
		slices.Sort(wantKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			t.Errorf("BlockExpiredCustomers(now, 100) =\n\t%s\nwant\n\t%s", strings.Join(gotKeys, "\n\t"), strings.Join(wantKeys, "\n\t"))
		}

		got, err = s.BlockExpiredCustomers(ctx, now, 2)
		wantNoErr(t, "BlockExpiredCustomers", err)
		if len(got) != 2 {
			t.Errorf("BlockExpiredCustomers(now, 2) = %d customers, want 2", len(got))
		}
		for _, r := range got {
			if !slices.Contains(wantKeys, key(r)) {
				t.Errorf("BlockExpiredCustomers(now, 2) returned %s, which has nothing expired", key(r))
			}
		}

		got, err = s.BlockExpiredCustomers(ctx, t0, 100)
		wantNoErr(t, "BlockExpiredCustomers", err)
		if len(got) != 0 {
			t.Errorf("BlockExpiredCustomers(before anything expires) = %+v, want none", got)
		}
	})
}

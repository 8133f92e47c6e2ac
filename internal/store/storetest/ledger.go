package storetest

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ids"
	"github.com/creditd/creditd/internal/store"
)

// newEntry returns an unsaved ledger entry of customerID, created at t0.
func newEntry(customerID string, typ credit.EntryType, delta, balanceAfter int64) store.LedgerEntry {
	return store.LedgerEntry{
		Entry:      credit.Entry{Type: typ, BlockID: ids.New(ids.Block), Delta: delta, BalanceAfter: balanceAfter},
		ID:         ids.New(ids.Transaction),
		CustomerID: customerID,
		CreatedAt:  t0,
	}
}

// appendEntries appends es in one transaction and returns them with the Seq
// the store assigned, read back through LedgerList: WritesApply leaves Seq
// unset, which this checks too.
func appendEntries(t *testing.T, s store.Store, sc store.Scope, es ...store.LedgerEntry) []store.LedgerEntry {
	t.Helper()
	out := slices.Clone(es)
	for i := range out {
		out[i].Seq = 0
	}
	mustApply(t, s, &store.Writes{Scope: sc, Ledger: out})
	seq := make(map[string]int64)
	listed := make(map[string]bool)
	for i, e := range out {
		if e.Seq != 0 {
			t.Errorf("WritesApply() set the Seq of entry %s to %d, want it left unset", e.ID, e.Seq)
		}
		if !listed[e.CustomerID] {
			listed[e.CustomerID] = true
			got, err := s.LedgerList(t.Context(), sc, e.CustomerID, "", store.Page{Limit: 1000})
			wantNoErr(t, "LedgerList", err)
			for _, g := range got {
				seq[g.ID] = g.Seq
			}
		}
		n, ok := seq[e.ID]
		if !ok {
			t.Fatalf("LedgerList() after WritesApply has no entry %s", e.ID)
		}
		out[i].Seq = n
	}
	return out
}

func testLedger(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("AppendList", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c, other := newCustomer(t, s, sc), newCustomer(t, s, sc)

		grant := newEntry(c.ID, credit.EntryGrant, 1000, 1000)
		grant.ReferenceType, grant.ReferenceID = "grant", "grt_1"
		grant.IdempotencyKey = "key-1"
		grant.CreatedAt = at(1001 * time.Millisecond)
		first := appendEntries(t, s, sc,
			grant,
			newEntry(other.ID, credit.EntryGrant, 50, 50),
			newEntry(c.ID, credit.EntryUsage, -100, 900),
		)
		second := appendEntries(t, s, sc,
			newEntry(c.ID, credit.EntryUsage, -200, 700),
			newEntry(c.ID, credit.EntryExpire, -700, 0),
		)
		all := append(first, second...)
		for i := 1; i < len(all); i++ {
			if all[i].Seq <= all[i-1].Seq {
				t.Fatalf("ledger Seq %d after %d, want increasing in the order written", all[i].Seq, all[i-1].Seq)
			}
		}

		// Newest first, only c's.
		mine := []store.LedgerEntry{all[4], all[3], all[2], all[0]}
		got, err := s.LedgerList(ctx, sc, c.ID, "", store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList(all types)", got, entryID, mine[0].ID, mine[1].ID, mine[2].ID, mine[3].ID)
		for i := range got {
			wantSame(t, "LedgerList", got[i], mine[i])
		}

		// Pages of two, each cursor the Seq of the page's last row.
		pages := [][]string{{mine[0].ID, mine[1].ID}, {mine[2].ID, mine[3].ID}, {}}
		after := ""
		for _, want := range pages {
			got, err := s.LedgerList(ctx, sc, c.ID, "", store.Page{After: after, Limit: 2})
			wantNoErr(t, "LedgerList", err)
			wantIDs(t, "LedgerList(after "+after+", limit 2)", got, entryID, want...)
			if len(got) > 0 {
				after = strconv.FormatInt(got[len(got)-1].Seq, 10)
			}
		}

		got, err = s.LedgerList(ctx, sc, c.ID, string(credit.EntryUsage), store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList(usage)", got, entryID, all[3].ID, all[2].ID)
		got, err = s.LedgerList(ctx, sc, c.ID, string(credit.EntryUsage), store.Page{After: strconv.FormatInt(all[3].Seq, 10), Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList(usage, after the newest)", got, entryID, all[2].ID)
		got, err = s.LedgerList(ctx, sc, c.ID, string(credit.EntryCommit), store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList(commit)", got, entryID)
	})

	// A linked transaction is stored as its answer, and its entries name it.
	t.Run("Transaction", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc, other := newScope(t, s), newScope(t, s)
		c := newCustomer(t, s, sc)
		tx := store.Transaction{ID: ids.New(ids.LinkedTx), Body: []byte(`{"id":"trx"}`), Metadata: json.RawMessage(`{"why": "transfer"}`), CreatedAt: t0}
		e := newEntry(c.ID, credit.EntryGrant, 100, 100)
		e.TransactionID = tx.ID
		mustApply(t, s, &store.Writes{Scope: sc, Ledger: []store.LedgerEntry{e}, Transactions: []store.Transaction{tx}})
		got, err := s.TransactionGet(ctx, sc, tx.ID)
		wantNoErr(t, "TransactionGet", err)
		wantSame(t, "TransactionGet", got, tx)
		_, err = s.TransactionGet(ctx, other, tx.ID)
		wantErr(t, "TransactionGet(another scope)", err, store.ErrNotFound)
		entries, err := s.LedgerList(ctx, sc, c.ID, "", store.Page{Limit: 10})
		wantNoErr(t, "LedgerList", err)
		if len(entries) != 1 || entries[0].TransactionID != tx.ID {
			t.Errorf("LedgerList = %+v, want the entry with TransactionID %s", entries, tx.ID)
		}
		err = apply(t, s, &store.Writes{Scope: sc, Transactions: []store.Transaction{tx}})
		wantErr(t, "WritesApply(a transaction id written before)", err, store.ErrConflict)
	})

	// A request's metadata is stored once, on its usage event or block; each
	// entry shows it through its reference, whatever the entry carried when
	// written.
	t.Run("MetadataFromReference", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), t.Context()
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		blk := newBlock(c.ID, 1, 1000, 1000)
		blk.Metadata = json.RawMessage(`{"campaign": "spring"}`)
		ev := store.UsageEvent{ID: ids.New(ids.Event), CustomerID: c.ID, MetricKey: "api_calls", Units: 1, Cost: 300,
			IdempotencyKey: "key-2", Metadata: json.RawMessage(`{"prompt": "hi"}`), CreatedAt: t0}
		grant := newEntry(c.ID, credit.EntryGrant, 1000, 1000)
		grant.ReferenceType, grant.ReferenceID = "grant", blk.ID
		grant.Metadata = json.RawMessage(`{"copied": true}`) // not written
		burns := []store.LedgerEntry{newEntry(c.ID, credit.EntryUsage, -100, 900), newEntry(c.ID, credit.EntryUsage, -200, 700)}
		for i := range burns {
			burns[i].ReferenceType, burns[i].ReferenceID, burns[i].BlockID = "usage_event", ev.ID, blk.ID
		}
		expire := newEntry(c.ID, credit.EntryExpire, -700, 0)
		expire.ReferenceType, expire.ReferenceID = "block", blk.ID
		mustApply(t, s, &store.Writes{Scope: sc, Blocks: []store.Block{blk}, Usage: []store.UsageEvent{ev},
			Ledger: append([]store.LedgerEntry{grant}, append(burns, expire)...)})

		got, err := s.LedgerList(ctx, sc, c.ID, "", store.Page{Limit: 100})
		wantNoErr(t, "LedgerList", err)
		wantIDs(t, "LedgerList", got, entryID, expire.ID, burns[1].ID, burns[0].ID, grant.ID)
		want := map[string]string{grant.ID: `{"campaign": "spring"}`, burns[0].ID: `{"prompt": "hi"}`,
			burns[1].ID: `{"prompt": "hi"}`, expire.ID: ""}
		for _, e := range got {
			if !jsonEqual(e.Metadata, json.RawMessage(want[e.ID])) {
				t.Errorf("LedgerList: entry %s (%s) metadata = %s, want %q (its reference's)", e.ID, e.Type, e.Metadata, want[e.ID])
			}
		}
		got, err = s.LedgerList(ctx, sc, c.ID, string(credit.EntryUsage), store.Page{Limit: 1})
		wantNoErr(t, "LedgerList", err)
		if len(got) != 1 || !jsonEqual(got[0].Metadata, ev.Metadata) {
			t.Errorf("LedgerList(usage, limit 1) = %+v, want the last usage entry with the event's metadata", got)
		}
	})
}

func testUsageEvent(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Insert", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		sc := newScope(t, s)
		c := newCustomer(t, s, sc)
		e := store.UsageEvent{ID: ids.New(ids.Event), CustomerID: c.ID, MetricKey: "api_calls", Units: 3, Cost: 15,
			IdempotencyKey: "key-1", Metadata: json.RawMessage(`{"endpoint": "/v1/chat"}`), CreatedAt: t0}
		mustApply(t, s, &store.Writes{Scope: sc, Usage: []store.UsageEvent{e}})
		noMeta := store.UsageEvent{ID: ids.New(ids.Event), CustomerID: c.ID, MetricKey: "api_calls", Units: 1,
			IdempotencyKey: "key-2", CreatedAt: t0}
		mustApply(t, s, &store.Writes{Scope: sc, Usage: []store.UsageEvent{noMeta}})

		// No method reads usage events back: a taken id shows they are there.
		for _, again := range []store.UsageEvent{e, noMeta} {
			err := apply(t, s, &store.Writes{Scope: sc, Usage: []store.UsageEvent{again}})
			wantErr(t, "WritesApply(usage event with a taken id)", err, store.ErrConflict)
		}
	})
}

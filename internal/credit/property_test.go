package credit

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// checkInvariants asserts the invariants of design.md on one customer's state
// at now, given every ledger entry its operations returned so far (oldest
// first) and the sum of every successful grant:
//
//   - Account.Balance = Σ Remaining of all blocks (expired ones not yet
//     swept included), and ≥ the live balance at now;
//   - Σ ledger deltas = Account.Balance, and each entry's BalanceAfter is the
//     running sum up to and including it;
//   - LifetimeEarned = Σ grants = Σ grant entries = Σ Original;
//   - 0 ≤ Remaining ≤ Original for every block; Reserved ≥ 0.
func checkInvariants(t rapid.TB, s State, now time.Time, ledger []Entry, granted int64) {
	t.Helper()
	var sumRemaining, sumOriginal int64
	for _, b := range s.Blocks {
		if b.Remaining < 0 || b.Remaining > b.Original {
			t.Fatalf("block %s remaining = %d, want 0 ≤ remaining ≤ original %d", b.ID, b.Remaining, b.Original)
		}
		sumRemaining += b.Remaining
		sumOriginal += b.Original
	}
	if s.Account.Balance != sumRemaining {
		t.Fatalf("balance = %d, want Σ remaining %d", s.Account.Balance, sumRemaining)
	}
	if live := refLive(s.Blocks, now); s.Account.Balance < live {
		t.Fatalf("balance = %d, want ≥ live balance %d", s.Account.Balance, live)
	}
	if s.Account.Reserved < 0 {
		t.Fatalf("reserved = %d, want ≥ 0", s.Account.Reserved)
	}
	var running, grants int64
	for i, e := range ledger {
		running += e.Delta
		if e.BalanceAfter != running {
			t.Fatalf("ledger[%d] (%s %s %d) balance_after = %d, want running sum %d", i, e.Type, e.BlockID, e.Delta, e.BalanceAfter, running)
		}
		if e.Type == EntryGrant {
			grants += e.Delta
		}
	}
	if running != s.Account.Balance {
		t.Fatalf("Σ ledger deltas = %d, want balance %d", running, s.Account.Balance)
	}
	if s.Account.LifetimeEarned != granted {
		t.Fatalf("lifetime earned = %d, want Σ grants %d", s.Account.LifetimeEarned, granted)
	}
	if grants != granted || sumOriginal != granted {
		t.Fatalf("Σ grant entries = %d, Σ original = %d, want Σ grants %d", grants, sumOriginal, granted)
	}
}

// refLiveBlock is the test's own reading of "live at now", written apart from
// Block.Live so that a bug there cannot hide itself.
func refLiveBlock(b Block, now time.Time) bool {
	return b.Remaining > 0 && (b.ExpiresAt.IsZero() || now.Before(b.ExpiresAt))
}

func refLive(blocks []Block, now time.Time) int64 {
	var sum int64
	for _, b := range blocks {
		if refLiveBlock(b, now) {
			sum += b.Remaining
		}
	}
	return sum
}

// refCompare is the test's own burn order, as a key compared element by
// element: priority descending, expiring before not, expiry ascending, free
// before paid, seq ascending, then id.
func refCompare(a, b Block) int {
	key := func(x Block) []int64 {
		never, exp := int64(1), int64(0)
		if !x.ExpiresAt.IsZero() {
			never, exp = 0, x.ExpiresAt.UnixNano()
		}
		paid := int64(0)
		if x.PricePaid != 0 {
			paid = 1
		}
		return []int64{-int64(x.Priority), never, exp, paid, x.Seq}
	}
	if c := slices.Compare(key(a), key(b)); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// refOrder returns the ids of the blocks live at now, in burn order.
func refOrder(blocks []Block, now time.Time) []string {
	var live []Block
	for _, b := range blocks {
		if refLiveBlock(b, now) {
			live = append(live, b)
		}
	}
	slices.SortFunc(live, refCompare)
	return ids(live)
}

// ledgerModel drives one customer's State through random operations.
type ledgerModel struct {
	s       State
	now     time.Time
	ledger  []Entry
	granted int64
	seq     int64
}

func (m *ledgerModel) grant(t *rapid.T) {
	m.seq++
	b := Block{
		ID:       fmt.Sprintf("blk_%04d", m.seq),
		Original: rapid.Int64Range(1, 1000).Draw(t, "credits"),
		Priority: rapid.IntRange(0, 100).Draw(t, "priority"),
		Seq:      m.seq,
	}
	b.Remaining = b.Original
	if rapid.Bool().Draw(t, "expires") {
		// On a 10 s grid relative to the clock, which moves in 5 s steps, so
		// that operations land exactly on expiry instants; 0 is already due.
		b.ExpiresAt = m.now.Add(time.Duration(rapid.IntRange(0, 30).Draw(t, "expires_in")) * 10 * time.Second)
	}
	if rapid.Bool().Draw(t, "paid") {
		b.PricePaid = rapid.Int64Range(1, 10000).Draw(t, "price_paid")
	}
	before := clone(m.s)
	e, err := m.s.Grant(b)
	if err != nil {
		t.Fatalf("Grant(%d) error = %v, want nil", b.Original, err)
	}
	want := Entry{Type: EntryGrant, BlockID: b.ID, Delta: b.Original, BalanceAfter: before.Account.Balance + b.Original}
	if e != want {
		t.Fatalf("Grant(%d) entry = %+v, want %+v", b.Original, e, want)
	}
	if m.s.Account.Version != before.Account.Version+1 {
		t.Fatalf("Grant(%d) version = %d, want %d", b.Original, m.s.Account.Version, before.Account.Version+1)
	}
	if got := m.s.Blocks[len(m.s.Blocks)-1]; got != b {
		t.Fatalf("Grant(%d) stored block %+v, want %+v", b.Original, got, b)
	}
	m.granted += b.Original
	m.ledger = append(m.ledger, e)
}

func (m *ledgerModel) badGrant(t *rapid.T) {
	b := Block{ID: "blk_bad", Original: rapid.Int64Range(-1000, 1000).Draw(t, "credits")}
	b.Remaining = b.Original
	if b.Original > 0 {
		b.Remaining = b.Original + rapid.Int64Range(-b.Original, 10).Filter(func(d int64) bool { return d != 0 }).Draw(t, "skew")
	}
	before := clone(m.s)
	e, err := m.s.Grant(b)
	if ErrorCode(err) != EInvalid {
		t.Fatalf("Grant(original %d, remaining %d) error = %v, want %s", b.Original, b.Remaining, err, EInvalid)
	}
	if e != (Entry{}) || !reflect.DeepEqual(m.s, before) {
		t.Fatalf("Grant(original %d, remaining %d) failed but returned %+v and changed the state to %+v, want %+v", b.Original, b.Remaining, e, m.s, before)
	}
}

func (m *ledgerModel) reserve(t *rapid.T) {
	// Reservations live above this package; what Debit sees is Reserved.
	m.s.Account.Reserved = rapid.Int64Range(0, refLive(m.s.Blocks, m.now)+50).Draw(t, "reserved")
}

func (m *ledgerModel) advance(t *rapid.T) {
	m.now = m.now.Add(time.Duration(rapid.IntRange(0, 12).Draw(t, "steps")) * 5 * time.Second)
}

func (m *ledgerModel) debit(t *rapid.T) {
	amount := rapid.Int64Range(0, 2500).Draw(t, "amount")
	typ := rapid.SampledFrom([]EntryType{EntryUsage, EntryCommit, EntryReserve}).Draw(t, "type")
	available := max(0, refLive(m.s.Blocks, m.now)-m.s.Account.Reserved)
	before := clone(m.s)
	entries, err := m.s.Debit(amount, typ, m.now)
	call := fmt.Sprintf("Debit(blocks, %d) at %s", amount, m.now.Format(time.TimeOnly))

	if amount > available {
		var ie *InsufficientError
		if !errors.As(err, &ie) {
			t.Fatalf("%s = %+v, %v, want *InsufficientError (available %d)", call, entries, err, available)
		}
		if want := (InsufficientError{Required: amount, Available: available}); *ie != want {
			t.Fatalf("%s error = %+v, want %+v", call, *ie, want)
		}
		if entries != nil || !reflect.DeepEqual(m.s, before) {
			t.Fatalf("%s failed but returned %+v and changed the state to %+v, want %+v", call, entries, m.s, before)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s error = %v, want nil (available %d)", call, err, available)
	}
	checkDebit(t, call, before, m.s, entries, amount, typ, m.now, func(Block) bool { return true })
	m.ledger = append(m.ledger, entries...)
}

// debitPayable is a plan's price: only blocks of priority at most the
// plan's limit pay, and only what no reservation holds.
func (m *ledgerModel) debitPayable(t *rapid.T) {
	amount := rapid.Int64Range(0, 2500).Draw(t, "amount")
	maxPriority := rapid.IntRange(0, 100).Draw(t, "max_priority")
	pays := func(b Block) bool { return b.Priority <= maxPriority }
	var payable int64
	for _, b := range m.s.Blocks {
		if refLiveBlock(b, m.now) && pays(b) {
			payable += b.Remaining
		}
	}
	available := min(payable, max(0, refLive(m.s.Blocks, m.now)-m.s.Account.Reserved))
	before := clone(m.s)
	entries, err := m.s.DebitPayable(amount, maxPriority, EntryPurchase, m.now)
	call := fmt.Sprintf("DebitPayable(blocks, %d, priority ≤ %d) at %s", amount, maxPriority, m.now.Format(time.TimeOnly))
	if amount > available {
		var ie *InsufficientError
		if !errors.As(err, &ie) || *ie != (InsufficientError{Required: amount, Available: available}) {
			t.Fatalf("%s = %+v, %v, want *InsufficientError{%d, %d}", call, entries, err, amount, available)
		}
		if entries != nil || !reflect.DeepEqual(m.s, before) {
			t.Fatalf("%s failed but returned %+v and changed the state to %+v, want %+v", call, entries, m.s, before)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s error = %v, want nil (available %d)", call, err, available)
	}
	checkDebit(t, call, before, m.s, entries, amount, EntryPurchase, m.now, pays)
	m.ledger = append(m.ledger, entries...)
}

// checkDebit asserts that a successful debit of amount took it from the
// blocks live at now that pay, in burn order: each entry names such a block,
// later in burn order than the one before; every one of them before the last
// one touched was drained to 0; nothing else changed.
func checkDebit(t rapid.TB, call string, before, after State, entries []Entry, amount int64, typ EntryType, now time.Time, pays func(Block) bool) {
	t.Helper()
	var paying []Block
	for _, b := range before.Blocks {
		if pays(b) {
			paying = append(paying, b)
		}
	}
	order := refOrder(paying, now)
	pos := make(map[string]int, len(order))
	for i, id := range order {
		pos[id] = i
	}
	taken := make(map[string]int64)
	var total int64
	last := -1
	for i, e := range entries {
		p, ok := pos[e.BlockID]
		switch {
		case !ok:
			t.Fatalf("%s entry %d debits block %s, which is not live (expired or empty); live in burn order: %v", call, i, e.BlockID, order)
		case p <= last:
			t.Fatalf("%s entry %d debits %s out of burn order %v", call, i, e.BlockID, order)
		case e.Delta >= 0:
			t.Fatalf("%s entry %d delta = %d, want < 0", call, i, e.Delta)
		case e.Type != typ:
			t.Fatalf("%s entry %d type = %q, want %q", call, i, e.Type, typ)
		}
		last = p
		taken[e.BlockID] = -e.Delta
		total -= e.Delta
	}
	if total != amount {
		t.Fatalf("%s entries take %d, want %d", call, total, amount)
	}
	if amount == 0 && len(entries) != 0 {
		t.Fatalf("%s entries = %+v, want none", call, entries)
	}
	if len(after.Blocks) != len(before.Blocks) {
		t.Fatalf("%s has %d blocks, want %d", call, len(after.Blocks), len(before.Blocks))
	}
	for i, a := range after.Blocks {
		b := before.Blocks[i]
		if want := b.Remaining - taken[b.ID]; a.Remaining != want {
			t.Fatalf("%s remaining of %s = %d, want %d", call, b.ID, a.Remaining, want)
		}
		a.Remaining = b.Remaining
		if a != b {
			t.Fatalf("%s changed block %+v to %+v, want only its remaining changed", call, b, a)
		}
	}
	for _, id := range order[:last+1] {
		if _, ok := taken[id]; !ok {
			t.Fatalf("%s skipped live block %s before the last one it touched; burn order %v, touched %v", call, id, order, slices.Sorted(maps.Keys(taken)))
		}
	}
	for _, e := range entries[:max(0, len(entries)-1)] {
		if r := remaining(after)[e.BlockID]; r != 0 {
			t.Fatalf("%s left %d in %s and moved on to a later block, want 0", call, r, e.BlockID)
		}
	}
	wantAccount := before.Account
	wantAccount.Balance -= amount
	if amount > 0 {
		wantAccount.Version++
	}
	if after.Account != wantAccount {
		t.Fatalf("%s account = %+v, want %+v", call, after.Account, wantAccount)
	}
}

func (m *ledgerModel) expire(t *rapid.T) {
	before := clone(m.s)
	entries := m.s.ExpireDue(m.now)
	call := fmt.Sprintf("ExpireDue(%s)", m.now.Format(time.TimeOnly))

	var due []Block
	for _, b := range before.Blocks {
		if b.Remaining > 0 && !refLiveBlock(b, m.now) {
			due = append(due, b)
		}
	}
	slices.SortFunc(due, refCompare)
	var want []Entry
	bal := before.Account.Balance
	for _, b := range due {
		bal -= b.Remaining
		want = append(want, Entry{Type: EntryExpire, BlockID: b.ID, Delta: -b.Remaining, BalanceAfter: bal})
	}
	if !slices.Equal(entries, want) {
		t.Fatalf("%s = %+v, want %+v", call, entries, want)
	}
	for i, a := range m.s.Blocks {
		b := before.Blocks[i]
		if !refLiveBlock(b, m.now) {
			b.Remaining = 0
		}
		if a != b {
			t.Fatalf("%s left block %+v, want %+v", call, a, b)
		}
	}
	wantAccount := before.Account
	wantAccount.Balance = bal
	if len(due) > 0 {
		wantAccount.Version++
	}
	if m.s.Account != wantAccount {
		t.Fatalf("%s account = %+v, want %+v", call, m.s.Account, wantAccount)
	}
	if live := refLive(m.s.Blocks, m.now); m.s.Account.Balance != live {
		t.Fatalf("after %s balance = %d, want live balance %d", call, m.s.Account.Balance, live)
	}
	m.ledger = append(m.ledger, entries...)
}

// TestStateProperties runs random sequences of grants, debits (some larger
// than the balance), debits of payable blocks only, holds, clock moves and
// expiry sweeps, checking every
// operation's result and the invariants after each step.
func TestStateProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &ledgerModel{now: t0}
		t.Repeat(map[string]func(*rapid.T){
			"grant":    m.grant,
			"badGrant": m.badGrant,
			"reserve":  m.reserve,
			"advance":  m.advance,
			"debit":    m.debit,
			"payable":  m.debitPayable,
			"expire":   m.expire,
			"":         func(t *rapid.T) { checkInvariants(t, m.s, m.now, m.ledger, m.granted) },
		})
	})
}

// TestCompareBurnProperties checks that CompareBurn is the reference order
// on random blocks built from few values, so that every tie-break is hit.
func TestCompareBurnProperties(t *testing.T) {
	block := rapid.Custom(func(t *rapid.T) Block {
		b := Block{
			ID:       rapid.SampledFrom([]string{"a", "b"}).Draw(t, "id"),
			Priority: rapid.IntRange(0, 2).Draw(t, "priority"),
			Seq:      rapid.Int64Range(1, 2).Draw(t, "seq"),
		}
		if n := rapid.IntRange(0, 2).Draw(t, "expiry"); n > 0 {
			b.ExpiresAt = t0.Add(time.Duration(n) * time.Hour)
		}
		if rapid.Bool().Draw(t, "paid") {
			b.PricePaid = rapid.Int64Range(1, 3).Draw(t, "price")
		}
		return b
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := block.Draw(t, "a"), block.Draw(t, "b")
		if got, want := sign(CompareBurn(a, b)), refCompare(a, b); got != want {
			t.Fatalf("CompareBurn(%+v, %+v) = %d, want %d", a, b, got, want)
		}
	})
}

// TestCheckInvariantsFails makes sure the checker itself can fail: each
// broken state must be reported.
func TestCheckInvariantsFails(t *testing.T) {
	good := State{
		Account: Account{Balance: 10, LifetimeEarned: 10, Version: 1},
		Blocks:  []Block{{ID: "a", Original: 10, Remaining: 10}},
	}
	ledger := []Entry{{EntryGrant, "a", 10, 10}}
	if f := invariantFailure(good, ledger, 10); f != "" {
		t.Fatalf("checkInvariants(good state) failed: %s", f)
	}
	tests := []struct {
		name    string
		mutate  func(s *State, l *[]Entry, granted *int64)
		wantSub string
	}{
		{"balance", func(s *State, _ *[]Entry, _ *int64) { s.Account.Balance = 9 }, "Σ remaining"},
		{"negative remaining", func(s *State, _ *[]Entry, _ *int64) { s.Blocks[0].Remaining = -1 }, "remaining"},
		{"remaining above original", func(s *State, _ *[]Entry, _ *int64) { s.Blocks[0].Remaining = 11 }, "remaining"},
		{"ledger sum", func(_ *State, l *[]Entry, _ *int64) { *l = append(*l, Entry{EntryUsage, "a", -1, 9}) }, "Σ ledger"},
		{"balance_after", func(_ *State, l *[]Entry, _ *int64) { (*l)[0].BalanceAfter = 11 }, "balance_after"},
		{"lifetime", func(s *State, _ *[]Entry, _ *int64) { s.Account.LifetimeEarned = 11 }, "lifetime"},
		{"grants", func(_ *State, _ *[]Entry, g *int64) { *g = 9 }, "lifetime"},
		{"reserved", func(s *State, _ *[]Entry, _ *int64) { s.Account.Reserved = -1 }, "reserved"},
	}
	for _, tt := range tests {
		s, l, g := clone(good), slices.Clone(ledger), int64(10)
		tt.mutate(&s, &l, &g)
		if f := invariantFailure(s, l, g); !strings.Contains(f, tt.wantSub) {
			t.Errorf("checkInvariants(%s broken) = %q, want a failure mentioning %q", tt.name, f, tt.wantSub)
		}
	}
}

// invariantFailure runs checkInvariants and returns its failure message, or
// "" when it passed.
func invariantFailure(s State, ledger []Entry, granted int64) (msg string) {
	rec := &recordTB{}
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine, as FailNow does in a test
		defer close(done)
		checkInvariants(rec, s, t0, ledger, granted)
	}()
	<-done
	return rec.msg
}

// recordTB is a rapid.TB that records the first failure.
type recordTB struct {
	rapid.TB
	msg string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
